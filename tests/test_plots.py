"""Plot functions: structure of the figures, the tables' numbers, top-k probabilities."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from vekst.report.plots import (
    AGE_GROUPS,
    PlotInputError,
    age_group_table,
    attractiveness_ranking,
    coefficient_plot,
    convergence_table,
    decomposition_chart,
    driver_summary,
    fan_chart,
    population_pyramid,
    ranking_table,
    top_k_probability,
)

RNG_SEED = 20240101


@pytest.fixture
def rng():
    return np.random.default_rng(RNG_SEED)


def _population_draws(rng, n_draw=50, years=(2022, 2025, 2030), n_age=106):
    ages = np.arange(n_age)
    base = np.where(ages < 80, 100.0, 100.0 * np.exp(-(ages - 80) / 6))
    values = base[None, None, :, None] * rng.lognormal(0, 0.05, (n_draw, len(years), n_age, 2))
    return xr.DataArray(
        values,
        dims=("draw", "year", "age", "sex"),
        coords={
            "draw": np.arange(n_draw),
            "year": list(years),
            "age": ages,
            "sex": ["female", "male"],
        },
    )


# ----------------------------------------------------------------------------- fan chart


def test_fan_chart_has_three_bands_median_and_history(rng):
    years = np.arange(2022, 2041)
    draws = xr.DataArray(
        1000 + np.cumsum(rng.normal(5, 10, (200, years.size)), axis=1),
        dims=("draw", "year"),
        coords={"year": years},
    )
    history = pd.Series(np.linspace(900, 1000, 10), index=np.arange(2013, 2023))
    fig = fan_chart(history, draws, title="Test")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    labels = [line.get_label() for line in ax.get_lines()]
    assert "Median projection" in labels and "Observed" in labels
    median_line = next(line for line in ax.get_lines() if line.get_label() == "Median projection")
    np.testing.assert_allclose(median_line.get_ydata(), np.median(draws.values, axis=0))
    # The narrowest band lies inside the widest one in every year.
    wide, narrow = bands[0].get_paths()[0].vertices, bands[-1].get_paths()[0].vertices
    assert narrow[:, 1].max() <= wide[:, 1].max() and narrow[:, 1].min() >= wide[:, 1].min()


def test_fan_chart_draws_on_given_axes_and_stacks_chains(rng):
    fig = Figure()
    ax = fig.add_subplot()
    draws = xr.DataArray(
        rng.normal(size=(2, 30, 5)),
        dims=("chain", "draw", "year"),
        coords={"year": np.arange(2030, 2035)},
    )
    result = fan_chart(None, draws, ax=ax)
    assert result is fig
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 3
    assert [line.get_label() for line in ax.get_lines()] == ["Median projection"]


def test_fan_chart_rejects_extra_dimensions(rng):
    draws = xr.DataArray(rng.normal(size=(10, 5, 3)), dims=("draw", "year", "municipality"))
    with pytest.raises(PlotInputError, match="municipality"):
        fan_chart(None, draws)


# ----------------------------------------------------------------------------- pyramid


def test_pyramid_has_bars_for_both_sexes_on_opposite_sides(rng):
    draws = _population_draws(rng)
    observed = draws.isel(draw=0, year=0)
    fig = population_pyramid(draws, 2030, observed=observed, observed_label="2022")
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["Men", "Women"]
    men = np.array([p.get_width() for p in bars[0]])
    women = np.array([p.get_width() for p in bars[1]])
    assert len(men) == len(women) == 106
    assert (men < 0).all() and (women > 0).all()
    np.testing.assert_allclose(women, np.median(draws.sel(year=2030, sex="female").values, axis=0))
    assert "2022" in [line.get_label() for line in ax.get_lines()]
    assert ax.get_title() == "Population 2030"


def test_pyramid_five_year_groups_and_given_axes(rng):
    draws = _population_draws(rng).sel(year=2025)
    fig = Figure()
    ax = fig.add_subplot()
    assert population_pyramid(draws, 2025, ax=ax, group_size=5) is fig
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars[0]) == 22  # 0-4, ..., 100-104, 105+
    # A group's bar is the median of the group total, not the sum of medians.
    group = draws.sel(sex="male", age=slice(0, 4)).sum("age")
    assert -bars[0][0].get_width() == pytest.approx(float(np.median(group.values)))


def test_pyramid_needs_year_when_draws_have_years(rng):
    with pytest.raises(PlotInputError, match="year"):
        population_pyramid(_population_draws(rng), None)
    with pytest.raises(PlotInputError, match="2050"):
        population_pyramid(_population_draws(rng), 2050)


# ----------------------------------------------------------------------------- age groups


def test_age_group_table_sums_ages_within_draws():
    # 4 draws; every person aged a in draw d: value d+1 for each sex, ages 0..99.
    draws = xr.DataArray(
        np.broadcast_to(np.arange(1, 5)[:, None, None, None], (4, 2, 100, 2)).astype(float),
        dims=("draw", "year", "age", "sex"),
        coords={"year": [2030, 2040], "age": np.arange(100), "sex": ["female", "male"]},
    )
    table = age_group_table(draws, years=[2040])
    assert list(table.index) == [g[0] for g in AGE_GROUPS] + ["Total"]
    # Group 1-5: 5 ages x 2 sexes x (draw value) -> 10, 20, 30, 40 persons.
    assert table.loc["1-5", (2040, "mean")] == pytest.approx(25.0)
    assert table.loc["1-5", (2040, "q50")] == pytest.approx(25.0)
    assert table.loc["1-5", (2040, "q10")] == pytest.approx(13.0)  # 10 + 0.3 * 10
    assert table.loc["1-5", (2040, "q90")] == pytest.approx(37.0)
    # The open group 90+ covers ages 90..99 here.
    assert table.loc["90+", (2040, "mean")] == pytest.approx(10 * 2 * 2.5)
    assert table.loc["Total", (2040, "mean")] == pytest.approx(100 * 2 * 2.5)
    with pytest.raises(PlotInputError, match="2050"):
        age_group_table(draws, years=[2050])


def test_age_group_table_accepts_grouped_draws():
    # Projections that keep only age groups: rows follow the age_group coordinate.
    grouped = xr.DataArray(
        np.arange(1.0, 5.0)[:, None, None] * np.array([1.0, 10.0])[None, None, :],
        dims=("draw", "year", "age_group"),
        coords={"year": [2030], "age_group": ["0-19", "20+"]},
    )
    table = age_group_table(grouped)
    assert list(table.index) == ["0-19", "20+", "Total"]
    assert table.loc["20+", (2030, "mean")] == pytest.approx(25.0)
    assert table.loc["Total", (2030, "q50")] == pytest.approx(27.5)


# ----------------------------------------------------------------------------- decomposition


def _decomposition(rng):
    components = ["expected_births", "expected_deaths", "national_immigration", "attractiveness"]
    means = np.array([100.0, -80.0, 40.0, 20.0])
    values = means[None, :, None] + rng.normal(0, 5, (400, 4, 6))
    return xr.DataArray(
        values,
        dims=("draw", "component", "year"),
        coords={"component": components, "year": np.arange(2016, 2022)},
    )


def test_decomposition_summary_total_sums_components_per_draw(rng):
    decomposition = _decomposition(rng)
    summary = driver_summary(decomposition)
    assert list(summary.index)[-1] == "total"
    assert list(summary.columns) == ["mean", "q10", "q90"]
    assert summary.loc["total", "mean"] == pytest.approx(summary["mean"].iloc[:-1].sum())
    per_draw_total = decomposition.mean("year").sum("component").values
    assert summary.loc["total", "q90"] == pytest.approx(np.quantile(per_draw_total, 0.9))
    # Near the simulated means (sd of a draw's 6-year mean is 5/sqrt(6)).
    assert summary.loc["expected_deaths", "mean"] == pytest.approx(-80.0, abs=1.0)


def test_decomposition_chart_bars_intervals_and_total(rng):
    summary = driver_summary(_decomposition(rng))
    fig = decomposition_chart(summary, title="Drivers")
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars[0]) == 4 and len(bars[1]) == 1
    assert bars[1][0].get_width() == pytest.approx(summary.loc["total", "mean"])
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == "Expected births" and ticks[-1] == "Total growth"
    # Deaths reduce growth: their bar points left.
    assert bars[0][1].get_width() < 0


def test_decomposition_chart_without_total_row_uses_sum_of_means():
    summary = pd.DataFrame({"mean": [10.0, -4.0]}, index=["own_jobs", "ds"])
    fig = Figure()
    ax = fig.add_subplot()
    assert decomposition_chart(summary, ax=ax) is fig
    total = [c for c in ax.containers if isinstance(c, BarContainer)][1]
    assert total[0].get_width() == pytest.approx(6.0)


# ----------------------------------------------------------------------------- ranking


def test_top_k_probability_hand_computed():
    # Draw-by-draw order (largest first):
    # d0: A, B, C   d1: B, A, C   d2: C, A, B   d3: A, C, B
    values = np.array([[3.0, 2.0, 1.0], [2.0, 3.0, 1.0], [2.0, 1.0, 3.0], [3.0, 1.0, 2.0]])
    draws = xr.DataArray(values, dims=("draw", "region"), coords={"region": ["A", "B", "C"]})
    top1 = top_k_probability(draws, k=1)
    assert top1.to_dict() == {"A": 0.5, "B": 0.25, "C": 0.25}
    top2 = top_k_probability(draws, k=2)
    assert top2.to_dict() == {"A": 1.0, "B": 0.5, "C": 0.5}
    assert top2.index[0] == "A"


def test_top_k_probabilities_sum_to_k(rng):
    draws = xr.DataArray(
        rng.normal(size=(2, 100, 30)),
        dims=("chain", "draw", "municipality"),
        coords={"municipality": [f"{i:04d}" for i in range(30)]},
    )
    for k in (1, 5, 10):
        assert top_k_probability(draws, k=k).sum() == pytest.approx(k)
    assert top_k_probability(draws, k=50).sum() == pytest.approx(30)
    with pytest.raises(PlotInputError):
        top_k_probability(draws, k=0)


def test_ranking_sorted_by_mean_with_names(rng):
    means = rng.normal(0, 1, 25)
    draws = xr.DataArray(
        means[None, :] + rng.normal(0, 0.1, (300, 25)),
        dims=("draw", "region"),
        coords={
            "region": [f"R{i:02d}" for i in range(25)],
            "region_name": ("region", [f"Region {i}" for i in range(25)]),
        },
    )
    fig = attractiveness_ranking(draws, top=10)
    (ax,) = fig.axes
    shown = [t.get_text() for t in ax.get_yticklabels()]
    expected = [f"Region {i}" for i in np.argsort(-draws.mean("draw").values)[:10]]
    assert shown == expected
    table = ranking_table(draws, k=10)
    assert table["mean"].is_monotonic_decreasing
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    assert table["p_top_k"].sum() == pytest.approx(10)


def test_ranking_uses_given_axes_and_labels(rng):
    draws = xr.DataArray(
        rng.normal(size=(50, 3)),
        dims=("draw", "municipality"),
        coords={"municipality": ["0301", "4601", "5001"]},
    )
    fig = Figure()
    ax = fig.add_subplot()
    out = attractiveness_ranking(
        draws, top=None, ax=ax, labels={"0301": "Oslo", "4601": "Bergen", "5001": "Trondheim"}
    )
    assert out is fig
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["Bergen", "Oslo", "Trondheim"]


# ----------------------------------------------------------------------------- coefficients


def test_coefficient_plot_one_panel_per_covariate(rng):
    covariates = ["vra_0", "vra_1", "centrality", "ds"]
    years = np.arange(2010, 2020)
    beta_mu = xr.DataArray(
        rng.normal(size=(2, 40, 4)),
        dims=("chain", "draw", "covariate"),
        coords={"covariate": covariates},
    )
    beta_year = xr.DataArray(
        rng.normal(size=(2, 40, 4, 10)),
        dims=("chain", "draw", "covariate", "year"),
        coords={"covariate": covariates, "year": years},
    )
    ols = xr.DataArray(
        rng.normal(size=(4, 10)),
        dims=("covariate", "year"),
        coords={"covariate": covariates, "year": years},
    )
    ols[0, :3] = np.nan  # years without job data
    fig = coefficient_plot(beta_year, beta_mu, ols, ols_beta_year_se=abs(ols) * 0 + 0.1)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == covariates
    # OLS markers skip the NaN years.
    ols_line = next(line for line in visible[0].get_lines() if line.get_marker() == "s")
    assert len(ols_line.get_xdata()) == 7

    # Years without data for a covariate are drawn apart (grey), the others in blue.
    observed = xr.DataArray(
        np.ones((4, 10), dtype=bool),
        dims=("covariate", "year"),
        coords={"covariate": covariates, "year": years},
    )
    observed[0, :3] = False
    fig_obs = coefficient_plot(beta_year, beta_mu, ols, observed=observed)

    def points(ax):
        return {
            c.get_label(): len(c.lines[0].get_xdata())
            for c in ax.containers
            if isinstance(c, ErrorbarContainer)
        }

    assert points(fig_obs.axes[0]) == {
        "Bayesian, by year": 7,
        "Bayesian, year without data": 3,
        "OLS, year by year": 7,
    }
    assert "Bayesian, year without data" not in points(fig_obs.axes[1])

    fig2 = Figure()
    axes = fig2.subplots(1, 4)
    assert coefficient_plot(beta_year, beta_mu, ols, axes=axes) is fig2
    with pytest.raises(PlotInputError, match="axes"):
        coefficient_plot(beta_year, beta_mu, ols, axes=axes[:2])


# ----------------------------------------------------------------------------- diagnostics


def test_diagnostics_table_flags_failed_checks():
    stored = json.dumps(
        {
            "rhat_max": 1.05,
            "ess_bulk_min": 120.0,
            "ess_tail_min": 800.0,
            "divergences": 3,
            "bfmi_min": 0.8,
            "problems": ["x"],
        }
    )
    table = convergence_table(stored)
    assert table["passed"].tolist() == [False, False, True, False, True]
    assert table.loc["Divergent transitions", "value"] == 3
    # The fit's own Diagnostics object works too, with its gate thresholds.
    from vekst.fit import Diagnostics

    passed = Diagnostics(
        rhat_max=1.004, ess_bulk_min=900.0, ess_tail_min=800.0, divergences=0, bfmi_min=float("nan")
    )
    assert convergence_table(passed)["passed"].all()
    with pytest.raises(PlotInputError, match="divergences"):
        convergence_table({"rhat_max": 1.0})
