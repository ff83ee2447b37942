"""National vital rates of a projection: death rates and hazards, fertility, their noise.

Deterministic runs get the mean paths (:mod:`vekst.projection.mortality`,
:mod:`vekst.projection.fertility`); stochastic runs add per draw a Lee-Carter mortality
shock, an AR(1) TFR path with a schedule moving to later ages (unless a scenario sets the
TFR), each municipality's yearly deviation of births beyond chance, and standard normal
birth shocks for the kernel. Every random input comes from
generators keyed by the seed and the calendar year or horizon, so a shorter run sees the
same shocks as a longer one and chunking changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from vekst.data.panel import SEXES
from vekst.projection.birth_dispersion import estimate_birth_dispersion
from vekst.projection.fertility import (
    asfr_path,
    fertility_history,
    fit_tfr_process,
    long_fertility_history,
    shifted_schedules,
)
from vekst.projection.kernel import DeathNoise
from vekst.projection.mortality import (
    MortalityDataError,
    estimate_mortality_trend,
    life_expectancy,
    mortality_history,
    shift_life_expectancy,
)
from vekst.projection.scenario import Scenario

__all__ = ["VitalConfig", "VitalInputs", "vital_inputs"]



@dataclass(frozen=True)
class VitalConfig:
    """What the vital inputs of a run depend on (see :func:`vekst.projection.project`)."""

    base_year: int
    end_year: int
    scenario: Scenario
    mortality_window: int = 20
    mortality_method: str = "loglinear"
    n_draws: int = 1
    n_municipalities: int = 1
    seed: int = 0
    stochastic: bool = False
    held: frozenset[str] = frozenset()
    municipalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class VitalInputs:
    """Kernel arrays and the notes recorded in the projection's assumptions.

    ``death_rate`` ``(year, sex, age)`` (mean path), ``hazard`` / ``newborn_hazard`` (its
    cohort hazards), ``asfr`` ``(year, age)``; per draw (``None`` when deterministic):
    ``tfr_factor`` ``(draw, year)``, ``birth_noise`` ``(draw, year, municipality)``,
    ``fertility_noise`` ``(draw, year, municipality)`` (municipal births' relative
    deviation beyond chance, :mod:`vekst.projection.birth_dispersion`),
    ``mortality_shift`` ``(draw, year, sex)`` with ``mortality_loading`` ``(sex, age)``,
    ``death_noise`` (binomial survival per cell).
    """

    death_rate: np.ndarray
    hazard: np.ndarray
    newborn_hazard: np.ndarray
    asfr: np.ndarray
    mortality_note: dict
    fertility_note: dict
    tfr_factor: np.ndarray | None = None
    birth_noise: np.ndarray | None = None
    fertility_noise: np.ndarray | None = None
    mortality_shift: np.ndarray | None = None
    mortality_loading: np.ndarray | None = None
    death_noise: DeathNoise | None = None


def vital_inputs(panel: xr.Dataset, config: VitalConfig) -> VitalInputs:
    """Death rates, hazards, fertility and (stochastic runs) their per-draw noise.

    Parameters
    ----------
    panel
        The projected panel (only years before the base year are read for rates).
    config
        Years, scenario, trend settings and the draws' count and seed.

    Returns
    -------
    VitalInputs
    """
    c = config
    calendar = np.arange(c.base_year, c.end_year, dtype=np.int64)
    ages = np.asarray(panel["age"].values)
    death_rate, mortality_note, trend = _mortality(
        panel, c.base_year, c.end_year, calendar, c.scenario, c.mortality_window,
        c.mortality_method,
    )
    hazard, newborn_hazard = _hazards(death_rate, ages)
    shift = loading = None
    hold_mortality, hold_fertility = "mortality" in c.held, "fertility" in c.held
    if c.stochastic and trend.loading is not None and not hold_mortality:
        shift = trend.simulate_shift(c.n_draws, calendar - trend.jump_off_year, c.seed)
        loading = _hazard_loading(trend.loading)
        mortality_note["uncertainty"] = (
            "Lee-Carter: drift error and yearly random-walk shocks per draw"
        )
    asfr, fertility_note = _fertility(panel, c.base_year, calendar, c.scenario, ages)
    tfr_factor = birth_noise = death_noise = fertility_noise = None
    if c.stochastic:
        if not hold_mortality:
            death_noise = DeathNoise(seed=int(c.seed), years=tuple(int(y) for y in calendar))
            mortality_note["deaths"] = (
                "chance deaths per municipality, sex and 5-year age group from 50 (the "
                "binomial's mean and variance, about its skewness)"
            )
        # One generator per calendar year: a shorter run sees the same shocks.
        birth_noise = np.stack(
            [
                np.random.default_rng([int(c.seed), 0xB1, 1, int(year)])
                .standard_normal((c.n_draws, c.n_municipalities))
                .astype(np.float32)
                for year in calendar
            ],
            axis=1,
        )
        fertility_note["births"] = "normal approximation of Poisson noise per year"
        if not hold_fertility:
            codes = c.municipalities or tuple(str(i) for i in range(c.n_municipalities))
            dispersion = estimate_birth_dispersion(panel, before_year=c.base_year)
            fertility_noise = dispersion.draw(c.n_draws, calendar, np.asarray(codes), c.seed)
            fertility_note["municipal_births"] = dispersion.describe()
        if c.scenario.tfr_target is None:
            asfr, tfr_factor, process_note = _stochastic_fertility(
                panel, c.base_year, calendar, c.scenario, ages, c.n_draws, c.seed
            )
            fertility_note.update(process_note)
        if hold_fertility:
            birth_noise = None
            if tfr_factor is not None:
                tfr_factor = np.broadcast_to(tfr_factor.mean(0), tfr_factor.shape).copy()
    return VitalInputs(
        death_rate=death_rate,
        hazard=hazard,
        newborn_hazard=newborn_hazard,
        asfr=asfr,
        mortality_note=mortality_note,
        fertility_note=fertility_note,
        tfr_factor=tfr_factor,
        birth_noise=birth_noise,
        fertility_noise=fertility_noise,
        mortality_shift=shift,
        mortality_loading=loading,
        death_noise=death_noise,
    )


def _mortality(panel, base_year, end_year, calendar, scenario, window, method):
    history = mortality_history(panel, before_year=base_year)
    ages = panel["age"].values
    if not np.array_equal(history["age"].values, ages):
        history = history.reindex(age=ages)
        if bool(history.isnull().any()):
            raise MortalityDataError(
                "national death rates do not cover every panel age "
                f"({ages[0]}-{ages[-1]}); extend the rates to the open age group."
            )
    trend = estimate_mortality_trend(history, window=window, method=method)
    rates = trend.rates(calendar, improvement_multiplier=scenario.mortality_improvement_multiplier)
    note = trend.describe()
    note["improvement_multiplier"] = scenario.mortality_improvement_multiplier
    if scenario.e0_shift:
        ramp = (calendar - base_year + 1) / (end_year - base_year)
        rates = shift_life_expectancy(rates, (scenario.e0_shift * ramp)[:, None])
        note["e0_shift"] = scenario.e0_shift
    e0_start = life_expectancy(trend.jump_off_rate)
    e0_end = life_expectancy(rates[-1])
    note["e0"] = {
        sex: {
            str(trend.jump_off_year): round(float(e0_start[i]), 2),
            str(int(calendar[-1])): round(float(e0_end[i]), 2),
        }
        for i, sex in enumerate(SEXES)
    }
    return rates, note, trend


def _hazard_loading(loading: np.ndarray) -> np.ndarray:
    """Lee-Carter age loading on the cohort-hazard scale (mean of ages a and a + 1)."""
    out = loading.copy()
    out[:, :-1] = 0.5 * (loading[:, :-1] + loading[:, 1:])
    return out


def _stochastic_fertility(panel, base_year, calendar, scenario, ages, n_draws, seed):
    """Schedules moving to later ages and per-draw TFR paths from the TFR process."""
    history = long_fertility_history(panel, before_year=base_year)
    if not np.array_equal(history["age"].values, ages):
        history = history.reindex(age=ages, fill_value=0.0)
    process = fit_tfr_process(history)
    jump_off = int(history["year"].values[-1])
    horizon = int(calendar[-1]) - jump_off
    schedules, shifts = shifted_schedules(history, horizon)
    index = calendar - jump_off - 1
    asfr = schedules[index] * scenario.asfr_multiplier
    paths = process.simulate(n_draws, horizon, seed)[:, index]
    tfr_last = float(np.exp(process.log_tfr[-1]))
    note = {
        "rule": f"{process.kind.replace('_', ' ')} on log TFR (parameter uncertainty), "
        "schedule moved along the trend of the mean age at birth",
        "tfr_process": process.describe(),
        "mean_age_shift": {
            int(y): round(float(shifts[i]), 3) for y, i in zip(calendar, index, strict=True)
        },
        "tfr_path": {
            int(y): [round(float(q), 4) for q in np.quantile(paths[:, j], [0.1, 0.5, 0.9])]
            for j, y in enumerate(calendar)
        },
    }
    return asfr, paths / tfr_last, note


def _hazards(death_rate: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """National cohort hazards in the accounting convention of vekst.data.components."""
    from vekst.data.components import newborn_survival, survival_probability

    rates = xr.DataArray(
        death_rate,
        dims=("year", "sex", "age"),
        coords={"sex": list(SEXES), "age": ages},
    )
    p = survival_probability(rates).transpose("year", "sex", "age").values
    p0 = newborn_survival(rates).transpose("year", "sex").values
    return -np.log(p), -np.log(p0)


def _fertility(panel, base_year, calendar, scenario, ages):
    history = fertility_history(panel, before_year=base_year)
    if not np.array_equal(history["age"].values, ages):
        history = history.reindex(age=ages, fill_value=0.0)
    asfr = asfr_path(
        history,
        calendar,
        tfr_target=scenario.tfr_target,
        tfr_target_year=scenario.tfr_target_year,
        asfr_multiplier=scenario.asfr_multiplier,
    )
    note = {
        "jump_off_year": int(history["year"].values[-1]),
        "tfr_last_observed": float(history.isel(year=-1).sum()),
        "tfr_path": {
            int(y): round(float(v), 4) for y, v in zip(calendar, asfr.sum(1), strict=True)
        },
        "rule": "hold the last observed ASFR schedule"
        if scenario.tfr_target is None
        else f"scale the last schedule linearly to TFR {scenario.tfr_target}",
        "asfr_multiplier": scenario.asfr_multiplier,
    }
    return asfr, note
