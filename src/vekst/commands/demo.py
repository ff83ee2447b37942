"""``vekst demo``: the main job on the embedded data, from panel to report.

Fit the national model (with the convergence gate), project every municipality to 2040,
decompose growth and write a self-contained HTML report plus the CSV/netCDF outputs. The
default spec has housing completions as a driver, so the demo also measures a housing
plan's effect (``housing_plan_effect.csv``, and the report's section "Housing plans").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vekst.commands.project import CsvFormat
from vekst.commands.ui import (
    DEFAULT_PROJECTION_DRAWS,
    FIT_DRAWS,
    FIT_TARGET_ACCEPT,
    FIT_TUNE,
    console,
    err_console,
)
from vekst.errors import UsageError
from vekst.report.i18n import Lang

if TYPE_CHECKING:
    import arviz as az
    import xarray as xr

#: The demo's model spec (in ``models/``): the default spec plus housing completions, so
#: the report shows housing as a driver and the effect of a housing plan.
DEMO_SPEC = "housing"


@dataclass
class DemoSettings:
    """Settings of :func:`run_demo`.

    Attributes
    ----------
    draws, tune, chains, target_accept
        Sampler settings of the national fit.
    projection_draws
        Posterior draws carried through the projection (as ``vekst project``).
    end_year
        Last projected year (population on 1 January).
    seed
        Seed of the fit and the projection.
    municipalities
        Codes shown as printable sections besides the three largest.
    allow_unconverged
        Project even if the fit fails the convergence gate (the report is flagged).
    lang
        Language of the report (``nb`` or ``en``).
    csv_format
        CSV style of the projection files (``nb``: ``;`` and decimal comma).
    by_source_draws
        Draws of each run splitting the bands by source (0 = left out).
    housing_plan_draws
        Draws of the two runs measuring the demo housing plan (0 = left out); used only
        when the fit has ``housing_<lag>`` covariates.
    """

    draws: int = FIT_DRAWS
    tune: int = FIT_TUNE
    chains: int = 4
    target_accept: float = FIT_TARGET_ACCEPT
    projection_draws: int = DEFAULT_PROJECTION_DRAWS
    end_year: int = 2040
    seed: int = 20240101
    municipalities: list[str] | None = None
    allow_unconverged: bool = False
    lang: str = "en"
    csv_format: str = "en"
    by_source_draws: int = 100
    housing_plan_draws: int = 100


def demo_housing_plan(
    idata: az.InferenceData,
    out: Path,
    settings: DemoSettings,
    panel: xr.Dataset | None = None,
) -> xr.Dataset | None:
    """The demo housing plan's effect (and its CSV), or ``None`` without a housing fit.

    Every municipality with completions data builds 50 % more than its mean of the last 5
    observed years in 2023-2030 (clipped to the projected years); the effect is the
    difference of two projections with common random numbers
    (:func:`vekst.projection.housing_uplift.uplift_plan_effect`).

    Parameters
    ----------
    idata
        The fit (``arviz.InferenceData``).
    out
        Folder of ``housing_plan_effect.csv`` (columns
        :data:`vekst.projection.housing_uplift.PLAN_EFFECT_COLUMNS`, in the style
        ``settings.csv_format``).
    settings
        ``housing_plan_draws``, ``seed``, ``end_year`` and ``csv_format`` are used.
    panel
        The panel; default the embedded data.

    Returns
    -------
    xarray.Dataset or None
        :func:`vekst.projection.housing_uplift.uplift_plan_effect`'s result with
        ``attrs["csv_file"]``; ``None`` when the fit has no housing term, the panel no
        completions or no plan year is projected, or ``housing_plan_draws`` is 0.
    """
    from vekst.fit import projection_draws
    from vekst.projection.housing_plan import PlanEffectRun
    from vekst.projection.housing_uplift import UpliftPlan, plan_effect_frame, uplift_plan_effect
    from vekst.projection.outputs import CsvStyle, frame_to_csv
    from vekst.report.housing_section import housing_covariates

    if settings.housing_plan_draws < 1 or not housing_covariates(idata):
        return None
    if panel is None:
        from vekst import load_default

        panel = load_default()
    base = int(panel["year"].max())
    default = UpliftPlan()
    first, last = max(default.first_year, base), min(default.last_year, settings.end_year - 1)
    if "dwellings_completed" not in panel or first > last:
        err_console.print("[yellow]no housing plan in the report:[/] no completions data or "
                          "no plan year inside the projected years.")
        return None
    draws = projection_draws(idata, n_draws=settings.housing_plan_draws, seed=settings.seed)
    effect = uplift_plan_effect(
        panel,
        draws,
        UpliftPlan(share=default.share, first_year=first, last_year=last),
        PlanEffectRun(end_year=settings.end_year, seed=settings.seed),
    )
    name = "housing_plan_effect.csv"
    # Tenths of a person and of a dwelling: more digits would only suggest precision.
    frame = plan_effect_frame(effect).round(1)
    frame_to_csv(frame, out / name, CsvStyle.named(settings.csv_format))
    effect.attrs["csv_file"] = name
    return effect


def run_demo(
    out: Path,
    settings: DemoSettings | None = None,
    *,
    panel=None,
    spec: Path | None = None,
) -> Path:
    """Run fit -> gate -> projection -> report into ``out``; return the report path.

    Parameters
    ----------
    out
        Output folder: ``fit.nc``, ``projection/`` (netCDF + CSV summaries),
        ``housing_plan_effect.csv`` (with a housing fit) and ``index.html`` with
        ``figures/`` and ``tables/``.
    settings
        Sampler, projection and report settings; default :class:`DemoSettings`.
    panel
        A panel instead of the embedded data (tests use a small one).
    spec
        Model spec; default ``models/housing.toml`` (:data:`DEMO_SPEC`: the default
        spec plus housing completions), or ``models/vareide2022.toml`` for a ``panel``
        without completions.
    """
    from vekst.commands.fit import run_fit
    from vekst.commands.project import ProjectSettings, run_project
    from vekst.commands.report import build_report
    from vekst.fit import NotConvergedError, check_sampler_settings, load_fit
    from vekst.io import check_output_file, check_output_folder
    from vekst.projection.outputs import OUTPUT_FILES
    from vekst.report.html import ReportOptions
    from vekst.workflow import SamplerConfig

    settings = settings or DemoSettings()
    out = Path(out)
    # A bad --out or setting is found now, not after a two-minute fit.
    check_output_file(out / "fit.nc", what="--out")
    check_output_file(out / "housing_plan_effect.csv", what="--out")
    check_output_folder(out / "projection", known=OUTPUT_FILES, what="--out")
    check_sampler_settings(draws=settings.draws, tune=settings.tune, chains=settings.chains)
    if settings.projection_draws < 1:
        raise UsageError(
            f"--projection-draws must be at least 1, not {settings.projection_draws}."
        )
    out.mkdir(parents=True, exist_ok=True)
    panel_file = None
    if panel is not None:
        from vekst.data.build import write_panel
        from vekst.data.panel import load_panel

        # Fit on the panel as the projection will read it back (the file stores some
        # flows as float32, and the fit's data hash must match the projection's).
        panel_file = write_panel(panel, out / "panel.nc")
        panel = load_panel(panel_file)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    console.rule("1/3 fitting the hierarchical model")
    config = SamplerConfig(
        draws=settings.draws, tune=settings.tune, chains=settings.chains, seed=settings.seed,
        target_accept=settings.target_accept,
    )
    if spec is None:
        from vekst.models.spec import default_spec_path

        plain = panel is not None and "dwellings_completed" not in panel
        spec = default_spec_path("vareide2022" if plain else DEMO_SPEC)
    run_fit(spec, out / "fit.nc", config, panel=panel)
    timings["fit"] = time.perf_counter() - start

    console.rule(f"2/3 projecting to {settings.end_year}")
    start = time.perf_counter()
    try:
        run_project(
            out / "fit.nc",
            out / "projection",
            ProjectSettings(
                end_year=settings.end_year,
                draws=settings.projection_draws,
                seed=settings.seed,
                allow_unconverged=settings.allow_unconverged,
                panel_file=panel_file,
                csv_format=settings.csv_format,
                by_source_draws=settings.by_source_draws,
            ),
        )
    except NotConvergedError as error:
        err_console.print(f"[red]{error}[/]")
        raise typer.Exit(code=3) from error
    timings["projection"] = time.perf_counter() - start

    start = time.perf_counter()
    housing = demo_housing_plan(load_fit(out / "fit.nc").idata, out, settings, panel)
    if housing is not None:
        timings["housing plan"] = time.perf_counter() - start

    console.rule("3/3 decomposition and report")
    start = time.perf_counter()
    report = build_report(
        out / "fit.nc",
        out / "projection",
        out,
        panel=panel,
        options=ReportOptions(
            municipalities=settings.municipalities, lang=settings.lang, housing_plan=housing
        ),
    )
    timings["report"] = time.perf_counter() - start
    console.print(
        "timings: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
        + f"; total {sum(timings.values()):.0f} s"
    )
    console.print(f"[bold green]report:[/] {report}")
    return report


def register(app: typer.Typer) -> None:
    """Add ``vekst demo``."""

    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("vekst-demo"), help="Output folder."),
        draws: int = typer.Option(FIT_DRAWS, min=1, help="Draws per chain of the national fit."),
        tune: int = typer.Option(FIT_TUNE, min=0, help="Tuning steps per chain."),
        chains: int = typer.Option(4, min=1, help="Chains."),
        target_accept: float = typer.Option(
            FIT_TARGET_ACCEPT, min=0.5, max=0.999, help="NUTS target acceptance."
        ),
        projection_draws: int = typer.Option(
            DEFAULT_PROJECTION_DRAWS,
            help="Posterior draws carried to 2040 (as `vekst project`; single-year ages kept).",
        ),
        end_year: int = typer.Option(2040, help="Last projected year."),
        seed: int = typer.Option(20240101, help="Random seed."),
        municipality: list[str] = typer.Option(
            None, "--municipality", "-m", help="Municipality code to print in detail (repeat)."
        ),
        allow_unconverged: bool = typer.Option(
            False, "--allow-unconverged",
            help="Project even if the fit fails the convergence gate (flagged).",
        ),
        lang: Lang = typer.Option(Lang.en, "--lang", help="Language of the report: nb or en."),
        csv_format: CsvFormat = typer.Option(
            CsvFormat.en, "--csv", help="CSV style: nb (';' and decimal comma) or en."
        ),
        spec: Path = typer.Option(
            None, help="Model spec (.toml); default models/housing.toml (with housing)."
        ),
        by_source: int = typer.Option(
            100, "--by-source", min=0,
            help="Draws per run splitting the bands by source (0 = leave it out).",
        ),
        housing_plan_draws: int = typer.Option(
            100, "--housing-plan-draws", min=0,
            help="Draws of the two runs measuring the demo housing plan (0 = leave it out).",
        ),
    ) -> None:
        """The main job: fit, project to 2040, decompose and write an HTML report."""
        run_demo(
            out,
            DemoSettings(
                draws=draws,
                tune=tune,
                chains=chains,
                target_accept=target_accept,
                projection_draws=projection_draws,
                end_year=end_year,
                seed=seed,
                municipalities=municipality or None,
                allow_unconverged=allow_unconverged,
                lang=str(lang),
                csv_format=str(csv_format),
                by_source_draws=by_source,
                housing_plan_draws=housing_plan_draws,
            ),
            spec=spec,
        )
