"""Migration age schedules: shares, propensities, pooling within regions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.projection.schedule import (
    ScheduleDataError,
    estimate_migration_schedule,
    rogers_castro,
)
from vekst.projection.testing import toy_panel

AGES = np.arange(30)


def schedule_panel(sizes, peaks, regions) -> xr.Dataset:
    """Panel whose net gains at each municipality sit around one age (its 'peak').

    Population is flat over age; each year every municipality gains ``size / 10`` persons
    spread as a narrow bump around its peak age, and loses persons at age 5.
    """
    n_mun, n_years = len(sizes), 6
    years = np.arange(2010, 2010 + n_years)
    population = np.zeros((n_mun, n_years, len(AGES), 2))
    net = np.full((n_mun, n_years, len(AGES), 2), np.nan)
    for i, (size, peak) in enumerate(zip(sizes, peaks, strict=True)):
        population[i] = size / (2 * len(AGES))
        bump = np.exp(-0.5 * ((AGES - peak) / 1.5) ** 2)
        bump /= bump.sum()
        gains = size / 10 * bump
        net[i, :-1] = (gains / 2)[None, :, None]
        net[i, :-1, 5, :] -= size / 40
    codes = [f"30{i + 1:02d}" for i in range(n_mun)]
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), population),
            "net_migration": (("municipality", "year", "age", "sex"), net),
        },
        coords={
            "municipality": codes,
            "year": years,
            "age": AGES,
            "sex": ["female", "male"],
            "region": ("municipality", regions),
            "name": ("municipality", codes),
            "county": ("municipality", ["30"] * n_mun),
        },
    )


def test_shares_sum_to_one_and_propensity_is_a_relative_rate():
    panel = toy_panel(6, (2005, 2015), seed=2)
    schedule = estimate_migration_schedule(panel)
    np.testing.assert_allclose(schedule.in_share.sum((1, 2)), 1.0, rtol=1e-12)
    assert schedule.in_share.min() >= 0
    assert schedule.out_propensity.min() >= 0
    # Population-weighted mean of the relative loss rate is 1 in every municipality.
    exposure = panel["population"].sel(year=slice(2006, 2015)).sum("year")
    exposure = exposure.transpose("municipality", "sex", "age").values
    mean = (schedule.out_propensity * exposure).sum((1, 2)) / exposure.sum((1, 2))
    np.testing.assert_allclose(mean, 1.0, rtol=1e-10)


def test_pooling_pulls_a_tiny_municipality_toward_its_region():
    # Region A: a big municipality gaining around age 20, a tiny and a big one around 10.
    panel = schedule_panel(
        sizes=[200_000, 100, 200_000, 50_000],
        peaks=[20, 10, 10, 25],
        regions=["A", "A", "B", "B"],
    )
    pooled = estimate_migration_schedule(panel, prior_strength=200.0)
    raw = estimate_migration_schedule(panel, prior_strength=0.0, out_prior_exposure=0.0)
    big, tiny = 0, 1
    # The tiny municipality's own profile peaks at 10; pooled, it peaks at its region's 20.
    assert raw.in_share[tiny].sum(0).argmax() == 10
    assert pooled.in_share[tiny].sum(0).argmax() == 20
    # 50 own movers against 200 pseudo-movers: 20 % own profile, 80 % the region's.
    distance_raw = np.abs(raw.in_share[tiny] - pooled.in_share[big]).sum()
    distance_pooled = np.abs(pooled.in_share[tiny] - pooled.in_share[big]).sum()
    assert 0.15 * distance_raw < distance_pooled < 0.25 * distance_raw
    # The big municipality keeps its own schedule.
    assert np.abs(pooled.in_share[big] - raw.in_share[big]).sum() < 0.01
    # Region B's pattern does not leak into region A.
    assert pooled.in_share[tiny].sum(0)[25] < 0.01


def test_zero_prior_gives_the_raw_profile():
    panel = schedule_panel([1000, 3000], [8, 15], ["A", "A"])
    raw = estimate_migration_schedule(panel, prior_strength=0.0, out_prior_exposure=0.0)
    net = panel["net_migration"].isel(year=slice(0, -1)).transpose(
        "municipality", "year", "sex", "age"
    )
    gains = np.clip(net.values, 0, None).sum(1)
    np.testing.assert_allclose(raw.in_share, gains / gains.sum((1, 2), keepdims=True))
    # Losses only at age 5 -> the raw relative loss rate is zero elsewhere.
    assert np.all(raw.out_propensity[:, :, 5] > 0)
    assert np.allclose(np.delete(raw.out_propensity, 5, axis=2), 0)


def test_before_year_uses_only_earlier_flows():
    panel = schedule_panel([1000, 3000], [8, 15], ["A", "A"])
    changed = panel.copy(deep=True)
    changed["net_migration"].loc[dict(year=2014)] = 1000.0  # a flow after the cut
    a = estimate_migration_schedule(panel, before_year=2014)
    b = estimate_migration_schedule(changed, before_year=2014)
    np.testing.assert_array_equal(a.in_share, b.in_share)
    assert "2010-2013" in a.source


def test_panel_without_migration_gets_the_standard_schedule():
    panel = toy_panel(3, (2010, 2014), seed=1).drop_vars(["net_migration", "net_migration_total"])
    schedule = estimate_migration_schedule(panel)
    assert "Rogers-Castro" in schedule.source
    np.testing.assert_allclose(schedule.in_share.sum((1, 2)), 1.0)
    rate = rogers_castro(np.arange(100))
    assert 18 <= rate[10:].argmax() + 10 <= 26  # labour-force peak in the early twenties
    assert rate[0] > rate[10]  # children move with their parents


def test_reindex_names_missing_municipalities():
    panel = schedule_panel([1000, 3000], [8, 15], ["A", "A"])
    schedule = estimate_migration_schedule(panel)
    np.testing.assert_array_equal(schedule.reindex(["3002", "3001"]).in_share[0],
                                  schedule.in_share[1])
    with pytest.raises(ScheduleDataError, match="9999"):
        schedule.reindex(["3001", "9999"])
