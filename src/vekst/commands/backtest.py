"""``vekst backtest``: rolling-origin backtests of the forecast against the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vekst.commands.ui import console, err_console


def parse_origins(values: list[str] | None) -> list[int]:
    """Origin years from ``--origins 2012 2015``, ``--origins 2012,2015`` or repeats.

    Raises
    ------
    typer.BadParameter
        For a value that is not a year.
    """
    years: list[int] = []
    for value in values or []:
        for part in str(value).replace(",", " ").split():
            if not part.isdigit() or len(part) != 4:
                raise typer.BadParameter(
                    f"origin {part!r} is not a year; use e.g. --origins 2012 2015 2018."
                )
            years.append(int(part))
    if not years:
        raise typer.BadParameter("give at least one origin year, e.g. --origins 2012 2015 2018.")
    return sorted(set(years))


def _fmt(value: float, digits: int = 2, pct: bool = False) -> str:
    if value != value:  # NaN
        return "-"
    return f"{100 * value:.0f}" if pct else f"{value:.{digits}f}"


def totals_table(result) -> Table:
    """Median APE of municipal totals by horizon, per origin and method."""
    summary = result.summary(("origin", "method", "horizon"))
    horizons = sorted(summary["horizon"].unique())
    # Split from the scores table below so that each fits an 80-column terminal.
    table = Table(title="Backtest, municipal totals: median APE (%) by years ahead")
    table.add_column("origin", justify="right", no_wrap=True)
    table.add_column("method", no_wrap=True)
    for h in horizons:
        table.add_column(f"h{h}", justify="right")
    for (origin, method), rows in summary.groupby(["origin", "method"], sort=False):
        rows = rows.set_index("horizon")
        table.add_row(
            str(origin), str(method), *[_fmt(rows.loc[h, "median_ape"]) for h in horizons]
        )
    return table


def scores_table(result) -> Table:
    """The last horizon's MAPE, bias, CRPS and band coverage, per origin and method."""
    summary = result.summary(("origin", "method", "horizon"))
    last = int(summary["horizon"].max())
    table = Table(
        title=f"Backtest, municipal totals {last} years ahead (% of the observed population; "
        "coverage: % inside the 50/80/95 % bands)"
    )
    table.add_column("origin", justify="right", no_wrap=True)
    table.add_column("method", no_wrap=True)
    for label in ("MAPE", "bias", "CRPS", "cov50", "cov80", "cov95"):
        table.add_column(label, justify="right")
    for (origin, method), rows in summary.groupby(["origin", "method"], sort=False):
        end = rows.set_index("horizon").loc[last]
        table.add_row(
            str(origin),
            str(method),
            _fmt(end["mean_ape"]),
            _fmt(end["bias"]),
            _fmt(end["crps_pct"]),
            *[_fmt(end.get(f"coverage_{lv}", float("nan")), pct=True) for lv in ("50", "80", "95")],
        )
    return table


def size_table(result) -> Table:
    """Median APE of totals at the last horizon by size class and method (all origins)."""
    scores = result.scores
    last = int(scores["horizon"].max())
    rows = scores[(scores["age_group"] == "total") & (scores["horizon"] == last)]
    pivot = rows.groupby(["size_class", "method"], sort=False)["ape"].median().unstack("method")
    counts = rows[rows["method"] == rows["method"].iloc[0]].groupby("size_class")["ape"].count()
    from vekst.evaluate import SIZE_CLASSES

    table = Table(title=f"Median APE of totals at h{last} by size class (all origins pooled)")
    table.add_column("size class")
    table.add_column("n", justify="right")
    methods = list(dict.fromkeys(rows["method"]))
    for method in methods:
        table.add_column(method, justify="right")
    for label, _ in SIZE_CLASSES:
        if label in pivot.index:
            table.add_row(
                label, str(int(counts.get(label, 0))), *[_fmt(pivot.loc[label, m]) for m in methods]
            )
    return table


def age_table(result) -> Table:
    """Median APE by planner age group at the last horizon (all origins, all municipalities)."""
    scores = result.scores
    last = int(scores["horizon"].max())
    rows = scores[scores["horizon"] == last]
    pivot = rows.groupby(["age_group", "method"], sort=False)["ape"].median().unstack("method")
    table = Table(title=f"Median APE by age group at h{last} (all origins pooled)")
    table.add_column("age group")
    methods = list(dict.fromkeys(rows["method"]))
    for method in methods:
        table.add_column(method, justify="right")
    for group in dict.fromkeys(rows["age_group"]):
        table.add_row(str(group), *[_fmt(pivot.loc[group, m]) for m in methods])
    return table


def notes_lines(result) -> list[str]:
    """One line per origin: spec and why, employment profile, fit diagnostics."""
    lines = []
    for origin, note in result.notes.items():
        parts = [f"[bold]{origin}[/]: {note.get('spec', 'no model fitted')}"]
        if "fit_years" in note:
            parts.append(f"fit on flows {note['fit_years'][0]}-{note['fit_years'][1]}")
        diagnostics = note.get("diagnostics")
        if diagnostics:
            gate = (
                "[green]passed[/]"
                if diagnostics["converged"]
                else ("[red]FAILED[/] (" + "; ".join(diagnostics["problems"]) + ")")
            )
            parts.append(f"convergence gate {gate}")
        parts.append(f"DS employment profile: {note.get('employment_profile', '-')}")
        lines.append("; ".join(parts))
    return lines


def register(app: typer.Typer) -> None:
    """Add ``vekst backtest``."""

    @app.command("backtest")
    def backtest_command(
        more_origins: Annotated[
            list[str] | None,
            typer.Argument(
                help="More origin years (so that --origins 2012 2015 2018 works).",
                show_default=False,
            ),
        ] = None,
        origins: Annotated[
            list[str] | None,
            typer.Option(
                "--origins", help="Origin years (1 January jump-off), e.g. 2012 2015 2018."
            ),
        ] = None,
        horizon: Annotated[int, typer.Option(help="Years ahead to score.")] = 4,
        draws: Annotated[int, typer.Option(help="Posterior draws per chain of each fit.")] = 500,
        tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 500,
        chains: Annotated[int, typer.Option(help="Chains per fit.")] = 2,
        projection_draws: Annotated[int, typer.Option(help="Posterior draws projected.")] = 200,
        spec: Annotated[
            str | None,
            typer.Option(
                help="Model spec (.toml or shipped name); default vareide2022, or no_jobs "
                "where job data are missing before the origin."
            ),
        ] = None,
        methods: Annotated[
            str, typer.Option(help="Comma-separated methods.")
        ] = "bayes,ols,naive5,naive10,no_migration",
        seed: Annotated[int, typer.Option(help="Seed of fits and projections.")] = 20240101,
        out: Annotated[Path, typer.Option(help="CSV of the comparison table.")] = Path(
            "backtest.csv"
        ),
        scores_out: Annotated[
            Path | None,
            typer.Option(help="CSV of every scored municipality, year and age group."),
        ] = None,
        official: Annotated[
            list[Path] | None,
            typer.Option(
                help="SSB projection CSV(s), compared where a vintage starts in an origin year."
            ),
        ] = None,
    ) -> None:
        """Fit on the years before each origin, project, and score against what happened."""
        from vekst import load_default
        from vekst.evaluate import backtest, compare_official, read_ssb_projection
        from vekst.evaluate.backtest import write_csv_atomic
        from vekst.evaluate.metrics import summarise_scores

        years = parse_origins([*(origins or []), *(more_origins or [])])
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        panel = load_default()
        console.print(
            f"backtest origins {years}, horizon {horizon}, methods {chosen}; fits: {chains} "
            f"chains x {draws} draws (+{tune} tuning), {projection_draws} projected draws"
        )
        with console.status("running backtests") as status:
            result = backtest(
                panel,
                years,
                horizon,
                spec=spec,
                draws=draws,
                tune=tune,
                chains=chains,
                n_draws=projection_draws,
                seed=seed,
                methods=chosen,
                log=lambda message: status.update(message),
            )
        for line in notes_lines(result):
            console.print(line)
        console.print(totals_table(result))
        console.print(scores_table(result))
        console.print(size_table(result))
        console.print(age_table(result))
        result.to_csv(out)
        console.print(f"comparison table written to {out}")
        if scores_out is not None:
            result.to_csv(scores_out, which="scores")
            console.print(f"scores by municipality written to {scores_out}")
        if official:
            import pandas as pd

            frame = pd.concat(
                [read_ssb_projection(path, panel) for path in official], ignore_index=True
            )
            compared = compare_official(result, frame)
            if compared.empty:
                err_console.print(
                    "[yellow]no official vintage starts in an origin year; nothing compared[/]"
                )
                return
            summary = summarise_scores(
                compared[compared["age_group"] == "total"], ("origin", "method", "horizon")
            )
            table = Table(title="Totals of the municipalities SSB's file covers")
            for column in ("origin", "method", "horizon", "n", "median_ape", "bias", "crps_pct"):
                table.add_column(column, justify="right")
            for row in summary.itertuples(index=False):
                table.add_row(
                    str(row.origin),
                    str(row.method),
                    str(row.horizon),
                    str(row.n),
                    _fmt(row.median_ape),
                    _fmt(row.bias),
                    _fmt(row.crps_pct),
                )
            console.print(table)
            path = out.with_name(out.stem + "_official.csv")
            write_csv_atomic(compared, path)
            skipped = compared.attrs.get("skipped_origins", [])
            console.print(
                f"official comparison written to {path}"
                + (f"; no vintage for origins {skipped}" if skipped else "")
            )
