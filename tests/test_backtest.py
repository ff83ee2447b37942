"""Rolling-origin backtests: the cut at the origin, the baselines, the scores, the CLI."""

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from vekst.evaluate import (
    BacktestConfig,
    BacktestError,
    backtest,
    naive_draws,
    ols_draws,
    point_draws,
    size_class,
    truncate_panel,
)

ORIGIN = 2012


@pytest.fixture(scope="module")
def small_panel(default_panel):
    """Six Telemark municipalities (two labour-market regions or more), 2005-2016."""
    codes = ["4001", "4003", "4012", "4014", "4020", "4026"]
    return default_panel.sel(municipality=codes, year=slice(2005, 2016)).copy(deep=True)


def poison(panel: xr.Dataset, origin: int) -> xr.Dataset:
    """Replace everything a forecast from ``origin`` must not see with absurd values."""
    bad = panel.copy(deep=True)
    later = bad["year"] > origin
    bad["population"] = xr.where(later, bad["population"] * 1000 + 7, bad["population"]).transpose(
        *panel["population"].dims
    )
    bad["population"].attrs = panel["population"].attrs
    for name in list(bad.data_vars):
        da = bad[name]
        if name in ("births", "net_migration", "net_migration_total"):
            # derived from stocks: must be recomputed, so garbage in every year is harmless
            bad[name] = xr.full_like(da, 9999.0, dtype=float)
            bad[name].attrs = da.attrs
            continue
        if "year" in da.dims and name != "population":
            fill = 0.5 if da.attrs.get("kind") == "rate" else 1e6
            bad[name] = da.where(da["year"] < origin, fill)
            bad[name].attrs = da.attrs
        for dim in da.dims:
            if dim != "year" and str(dim).endswith("year"):
                bad[name] = bad[name].where(bad[dim] < origin, 0.5)
                bad[name].attrs = da.attrs
    return bad


# --- truncation ----------------------------------------------------------------------------
def test_truncation_drops_later_years_and_masks_flows_and_rates_of_the_origin(small_panel):
    cut = truncate_panel(small_panel, ORIGIN)
    assert int(cut["year"].max()) == ORIGIN
    assert int(cut["hist_year"].max()) == ORIGIN - 1
    np.testing.assert_array_equal(
        cut["population"].sel(year=ORIGIN).values,
        small_panel["population"].sel(year=ORIGIN).values,
    )
    for name in ("mortality_rate", "fertility_rate", "births", "net_migration_total"):
        assert bool(cut[name].sel(year=ORIGIN).isnull().all()), name
        assert bool(cut[name].sel(year=ORIGIN - 1).notnull().any()), name
    assert cut.attrs["backtest_origin"] == ORIGIN


def test_truncation_recomputes_derived_components_from_the_stocks(small_panel):
    clean = truncate_panel(small_panel, ORIGIN)
    cut = truncate_panel(poison(small_panel, ORIGIN), ORIGIN)
    for name in ("births", "net_migration", "net_migration_total"):
        xr.testing.assert_equal(cut[name], clean[name])
    # and the recomputed flows agree with the full panel's wherever both are defined
    before = small_panel["net_migration_total"].sel(year=slice(None, ORIGIN - 1))
    np.testing.assert_allclose(
        cut["net_migration_total"].sel(year=slice(None, ORIGIN - 1)).values, before.values
    )


def test_truncation_keeps_observed_components_and_only_cuts_them(small_panel):
    panel = small_panel.copy(deep=True)
    observed = panel["net_migration_total"] + 0.5  # not what the residual method gives
    observed.attrs = {**panel["net_migration_total"].attrs, "derived": "no"}
    panel["net_migration_total"] = observed
    cut = truncate_panel(panel, ORIGIN)
    np.testing.assert_array_equal(
        cut["net_migration_total"].sel(year=slice(None, ORIGIN - 1)).values,
        observed.sel(year=slice(None, ORIGIN - 1)).values,
    )
    assert bool(cut["net_migration_total"].sel(year=ORIGIN).isnull().all())


def test_truncation_refuses_origins_outside_the_panel(small_panel):
    with pytest.raises(BacktestError, match="2030"):
        truncate_panel(small_panel, 2030)
    with pytest.raises(BacktestError, match="no calendar year"):
        truncate_panel(small_panel, 2005)


# --- baselines -----------------------------------------------------------------------------
def test_naive_rate_is_the_mean_of_the_last_k_observed_rates(small_panel):
    cut = truncate_panel(small_panel, ORIGIN)
    draws = naive_draws(cut, ORIGIN, years=3)
    assert draws.attrs["naive_years"] == [2009, 2010, 2011]
    net = small_panel["net_migration_total"].sel(year=[2009, 2010, 2011])
    population = small_panel["population"].sum(("age", "sex")).sel(year=[2009, 2010, 2011])
    expected = (100 * net / population).mean("year").values
    np.testing.assert_allclose(draws["attractiveness"].values[0], expected)
    assert draws.sizes["draw"] == 1 and draws.sizes["covariate"] == 0
    for name in ("year_effect_sigma", "sigma_base", "sigma_pop", "year_effect_mu"):
        assert float(draws[name].values[0]) == 0.0


def test_naive_projection_applies_the_rate_to_the_jump_off_population(small_panel):
    from vekst.projection import project

    cut = truncate_panel(small_panel, ORIGIN)
    draws = naive_draws(cut, ORIGIN, years=5)
    one = project(cut, draws, base_year=ORIGIN, end_year=ORIGIN + 2, seed=1, detail="totals")
    two = project(cut, draws, base_year=ORIGIN, end_year=ORIGIN + 2, seed=99, detail="totals")
    # no spread, so the seed changes nothing
    np.testing.assert_array_equal(one["population_total"].values, two["population_total"].values)
    base = small_panel["population"].sel(year=ORIGIN).sum(("age", "sex")).values
    requested = one["net_migration_requested"].isel(draw=0).sel(year=ORIGIN).values
    np.testing.assert_allclose(requested, draws["attractiveness"].values[0] / 100 * base)


def test_ols_draws_are_one_noiseless_draw_of_the_ols_fit():
    from vekst.models.ols import fit_ols
    from vekst.simulate import simulate_migration_data

    data, _ = simulate_migration_data(n_regions=3, municipalities_per_region=4, seed=2)
    ols = fit_ols(data)
    draws = ols_draws(data, ols)
    assert draws.sizes["draw"] == 1
    np.testing.assert_allclose(draws["beta_mu"].values[0], ols.beta.values)
    assert float(draws["year_effect_mu"][0]) == pytest.approx(float(ols.year_effect.mean()))
    np.testing.assert_allclose(draws["attractiveness"].values[0], ols.attractiveness.values)
    assert float(np.abs(draws["beta_sigma"]).sum()) == 0.0
    assert draws.attrs["covariates"] == list(data.covariates)


def test_point_draws_reject_mismatched_inputs():
    from vekst.evaluate import BaselineError

    with pytest.raises(BaselineError, match="coefficients"):
        point_draws(["0301"], attractiveness=[0.1], covariates=["ds"], beta=[])
    with pytest.raises(BaselineError, match="not finite"):
        point_draws(["0301"], attractiveness=[np.nan])


def test_size_classes():
    labels = size_class([500, 1999, 2000, 4999.5, 19_000, 20_000, 60_000])
    assert labels.tolist() == ["<2k", "<2k", "2-5k", "2-5k", "5-20k", "20-50k", "50k+"]


# --- the backtest --------------------------------------------------------------------------
def _fake_pipeline(seen):
    """Stand-ins for the workflow's fit_panel/project_fit whose draws depend on every
    number of the panel they are given."""

    def fit_panel(panel, spec=None, config=None, *, employment_rate=None):
        from vekst.workflow import model_inputs

        migration, births, _ = model_inputs(panel, spec, employment_rate=employment_rate)
        seen.append((migration, births, config))
        diagnostics = SimpleNamespace(
            converged=True, as_dict=lambda: {"converged": True, "problems": []}
        )
        return SimpleNamespace(idata=(migration, births), diagnostics=diagnostics)

    def project_fit(fit, panel, *, allow_unconverged=False, n_draws=250, seed=0, **options):
        from vekst.projection import make_test_draws, project

        assert allow_unconverged  # the backtest records the gate, it does not stop
        migration, births = fit.idata
        rng = np.random.default_rng(seed)
        n_mun = len(migration.municipalities)
        level = np.nanmean(migration.rate, axis=1) + 0.01 * migration.x.mean(axis=(0, 2))
        fert = np.log(births.observed.sum(1) / births.expected.sum(1))
        coords = xr.Dataset(coords={"municipality": migration.municipalities})
        draws = make_test_draws(
            coords,
            n_draws,
            seed,
            covariates=list(migration.covariates),
            attractiveness=level + 0.2 * rng.standard_normal((n_draws, n_mun)),
            fert_dev=fert + 0.01 * rng.standard_normal((n_draws, n_mun)),
            mort_dev=None,
        )
        return project(panel, draws, seed=seed, **options)

    return fit_panel, project_fit


def _patch(monkeypatch, seen):
    fit_panel, project_fit = _fake_pipeline(seen)
    monkeypatch.setattr("vekst.workflow.fit_panel", fit_panel)
    monkeypatch.setattr("vekst.workflow.project_fit", project_fit)


def test_backtest_never_sees_data_after_its_origin(small_panel, monkeypatch):
    seen: list = []
    _patch(monkeypatch, seen)
    methods = ("bayes", "ols", "naive5", "naive10", "ccm5", "no_migration")
    settings = dict(methods=methods, n_draws=30, horizon=2)
    clean = backtest(small_panel, BacktestConfig(origins=(ORIGIN, 2014), **settings))
    poisoned = backtest(
        poison(small_panel, ORIGIN),
        BacktestConfig(origins=(ORIGIN,), **settings),
        observed=small_panel,
    )
    fitted = {int(m.years.max()) for m, _, _ in seen}
    assert fitted == {ORIGIN - 1, 2013}  # flows end the year before each origin
    assert all(int(b.years.max()) == int(m.years.max()) for m, b, _ in seen)
    for method in methods:
        np.testing.assert_array_equal(
            poisoned.forecasts[(ORIGIN, method)].values,
            clean.forecasts[(ORIGIN, method)].values,
            err_msg=method,
        )
    first = clean.scores[clean.scores["origin"] == ORIGIN].reset_index(drop=True)
    np.testing.assert_array_equal(poisoned.scores["crps"].values, first["crps"].values)


def test_backtest_scores_every_method_year_municipality_and_age_group(small_panel, monkeypatch):
    seen: list = []
    _patch(monkeypatch, seen)
    config = BacktestConfig(
        origins=(2013,), horizon=3, methods=("bayes", "naive5", "no_migration"), n_draws=25
    )
    result = backtest(small_panel, config)
    every = result.scores
    scores = every[every["level"] == "municipality"]
    assert set(scores["method"]) == {"bayes", "naive5", "no_migration"}
    assert sorted(scores["horizon"].unique()) == [1, 2, 3]
    assert scores["age_group"].nunique() == 13  # 12 planner groups + total
    assert len(scores) == 3 * 3 * 6 * 13
    # observed totals are the panel's
    row = scores[
        (scores["municipality"] == "4001")
        & (scores["year"] == 2015)
        & (scores["age_group"] == "total")
        & (scores["method"] == "naive5")
    ]
    assert float(row["observed"].iloc[0]) == float(
        small_panel["population"].sel(municipality="4001", year=2015).sum()
    )
    # the age groups add up to the total in every forecast draw
    forecast = result.forecasts[(2013, "bayes")]
    parts = forecast.sel(age_group=forecast["age_group"] != "total").sum("age_group")
    np.testing.assert_allclose(parts.values, forecast.sel(age_group="total").values, rtol=1e-5)
    bayes = scores[scores["method"] == "bayes"]
    assert bayes["cover_95"].notna().all()
    assert (bayes["cover_50"] <= bayes["cover_95"]).all()  # nested intervals
    point = scores[scores["method"] != "bayes"]
    assert point["cover_80"].isna().all()
    np.testing.assert_allclose(point["crps"], np.abs(point["point"] - point["observed"]))
    # the spec fell back to no_jobs (no job data before 2013) and says so
    assert result.notes[2013]["spec_name"] == "no_jobs"
    assert "VRA" in result.notes[2013]["spec"]
    table = result.table()
    assert {"all"} <= set(table["size_class"])
    assert table.loc[table["size_class"] == "all", "n"].max() == 6


def test_backtest_skips_years_beyond_the_data_and_rejects_bad_requests(small_panel):
    config = BacktestConfig(origins=(2015,), horizon=4, methods=("no_migration",))
    result = backtest(small_panel, config)
    assert sorted(result.scores["year"].unique()) == [2016]
    with pytest.raises(BacktestError, match="no observed stock"):
        backtest(small_panel, BacktestConfig(origins=(2016,), horizon=2, methods=("no_migration",)))
    with pytest.raises(BacktestError, match="unknown backtest method"):
        BacktestConfig(origins=(2012,), horizon=2, methods=("arima",))


def test_cli_prints_and_writes_the_tables(tmp_path):
    from vekst.cli import app
    from vekst.commands.backtest import parse_origins

    assert parse_origins(["2012", "2015,2018"]) == [2012, 2015, 2018]
    assert parse_origins(["2009-2011", "2015"]) == [2009, 2010, 2011, 2015]
    out = tmp_path / "results"
    runner = CliRunner()
    args = [
        "backtest",
        "--origins",
        "2016",
        "2017",
        "--horizon",
        "1",
        "--methods",
        "naive5,ccm5,no_migration",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ccm5" in result.output and "no_migration" in result.output
    import pandas as pd

    table = pd.read_csv(out / "backtest_table.csv")
    assert set(table["origin"]) == {2016, 2017}
    assert set(table["method"]) == {"naive5", "ccm5", "no_migration"}
    municipal = table[(table["level"] == "municipality") & (table["size_class"] == "all")]
    assert (municipal.loc[municipal["age_group"] == "total", "n"] == 357).all()
    counties = table[table["level"] == "county"]
    assert len(counties) == 2 * 3 and (counties["n"] == 15).all()  # 15 counties (2024 codes)
    assert set(table["level"]) == {"municipality", "county", "region"}
    for name in ("backtest_pooled.csv", "backtest_notes.json", "backtest_headline.md"):
        assert (out / name).exists(), name
    # The chance floor of the scored origins and horizon, below every method's median APE.
    floor = pd.read_csv(out / "backtest_chance_floor.csv")
    assert set(floor["horizon"]) == {1}
    pooled = pd.read_csv(out / "backtest_pooled.csv")
    ages = pooled[(pooled["level"] == "municipality") & (pooled["size_class"] == "all")]
    lowest = ages.groupby("age_group")["median_ape"].min()
    at_all = floor[floor["size_class"] == "all"].set_index("age_group")["floor_median_ape"]
    assert (at_all.reindex(lowest.index) < lowest).all()
    assert at_all["0"] > 5.0  # newborn cells of a few dozen: chance alone misses by ~9 %
    # the finished origins were kept; a second run reads them back and writes the same table
    assert sorted(p.name for p in (out / "backtest_origins").glob("*.json")) == [
        "origin_2016.json",
        "origin_2017.json",
    ]
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_csv(out / "backtest_table.csv"), table)


# --- slow: the real sampler ----------------------------------------------------------------
@pytest.mark.slow
def test_bayesian_backtest_with_the_sampler_ignores_poisoned_later_years(small_panel):
    config = BacktestConfig(
        origins=(ORIGIN,),
        horizon=2,
        methods=("bayes",),
        draws=100,
        tune=100,
        chains=1,
        n_draws=40,
    )
    clean = backtest(small_panel, config)
    poisoned = backtest(poison(small_panel, ORIGIN), config, observed=small_panel)
    np.testing.assert_allclose(
        poisoned.forecasts[(ORIGIN, "bayes")].values,
        clean.forecasts[(ORIGIN, "bayes")].values,
    )
    assert clean.notes[ORIGIN]["fit_years"] == [2005, ORIGIN - 1]


@pytest.mark.slow
def test_full_backtest_on_every_municipality(default_panel):
    config = BacktestConfig(origins=(2015,), horizon=2, draws=300, tune=300, n_draws=100)
    result = backtest(default_panel, config)
    summary = result.summary().set_index(["method", "horizon"])
    assert set(summary.index.get_level_values("method")) == {
        "bayes",
        "ols",
        "naive5",
        "naive10",
        "ccm5",
        "no_migration",
    }
    assert (summary["n"] == 357).all()
    assert summary["median_ape"].between(0, 10).all()
    bayes = summary.loc["bayes"]
    assert (bayes["coverage_50"] <= bayes["coverage_80"]).all()
    assert (bayes["coverage_80"] <= bayes["coverage_95"]).all()


def test_sampler_settings_reach_each_origins_fit(small_panel, monkeypatch):
    seen: list = []
    _patch(monkeypatch, seen)
    config = BacktestConfig(
        origins=(2013,), horizon=1, methods=("bayes",), n_draws=10,
        draws=123, tune=45, chains=3, target_accept=0.9,
    )
    backtest(small_panel, config)
    (_, _, sampler), = seen
    assert (sampler.draws, sampler.tune, sampler.chains) == (123, 45, 3)
    assert sampler.target_accept == 0.9
    assert config.settings()["target_accept"] == 0.9  # part of what a store reuses


def test_the_printed_tables_keep_every_value_whole_at_80_columns():
    # At 80 columns eleven columns cut values to "-0.…" and "no_migration" to "no_migr…".
    import re

    import numpy as np
    import pandas as pd
    from rich.console import Console

    from vekst.commands.backtest import age_table, pooled_table

    rng = np.random.default_rng(3)
    methods = ["bayes", "ols", "naive5", "naive10", "ccm5", "no_migration"]
    groups = ["total", "0", "1-5", "20-29", "90+"]
    rows = []
    for method in methods:
        for horizon in (1, 2, 3, 4):
            for group in groups:
                bands = method == "bayes"
                rows.append({
                    "level": "municipality", "size_class": "all", "age_group": group,
                    "method": method, "horizon": horizon, "n": 3570,
                    "median_ape": rng.uniform(0.4, 14.6), "mean_ape": rng.uniform(0.7, 19.9),
                    "bias": rng.uniform(-10.9, 10.9), "crps_pct": rng.uniform(0.5, 12.5),
                    "interval_score_pct_80": rng.uniform(3.0, 25.4),
                    **{f"coverage_{p}": rng.uniform(0.4, 0.99) if bands else np.nan
                       for p in ("50", "80", "95")},
                })
    pooled = pd.DataFrame(rows)
    console = Console(width=80, record=True)
    console.print(pooled_table(pooled))
    console.print(age_table(pooled))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    # Every bias of the totals whole (4 horizons x 6 methods), every bayes coverage triple.
    assert sum(f"{row.bias:.2f}" in text for row in pooled[pooled.age_group == "total"]
               .itertuples()) == 24
    bayes_rows = [line for line in text.splitlines() if line.startswith("│ bayes")]
    assert sum(bool(re.search(r" \d{2}/\d{2}/\d{2} ", line)) for line in bayes_rows) == 4
