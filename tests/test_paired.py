"""The paired, municipality-clustered bootstrap of a difference in median APE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vekst.evaluate.paired import best_baseline_comparison, paired_median_difference


def _panel_errors(rng, n_mun, n_origin, *, lead=1.0, within=0.8):
    """Absolute errors of two methods on ``n_mun`` municipalities x ``n_origin`` origins.

    A municipality's errors share a level across origins (correlation ``within`` on the
    log scale) and both methods share the cell's difficulty; the method's errors are the
    reference's times ``lead`` times its own noise.
    """
    place = rng.standard_normal((n_mun, 1))
    cell = np.sqrt(within) * place + np.sqrt(1 - within) * rng.standard_normal((n_mun, n_origin))
    reference = np.exp(cell + 0.3 * rng.standard_normal((n_mun, n_origin)))
    own = 0.3 * (
        np.sqrt(within) * rng.standard_normal((n_mun, 1))
        + np.sqrt(1 - within) * rng.standard_normal((n_mun, n_origin))
    )
    errors = lead * np.exp(cell + own)
    cluster = np.repeat(np.arange(n_mun), n_origin)
    return errors.ravel(), reference.ravel(), cluster


def test_a_clear_lead_is_found_and_its_size_recovered():
    rng = np.random.default_rng(1)
    errors, reference, cluster = _panel_errors(rng, 300, 10, lead=0.8)
    result = paired_median_difference(errors, reference, cluster, n_boot=1000, seed=2)
    assert result["verdict"] == "better"
    assert result["lo"] < result["difference"] < result["hi"] < 0
    # Every error is 0.8 x a draw of the reference's distribution: the medians differ by
    # about 20 % of the reference's median.
    expected = -0.2 * np.median(reference)
    assert result["lo"] < expected < result["hi"]
    worse = paired_median_difference(reference, errors, cluster, n_boot=1000, seed=2)
    assert worse["verdict"] == "worse"
    assert worse["difference"] == pytest.approx(-result["difference"])


def test_intervals_cover_a_zero_difference_near_their_level_when_errors_cluster():
    """Exchangeable methods, errors correlated within municipalities: the clustered 90 %
    interval holds 0 in about 90 % of replicates; treating cells as independent (each its
    own cluster) gives intervals that hold it far less often."""
    rng = np.random.default_rng(3)
    hits_clustered, hits_cells = 0, 0
    n_rep = 120
    for rep in range(n_rep):
        a, b, cluster = _panel_errors(rng, 60, 8, lead=1.0, within=0.8)
        if rep % 2:  # exchangeable: which method is which is a coin flip
            a, b = b, a
        clustered = paired_median_difference(a, b, cluster, n_boot=400, seed=rep)
        cells = paired_median_difference(a, b, np.arange(a.size), n_boot=400, seed=rep)
        hits_clustered += clustered["lo"] <= 0 <= clustered["hi"]
        hits_cells += cells["lo"] <= 0 <= cells["hi"]
    # Seeds 3, 11, 12 gave 0.92, 0.97, 0.94 clustered and 0.78, 0.83, 0.83 by cells.
    assert 0.84 <= hits_clustered / n_rep <= 0.99
    assert hits_cells / n_rep < hits_clustered / n_rep - 0.07


def test_missing_errors_are_left_out_and_bad_input_is_named():
    errors = np.array([1.0, np.nan, 3.0, 4.0])
    reference = np.array([2.0, 2.0, np.nan, 5.0])
    result = paired_median_difference(errors, reference, ["a", "a", "b", "b"], n_boot=50)
    assert result["n_cells"] == 2
    assert result["difference"] == pytest.approx(2.5 - 3.5)
    with pytest.raises(ValueError, match="one length"):
        paired_median_difference(errors, reference[:3], ["a"] * 4)
    with pytest.raises(ValueError, match="level"):
        paired_median_difference(errors, reference, ["a"] * 4, level=90)


def test_best_baseline_comparison_picks_the_best_other_method_per_age_group():
    rng = np.random.default_rng(5)
    rows = []
    for method, scale_young, scale_old in [("bayes", 0.7, 1.0), ("ols", 1.0, 1.0),
                                           ("naive", 1.2, 0.6)]:
        for origin in range(3):
            for mun in range(80):
                for group, scale in [("20-29", scale_young), ("90+", scale_old)]:
                    rows.append(
                        {"origin": origin, "method": method, "horizon": 4,
                         "level": "municipality", "municipality": f"m{mun}",
                         "age_group": group,
                         "ape": scale * (1 + mun % 7) * rng.uniform(0.9, 1.1)}
                    )
    rows.append({"origin": 0, "method": "bayes", "horizon": 4, "level": "county",
                 "municipality": "c1", "age_group": "90+", "ape": 100.0})
    # A group the method never scored (APE undefined everywhere) is left out, not an error.
    rows += [{"origin": 0, "method": m, "horizon": 4, "level": "municipality",
              "municipality": "m0", "age_group": "empty", "ape": np.nan if m == "bayes" else 1.0}
             for m in ("bayes", "ols")]
    table = best_baseline_comparison(pd.DataFrame(rows), "bayes", n_boot=300).set_index(
        "age_group"
    )
    assert table.loc["20-29", "baseline"] == "ols"
    assert table.loc["20-29", "verdict"] == "better"
    assert table.loc["90+", "baseline"] == "naive"
    assert table.loc["90+", "verdict"] == "worse"
    assert (table["n_municipalities"] == 80).all()  # the county row is not a municipality
    assert "empty" not in table.index


def test_the_headline_says_which_missed_groups_are_beyond_noise():
    from types import SimpleNamespace

    from vekst.commands.backtest import _paired
    from vekst.evaluate.headline import headline_markdown

    rng = np.random.default_rng(7)
    rows = []
    leads = {"bayes": {"67-79": 1.0, "90+": 1.3}, "ols": {"67-79": 1.0, "90+": 1.0}}
    for method, lead in leads.items():
        for origin in range(4):
            for mun in range(60):
                for group in ("67-79", "90+"):
                    rows.append(
                        {"origin": origin, "method": method, "horizon": 2,
                         "level": "municipality", "municipality": f"m{mun}",
                         "age_group": group,
                         "ape": lead[group] * (1 + mun % 5) * rng.uniform(0.5, 1.5)}
                    )
    scores = pd.DataFrame(rows)
    paired = _paired(SimpleNamespace(scores=scores))
    assert set(paired["horizon"]) == {2} and set(paired["baseline"]) == {"ols"}
    assert _paired(SimpleNamespace(scores=scores[scores["method"] == "ols"])) is None
    medians = scores.groupby(["method", "age_group"])["ape"].median()
    pooled = pd.DataFrame(
        [
            {"method": m, "horizon": 2, "level": "municipality", "size_class": "all",
             "age_group": g, "median_ape": medians[(m, g)], "coverage_80": 0.8}
            for m in ("bayes", "ols") for g in ("67-79", "90+")
        ]
        + [
            {"method": m, "horizon": 2, "level": "municipality", "size_class": "all",
             "age_group": "total", "median_ape": 1.0, "mean_ape": 1.0, "bias": 0.0,
             "crps_pct": 1.0, "coverage_50": 0.5, "coverage_80": 0.8, "coverage_95": 0.95}
            for m in ("bayes", "ols")
        ]
    )
    if medians[("bayes", "67-79")] < medians[("ols", "67-79")]:  # make 67-79 a miss too
        pooled.loc[(pooled["method"] == "bayes") & (pooled["age_group"] == "67-79"),
                   "median_ape"] = medians[("ols", "67-79")] + 0.01
    text = headline_markdown(pooled, paired=paired)
    verdict = dict(zip(paired["age_group"], paired["verdict"], strict=True))
    assert verdict["90+"] == "worse" and verdict["67-79"] == "within noise"
    assert "(not in: 67-79 (within noise), 90+ (worse))" in text
    row = next(line for line in text.splitlines() if line.startswith("| 90+ | ols |"))
    assert row.endswith("| worse |")
    assert "| 90+ | ols |" not in headline_markdown(pooled)  # no section without the pairs
