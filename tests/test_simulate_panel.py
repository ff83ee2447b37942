"""Simulated Norway: valid panels, exact accounting, the model's own migration process."""

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from vekst import load_default
from vekst.data.components import (
    newborn_survivors,
    residual_net_migration,
    survival_probability,
    survive,
)
from vekst.data.panel import validate_panel
from vekst.features import design_matrix, expected_births
from vekst.simulate import (
    MigrationTruth,
    SimulationError,
    SimulationTruth,
    VitalTruth,
    default_regions,
    migration_age_schedule,
    read_simulated,
    simulate_panel,
    write_simulated,
)


@pytest.fixture(scope="module")
def base():
    return load_default()


@pytest.fixture(scope="module")
def regions(base):
    return default_regions(base, 3)


@pytest.fixture(scope="module")
def simulated(base, regions):
    return simulate_panel(seed=5, regions=regions, base=base)


def _identity_rhs(panel: xr.Dataset) -> np.ndarray:
    """survive(P[t]) + newborn survivors(births[t]) + net_migration[t], placed at t + 1."""
    population = panel["population"].astype(float)
    rate = panel["mortality_rate"]
    survivors = survive(population, survival_probability(rate))
    newborns = newborn_survivors(
        panel["births"], rate, sex_ratio_at_birth=panel["sex_ratio_at_birth"]
    )
    age0 = (survivors["age"] == 0).astype(float)
    total = survivors + newborns * age0 + panel["net_migration"]
    return total.isel(year=slice(None, -1)).transpose(*population.dims).values


def test_panel_is_valid_on_real_2024_codes(simulated, base, regions):
    panel, _ = simulated
    validate_panel(panel, code_vintage=2024)
    expected = base["municipality"].values[np.isin(base["region"].values, regions)]
    assert list(panel["municipality"].values) == list(expected)
    for coord in ("name", "county", "region", "centrality"):
        real = base[coord].sel(municipality=panel["municipality"].values)
        assert (panel[coord].values == real.values).all(), coord
    first = panel["population"].isel(year=0)
    real_first = base["population"].sel(year=2005, municipality=panel["municipality"].values)
    assert (first.values == real_first.transpose(*first.dims).values).all()
    assert list(panel["year"].values) == list(range(2005, 2023))
    for name in ("births", "deaths", "net_migration", "commuting", "employed_workplace"):
        assert panel[name].attrs["derived"] == "no"
        assert bool(panel[name].sel(year=2022).isnull().all()), name
        assert bool(panel[name].sel(year=2021).notnull().all()), name


def test_stocks_follow_the_accounting_identity_in_every_cell(simulated):
    panel, _ = simulated
    following = panel["population"].isel(year=slice(1, None)).values.astype(float)
    np.testing.assert_allclose(_identity_rhs(panel), following, rtol=0, atol=1e-8)
    assert (panel["population"].values >= 0).all()


def test_residual_method_recovers_the_simulated_migration_exactly(simulated):
    panel, _ = simulated
    residual = residual_net_migration(
        panel["population"],
        panel["mortality_rate"],
        panel["births"],
        sex_ratio_at_birth=panel["sex_ratio_at_birth"],
    )
    stored = panel["net_migration"]
    assert bool(((residual == stored) | (residual.isnull() & stored.isnull())).all())
    np.testing.assert_array_equal(
        panel["net_migration_total"].values, stored.sum(("age", "sex"), min_count=1).values
    )


def test_migration_follows_the_model_with_its_own_covariates(simulated):
    panel, truth = simulated
    x = design_matrix(panel, employment_rate=truth["employment_rate"]).sel(year=truth["year"])
    x = x.transpose("covariate", "municipality", "year")
    np.testing.assert_array_equal(x.fillna(0).values, truth["x"].values)
    np.testing.assert_array_equal(x.notnull().values, truth["x_available"].values)
    # VRA lag 2 needs three years of employment; everything after that is observed.
    assert bool(truth["x_available"].sel(year=slice(2008, None)).all())
    assert not bool(truth["x_available"].sel(covariate="vra_0", year=2005).any())
    mean = (
        truth["year_effect"]
        + truth["attractiveness"]
        + (truth["beta_year"] * truth["x"]).sum("covariate")
    )
    population = panel["population"].sum(("age", "sex")).sel(year=truth["year"])
    scale = np.sqrt(truth["sigma_base"] ** 2 + truth["sigma_pop"] ** 2 * 1e4 / population)
    z = ((truth["net_migration_rate_drawn"] - mean) / scale).values.ravel()
    assert abs(z.mean()) < 0.15 and 0.9 < z.std() < 1.1, (z.mean(), z.std())
    # Realised rates differ from the drawn ones only by rounding stocks to whole persons.
    gap = np.abs(truth["net_migration_rate"] - truth["net_migration_rate_drawn"]) * population
    assert float((gap / 100 - truth["migration_capped"]).max()) <= 1.0 + 1e-9


def test_births_and_deaths_carry_the_municipal_deviations(simulated):
    panel, truth = simulated
    years = truth["year"]
    np.testing.assert_allclose(
        expected_births(panel).sel(year=years).values, truth["expected_births"].values
    )
    for events, kind in (("births", "fert_dev"), ("deaths", "mort_dev")):
        observed = panel[events].sel(year=years).sum("year")
        expected = truth[f"expected_{events}"].sum("year")
        log_ratio = np.log(observed / expected)
        big = expected > 300
        corr = np.corrcoef(log_ratio[big], truth[kind][big])[0, 1]
        assert corr > 0.6, (events, corr)


def test_net_migration_by_age_peaks_in_the_twenties(simulated):
    panel, _ = simulated
    schedule = migration_age_schedule(np.arange(106))
    assert 20 <= int(np.argmax(schedule)) <= 29
    inflow = panel["net_migration"].where(panel["net_migration_total"] > 0)
    by_age = inflow.sum(("municipality", "year", "sex")).values
    assert 18 <= int(np.argmax(by_age[5:])) + 5 <= 32


def test_extreme_out_migration_is_capped_and_recorded(base):
    truth = MigrationTruth(sigma_pop=40.0, year_effect_mu=-5.0)
    panel, record = simulate_panel(
        truth, seed=2, years=range(2005, 2009), regions=["040"], base=base
    )
    assert (panel["population"].values >= 0).all()
    assert float(record["migration_capped"].sum()) > 0
    following = panel["population"].isel(year=slice(1, None)).values.astype(float)
    np.testing.assert_allclose(_identity_rhs(panel), following, rtol=0, atol=1e-8)


def test_same_seed_same_panel_other_seed_other_panel(base):
    first, first_truth = simulate_panel(seed=5, regions=["040"], base=base, years=range(2005, 2008))
    again, again_truth = simulate_panel(seed=5, regions=["040"], base=base, years=range(2005, 2008))
    other, _ = simulate_panel(seed=6, regions=["040"], base=base, years=range(2005, 2008))
    xr.testing.assert_identical(first, again)
    xr.testing.assert_identical(first_truth, again_truth)
    assert not (other["population"].values == first["population"].values).all()


def test_a_migration_truth_alone_takes_the_default_vital_and_job_truth(base):
    # Passing only the migration part is the same simulation as the full default truth;
    # a vital part given in SimulationTruth reaches the panel (no deviation at sd 0).
    settings = dict(seed=5, regions=["040"], base=base, years=range(2005, 2007))
    alone, alone_truth = simulate_panel(MigrationTruth(), **settings)
    full, full_truth = simulate_panel(SimulationTruth(migration=MigrationTruth()), **settings)
    xr.testing.assert_identical(alone, full)
    xr.testing.assert_identical(alone_truth, full_truth)
    assert float(full_truth["mort_alpha"]) == 80.0
    flat = VitalTruth(region_sigma=0.0, municipality_sigma=0.0, alpha=None)
    _, flat_truth = simulate_panel(SimulationTruth(fertility=flat), **settings)
    assert float(abs(full_truth["fert_dev"]).max()) > 0
    assert float(abs(flat_truth["fert_dev"]).max()) == 0.0
    assert np.isnan(float(flat_truth["fert_alpha"]))


def test_late_employment_leaves_vra_missing_before(base):
    panel, truth = simulate_panel(
        seed=1, years=range(2005, 2012), regions=["049"], base=base, employment_from=2008
    )
    validate_panel(panel)
    assert bool(panel["commuting"].sel(year=2007).isnull().all())
    assert not bool(truth["x_available"].sel(covariate="vra_0", year=2008).any())
    assert bool(truth["x_available"].sel(covariate="vra_0", year=2009).all())
    assert bool(truth["x_available"].sel(covariate="ds").all())


def test_unknown_region_is_named(base):
    with pytest.raises(SimulationError, match="'999'"):
        simulate_panel(regions=["999"], base=base)


def test_write_read_round_trip_is_atomic(simulated, tmp_path):
    panel, truth = simulated
    path = write_simulated(panel, truth, tmp_path / "sim.nc")
    loaded, loaded_truth = read_simulated(path)
    xr.testing.assert_equal(loaded["population"], panel["population"])
    xr.testing.assert_allclose(loaded_truth["attractiveness"], truth["attractiveness"])
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_simulate_writes_a_readable_file(tmp_path):
    from vekst.cli import app

    out = tmp_path / "cli.nc"
    result = CliRunner().invoke(
        app, ["simulate", "--seed", "3", "--out", str(out), "--years", "2010-2012",
              "--regions", "040,041"]
    )
    assert result.exit_code == 0, result.output
    panel, truth = read_simulated(out)
    assert set(panel["region"].values) == {"040", "041"}
    assert list(truth["year"].values) == [2010, 2011, 2012]
