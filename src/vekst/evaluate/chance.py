"""The floor that chance sets under any forecast of small cells.

Births are a Poisson process and deaths a binomial draw: even a forecaster who knew every
municipality's fertility, mortality and migration exactly would miss a cell of 40
newborns by about 10 % half of the time. :func:`chance_floor` measures that floor on the
observed panel, so a backtest's median APE by age group can be read against what is
attainable at all, not only against the baselines.

The oracle's error in a cell of single age ``a`` (and sex) observed ``h`` years after the
origin is chance alone:

* people born after the origin (``a < h``): Poisson, variance = the observed count;
* people alive at the origin (``a >= h``): binomial survival over ``h`` years, variance
  ``O (1 - S)`` with ``O`` the observed count and ``S`` the national probability of the
  cohort to survive the ``h`` years (:func:`vekst.data.components.survival_probability`,
  the national rates of the years in between; the open age uses its own rate).

Cell variances are summed over the ages and sexes of an age group. Chance in migration is
left out (its size is not known from the panel), so the floor is a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.components import survival_probability
from vekst.errors import PanelError
from vekst.evaluate.scoring import ALL_SIZES, age_group_population, size_class

__all__ = ["chance_floor", "chance_variance", "floor_by_age_group"]


def chance_variance(panel: xr.Dataset, origin: int, horizon: int) -> xr.DataArray:
    """Variance of the observed stock ``horizon`` years after ``origin`` from chance alone.

    Parameters
    ----------
    panel
        Panel with ``population`` (municipality, year, age, sex) and national
        ``mortality_rate`` (age, sex, year) for every year from the origin to the year
        before the target.
    origin, horizon
        The stock of 1 January ``origin + horizon`` is the one described.

    Returns
    -------
    xarray.DataArray
        ``(municipality, age_group)``: planner age groups and ``"total"``, in persons².

    Raises
    ------
    PanelError
        If the target year has no population or the years in between have no rates.
    """
    target = int(origin) + int(horizon)
    years = [int(y) for y in panel["year"].values]
    if target not in years:
        raise PanelError(
            f"chance floor: no population for {target} (origin {origin} + {horizon} years); "
            f"the panel covers {years[0]}-{years[-1]}."
        )
    observed = panel["population"].sel(year=target).astype(np.float64)
    rates = panel["mortality_rate"]
    survival = survival_probability(rates)
    cohort = xr.ones_like(survival.isel(year=0, drop=True))
    rate_years = {int(y) for y in survival["year"].values}
    for k in range(1, int(horizon) + 1):
        year = target - k
        if year not in rate_years or bool(
            survival.sel(year=year).isnull().all()
        ):
            raise PanelError(
                f"chance floor: no national mortality_rate for {year}; rebuild the panel "
                "with the HMD rates of every year scored."
            )
        step = survival.sel(year=year, drop=True)
        # The cohort aged a at the target was a - k a year k before it; the open age keeps
        # its own rate.
        shifted = step.shift(age=k)
        open_age = int(step["age"].values[-1])
        shifted = xr.where(step["age"] == open_age, step.sel(age=open_age), shifted)
        cohort = cohort * shifted
    born_after = observed["age"] < int(horizon)
    variance = xr.where(born_after, observed, observed * (1.0 - cohort.fillna(1.0)))
    return age_group_population(variance.transpose("municipality", "age", "sex"))


def chance_floor(
    panel: xr.Dataset,
    origins: Sequence[int],
    horizons: Sequence[int],
    *,
    n_sim: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Median APE of an oracle forecast whose only errors are chance births and deaths.

    Parameters
    ----------
    panel
        The observed panel (see :func:`chance_variance`).
    origins, horizons
        Origins and horizons as in the backtest; pairs beyond the panel are skipped.
    n_sim
        Simulated error sets; the floor is the mean of their medians.
    seed
        Seed of the simulated errors.

    Returns
    -------
    pandas.DataFrame
        One row per ``horizon, size_class, age_group`` (size class ``"all"`` and each
        class by population at the origin; age groups and ``"total"``): ``n`` cells, and
        ``floor_median_ape`` and ``floor_mean_ape`` in % of the observed count. Cells
        observed at 0 are left out, as in the backtest's APE.
    """
    rng = np.random.default_rng(seed)
    last = int(panel["year"].values.max())
    rows = []
    for horizon in horizons:
        parts = []
        for origin in origins:
            if int(origin) + int(horizon) > last:
                continue
            variance = chance_variance(panel, origin, horizon)
            observed = age_group_population(
                panel["population"].sel(year=int(origin) + int(horizon)).astype(np.float64)
            )
            start = panel["population"].sel(year=int(origin)).sum(("age", "sex")).values
            frame = pd.DataFrame(
                {
                    "age_group": np.tile(
                        variance["age_group"].values, variance.sizes["municipality"]
                    ),
                    "size_class": np.repeat(size_class(start), variance.sizes["age_group"]),
                    "variance": variance.transpose("municipality", "age_group").values.ravel(),
                    "observed": observed.transpose("municipality", "age_group").values.ravel(),
                }
            )
            parts.append(frame)
        if not parts:
            continue
        cells = pd.concat(parts, ignore_index=True)
        cells = cells[cells["observed"] > 0].reset_index(drop=True)
        errors = rng.standard_normal((n_sim, len(cells))) * np.sqrt(cells["variance"].values)
        ape = 100.0 * np.abs(errors) / cells["observed"].values
        for (group, size), index in _groups(cells):
            rows.append(
                {
                    "horizon": int(horizon),
                    "size_class": size,
                    "age_group": group,
                    "n": len(index),
                    "floor_median_ape": float(np.median(ape[:, index], axis=1).mean()),
                    "floor_mean_ape": float(ape[:, index].mean()),
                }
            )
    return pd.DataFrame(rows)


def _groups(cells: pd.DataFrame):
    """Row indices per (age group, size class), with ``"all"`` sizes first."""
    for group, index in cells.groupby("age_group", sort=False).indices.items():
        yield (group, ALL_SIZES), index
    for key, index in cells.groupby(["age_group", "size_class"], sort=False).indices.items():
        yield key, index


def floor_by_age_group(floor: pd.DataFrame | None, horizon: int) -> dict[str, float] | None:
    """Floor median APE by age group at ``horizon`` over all sizes, or ``None``.

    Parameters
    ----------
    floor
        :func:`chance_floor`'s table (or ``None``).
    horizon
        Years ahead.
    """
    if floor is None or floor.empty:
        return None
    rows = floor[(floor["horizon"] == horizon) & (floor["size_class"] == ALL_SIZES)]
    found = dict(zip(rows["age_group"].astype(str), rows["floor_median_ape"], strict=True))
    return found or None
