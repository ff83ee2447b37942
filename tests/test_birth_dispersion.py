"""Municipal births beyond chance: recovery of a known spread and persistence, the filter's
prediction of the next year, and what the kernel does with the deviations."""

from __future__ import annotations

import numpy as np
import pytest

from vekst.projection.birth_dispersion import BirthDispersion, dispersion_from_counts

SD, RHO = 0.04, 0.5


def simulate_births(rng, n_mun=300, n_years=14, sd=SD, rho=RHO):
    """Births (municipality, year + 1) with known AR(1) deviations; the last column is the
    year after the estimation window. Expected births from 10 to 5,000 a year."""
    expected = np.exp(rng.uniform(np.log(10), np.log(5000), n_mun))[:, None] * np.exp(
        0.02 * rng.standard_normal((n_mun, n_years + 1))
    )
    level = np.exp(0.1 * rng.standard_normal(n_mun))
    national = np.exp(np.linspace(0.0, -0.15, n_years + 1))  # fertility falls nationally
    deviation = np.empty((n_mun, n_years + 1))
    deviation[:, 0] = sd * rng.standard_normal(n_mun)
    for t in range(1, n_years + 1):
        deviation[:, t] = rho * deviation[:, t - 1] + sd * np.sqrt(1 - rho**2) * (
            rng.standard_normal(n_mun)
        )
    mean = level[:, None] * national[None] * expected
    births = rng.poisson(mean * (1 + deviation)).astype(np.float64)
    return births, expected, deviation


def test_extra_spread_and_persistence_are_recovered():
    rng = np.random.default_rng(7)
    estimates = []
    for _ in range(20):
        births, expected, _ = simulate_births(rng)
        fit = dispersion_from_counts(
            births[:, :-1], expected[:, :-1], np.arange(2005, 2019), np.arange(300)
        )
        estimates.append((fit.sd, fit.persistence))
    sd, rho = np.array(estimates).T
    assert np.mean(sd) == pytest.approx(SD, rel=0.06)
    assert np.mean(rho) == pytest.approx(RHO, abs=0.08)
    assert np.all(sd > 0.03) and np.all(sd < 0.05)


def test_pure_chance_gives_no_extra_spread():
    rng = np.random.default_rng(8)
    births, expected, _ = simulate_births(rng, sd=0.0)
    fit = dispersion_from_counts(
        births[:, :-1], expected[:, :-1], np.arange(2005, 2019), np.arange(300)
    )
    assert fit.sd < 0.01
    draws = fit.draw(2000, np.arange(2019, 2023), np.arange(300), seed=1)
    assert np.abs(draws).std() < 0.01


def test_next_year_is_predicted_from_where_the_municipality_stands():
    # The filtered deviation of the last year, carried one year on by the AR(1), predicts
    # the next year's true deviation better than the level alone, and its 80 % interval
    # holds the truth about 80 % of the time.
    rng = np.random.default_rng(9)
    inside, error_filtered, error_level = [], [], []
    for _ in range(10):
        births, expected, deviation = simulate_births(rng)
        fit = dispersion_from_counts(
            births[:, :-1], expected[:, :-1], np.arange(2005, 2019), np.arange(300)
        )
        draws = fit.draw(4000, np.array([2019]), np.arange(300), seed=1)[:, 0]
        lower, upper = np.quantile(draws, [0.1, 0.9], axis=0)
        # The estimate's deviations are relative to the window's own level, which the
        # simulation's true deviations are not: compare after removing the window mean.
        truth = deviation[:, -1] - deviation[:, :-1].mean(1)
        inside.append(np.mean((truth > lower) & (truth < upper)))
        large = expected[:, :-1].mean(1) > 500  # where a year's births say something
        error_filtered.append(np.mean((draws.mean(0) - truth)[large] ** 2))
        error_level.append(np.mean(truth[large] ** 2))
    assert np.mean(inside) == pytest.approx(0.80, abs=0.03)
    assert np.mean(error_filtered) < 0.9 * np.mean(error_level)  # at best 0.75 here


def test_draws_are_a_stationary_ar1_and_keyed_by_year():
    dispersion = BirthDispersion(
        sd=0.03, persistence=0.6, years=(2005, 2021), n_municipalities=2,
        municipalities=np.array(["0301", "1103"]),
        last_mean=np.array([0.05, 0.0]), last_variance=np.array([0.0, 0.03**2]),
    )
    calendar = np.arange(2022, 2030)
    draws = dispersion.draw(20_000, calendar, np.array(["1103", "0301", "9999"]), seed=3)
    assert draws.shape == (20_000, len(calendar), 3)
    # Oslo (0301) starts 5 % up, known exactly: 0.6 * 5 % the first year, then fading.
    assert draws[:, 0, 1].mean() == pytest.approx(0.6 * 0.05, abs=0.001)
    assert draws[:, 0, 1].std() == pytest.approx(0.03 * np.sqrt(1 - 0.36), rel=0.03)
    assert draws[:, 3, 1].mean() == pytest.approx(0.6**4 * 0.05, abs=0.001)
    # An unknown municipality and a typical one: stationary from the start.
    for column in (0, 2):
        assert draws[:, :, column].mean() == pytest.approx(0.0, abs=0.001)
        assert draws[:, :, column].std(0) == pytest.approx(np.full(len(calendar), 0.03), rel=0.03)
        lag = np.corrcoef(draws[:, 4, column], draws[:, 5, column])[0, 1]
        assert lag == pytest.approx(0.6, abs=0.02)
    shorter = dispersion.draw(20_000, calendar[:3], np.array(["1103", "0301", "9999"]), seed=3)
    np.testing.assert_array_equal(shorter, draws[:, :3])


def test_kernel_births_take_the_extra_spread():
    from vekst.projection.kernel import KernelInputs, run_kernel

    n_draws, n_age = 4000, 60
    rng = np.random.default_rng(4)
    population = np.zeros((1, 2, n_age))
    population[0, :, 20:45] = 2000.0  # 50,000 women of fertile age, as many men
    asfr = np.zeros((1, n_age))
    asfr[0, 20:45] = 0.06
    base = dict(
        population=population,
        hazard=np.zeros((1, 2, n_age)),
        newborn_hazard=np.zeros((1, 2)),
        asfr=asfr,
        female_birth_share=0.487,
        in_share=np.zeros((1, 2, n_age)),
        out_propensity=np.zeros((1, 2, n_age)),
        birth_noise=rng.standard_normal((n_draws, 1, 1)).astype(np.float32),
    )
    deviation = (0.05 * rng.standard_normal((n_draws, 1, 1))).astype(np.float32)
    plain = run_kernel(KernelInputs(**base), n_draws=n_draws).births[:, 0, 0]
    spread = run_kernel(
        KernelInputs(**base, fertility_noise=deviation), n_draws=n_draws
    ).births[:, 0, 0]
    # Women of 20-44 on 1 January, of 21-44 at the end of the year (no deaths): births
    # come from the mean of the two.
    expected = 0.06 * 0.5 * (25 + 24) * 2000
    assert plain.mean() == pytest.approx(expected, rel=0.005)
    assert spread.mean() == pytest.approx(expected, rel=0.005)
    assert plain.var() == pytest.approx(expected, rel=0.1)
    assert spread.var() == pytest.approx(expected + 0.05**2 * expected**2, rel=0.1)
