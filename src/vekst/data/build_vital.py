"""National vital rates of the embedded panel: HMD mortality (Kannisto above 100), HFD
fertility and births (see :mod:`vekst.data.build`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy.optimize import minimize

from vekst.data.build_sources import AGES, FILES, HIST_YEARS, BuildLog, SourceFileError, _path
from vekst.data.hmd import read_hfd_asfr, read_hmd_births, read_hmd_lexis
from vekst.data.panel import SEXES


def _kannisto_fit(ages: np.ndarray, deaths: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Poisson maximum likelihood of ``logit m(x) = c + b (x - 80)``; returns (c, b).

    BFGS brings the estimate close; Newton steps with the exact Hessian then solve the
    score equations to rounding error. BFGS alone stops at a gradient tolerance, so where
    it stops depends on the last bits of numpy's SIMD sums, and the shipped rates differed
    between machines by 4e-9 relative; the Newton fixed point does not.
    """
    x = ages - 80.0

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] + theta[1] * x
        m = 1.0 / (1.0 + np.exp(-eta))
        value = np.sum(exposure * m - deaths * np.log(m))
        d_eta = (1.0 - m) * (exposure * m - deaths)
        return float(value), np.array([d_eta.sum(), (d_eta * x).sum()])

    result = minimize(nll, np.array([-2.5, 0.1]), jac=True, method="BFGS")
    if not result.success and result.nit == 0:
        raise SourceFileError("Kannisto fit of old-age mortality failed.")
    theta = result.x
    for _ in range(50):
        eta = theta[0] + theta[1] * x
        m = 1.0 / (1.0 + np.exp(-eta))
        d_eta = (1.0 - m) * (exposure * m - deaths)
        score = np.array([d_eta.sum(), (d_eta * x).sum()])
        # d2 nll / d eta2 = m (1 - m) (E (1 - 2m) + D): positive near the optimum.
        w = m * (1.0 - m) * (exposure * (1.0 - 2.0 * m) + deaths)
        hessian = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
        if not np.all(np.linalg.eigvalsh(hessian) > 0):
            break
        step = np.linalg.solve(hessian, score)
        theta = theta - step
        if np.all(np.abs(step) <= 1e-14 * np.maximum(np.abs(theta), 1.0)):
            break
    return theta


def kannisto_old_age(
    ages: np.ndarray,
    deaths: np.ndarray,
    exposure: np.ndarray,
    *,
    from_age: int = 100,
    open_age: int = 105,
    fit_ages: tuple[int, int] = (80, 109),
) -> np.ndarray:
    """Replace noisy old-age death rates by a Kannisto (logistic) fit.

    Parameters
    ----------
    ages, deaths, exposure
        Single ages with death counts and person-years (exposure may be approximate).
    from_age
        First age whose rate is taken from the fit.
    open_age
        The open age group of the result; its rate is the mean hazard of a stationary
        population above ``open_age`` under the fitted curve (ages to 130).
    fit_ages
        Age range used for the fit.

    Returns
    -------
    numpy.ndarray
        Rates for ages ``from_age .. open_age`` (the last one open).
    """
    use = (ages >= fit_ages[0]) & (ages <= fit_ages[1]) & (exposure > 0)
    c, b = _kannisto_fit(ages[use].astype(float), deaths[use], exposure[use])

    def rate(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(c + b * (x - 80.0))))

    closed = rate(np.arange(from_age, open_age, dtype=float))
    above = rate(np.arange(open_age, 131, dtype=float))
    survivors = np.concatenate([[1.0], np.exp(-np.cumsum(above[:-1]))])
    # Person-years ~ survivors at mid-year; the open rate is deaths over person-years.
    person_years = survivors * (1 - np.exp(-above)) / above
    open_rate = np.sum(person_years * above) / np.sum(person_years)
    return np.append(closed, open_rate)


def read_mortality(source: Path, log: BuildLog) -> xr.DataArray:
    """HMD m(x) by (hist_year, age 0-105+, sex), old ages smoothed (see data/README.md)."""
    mx = read_hmd_lexis(_path(source, "mx"))
    deaths = read_hmd_lexis(_path(source, "deaths"))
    population = read_hmd_lexis(_path(source, "hmd_population"))
    rates = np.full((len(HIST_YEARS), len(AGES), 2), np.nan)
    all_ages = np.arange(0, 111)
    for iy, year in enumerate(HIST_YEARS):
        for isex, sex in enumerate(SEXES):
            m = mx[mx["year"] == year].set_index("age")[sex].reindex(all_ages).to_numpy()
            d = deaths[deaths["year"] == year].set_index("age")[sex].reindex(all_ages).to_numpy()
            p0 = population[population["year"] == year].set_index("age")[sex]
            p1 = population[population["year"] == year + 1].set_index("age")[sex]
            approx = ((p0.reindex(all_ages) + p1.reindex(all_ages)) / 2).to_numpy()
            # HMD exposure is D/m where both are positive; elsewhere the mean of the two
            # 1 January stocks (a fine approximation where deaths are zero anyway).
            with np.errstate(divide="ignore", invalid="ignore"):
                exposure = np.where((m > 0) & (d > 0), d / m, approx)
            exposure = np.nan_to_num(exposure)
            old = kannisto_old_age(all_ages, np.nan_to_num(d), exposure)
            row = np.concatenate([m[:100], old])
            rates[iy, :, isex] = row
    if np.isnan(rates).any() or (rates > 1).any() or (rates < 0).any():
        bad = np.argwhere(np.isnan(rates) | (rates > 1) | (rates < 0))[0]
        raise SourceFileError(
            f"{FILES['mx']}: m(x) missing or outside [0, 1] below age 100 at year "
            f"{HIST_YEARS[bad[0]]}, age {AGES[bad[1]]}, {SEXES[bad[2]]}."
        )
    log.notes["mortality_smoothed_from_age"] = 100
    return xr.DataArray(
        rates,
        dims=("hist_year", "age", "sex"),
        coords={"hist_year": HIST_YEARS, "age": AGES, "sex": list(SEXES)},
    )


def read_fertility(source: Path) -> xr.DataArray:
    """HFD ASFR by (hist_year, age 0-105); 12- at 12, 55+ at 55, zero elsewhere."""
    asfr = read_hfd_asfr(_path(source, "asfr"))
    wide = asfr.pivot(index="year", columns="age", values="asfr")
    wide = wide.reindex(columns=AGES, fill_value=0.0).reindex(index=HIST_YEARS)
    return xr.DataArray(
        wide.to_numpy(float),
        dims=("hist_year", "age"),
        coords={"hist_year": HIST_YEARS, "age": AGES},
    )


def read_births(source: Path) -> xr.DataArray:
    """HMD live births by (hist_year, sex)."""
    births = read_hmd_births(_path(source, "births")).set_index("year")
    values = births.reindex(HIST_YEARS)[list(SEXES)].to_numpy(float)
    return xr.DataArray(
        values, dims=("hist_year", "sex"), coords={"hist_year": HIST_YEARS, "sex": list(SEXES)}
    )


# ---------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------
