"""Settings objects replace long parameter lists: the object form and the keyword form
give the same numbers, and an unknown name is a TypeError naming it."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from test_fetch_assembly import CODE_TABLE, INFO, stub_client
from vekst.data.fetch import FetchOptions, fetch_panel
from vekst.projection.migration import (
    CovariateInputs,
    MigrationPosterior,
    MigrationSettings,
    ModelMigration,
    ds_linear_weights,
)
from vekst.projection.migration_inputs import MigrationContext, migration_model
from vekst.projection.project import make_test_draws
from vekst.projection.scenario import Scenario
from vekst.projection.vital import VitalConfig, vital_inputs

N_DRAWS, N_MUN, N_YEARS, N_AGE = 30, 40, 4, 106


def _rates(model, population):
    """Run ``model`` over its years in two chunks, as the kernel does: ``(draw, year, mun)``."""
    totals = population.sum(axis=(2, 3), dtype=np.float64)
    out = np.empty((N_DRAWS, model.n_years, population.shape[1]))
    for draws in (slice(0, 12), slice(12, N_DRAWS)):
        for t in range(model.n_years):
            out[draws, t] = model(draws, t, population[draws], totals[draws])
    return out


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    posterior = {
        "covariates": ["vra_1", "centrality", "ds"],
        "beta_mu": rng.normal([0.1, 2.7, -0.4], 0.05, (N_DRAWS, 3)),
        "beta_sigma": np.abs(rng.normal(0.1, 0.02, (N_DRAWS, 3))),
        "year_effect_mu": rng.normal(0.3, 0.05, N_DRAWS),
        "year_effect_sigma": np.abs(rng.normal(0.3, 0.03, N_DRAWS)),
        "attractiveness": rng.normal(0, 0.3, (N_DRAWS, N_MUN)),
        "sigma_base": np.abs(rng.normal(0.3, 0.03, N_DRAWS)),
        "sigma_pop": np.abs(rng.normal(1.0, 0.1, N_DRAWS)),
        "noise_family": "student_t",
        "noise_nu": 6.0,
    }
    employment = np.clip(rng.normal(0.6, 0.1, (N_AGE, 2)), 0, 1)
    death = np.clip(rng.normal(0.01, 0.002, (N_AGE, 2)), 0, 1)
    inputs = {
        "vra_own": {1: rng.normal(0, 1, (N_YEARS, N_MUN))},
        "vra_neighbours": {1: rng.normal(0, 0.5, (N_YEARS, N_MUN))},
        "centrality": rng.normal(0, 0.2, N_MUN),
        "ds_weights": np.stack([ds_linear_weights(employment, death, N_AGE)] * N_YEARS),
        "ds_center": None,
    }
    population = rng.uniform(0, 40, (N_DRAWS, N_MUN, 2, N_AGE)).astype(np.float32)
    return posterior, inputs, population


def test_model_migration_object_and_keyword_forms_agree():
    posterior, inputs, population = _arrays()
    settings = {"n_years": N_YEARS, "seed": 3, "record": True}
    by_object = ModelMigration(
        MigrationPosterior(**posterior), CovariateInputs(**inputs), MigrationSettings(**settings)
    )
    by_name = ModelMigration(**posterior, **inputs, **settings)
    mixed = ModelMigration(
        MigrationPosterior(**posterior), CovariateInputs(**inputs), n_years=N_YEARS, seed=3
    )
    rates = _rates(by_object, population)
    np.testing.assert_array_equal(rates, _rates(by_name, population))
    np.testing.assert_array_equal(rates, _rates(mixed, population))
    np.testing.assert_array_equal(by_object.components, by_name.components)
    # The seed reached the model: another one draws other shocks.
    other = ModelMigration(**posterior, **inputs, **{**settings, "seed": 4})
    assert not np.allclose(rates, _rates(other, population))


def test_model_migration_names_unknown_and_missing_fields():
    posterior, inputs, _ = _arrays()
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['sead'\]"):
        ModelMigration(MigrationPosterior(**posterior), n_years=2, sead=1)
    with pytest.raises(TypeError, match=r"\['n_years'\]"):
        ModelMigration(MigrationPosterior(**posterior), CovariateInputs(**inputs))


@pytest.fixture(scope="module")
def history(default_panel):
    return default_panel.isel(municipality=slice(0, N_MUN))


def test_migration_context_object_and_keyword_forms_agree(history):
    base_year = int(history["year"][-1])
    calendar = np.arange(base_year, base_year + N_YEARS)
    config = VitalConfig(base_year=base_year, end_year=int(calendar[-1]) + 1, scenario=Scenario())
    vital = vital_inputs(history, config)
    draws = make_test_draws(history, N_DRAWS, seed=2)
    fields = {
        "scenario": Scenario(),
        "base_year": base_year,
        "calendar": calendar,
        "death_rate": vital.death_rate,
        "seed": 5,
    }
    by_object, note = migration_model(history, draws, MigrationContext(**fields))
    by_name, name_note = migration_model(history, draws, **fields)
    assert note == name_note and "ds" in note["covariates"]
    stock = history["population"].sel(year=base_year).transpose("municipality", "sex", "age")
    population = np.broadcast_to(stock.values.astype(np.float32), (N_DRAWS, *stock.shape))
    rates = _rates(by_object, population)
    np.testing.assert_array_equal(rates, _rates(by_name, population))
    other, _ = migration_model(history, draws, MigrationContext(**fields), seed=6)
    assert not np.allclose(rates, _rates(other, population))
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['calender'\]"):
        migration_model(history, draws, MigrationContext(**fields), calender=calendar)


def test_fetch_options_object_and_keyword_forms_agree(tmp_path):
    options = FetchOptions(
        first_year=2019, tables=["population", "components"], code_table=CODE_TABLE
    )
    by_object = fetch_panel(stub_client(tmp_path / "a")[0], options, municipality_info=INFO)
    by_name = fetch_panel(
        stub_client(tmp_path / "b")[0],
        first_year=2019,
        tables=["population", "components"],
        code_table=CODE_TABLE,
        municipality_info=INFO,
    )
    xr.testing.assert_equal(by_object.panel, by_name.panel)
    assert set(by_object.tables) == {"population", "components"} == set(by_name.tables)
    assert int(by_object.panel["year"][0]) == 2019
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['first_yaer'\]"):
        fetch_panel(stub_client(tmp_path / "c")[0], options, first_yaer=2019)
