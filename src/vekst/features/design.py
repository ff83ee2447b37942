"""Design matrix and dependent variable of the net-migration model.

``net_migration_rate[m, t] = a + b1 VRA[m,t] + b2 VRA[m,t-1] + b3 VRA[m,t-2]
+ b4 centrality[m] + b5 DS[m,t] + attractiveness[m,t]`` (source chapter, vedlegg 4;
``attractiveness-model.md``). The design matrix is laid out ``(covariate, municipality,
year)`` on the balanced grid, the layout the likelihood is cheapest on (see
``performance-notes.md``); missing cells stay NaN for the model to mask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from vekst.features.centrality import centrality as _centrality
from vekst.features.housing import housing_lag, housing_rate
from vekst.features.jobs import FeatureError, vra, vra_split
from vekst.features.labour import demographic_supply

__all__ = ["DEFAULT_COVARIATES", "UnknownCovariateError", "design_matrix", "net_migration_rate"]

DEFAULT_COVARIATES: tuple[str, ...] = ("vra_0", "vra_1", "vra_2", "centrality", "ds")
_VRA = re.compile(r"^vra(?P<part>_own|_neighbours)?_(?P<lag>\d+)$")
_UNITS = {
    "vra": "percentage points",
    "centrality": "SSB centrality index / 1000, centred",
    "ds": "percent of employment, centred",
    "housing": "completed dwellings per 1,000 inhabitants, centred",
}


class UnknownCovariateError(FeatureError):
    """A covariate name the design matrix does not know."""


def net_migration_rate(panel: xr.Dataset) -> xr.DataArray:
    """Net migration (domestic + international) in percent of the 1 January population.

    Parameters
    ----------
    panel
        Panel with ``net_migration_total`` (or ``net_migration`` by age and sex, which is
        summed) and ``population``.

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, year)``, percent of population on 1 January of the year; NaN
        where net migration is missing (always in the last stock year).

    Raises
    ------
    FeatureError
        If the panel has neither net-migration variable.
    """
    if "net_migration_total" in panel.data_vars:
        net = panel["net_migration_total"]
    elif "net_migration" in panel.data_vars:
        net = panel["net_migration"].sum(("age", "sex"), min_count=1)
    else:
        raise FeatureError(
            "the panel has no 'net_migration_total' or 'net_migration'; derive it with the "
            "residual method (population change minus births plus deaths) first."
        )
    population = panel["population"].sum(("age", "sex"))
    rate = 100.0 * net / population.where(population > 0)
    rate = rate.transpose("municipality", "year")
    rate.name = "net_migration_rate"
    rate.attrs = {
        "units": "percent of population on 1 January",
        "long_name": "net migration (domestic + international) / population 1 Jan x 100",
    }
    return rate


def design_matrix(
    panel: xr.Dataset,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    employment_rate: xr.DataArray | None = None,
    commuting_year: int | Mapping[int, int] | None = None,
    **vra_options: Any,
) -> xr.DataArray:
    """Covariates of the net-migration model on the municipality x year grid.

    Parameters
    ----------
    panel
        The panel.
    covariates
        Names: ``vra_L`` (VRA lag ``L``), ``vra_own_L`` / ``vra_neighbours_L`` (its two
        parts), ``centrality`` (time-constant, broadcast over year), ``ds`` and
        ``housing_L`` (completed dwellings per 1,000 inhabitants of year ``t - L``, see
        :mod:`vekst.features.housing`).
    employment_rate
        National employment rates for DS (default: estimated, see
        :func:`vekst.features.labour.estimate_employment_profile`).
    commuting_year
        Commuting matrix per job-growth year, see :func:`vekst.features.jobs.vra`.
    **vra_options
        ``national``, ``denominator``, ``on_incomplete``, ``max_unknown_share`` passed to
        :func:`vekst.features.jobs.vra`.

    Returns
    -------
    xarray.DataArray
        Dims ``(covariate, municipality, year)``; coordinate ``units`` on ``covariate``.
        NaN exactly where an input is missing (e.g. VRA lag 0 before the second
        employment year, DS where death rates are missing). ``attrs`` record the
        commuting year used for each job-growth year, ``centrality_center`` (the constant
        subtracted from centrality) and ``ds_center_by_year`` (DS is centred on the
        municipal mean of each year).

    Raises
    ------
    UnknownCovariateError
        For a name not listed above.
    """
    covariates = list(covariates)
    if not covariates or len(set(covariates)) != len(covariates):
        raise UnknownCovariateError(f"covariates must be unique and non-empty: {covariates}.")
    parsed: dict[str, tuple[str, int]] = {}
    for name in covariates:
        match = _VRA.match(name)
        if match:
            parsed[name] = ((match["part"] or "").lstrip("_") or "total", int(match["lag"]))
        elif name not in ("centrality", "ds") and housing_lag(name) is None:
            raise UnknownCovariateError(
                f"unknown covariate {name!r}; use vra_<lag>, vra_own_<lag>, "
                "vra_neighbours_<lag>, centrality, ds or housing_<lag> (defaults: "
                f"{list(DEFAULT_COVARIATES)})."
            )
    # Carries the municipality labels (name, county, region) onto every layer.
    grid = xr.zeros_like(panel["population"].isel(age=0, sex=0, drop=True), dtype=float).transpose(
        "municipality", "year"
    )
    layers: list[xr.DataArray] = []
    units: list[str] = []
    lags = sorted({lag for _, lag in parsed.values()})
    total = split = None
    if any(part == "total" for part, _ in parsed.values()):
        total = vra(panel, commuting_year=commuting_year, lags=lags, **vra_options)
    if any(part != "total" for part, _ in parsed.values()):
        split = vra_split(panel, commuting_year=commuting_year, lags=lags, **vra_options)
    ds = demographic_supply(panel, employment_rate) if "ds" in covariates else None
    housing_lags = sorted({lag for c in covariates if (lag := housing_lag(c)) is not None})
    housing = housing_rate(panel, housing_lags) if housing_lags else None
    for name in covariates:
        if name in parsed:
            part, lag = parsed[name]
            source = total if part == "total" else split[part]  # type: ignore[index]
            layer = source.sel(lag=lag, drop=True)  # type: ignore[union-attr]
            units.append(_UNITS["vra"])
        elif name == "centrality":
            layer = _centrality(panel) + grid
            units.append(_UNITS["centrality"])
        elif housing is not None and housing_lag(name) is not None:
            layer = housing.sel(lag=housing_lag(name), drop=True)
            units.append(_UNITS["housing"])
        else:
            layer = ds  # type: ignore[assignment]
            units.append(_UNITS["ds"])
        layers.append(_bare(layer, grid))
    out = xr.concat(layers, dim="covariate", coords="minimal", compat="override")
    out = out.assign_coords(covariate=covariates, units=("covariate", units))
    out.name = "design_matrix"
    out.attrs = {"long_name": "covariates of the net-migration model"}
    if total is not None:
        out.attrs["vra_job_growth_years"] = total.attrs["job_growth_years"]
        out.attrs["vra_commuting_years"] = total.attrs["commuting_years"]
    if "centrality" in covariates:
        # A projection must subtract the same constant to reuse fitted coefficients.
        out.attrs["centrality_center"] = float(_centrality(panel).attrs["center"])
    if housing is not None:
        # NaN where completions are unknown: the model switches the term off there.
        out.attrs["housing_center"] = float(housing.attrs["center"])
    if ds is not None:
        # DS is centred per year (no single constant): a projection centres each projected
        # year on its own municipal mean, as here.
        out.attrs["ds_center_by_year"] = np.asarray(ds.attrs["center"], dtype=float)
        out.attrs["ds_center_method"] = ds.attrs["center_method"]
    return out


def _bare(layer: xr.DataArray, grid: xr.DataArray) -> xr.DataArray:
    """Values of ``layer`` on the (municipality, year) grid, without extra coordinates."""
    aligned = layer.transpose("municipality", "year")
    return grid.copy(data=np.asarray(aligned.values, dtype=float))
