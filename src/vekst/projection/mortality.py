r"""National mortality for the projection: history, improvement trend and life tables.

Assumption (documented default)
-------------------------------
Death rates keep improving at the pace of the recent past. For every sex and single-year
age we fit a straight line to :math:`\log m(x, t)` over the last ``window`` (20) observed
years and keep its slope :math:`b_x` as the yearly change. The slopes are smoothed over
neighbouring ages (a 5-year moving average, because single-age slopes at very old and
very young ages are noisy), clipped so that no age worsens (:math:`b_x \le 0`) and no age
improves faster than 5 % a year. The projection starts from the **observed** rates of the
last year with data (the jump-off year *T*):

.. math::

    m(x, s, t) = m(x, s, T) \exp\big(\lambda\, b_{x,s}\, (t - T)\big)

with :math:`\lambda` = ``improvement_multiplier`` of the scenario (1 by default; 0 freezes
mortality; 2 doubles the pace). ``method="lee_carter"`` replaces the per-age slopes with
the Lee-Carter drift :math:`b_x \cdot \bar{\Delta k}` (first singular vector of the centred
log rates, random walk with drift for :math:`k_t`).

Uncertainty (stochastic projections): a Lee-Carter fit on the same window (log rates
smoothed over age) gives the age loading :math:`b_x` and the random walk of the period
index :math:`k_t`; each draw adds :math:`b_x \kappa_{d,t}` to the log rates, with
:math:`\kappa` the drift's estimation error times the horizon plus the walk's yearly
shocks (:meth:`MortalityTrend.simulate_shift`). The mean path is unchanged.

Survival follows the constant-hazard convention of :mod:`vekst.data.components`:
the probability to survive one year of age at rate *m* is :math:`\exp(-m)`. The life
table of :func:`life_expectancy` uses the same convention, so an e0 shift and the
projection agree on what a rate means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from vekst.errors import PanelError

__all__ = [
    "MortalityDataError",
    "MortalityTrend",
    "estimate_mortality_trend",
    "life_expectancy",
    "mortality_history",
    "shift_life_expectancy",
]

#: Rates are floored here before taking logs (a zero single-age rate has no log).
RATE_FLOOR = 1e-7
#: Youngest age in the Lee-Carter fit of the random walk's uncertainty. Below 40 the
#: single-age national rates rest on a few dozen deaths a year: their Poisson noise took
#: over the first singular vector (loading 0.05 at ages 0-9 against 0.003 at 80) and the
#: yearly sd of the index (21.7, against 1.0 from ages 40+), so the projected sd of the
#: log hazard at age 80 after 18 years was 0.5 instead of 0.09 and deaths in 2039 ranged
#: from 49,000 to 121,000. Younger ages keep their deterministic trend; their deaths are
#: too few to move a population.
LEE_CARTER_FIRST_AGE = 40


class MortalityDataError(PanelError):
    """The panel lacks usable national death rates; the message says what to add."""


def mortality_history(panel: xr.Dataset, *, before_year: int | None = None) -> xr.DataArray:
    """National death rates as ``(year, sex, age)``, years with complete data only.

    Uses ``mortality_rate_history`` (dims ``hist_year, age, sex``; a long national series)
    when the panel has it, else ``mortality_rate`` (``age, sex, year``).

    Parameters
    ----------
    panel
        A validated panel.
    before_year
        Keep only calendar years strictly before this one (the projection's base year), so
        a back-test never sees the rates of the years it projects.

    Returns
    -------
    xarray.DataArray
        Dims ``(year, sex, age)``, float64.

    Raises
    ------
    MortalityDataError
        When neither variable exists or no year is complete.
    """
    if "mortality_rate_history" in panel:
        rates = panel["mortality_rate_history"].rename({"hist_year": "year"})
        source = "mortality_rate_history"
    elif "mortality_rate" in panel:
        rates = panel["mortality_rate"]
        source = "mortality_rate"
    else:
        raise MortalityDataError(
            "the panel has neither 'mortality_rate_history' (hist_year, age, sex) nor "
            "'mortality_rate' (age, sex, year); add national death rates (e.g. HMD Mx_1x1) "
            "before projecting."
        )
    rates = rates.transpose("year", "sex", "age").sel(sex=["female", "male"])
    if before_year is not None:
        rates = rates.sel(year=rates["year"] < before_year)
    complete = np.asarray(rates.notnull().all(("sex", "age")).values)
    rates = rates.isel(year=np.flatnonzero(complete))
    if rates.sizes["year"] == 0:
        limit = f" before {before_year}" if before_year is not None else ""
        raise MortalityDataError(
            f"'{source}' has no year{limit} with a rate for every age and sex; fill the "
            "missing ages (e.g. extrapolate the oldest ages) or choose a later base year."
        )
    return rates.astype(np.float64)


@dataclass(frozen=True)
class MortalityTrend:
    """Jump-off rates and yearly log-rate change per sex and age.

    Attributes
    ----------
    jump_off_year
        Last observed calendar year; projected rates are relative to it.
    jump_off_rate
        Observed rates of that year, ``(sex, age)``.
    drift
        Yearly change of ``log m``, ``(sex, age)``; negative means improvement.
    method, window
        How the drift was estimated and over how many years.
    """

    jump_off_year: int
    jump_off_rate: np.ndarray
    drift: np.ndarray
    method: str
    window: int
    loading: np.ndarray | None = None
    drift_se: np.ndarray | None = None
    sigma_k: np.ndarray | None = None

    def simulate_shift(self, n_draws: int, horizons: np.ndarray, seed: int) -> np.ndarray:
        r"""Lee-Carter deviations of the period index from its mean path.

        :math:`\kappa_{d,h} = h\,\delta_d + \sum_{j \le h} \sigma_k \varepsilon_{d,j}`
        with :math:`\delta_d \sim N(0, \mathrm{se}^2)` (the drift's estimation error) and
        :math:`\varepsilon` the random walk's yearly shocks; log rates move by
        ``loading * kappa``. Returns ``(draw, year, sex)``; zeros without a Lee-Carter fit.
        """
        horizons = np.asarray(horizons, dtype=np.int64)
        n_sex = self.jump_off_rate.shape[0]
        if self.loading is None or self.sigma_k is None or self.drift_se is None:
            return np.zeros((n_draws, len(horizons), n_sex))
        rng = np.random.default_rng([int(seed), 0x1EE])
        steps = int(max(horizons.max(), 1))
        delta = rng.standard_normal((n_draws, 1, n_sex)) * self.drift_se
        # One generator per horizon: a shorter run sees the same shocks.
        shocks = np.stack(
            [np.random.default_rng([int(seed), 0x1EE, 1, h + 1]).standard_normal((n_draws, n_sex))
             for h in range(steps)],
            axis=1,
        ) * self.sigma_k
        walk = np.cumsum(shocks, axis=1)
        h = np.arange(1, steps + 1)[None, :, None]
        kappa = h * delta + walk
        index = np.clip(horizons - 1, 0, steps - 1)
        return np.where((horizons >= 1)[None, :, None], kappa[:, index], 0.0)

    def rates(self, years: np.ndarray, *, improvement_multiplier: float = 1.0) -> np.ndarray:
        """Projected national death rates ``(year, sex, age)`` for calendar ``years``.

        Parameters
        ----------
        years
            Calendar years (usually after ``jump_off_year``; earlier years extrapolate
            backwards along the same trend).
        improvement_multiplier
            Scales the drift (scenario alternative); 0 holds the jump-off rates.
        """
        horizon = np.asarray(years, dtype=np.float64) - self.jump_off_year
        factor = np.exp(improvement_multiplier * self.drift[None] * horizon[:, None, None])
        return self.jump_off_rate[None] * factor

    def describe(self) -> dict:
        """Plain-data summary stored in the projection's attrs."""
        return {
            "method": self.method,
            "window": self.window,
            "jump_off_year": self.jump_off_year,
            "mean_improvement_pct_per_year_over_ages": {
                sex: round(float(-100 * np.mean(self.drift[i])), 3)
                for i, sex in enumerate(("female", "male"))
            },
            "lee_carter_uncertainty": None
            if self.sigma_k is None
            else {
                sex: {"sigma_k": round(float(self.sigma_k[i]), 4),
                      "drift_se": round(float(self.drift_se[i]), 4)}
                for i, sex in enumerate(("female", "male"))
            },
        }


def estimate_mortality_trend(
    history: xr.DataArray,
    *,
    window: int = 20,
    method: str = "loglinear",
    smooth_ages: int = 5,
    max_improvement: float = 0.05,
    allow_worsening: bool = False,
) -> MortalityTrend:
    """Estimate the yearly improvement of national death rates.

    Parameters
    ----------
    history
        ``(year, sex, age)`` rates from :func:`mortality_history`.
    window
        Number of most recent years used for the trend.
    method
        ``"loglinear"`` (per-age OLS slope of log rates) or ``"lee_carter"``.
    smooth_ages
        Width of the moving average over ages applied to the slopes (1 = none).
    max_improvement
        Largest yearly improvement allowed at any age (0.05 = 5 % a year).
    allow_worsening
        Keep positive slopes (rising mortality); by default they are set to 0.

    Returns
    -------
    MortalityTrend
    """
    if method not in ("loglinear", "lee_carter"):
        raise ValueError(f"method must be 'loglinear' or 'lee_carter', not {method!r}")
    years = np.asarray(history["year"].values, dtype=np.float64)
    values = np.asarray(history.transpose("year", "sex", "age").values, dtype=np.float64)
    recent = slice(max(0, len(years) - window), len(years))
    years_w, values_w = years[recent], values[recent]
    jump_off = values[-1].copy()
    if len(years_w) < 2:
        drift = np.zeros_like(jump_off)
    else:
        log_m = np.log(np.maximum(values_w, RATE_FLOOR))
        if method == "loglinear":
            centred = years_w - years_w.mean()
            drift = np.tensordot(centred, log_m - log_m.mean(0), axes=(0, 0)) / np.sum(
                centred**2
            )
            drift = _smooth(drift, smooth_ages)
        else:
            # Single-age log rates of children are mostly Poisson noise, which would take
            # over the first singular vector; smoothing over ages first keeps the signal.
            smoothed = _smooth(log_m, smooth_ages)
            drift = np.stack(
                [_lee_carter_drift(smoothed[:, s, :]) for s in range(log_m.shape[1])]
            )
    upper = np.inf if allow_worsening else 0.0
    drift = np.clip(drift, np.log1p(-max_improvement), upper)
    loading = drift_se = sigma_k = None
    if len(years_w) >= 4:
        smoothed = _smooth(np.log(np.maximum(values_w, RATE_FLOOR)), smooth_ages)
        first = min(LEE_CARTER_FIRST_AGE, values.shape[2] - 2)
        fits = [_lee_carter(smoothed[:, s, first:]) for s in range(values.shape[1])]
        loading = np.zeros(values.shape[1:])
        loading[:, first:] = np.stack([f[0] for f in fits])
        sigma_k = np.array([f[1] for f in fits])
        drift_se = sigma_k / np.sqrt(len(years_w) - 1)
    return MortalityTrend(
        jump_off_year=int(years[-1]),
        jump_off_rate=jump_off,
        drift=drift,
        method=method,
        window=len(years_w),
        loading=loading,
        drift_se=drift_se,
        sigma_k=sigma_k,
    )


def _lee_carter(log_m: np.ndarray) -> tuple[np.ndarray, float]:
    """Loading ``b`` (sums to 1) and the sd of the yearly change of ``k`` (random walk)."""
    centred = log_m - log_m.mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    b, k = vt[0], u[:, 0] * s[0]
    scale = b.sum()
    if abs(scale) < 1e-12:
        return np.zeros(log_m.shape[1]), 0.0
    b, k = b / scale, k * scale
    steps = np.diff(k)
    sd = float(steps.std(ddof=1)) if len(steps) > 1 else 0.0
    return b, sd


def _lee_carter_drift(log_m: np.ndarray) -> np.ndarray:
    """Yearly log-rate change b_x * mean(diff k) from a rank-1 SVD of (year, age) log rates."""
    centred = log_m - log_m.mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    b = vt[0]
    k = u[:, 0] * s[0]
    scale = b.sum()
    if abs(scale) < 1e-12:
        return np.zeros(log_m.shape[1])
    b, k = b / scale, k * scale
    return b * (k[-1] - k[0]) / (len(k) - 1)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over the last axis; the window shrinks at the edges."""
    if width <= 1:
        return values
    half = width // 2
    n = values.shape[-1]
    cumulative = np.concatenate(
        [np.zeros((*values.shape[:-1], 1)), np.cumsum(values, axis=-1)], axis=-1
    )
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (cumulative[..., hi] - cumulative[..., lo]) / (hi - lo)


def life_expectancy(rates: np.ndarray) -> np.ndarray:
    """Period life expectancy at birth from single-age death rates (last age open).

    Constant hazard within each year of age: survival ``exp(-m)`` and person-years
    ``l (1 - exp(-m)) / m``; the open age contributes ``l / m``.

    Parameters
    ----------
    rates
        Death rates with age on the last axis.

    Returns
    -------
    numpy.ndarray
        e0 for every leading index.
    """
    m = np.maximum(np.asarray(rates, dtype=np.float64), 1e-12)
    survival = np.exp(-m)
    alive = np.concatenate(
        [np.ones((*m.shape[:-1], 1)), np.cumprod(survival[..., :-1], axis=-1)], axis=-1
    )
    person_years = alive[..., :-1] * (1 - survival[..., :-1]) / m[..., :-1]
    open_interval = alive[..., -1] / m[..., -1]
    return person_years.sum(-1) + open_interval


def shift_life_expectancy(rates: np.ndarray, target_shift: np.ndarray) -> np.ndarray:
    """Scale rates proportionally so that e0 changes by ``target_shift`` years.

    Parameters
    ----------
    rates
        ``(..., age)`` death rates.
    target_shift
        Years to add to e0, broadcastable to ``rates.shape[:-1]``; negative lowers e0.

    Returns
    -------
    numpy.ndarray
        ``rates * exp(alpha)`` with one ``alpha`` per leading index found by bisection.
    """
    rates = np.asarray(rates, dtype=np.float64)
    target = life_expectancy(rates) + np.broadcast_to(target_shift, rates.shape[:-1])
    lo = np.full(rates.shape[:-1], -5.0)
    hi = np.full(rates.shape[:-1], 5.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        too_long = life_expectancy(rates * np.exp(mid)[..., None]) > target
        lo = np.where(too_long, mid, lo)
        hi = np.where(too_long, hi, mid)
    return rates * np.exp(0.5 * (lo + hi))[..., None]
