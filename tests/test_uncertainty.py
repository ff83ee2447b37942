"""Variance attribution by source (vekst.uncertainty) on toy panels."""

from __future__ import annotations

import numpy as np
import pytest

from vekst.projection import make_test_draws, project
from vekst.projection.sources import SOURCES, UnknownSourceError
from vekst.projection.testing import toy_panel
from vekst.uncertainty import dominant_sources, uncertainty_by_source, uncertainty_table

BASE, END = 2022, 2026


@pytest.fixture(scope="module")
def panel():
    return toy_panel(5, (2000, BASE), seed=6, size=8000.0)


def test_holding_every_source_leaves_no_variance(panel):
    # The sources are exhaustive: with all of them at their means every draw is the same.
    draws = make_test_draws(panel, 40, seed=1)
    held = project(panel, draws, base_year=BASE, end_year=END, seed=2, n_draws=40,
                   detail="age_groups", held_sources=SOURCES)
    free = project(panel, draws, base_year=BASE, end_year=END, seed=2, n_draws=40,
                   detail="age_groups")
    spread = held["population_total"].std("draw").max()
    assert float(spread) < 1e-3 * float(free["population_total"].std("draw").max())
    # Up to float32 rounding (a few units in the last place of a 23,000-person group).
    groups = held["population_age_group"].astype("float64")
    relative = groups.std("draw") / groups.mean("draw").where(groups.mean("draw") > 0)
    assert float(relative.max()) < 1e-6


def test_local_shock_contribution_matches_its_analytic_variance(panel):
    # One year ahead the municipal noise adds (sigma_base / 100 * N)^2 persons^2 to the
    # total; the attribution must find that beside the other sources.
    sigma = 1.5
    draws = make_test_draws(panel, 50, seed=3, sigma_base=sigma, sigma_pop=0.0)
    attribution = uncertainty_by_source(
        panel, draws, n_draws=1500, seed=4, base_year=BASE, end_year=BASE + 1
    )
    population = panel["population"].sel(year=BASE).sum(("age", "sex")).values
    analytic = (sigma / 100.0 * population) ** 2
    found = attribution["contribution_total"].sel(source="local_shocks", year=BASE + 1).values
    np.testing.assert_allclose(found / analytic, 1.0, atol=0.12)
    shares = attribution["share_total"].sel(year=BASE + 1).sum("source")
    np.testing.assert_allclose(shares.values, 1.0)
    table = uncertainty_table(attribution)
    assert set(table["output"]) >= {"total", "0", "80-84"}
    assert (table["year"] > BASE).all()
    ranked = dominant_sources(attribution, BASE + 1)
    assert list(ranked.index.sort_values()) == sorted(panel["municipality"].values.astype(str))


@pytest.mark.parametrize("random", ["local_shocks", "fertility", "age_schedule"])
def test_a_single_random_source_gets_the_whole_band(panel, random):
    draws = make_test_draws(panel, 30, seed=5)
    others = [source for source in SOURCES if source != random]
    attribution = uncertainty_by_source(
        panel, draws, fixed=others, n_draws=60, seed=6, base_year=BASE, end_year=END
    )
    share = attribution["share_total"].sel(year=END)
    np.testing.assert_allclose(share.sel(source=random).values, 1.0)
    # Holding an already-fixed source changes nothing, to the last bit.
    assert float(np.abs(attribution["contribution_total"].sel(source=others)).max()) == 0
    # Holding the only random source removes the whole variance: no interaction is left.
    variance = attribution["variance_total"].sel(year=END)
    assert float(variance.min()) > 0
    np.testing.assert_allclose(
        attribution["interaction_total"].sel(year=END).values, 0.0,
        atol=1e-6 * float(variance.max()),
    )


def test_unknown_source_names_the_known_ones(panel):
    draws = make_test_draws(panel, 5, seed=1)
    with pytest.raises(UnknownSourceError, match="common_shocks"):
        project(panel, draws, base_year=BASE, end_year=END, held_sources=["weather"])


def test_csv_years_are_the_planners_years(panel):
    from vekst.uncertainty import shown_years

    assert shown_years(2022, 2040) == [2023, 2025, 2026, 2030, 2032, 2035, 2040]
    assert shown_years(2018, 2020) == [2019, 2020]
    draws = make_test_draws(panel, 10, seed=2)
    attribution = uncertainty_by_source(
        panel, draws, sources=["local_shocks"], n_draws=10, seed=1, base_year=BASE,
        end_year=END,
    )
    table = uncertainty_table(attribution, years=shown_years(BASE, END))
    assert sorted(set(table["year"])) == shown_years(BASE, END)  # the first one kept
