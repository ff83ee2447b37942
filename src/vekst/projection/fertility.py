"""National fertility for the projection: the ASFR path and the sex ratio at birth.

Assumptions (documented defaults)
---------------------------------
* **Stochastic projections** (posterior draws with spread): the national TFR follows
  :class:`TfrProcess`, an AR(1) on log TFR toward a long-run level fitted on the national
  series since 1975 (``fertility_rate_history`` merged with ``fertility_rate``), one path
  per draw with parameter uncertainty. The age pattern is the last observed schedule
  moved to later ages along the recent trend of the mean age at birth, damped
  (:func:`shifted_schedules`). Births get year-to-year noise in the kernel.
* **Deterministic runs** (no draws, or point estimates): the last observed national
  age-specific fertility schedule is held constant.

A scenario may instead (both kinds of run; its path is deterministic)

* set ``tfr_target``: the schedule's shape is kept and scaled so the TFR moves linearly
  from the last observed TFR (in the jump-off year) to the target in ``tfr_target_year``
  and stays there (target year ``None`` = reached in the first projected year);
* set ``asfr_multiplier``: every rate is multiplied by this factor (after any target).

Births are split by sex with the national sex ratio at birth (boys per girl). It is read
from the panel when it carries one (a ``sex_ratio_at_birth`` variable or attribute, or
``births`` by ``sex``), else the biological standard 1.05 is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from vekst.errors import PanelError

__all__ = [
    "DEFAULT_SEX_RATIO_AT_BIRTH",
    "FertilityDataError",
    "TfrProcess",
    "asfr_path",
    "fertility_history",
    "fit_tfr_process",
    "long_fertility_history",
    "mean_age_at_birth",
    "sex_ratio_at_birth",
    "shifted_schedules",
]

#: Boys per girl at birth when the panel does not say (close to Norway's long-run 1.05-1.06).
DEFAULT_SEX_RATIO_AT_BIRTH = 1.05


class FertilityDataError(PanelError):
    """The panel lacks usable national fertility rates; the message says what to add."""


def fertility_history(panel: xr.Dataset, *, before_year: int | None = None) -> xr.DataArray:
    """National age-specific fertility rates ``(year, age)`` of years with data.

    ``fertility_rate`` (the panel's years) is used when it has a year before
    ``before_year``, else ``fertility_rate_history`` (dim ``hist_year``).

    Parameters
    ----------
    panel
        A validated panel with ``fertility_rate`` (age, year) or
        ``fertility_rate_history`` (hist_year, age).
    before_year
        Keep calendar years strictly before this one (the base year).

    Raises
    ------
    FertilityDataError
        When the variable is missing or has no year with data.
    """
    candidates = []
    if "fertility_rate" in panel:
        candidates.append(panel["fertility_rate"])
    if "fertility_rate_history" in panel:
        candidates.append(panel["fertility_rate_history"].rename(hist_year="year"))
    if not candidates:
        raise FertilityDataError(
            "the panel has neither 'fertility_rate' (age, year) nor 'fertility_rate_history' "
            "(hist_year, age); add national age-specific fertility rates (e.g. HFD ASFR) "
            "before projecting."
        )
    for rates in candidates:
        rates = rates.transpose("year", "age")
        if before_year is not None:
            rates = rates.sel(year=rates["year"] < before_year)
        present = np.asarray(rates.notnull().any("age").values)
        rates = rates.isel(year=np.flatnonzero(present)).fillna(0.0)
        if rates.sizes["year"] > 0:
            break
    if rates.sizes["year"] == 0:
        limit = f" before {before_year}" if before_year is not None else ""
        raise FertilityDataError(
            f"'fertility_rate' has no year{limit} with data; choose a later base year or "
            "add the national rates."
        )
    return rates.astype(np.float64)


def asfr_path(
    history: xr.DataArray,
    years: np.ndarray,
    *,
    tfr_target: float | None = None,
    tfr_target_year: int | None = None,
    asfr_multiplier: float = 1.0,
) -> np.ndarray:
    """Projected national ASFR ``(year, age)`` for the calendar ``years``.

    Parameters
    ----------
    history
        ``(year, age)`` from :func:`fertility_history`; its last year is the jump-off.
    years
        Projected calendar years (ascending).
    tfr_target, tfr_target_year
        Optional TFR target and the year it is reached (see the module docstring).
    asfr_multiplier
        Factor on every rate.
    """
    years = np.asarray(years, dtype=np.int64)
    schedule = np.asarray(history.isel(year=-1).values, dtype=np.float64)
    tfr_last = schedule.sum()
    if tfr_target is None:
        tfr = np.full(years.shape, tfr_last)
    else:
        if tfr_last <= 0:
            raise FertilityDataError(
                "the last observed fertility schedule sums to 0, so it cannot be scaled to "
                f"the TFR target {tfr_target}; check 'fertility_rate'."
            )
        start = int(history["year"].values[-1])
        reach = int(years[0]) if tfr_target_year is None else int(tfr_target_year)
        if reach <= start:
            tfr = np.full(years.shape, float(tfr_target))
        else:
            weight = np.clip((years - start) / (reach - start), 0.0, 1.0)
            tfr = tfr_last + weight * (float(tfr_target) - tfr_last)
    scale = np.divide(tfr, tfr_last, out=np.zeros_like(tfr), where=tfr_last > 0)
    return schedule[None, :] * scale[:, None] * asfr_multiplier


def sex_ratio_at_birth(panel: xr.Dataset, *, before_year: int | None = None) -> tuple[float, str]:
    """Boys per girl at birth and where the number came from.

    Looks, in order, for a ``sex_ratio_at_birth`` variable (mean of its last ten years
    before ``before_year``; dim ``year`` or ``hist_year``), a ``sex_ratio_at_birth``
    attribute, and ``births`` with a ``sex`` dimension; falls back to
    :data:`DEFAULT_SEX_RATIO_AT_BIRTH`.

    Returns
    -------
    (float, str)
        The ratio and its source (recorded in the projection's attrs).
    """
    if "sex_ratio_at_birth" in panel:
        values = panel["sex_ratio_at_birth"]
        if "hist_year" in values.dims:
            values = values.rename(hist_year="year")
        if "year" in values.dims:
            if before_year is not None:
                values = values.sel(year=values["year"] < before_year)
            # Ten years smooth out the year-to-year noise of the ratio.
            values = values.dropna("year").isel(year=slice(-10, None))
        ratio = float(values.mean()) if values.size else float("nan")
        if np.isfinite(ratio) and ratio > 0:
            return ratio, "panel variable 'sex_ratio_at_birth'"
    if "sex_ratio_at_birth" in panel.attrs:
        return float(panel.attrs["sex_ratio_at_birth"]), "panel attribute 'sex_ratio_at_birth'"
    if "births" in panel and "sex" in panel["births"].dims:
        births = panel["births"]
        if before_year is not None and "year" in births.dims:
            births = births.sel(year=births["year"] < before_year)
        by_sex = births.sum([d for d in births.dims if d != "sex"])
        girls, boys = float(by_sex.sel(sex="female")), float(by_sex.sel(sex="male"))
        if girls > 0 and boys > 0:
            return boys / girls, "panel 'births' by sex"
    return DEFAULT_SEX_RATIO_AT_BIRTH, "default 1.05 (panel has no births by sex)"


# --- a stochastic future for the national TFR -----------------------------------------------
@dataclass(frozen=True)
class TfrProcess:
    r"""AR(1) on log TFR toward a long-run level, with parameter uncertainty.

    :math:`x_t = \log \mathrm{TFR}_t`, :math:`x_t - \mu = \phi (x_{t-1} - \mu) +
    \varepsilon_t`, :math:`\varepsilon_t \sim N(0, \sigma^2)` (in the spirit of the
    phase III model of bayesTFR). Fitted by least squares on ``x_t = c + \phi x_{t-1}``;
    parameter draws come from the flat-prior normal-inverse-gamma posterior of
    ``(c, \phi, \sigma^2)``, with :math:`\phi` kept in ``[0, 0.99]``.

    Attributes
    ----------
    years, log_tfr
        The series used.
    coef, coef_cov
        Least-squares ``(c, phi)`` and their covariance (scaled by ``sigma2``).
    sigma2, dof
        Residual variance and its degrees of freedom.
    """

    years: np.ndarray
    log_tfr: np.ndarray
    coef: np.ndarray
    coef_cov: np.ndarray
    sigma2: float
    dof: int

    @property
    def phi(self) -> float:
        """Point estimate of the autoregression, clipped to ``[0, 0.99]``."""
        return float(np.clip(self.coef[1], 0.0, 0.99))

    @property
    def level(self) -> float:
        """Point estimate of the long-run TFR, ``exp(mu)``."""
        return float(np.exp(self.coef[0] / (1.0 - self.phi)))

    def parameter_draws(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``mu``, ``phi``, ``sigma`` for ``n`` draws (posterior of the regression)."""
        sigma2 = self.sigma2 * self.dof / rng.chisquare(max(self.dof, 1), n)
        chol = np.linalg.cholesky(self.coef_cov + 1e-15 * np.eye(2))
        coef = self.coef[None] + np.sqrt(sigma2)[:, None] * (rng.standard_normal((n, 2)) @ chol.T)
        phi = np.clip(coef[:, 1], 0.0, 0.99)
        return {"mu": coef[:, 0] / (1.0 - phi), "phi": phi, "sigma": np.sqrt(sigma2)}

    def simulate(
        self, n_draws: int, n_years: int, seed: int, *, parameter_uncertainty: bool = True
    ) -> np.ndarray:
        """TFR paths ``(draw, year)`` for the ``n_years`` years after the last observed."""
        rng = np.random.default_rng([int(seed), 0x7F2])
        if parameter_uncertainty:
            params = self.parameter_draws(n_draws, rng)
        else:
            params = {
                "mu": np.full(n_draws, np.log(self.level)),
                "phi": np.full(n_draws, self.phi),
                "sigma": np.full(n_draws, np.sqrt(self.sigma2)),
            }
        x = np.full(n_draws, self.log_tfr[-1])
        out = np.empty((n_draws, n_years))
        # One generator per horizon: a shorter run sees the same shocks.
        shocks = np.stack(
            [np.random.default_rng([int(seed), 0x7F2, 1, h + 1]).standard_normal(n_draws)
             for h in range(n_years)],
            axis=1,
        )
        for h in range(n_years):
            x = params["mu"] + params["phi"] * (x - params["mu"]) + params["sigma"] * shocks[:, h]
            out[:, h] = np.exp(x)
        return out

    def log_moments(self, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of log TFR ``h`` years ahead at the point estimates."""
        h = np.asarray(horizons, dtype=np.float64)
        mu, phi = np.log(self.level), self.phi
        mean = mu + phi**h * (self.log_tfr[-1] - mu)
        variance = self.sigma2 * (1 - phi ** (2 * h)) / (1 - phi**2)
        return mean, variance


def fit_tfr_process(history: xr.DataArray, *, first_year: int | None = 1975) -> TfrProcess:
    """Fit :class:`TfrProcess` to the national TFR of ``history`` (``(year, age)`` ASFR).

    Parameters
    ----------
    history
        From :func:`fertility_history`.
    first_year
        Earliest year used (default 1975: after the fall from the baby boom, which an
        AR(1) around one level cannot describe); ``None`` = all.

    Raises
    ------
    FertilityDataError
        With fewer than 6 years of positive TFR.
    """
    tfr = np.asarray(history.sum("age").values, dtype=np.float64)
    years = np.asarray(history["year"].values)
    keep = tfr > 0
    if first_year is not None and (years[keep] >= first_year).sum() >= 6:
        keep &= years >= first_year
    if keep.sum() < 6:
        raise FertilityDataError(
            f"the national fertility series has {int(keep.sum())} years with a positive "
            "TFR; the TFR process needs at least 6 (add 'fertility_rate_history')."
        )
    x = np.log(tfr[keep])
    design = np.column_stack([np.ones(len(x) - 1), x[:-1]])
    coef, *_ = np.linalg.lstsq(design, x[1:], rcond=None)
    resid = x[1:] - design @ coef
    dof = max(len(resid) - 2, 1)
    sigma2 = float(max(resid @ resid / dof, 1e-10))
    return TfrProcess(
        years=years[keep],
        log_tfr=x,
        coef=coef,
        coef_cov=np.linalg.pinv(design.T @ design),
        sigma2=sigma2,
        dof=dof,
    )


def mean_age_at_birth(history: xr.DataArray) -> np.ndarray:
    """Mean age of the fertility schedule per year (ages as labelled, +0.5)."""
    rates = np.asarray(history.transpose("year", "age").values, dtype=np.float64)
    ages = np.asarray(history["age"].values, dtype=np.float64) + 0.5
    total = rates.sum(1)
    return np.divide(rates @ ages, total, out=np.full(len(total), np.nan), where=total > 0)


def shifted_schedules(
    history: xr.DataArray, n_years: int, *, window: int = 15, damping: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """The last schedule moved to later (or earlier) ages along the recent trend.

    The mean age at birth's least-squares slope over the last ``window`` years is
    continued with yearly damping (the shift after ``h`` years is ``slope * sum_k
    damping^k``), so postponement slows down. The schedule is moved by linear
    interpolation over age and rescaled to its TFR.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Schedules ``(year, age)`` at the last TFR and the shift in years per year.
    """
    rates = np.asarray(history.transpose("year", "age").values, dtype=np.float64)
    mean_age = mean_age_at_birth(history)
    ok = np.isfinite(mean_age)
    years = np.asarray(history["year"].values, dtype=np.float64)[ok][-window:]
    mean_age = mean_age[ok][-window:]
    slope = float(np.polyfit(years, mean_age, 1)[0]) if len(years) >= 3 else 0.0
    shifts = slope * np.cumsum(damping ** np.arange(1, n_years + 1))
    last = rates[-1]
    ages = np.arange(len(last), dtype=np.float64)
    out = np.empty((n_years, len(last)))
    for i, shift in enumerate(shifts):
        moved = np.interp(ages - shift, ages, last, left=0.0, right=0.0)
        out[i] = moved * (last.sum() / moved.sum()) if moved.sum() > 0 else last
    return out, shifts


def long_fertility_history(panel: xr.Dataset, *, before_year: int | None = None) -> xr.DataArray:
    """All national ASFR ``(year, age)`` before ``before_year``: the long
    ``fertility_rate_history`` merged with ``fertility_rate`` (which wins where both have a
    year). Falls back to :func:`fertility_history` when only one exists."""
    if not ("fertility_rate" in panel and "fertility_rate_history" in panel):
        return fertility_history(panel, before_year=before_year)
    parts = []
    sources = (panel["fertility_rate_history"].rename(hist_year="year"), panel["fertility_rate"])
    for rates in sources:
        rates = rates.transpose("year", "age")
        if before_year is not None:
            rates = rates.sel(year=rates["year"] < before_year)
        present = np.asarray(rates.notnull().any("age").values)
        parts.append(rates.isel(year=np.flatnonzero(present)).fillna(0.0))
    history, recent = parts
    history = history.sel(year=~np.isin(history["year"].values, recent["year"].values))
    merged = xr.concat([history, recent.reindex(age=history["age"], fill_value=0.0)], "year")
    merged = merged.sortby("year")
    if merged.sizes["year"] == 0:
        return fertility_history(panel, before_year=before_year)
    return merged.astype(np.float64)
