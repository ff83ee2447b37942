"""``vekst simulate`` and ``vekst check-recovery``: Simulated Norway and recovery checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vekst.commands.ui import console


class YearRangeError(typer.BadParameter):
    """A ``--years`` value is not of the form ``2005-2021``."""


def parse_years(text: str) -> range:
    """Parse ``"2005-2021"`` (inclusive) into ``range(2005, 2022)``.

    Parameters
    ----------
    text
        ``FIRST-LAST`` calendar years of the flows, or a single year.

    Returns
    -------
    range
    """
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", text)
    if not match:
        raise YearRangeError(f"--years must look like 2005-2021, got {text!r}.")
    first = int(match[1])
    last = int(match[2] or match[1])
    if last < first:
        raise YearRangeError(f"--years {text}: the last year comes before the first.")
    return range(first, last + 1)


def parse_regions(values: list[str] | None) -> list[str] | None:
    """Region codes from repeated and/or comma-separated ``--regions`` values."""
    if not values:
        return None
    codes = [code.strip() for value in values for code in value.split(",") if code.strip()]
    return codes or None


def coverage_table(table, title: str | None = None) -> Table:
    """A rich table of :func:`vekst.recovery.check_recovery` output, Bayes and OLS side by side.

    Parameters
    ----------
    table
        The DataFrame returned by ``check_recovery``.
    title
        Table title.
    """
    import numpy as np

    levels = [c.split("_")[1] for c in table.columns if c.startswith("cover_")]
    widest = levels[-1]
    rich_table = Table(
        title=title or "Coverage of central intervals (share of true values inside)",
        caption=f"Bayes: posterior intervals; OLS: estimate +- z se. width: mean width of the "
        f"{widest} % interval; RMSE of the posterior mean / OLS estimate",
    )
    # Bayes and OLS on two rows, not side by side: twelve columns did not fit 80, and
    # rich cut the numbers. Values never wrap.
    rich_table.add_column("group", no_wrap=True)
    rich_table.add_column("method", no_wrap=True)
    rich_table.add_column("n", justify="right", no_wrap=True)
    for level in levels:
        rich_table.add_column(f"{level} %", justify="right", no_wrap=True)
    rich_table.add_column(f"width\n{widest} %", justify="right", no_wrap=True)
    rich_table.add_column("RMSE", justify="right", no_wrap=True)

    def fmt(row, column, digits=2):
        value = row[column]
        return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

    for group in dict.fromkeys(table["group"]):
        rows = table[table["group"] == group].set_index("method")
        present = [
            (method, label)
            for method, label in (("bayes", "Bayes"), ("ols", "OLS"))
            if method in rows.index
        ]
        for i, (method, label) in enumerate(present):
            row = rows.loc[method]
            rich_table.add_row(
                # escape(): "beta_mu[ds]" would otherwise be read as rich markup and vanish.
                escape(group) if i == 0 else "",
                label,
                str(int(row["n"])) if np.isfinite(row["n"]) else "-",
                *[fmt(row, f"cover_{level}") for level in levels],
                fmt(row, f"width_{widest}", 3),
                fmt(row, "rmse", 3),
                end_section=i == len(present) - 1,
            )
    return rich_table


def register(app: typer.Typer) -> None:
    """Add ``vekst simulate`` and ``vekst check-recovery``."""

    @app.command("simulate")
    def simulate_command(
        out: Annotated[Path, typer.Option(help="Where to write the panel and its truth (netCDF).")],
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same panel).")] = 0,
        years: Annotated[
            str, typer.Option(help="Flow years FIRST-LAST (stocks run to LAST+1).")
        ] = "2005-2021",
        regions: Annotated[
            list[str] | None,
            typer.Option(help="Region codes (repeat or comma-separate); default all."),
        ] = None,
    ) -> None:
        """Simulate a panel on Norway's real municipalities with known truth (Simulated Norway)."""
        from vekst.io import check_output_file
        from vekst.simulate import simulate_panel, write_simulated

        check_output_file(out)
        with console.status("simulating jobs, migration, births and deaths year by year"):
            panel, truth = simulate_panel(
                seed=seed, years=parse_years(years), regions=parse_regions(regions)
            )
            write_simulated(panel, truth, out)
        console.print(
            f"simulated {panel.sizes['municipality']} municipalities, stocks "
            f"{int(panel['year'].values[0])}-{int(panel['year'].values[-1])} (seed {seed}); "
            f"panel and truth (group 'truth') written to {out}"
        )

    @app.command("check-recovery")
    def check_recovery_command(
        replicates: Annotated[int, typer.Option(help="Number of simulated panels to fit.")] = 20,
        spec: Annotated[
            Path | None, typer.Option(help="Model spec (.toml); default models/vareide2022.toml.")
        ] = None,
        regions: Annotated[int, typer.Option(help="Labour-market regions per panel.")] = 6,
        draws: Annotated[int, typer.Option(help="Draws per chain after tuning.")] = 500,
        tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 500,
        chains: Annotated[int, typer.Option(help="Number of chains.")] = 2,
        seed: Annotated[int, typer.Option(help="Seed of the first replicate.")] = 0,
        by_covariate: Annotated[
            bool, typer.Option(help="Also show coefficients covariate by covariate.")
        ] = False,
        migration_only: Annotated[
            bool, typer.Option(help="Fit the migration block only (faster; no vital blocks).")
        ] = False,
        exchangeable_years: Annotated[
            bool,
            typer.Option(
                help="Check the spec with exchangeable years (no time structure), simulated "
                "as such; the time-structured default needs longer chains."
            ),
        ] = False,
        workers: Annotated[
            int,
            typer.Option(
                help="Run replicates as tasks on a Dask LocalCluster with this many workers "
                "(needs the 'dask' extra); 0 runs them one after another here."
            ),
        ] = 0,
        scheduler: Annotated[
            str | None,
            typer.Option(help="Address of an existing Dask scheduler to run the replicates on."),
        ] = None,
    ) -> None:
        """Fit simulated panels and print interval coverage per parameter group (Bayes vs OLS)."""
        from vekst.cluster import ClusterConfig, TaskRunner
        from vekst.models.spec import load_spec
        from vekst.recovery import check_recovery
        from vekst.recovery import exchangeable_years as with_exchangeable_years
        from vekst.recovery import migration_only as without_vital_blocks

        def report(r, result, seconds):
            d = result.diagnostics
            console.print(
                f"replicate {r + 1}/{replicates}: {seconds:.0f} s, max R-hat {d.rhat_max:.3f}, "
                f"{d.divergences} divergences"
            )

        runner = None
        if workers or scheduler:
            cluster = ClusterConfig(scheduler=scheduler, workers=workers or 2)
            # Progress comes from report(); the runner's log adds the failures.
            runner = TaskRunner(
                cluster=cluster,
                log=lambda line: console.print(line) if "FAILED" in line else None,
            )

        model_spec = load_spec(spec)
        if migration_only:
            model_spec = without_vital_blocks(model_spec)
        if exchangeable_years:
            model_spec = with_exchangeable_years(model_spec)
        table = check_recovery(
            replicates,
            spec=model_spec,
            by_covariate=by_covariate,
            regions=regions,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            on_replicate=report,
            runner=runner,
        )
        attrs = table.attrs
        for r, message in attrs.get("failed_replicates", {}).items():
            console.print(f"[red]replicate {r + 1}: task failed[/]: {message}")
        console.print(
            coverage_table(
                table,
                title=f"Recovery: {attrs['replicates']} replicates, spec {attrs['spec']}, "
                f"{attrs['municipalities']} municipalities in regions "
                f"{', '.join(attrs['regions'])}",
            )
        )
