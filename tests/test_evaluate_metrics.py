"""Forecast scores on hand-computed examples and by simulation."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from vekst.evaluate.metrics import (
    absolute_percentage_error,
    central_interval,
    crps_ensemble,
    interval_coverage,
    interval_score,
    percentage_error,
    score_ensemble,
    summarise_scores,
)


def test_percentage_errors_by_hand():
    point = np.array([110.0, 90.0, 50.0, 7.0])
    observed = np.array([100.0, 100.0, 0.0, np.nan])
    pe = percentage_error(point, observed)
    assert pe[0] == pytest.approx(10.0)
    assert pe[1] == pytest.approx(-10.0)
    # nobody observed / nothing observed: no relative error
    assert np.isnan(pe[2]) and np.isnan(pe[3])
    np.testing.assert_allclose(absolute_percentage_error(point, observed)[:2], [10.0, 10.0])


def test_crps_of_three_draws_by_hand():
    # draws 1, 2, 4 and y = 3: E|X - y| = (2 + 1 + 1) / 3 = 4/3; the nine ordered pairs
    # have |differences| 0,1,3,1,0,2,3,2,0 (sum 12), so E|X - X'| = 12/9 and
    # CRPS = 4/3 - 6/9 = 2/3.
    assert crps_ensemble(np.array([4.0, 1.0, 2.0]), 3.0) == pytest.approx(2.0 / 3.0)
    # y = 0: E|X - y| = 7/3, CRPS = 7/3 - 2/3 = 5/3
    assert crps_ensemble(np.array([1.0, 2.0, 4.0]), 0.0) == pytest.approx(5.0 / 3.0)


def test_crps_along_an_axis_matches_each_column():
    draws = np.array([[1.0, 10.0], [2.0, 10.0], [4.0, 10.0]])  # 3 draws x 2 cases
    out = crps_ensemble(draws, np.array([3.0, 12.0]), axis=0)
    np.testing.assert_allclose(out, [2.0 / 3.0, 2.0])
    same = crps_ensemble(draws.T, np.array([3.0, 12.0]), axis=1)
    np.testing.assert_allclose(same, out)


def test_crps_of_a_point_forecast_is_the_absolute_error():
    np.testing.assert_allclose(
        crps_ensemble(np.array([[105.0, 80.0]]), np.array([100.0, 100.0])), [5.0, 20.0]
    )


def test_crps_equals_brute_force_pair_average():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 50.0, size=37)
    y = 120.0
    brute = np.mean(np.abs(x - y)) - 0.5 * np.mean([abs(a - b) for a, b in itertools.product(x, x)])
    assert crps_ensemble(x, y) == pytest.approx(brute, rel=1e-12)


def test_crps_of_a_large_normal_ensemble_approaches_the_closed_form():
    rng = np.random.default_rng(11)
    mu, sigma, y = 2.0, 3.0, 4.5
    z = (y - mu) / sigma
    exact = sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    sample = rng.normal(mu, sigma, size=40_000)
    assert crps_ensemble(sample, y) == pytest.approx(exact, rel=0.02)


def test_central_interval_and_coverage_by_hand():
    draws = np.arange(101.0)  # quantiles are exact: q(p) = 100 p
    low, high = central_interval(draws, 0.5)
    assert (low, high) == (25.0, 75.0)
    low, high = central_interval(draws, 0.8)
    assert (low, high) == pytest.approx((10.0, 90.0))
    stacked = np.repeat(draws[:, None], 4, axis=1)
    covered = interval_coverage(stacked, np.array([25.0, 80.0, 75.0, np.nan]), 0.5)
    np.testing.assert_array_equal(covered[:3], [1.0, 0.0, 1.0])
    assert np.isnan(covered[3])
    with pytest.raises(ValueError, match="level"):
        central_interval(draws, 1.0)


def test_coverage_is_nominal_when_truth_comes_from_the_forecast_distribution():
    rng = np.random.default_rng(5)
    n_cases, n_draws = 4000, 400
    draws = rng.normal(size=(n_draws, n_cases))
    truth = rng.normal(size=n_cases)
    for level in (0.5, 0.8, 0.95):
        rate = interval_coverage(draws, truth, level).mean()
        # binomial sd <= 0.008 at n = 4000; finite-draw quantile noise is smaller
        assert abs(rate - level) < 0.03, (level, rate)


def test_score_ensemble_point_forecast_has_no_coverage_and_crps_equals_abs_error():
    out = score_ensemble(np.array([[120.0, 95.0]]), np.array([100.0, 100.0]))
    np.testing.assert_allclose(out["crps"], [20.0, 5.0])
    np.testing.assert_allclose(out["crps_pct"], [20.0, 5.0])
    np.testing.assert_allclose(out["ape"], [20.0, 5.0])
    np.testing.assert_allclose(out["pe"], [20.0, -5.0])
    for level in ("50", "80", "95"):
        assert np.all(np.isnan(out[f"cover_{level}"]))


def test_score_ensemble_uses_the_median_as_point():
    draws = np.array([[90.0], [100.0], [130.0]])
    out = score_ensemble(draws, np.array([110.0]))
    assert out["point"][0] == 100.0
    assert out["ape"][0] == pytest.approx(100 * 10 / 110)
    assert out["cover_95"][0] == 1.0


def test_summarise_scores_by_hand():
    scores = pd.DataFrame(
        {
            "method": ["a", "a", "a", "b"],
            "ape": [1.0, 3.0, 8.0, 2.0],
            "pe": [-1.0, 3.0, 8.0, -2.0],
            "crps": [10.0, 20.0, 60.0, 5.0],
            "crps_pct": [1.0, 2.0, 3.0, 4.0],
            "cover_50": [1.0, 0.0, 0.0, np.nan],
            "cover_80": [1.0, 1.0, 0.0, np.nan],
            "cover_95": [1.0, 1.0, 1.0, np.nan],
        }
    )
    out = summarise_scores(scores, by=["method"]).set_index("method")
    assert out.loc["a", "median_ape"] == 3.0
    assert out.loc["a", "mean_ape"] == pytest.approx(4.0)
    assert out.loc["a", "bias"] == pytest.approx(10.0 / 3.0)
    assert out.loc["a", "crps"] == pytest.approx(30.0)
    assert out.loc["a", "coverage_50"] == pytest.approx(1 / 3)
    assert out.loc["a", "coverage_80"] == pytest.approx(2 / 3)
    assert out.loc["a", "n"] == 3
    assert np.isnan(out.loc["b", "coverage_95"])
    with pytest.raises(KeyError, match="origin"):
        summarise_scores(scores, by=["origin"])


def test_interval_score_by_hand():
    # 80 % band [10, 20]: width 10; penalty 2 / 0.2 = 10 per unit outside
    scores = interval_score(np.array([10.0] * 3), np.array([20.0] * 3), np.array([15, 8, 23]), 0.8)
    np.testing.assert_allclose(scores, [10.0, 10.0 + 10 * 2, 10.0 + 10 * 3])
    # a point forecast is a zero-width band
    assert interval_score(5.0, 5.0, 7.0, 0.5) == pytest.approx(2 / 0.5 * 2)
    with pytest.raises(ValueError, match="level"):
        interval_score(0.0, 1.0, 0.5, 1.2)


def test_interval_score_is_smallest_for_the_true_quantiles():
    # Proper scoring: bands from the true distribution beat narrower and wider ones.
    rng = np.random.default_rng(11)
    y = rng.normal(0.0, 2.0, size=200_000)
    half = norm.ppf(0.9) * 2.0
    mean_score = {
        factor: interval_score(-factor * half, factor * half, y, 0.8).mean()
        for factor in (0.7, 1.0, 1.4)
    }
    assert mean_score[1.0] < mean_score[0.7] and mean_score[1.0] < mean_score[1.4]


def test_score_ensemble_and_summary_carry_the_interval_score():
    draws = np.arange(1.0, 102.0)[:, None]  # 1 .. 101, one unit
    out = score_ensemble(draws, np.array([200.0]), levels=(0.8,))
    low, high = out["lower_80"][0], out["upper_80"][0]
    assert out["is_80"][0] == pytest.approx((high - low) + 10 * (200 - high))
    assert out["is_pct_80"][0] == pytest.approx(out["is_80"][0] / 2)
    frame = pd.DataFrame({k: np.asarray(v).ravel() for k, v in out.items()}).assign(g="a")
    summary = summarise_scores(frame, by=["g"], levels=(0.8,))
    assert summary["interval_score_80"].iloc[0] == pytest.approx(out["is_80"][0])


def test_aggregate_bias_is_free_of_the_small_cell_chance_that_lifts_the_mean_error():
    # An unbiased forecast of Poisson cells: the summed forecast equals the summed
    # expectation, but the mean percentage error is positive (1/observed is convex).
    rng = np.random.default_rng(3)
    expected = np.full(20_000, 8.0)
    observed = rng.poisson(expected).astype(float)
    keep = observed > 0
    pe = 100 * (expected[keep] - observed[keep]) / observed[keep]
    scores = pd.DataFrame({
        "method": "m", "ape": np.abs(pe), "pe": pe, "crps": 1.0, "crps_pct": 1.0,
        "point": expected[keep], "observed": observed[keep],
    })
    out = summarise_scores(scores, by=["method"]).set_index("method")
    assert out.loc["m", "bias"] > 8.0  # about 100 * E[8 / X - 1], X ~ Poisson(8) > 0
    # The sum over cells: only the dropped zero cells move it (exp(-8) of them).
    assert abs(out.loc["m", "aggregate_bias"]) < 1.0
