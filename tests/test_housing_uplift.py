"""The demo housing plan (50 % more completions than lately): known amounts, table numbers."""

from __future__ import annotations

import numpy as np
import pytest

from vekst.projection import make_test_draws
from vekst.projection.housing_plan import PlanEffectRun
from vekst.projection.housing_uplift import UpliftPlan, plan_effect_frame, uplift_plan_effect
from vekst.projection.testing import toy_panel
from vekst.report.housing_section import PER_DWELLING, plan_table

BASE, END = 2022, 2027
FIRST, LAST = 2023, 2025
BETA = 0.1
N_DRAWS = 40


@pytest.fixture(scope="module")
def panel():
    panel = toy_panel(5, (2008, BASE), n_regions=2, seed=5)
    rng = np.random.default_rng(7)
    values = rng.poisson(15.0, (panel.sizes["municipality"], panel.sizes["year"])).astype(float)
    values[:, -1] = np.nan  # a flow: unknown in the base (last stock) year
    values[0, -3:] = np.nan  # the last known years differ between places
    values[-1] = np.nan  # no completions data: no plan
    panel["dwellings_completed"] = (("municipality", "year"), values)
    return panel


@pytest.fixture(scope="module")
def draws(panel):
    rng = np.random.default_rng(3)
    beta = BETA + 0.03 * rng.standard_normal(N_DRAWS)
    draws = make_test_draws(
        panel,
        N_DRAWS,
        seed=4,
        covariates=["centrality", "housing_0"],
        beta_mu=np.column_stack([np.full(N_DRAWS, 2.7), beta]),
        beta_sigma=[1.0, 0.0],
    )
    draws.attrs["housing_center"] = 3.0
    return draws


@pytest.fixture(scope="module")
def effect(panel, draws):
    return uplift_plan_effect(
        panel,
        draws,
        UpliftPlan(share=0.5, first_year=FIRST, last_year=LAST),
        PlanEffectRun(base_year=BASE, end_year=END, seed=6),
    )


def _expected_extra(panel) -> dict[str, float]:
    """Half the mean of each place's last five known completions (computed here, by hand)."""
    out = {}
    for code in panel["municipality"].values.astype(str):
        series = panel["dwellings_completed"].sel(municipality=code).to_series()
        known = series[series.index < BASE].dropna()
        if len(known):
            out[code] = 0.5 * known.sort_index().iloc[-5:].mean()
    return out


def test_extra_dwellings_are_half_the_recent_mean_and_only_where_data_exist(panel, effect):
    expected = _expected_extra(panel)
    extra = effect["extra_completions"].to_series()
    assert set(extra.dropna().index) == set(expected) and len(expected) == 4
    for code, value in expected.items():
        assert extra[code] == pytest.approx(value)


def test_first_plan_year_moves_ten_times_beta_per_extra_dwelling(panel, draws, effect):
    beta = draws["beta_mu"].sel(covariate="housing_0").values
    for code, extra in _expected_extra(panel).items():
        moved = effect["net_migration_effect"].sel(municipality=code, year=FIRST).values
        np.testing.assert_allclose(moved, PER_DWELLING * beta * extra, rtol=1e-3, atol=0.05)
    # Before the plan starts nothing differs (same random numbers in both runs).
    np.testing.assert_allclose(effect["population_effect"].sel(year=FIRST).values, 0.0)


def test_report_table_holds_the_quantiles_of_the_per_draw_effect(panel, draws, effect):
    table = plan_table(effect, years=(2025, END, 2100))
    beta = draws["beta_mu"].sel(covariate="housing_0").values
    for code, extra in _expected_extra(panel).items():
        amounts = PER_DWELLING * beta * extra
        assert table.at[code, "extra_completions"] == pytest.approx(extra)
        assert table.at[code, "migration_median"] == pytest.approx(np.median(amounts), abs=0.05)
        assert table.at[code, "migration_low"] == pytest.approx(
            np.quantile(amounts, 0.05), abs=0.05
        )
        gained = effect["population_effect"].sel(municipality=code, year=END).values
        assert table.at[code, f"population_{END}_high"] == pytest.approx(
            np.quantile(gained, 0.95)
        )
        # Three plan years of extra migrants, and every draw keeps a gain.
        assert 2.5 * np.median(amounts) < table.at[code, f"population_{END}_median"]
        assert table.at[code, f"population_{END}_low"] > 0
    assert "population_2100_median" not in table  # past the projection: left out


def test_effect_table_by_year_matches_the_report_table(effect):
    frame = plan_effect_frame(effect).set_index(["municipality", "year"])
    table = plan_table(effect, years=(END,))
    for code in table.index:
        assert frame.loc[(code, FIRST), "extra_completions"] == table.at[code, "extra_completions"]
        assert frame.loc[(code, LAST + 1), "extra_completions"] == 0.0
        assert frame.loc[(code, FIRST), "net_migration_median"] == pytest.approx(
            table.at[code, "migration_median"]
        )
        assert frame.loc[(code, END), "population_low"] == pytest.approx(
            table.at[code, f"population_{END}_low"]
        )
    assert np.isnan(frame.loc[(table.index[0], END), "net_migration_median"])


def test_a_panel_without_completions_has_no_plan(panel, draws):
    empty = panel.copy()
    empty["dwellings_completed"] = empty["dwellings_completed"] * np.nan
    with pytest.raises(ValueError, match="no municipality"):
        uplift_plan_effect(empty, draws, run=PlanEffectRun(base_year=BASE, end_year=END))
    with pytest.raises(ValueError, match="ends"):
        UpliftPlan(first_year=2030, last_year=2023)


def test_demo_step_writes_the_effect_as_a_norwegian_csv(panel, draws, tmp_path):
    import json

    import arviz as az
    import pandas as pd

    from vekst.commands.demo import DemoSettings, demo_housing_plan

    idata = az.InferenceData(posterior=draws.expand_dims(chain=[0]))
    idata.attrs = {"covariates": json.dumps(["centrality", "housing_0"]), "housing_center": 3.0}
    settings = DemoSettings(end_year=END, housing_plan_draws=8, csv_format="nb", seed=2)
    effect = demo_housing_plan(idata, tmp_path, settings, panel)
    # The plan runs 2023-2030, clipped to the projected calendar years (to END - 1).
    assert (effect.attrs["plan_first_year"], effect.attrs["plan_last_year"]) == (2023, END - 1)
    assert effect.sizes["draw"] == 8
    raw = (tmp_path / effect.attrs["csv_file"]).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    frame = pd.read_csv(tmp_path / "housing_plan_effect.csv", sep=";", decimal=",",
                        encoding="utf-8-sig", dtype={"municipality": str})
    planned = _expected_extra(panel)
    assert set(frame["municipality"]) == set(planned)
    rows = frame.set_index(["municipality", "year"])
    for code, extra in planned.items():
        assert rows.loc[(code, 2023), "extra_completions"] == pytest.approx(extra, abs=0.05)
        assert rows.loc[(code, END), "extra_completions"] == 0.0
    # Without housing terms the demo has no plan to show.
    plain = az.InferenceData(posterior=draws.sel(covariate=["centrality"]).expand_dims(chain=[0]))
    assert demo_housing_plan(plain, tmp_path, settings, panel) is None
