"""Scoring one origin's forecasts: planner age groups, size classes, counties and regions.

A forecast here is an array ``(draw, year, municipality, age_group)`` (``age_group`` holds
the planners' groups of :mod:`vekst.agegroups` and ``"total"``). :func:`score_forecast`
turns it into long rows (one per year, unit and age group) with every score of
:func:`vekst.evaluate.metrics.score_ensemble`. Aggregates (counties, labour-market
regions) are summed **per draw** before any quantile (:func:`aggregate_forecast`), so
their bands carry the correlation between municipalities that the model implies; summing
municipal quantiles would not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vekst.agegroups import AGE_GROUPS
from vekst.evaluate.metrics import score_ensemble

__all__ = [
    "AGGREGATE_LEVELS",
    "PLANNER_AGE_GROUPS",
    "SIZE_CLASSES",
    "TOTAL",
    "age_group_population",
    "aggregate_forecast",
    "score_forecast",
    "size_class",
]

#: Age groups municipal planners budget by (label, first age, last age; last open).
PLANNER_AGE_GROUPS = AGE_GROUPS
TOTAL = "total"
#: Size classes by population on 1 January of the origin (label, lower bound inclusive).
SIZE_CLASSES: tuple[tuple[str, float], ...] = (
    ("<2k", 0.0),
    ("2-5k", 2_000.0),
    ("5-20k", 5_000.0),
    ("20-50k", 20_000.0),
    ("50k+", 50_000.0),
)
#: Aggregate levels scored beside the municipalities: level name -> panel coordinate.
AGGREGATE_LEVELS: dict[str, str] = {"county": "county", "region": "region"}
#: Label of the ``size_class`` column for rows that are not municipalities.
ALL_SIZES = "all"


def _group_matrix(ages: np.ndarray) -> np.ndarray:
    ages = np.asarray(ages)
    matrix = np.zeros((len(ages), len(PLANNER_AGE_GROUPS) + 1))
    for g, (_, low, high) in enumerate(PLANNER_AGE_GROUPS):
        matrix[(ages >= low) & (ages <= (np.inf if high is None else high)), g] = 1.0
    matrix[:, -1] = 1.0
    return matrix


def group_labels() -> list[str]:
    """Labels of the planner age groups followed by ``"total"``."""
    return [label for label, _, _ in PLANNER_AGE_GROUPS] + [TOTAL]


def age_group_population(population: xr.DataArray) -> xr.DataArray:
    """Sum a population by single age (and sex) into the planner age groups and the total.

    Parameters
    ----------
    population
        Persons with dim ``age`` (and optionally ``sex``, summed).

    Returns
    -------
    xarray.DataArray
        Dim ``age_group`` (:data:`PLANNER_AGE_GROUPS` labels, then ``"total"``) in place of
        ``age``.
    """
    if "sex" in population.dims:
        population = population.sum("sex")
    matrix = xr.DataArray(
        _group_matrix(population["age"].values),
        dims=("age", "age_group"),
        coords={"age": population["age"].values, "age_group": group_labels()},
    )
    return xr.dot(population, matrix, dim="age")


def size_class(population: np.ndarray | Sequence[float]) -> np.ndarray:
    """Size-class label of each population (see :data:`SIZE_CLASSES`).

    Parameters
    ----------
    population
        Total populations.

    Returns
    -------
    numpy.ndarray
        Labels (str).
    """
    values = np.asarray(population, dtype=np.float64)
    bounds = np.array([low for _, low in SIZE_CLASSES])
    labels = np.array([label for label, _ in SIZE_CLASSES])
    return labels[np.clip(np.searchsorted(bounds, values, side="right") - 1, 0, None)]


def aggregate_forecast(
    forecast: xr.DataArray, membership: np.ndarray | Sequence[str]
) -> xr.DataArray:
    """Sum municipal forecasts (or observations) into aggregates, draw by draw.

    Parameters
    ----------
    forecast
        Array with dim ``municipality`` (and ``draw``, ``year``, ``age_group`` ...).
    membership
        Aggregate code of each municipality, in the order of ``forecast["municipality"]``.

    Returns
    -------
    xarray.DataArray
        ``municipality`` replaced by the aggregate codes (sorted), still called
        ``municipality`` so it scores like one.
    """
    labels = np.asarray(membership).astype(str)
    if labels.shape != (forecast.sizes["municipality"],):
        raise ValueError(
            f"{labels.size} aggregate codes for {forecast.sizes['municipality']} "
            "municipalities; pass one code per municipality."
        )
    grouped = forecast.assign_coords(_aggregate=("municipality", labels)).groupby("_aggregate")
    out = grouped.sum("municipality").rename(_aggregate="municipality")
    return out.transpose(*forecast.dims)


def score_forecast(
    forecast: xr.DataArray,
    observed_groups: xr.DataArray,
    at_origin: xr.DataArray,
    origin: int,
    method: str,
    levels: Sequence[float],
    point: bool,
) -> pd.DataFrame:
    """Score one origin's forecast of one method into long rows.

    Parameters
    ----------
    forecast
        ``(draw, year, municipality, age_group)``.
    observed_groups
        Observed ``(year, municipality, age_group)`` covering the forecast's labels.
    at_origin
        Observed ``(municipality, age_group)`` on 1 January of the origin (size classes).
    origin, method
        Labels of the rows.
    levels
        Central interval levels.
    point
        Score as a point forecast (no intervals).

    Returns
    -------
    pandas.DataFrame
        One row per year, unit and age group: ``origin, method, horizon, year,
        municipality, name, size_class, population_origin, age_group, observed`` and the
        scores of :func:`vekst.evaluate.metrics.score_ensemble`.
    """
    years = forecast["year"].values
    municipalities = forecast["municipality"].values.astype(str)
    groups = forecast["age_group"].values.astype(str)
    y = observed_groups.sel(year=years, municipality=municipalities, age_group=groups).values
    result = score_ensemble(forecast.values, y, axis=0, levels=levels, point_forecast=point)
    shape = y.shape
    year_grid, mun_grid, group_grid = np.meshgrid(
        np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]), indexing="ij"
    )
    base_total = at_origin.sel(municipality=municipalities, age_group=TOTAL).values
    names = (
        observed_groups["name"].sel(municipality=municipalities).values.astype(str)
        if "name" in observed_groups.coords
        else municipalities
    )
    frame = pd.DataFrame(
        {
            "origin": origin,
            "method": method,
            "horizon": (years - origin)[year_grid.ravel()],
            "year": years[year_grid.ravel()],
            "municipality": municipalities[mun_grid.ravel()],
            "name": names[mun_grid.ravel()],
            "size_class": size_class(base_total)[mun_grid.ravel()],
            "population_origin": base_total[mun_grid.ravel()],
            "age_group": groups[group_grid.ravel()],
            "observed": y.ravel(),
        }
    )
    for key, values in result.items():
        frame[key] = np.asarray(values).ravel()
    return frame
