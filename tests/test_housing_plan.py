"""A housing plan as a scenario: known direction and known amount, common random numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vekst.errors import ScenarioError
from vekst.projection import Scenario, load_scenario, make_test_draws, project
from vekst.projection.housing_plan import (
    PlanEffectRun,
    PlannedCompletions,
    housing_plan_effect,
)
from vekst.projection.testing import toy_panel

BASE, END = 2022, 2027
TARGET = "3002"
BETA = 0.1  # % of population per completed dwelling per 1,000 inhabitants
EXTRA = 40.0  # planned completions per year above the recent mean


@pytest.fixture(scope="module")
def panel():
    panel = toy_panel(6, (2005, BASE), n_regions=2, seed=4)
    rng = np.random.default_rng(2)
    completions = rng.poisson(12.0, (panel.sizes["municipality"], panel.sizes["year"]))
    values = completions.astype(float)
    values[:, -1] = np.nan  # a flow: unknown in the last stock year
    values[-1] = np.nan  # one municipality without housing data: its term is off
    panel["dwellings_completed"] = (("municipality", "year"), values)
    return panel


@pytest.fixture(scope="module")
def draws(panel):
    covariates = ["vra_0", "centrality", "housing_0"]
    n = 60
    rng = np.random.default_rng(9)
    beta_mu = np.column_stack(
        [np.full(n, 0.14), np.full(n, 2.7), BETA + 0.02 * rng.standard_normal(n)]
    )
    draws = make_test_draws(
        panel, n, seed=8, covariates=covariates, beta_mu=beta_mu, beta_sigma=[0.05, 1.0, 0.0]
    )
    draws.attrs["housing_center"] = 4.0
    return draws


def _recent_mean(panel, code):
    values = panel["dwellings_completed"].sel(municipality=code).values
    return float(np.mean(values[np.isfinite(values)][-5:]))


def _plan(panel):
    level = _recent_mean(panel, TARGET) + EXTRA
    rows = tuple(PlannedCompletions(TARGET, year, level) for year in range(BASE, END))
    return Scenario(name="plan", housing_plan=rows)


@pytest.fixture(scope="module")
def effect(panel, draws):
    return housing_plan_effect(
        panel, draws, _plan(panel), run=PlanEffectRun(base_year=BASE, end_year=END, seed=3)
    )


def test_plan_raises_the_population_of_its_municipality_in_every_draw(effect):
    gain = effect["population_effect"].sel(municipality=TARGET, year=END)
    assert float(gain.min()) > 0
    assert float(effect["population_effect_low"].sel(municipality=TARGET, year=END)) > 0
    median = effect["population_effect_median"].sel(municipality=TARGET, year=END)
    assert float(effect["population_effect_low"].sel(municipality=TARGET, year=END)) <= float(
        median
    ) <= float(effect["population_effect_high"].sel(municipality=TARGET, year=END))


def test_first_year_effect_is_the_known_amount(effect, draws):
    # Completions per 1,000 x beta is % of the population, so the extra migrants are
    # beta x 1000 x EXTRA / pop x pop / 100 = 10 x beta x EXTRA, whatever the population.
    extra = effect["net_migration_effect"].sel(municipality=TARGET, year=BASE).values
    beta = draws["beta_mu"].sel(covariate="housing_0").values
    # Common random numbers: each draw's difference is its own coefficient's term (the
    # housing coefficient has no across-year spread in these draws).
    np.testing.assert_allclose(extra, 10.0 * EXTRA * beta, rtol=1e-3, atol=0.05)
    assert np.mean(extra) == pytest.approx(10.0 * EXTRA * BETA, rel=0.05)


def test_places_without_a_plan_are_untouched_in_the_first_year(effect):
    others = effect["net_migration_effect"].sel(year=BASE).drop_sel(municipality=TARGET)
    np.testing.assert_allclose(others.values, 0.0, atol=1e-3)


def test_no_plan_means_recent_completions_and_missing_data_switch_off(panel, draws):
    run = dict(base_year=BASE, end_year=BASE + 2, seed=3)
    baseline = project(panel, draws, **run)
    housing = baseline["migration_components"].sel(component="housing", year=BASE)
    population = baseline["population_total"].sel(year=BASE)
    rate = 1000 * _recent_mean(panel, TARGET) / population.sel(municipality=TARGET)
    beta = draws["beta_mu"].sel(covariate="housing_0")
    expected = beta.values * (rate.values - 4.0)
    np.testing.assert_allclose(housing.sel(municipality=TARGET).values, expected, rtol=1e-4)
    assert float(np.abs(housing.sel(municipality="3006")).max()) == 0.0  # no data: off


def test_plan_file_round_trip_and_bad_rows(tmp_path, panel):
    (tmp_path / "plan.csv").write_text(
        "municipality,year,completions\n3002,2023,55\n3002,2024,60\n"
    )
    (tmp_path / "s.json").write_text(json.dumps({"housing_plan_csv": "plan.csv"}))
    scenario = load_scenario(tmp_path / "s.json")
    assert scenario.housing_plan == (
        PlannedCompletions("3002", 2023, 55.0),
        PlannedCompletions("3002", 2024, 60.0),
    )
    assert Scenario.from_json(scenario.to_json()) == scenario
    (tmp_path / "bad.csv").write_text("municipality,year,completions\n3002,2023,-5\n")
    with pytest.raises(ScenarioError, match=r"bad.csv, line 2.*negative"):
        Scenario.from_dict({"housing_plan_csv": str(tmp_path / "bad.csv")})
    twice = [{"municipality": "3002", "year": 2023, "completions": 1}] * 2
    with pytest.raises(ScenarioError, match="3002 in 2023 twice"):
        Scenario.from_dict({"housing_plan": twice})


def test_plan_for_an_unknown_municipality_is_named(panel, draws):
    plan = Scenario(housing_plan=(PlannedCompletions("9999", BASE, 10.0),))
    with pytest.raises(ScenarioError, match="9999"):
        project(panel, draws, scenario=plan, base_year=BASE, end_year=END)


def test_plan_effect_needs_a_housing_fit(panel):
    plain = make_test_draws(panel, 4, seed=1)
    with pytest.raises(ScenarioError, match="without housing"):
        housing_plan_effect(panel, plain, _plan(panel))


def test_lagged_housing_moves_migration_one_year_later(panel):
    draws = make_test_draws(
        panel, 8, seed=2, covariates=["housing_1"], beta_mu=[[BETA]], beta_sigma=[[0.0]]
    )
    plan = Scenario(housing_plan=(PlannedCompletions(TARGET, BASE, 100.0),))
    effect = housing_plan_effect(
        panel, draws, plan, run=PlanEffectRun(base_year=BASE, end_year=BASE + 3, seed=1)
    )
    moved = effect["net_migration_effect"].sel(municipality=TARGET)
    np.testing.assert_allclose(moved.sel(year=BASE).values, 0.0, atol=1e-3)
    # Year BASE's plan over the population of 1 January BASE, applied in BASE + 1.
    assert float(moved.sel(year=BASE + 1).min()) > 0
