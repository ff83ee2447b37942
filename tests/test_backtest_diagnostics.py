"""Diagnostics and aggregates of the backtest, checked on forecasts with known spread."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vekst.evaluate import (
    aggregate_forecast,
    predictive_variance,
    rescaling_factors,
    variance_growth,
)
from vekst.evaluate.metrics import score_ensemble


def _forecast(values: np.ndarray, origin: int = 2010) -> xr.DataArray:
    """(draw, year, municipality) values as a forecast with one 'total' age group."""
    _, years, units = values.shape
    return xr.DataArray(
        values[..., None],
        dims=("draw", "year", "municipality", "age_group"),
        coords={
            "year": origin + 1 + np.arange(years),
            "municipality": [f"{i:04d}" for i in range(units)],
            "age_group": ["total"],
        },
    )


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_variance_growth_recovers_the_exponent_of_the_spread(power):
    rng = np.random.default_rng(3)
    horizons = np.arange(1, 5)
    sd = 10.0 * horizons ** (power / 2)  # variance ~ h^power
    values = 1000.0 + rng.standard_normal((4000, 4, 30)) * sd[None, :, None]
    variance = predictive_variance(_forecast(values), 2010, "bayes", "municipality")
    assert variance["horizon"].tolist() == [1, 2, 3, 4]
    growth = variance_growth(variance)
    pooled = growth[growth["origin"] == "pooled"]["exponent"].iloc[0]
    assert pooled == pytest.approx(power, abs=0.08)


def test_aggregates_are_summed_per_draw_so_correlation_shows_in_the_band():
    rng = np.random.default_rng(5)
    shock = rng.standard_normal((5000, 1, 1))
    common = 100.0 + 10.0 * np.repeat(shock, 4, axis=2)  # four perfectly correlated units
    independent = 100.0 + 10.0 * rng.standard_normal((5000, 1, 4))
    membership = ["A", "A", "B", "B"]
    for values, ratio in ((common, 1.0), (independent, 1 / np.sqrt(2))):
        forecast = _forecast(values)
        summed = aggregate_forecast(forecast, membership)
        assert summed["municipality"].values.tolist() == ["A", "B"]
        np.testing.assert_allclose(
            summed.values[:, 0, 0, 0], values[:, 0, 0] + values[:, 0, 1], rtol=1e-12
        )
        sd_sum = float(summed.std("draw")[0, 0, 0])
        assert sd_sum / (2 * 10.0) == pytest.approx(ratio, rel=0.05)
    with pytest.raises(ValueError, match="one code per municipality"):
        aggregate_forecast(_forecast(common), ["A"])


def _scores_with_spread(truth_scale: float, seed: int) -> pd.DataFrame:
    """Bands from N(1000, 10²) draws scored against truth from N(1000, (10 s)²)."""
    rng = np.random.default_rng(seed)
    n = 3000
    draws = 1000.0 + 10.0 * rng.standard_normal((800, n))
    observed = 1000.0 + 10.0 * truth_scale * rng.standard_normal(n)
    out = score_ensemble(draws, observed)
    frame = pd.DataFrame({k: np.asarray(v) for k, v in out.items()})
    return frame.assign(
        method="bayes",
        age_group="total",
        level="municipality",
        horizon=1,
        size_class=np.where(np.arange(n) % 2 == 0, "<2k", "50k+"),
        observed=observed,
    )


@pytest.mark.parametrize("truth_scale", [1.0, 2.0])
def test_rescaling_factor_is_the_ratio_of_true_to_forecast_spread(truth_scale):
    factors = rescaling_factors(_scores_with_spread(truth_scale, seed=int(truth_scale)))
    assert set(factors["size_class"]) == {"<2k", "50k+", "all"}
    pooled = factors[factors["size_class"] == "all"].set_index("level")
    np.testing.assert_allclose(pooled["scale"].values, truth_scale, rtol=0.08)
    # the bands as forecast under-cover when the truth is wider
    if truth_scale > 1:
        assert pooled.loc[0.8, "coverage"] < 0.6


def _pooled(coverage_80: float, size_80: float, ape: dict[str, float]) -> pd.DataFrame:
    rows = []
    for horizon in (1, 2):
        for label, cov80 in (("all", coverage_80), ("<2k", size_80), ("50k+", coverage_80)):
            rows.append(
                dict(
                    method="bayes",
                    horizon=horizon,
                    level="municipality",
                    size_class=label,
                    age_group="total",
                    coverage_50=0.5,
                    coverage_80=cov80,
                    coverage_95=0.95,
                    mean_ape=ape["bayes"],
                    median_ape=1.0,
                    bias=0.0,
                    crps_pct=ape["bayes"],
                )
            )
        rows.append(
            dict(
                method="bayes",
                horizon=horizon,
                level="county",
                size_class="all",
                age_group="total",
                coverage_50=0.5,
                coverage_80=0.8,
                coverage_95=0.95,
                mean_ape=1.0,
                median_ape=1.0,
                bias=0.0,
                crps_pct=1.0,
            )
        )
        for method in ("ols", "naive10"):
            rows.append(
                dict(
                    method=method,
                    horizon=horizon,
                    level="municipality",
                    size_class="all",
                    age_group="total",
                    coverage_50=np.nan,
                    coverage_80=np.nan,
                    coverage_95=np.nan,
                    mean_ape=ape[method],
                    median_ape=1.0,
                    bias=0.0,
                    crps_pct=ape[method],
                )
            )
    return pd.DataFrame(rows)


def test_headline_checks_the_targets_against_the_numbers():
    from vekst.evaluate.headline import headline_markdown

    good = headline_markdown(_pooled(0.8, 0.78, {"bayes": 1.0, "ols": 2.0, "naive10": 2.0}))
    assert "- [x] 80 % bands cover 75-85 % at every horizon" in good
    assert "- [x] 80 % bands cover at least 75 % in every size class" in good
    assert "- [x] MAPE and CRPS at h = 2 below naive10's and OLS's" in good
    # h, <2k, 2-5k, 5-20k, 20-50k, 50k+, all
    assert "| 2 | 50/78/95 | – | – | – | 50/80/95 | 50/80/95 |" in good
    bad = headline_markdown(_pooled(0.7, 0.6, {"bayes": 3.0, "ols": 2.0, "naive10": 2.0}))
    assert "- [ ] 80 % bands cover 75-85 % at every horizon" in bad
    assert "- [ ] 80 % bands cover at least 75 % in every size class" in bad
    assert "- [ ] MAPE and CRPS at h = 2 below naive10's and OLS's" in bad


def test_headline_shows_the_chance_floor_of_the_last_horizon():
    from vekst.evaluate.headline import headline_markdown

    pooled = _pooled(0.8, 0.78, {"bayes": 1.0, "ols": 2.0, "naive10": 2.0})
    floor = pd.DataFrame(
        {
            "horizon": [1, 2, 2],
            "size_class": ["all", "all", "<2k"],
            "age_group": ["total", "total", "total"],
            "n": [10, 10, 4],
            "floor_median_ape": [0.11, 0.22, 0.55],
            "floor_mean_ape": [0.2, 0.3, 0.7],
        }
    )
    text = headline_markdown(pooled, floor=floor)
    row = next(line for line in text.splitlines() if line.startswith("| total |"))
    assert row.endswith("| 0.22 |")  # horizon 2, all sizes: not h = 1, not <2k
    assert "| chance floor |" in text and "No method can go below it." in text
    assert "chance floor" not in headline_markdown(pooled)


def test_backtest_files_are_written_whole_and_readable_by_others(tmp_path):
    # Temporary files from mkstemp are private (0600); published results must follow the
    # umask like any other file, or a shared results folder cannot be read by colleagues.
    import os
    import stat

    import pandas as pd

    from vekst.evaluate.result import write_csv_atomic
    from vekst.evaluate.store import write_json_atomic

    old = os.umask(0o022)
    try:
        table = write_csv_atomic(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv.gz")
        write_json_atomic({"x": 1}, tmp_path / "n.json")
    finally:
        os.umask(old)
    for path in (table, tmp_path / "n.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert pd.read_csv(table)["a"].tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.json", "t.csv.gz"]


def test_headline_shows_calibrated_origins_apart_from_short_panels():
    from vekst.evaluate.headline import headline_markdown

    pooled = _pooled(0.8, 0.78, {"bayes": 1.0, "ols": 2.0, "naive10": 2.0})
    rows = []
    # origin: (coverage of municipal totals, of counties, of 90+ cells, units scored)
    for origin, (mun, county, old, n) in {
        2010: (0.90, 1.00, 0.95, 100),
        2014: (0.70, 0.80, 0.80, 100),
        2015: (0.80, 0.60, 0.90, 300),
    }.items():
        for horizon in (1, 2):
            base = dict(origin=origin, method="bayes", horizon=horizon, size_class="all")
            rows += [
                dict(base, level="municipality", age_group="total", coverage_80=mun, n=n),
                dict(base, level="county", age_group="total", coverage_80=county, n=15),
                dict(base, level="municipality", age_group="90+", coverage_80=old, n=n),
                dict(base, method="ols", level="municipality", age_group="total",
                     coverage_80=np.nan, n=n),
            ]
    table = pd.DataFrame(rows)
    notes = {2010: {"schedule_calibrated_on": None}, 2014: {"schedule_calibrated_on": [2010, 2013]},
             2015: {"schedule_calibrated_on": [2011, 2014]}}
    text = headline_markdown(pooled, notes=notes, per_origin=table)
    assert "calibrated migration age schedules (2014-2015) and short panels" in text
    assert "(2010)" in text
    # weighted by units scored: (0.70 * 100 + 0.80 * 300) / 400 = 0.775 -> 78
    assert "| municipality (calibrated) | 78 | 78 |" in text
    assert "| municipality (short panels) | 90 | 90 |" in text
    assert "| county (calibrated) | 70 | 70 |" in text  # equal weights: (0.8 + 0.6) / 2
    assert "| 90+ | 88 | 95 |" in text  # (0.8 * 100 + 0.9 * 300) / 400 = 0.875
    # Without the record (older notes), or with one kind of origin only, no such section.
    assert "by history" not in headline_markdown(pooled, notes={2010: {}}, per_origin=table)
    only_calibrated = {o: {"schedule_calibrated_on": [2010, 2013]} for o in (2010, 2014, 2015)}
    assert "by history" not in headline_markdown(pooled, notes=only_calibrated, per_origin=table)


def test_headline_checks_the_size_classes_of_the_calibrated_origins():
    from vekst.evaluate.headline import headline_markdown

    # Pooled over every origin the classes look fine (80 and 78 %).
    pooled = _pooled(0.8, 0.78, {"bayes": 1.0, "ols": 2.0, "naive10": 2.0})
    rows = []
    # origin: coverage of places of 50,000+ and of <2k, places of 50,000+ scored
    for origin, (large, small, n) in {
        2010: (0.95, 0.80, 20),
        2014: (0.66, 0.80, 10),
        2015: (0.70, 0.85, 30),
    }.items():
        for horizon in (1, 2):
            base = dict(origin=origin, method="bayes", horizon=horizon, level="municipality",
                        age_group="total")
            rows += [
                dict(base, size_class="all", coverage_80=0.8, n=200),
                dict(base, size_class="50k+", coverage_80=large, n=n),
                dict(base, size_class="<2k", coverage_80=small, n=100),
            ]
    notes = {2010: {"schedule_calibrated_on": None}, 2014: {"schedule_calibrated_on": [2010, 2013]},
             2015: {"schedule_calibrated_on": [2011, 2014]}}
    text = headline_markdown(pooled, notes=notes, per_origin=pd.DataFrame(rows))
    # weighted by places scored: (0.66 * 10 + 0.70 * 30) / 40 = 0.69; the short panel's
    # 95 % is left out.
    assert "| 50k+ | 69 | 69 |" in text and "| <2k | 82 | 82 |" in text
    assert "- [x] 80 % bands cover at least 75 % in every size class\n" in text
    assert (
        "- [ ] 80 % bands cover at least 75 % in every size class in the origins with "
        "calibrated migration age schedules (not in: 50k+ at h = 1: 69, 50k+ at h = 2: 69)"
    ) in text
