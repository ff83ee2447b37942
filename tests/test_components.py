"""Cohort-component accounting: survival, residual net migration, implied births.

The reference panels here are built forward with plain numpy loops that implement the
convention written in the docstring of vekst.data.components (not with the functions under
test), so recovering the known migration checks both the formula and the bookkeeping.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.data import components as comp

CODES = ["0301", "3201", "4601"]
YEARS = np.arange(2000, 2006)
AGES = np.arange(0, 11)  # 10 = 10+
SEXES = ["female", "male"]


def _forward(seed: int, *, migrate_infants: bool = True):
    """Population built from known births, rates and migration (numpy, independent)."""
    rng = np.random.default_rng(seed)
    n_m, n_t, n_a = len(CODES), len(YEARS), len(AGES)
    m = rng.uniform(0.001, 0.1, size=(n_a, 2, n_t))  # age, sex, year
    births = rng.uniform(300, 600, size=(n_m, n_t, 2))  # municipality, year, sex
    sign = rng.choice([-1.0, 1.0], size=(n_m, n_t, n_a, 2))
    migration = sign * rng.uniform(1.0, 20.0, size=(n_m, n_t, n_a, 2))
    if not migrate_infants:
        migration[:, :, 0, :] = 0.0
    migration[:, -1] = np.nan  # no flow after the last stock
    pop = np.zeros((n_m, n_t, n_a, 2))
    pop[:, 0] = rng.uniform(500, 1000, size=(n_m, n_a, 2))
    for t in range(n_t - 1):
        rates = m[:, :, t]
        hazard = np.empty_like(rates)
        hazard[:-1] = (rates[:-1] + rates[1:]) / 2
        hazard[-1] = rates[-1]
        p = np.exp(-hazard)
        nxt = np.zeros((n_m, n_a, 2))
        nxt[:, 1:-1] = pop[:, t, :-2] * p[:-2]
        nxt[:, -1] = pop[:, t, -2] * p[-2] + pop[:, t, -1] * p[-1]
        nxt[:, 0] = births[:, t] * np.exp(-rates[0] / 2)
        pop[:, t + 1] = nxt + migration[:, t]
    assert pop.min() > 0
    coords = {"municipality": CODES, "year": YEARS, "age": AGES, "sex": SEXES}
    return (
        xr.DataArray(pop, dims=("municipality", "year", "age", "sex"), coords=coords),
        xr.DataArray(
            m, dims=("age", "sex", "year"), coords={"age": AGES, "sex": SEXES, "year": YEARS}
        ),
        xr.DataArray(
            births,
            dims=("municipality", "year", "sex"),
            coords={"municipality": CODES, "year": YEARS, "sex": SEXES},
        ),
        xr.DataArray(migration, dims=("municipality", "year", "age", "sex"), coords=coords),
    )


def test_residual_recovers_known_migration_exactly():
    pop, m, births, migration = _forward(1)
    got = comp.residual_net_migration(pop, m, births)
    assert got.dims == pop.dims
    np.testing.assert_allclose(
        got.isel(year=slice(0, -1)).values,
        migration.isel(year=slice(0, -1)).values,
        rtol=1e-12,
        atol=0,
    )
    assert bool(got.isel(year=-1).isnull().all()), "flows must be NaN in the last stock year"


def test_residual_with_total_births_and_sex_ratio():
    pop, m, births, migration = _forward(2)
    total = births.sum("sex")
    ratio = births.sel(sex="male") / births.sel(sex="female")  # per municipality and year
    got = comp.residual_net_migration(pop, m, total, sex_ratio_at_birth=ratio)
    np.testing.assert_allclose(
        got.isel(year=slice(0, -1)).values,
        migration.isel(year=slice(0, -1)).values,
        rtol=1e-9,
    )


def test_unknown_births_are_implied_by_the_age0_stock():
    pop, m, births, migration = _forward(3, migrate_infants=False)
    implied = comp.implied_births(pop, m, by_sex=True)
    np.testing.assert_allclose(
        implied.isel(year=slice(0, -1)).transpose(*births.dims).values,
        births.isel(year=slice(0, -1)).values,
        rtol=1e-12,
    )
    total = comp.implied_births(pop, m)
    assert set(total.dims) == {"municipality", "year"}
    np.testing.assert_allclose(
        total.isel(year=slice(0, -1)).values,
        births.sum("sex").isel(year=slice(0, -1)).values,
        rtol=1e-12,
    )
    assert bool(total.isel(year=-1).isnull().all())

    got = comp.residual_net_migration(pop, m)
    inner = got.isel(year=slice(0, -1))
    assert float(abs(inner.sel(age=0)).max()) == 0.0
    np.testing.assert_allclose(
        inner.sel(age=slice(1, None)).values,
        migration.isel(year=slice(0, -1)).sel(age=slice(1, None)).values,
        rtol=1e-12,
    )


def test_identity_with_survive_and_newborn_survivors():
    pop, m, births, _ = _forward(4)
    migration = comp.residual_net_migration(pop, m, births)
    survivors = comp.survive(pop, comp.survival_probability(m))
    newborns = comp.newborn_survivors(births, m)
    rebuilt = survivors + migration
    rebuilt = xr.where(rebuilt["age"] == 0, rebuilt + newborns, rebuilt)
    following = pop.isel(year=slice(1, None)).assign_coords(year=YEARS[:-1])
    np.testing.assert_allclose(
        rebuilt.isel(year=slice(0, -1)).transpose(*pop.dims).values,
        following.values,
        rtol=1e-13,
    )


def test_survival_probability_formula_and_open_age():
    m = xr.DataArray([0.01, 0.03, 0.5], dims="age", coords={"age": [0, 1, 2]})
    p = comp.survival_probability(m)
    np.testing.assert_allclose(p.values, np.exp([-0.02, -0.265, -0.5]), rtol=1e-15)
    assert comp.newborn_survival(m).item() == pytest.approx(np.exp(-0.005), rel=1e-15)


def test_survive_moves_cohorts_up_one_age_and_keeps_the_open_group():
    pop = xr.DataArray([10.0, 20.0, 30.0], dims="age", coords={"age": [0, 1, 2]})
    p = xr.DataArray([0.5, 0.25, 0.1], dims="age", coords={"age": [0, 1, 2]})
    out = comp.survive(pop, p)
    np.testing.assert_allclose(out.values, [0.0, 5.0, 20 * 0.25 + 30 * 0.1])


def test_survive_aligns_years_and_gives_nan_where_rates_are_missing():
    pop, m, _, _ = _forward(5)
    p = comp.survival_probability(m.isel(year=slice(0, 3)))  # rates for 3 of 6 years
    out = comp.survive(pop, p)
    assert out.sizes == pop.sizes
    assert bool(out.sel(year=YEARS[4], age=slice(1, None)).isnull().all())
    assert bool(out.sel(year=YEARS[1]).notnull().all())


def test_gaps_in_years_give_nan_flows():
    pop, m, births, _ = _forward(6)
    gappy = pop.sel(year=[2000, 2001, 2003, 2004])
    got = comp.residual_net_migration(gappy, m, births)
    assert bool(got.sel(year=2001).isnull().all()), "2002 stock missing: no 2001 flow"
    assert bool(got.sel(year=2000).notnull().all())


def test_net_migration_total_keeps_nan_in_last_year():
    pop, m, births, migration = _forward(7)
    total = comp.net_migration_total(comp.residual_net_migration(pop, m, births))
    assert set(total.dims) == {"municipality", "year"}
    np.testing.assert_allclose(
        total.isel(year=slice(0, -1)).values,
        migration.sum(["age", "sex"]).isel(year=slice(0, -1)).values,
        rtol=1e-10,
    )
    assert bool(total.isel(year=-1).isnull().all())


def test_add_derived_components_uses_observed_births_when_present():
    pop, m, births, migration = _forward(8)
    srb = xr.DataArray(np.full(len(YEARS), 1.05), dims="hist_year", coords={"hist_year": YEARS})
    observed = births.sum("sex")
    observed.attrs = {"derived": "no", "kind": "flow"}
    panel = xr.Dataset(
        {"population": pop, "mortality_rate": m, "births": observed, "sex_ratio_at_birth": srb}
    )
    out = comp.add_derived_components(panel)
    assert out["births"].attrs["derived"] == "no"
    assert out["net_migration"].attrs["derived"] == "yes"
    # Age 0 now carries migration: births were split 1.05:1, not as in the forward model.
    assert float(abs(out["net_migration"].isel(year=0).sel(age=0)).max()) > 0
    np.testing.assert_allclose(
        out["net_migration"].isel(year=slice(0, -1)).sel(age=slice(1, None)).values,
        migration.isel(year=slice(0, -1)).sel(age=slice(1, None)).values,
        rtol=1e-12,
    )
    assert "net_migration" not in panel, "input must not be modified"


def test_add_derived_components_makes_a_proxy_without_births():
    pop, m, _, _ = _forward(9, migrate_infants=False)
    out = comp.add_derived_components(xr.Dataset({"population": pop, "mortality_rate": m}))
    assert out["births"].attrs["derived"] == "yes"
    assert "age-0" in out["births"].attrs["description"]
    assert set(out["net_migration_total"].dims) == {"municipality", "year"}


def test_missing_dimensions_are_reported():
    pop, m, _, _ = _forward(10)
    with pytest.raises(comp.ComponentInputError, match=r"lacks dimension.*sex"):
        comp.residual_net_migration(pop.sum("sex"), m)
    with pytest.raises(comp.ComponentInputError, match="sex_ratio_at_birth"):
        comp.newborn_survivors(pop.isel(age=0).sum("sex"), m)
    with pytest.raises(comp.ComponentInputError, match="mortality_rate"):
        comp.add_derived_components(xr.Dataset({"population": pop}))
