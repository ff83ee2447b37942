"""``vekst report``: one HTML page with the forecast, its bands and the drivers of growth."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from vekst.commands.ui import console, err_console, step
from vekst.report.i18n import Lang

#: Posterior draws used to decompose past growth (enough for stable 80 % intervals).
DECOMPOSITION_DRAWS = 200


def _projection_file(projection: str | Path) -> Path:
    """The projection a report reads: ``projection.nc`` or ``projection.zarr`` of a folder
    written by ``vekst project`` (netCDF first), or the file or store itself."""
    projection = Path(projection)
    path = projection
    if projection.is_dir() and projection.suffix != ".zarr":
        netcdf, store = projection / "projection.nc", projection / "projection.zarr"
        path = store if not netcdf.is_file() and store.is_dir() else netcdf
    if not (path.is_file() or (path.suffix == ".zarr" and path.is_dir())):
        raise FileNotFoundError(
            f"{path} not found; write a projection with `vekst project --out {projection}` "
            "(the report reads DIR/projection.nc or DIR/projection.zarr)."
        )
    return path


@contextmanager
def open_projection_for_report(path: Path):
    """The projection opened lazily: a netCDF file (closed after use) or a Zarr store.

    A Zarr store (``vekst project --format zarr``, single ages of many draws) keeps its
    single ages on disk, lazily indexed (numpy, not dask: the report's sections compute
    on what they select): a year or a municipality is read when a section selects it.
    Everything else (totals, flows: small) is read at once.
    """
    import xarray as xr

    if path.suffix == ".zarr" and path.is_dir():
        from vekst.projection.zarr_store import ZARR_FORMAT, require_zarr

        require_zarr()
        dataset = xr.open_zarr(path, zarr_format=ZARR_FORMAT, chunks=None)
        labels = [str(n) for n in dataset.coords if n not in dataset.dims]
        dataset = dataset.assign_coords({n: dataset[n].load() for n in labels})
        large = ("population", "population_age_group")
        small = [str(n) for n in dataset.data_vars if n not in large]
        yield dataset.assign({n: dataset[n].load() for n in small})
        return

    with xr.open_dataset(path, engine="h5netcdf") as dataset:
        yield dataset


def _history_decomposition(panel, idata):
    """Past growth split into drivers, or ``None`` (with a message) when it cannot be done."""
    try:
        from vekst.decompose import DecompositionError, decompose_history
    except ImportError:
        return None
    from vekst.fit import projection_draws

    draws = projection_draws(idata, n_draws=DECOMPOSITION_DRAWS)
    features = idata.fit_data if hasattr(idata, "fit_data") else None
    try:
        return decompose_history(
            panel.sel(municipality=draws["municipality"].values), draws, features
        )
    except (DecompositionError, ValueError, KeyError) as error:
        # The decomposition is an optional section: say why it is missing, keep the rest.
        err_console.print(f"[yellow]no growth decomposition in the report:[/] {error}")
        return None


def build_report(
    fit: str | Path,
    projection: str | Path,
    out: str | Path,
    *,
    panel=None,
    decompose: bool = True,
    options=None,
    official: str | Path | None = None,
) -> Path:
    """Load a fit and a projection, recompute the OLS baseline and write the report.

    Parameters
    ----------
    fit
        A fit written by ``vekst fit`` / :func:`vekst.fit.save_fit`.
    projection
        The folder written by ``vekst project`` (holding ``projection.nc`` or
        ``projection.zarr``), or the file or store.
    out
        Folder of the report (``index.html``, ``figures/``, ``tables/``).
    panel
        The panel (a dataset or a netCDF file) the projection was made from; default the
        embedded data (:func:`vekst.load_default`).
    decompose
        Add the decomposition of past growth (needs the fit's draws and the panel).
    options
        :class:`vekst.report.ReportOptions` (language, municipalities in print, ...); its
        ``backtest`` defaults to the shipped ``docs/results/backtest_table.csv`` when that
        file exists.
    official
        A StatBank export of Statistics Norway's regional projection to draw beside the
        fan charts (see :func:`vekst.evaluate.official.read_ssb_projection`).

    Returns
    -------
    pathlib.Path
        The ``index.html`` written.
    """
    import xarray as xr

    from vekst.fit import check_fit_panel, load_fit
    from vekst.models.data import MigrationData
    from vekst.models.ols import fit_ols
    from vekst.projection.outputs import UNCERTAINTY_FILE
    from vekst.report.bands import (
        read_backtest_notes,
        read_backtest_table,
        read_chance_floor,
        read_paired_comparison,
    )
    from vekst.report.html import ReportOptions, write_report

    projection_file = _projection_file(projection)
    loaded = load_fit(fit)
    idata = loaded.idata
    if panel is None:
        from vekst import load_default

        panel = load_default()
    elif isinstance(panel, str | Path):
        from vekst.data.panel import validate_panel

        panel = validate_panel(
            xr.load_dataset(panel, engine="h5netcdf"), code_vintage=None, source=str(panel)
        )
    check_fit_panel(loaded, panel)
    ols = None
    if hasattr(idata, "fit_data"):
        with warnings.catch_warnings():
            # Municipalities without a complete year get NaN residual attractiveness; the
            # report ranks the Bayesian estimate, so numpy's warning is only noise here.
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            ols = fit_ols(MigrationData.from_dataset(idata.fit_data))
    else:
        err_console.print(
            f"[yellow]{fit} has no fit_data group: the OLS comparison is left out.[/]"
        )
    decomposition = _history_decomposition(panel, idata) if decompose else None
    options = options or ReportOptions()
    if options.backtest is None:
        options.backtest = read_backtest_table()
        if options.backtest_notes is None:
            options.backtest_notes = read_backtest_notes()
        if options.chance_floor is None:
            options.chance_floor = read_chance_floor()
        if options.paired is None:
            options.paired = read_paired_comparison()
    if official is not None:
        from vekst.evaluate.official import read_ssb_projection

        options.official = read_ssb_projection(official, panel)
    uncertainty = None
    uncertainty_file = projection_file.parent / UNCERTAINTY_FILE
    if uncertainty_file.exists():
        uncertainty = xr.load_dataset(uncertainty_file, engine="h5netcdf")
    with open_projection_for_report(projection_file) as dataset:
        return write_report(
            out,
            panel=panel,
            idata=idata,
            ols=ols,
            projection=dataset,
            decomposition=decomposition,
            options=options,
            uncertainty=uncertainty,
        )


def register(app: typer.Typer) -> None:
    """Add ``vekst report``."""

    @app.command("report")
    def report_command(
        fit: Annotated[Path, typer.Option("--fit", help="Fit file written by `vekst fit`.")],
        projection: Annotated[
            Path,
            typer.Option(
                "--projection",
                help="Folder written by `vekst project` (has projection.nc or "
                "projection.zarr).",
            ),
        ],
        out: Annotated[Path, typer.Option("--out", help="Folder for the report.")] = Path("report"),
        municipality: Annotated[
            list[str] | None,
            typer.Option(
                "--municipality",
                "-m",
                help="Municipality code to show in detail (repeat for more); the three "
                "largest are always included.",
            ),
        ] = None,
        panel: Annotated[
            Path | None,
            typer.Option(
                "--panel",
                help="Panel file (netCDF) if the projection used one; default the embedded data.",
            ),
        ] = None,
        title: Annotated[
            str | None, typer.Option(help="Title of the page; default by language.")
        ] = None,
        lang: Annotated[
            Lang, typer.Option("--lang", help="Language of the report: nb or en.")
        ] = Lang.en,
        single_ages: Annotated[
            bool,
            typer.Option(
                "--single-ages",
                help="Pyramids of the printed municipalities by single year of age "
                "(default: five-year groups).",
            ),
        ] = False,
        official: Annotated[
            Path | None,
            typer.Option(
                "--official",
                help="StatBank export (CSV) of Statistics Norway's regional projection, drawn "
                "beside the fan charts of the municipalities it covers.",
            ),
        ] = None,
        decompose: Annotated[
            bool,
            typer.Option("--decompose/--no-decompose", help="Include the drivers of past growth."),
        ] = True,
    ) -> None:
        """Write an HTML report (fan charts, pyramids, rankings, diagnostics) to --out."""
        from vekst.data.panel import PanelValidationError
        from vekst.evaluate.official import OfficialProjectionError
        from vekst.fit import FitIdentityError
        from vekst.models.spec import SpecError
        from vekst.report.html import ReportInputError, ReportOptions

        options = ReportOptions(
            municipalities=municipality or None,
            title=title,
            lang=lang,
            pyramid_group=1 if single_ages else 5,
        )
        try:
            with step("drawing the report"):
                index = build_report(
                    fit,
                    projection,
                    out,
                    panel=panel,
                    decompose=decompose,
                    options=options,
                    official=official,
                )
        except (
            OfficialProjectionError,
            FileNotFoundError,
            FitIdentityError,
            PanelValidationError,
            ReportInputError,
            SpecError,
        ) as error:
            err_console.print(f"[red]error:[/] {error}")
            raise typer.Exit(code=2) from error
        console.print(f"report written to [bold]{index}[/] (open it in a browser; works offline)")
