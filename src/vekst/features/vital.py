"""Expected births and deaths by indirect standardisation, and vital deviations.

The attractiveness model splits natural growth into what national rates predict for the
local age structure (expected births, expected deaths) and a local deviation (source
chapter, "Fødselsoverskudd"; ``attractiveness-model.md``, "Population accounting").

Exposure
--------
National rates are per person-year: ``fertility_rate`` is births per woman-year by age
in completed years, ``mortality_rate`` the central death rate m(x). The default exposure
(``exposure="mean"``) approximates person-years at age ``a`` in year ``t`` by the mean of
the stocks aged ``a`` on 1 January ``t`` and 1 January ``t + 1``; expected events are
then flows of year ``t`` and, like observed flows, NaN in the last stock year.
``exposure="jan1"`` uses the 1 January stock alone (available in every year, slightly
biased where a population grows or shrinks quickly). Applying m(x) to person-years gives
expected deaths directly; the death probability ``q = 1 - exp(-m)`` is used only where a
probability is needed (the DS covariate).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from vekst.features.jobs import FeatureError

__all__ = [
    "MissingRateError",
    "death_probability",
    "expected_births",
    "expected_deaths",
    "person_years",
    "vital_deviation",
]

Exposure = Literal["mean", "jan1"]


class MissingRateError(FeatureError):
    """The panel lacks the national rate a feature needs."""


def person_years(panel: xr.Dataset, exposure: Exposure = "mean") -> xr.DataArray:
    """Approximate person-years by municipality, year, age and sex.

    Parameters
    ----------
    panel
        Panel with ``population`` (1 January stocks).
    exposure
        ``"mean"``: mean of the 1 January stocks of ``t`` and ``t + 1`` at the same age
        (NaN where ``t + 1`` is not in the panel); ``"jan1"``: the 1 January stock.

    Returns
    -------
    xarray.DataArray
        Dims as ``population``; units person-years.
    """
    population = panel["population"]
    if exposure == "jan1":
        out = population.copy()
    elif exposure == "mean":
        years = np.asarray(panel["year"].values)
        following = population.reindex(year=years + 1).assign_coords(year=years)
        out = 0.5 * (population + following)
    else:
        raise ValueError(f"exposure must be 'mean' or 'jan1', got {exposure!r}.")
    out.name = "person_years"
    out.attrs = {"units": "person-years", "exposure": exposure}
    return out


def _rate(panel: xr.Dataset, name: str, what: str) -> xr.DataArray:
    if name not in panel.data_vars:
        raise MissingRateError(
            f"the panel has no '{name}' ({what}); expected events need national rates. "
            "Build the panel with national rates (HMD/HFD) or use vekst.load_default()."
        )
    rate = panel[name]
    # Ages the source never tabulates (e.g. fertility below 12) are NaN in every year:
    # they carry no events. Any other NaN is a real gap and must stay NaN.
    never = rate.isnull().all("year")
    return rate.where(~never, 0.0)


def expected_births(panel: xr.Dataset, exposure: Exposure = "mean") -> xr.DataArray:
    """Births expected from national age-specific fertility (indirect standardisation).

    ``expected_births[m, t] = sum_a W[m, t, a] * f[a, t]`` with ``W`` the female
    person-years (see :func:`person_years`) and ``f`` the national ASFR of the year.

    Parameters
    ----------
    panel
        Panel with ``population`` and ``fertility_rate`` (age, year).
    exposure
        Exposure approximation, see the module docstring.

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, year)``, births. NaN in years without a fertility rate (and
        in the last stock year with ``exposure="mean"``).

    Raises
    ------
    MissingRateError
        If the panel has no ``fertility_rate``.
    """
    rate = _rate(panel, "fertility_rate", "national births per woman-year by age")
    women = person_years(panel, exposure).sel(sex="female", drop=True)
    out = (women * rate).sum("age", skipna=False)
    out = out.transpose("municipality", "year")
    out.name = "expected_births"
    out.attrs = {
        "units": "births",
        "long_name": "expected births: female person-years by age x national ASFR",
        "exposure": exposure,
    }
    return out


def expected_deaths(panel: xr.Dataset, exposure: Exposure = "mean") -> xr.DataArray:
    """Deaths expected from national death rates m(x) by age and sex.

    ``expected_deaths[m, t] = sum_{a,s} P[m, t, a, s] * m[a, s, t]`` with ``P`` the
    person-years (see :func:`person_years`).

    Parameters
    ----------
    panel
        Panel with ``population`` and ``mortality_rate`` (age, sex, year).
    exposure
        Exposure approximation, see the module docstring.

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, year)``, deaths.

    Raises
    ------
    MissingRateError
        If the panel has no ``mortality_rate``.
    """
    rate = _rate(panel, "mortality_rate", "national central death rate m(x) by age and sex")
    exposure_py = person_years(panel, exposure)
    out = (exposure_py * rate).sum(("age", "sex"), skipna=False)
    out = out.transpose("municipality", "year")
    out.name = "expected_deaths"
    out.attrs = {
        "units": "deaths",
        "long_name": "expected deaths: person-years by age and sex x national m(x)",
        "exposure": exposure,
    }
    return out


def death_probability(mortality_rate: xr.DataArray) -> xr.DataArray:
    """One-year death probability ``q = 1 - exp(-m)`` from a central death rate.

    Assumes a constant hazard within each year of age.

    Parameters
    ----------
    mortality_rate
        m(x) per person-year, any dims.

    Returns
    -------
    xarray.DataArray
        Same dims, probability.
    """
    q = 1.0 - np.exp(-mortality_rate)
    q.name = "death_probability"
    q.attrs = {"units": "probability per year", "derived_from": "1 - exp(-m(x))"}
    return q


def vital_deviation(observed: xr.DataArray, expected: xr.DataArray) -> xr.Dataset:
    """Deviation of observed from expected events.

    Parameters
    ----------
    observed
        Observed births or deaths.
    expected
        Expected events on the same labels (e.g. :func:`expected_births`).

    Returns
    -------
    xarray.Dataset
        ``difference`` = observed - expected (persons) and ``log_ratio`` =
        log(observed / expected). ``log_ratio`` is NaN where either count is 0 or
        missing (a log of 0 is undefined; use ``difference`` there).
    """
    observed, expected = xr.align(observed, expected, join="exact")
    difference = observed - expected
    valid = (observed > 0) & (expected > 0)
    log_ratio = np.log(observed.where(valid) / expected.where(valid))
    difference.attrs = {"units": "persons", "long_name": "observed minus expected events"}
    log_ratio.attrs = {
        "units": "1 (natural log)",
        "long_name": "log of observed over expected events; NaN where either is 0",
    }
    return xr.Dataset({"difference": difference, "log_ratio": log_ratio})
