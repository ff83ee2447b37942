"""The chance factor of deaths: the binomial's mean, variance and (about) its skewness."""

import numpy as np
import pytest

from vekst.projection.death_factor import chance_factors, power_normal_table

N_DRAWS = 200_000


def _factors(expected: float, people: float, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((N_DRAWS, 1))
    return chance_factors(
        z,
        np.full((N_DRAWS, 1), expected),
        np.full((N_DRAWS, 1), people),
        np.zeros((N_DRAWS, 1)),
        first_corrected=0,
    )[:, 0]


@pytest.mark.parametrize(("expected", "people"), [(2.0, 10.0), (5.0, 50.0), (20.0, 80.0)])
def test_deaths_have_the_binomials_mean_variance_and_about_its_skewness(expected, people):
    q = expected / people
    deaths = expected * _factors(expected, people)
    binomial_variance = people * q * (1 - q)
    standard_error = np.sqrt(binomial_variance / N_DRAWS)
    assert abs(deaths.mean() - expected) < 4 * standard_error
    assert 0.97 < deaths.var() / binomial_variance < 1.03
    skewness = np.mean((deaths - deaths.mean()) ** 3) / deaths.std() ** 3
    binomial_skewness = (1 - 2 * q) / np.sqrt(binomial_variance)
    # A mean-1 log-normal with this variance has 3-5 times the binomial's skewness.
    assert 0.7 * binomial_skewness < skewness < 2.0 * binomial_skewness


@pytest.mark.parametrize("expected", [5.0, 20.0, 100.0])
def test_median_deaths_lie_close_to_the_mean_whatever_the_group_size(expected):
    """The median of the draws is the point forecast: a factor whose median sits well below
    its mean (the log-normal: ``(1 - q) / 2`` deaths a group and year, here 0.45) raises
    the median survivors of every old-age group."""
    people = 10 * expected
    deaths = expected * _factors(expected, people, seed=1)
    shortfall = expected - np.median(deaths)
    binomial_shortfall = (1 - 2 * 0.1) / 6  # mean - median ~ skewness * sd / 6
    assert 0.0 < shortfall < 2 * binomial_shortfall + 0.05
    lognormal_sd = np.sqrt(np.log1p(0.9 / expected))
    lognormal_shortfall = expected * (1 - np.exp(-(lognormal_sd**2) / 2))
    assert shortfall < 0.6 * lognormal_shortfall


def test_table_moments_agree_with_simulation_and_rise_with_the_sd():
    table = power_normal_table()
    assert np.all(np.diff(table.b) > 0) and np.all(np.diff(table.mean) > 0)
    n = 2_000_000
    z = np.random.default_rng(3).standard_normal(n)
    for sd in (0.05, 0.5, 1.5):
        i = round(sd / table.sd_step)
        power = np.maximum(1 + table.b[i] * z, 0) ** 1.5
        standard_error = power.std() / np.sqrt(n)
        assert abs(table.mean[i] - power.mean()) < 4 * standard_error
        assert power.std() / power.mean() == pytest.approx(sd, rel=0.01)


def test_the_factor_rises_with_the_shock_and_stays_within_the_cap():
    z = np.linspace(-5, 5, 1001)[:, None] * np.ones((1, 3))
    deaths = np.array([[0.6, 4.0, 30.0]]).repeat(z.shape[0], 0)
    people = np.array([[2.0, 10.0, 200.0]]).repeat(z.shape[0], 0)
    largest = np.array([[0.5, 0.6, 0.2]]).repeat(z.shape[0], 0)
    factors = chance_factors(z.copy(), deaths, people, largest, first_corrected=0)
    assert np.all(np.diff(factors, axis=0) >= -1e-12)
    assert np.all(factors >= 0) and np.all(factors * largest <= 1 + 1e-12)
    # No expected deaths, or a group certain to die: the expectation stands.
    fixed = chance_factors(
        np.array([[2.0, -2.0]]),
        np.array([[0.0, 3.0]]),
        np.array([[5.0, 3.0]]),
        np.zeros((1, 2)),
        first_corrected=0,
    )
    np.testing.assert_array_equal(fixed, [[1.0, 1.0]])


def test_cap_table_is_what_a_cap_takes_off_the_mean():
    """The table behind the cap's correction, against simulation: ``E[(f - 1 / q)+]``
    with ``f`` the power of a standard normal over its mean, at the sd of the row."""
    table = power_normal_table()
    n = 2_000_000
    shocks = np.random.default_rng(4).standard_normal(n)
    fine_sd = np.arange(table.b.size) * table.sd_step
    for sd in (0.1, 0.6, 1.2):
        i = round(sd / table.lost_sd_step)
        row_sd = i * table.lost_sd_step
        b, mean = np.interp(row_sd, fine_sd, table.b), np.interp(row_sd, fine_sd, table.mean)
        factor = np.maximum(1 + b * shocks, 0) ** 1.5 / mean
        for q in (0.2, 0.5, 0.9):
            j = round(q * table.q_steps)
            lost = np.maximum(factor - table.q_steps / j, 0.0)
            standard_error = lost.std() / np.sqrt(n)
            assert abs(table.lost[i, j] - lost.mean()) < 4 * standard_error + 1e-6
    # A higher cap (smaller q) takes off less, and a cap at infinity nothing.
    assert np.all(np.diff(table.lost, axis=1) >= -1e-12)
    np.testing.assert_array_equal(table.lost[:, 0], 0.0)
