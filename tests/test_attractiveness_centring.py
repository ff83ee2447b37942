"""Partially centred municipal attractiveness: weights and the prior they keep."""

import dataclasses

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest

from vekst.models import migration
from vekst.models.migration import centring_weights
from vekst.models.spec import load_spec, spec_from_dict
from vekst.simulate import simulate_migration_data


@pytest.fixture(scope="module")
def grid():
    data, _ = simulate_migration_data(n_regions=10, municipalities_per_region=20, seed=3)
    return data


def _with_rates(data, noise_sd, phi, seed):
    """``rate = alpha_m + year_t + e_mt`` with ``alpha ~ N(0, 1)`` and AR(1) noise."""
    rng = np.random.default_rng(seed)
    n_mun, n_years = data.rate.shape
    innovations = rng.standard_normal((n_mun, n_years)) * noise_sd[:, None]
    noise = np.empty_like(innovations)
    noise[:, 0] = innovations[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, n_years):
        noise[:, t] = phi * noise[:, t - 1] + innovations[:, t]
    rate = rng.standard_normal(n_mun)[:, None] + rng.normal(0, 0.5, n_years)[None, :] + noise
    return dataclasses.replace(data, rate=rate)


@pytest.mark.parametrize("phi", [0.0, 0.6])
def test_centring_weights_recover_how_well_each_level_is_pinned_down(grid, phi):
    n_mun, n_years = grid.rate.shape
    noisy = np.arange(n_mun) % 2 == 1
    innovation_sd = np.where(noisy, 3.0, 0.3)
    marginal_var = innovation_sd**2 / (1 - phi**2)
    truth = 1.0 / (1.0 + marginal_var / n_years * (1 + phi) / (1 - phi))
    errors = []
    for seed in range(20):
        weights = centring_weights(_with_rates(grid, innovation_sd, phi, seed))
        errors.append([np.median(weights[noisy] - truth[noisy]),
                       np.median(weights[~noisy] - truth[~noisy])])
    bias = np.mean(errors, axis=0)
    assert truth[noisy][0] < 0.8  # the noisy levels are far from centred
    assert np.all(np.abs(bias) < 0.05), (bias, truth[noisy][0])


def test_partial_centring_keeps_the_prior_of_each_level(grid, monkeypatch):
    """Whatever the weight, ``alpha_m ~ N(mu_m, sigma)``: only the sampler's view changes."""
    n_mun = grid.rate.shape[0]
    weights = np.linspace(0.0, 1.0, n_mun)
    monkeypatch.setattr(migration, "centring_weights", lambda data: weights)
    level = np.linspace(-2.0, 2.0, n_mun)
    with pm.Model(coords=grid.coords()):
        alpha = migration._partially_centred_attractiveness(
            pt.as_tensor(level), pt.as_tensor(2.5), grid
        )
        draws = pm.draw(alpha, draws=4000, random_seed=11)
    standardised = (draws - level) / 2.5
    for part in (standardised[:, weights < 0.3], standardised[:, weights > 0.7]):
        assert abs(part.mean()) < 0.03
        assert 0.97 < part.std() < 1.03


def test_spec_takes_partial_centring():
    raw = load_spec().to_dict()
    raw["migration"]["attractiveness_centered"] = "partial"
    assert spec_from_dict(raw).migration.attractiveness_centered == "partial"
    raw["migration"]["attractiveness_centered"] = "halfway"
    with pytest.raises(ValueError, match="attractiveness_centered"):
        spec_from_dict(raw)
