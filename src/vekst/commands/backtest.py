"""``vekst backtest``: rolling-origin backtests of the forecast against the baselines.

One command runs the standard evidence (origins 2009-2018, horizons 1-4, every method) and
writes it to ``--out`` (see :func:`write_outputs`). Each finished origin is kept in
``<out>/backtest_origins`` at once, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vekst.commands.ui import console, err_console  # noqa: F401  (one console for all commands)

LEVELS = ("50", "80", "95")


def parse_origins(values: list[str] | None) -> list[int]:
    """Origin years from ``--origins 2012 2015``, ``--origins 2012,2015``, ``2009-2018``.

    Raises
    ------
    typer.BadParameter
        For a value that is not a year or a range of years.
    """
    years: list[int] = []
    for value in values or []:
        for part in str(value).replace(",", " ").split():
            first, _, last = part.partition("-")
            if not (first.isdigit() and len(first) == 4) or (
                last and not (last.isdigit() and len(last) == 4 and int(last) >= int(first))
            ):
                raise typer.BadParameter(
                    f"origin {part!r} is not a year or a range; use e.g. --origins 2012 2015 "
                    "or --origins 2009-2018."
                )
            years.extend(range(int(first), int(last or first) + 1))
    if not years:
        raise typer.BadParameter("give at least one origin year, e.g. --origins 2012 2015 2018.")
    return sorted(set(years))


def _fmt(value, digits: int = 2, pct: bool = False) -> str:
    if value is None or value != value:  # NaN
        return "-"
    return f"{100 * value:.0f}" if pct else f"{value:.{digits}f}"


def pooled_table(pooled, level: str = "municipality") -> Table:
    """Totals pooled over origins, by method and horizon: accuracy, calibration, sharpness."""
    rows = pooled[
        (pooled["level"] == level)
        & (pooled["size_class"] == "all")
        & (pooled["age_group"] == "total")
    ]
    table = Table(
        title=f"Backtest, {level} totals, all origins pooled (APE, bias, CRPS and interval "
        "score IS80 in % of the observed population; coverage of the 50/80/95 % bands in %)"
    )
    # Values never wrap or get cut: at 80 columns eleven columns cut them to "-0.…".
    table.add_column("method", no_wrap=True)
    for column in ("h", "n", "MdAPE", "MAPE", "bias", "CRPS", "IS80"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("coverage\n50/80/95", justify="right", no_wrap=True)
    for row in rows.itertuples(index=False):
        data = row._asdict()
        coverage = [data.get(f"coverage_{lv}") for lv in LEVELS]
        table.add_row(
            str(row.method),
            str(row.horizon),
            str(row.n),
            _fmt(row.median_ape),
            _fmt(row.mean_ape),
            _fmt(row.bias),
            _fmt(row.crps_pct),
            _fmt(data.get("interval_score_pct_80")),
            "/".join(_fmt(c, pct=True) for c in coverage)
            if any(_fmt(c) != "-" for c in coverage)
            else "-",
        )
    return table


def size_table(pooled, method: str = "bayes") -> Table:
    """Coverage of the 50/80/95 % bands of municipal totals by horizon and size class."""
    from vekst.evaluate import SIZE_CLASSES

    rows = pooled[
        (pooled["method"] == method)
        & (pooled["level"] == "municipality")
        & (pooled["age_group"] == "total")
    ]
    table = Table(title=f"{method}: coverage of municipal totals (50/80/95 %) by size class")
    table.add_column("h", justify="right")
    classes = [label for label, _ in SIZE_CLASSES] + ["all"]
    for label in classes:
        table.add_column(label, justify="right")
    for horizon, by_h in rows.groupby("horizon"):
        cells = []
        for label in classes:
            hit = by_h[by_h["size_class"] == label]
            if hit.empty:
                cells.append("-")
                continue
            hit = hit.iloc[0]
            cells.append("/".join(_fmt(hit.get(f"coverage_{lv}"), pct=True) for lv in LEVELS))
        table.add_row(str(horizon), *cells)
    return table


def age_table(pooled) -> Table:
    """Median APE (bias) of every method by planner age group at the last horizon."""
    last = int(pooled["horizon"].max())
    rows = pooled[
        (pooled["horizon"] == last)
        & (pooled["level"] == "municipality")
        & (pooled["size_class"] == "all")
    ]
    methods = list(dict.fromkeys(rows["method"]))
    with_bands = [
        method
        for method in methods
        if "coverage_80" in rows and rows.loc[rows["method"] == method, "coverage_80"].notna().any()
    ]
    table = Table(
        title=f"Age groups at h{last}, all origins pooled: median APE % (bias % below); "
        "coverage of the 80 % bands in %"
    )
    # One value per line and never cut: at 80 columns "(0.0; 81)" broke over two lines
    # and "no_migration" became "no_migr…".
    table.add_column("age\ngroup", no_wrap=True)
    for method in methods:
        table.add_column(method.replace("_", "\n"), justify="right", no_wrap=True)
    for method in with_bands:
        table.add_column(f"{method}\n80 %", justify="right", no_wrap=True)
    for group in dict.fromkeys(rows["age_group"]):
        hits = {
            method: rows[(rows["age_group"] == group) & (rows["method"] == method)].iloc[0]
            for method in methods
        }
        cells = [f"{_fmt(hit['median_ape'])}\n({_fmt(hit['bias'], 1)})" for hit in hits.values()]
        cells += [_fmt(hits[method]["coverage_80"], pct=True) for method in with_bands]
        table.add_row(str(group), *cells)
    return table


def notes_lines(result) -> list[str]:
    """One line per origin: spec and why, fit diagnostics and gate, failures."""
    lines = []
    for origin, note in result.notes.items():
        if "task_failed" in note:
            continue
        parts = [f"[bold]{origin}[/]: {note.get('spec', 'no model fitted')}"]
        if "fit_years" in note:
            parts.append(f"fit on flows {note['fit_years'][0]}-{note['fit_years'][1]}")
        diagnostics = note.get("diagnostics")
        if diagnostics:
            gate = (
                "[green]passed[/]"
                if note.get("converged")
                else ("[red]FAILED[/] (" + "; ".join(diagnostics.get("problems", [])) + ")")
            )
            if "first_fit" in note:
                first = note["first_fit"]["diagnostics"].get("problems", [])
                refit = note.get("refit_sampler", {})
                gate += (
                    f" at the second fit ({refit.get('draws')} draws, target acceptance "
                    f"{refit.get('target_accept')}; the first failed: {'; '.join(first)})"
                )
            parts.append(f"convergence gate {gate}")
        for method, message in note.get("failed", {}).items():
            parts.append(f"[red]{method} failed[/]: {message}")
        parts.append(f"timings (s) {note.get('timings_s', {})}")
        lines.append("; ".join(parts))
    return lines


def write_outputs(result, out: Path, panel=None) -> dict[str, Path]:
    """Write the table, the pooled table, the diagnostics and the notes into ``out``.

    Files: ``backtest_table.csv`` (per origin, long format), ``backtest_pooled.csv``
    (origins pooled), ``backtest_variance.csv`` (predictive variance by origin, method,
    level and horizon) with ``backtest_variance_growth.csv`` (exponents),
    ``backtest_rescaling.csv`` (diagnostic only), ``backtest_headline.md`` (the headline
    with the targets met or missed, :func:`vekst.evaluate.headline.headline_markdown`) and
    ``backtest_notes.json``. Given the observed ``panel``, also
    ``backtest_chance_floor.csv``: the median APE that chance births and deaths alone
    cost a forecaster who knew every rate (:func:`vekst.evaluate.chance.chance_floor`),
    shown beside the age groups in the headline. With the Bayesian method and a baseline
    scored, also ``backtest_paired.csv``: by horizon and age group, the difference in
    median APE from the best baseline with a 90 % interval from resampling municipalities
    (:func:`vekst.evaluate.paired.best_baseline_comparison`), in the headline too.
    """
    from vekst.evaluate import rescaling_factors, variance_growth
    from vekst.evaluate.result import write_csv_atomic
    from vekst.evaluate.store import write_json_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": result.to_csv(out / "backtest_table.csv"),
        "pooled": write_csv_atomic(result.table(pooled=True), out / "backtest_pooled.csv"),
        "variance": write_csv_atomic(result.variance, out / "backtest_variance.csv"),
        "growth": write_csv_atomic(
            variance_growth(result.variance), out / "backtest_variance_growth.csv"
        ),
        "rescaling": write_csv_atomic(
            rescaling_factors(result.scores), out / "backtest_rescaling.csv"
        ),
    }
    from vekst.evaluate.headline import headline_markdown

    pooled = result.table(pooled=True)
    floor = None
    if panel is not None:
        floor = _chance_floor(result, panel)
        if floor is not None:
            paths["chance_floor"] = write_csv_atomic(floor, out / "backtest_chance_floor.csv")
    paired = _paired(result)
    if paired is not None:
        paths["paired"] = write_csv_atomic(paired, out / "backtest_paired.csv")
    headline = headline_markdown(
        pooled,
        variance_growth(result.variance),
        notes=result.notes,
        floor=floor,
        paired=paired,
        per_origin=result.table(),
    )
    write_text_atomic(headline + "\n", out / "backtest_headline.md")
    paths["headline"] = out / "backtest_headline.md"
    notes = {"settings": result.settings, "origins": {str(o): n for o, n in result.notes.items()}}
    write_json_atomic(notes, out / "backtest_notes.json")
    paths["notes"] = out / "backtest_notes.json"
    return paths


def _paired(result, method: str = "bayes"):
    """``method`` against the best baseline at every horizon, or ``None`` when the run
    scored no such pair (one method only, or ``method`` not run)."""
    from vekst.evaluate.paired import best_baseline_comparison

    scores = result.scores
    methods = set(scores["method"].unique()) if not scores.empty else set()
    if method not in methods or len(methods) < 2:
        return None
    horizons = sorted(int(h) for h in scores["horizon"].unique())
    return best_baseline_comparison(scores, method, horizons=horizons)


def _chance_floor(result, panel):
    """The chance floor for the result's origins and horizons, or ``None`` (with the
    reason printed) where the panel lacks what it needs."""
    from vekst.errors import PanelError
    from vekst.evaluate.chance import chance_floor

    origins = sorted(int(o) for o in result.notes)
    horizons = sorted(int(h) for h in result.scores["horizon"].unique())
    try:
        return chance_floor(panel, origins, horizons)
    except (PanelError, KeyError) as error:
        console.print(f"[yellow]chance floor not computed[/]: {error}")
        return None


def print_diagnostics(result) -> None:
    """Variance growth by horizon and the rescaling a band would need (diagnostic only)."""
    from vekst.evaluate import rescaling_factors, variance_growth

    if result.variance.empty:
        return
    growth = variance_growth(result.variance)
    pooled = growth[growth["origin"] == "pooled"]
    spread = result.variance.groupby(["method", "level", "horizon"])["median_relative_sd"].median()
    for row in pooled.itertuples(index=False):
        sds = spread.loc[(row.method, row.level)]
        verdict = "faster than linear" if row.exponent > 1 else "[red]not faster than linear[/]"
        console.print(
            f"{row.method}, {row.level} totals: predictive variance ~ h^{row.exponent:.2f} "
            f"({verdict}); median sd by horizon "
            + ", ".join(f"h{h}: {v:.2f} %" for h, v in sds.items())
        )
    factors = rescaling_factors(result.scores)
    if not factors.empty:
        table = Table(
            title="Diagnostic only (not applied): factor on the 80 % half-widths that would "
            "give 80 % coverage, by horizon x size class"
        )
        eighty = factors[factors["level"] == 0.8]
        classes = list(dict.fromkeys(eighty["size_class"]))
        table.add_column("h", justify="right")
        for label in classes:
            table.add_column(label, justify="right")
        for horizon, rows in eighty.groupby("horizon"):
            values = rows.set_index("size_class")["scale"]
            table.add_row(str(horizon), *[_fmt(values.get(c)) for c in classes])
        console.print(table)


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
                "--origins",
                help="Origin years (1 January jump-off), e.g. 2012 2015 or 2009-2018 "
                "(default: every year 2009-2018).",
            ),
        ] = None,
        horizon: Annotated[int, typer.Option(help="Years ahead to score.")] = 4,
        draws: Annotated[int, typer.Option(help="Posterior draws per chain of each fit.")] = 1500,
        tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
        chains: Annotated[int, typer.Option(help="Chains per fit.")] = 4,
        target_accept: Annotated[
            float, typer.Option(min=0.5, max=0.999, help="NUTS target acceptance of each fit.")
        ] = 0.95,
        refit_unconverged: Annotated[
            bool,
            typer.Option(
                help="Fit an origin once more when its fit fails the convergence gate "
                "(twice the draws after a high R-hat or low ESS, target acceptance 0.99 "
                "after divergences)."
            ),
        ] = True,
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
        ] = "bayes,ols,naive5,naive10,ccm5,no_migration",
        seed: Annotated[
            int, typer.Option(help="Seed of the run (each origin derives its own).")
        ] = 20240101,
        out: Annotated[
            Path, typer.Option(help="Folder for the tables, diagnostics and notes.")
        ] = Path("backtest"),
        store: Annotated[
            Path | None,
            typer.Option(
                help="Folder keeping each finished origin (resume); default <out>/backtest_origins."
            ),
        ] = None,
        resume: Annotated[
            bool, typer.Option(help="Reuse finished origins with the same settings and data.")
        ] = True,
        scores_out: Annotated[
            Path | None,
            typer.Option(help="CSV of every scored unit, year and age group."),
        ] = None,
        workers: Annotated[
            int,
            typer.Option(
                help="Run origins as tasks on a Dask LocalCluster with this many workers "
                "(needs the 'dask' extra); 0 runs them one after another here."
            ),
        ] = 0,
        scheduler: Annotated[
            str | None,
            typer.Option(help="Address of an existing Dask scheduler to run the origins on."),
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
        from vekst.evaluate import DEFAULT_ORIGINS, BacktestConfig, BacktestError, backtest

        years = (
            parse_origins([*(origins or []), *(more_origins or [])])
            if (origins or more_origins)
            else list(DEFAULT_ORIGINS)
        )
        chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
        try:
            config = BacktestConfig(
                origins=tuple(years),
                horizon=horizon,
                methods=chosen,
                spec=spec,
                draws=draws,
                tune=tune,
                chains=chains,
                target_accept=target_accept,
                refit_unconverged=refit_unconverged,
                n_draws=projection_draws,
                seed=seed,
            )
        except BacktestError as error:
            raise typer.BadParameter(str(error)) from error
        panel = load_default()
        folder = (store or out / "backtest_origins") if resume else None
        console.print(
            f"backtest origins {years}, horizons 1-{horizon}, methods {list(chosen)}; fits: "
            f"{chains} chains x {draws} draws (+{tune} tuning, target acceptance "
            f"{target_accept}{'; refit once if the gate fails' if refit_unconverged else ''}), "
            f"{projection_draws} projected "
            f"draws; finished origins kept in {folder or '(nowhere: --no-resume)'}"
        )
        if workers or scheduler:
            from vekst.evaluate.distributed import ClusterConfig, backtest_distributed

            try:
                result = backtest_distributed(
                    panel,
                    config,
                    store=folder,
                    cluster=ClusterConfig(scheduler=scheduler, workers=workers or 2),
                    log=console.print,
                )
            except BacktestError as error:
                console.print(f"[red]{error}[/]")
                raise typer.Exit(1) from error
        else:
            with console.status("running backtests") as status:
                result = backtest(
                    panel, config, store=folder, log=lambda message: status.update(message)
                )
        for origin in result.settings.get("failed_origins", []):
            console.print(
                f"[red]origin {origin}: task failed[/]: {result.notes[origin]['task_failed']}"
            )
        for line in notes_lines(result):
            console.print(line)
        failed = [o for o, ok in result.converged().items() if ok is False]
        if failed:
            console.print(
                f"[red]the Bayesian fit failed the convergence gate at origins {failed}[/]: "
                "their rows are kept and marked converged=False in the table"
            )
        pooled = result.table(pooled=True)
        console.print(pooled_table(pooled))
        for level in ("county", "region"):
            if (pooled["level"] == level).any():
                console.print(pooled_table(pooled, level))
        if (pooled["method"] == "bayes").any():
            console.print(size_table(pooled))
        console.print(age_table(pooled))
        print_diagnostics(result)
        paths = write_outputs(result, out, panel)
        console.print(f"tables, diagnostics and notes written to {out}: {sorted(paths)}")
        if scores_out is not None:
            result.to_csv(scores_out, which="scores")
            console.print(f"scores by unit written to {scores_out}")
        if official:
            _compare_official(result, panel, official, out)


def _compare_official(result, panel, official: list[Path], out: Path) -> None:
    import pandas as pd

    from vekst.evaluate import compare_official, read_ssb_projection
    from vekst.evaluate.metrics import summarise_scores
    from vekst.evaluate.result import write_csv_atomic

    frame = pd.concat([read_ssb_projection(path, panel) for path in official], ignore_index=True)
    compared = compare_official(result, frame)
    if compared.empty:
        console.print(
            "[yellow]no official vintage starts in an origin run here; nothing compared[/]"
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
    path = write_csv_atomic(compared, out / "backtest_official.csv")
    skipped = compared.attrs.get("skipped_origins", [])
    console.print(
        f"official comparison written to {path}"
        + (f"; no vintage for origins {skipped}" if skipped else "")
        + " (origins read back from the store have no draws and are not compared)"
    )
