"""``vekst project``: posterior-predictive population projections from a saved fit."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vekst.commands.ui import DEFAULT_PROJECTION_DRAWS, console, err_console, step
from vekst.errors import EXIT_NOT_CONVERGED, FitError, UsageError, VekstError


class Detail(enum.StrEnum):
    """What the projection keeps by age."""

    auto = "auto"
    full = "full"
    age_groups = "age_groups"
    totals = "totals"


class CsvFormat(enum.StrEnum):
    """Separator and decimal mark of the CSV files."""

    nb = "nb"
    en = "en"

class OutputFormat(enum.StrEnum):
    """File format of the projection itself."""

    netcdf = "netcdf"
    zarr = "zarr"


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


@dataclass
class ProjectSettings:
    """Settings of :func:`run_project` (the options of ``vekst project``).

    Attributes
    ----------
    end_year
        Last 1 January projected.
    draws
        Posterior draws to project (a random subset); ``None`` for all.
    scenario_file
        Scenario file (.json/.toml or a job-growth .csv), or ``None`` for the baseline.
    panel_file
        Panel netCDF the fit was made on; ``None`` for the embedded data.
    base_year
        Starting stock year; ``None`` for the panel's last.
    seed
        Seed of the draw subset and the shocks.
    chunk_size
        Draws per kernel chunk.
    detail
        ``auto``, ``full``, ``age_groups`` or ``totals``.
    allow_unconverged
        Project from a fit that failed the convergence gate (outputs flagged).
    csv_format
        ``en`` (``,`` and ``.``) or ``nb`` (``;`` and decimal comma).
    output_format
        ``netcdf`` (``projection.nc``, in memory) or ``zarr`` (``projection.zarr``,
        written draw chunk by draw chunk: single ages for any number of draws).
    by_source_draws
        Draws of the variance-by-source runs (one per source, common random numbers;
        :func:`vekst.uncertainty.uncertainty_by_source`); 0 leaves them out.
    """

    end_year: int = 2040
    draws: int | None = DEFAULT_PROJECTION_DRAWS
    scenario_file: Path | None = None
    panel_file: Path | None = None
    base_year: int | None = None
    seed: int = 0
    chunk_size: int = 10
    detail: str = "auto"
    allow_unconverged: bool = False
    csv_format: str = "en"
    output_format: str = "netcdf"
    by_source_draws: int = 0


def run_project(fit: Path, out: Path, settings: ProjectSettings | None = None):
    """Load a fit, apply the convergence gate, project and write the outputs.

    Parameters
    ----------
    fit
        A fit written by ``vekst fit``.
    out
        Folder for ``projection.nc`` and the CSV files.
    settings
        What to project and how; default :class:`ProjectSettings`.

    Returns
    -------
    (xarray.Dataset, dict)
        The projection and the files written.
    """
    from vekst.io import check_output_folder
    from vekst.projection import load_scenario, project, write_projection_files
    from vekst.projection.outputs import OUTPUT_FILES, CsvStyle

    settings = settings or ProjectSettings()
    # Inputs and the output folder are checked before the (long) projection starts.
    check_output_folder(out, known=OUTPUT_FILES)
    _check_settings(settings)
    scenario = None
    if settings.scenario_file is not None:
        scenario = load_scenario(settings.scenario_file)
    panel, posterior, converged = _load_inputs(fit, settings)
    options = {
        "scenario": scenario,
        "base_year": settings.base_year,
        "end_year": settings.end_year,
        "seed": settings.seed,
        "chunk_size": settings.chunk_size,
        "detail": settings.detail,
    }
    attrs = {"fit_file": str(fit), "converged": "yes" if converged else "no"}
    csv_style = CsvStyle.named(str(settings.csv_format))
    if settings.output_format == "zarr":
        projection, written = _project_zarr(panel, posterior, out, options, attrs, csv_style)
    else:
        with step(f"projecting {posterior.sizes['draw']} draws to {settings.end_year}"):
            projection = project(panel, posterior, **options)
        projection.attrs.update(attrs)
        with step(f"writing {out}"):
            written = write_projection_files(projection, out, csv_style=csv_style)
    if settings.by_source_draws > 0:
        written.update(_write_uncertainty(panel, posterior, scenario, out, settings))
    return projection, written


def _load_inputs(fit: Path, settings: ProjectSettings):
    """The panel, the posterior draws to project and whether the fit converged.

    Raises
    ------
    FitError
        If the fit is missing or unreadable; ``NotConvergedError`` from the gate.
    """
    from vekst import load_default
    from vekst.data.panel import load_panel
    from vekst.fit import check_fit_panel, load_fit, projection_draws, require_converged

    panel = load_default() if settings.panel_file is None else load_panel(settings.panel_file)
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
    diagnostics = require_converged(idata, allow_unconverged=settings.allow_unconverged)
    converged = bool(getattr(diagnostics, "converged", True))
    if not converged:
        err_console.print(
            "[yellow]warning: the fit did not converge[/] ("
            + "; ".join(getattr(diagnostics, "problems", ()))
            + "); projecting anyway because --allow-unconverged was given. The outputs are "
            "flagged (attribute converged = 'no')."
        )
    posterior = projection_draws(idata, n_draws=settings.draws, seed=settings.seed)
    return panel, posterior, converged


def _check_settings(settings: ProjectSettings) -> None:
    """Refuse impossible settings before anything is loaded."""
    if settings.draws is not None and settings.draws < 1:
        raise UsageError(f"--draws must be at least 1, not {settings.draws}.")
    if settings.by_source_draws < 0:
        raise UsageError(f"--by-source must be 0 (off) or more, not {settings.by_source_draws}.")
    if settings.chunk_size < 1:
        raise UsageError(f"--chunk-size must be at least 1, not {settings.chunk_size}.")
    if settings.detail not in DETAILS:
        raise UsageError(
            f"--detail must be one of {', '.join(DETAILS)}, not {settings.detail!r}."
        )
    if settings.output_format not in ("netcdf", "zarr"):
        raise UsageError(f"--format must be netcdf or zarr, not {settings.output_format!r}.")
    if settings.output_format == "zarr":
        from vekst.projection.zarr_store import require_zarr

        require_zarr()  # before the fit is loaded, not after the projection


def run_project_ensemble(
    fit: Path,
    out: Path,
    scenario_files: list[Path],
    settings: ProjectSettings | None = None,
    runner=None,
):
    """Project one fit under several scenarios, one task each (on Dask with ``runner``).

    Each scenario's files go to ``out/<scenario file stem>/`` (the same files as
    :func:`run_project`). All scenarios use ``settings.seed``: common random numbers, so
    differences between them are the scenarios' (:mod:`vekst.projection.ensemble`).

    Parameters
    ----------
    fit, settings
        As :func:`run_project` (netCDF output; no variance by source).
    out
        Parent folder of the scenarios' folders.
    scenario_files
        Scenario files; their stems name the folders and must differ.
    runner
        A :class:`vekst.cluster.TaskRunner`, or ``None`` to run them here in turn.

    Returns
    -------
    (ScenarioEnsemble, dict)
        The projections and failures by scenario, and ``{stem: files written}``.
    """
    from vekst.io import check_output_folder
    from vekst.projection import ProjectionOptions, load_scenario, write_projection_files
    from vekst.projection.ensemble import project_scenarios
    from vekst.projection.outputs import OUTPUT_FILES, CsvStyle

    settings = settings or ProjectSettings()
    if settings.output_format != "netcdf" or settings.by_source_draws:
        raise UsageError(
            "several --scenario files write netCDF projections without --by-source; run "
            "`vekst project` once per scenario for Zarr stores or the split by source."
        )
    stems = [Path(f).stem for f in scenario_files]
    if len(set(stems)) != len(stems):
        raise UsageError(
            f"--scenario files {[str(f) for f in scenario_files]} share a file name; their "
            "names become the output folders, so rename one."
        )
    _check_settings(settings)
    for stem in stems:
        check_output_folder(out / stem, known=OUTPUT_FILES)
    scenarios = {stem: load_scenario(f) for stem, f in zip(stems, scenario_files, strict=True)}
    panel, posterior, converged = _load_inputs(fit, settings)
    options = ProjectionOptions(
        base_year=settings.base_year,
        end_year=settings.end_year,
        seed=settings.seed,
        chunk_size=settings.chunk_size,
        detail=settings.detail,
    )
    with step(f"projecting {posterior.sizes['draw']} draws under {len(stems)} scenarios"):
        ensemble = project_scenarios(panel, posterior, scenarios, options, runner=runner)
    attrs = {"fit_file": str(fit), "converged": "yes" if converged else "no"}
    written = {}
    for stem, projection in ensemble.projections.items():
        projection.attrs.update(attrs)
        with step(f"writing {out / stem}"):
            written[stem] = write_projection_files(
                projection, out / stem, csv_style=CsvStyle.named(str(settings.csv_format))
            )
    return ensemble, written


def _project_zarr(panel, posterior, out: Path, options: dict, attrs: dict, csv_style):
    """Project into a Zarr store beside ``out``, summarise it lazily, move it into ``out``.

    The store is built as a hidden sibling of ``out`` and moved into the output folder
    with the summaries, all at once, so an interrupted run leaves ``out`` as it was.
    """
    import shutil

    from vekst.projection import write_projection_files
    from vekst.projection.zarr_store import open_projection, project_to_zarr

    staging = out.absolute().parent / f".{out.name}.projection.zarr"
    try:
        with step(
            f"projecting {posterior.sizes['draw']} draws to {options['end_year']} into Zarr"
        ):
            projection = project_to_zarr(panel, posterior, staging, attrs=attrs, **options)
        with step(f"summarising and writing {out}"):
            written = write_projection_files(
                projection, out, csv_style=csv_style, zarr_store=staging
            )
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return open_projection(written["projection"]), written


def _write_uncertainty(panel, posterior, scenario, out: Path, settings: ProjectSettings) -> dict:
    """Variance by source next to the projection: netCDF (for the report) and CSV."""
    from vekst.io import atomic_write
    from vekst.projection.outputs import (
        UNCERTAINTY_FILE,
        UNCERTAINTY_TABLE,
        CsvStyle,
        frame_to_csv,
    )
    from vekst.projection.sources import SOURCES
    from vekst.uncertainty import shown_years, uncertainty_by_source, uncertainty_table

    n_draws = min(settings.by_source_draws, posterior.sizes["draw"])
    with step(f"splitting the bands by source ({len(SOURCES) + 1} runs of {n_draws} draws)"):
        attribution = uncertainty_by_source(
            panel,
            posterior,
            n_draws=n_draws,
            seed=settings.seed,
            scenario=scenario,
            base_year=settings.base_year,
            end_year=settings.end_year,
            chunk_size=settings.chunk_size,
        )
    netcdf = atomic_write(
        out / UNCERTAINTY_FILE, lambda tmp: attribution.to_netcdf(tmp, engine="h5netcdf")
    )
    # The CSV keeps the planners' years (all years are in the netCDF): every year would
    # be 585,000 rows nationally, near Excel's limit.
    years = [int(y) for y in attribution["year"].values]
    table = uncertainty_table(attribution, years=shown_years(years[0], years[-1]))
    csv = frame_to_csv(
        table.round({"sd": 1, "share": 4, "contribution_sd": 1}),
        out / UNCERTAINTY_TABLE,
        CsvStyle.named(str(settings.csv_format)),
    )
    return {"uncertainty by source": netcdf, "uncertainty by source (table)": csv}


def register(app: typer.Typer) -> None:
    """Add ``vekst project``."""

    @app.command("project")
    def project_command(
        fit: Annotated[
            Path,
            typer.Option(
                "--fit", dir_okay=False, help="A fit written by `vekst fit --out`."
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", help="Folder for projection.nc and the CSVs.")
        ],
        end_year: Annotated[
            int, typer.Option("--end-year", help="Last 1 January projected.")
        ] = 2040,
        draws: Annotated[
            int,
            typer.Option(
                "--draws",
                help="Posterior draws to project (a random subset; the same default as "
                "`vekst demo`, which keeps single-year ages).",
            ),
        ] = DEFAULT_PROJECTION_DRAWS,
        scenario: Annotated[
            list[Path] | None,
            typer.Option(
                "--scenario",
                help="Scenario: .json/.toml, or a job-growth .csv with columns "
                "municipality_or_region, year, relative_job_growth. Repeat for an ensemble: "
                "each scenario's files go to OUT/<file stem>/.",
            ),
        ] = None,
        panel: Annotated[
            Path | None,
            typer.Option(
                "--panel",
                dir_okay=False,
                help="Panel netCDF the fit was made on; default: embedded.",
            ),
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
            Detail,
            typer.Option(
                "--detail",
                help="full (single ages), age_groups, totals, or auto (full < 2 GiB; "
                "always full with --format zarr).",
            ),
        ] = Detail.auto,
        csv_format: Annotated[
            CsvFormat,
            typer.Option(
                "--csv",
                help="CSV style: nb (';' and decimal comma, for Excel with Norwegian "
                "settings) or en (',' and '.'). Both are UTF-8 with a BOM.",
            ),
        ] = CsvFormat.en,
        output_format: Annotated[
            OutputFormat,
            typer.Option(
                "--format",
                help="netcdf (projection.nc, held in memory) or zarr (projection.zarr, "
                "written as it is computed: single ages for 1000 draws; needs the 'zarr' "
                "extra).",
            ),
        ] = OutputFormat.netcdf,
        allow_unconverged: Annotated[
            bool,
            typer.Option(
                "--allow-unconverged",
                help="Project from a fit that failed the convergence gate (outputs flagged).",
            ),
        ] = False,
        by_source: Annotated[
            int,
            typer.Option(
                "--by-source",
                help="Split each band's variance by source, this many draws per run (7 "
                "runs; 0 = off).",
            ),
        ] = 0,
        workers: Annotated[
            int,
            typer.Option(
                help="Run several --scenario files as tasks on a Dask LocalCluster with this "
                "many workers (needs the 'dask' extra); 0 runs them one after another."
            ),
        ] = 0,
        scheduler: Annotated[
            str | None,
            typer.Option(help="Address of an existing Dask scheduler to run the scenarios on."),
        ] = None,
    ) -> None:
        """Project every municipality's population by age and sex with posterior bands."""
        from vekst.fit import NotConvergedError

        scenarios = list(scenario or [])
        if (workers or scheduler) and len(scenarios) < 2:
            raise UsageError(
                "--workers/--scheduler run several --scenario files as tasks; give two or "
                "more (one projection runs here)."
            )
        try:
            settings = ProjectSettings(
                end_year=end_year,
                draws=draws,
                scenario_file=scenarios[0] if scenarios else None,
                panel_file=panel,
                base_year=base_year,
                seed=seed,
                chunk_size=chunk_size,
                detail=str(detail),
                allow_unconverged=allow_unconverged,
                csv_format=str(csv_format),
                output_format=str(output_format),
                by_source_draws=by_source,
            )
            if len(scenarios) > 1:
                _ensemble_command(fit, out, scenarios, settings, workers, scheduler)
                return
            projection, written = run_project(fit, out, settings)
        except NotConvergedError as error:
            # Looked up on vekst.fit at call time; other errors go to the CLI's boundary.
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=EXIT_NOT_CONVERGED) from None
        console.print(national_table(projection))
        for label, path in written.items():
            console.print(f"wrote {label}: {path}")


def _ensemble_command(fit, out, scenarios, settings, workers, scheduler) -> None:
    """``vekst project`` with several ``--scenario`` files: one task per scenario."""
    from vekst.cluster import ClusterConfig, TaskRunner

    runner = TaskRunner(log=console.print)
    if workers or scheduler:
        runner.cluster = ClusterConfig(scheduler=scheduler, workers=workers or 2)
    ensemble, written = run_project_ensemble(fit, out, scenarios, settings, runner)
    for stem, projection in ensemble.projections.items():
        console.print(f"scenario {stem}:")
        console.print(national_table(projection))
        for label, path in written[stem].items():
            console.print(f"wrote {label}: {path}")
    for stem, message in ensemble.failures.items():
        console.print(f"[red]scenario {stem}: task failed[/]: {message}")
    if not ensemble.projections:
        raise typer.Exit(1)
