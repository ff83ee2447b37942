"""A uniform housing plan: every municipality with data builds a share more than lately.

The demo's housing plan: each municipality with known completions completes
``(1 + share)`` times its recent mean (:func:`vekst.projection.housing_plan.recent_completions`)
in every plan year, so the extra dwellings per year are ``share`` times that mean. The
baseline is the same projection without the plan (recent completions continue), run with
the same seed (common random numbers), so the difference is the plan's effect alone.

The effect carries what the housing coefficient means: an association of net migration
with completions conditional on the other drivers, not a causal effect (see
:mod:`vekst.features.housing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from vekst.projection.housing_plan import (
    PlanEffectRun,
    PlannedCompletions,
    housing_plan_effect,
    recent_completions,
)
from vekst.projection.scenario import Scenario

__all__ = ["PLAN_EFFECT_COLUMNS", "UpliftPlan", "plan_effect_frame", "uplift_plan_effect"]

#: Columns of :func:`plan_effect_frame` (and of ``housing_plan_effect.csv``).
PLAN_EFFECT_COLUMNS = (
    "municipality",
    "name",
    "year",
    "extra_completions",
    "net_migration_median",
    "net_migration_low",
    "net_migration_high",
    "population_median",
    "population_low",
    "population_high",
)


@dataclass(frozen=True)
class UpliftPlan:
    """The plan: ``share`` more completions than the recent mean in ``first..last``.

    Attributes
    ----------
    share
        Extra completions as a share of the recent mean (0.5: 50 % more).
    first_year, last_year
        Calendar years of the plan (inclusive); they must lie in the projected years.
    """

    share: float = 0.5
    first_year: int = 2023
    last_year: int = 2030

    def __post_init__(self) -> None:
        if not self.share > 0:
            raise ValueError(f"the plan's share must be positive, not {self.share}.")
        if self.last_year < self.first_year:
            raise ValueError(
                f"the plan ends ({self.last_year}) before it starts ({self.first_year})."
            )


def _base_year(panel: xr.Dataset, run: PlanEffectRun) -> int:
    return int(panel["year"].max()) if run.base_year is None else int(run.base_year)


def uplift_plan_effect(
    panel: xr.Dataset,
    draws: xr.Dataset,
    plan: UpliftPlan | None = None,
    run: PlanEffectRun | None = None,
) -> xr.Dataset:
    """The effect of :class:`UpliftPlan` on every municipality (plan minus no plan).

    Parameters
    ----------
    panel
        The panel, with ``dwellings_completed`` where completions are known.
    draws
        Posterior draws of a fit with ``housing_<lag>`` covariates.
    plan
        The plan; default 50 % more completions in 2023-2030.
    run
        Projection settings shared by both runs (seed, draws, years).

    Returns
    -------
    xarray.Dataset
        What :func:`vekst.projection.housing_plan.housing_plan_effect` returns, plus
        ``extra_completions`` (municipality): planned minus recent completions per plan
        year, NaN where the municipality has no completions data (no plan); attrs
        ``plan_first_year``, ``plan_last_year``, ``plan_share``, ``n_draws``.

    Raises
    ------
    ValueError
        When no municipality has completions data (there is nothing to plan).
    """
    plan = plan or UpliftPlan()
    run = run or PlanEffectRun()
    recent = recent_completions(panel, _base_year(panel, run))
    known = np.isfinite(recent.values)
    if not known.any():
        raise ValueError(
            "no municipality of the panel has completed dwellings before the base year, so "
            "there is no recent level to build above; attach SSB 05940 completions first."
        )
    codes = recent["municipality"].values.astype(str)
    rows = tuple(
        PlannedCompletions(code, year, (1.0 + plan.share) * float(level))
        for code, level, has in zip(codes, recent.values, known, strict=True)
        if has
        for year in range(plan.first_year, plan.last_year + 1)
    )
    scenario = Scenario(
        name=f"{100 * plan.share:.0f} % more completions {plan.first_year}-{plan.last_year}",
        housing_plan=rows,
    )
    effect = housing_plan_effect(panel, draws, scenario, run=run)
    effect["extra_completions"] = (plan.share * recent).where(known).drop_vars(
        [c for c in recent.coords if c != "municipality"]
    )
    effect["extra_completions"].attrs["units"] = "dwellings per plan year"
    effect.attrs.update(
        plan_first_year=int(plan.first_year),
        plan_last_year=int(plan.last_year),
        plan_share=float(plan.share),
        n_draws=int(effect.sizes["draw"]),
    )
    return effect


def _quantiles(values: xr.DataArray, band: float) -> xr.DataArray:
    low, high = (1.0 - band) / 2.0, (1.0 + band) / 2.0
    return values.quantile([0.5, low, high], dim="draw").assign_coords(
        quantile=["median", "low", "high"]
    )


def plan_effect_frame(
    effect: xr.Dataset, names: dict[str, str] | None = None
) -> pd.DataFrame:
    """The effect of the planning municipalities by year, as a flat table.

    Parameters
    ----------
    effect
        Output of :func:`uplift_plan_effect`.
    names
        Municipality names by code (default: the ``name`` coordinate, else the code).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PLAN_EFFECT_COLUMNS`, one row per planning municipality and year:
        the extra completions of that year (0 outside the plan years), and the median and
        the central ``effect.attrs["band"]`` of the per-draw differences in net migration
        (persons in that calendar year; NaN in the last stock year) and in the population
        on 1 January of that year.
    """
    band = float(effect.attrs.get("band", 0.9))
    planned = effect["extra_completions"].notnull().values
    codes = effect["municipality"].values.astype(str)[planned]
    if names is None and "name" in effect.coords:
        names = dict(
            zip(effect["municipality"].values.astype(str),
                effect["name"].values.astype(str), strict=True)
        )
    names = names or {}
    # Flows are NaN in the last stock year; leave it out before taking quantiles.
    flows = effect["net_migration_effect"].sel(municipality=codes).dropna("year", how="all")
    migration = _quantiles(flows, band)
    population = _quantiles(effect["population_effect"].sel(municipality=codes), band)
    migration = migration.reindex(year=population["year"])
    extra = effect["extra_completions"].sel(municipality=codes)
    first, last = int(effect.attrs["plan_first_year"]), int(effect.attrs["plan_last_year"])
    frames = []
    for code in codes:
        frame = pd.DataFrame({"year": population["year"].values.astype(int)})
        frame.insert(0, "name", names.get(code, code))
        frame.insert(0, "municipality", code)
        in_plan = (frame["year"] >= first) & (frame["year"] <= last)
        frame["extra_completions"] = np.where(in_plan, float(extra.sel(municipality=code)), 0.0)
        for prefix, values in (("net_migration", migration), ("population", population)):
            for stat in ("median", "low", "high"):
                frame[f"{prefix}_{stat}"] = values.sel(municipality=code, quantile=stat).values
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(PLAN_EFFECT_COLUMNS)]
