"""Housing plans in projections: planned completions -> the housing covariate.

A scenario's ``housing_plan`` lists planned completed dwellings per municipality and
calendar year (in a scenario file as rows ``{municipality, year, completions}``, or in a
CSV named by ``housing_plan_csv`` with the header ``municipality,year,completions``).

For a fit with ``housing_<lag>`` covariates the projection needs completions per 1,000
inhabitants in every projected year (and the lagged years before it):

* years before the base year: the observed ``dwellings_completed`` of the panel over its
  1 January population;
* projected years: the plan where it gives a value, else the municipality's mean
  completions over its last :data:`BASELINE_YEARS` observed years ("building goes on as
  lately"); divided by the *projected* population of that year in each draw, so a plan
  weighs less in a place that grows;
* municipalities with no observed completions and no plan: the term is switched off
  (contributes 0), as in the fit. Off is the same as building at the fit's centre (the
  mean rate of the fitted municipalities), so a plan for such a place is measured
  against that average; to measure it against the place's usual building, pass a
  baseline scenario whose plan holds the usual completions.

The housing term is ``beta_housing x (rate - center)`` with the fit's centre and the
fitted coefficient of each draw, so the plan's effect carries the coefficient's
uncertainty. The coefficient is an association conditional on the other drivers
(see :mod:`vekst.features.housing`): housing follows expected demand, so the effect of a
plan is what past co-movement implies, not a causal promise.

With a fit whose national net migration is a driver (``national_immigration = true``,
the default spec), municipal net migration is constrained to add up to the national path
(:func:`vekst.models.equation.apply_national_constraint`): the migrants a plan attracts
are then taken from every municipality in proportion to its settlement loading, so the
plan redistributes migration within the country instead of adding to it, and its own
municipality keeps nearly all of the effect (all but its small share of the
adjustment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from vekst.errors import ScenarioError
from vekst.io import csv_records

if TYPE_CHECKING:
    from vekst.projection.scenario import Scenario

__all__ = [
    "BASELINE_YEARS",
    "HOUSING_PLAN_COLUMNS",
    "HousingInputs",
    "PlanEffectRun",
    "PlannedCompletions",
    "housing_inputs",
    "housing_plan_effect",
    "parse_housing_plan",
    "read_housing_plan_csv",
    "recent_completions",
]

HOUSING_PLAN_COLUMNS = ("municipality", "year", "completions")
#: Observed years averaged for the no-plan path of a municipality.
BASELINE_YEARS = 5


@dataclass(frozen=True)
class PlannedCompletions:
    """Planned completed dwellings of one municipality in one calendar year."""

    municipality: str
    year: int
    completions: float


def _row(record: dict[str, Any], where: str) -> PlannedCompletions:
    from vekst.projection.scenario import parse_number, parse_year

    try:
        code = str(record["municipality"]).strip()
        year = parse_year(record["year"], where)
        value = parse_number(record["completions"], where)
    except KeyError as error:
        raise ScenarioError(
            f"{where}: housing plan row {record!r} lacks {error}; give "
            f"{', '.join(HOUSING_PLAN_COLUMNS)}."
        ) from None
    if value < 0:
        raise ScenarioError(f"{where}: {value:g} completions for {code} in {year} is negative.")
    if code.isdigit():
        code = code.zfill(4)
    return PlannedCompletions(municipality=code, year=year, completions=value)


def parse_housing_plan(rows: Any, source: str) -> tuple[PlannedCompletions, ...]:
    """Rows of a scenario's ``housing_plan`` (dicts or :class:`PlannedCompletions`)."""
    if not isinstance(rows, list | tuple):
        raise ScenarioError(f"{source}: housing_plan must be a list of rows.")
    out = []
    for row in rows:
        if isinstance(row, PlannedCompletions):
            out.append(row)
        elif isinstance(row, dict):
            out.append(_row(row, f"{source}: housing plan"))
        else:
            raise ScenarioError(f"{source}: housing plan row {row!r} is not a table of values.")
    seen: set[tuple[str, int]] = set()
    for row in out:
        key = (row.municipality, row.year)
        if key in seen:
            raise ScenarioError(
                f"{source}: the housing plan lists {row.municipality} in {row.year} twice; "
                "give one total per municipality and year."
            )
        seen.add(key)
    return tuple(out)


def read_housing_plan_csv(path: str | Path) -> tuple[PlannedCompletions, ...]:
    """Read ``municipality,year,completions`` rows.

    Raises
    ------
    ScenarioError
        On a missing file or column, or an unreadable value (naming file and line).
    """
    path = Path(path)
    rows = [
        _row(record, f"{path}, line {line}")
        for line, record in csv_records(path, HOUSING_PLAN_COLUMNS, "housing plan", ScenarioError)
    ]
    return parse_housing_plan(rows, str(path))


def recent_completions(panel: xr.Dataset, base_year: int) -> xr.DataArray:
    """Mean completed dwellings of each municipality over its last observed years.

    The no-plan path of a projection ("building goes on as lately"): the mean of the last
    :data:`BASELINE_YEARS` years with known completions before ``base_year``.

    Parameters
    ----------
    panel
        Panel with ``dwellings_completed`` (municipality, year; NaN where unknown).
    base_year
        First projected year; later observations are not used.

    Returns
    -------
    xarray.DataArray
        Dim ``municipality``; NaN where no completions are known.
    """
    observed = panel["dwellings_completed"].transpose("municipality", "year")
    values = observed.sel(year=observed["year"] < base_year).values.astype(float)
    out = np.full(values.shape[0], np.nan)
    for m, row in enumerate(values):
        known = row[np.isfinite(row)]
        if known.size:
            out[m] = known[-BASELINE_YEARS:].mean()
    return xr.DataArray(
        out,
        dims="municipality",
        coords={"municipality": observed["municipality"].values},
        name="recent_completions",
        attrs={"units": "dwellings per year", "years": BASELINE_YEARS},
    )


@dataclass(frozen=True)
class HousingInputs:
    """Housing covariate inputs of a projection, on the years ``first .. last projected``.

    Attributes
    ----------
    years
        Calendar years ``(n,)``: the first projected year minus the largest lag, up to the
        last projected year.
    past_rate
        ``(n, municipality)`` completions per 1,000 inhabitants in years before the base
        year; NaN in projected years and where unknown.
    completions
        ``(n, municipality)`` completions in projected years (plan or recent mean); NaN
        before the base year and where neither exists.
    center
        Constant subtracted from the rate (the fit's ``housing_center``).
    base_year
        First projected year.
    """

    years: np.ndarray
    past_rate: np.ndarray
    completions: np.ndarray
    center: float
    base_year: int

    def value(self, year: int, population: np.ndarray) -> np.ndarray:
        """Centred rate of ``year`` for ``(draw, municipality)`` populations on 1 January
        of that year; 0 (term off) where unknown."""
        i = int(year) - int(self.years[0])
        if year < self.base_year:
            rate = np.broadcast_to(self.past_rate[i], population.shape)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = 1000.0 * self.completions[i][None, :] / population
        return np.where(np.isfinite(rate), rate - self.center, 0.0)


def housing_inputs(
    history: xr.Dataset,
    scenario: Scenario,
    base_year: int,
    calendar: np.ndarray,
    lags: list[int],
    center: float,
) -> tuple[HousingInputs, dict]:
    """Observed and planned completions for the projected years, and a note of them.

    Raises
    ------
    ScenarioError
        When the plan names a municipality the panel lacks or a year outside the
        projected years.
    """
    municipalities = history["municipality"].values.astype(str)
    index = {m: i for i, m in enumerate(municipalities)}
    years = np.arange(int(calendar[0]) - max(lags), int(calendar[-1]) + 1)
    past_rate = np.full((len(years), len(municipalities)), np.nan)
    completions = np.full_like(past_rate, np.nan)
    baseline = np.full(len(municipalities), np.nan)
    note: dict = {"housing_center": float(center)}
    if "dwellings_completed" in history:
        observed = history["dwellings_completed"].transpose("municipality", "year")
        observed = observed.sel(year=observed["year"] < base_year)
        population = history["population"].sum(("age", "sex")).transpose("municipality", "year")
        rate = 1000.0 * observed / population.sel(year=observed["year"]).where(population > 0)
        for j, year in enumerate(years):
            if year < base_year and year in rate["year"].values:
                past_rate[j] = rate.sel(year=year).values
        baseline = recent_completions(history, base_year).values
        note["no_plan"] = f"mean completions of the last {BASELINE_YEARS} observed years"
    future = years >= base_year
    completions[future] = baseline[None, :]
    plan = getattr(scenario, "housing_plan", ())
    unknown = sorted({row.municipality for row in plan} - set(index))
    if unknown:
        raise ScenarioError(
            f"scenario '{scenario.name}': housing plan for {unknown[:10]}, which are not "
            "municipality codes of the panel; use 4-digit 2024 codes."
        )
    outside = sorted({row.year for row in plan if not base_year <= row.year <= calendar[-1]})
    if outside:
        raise ScenarioError(
            f"scenario '{scenario.name}': housing plan for year(s) {outside[:10]}, outside the "
            f"projected years {int(calendar[0])}-{int(calendar[-1])}; drop those rows or "
            "change --base-year/--end-year."
        )
    for row in plan:
        completions[int(row.year) - int(years[0]), index[row.municipality]] = row.completions
    note["planned_municipality_years"] = len(plan)
    return HousingInputs(years, past_rate, completions, float(center), int(base_year)), note


@dataclass(frozen=True)
class PlanEffectRun:
    """Settings shared by the two projections of :func:`housing_plan_effect`.

    Attributes
    ----------
    base_year, end_year, n_draws
        As in :func:`vekst.projection.project`.
    seed
        One seed for both runs: common random numbers, so the runs differ only by the plan.
    band
        Central probability of the reported band (0.9: the 5-95 % quantiles).
    """

    base_year: int | None = None
    end_year: int = 2040
    n_draws: int | None = None
    seed: int = 0
    band: float = 0.9


def housing_plan_effect(
    panel: xr.Dataset,
    draws: xr.Dataset,
    plan: Scenario,
    baseline: Scenario | None = None,
    run: PlanEffectRun | None = None,
) -> xr.Dataset:
    """The effect of a housing plan: two projections with common random numbers.

    Both scenarios are projected with the same seed, so every draw gets the same
    coefficients, year effects and shocks in both runs; the per-draw difference is the
    plan's effect alone, and its spread across draws is the uncertainty of the fitted
    housing coefficient (and of how the extra migrants change later births, deaths and
    the population the rate is taken over). The coefficient is an association
    conditional on the other drivers, not a causal effect (see
    :mod:`vekst.features.housing`).

    Parameters
    ----------
    panel
        The panel (with ``dwellings_completed`` for the observed years).
    draws
        Posterior draws of a fit with ``housing_<lag>`` covariates.
    plan
        The scenario with the housing plan.
    baseline
        The scenario to compare with; default ``plan`` without its housing plan (recent
        completions continue).
    run
        Shared settings (:class:`PlanEffectRun`).

    Returns
    -------
    xarray.Dataset
        ``population_effect`` and ``net_migration_effect`` (draw, year, municipality):
        plan minus baseline in persons; ``population_effect_median``,
        ``population_effect_low``/``_high`` (year, municipality): the median and the
        central ``band`` of the per-draw differences.

    Raises
    ------
    vekst.errors.ScenarioError
        When the draws have no housing covariate (the plan would change nothing).
    """
    import dataclasses

    from vekst.projection.project import project

    covariates = [str(c) for c in draws["covariate"].values] if "covariate" in draws else []
    if not any(c.startswith("housing_") for c in covariates):
        raise ScenarioError(
            "the draws come from a fit without housing_<lag> covariates, so a housing plan "
            "changes nothing; fit models/housing.toml first."
        )
    run = run or PlanEffectRun()
    if not 0.0 < run.band < 1.0:
        raise ValueError(f"band must lie strictly between 0 and 1, not {run.band}.")
    baseline = baseline or dataclasses.replace(plan, name=f"{plan.name} without plan",
                                               housing_plan=())
    # Totals only: the effect needs no ages, and single ages of every municipality would
    # cost gigabytes for a few hundred draws.
    settings = dict(
        base_year=run.base_year,
        end_year=run.end_year,
        n_draws=run.n_draws,
        seed=run.seed,
        detail="totals",
    )
    with_plan = project(panel, draws, scenario=plan, **settings)
    without = project(panel, draws, scenario=baseline, **settings)
    population = (with_plan["population_total"] - without["population_total"]).astype(float)
    migration = (with_plan["net_migration"] - without["net_migration"]).astype(float)
    low, high = (1.0 - run.band) / 2.0, (1.0 + run.band) / 2.0
    quantiles = population.quantile([0.5, low, high], dim="draw")
    out = xr.Dataset(
        {
            "population_effect": population,
            "net_migration_effect": migration,
            "population_effect_median": quantiles.sel(quantile=0.5, drop=True),
            "population_effect_low": quantiles.sel(quantile=low, drop=True),
            "population_effect_high": quantiles.sel(quantile=high, drop=True),
        },
        attrs={
            "plan": plan.name,
            "baseline": baseline.name,
            "seed": int(run.seed),
            "band": float(run.band),
            "method": "difference of two projections with common random numbers",
            "interpretation": "association conditional on the other drivers, not causal",
        },
    )
    for name in out.data_vars:
        out[name].attrs["units"] = "persons"
    return out
