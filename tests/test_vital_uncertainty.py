"""Stochastic fertility and mortality: the TFR process and the Lee-Carter shocks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.projection import make_test_draws, project
from vekst.projection.fertility import (
    fit_tfr_process,
    mean_age_at_birth,
    shifted_schedules,
)
from vekst.projection.mortality import estimate_mortality_trend, mortality_history
from vekst.projection.testing import toy_panel

AGES = np.arange(50)


def asfr_history(tfr: np.ndarray, first_year: int = 1960) -> xr.DataArray:
    shape = np.exp(-0.5 * ((AGES - 30) / 5.0) ** 2)
    shape /= shape.sum()
    return xr.DataArray(
        tfr[:, None] * shape[None],
        dims=("year", "age"),
        coords={"year": np.arange(first_year, first_year + len(tfr)), "age": AGES},
    )


def ar1_series(n, mu, phi, sigma, start, seed):
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = start
    for t in range(1, n):
        x[t] = mu + phi * (x[t - 1] - mu) + sigma * rng.standard_normal()
    return np.exp(x)


def test_tfr_process_recovers_a_known_ar1():
    mu, phi, sigma = np.log(1.8), 0.85, 0.03
    history = asfr_history(ar1_series(2000, mu, phi, sigma, np.log(1.5), seed=1), 1000)
    process = fit_tfr_process(history, first_year=None, kind="ar1")
    assert process.phi == pytest.approx(phi, abs=0.06)
    assert process.level == pytest.approx(1.8, rel=0.04)
    assert np.sqrt(process.sigma2) == pytest.approx(sigma, rel=0.1)


def test_tfr_paths_have_the_analytic_ar1_moments_by_horizon():
    history = asfr_history(ar1_series(60, np.log(1.75), 0.8, 0.04, np.log(1.9), seed=3))
    process = fit_tfr_process(history, first_year=None, kind="ar1")
    horizons = np.array([1, 2, 5, 10, 20])
    paths = np.log(process.simulate(20_000, 20, seed=5, parameter_uncertainty=False))
    mean, variance = process.log_moments(horizons)
    simulated = paths[:, horizons - 1]
    # Standard errors of a mean and of a variance from 20,000 normal draws.
    se_mean = np.sqrt(variance / 20_000)
    np.testing.assert_array_less(np.abs(simulated.mean(0) - mean), 4 * se_mean)
    np.testing.assert_allclose(simulated.var(0), variance, rtol=4 * np.sqrt(2 / 20_000))
    # Parameter uncertainty widens the bands, most at long horizons.
    wide = np.log(process.simulate(20_000, 20, seed=5)).var(0)
    assert wide[19] > 1.1 * variance[-1]


def damped_trend_series(n, psi, sigma, start, seed):
    rng = np.random.default_rng(seed)
    change = np.zeros(n)
    for t in range(1, n):
        change[t] = psi * change[t - 1] + sigma * rng.standard_normal()
    return np.exp(start + np.cumsum(change))


def test_tfr_damped_trend_recovers_a_known_process():
    psi, sigma = 0.5, 0.02
    history = asfr_history(damped_trend_series(3000, psi, sigma, np.log(1.7), seed=4), 1000)
    process = fit_tfr_process(history, first_year=None)
    assert process.kind == "damped_trend"
    assert process.phi == pytest.approx(psi, abs=0.05)
    assert np.sqrt(process.sigma2) == pytest.approx(sigma, rel=0.08)


def test_tfr_damped_trend_paths_have_the_analytic_moments_by_horizon():
    history = asfr_history(damped_trend_series(60, 0.4, 0.03, np.log(1.8), seed=6))
    process = fit_tfr_process(history, first_year=None)
    horizons = np.array([1, 2, 5, 10, 20])
    paths = np.log(process.simulate(20_000, 20, seed=7, parameter_uncertainty=False))
    mean, variance = process.log_moments(horizons)
    simulated = paths[:, horizons - 1]
    se_mean = np.sqrt(variance / 20_000)
    np.testing.assert_array_less(np.abs(simulated.mean(0) - mean), 4 * se_mean)
    np.testing.assert_allclose(simulated.var(0), variance, rtol=4 * np.sqrt(2 / 20_000))
    # An integrated process: the variance keeps growing, faster than linearly at first.
    assert variance[-1] > 3 * variance[2] > 3 * variance[0]


def _rolling_tfr_coverage(history: xr.DataArray, kind: str, horizons=(1, 2, 3, 4)):
    """80 % band coverage of the observed TFR, forecast from every year 1990-2020."""
    tfr = history.sum("age")
    years = tfr["year"].values
    hits = {h: [] for h in horizons}
    for last in range(1990, 2021):
        process = fit_tfr_process(history.sel(year=slice(None, last)), kind=kind)
        paths = process.simulate(4000, max(horizons), seed=last)
        for h in horizons:
            if last + h in years:
                low, high = np.quantile(paths[:, h - 1], [0.1, 0.9])
                hits[h].append(low < float(tfr.sel(year=last + h)) < high)
    return {h: float(np.mean(v)) for h, v in hits.items()}


def test_damped_trend_bands_cover_norways_tfr_better_than_the_ar1():
    """Rolling-origin check on the embedded national series (HFD, 1975-2021)."""
    import vekst
    from vekst.projection.fertility import long_fertility_history

    history = long_fertility_history(vekst.load_default())
    damped = _rolling_tfr_coverage(history, "damped_trend")
    ar1 = _rolling_tfr_coverage(history, "ar1")
    # About 30 origins per horizon: 80 % bands should cover 0.65-0.92 of them.
    for h in (2, 3, 4):
        assert 0.65 <= damped[h] <= 0.92, (h, damped)
    assert np.mean([ar1[h] for h in (3, 4)]) < 0.65, ar1
    assert np.mean(list(damped.values())) > np.mean(list(ar1.values()))


def test_schedule_moves_with_the_mean_age_at_birth():
    history = asfr_history(np.full(20, 1.7))
    # Postponement: the schedule moves 0.2 years a year.
    shifted = [np.interp(AGES - 0.2 * i, AGES, history.values[0]) for i in range(20)]
    history = history.copy(data=np.array(shifted))
    schedules, shifts = shifted_schedules(history, 10, damping=1.0)
    np.testing.assert_allclose(shifts, 0.2 * np.arange(1, 11), rtol=0.05)
    np.testing.assert_allclose(schedules.sum(1), history.values[-1].sum())
    future = xr.DataArray(schedules, dims=("year", "age"), coords={"age": AGES})
    gain = mean_age_at_birth(future) - mean_age_at_birth(history)[-1]
    np.testing.assert_allclose(gain, shifts, atol=0.05)  # edge of the age range


def test_lee_carter_shocks_have_drift_error_and_random_walk_variance():
    panel = toy_panel(3, (1990, 2022), seed=2)
    history = mortality_history(panel)
    rng = np.random.default_rng(0)
    noisy = history * np.exp(0.02 * rng.standard_normal(history.sizes["year"]))[:, None, None]
    trend = estimate_mortality_trend(noisy)
    horizons = np.array([1, 4, 10])
    kappa = trend.simulate_shift(20_000, horizons, seed=3)
    expected = horizons[:, None] ** 2 * trend.drift_se**2 + horizons[:, None] * trend.sigma_k**2
    np.testing.assert_allclose(kappa.var(0), expected, rtol=0.05)
    np.testing.assert_allclose(kappa.mean(0), 0.0, atol=4 * np.sqrt(expected / 20_000).max())


def test_projection_bands_widen_with_vital_uncertainty():
    panel = toy_panel(4, (1995, 2022), seed=6, size=50_000.0)
    draws = make_test_draws(panel, 60, seed=1, fert_dev=0.0, mort_dev=0.0)
    result = project(panel, draws, base_year=2022, end_year=2032, seed=2)
    tfr = result["tfr"].isel(year=slice(0, -1))
    spread = tfr.std("draw").values
    assert spread[-1] > 2 * spread[0] > 0  # the TFR fans out with the horizon
    deaths = result["deaths"].sel(year=2031).sum("municipality")
    assert float(deaths.std()) > 0
    # Point estimates (no spread at all) keep the projection deterministic.
    point = make_test_draws(panel, 1, seed=1, fert_dev=0.0, mort_dev=0.0,
                            year_effect_sigma=0.0, sigma_base=0.0, sigma_pop=0.0,
                            beta_sigma=0.0)
    one = project(panel, point, base_year=2022, end_year=2025, seed=1)
    two = project(panel, point, base_year=2022, end_year=2025, seed=2)
    np.testing.assert_array_equal(one["population_total"], two["population_total"])


def test_births_have_poisson_noise_around_their_expectation():
    panel = toy_panel(4, (2005, 2022), seed=9, size=20_000.0)
    draws = make_test_draws(panel, 400, seed=3, mort_dev=0.0)
    from vekst.projection import Scenario

    result = project(panel, draws, scenario=Scenario(tfr_target=1.6), base_year=2022,
                     end_year=2024, seed=5, detail="totals")
    births = result["births"].isel(year=slice(0, -1))
    mean = result["expected_births"].isel(year=slice(0, -1)) * np.exp(draws["fert_dev"])
    dispersion = float(((births - mean) ** 2).mean() / mean.mean())
    assert 0.85 < dispersion < 1.15  # variance equals the mean, as for a Poisson count
    assert abs(float((births - mean).mean())) < 4 * np.sqrt(float(mean.mean()) / births.size)


def test_lee_carter_uncertainty_is_not_driven_by_noisy_child_rates():
    # Adult log rates follow a Lee-Carter random walk (yearly sd 0.5 of the index); child
    # rates, resting on a few deaths a year, are pure noise. The fitted walk must be the
    # adults', not the children's noise.
    rng = np.random.default_rng(11)
    years, ages = np.arange(2000, 2022), np.arange(101)
    adult = ages >= 40
    loading = np.where(adult, 1.0 / adult.sum(), 0.0)
    kappa = np.cumsum(-1.0 + 0.5 * rng.standard_normal(len(years)))
    log_m = -9.0 + 0.09 * ages[None, :] + loading[None, :] * kappa[:, None]
    log_m = log_m + np.where(adult, 0.0, 0.6)[None, :] * rng.standard_normal(log_m.shape)
    history = xr.DataArray(
        np.exp(np.stack([log_m, log_m + 0.1], axis=1)),
        dims=("year", "sex", "age"),
        coords={"year": years, "sex": ["female", "male"], "age": ages},
    )
    trend = estimate_mortality_trend(history)
    assert np.all(trend.loading[:, ~adult] == 0)
    true_sd = np.std(np.diff(kappa), ddof=1)  # the realised walk's yearly sd
    assert np.all((trend.sigma_k > 0.6 * true_sd) & (trend.sigma_k < 1.6 * true_sd))
