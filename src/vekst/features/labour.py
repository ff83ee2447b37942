"""Demographic employment supply (DS) and the national employment-rate profile it needs.

DS (source chapter, "Nytt i 2022-modellen: Nettoflytting og demografisk
sysselsettingstilgang"; ``attractiveness-model.md``) measures how many workers a place
gains or loses in one year just because its residents grow one year older, with no
migration: for ages ``i`` = 14..74 and each sex,

    DS_abs = sum_i pop[i] * (e[i+1] - e[i]) - pop[i] * q[i] * e[i]

with ``e`` the national employment rate by single-year age and sex and ``q`` the national
one-year death probability. DS is DS_abs in percent of the municipality's employment and
is then centred across municipalities in each year.

Choices made here
-----------------
* Employment in the denominator is the employment the same national rates imply for the
  residents, ``sum_i pop[i] * e[i]`` over ages 14..74 (``denominator="residents"``). It
  exists in every historical and projected year and does not depend on commuting. The
  source's worked example (Gjesdal) divides by the jobs located in the municipality
  instead; ``denominator="jobs"`` does that (``employed_workplace``, 2017-2021 only).
  For commuter suburbs the two differ by a factor of up to three.
* ``q = 1 - exp(-m)`` from the panel's national m(x) of the same year.
* The population is the 1 January stock of the year; DS of year ``t`` is the supply that
  arises during ``t``.
* National employment rates by single-year age and sex are not in the data (SSB 11618 has
  employed residents aged 15-74, both sexes, by municipality).
  :func:`estimate_employment_profile` recovers a smooth national age profile from the
  cross-section of municipalities; any user-supplied ``(age, sex)`` rates can replace it.

How much DS depends on the estimated profile is measured and tabulated in
:func:`estimate_employment_profile` (correlation >= 0.977 under shifts of two years in
the entry or exit age; the shape, not the level, matters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import xarray as xr
from scipy.optimize import least_squares
from scipy.special import expit

from vekst.features.jobs import FeatureError, MissingEmploymentError, years_with_data
from vekst.features.vital import MissingRateError, death_probability

__all__ = [
    "DS_MAX_AGE",
    "DS_MIN_AGE",
    "SSB_REGISTER_RATES_2006",
    "EmploymentRateError",
    "demographic_supply",
    "ds_components",
    "ds_percent",
    "employment_curve",
    "estimate_employment_profile",
]

#: First and last age ``i`` of the DS sum (the sum reads the rate at ``i + 1`` too).
DS_MIN_AGE = 14
DS_MAX_AGE = 74
#: Ages covered by SSB's employment counts (11618, 03321): 15-74.
COUNTED_AGES = (15, 74)
PROFILE_PARAMETERS = ("plateau", "rise_age", "rise_scale", "fall_age", "fall_scale")
#: National employed persons in percent of the population by age group, 4th quarter 2006,
#: register-based (Statistics Norway, "Sysselsetting, hovedtall (registerbasert
#: sysselsettingsstatistikk)", table 3 of the 2007 release,
#: https://ssb.no/a/static/regsys/tab-2007-06-13-03.html), as fractions. Same concept as the
#: panel's employment (register, 4th quarter, place of residence).
SSB_REGISTER_RATES_2006: dict[tuple[int, int], float] = {
    (15, 19): 0.372,
    (20, 24): 0.731,
    (25, 39): 0.826,
    (40, 54): 0.838,
    (55, 66): 0.650,
    (67, 74): 0.171,
}
_START = np.array([0.8, 19.0, 2.0, 64.0, 3.0])
_LOWER = np.array([0.2, 15.0, 0.3, 50.0, 0.3])
_UPPER = np.array([1.0, 35.0, 10.0, 80.0, 12.0])


class EmploymentRateError(FeatureError):
    """Employment rates are missing, out of range, or cannot be estimated."""


def employment_curve(
    age: np.ndarray,
    plateau: float,
    rise_age: float,
    rise_scale: float,
    fall_age: float,
    fall_scale: float,
    min_age: int = COUNTED_AGES[0],
) -> np.ndarray:
    """Employment rate by age: a logistic rise times a logistic fall.

    ``e(a) = plateau * expit((a - rise_age) / rise_scale) * expit(-(a - fall_age) /
    fall_scale)`` for ``a >= min_age`` and 0 below (nobody under 15 is counted as
    employed).

    Parameters
    ----------
    age
        Ages (completed years).
    plateau, rise_age, rise_scale, fall_age, fall_scale
        Height of the prime-age plateau; age and spread (years) of the entry into work;
        age and spread of the exit.
    min_age
        First age with a non-zero rate.

    Returns
    -------
    numpy.ndarray
        Rates in [0, 1], same shape as ``age``.
    """
    a = np.asarray(age, dtype=float)
    value = plateau * expit((a - rise_age) / rise_scale) * expit(-(a - fall_age) / fall_scale)
    return np.where(a >= min_age, value, 0.0)


def estimate_employment_profile(
    panel: xr.Dataset,
    years: Sequence[int] | None = None,
    female_to_male: float = 1.0,
    method: Literal["anchored", "cross_section"] = "anchored",
    age_group_rates: Mapping[tuple[int, int], float] | None = None,
    anchor_year: int = 2006,
) -> xr.DataArray:
    """Estimate a smooth national employment-rate profile by single-year age (and sex).

    The profile is :func:`employment_curve` (logistic rise x logistic fall). Two methods:

    ``"anchored"`` (default)
        1. The *shape* (all five parameters) is fitted by least squares to published
           national employment rates by age group, weighting single ages within a group
           by the panel's national population of ``anchor_year``. Default groups:
           :data:`SSB_REGISTER_RATES_2006` (SSB register-based employment statistics, 4th
           quarter 2006, the latest by-age table at hand).
        2. The *level* is one factor fitted by least squares so that
           ``sum_{a=15..74, s} pop[m, t, a, s] * rate[a, s]`` matches
           ``employed_residence[m, t]`` across municipalities and the ``years`` (residuals
           per resident aged 15-74, so every municipality counts equally).
    ``"cross_section"``
        All five parameters from the municipal cross-section of step 2 alone. Kept for
        comparison: on the embedded panel the age shape is not identified this way (age
        structure is confounded with everything else that makes places' employment
        rates differ) and the fit collapses to a step function (rate 0.78 from age 16 to
        65, 0 from 68), which is not a credible national profile.

    DS in percent of implied resident employment (the default in
    :func:`demographic_supply`) does not depend on the level at all, only on the shape.

    Measured effect of the assumptions (embedded panel; DS centred on the municipal mean;
    all 6,069 municipality-years 2005-2021; correlation with DS from the default profile,
    ratio of standard deviations):

    ==============================  ===========  ========
    profile                         correlation  sd ratio
    ==============================  ===========  ========
    exit two years later / earlier  0.998/0.997  0.97/1.02
    entry two years later / earlier 0.980/0.977  1.03/1.03
    exit 1.5x more gradual          0.996        0.91
    women at 0.93 x men             0.9999       1.00
    any change of level             1            1
    ``method="cross_section"``      0.82         1.30
    ==============================  ===========  ========

    The 2006 shape predates the 2011 pension reform, which raised employment at 62-74;
    the table shows that a later exit barely moves DS. With the default profile Gjesdal's
    DS_abs averages 0.58 % of its population per year 2005-2021 (the source: "over
    0.6 %"), and national DS_abs falls from about 9,800 (2005) to 1,900 (2021), the same
    decline as the source's 14,636 (2004) to 1,190 (2021) from single-year rates. Sex
    split: women's rate is ``female_to_male`` times men's at every age (default 1.0, one
    common profile, as the counts are for both sexes together).

    Parameters
    ----------
    panel
        Panel with ``population`` and ``employed_residence`` (aged 15-74).
    years
        Years for the level (and the cross-section fit); default every year with
        ``employed_residence`` data.
    female_to_male
        Ratio of the female to the male employment rate at every age.
    method
        ``"anchored"`` or ``"cross_section"``, see above.
    age_group_rates
        ``{(first_age, last_age): rate}`` (fractions) for the anchored shape; default
        :data:`SSB_REGISTER_RATES_2006`.
    anchor_year
        Population year weighting single ages within the groups (the panel's first year
        if ``anchor_year`` is not in the panel).

    Returns
    -------
    xarray.DataArray
        Dims ``(age, sex)`` on the panel's ages, employed persons per resident; 0 below
        15, extrapolated above 74 by the logistic fall (DS reads age 75). ``attrs`` hold
        the method, the curve parameters (level included), the level factor, the
        residual standard deviation on the rate scale and the years used.

    Raises
    ------
    MissingEmploymentError
        If the panel has no ``employed_residence`` data in the requested years.
    EmploymentRateError
        If a fit fails or the fitted rates exceed 1.
    """
    if "employed_residence" not in panel.data_vars:
        raise MissingEmploymentError(
            "estimating the national employment profile needs 'employed_residence' "
            "(employed residents aged 15-74 by municipality and year, SSB 11618); pass "
            "employment_rate=... (age x sex) instead if the panel lacks it."
        )
    employed = panel["employed_residence"].transpose("municipality", "year")
    available = years_with_data(employed)
    chosen = available if years is None else [int(y) for y in years]
    lacking = [y for y in chosen if y not in available]
    if not chosen or lacking:
        raise MissingEmploymentError(
            f"employed_residence has no data for {lacking or 'any year'}; it is available "
            f"for {available}."
        )
    if not female_to_male > 0:
        raise EmploymentRateError(f"female_to_male must be positive, got {female_to_male}.")
    if method not in ("anchored", "cross_section"):
        raise ValueError(f"method must be 'anchored' or 'cross_section', got {method!r}.")
    ages = np.asarray(panel["age"].values)
    sexes = [str(s) for s in panel["sex"].values]
    sex_factor = np.array([female_to_male if s == "female" else 1.0 for s in sexes])
    counted = (ages >= COUNTED_AGES[0]) & (ages <= COUNTED_AGES[1])
    pop = panel["population"].sel(year=chosen).transpose("municipality", "year", "age", "sex")
    weighted = (pop.values[..., counted, :] * sex_factor).sum(-1)  # (m, t, age)
    target = employed.sel(year=chosen).values
    exposed = pop.values[..., counted, :].sum((-2, -1))
    keep = np.isfinite(target) & (exposed > 0) & np.isfinite(weighted).all(-1)
    design, observed, scale = weighted[keep], target[keep], exposed[keep]
    counted_ages = ages[counted]

    def residuals(theta: np.ndarray) -> np.ndarray:
        return (design @ employment_curve(counted_ages, *theta) - observed) / scale

    attrs: dict = {"units": "employed persons per resident", "derived": "yes"}
    if method == "cross_section":
        fit = least_squares(
            residuals, _START, bounds=(_LOWER, _UPPER), x_scale="jac", max_nfev=2000
        )
        if not fit.success:
            raise EmploymentRateError(f"employment profile fit failed: {fit.message}")
        params = fit.x
        dof = max(observed.size - params.size, 1)
        sigma = float(np.sqrt(np.sum(fit.fun**2) / dof))
        try:
            se = np.sqrt(np.clip(np.diag(np.linalg.inv(fit.jac.T @ fit.jac)), 0, None)) * sigma
        except np.linalg.LinAlgError:
            se = np.full(params.size, np.nan)
        attrs.update(
            method="logistic rise x logistic fall, all parameters by least squares on "
            "employed_residence across municipalities (residuals per resident 15-74)",
            parameter_se=se,
            level_factor=1.0,
        )
    else:
        groups = dict(SSB_REGISTER_RATES_2006 if age_group_rates is None else age_group_rates)
        shape = _fit_age_groups(panel, groups, anchor_year, sex_factor)
        base = design @ employment_curve(counted_ages, *shape)
        # Closed-form least squares for one factor c in c * base ~ observed (per resident).
        level = float(np.sum(base * observed / scale**2) / np.sum(base**2 / scale**2))
        params = shape.copy()
        params[0] *= level
        resid = (level * base - observed) / scale
        sigma = float(np.sqrt(np.sum(resid**2) / max(observed.size - 1, 1)))
        attrs.update(
            method="logistic rise x logistic fall; shape by least squares on national "
            "employment rates by age group, level by least squares on employed_residence "
            "across municipalities (residuals per resident 15-74)",
            age_groups=np.array([list(g) for g in groups], dtype=int),
            age_group_rates=np.array(list(groups.values()), dtype=float),
            anchor_year=int(anchor_year),
            level_factor=level,
        )
    if params[0] * max(sex_factor) > 1:
        raise EmploymentRateError(
            f"fitted employment rates exceed 1 (plateau {params[0] * max(sex_factor):.3f}); "
            "check employed_residence against population or lower female_to_male."
        )
    male = employment_curve(ages, *params)
    values = np.stack([male * f for f in sex_factor], axis=-1)
    out = xr.DataArray(
        values,
        dims=("age", "sex"),
        coords={"age": panel["age"].values, "sex": panel["sex"].values},
        name="employment_rate",
    )
    attrs.update(
        parameter_names=list(PROFILE_PARAMETERS),
        parameters=np.asarray(params, dtype=float),
        residual_sd=sigma,
        n_observations=int(observed.size),
        years=np.array(chosen, dtype=int),
        female_to_male=float(female_to_male),
    )
    out.attrs = attrs
    return out


def _fit_age_groups(
    panel: xr.Dataset,
    groups: Mapping[tuple[int, int], float],
    anchor_year: int,
    sex_factor: np.ndarray,
) -> np.ndarray:
    """Curve parameters whose population-weighted group means match ``groups``."""
    if len(groups) < len(PROFILE_PARAMETERS):
        raise EmploymentRateError(
            f"age_group_rates needs at least {len(PROFILE_PARAMETERS)} groups to fix the "
            f"curve's {len(PROFILE_PARAMETERS)} parameters; got {len(groups)}."
        )
    rates = np.array(list(groups.values()), dtype=float)
    if np.any(rates < 0) or np.any(rates > 1):
        raise EmploymentRateError(
            f"age_group_rates must be fractions in [0, 1] (not percent); got {rates.tolist()}."
        )
    years = [int(y) for y in panel["year"].values]
    year = anchor_year if anchor_year in years else years[0]
    national = panel["population"].sel(year=year).sum("municipality").transpose("age", "sex")
    ages = np.asarray(panel["age"].values)
    pop = national.values
    masks = [(ages >= lo) & (ages <= hi) for lo, hi in groups]

    def residuals(theta: np.ndarray) -> np.ndarray:
        rate = employment_curve(ages, *theta)[:, None] * sex_factor[None, :]
        return np.array([(pop[m] * rate[m]).sum() / pop[m].sum() for m in masks]) - rates

    fit = least_squares(residuals, _START, bounds=(_LOWER, _UPPER), x_scale="jac")
    if not fit.success:
        raise EmploymentRateError(f"fit to age_group_rates failed: {fit.message}")
    return fit.x


def ds_components(
    population: np.ndarray,
    employment_rate: np.ndarray,
    death_probability: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Numerator (DS_abs, persons) and denominator (implied employment) of DS.

    Parameters
    ----------
    population
        ``[..., age, sex]`` with the age axis 0, 1, ..., at least to age 75.
    employment_rate
        ``[age, sex]`` (or broadcastable to ``population``) on the same age axis.
    death_probability
        ``[age, sex]`` or ``[..., age, sex]`` broadcastable to ``population``.

    Returns
    -------
    tuple of numpy.ndarray
        ``DS_abs`` and ``sum_{i=14..74} pop[i] * e[i]``, both of shape ``[...]``.
    """
    pop = np.asarray(population, dtype=float)
    rate = np.asarray(employment_rate, dtype=float)
    q = np.asarray(death_probability, dtype=float)
    if pop.ndim < 2 or pop.shape[-2] < DS_MAX_AGE + 2:
        raise ValueError(
            f"population must be [..., age, sex] with ages 0..{DS_MAX_AGE + 1} at least; "
            f"got shape {pop.shape}."
        )
    ages = slice(DS_MIN_AGE, DS_MAX_AGE + 1)
    next_ages = slice(DS_MIN_AGE + 1, DS_MAX_AGE + 2)
    e_now = rate[..., ages, :]
    # Per-person contribution: rate gained by ageing one year minus employed lost to death.
    weight = rate[..., next_ages, :] - e_now - q[..., ages, :] * e_now
    p = pop[..., ages, :]
    numerator = np.sum(p * weight, axis=(-2, -1))
    denominator = np.sum(p * e_now, axis=(-2, -1))
    return numerator, denominator


def ds_percent(
    population: np.ndarray,
    employment_rate: np.ndarray,
    death_probability: np.ndarray,
) -> np.ndarray:
    """Uncentred demographic employment supply in percent of implied employment.

    The array kernel behind :func:`demographic_supply`, also called by the projection
    in every projected year.

    Parameters
    ----------
    population
        ``[..., age, sex]`` on the panel's age axis (0..105); ages outside 14..74 (75 for
        the rate) are ignored.
    employment_rate
        ``[age, sex]`` national employment rates on the same age axis.
    death_probability
        ``[age, sex]`` (or ``[..., age, sex]``) one-year death probabilities.

    Returns
    -------
    numpy.ndarray
        ``[...]``: ``100 * DS_abs / sum_i pop[i] * e[i]``; NaN where the implied
        employment is 0.
    """
    numerator, denominator = ds_components(population, employment_rate, death_probability)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 100.0 * numerator / denominator, np.nan)


def _checked_rate(rate: xr.DataArray, panel: xr.Dataset) -> np.ndarray:
    if set(rate.dims) != {"age", "sex"}:
        raise EmploymentRateError(
            f"employment_rate must have dims ('age', 'sex'), got {rate.dims}."
        )
    aligned = rate.reindex(age=panel["age"].values, sex=panel["sex"].values)
    aligned = aligned.transpose("age", "sex")
    needed = aligned.sel(age=slice(DS_MIN_AGE, DS_MAX_AGE + 1))
    bad = ~np.isfinite(needed.values).all(-1)
    if bad.any():
        ages = needed["age"].values[bad]
        raise EmploymentRateError(
            f"employment_rate is missing at ages {ages.tolist()[:10]} (needed for every age "
            f"{DS_MIN_AGE}-{DS_MAX_AGE + 1} and both sexes); give 0 where nobody works."
        )
    if float(needed.min()) < 0 or float(needed.max()) > 1:
        raise EmploymentRateError(
            "employment_rate must be a fraction in [0, 1] (not percent); got values from "
            f"{float(needed.min()):g} to {float(needed.max()):g}."
        )
    return np.nan_to_num(aligned.values, nan=0.0)


def demographic_supply(
    panel: xr.Dataset,
    employment_rate: xr.DataArray | None = None,
    center: Literal["mean", "national"] | None = "mean",
    denominator: Literal["residents", "jobs"] = "residents",
) -> xr.DataArray:
    """Demographic employment supply DS by municipality and year, in % of employment.

    Parameters
    ----------
    panel
        Panel with ``population`` and ``mortality_rate`` (and ``employed_residence`` when
        ``employment_rate`` is not given).
    employment_rate
        National rates ``(age, sex)``; default :func:`estimate_employment_profile`.
    center
        ``"mean"`` (default): subtract the simple mean over municipalities of each year;
        ``"national"``: subtract the national DS (sum of DS_abs over sum of employment);
        ``None``: no centring.
    denominator
        ``"residents"`` (default): implied resident employment ``sum pop * e``;
        ``"jobs"``: ``employed_workplace`` (NaN outside its years).

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, year)``, percent. ``attrs["center"]`` holds the value
        subtracted in each year (aligned with the ``year`` coordinate). NaN in a year whose
        death rates are missing at ages 14-74.

    Raises
    ------
    MissingRateError
        If the panel has no ``mortality_rate``.
    EmploymentRateError
        If a supplied rate lacks ages 14-75 or is not a fraction.
    """
    if "mortality_rate" not in panel.data_vars:
        raise MissingRateError(
            "DS needs the national death rates 'mortality_rate' (age, sex, year) for the "
            "deaths among the employed; the panel has none."
        )
    if employment_rate is None:
        employment_rate = estimate_employment_profile(panel)
    rate = _checked_rate(employment_rate, panel)
    q = death_probability(panel["mortality_rate"]).transpose("year", "age", "sex")
    q = q.reindex(year=panel["year"].values, age=panel["age"].values, sex=panel["sex"].values)
    pop = panel["population"].transpose("year", "municipality", "age", "sex")
    numerator, implied = ds_components(pop.values, rate, q.values[:, None, :, :])
    if denominator == "residents":
        denom = implied
    elif denominator == "jobs":
        if "employed_workplace" not in panel.data_vars:
            raise MissingEmploymentError(
                "denominator='jobs' needs 'employed_workplace'; the panel has none."
            )
        denom = panel["employed_workplace"].transpose("year", "municipality").values
    else:
        raise ValueError(f"denominator must be 'residents' or 'jobs', got {denominator!r}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        ds = np.where(denom > 0, 100.0 * numerator / denom, np.nan)
    n_years = ds.shape[0]
    if center is None:
        centre = np.zeros(n_years)
    elif center == "mean":
        finite = np.isfinite(ds)
        count = finite.sum(1)
        centre = np.where(
            count > 0, np.where(finite, ds, 0.0).sum(1) / np.maximum(count, 1), np.nan
        )
    elif center == "national":
        finite = np.isfinite(ds)
        centre = (
            100.0 * np.where(finite, numerator, 0.0).sum(1) / np.where(finite, denom, 0.0).sum(1)
        )
    else:
        raise ValueError(f"center must be 'mean', 'national' or None, got {center!r}.")
    out = xr.DataArray(
        (ds - centre[:, None]).T,
        dims=("municipality", "year"),
        coords={"municipality": panel["municipality"], "year": panel["year"]},
        name="ds",
    )
    out.attrs = {
        "units": "percent of employment",
        "long_name": "demographic employment supply (DS), centred",
        "center": centre,
        "center_method": str(center),
        "denominator": denominator,
        "employment_rate_method": str(employment_rate.attrs.get("method", "user-supplied")),
    }
    return out
