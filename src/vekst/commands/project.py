"""``vekst project``: posterior-predictive population projections from a saved fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vekst.errors import EXIT_NOT_CONVERGED, FitError, UsageError, VekstError

console = Console()

#: Values of ``--detail``.
DETAILS: tuple[str, ...] = ("auto", "full", "age_groups", "totals")


def national_table(projection, every: int = 5) -> Table:
    """National population: median and 80 % / 95 % bands, every ``every`` years."""
    from vekst.projection.outputs import aggregate

    frame = aggregate(projection, "nation")
    place = str(frame["name"].iloc[0]) if len(frame) else "Norway"
    table = Table(title=f"{place}, population on 1 January (draws summed, then quantiles)")
    table.add_column("year", justify="right")
    table.add_column("median", justify="right")
    table.add_column("80 % band", justify="right")
    table.add_column("95 % band", justify="right")
    years = frame["year"].to_numpy()
    for _, row in frame.iterrows():
        year = int(row["year"])
        if (year - int(years[0])) % every and year != int(years[-1]):
            continue
        table.add_row(
            str(year),
            f"{row['q50']:,.0f}",
            f"{row['q10']:,.0f} - {row['q90']:,.0f}",
            f"{row['q025']:,.0f} - {row['q975']:,.0f}",
        )
    return table


def run_project(
    fit: Path,
    out: Path,
    *,
    end_year: int = 2040,
    draws: int | None = 1000,
    scenario_file: Path | None = None,
    panel_file: Path | None = None,
    base_year: int | None = None,
    seed: int = 0,
    chunk_size: int = 10,
    detail: str = "auto",
    allow_unconverged: bool = False,
):
    """Load a fit, apply the convergence gate, project and write the outputs.

    Returns
    -------
    (xarray.Dataset, dict)
        The projection and the files written.
    """
    from vekst import load_default
    from vekst.data.panel import load_panel
    from vekst.fit import check_fit_panel, load_fit, projection_draws, require_converged
    from vekst.io import check_output_folder
    from vekst.projection import load_scenario, project, write_outputs
    from vekst.projection.outputs import OUTPUT_FILES

    # Inputs and the output folder are checked before the (long) projection starts.
    check_output_folder(out, known=OUTPUT_FILES)
    if draws is not None and draws < 1:
        raise UsageError(f"--draws must be at least 1, not {draws}.")
    if chunk_size < 1:
        raise UsageError(f"--chunk-size must be at least 1, not {chunk_size}.")
    if detail not in DETAILS:
        raise UsageError(f"--detail must be one of {', '.join(DETAILS)}, not {detail!r}.")
    panel = load_default() if panel_file is None else load_panel(panel_file)
    scenario = load_scenario(scenario_file) if scenario_file is not None else None
    try:
        loaded = load_fit(fit)
    except FileNotFoundError as error:
        raise FitError(f"--fit {fit} not found; create a fit with `vekst fit --out`.") from error
    except OSError as error:
        if isinstance(error, VekstError):
            raise
        # h5py's messages do not name the file; say which one and what to do.
        raise FitError(
            f"--fit {fit}: cannot read the fit ({getattr(error, 'strerror', None) or error}); "
            "it was cut short (an interrupted `vekst fit`?) or is not a fit. Refit with "
            "`vekst fit --out`."
        ) from error
    idata = loaded.idata
    check_fit_panel(loaded, panel)
    diagnostics = require_converged(idata, allow_unconverged=allow_unconverged)
    converged = bool(getattr(diagnostics, "converged", True))
    if not converged:
        console.print(
            "[yellow]warning: the fit did not converge[/] ("
            + "; ".join(getattr(diagnostics, "problems", ()))
            + "); projecting anyway because --allow-unconverged was given. The outputs are "
            "flagged (attribute converged = 'no')."
        )
    posterior = projection_draws(idata, n_draws=draws, seed=seed)
    with console.status(f"projecting {posterior.sizes['draw']} draws to {end_year}"):
        projection = project(
            panel,
            posterior,
            scenario=scenario,
            base_year=base_year,
            end_year=end_year,
            seed=seed,
            chunk_size=chunk_size,
            detail=detail,
        )
    projection.attrs["fit_file"] = str(fit)
    projection.attrs["converged"] = "yes" if converged else "no"
    with console.status(f"writing {out}"):
        written = write_outputs(projection, out)
    return projection, written


def register(app: typer.Typer) -> None:
    """Add ``vekst project``."""

    @app.command("project")
    def project_command(
        fit: Annotated[Path, typer.Option("--fit", help="A fit written by `vekst fit --out`.")],
        out: Annotated[
            Path, typer.Option("--out", help="Folder for projection.nc and the CSVs.")
        ],
        end_year: Annotated[
            int, typer.Option("--end-year", help="Last 1 January projected.")
        ] = 2040,
        draws: Annotated[
            int, typer.Option("--draws", help="Posterior draws to project (a random subset).")
        ] = 1000,
        scenario: Annotated[
            Path | None,
            typer.Option(
                "--scenario",
                help="Scenario: .json/.toml, or a job-growth .csv with columns "
                "municipality_or_region,year,relative_job_growth.",
            ),
        ] = None,
        panel: Annotated[
            Path | None,
            typer.Option("--panel", help="Panel netCDF the fit was made on; default: embedded."),
        ] = None,
        base_year: Annotated[
            int | None,
            typer.Option("--base-year", help="Starting stock year; default the panel's last."),
        ] = None,
        seed: Annotated[
            int, typer.Option("--seed", help="Seed of the draw subset and the shocks.")
        ] = 0,
        chunk_size: Annotated[
            int, typer.Option("--chunk-size", help="Draws per kernel chunk.")
        ] = 10,
        detail: Annotated[
            str,
            typer.Option(
                "--detail", help="full (single ages), age_groups, totals, or auto (full < 2 GiB)."
            ),
        ] = "auto",
        allow_unconverged: Annotated[
            bool,
            typer.Option(
                "--allow-unconverged",
                help="Project from a fit that failed the convergence gate (outputs flagged).",
            ),
        ] = False,
    ) -> None:
        """Project every municipality's population by age and sex with posterior bands."""
        from vekst.fit import NotConvergedError

        try:
            projection, written = run_project(
                fit,
                out,
                end_year=end_year,
                draws=draws,
                scenario_file=scenario,
                panel_file=panel,
                base_year=base_year,
                seed=seed,
                chunk_size=chunk_size,
                detail=detail,
                allow_unconverged=allow_unconverged,
            )
        except NotConvergedError as error:
            # Looked up on vekst.fit at call time; other errors go to the CLI's boundary.
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=EXIT_NOT_CONVERGED) from None
        console.print(national_table(projection))
        for label, path in written.items():
            console.print(f"wrote {label}: {path}")
