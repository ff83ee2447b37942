"""Scenarios: known assumptions move results in the known direction; serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vekst.projection import Scenario, ScenarioError, load_scenario, make_test_draws, project
from vekst.projection.fertility import asfr_path, fertility_history
from vekst.projection.mortality import (
    estimate_mortality_trend,
    life_expectancy,
    mortality_history,
    shift_life_expectancy,
)
from vekst.projection.scenario import JobGrowth
from vekst.projection.testing import toy_panel

BASE, END = 2022, 2030


@pytest.fixture(scope="module")
def panel():
    return toy_panel(6, (2005, BASE), n_regions=2, seed=4)


@pytest.fixture(scope="module")
def draws(panel):
    return make_test_draws(panel, 40, seed=8)


@pytest.fixture(scope="module")
def baseline(panel, draws):
    return project(panel, draws, base_year=BASE, end_year=END, seed=1)


def test_job_growth_in_a_municipality_raises_its_population(panel, draws, baseline):
    target = "3004"
    boost = Scenario(
        name="jobs",
        job_growth=tuple(JobGrowth(target, year, 3.0) for year in range(BASE, END)),
    )
    boosted = project(panel, draws, scenario=boost, base_year=BASE, end_year=END, seed=1)
    end = dict(year=END, municipality=target)
    gain = boosted["population_total"].sel(**end) - baseline["population_total"].sel(**end)
    # beta_vra > 0 in every draw (0.14 +- small): +3 pp for 8 years adds people everywhere.
    assert float(gain.min()) > 0
    total = float(baseline["population_total"].sel(**end).mean())
    assert float(gain.mean()) > 0.005 * total
    # The first year: same seed, same shocks, so the difference is exactly the VRA term.
    first = dict(year=BASE, municipality=target)
    extra = boosted["net_migration_requested"].sel(**first) - baseline[
        "net_migration_requested"
    ].sel(**first)
    share_own = float(panel["commuting"].sel(municipality=target, work_municipality=target,
                                             year=BASE - 1)
                      / panel["commuting"].sel(municipality=target, year=BASE - 1).sum())
    beta0 = extra / (3.0 * share_own * baseline["population_total"].sel(**first) / 100)
    assert float(beta0.min()) > 0 and float(beta0.max()) < 0.5


def test_region_rows_fill_the_region_and_municipality_rows_win(panel):
    scenario = Scenario(
        job_growth=(JobGrowth("R1", 2023, 1.0), JobGrowth("3003", 2023, -2.0))
    )
    array = scenario.job_growth_array(panel, np.array([2022, 2023]))
    # A row outside the projected years is refused (it used to be dropped silently).
    beyond = Scenario(job_growth=(*scenario.job_growth, JobGrowth("R2", 2050, 9.0)))
    with pytest.raises(ScenarioError, match="2050"):
        beyond.job_growth_array(panel, np.array([2022, 2023]))
    regions = panel["region"].values
    assert np.all(array[0] == 0)
    assert np.all(array[1][regions == "R2"] == 0)
    row = dict(zip(panel["municipality"].values, array[1], strict=True))
    assert row["3001"] == 1.0 and row["3005"] == 1.0 and row["3003"] == -2.0
    with pytest.raises(ScenarioError, match="9999"):
        Scenario(job_growth=(JobGrowth("9999", 2023, 1.0),)).job_growth_array(
            panel, np.array([2023])
        )


def test_higher_tfr_gives_more_newborns_in_every_draw(panel, draws, baseline):
    high = project(panel, draws, scenario=Scenario(tfr_target=2.4), base_year=BASE,
                   end_year=END, seed=1)
    age0 = dict(year=BASE + 1, age=0)
    assert bool((high["population"].sel(**age0) > baseline["population"].sel(**age0)).all())
    # The baseline TFR is a stochastic path; a held TFR isolates the target's scaling.
    tfr = json.loads(baseline.attrs["assumptions"])["fertility"]["tfr_last_observed"]
    held = project(panel, draws, scenario=Scenario(tfr_target=tfr), base_year=BASE,
                   end_year=END, seed=1)
    expected = {k: v["expected_births"].sel(year=BASE).sum() for k, v in
                (("high", high), ("held", held))}
    assert float(expected["high"] / expected["held"]) == pytest.approx(2.4 / tfr, rel=0.01)
    double = project(panel, draws, scenario=Scenario(asfr_multiplier=2.0), base_year=BASE,
                     end_year=BASE + 1, seed=1)
    np.testing.assert_allclose(
        double["expected_births"].sel(year=BASE), 2 * baseline["expected_births"].sel(year=BASE),
        rtol=0.02,
    )
    # Births have year-to-year noise around what the rates imply.
    births, mean = baseline["births"].sel(year=BASE), baseline["expected_births"].sel(year=BASE)
    assert float(abs(births - mean * np.exp(draws["fert_dev"])).max()) > 0.5


def test_mortality_alternatives(panel, draws, baseline):
    frozen = project(panel, draws, scenario=Scenario(mortality_improvement_multiplier=0.0),
                     base_year=BASE, end_year=END, seed=1)
    longer = project(panel, draws, scenario=Scenario(e0_shift=3.0), base_year=BASE,
                     end_year=END, seed=1)
    later = dict(year=END - 1)
    assert bool((frozen["deaths"].sel(**later) > baseline["deaths"].sel(**later)).all())
    assert bool((longer["deaths"].sel(**later) < baseline["deaths"].sel(**later)).all())
    e0 = json.loads(longer.attrs["assumptions"])["mortality"]["e0"]
    e0_base = json.loads(baseline.attrs["assumptions"])["mortality"]["e0"]
    for sex in ("female", "male"):
        assert e0[sex][str(END - 1)] - e0_base[sex][str(END - 1)] == pytest.approx(3.0, abs=0.02)


def test_mortality_trend_recovers_a_known_improvement(panel):
    history = mortality_history(panel, before_year=BASE)
    trend = estimate_mortality_trend(history, window=10)
    np.testing.assert_allclose(trend.drift, -0.015, atol=1e-10)  # toy panel: 1.5 % a year
    assert trend.jump_off_year == BASE - 1
    rates = trend.rates(np.array([BASE - 1, BASE + 9]), improvement_multiplier=0.5)
    np.testing.assert_allclose(rates[1] / rates[0], np.exp(-0.0075 * 10))
    lee_carter = estimate_mortality_trend(history, window=10, method="lee_carter")
    np.testing.assert_allclose(lee_carter.drift, -0.015, atol=1e-6)


def test_life_table_and_e0_shift():
    # Constant hazard m at every age (open age included) gives e0 = 1 / m exactly.
    assert life_expectancy(np.full(106, 0.02)) == pytest.approx(50.0)
    rates = np.stack([np.full(106, 0.02), np.full(106, 0.05)])
    shifted = shift_life_expectancy(rates, np.array([1.5, -2.0]))
    np.testing.assert_allclose(life_expectancy(shifted), [51.5, 18.0], atol=1e-6)


def test_tfr_path_moves_linearly_to_the_target(panel):
    history = fertility_history(panel, before_year=BASE)
    last = float(history.isel(year=-1).sum())
    path = asfr_path(history, np.arange(BASE, BASE + 6), tfr_target=2.0,
                     tfr_target_year=BASE + 3)
    tfr = path.sum(1)
    expected = last + (2.0 - last) * np.clip((np.arange(BASE, BASE + 6) - (BASE - 1)) / 4, 0, 1)
    np.testing.assert_allclose(tfr, expected)
    held = asfr_path(history, np.arange(BASE, BASE + 3))
    np.testing.assert_allclose(held, np.broadcast_to(history.isel(year=-1).values, held.shape))


def test_scenario_round_trips_and_is_recorded(tmp_path, panel):
    scenario = Scenario(
        name="high", description="more jobs in R1",
        job_growth=(JobGrowth("R1", 2024, 1.5),), tfr_target=1.8, tfr_target_year=2030,
        mortality_improvement_multiplier=1.2, e0_shift=0.5,
    )
    assert Scenario.from_json(scenario.to_json()) == scenario
    projection = project(panel, None, scenario=scenario, base_year=BASE, end_year=BASE + 2)
    assert json.loads(projection.attrs["scenario"]) == scenario.to_dict()

    csv = tmp_path / "jobs.csv"
    csv.write_text("municipality_or_region,year,relative_job_growth\n3001,2024,2.5\nR2,2025,-1\n")
    from_csv = load_scenario(csv)
    assert from_csv.job_growth == (JobGrowth("3001", 2024, 2.5), JobGrowth("R2", 2025, -1.0))
    spec = tmp_path / "scenario.json"
    spec.write_text(json.dumps({"name": "s", "tfr_target": 1.7, "job_growth_csv": "jobs.csv"}))
    from_json = load_scenario(spec)
    assert from_json.tfr_target == 1.7 and len(from_json.job_growth) == 2


def test_bad_scenarios_are_reported(tmp_path):
    with pytest.raises(ScenarioError, match="tfr_target"):
        Scenario(tfr_target=-1)
    with pytest.raises(ScenarioError, match="unknown scenario key"):
        Scenario.from_dict({"tfr": 2})
    bad = tmp_path / "bad.csv"
    bad.write_text("municipality_or_region,year,relative_job_growth\n3001,twenty,1\n")
    with pytest.raises(ScenarioError, match="line 2"):
        load_scenario(bad)
    missing = tmp_path / "cols.csv"
    missing.write_text("unit,year,growth\n3001,2024,1\n")
    with pytest.raises(ScenarioError, match="missing column"):
        load_scenario(missing)


def test_codes_without_leading_zeros_are_restored(panel):
    renamed = panel.assign_coords(
        municipality=["0301", "0302", "3003", "3004", "3005", "3006"],
        region=("municipality", ["005", "012", "005", "012", "005", "012"]),
    )
    scenario = Scenario(job_growth=(JobGrowth("301", 2023, 2.0), JobGrowth("12", 2023, -1.0)))
    row = dict(zip(renamed["municipality"].values,
                   scenario.job_growth_array(renamed, np.array([2023]))[0], strict=True))
    assert row == {"0301": 2.0, "0302": -1.0, "3003": 0.0, "3004": -1.0, "3005": 0.0,
                   "3006": -1.0}
