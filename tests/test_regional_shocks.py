"""County x year shocks of the migration equation (``regional_shocks = "county"``): the
fitted AR(1) density, its continuation in the projection and its recovery on a simulated
panel."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytest
import xarray as xr
from scipy.stats import multivariate_normal

from test_dynamics import N_DRAWS, N_YEARS, _dynamics, _model, _run
from test_dynamics_fit import _spec as dynamics_spec
from vekst.commands.fit import county_shock_summary
from vekst.fit import fit_model, projection_draws
from vekst.models.dynamics import PHI_MAX, add_regional_shocks, zero_sum_basis
from vekst.models.migration import build_migration_model
from vekst.models.spec import SpecError, load_spec, spec_from_dict
from vekst.projection.migration_inputs import _regional_shocks
from vekst.simulate import MigrationTruth, simulate_migration_data


def test_county_shock_density_is_independent_stationary_ar1_series_on_the_zero_sum_plane():
    data, _ = simulate_migration_data(
        n_regions=16, municipalities_per_region=2, years=range(2001, 2007), covariates=()
    )
    n_county, n_years = 4, 6
    sigma, persistence = 0.3, 0.7
    with pm.Model(coords=data.coords()):
        add_regional_shocks(_spec(), data)
        model = pm.modelcontext(None)
        graph = model.replace_rvs_by_values([model.potentials[0]])[0]
        potential = pytensor.function(model.value_vars, graph)
    rng = np.random.default_rng(5)
    coordinates = rng.normal(0.0, 0.4, (n_county - 1, n_years))
    unit = persistence / PHI_MAX
    point = {  # the sampler's unconstrained coordinates
        "regional_sigma_log__": np.log(sigma),
        "regional_persistence_unit_logodds__": np.log(unit / (1 - unit)),
        "regional_shock_contrast_z": coordinates,
    }
    lag = np.abs(np.subtract.outer(np.arange(n_years), np.arange(n_years)))
    covariance = sigma**2 * persistence**lag / (1 - persistence**2)
    expected = sum(
        multivariate_normal(np.zeros(n_years), covariance).logpdf(row) for row in coordinates
    )
    assert float(potential(**point)) == pytest.approx(expected, rel=1e-10)
    basis = zero_sum_basis(n_county)
    np.testing.assert_allclose(basis @ basis.T, np.eye(n_county - 1), atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=1), 0.0, atol=1e-12)


def _regional_dynamics(persistence, sigma, last, groups):
    ones = np.ones(N_DRAWS)
    return _dynamics(
        np.array([0.0, 0.0]),
        np.array([1e-9, 1e-9]),
        [0.0, 2.0],
        [0.0, 2.0],
        regional_group=np.asarray(groups),
        regional_persistence=persistence * ones,
        regional_sigma=sigma * ones,
        regional_last=np.tile(np.asarray(last, dtype=float), (N_DRAWS, 1)),
    )


def test_projected_county_shocks_have_the_ar1_moments_and_sum_to_zero():
    persistence, sigma, last = 0.6, 0.5, [1.2, -0.4, -0.8]
    # Three municipalities, one per county, centrality -0.2 / 0 / 0.3 (x 2.0): the
    # municipality's rate minus its centrality term is its county's shock.
    rates = _run(_model(_regional_dynamics(persistence, sigma, last, [0, 1, 2])))
    shocks = rates - 2.0 * np.array([-0.2, 0.0, 0.3])[None, None, :]
    h = np.arange(1, N_YEARS + 1)
    expected_mean = np.outer(persistence**h, last)
    # Innovations centred over 3 counties keep (3 - 1) / 3 of their variance.
    expected_var = sigma**2 * (2 / 3) * (1 - persistence ** (2 * h)) / (1 - persistence**2)
    se = np.sqrt(expected_var / N_DRAWS)[:, None]
    assert np.all(np.abs(shocks.mean(0) - expected_mean) < 4 * se)
    ratio = shocks.var(0) / expected_var[:, None]
    assert np.all(np.abs(ratio - 1) < 0.12), ratio
    # Zero up to the tiny year effect and noise of the helper model (sd 1e-9 each).
    np.testing.assert_allclose(shocks.sum(axis=2), 0.0, atol=1e-4)


def test_municipalities_of_one_county_share_its_shock():
    rates = _run(_model(_regional_dynamics(0.6, 0.5, [0.0, 0.0], [0, 0, 1])))
    shocks = rates - 2.0 * np.array([-0.2, 0.0, 0.3])[None, None, :]
    np.testing.assert_allclose(shocks[..., 0], shocks[..., 1], atol=1e-4)
    np.testing.assert_allclose(shocks[..., 2], -shocks[..., 0], atol=1e-4)
    assert shocks[..., 0].std() > 0.2


def _spec():
    """The time-structured recovery spec of ``test_dynamics_fit`` with county shocks."""
    raw = dynamics_spec().to_dict()
    raw["migration"]["regional_shocks"] = "county"
    # to_dict writes every field; a normal likelihood refuses a t's degrees of freedom.
    raw["migration"].pop("student_t_nu", None)
    return spec_from_dict(raw)


@pytest.mark.slow
def test_county_shocks_are_recovered_on_a_simulated_panel():
    truth = MigrationTruth(
        rho={"national_net_migration": 0.8, "year_effect": 0.8, "centrality": 0.7},
        regional_sigma=0.4,
        regional_persistence=0.7,
    )
    # 32 regions of 3 municipalities, 4 regions to a county: 8 counties, 21 years.
    data, truth = simulate_migration_data(
        n_regions=32,
        municipalities_per_region=3,
        years=range(2001, 2022),
        covariates=("centrality",),
        truth=truth,
        seed=3,
    )
    result = fit_model(_spec(), data, draws=400, tune=600, chains=2, seed=3, progress=False)
    post = result.idata.posterior
    assert result.diagnostics.divergences <= 2
    for name, value in (("regional_sigma", 0.4), ("regional_persistence", 0.7)):
        low, high = np.quantile(post[name].values, [0.03, 0.97])
        assert low <= value <= high, (name, low, high)
    shocks = post["regional_shock"].transpose("chain", "draw", "county", "year").values
    estimate = shocks.mean(axis=(0, 1))
    assert np.corrcoef(estimate.ravel(), truth.regional_shock.ravel())[0, 1] > 0.7
    low, high = np.quantile(shocks, [0.05, 0.95], axis=(0, 1))
    covered = np.mean((low <= truth.regional_shock) & (truth.regional_shock <= high))
    # 168 county-years at 90 %: binomial sd 2.3 points.
    assert 0.8 <= covered <= 0.98, covered
    # The projection continues each draw from its own last county shocks.
    draws = projection_draws(result.idata)
    carried = _regional_shocks(draws)
    np.testing.assert_array_equal(carried["regional_group"], data.county_index())
    last = draws["regional_shock"].isel(year=-1).transpose("draw", "county").values
    np.testing.assert_array_equal(carried["regional_last"], last)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"regional_shocks": "province"}, "regional_shocks 'province' is not one of"),
        (
            {
                "regional_shocks": "county",
                "time_structure": "iid",
                "local_persistence": False,
                "national_immigration": False,
            },
            'regional_shocks needs time_structure = "ar1"',
        ),
    ],
)
def test_spec_refuses_unknown_or_unsupported_regional_shocks(changes, message):
    raw = load_spec().to_dict()
    raw["migration"].update(changes)
    with pytest.raises(SpecError, match=message):
        spec_from_dict(raw)


@pytest.mark.parametrize(
    ("n_regions", "years", "counted"),
    [(8, range(2005, 2022), "2 and 17"), (12, range(2005, 2012), "3 and 7")],
)
def test_a_panel_too_small_for_county_shocks_is_fitted_without_them_and_says_so(
    n_regions, years, counted
):
    # 4 regions to a county; two counties' zero-sum shocks are one series and its mirror.
    data, _ = simulate_migration_data(
        n_regions=n_regions, municipalities_per_region=2, years=years, covariates=("centrality",)
    )
    spec = _spec()
    assert spec.migration.regional_shocks == "county"
    with pytest.warns(
        UserWarning, match=rf"at least 3 counties and 8 years; the panel has {counted}"
    ):
        model = build_migration_model(spec, data)
    assert "regional_shock" not in model.named_vars


def test_a_panel_of_three_counties_and_eight_years_gets_county_shocks():
    data, _ = simulate_migration_data(
        n_regions=12,
        municipalities_per_region=2,
        years=range(2005, 2013),
        covariates=("centrality",),
    )
    model = build_migration_model(_spec(), data)
    # Three counties: two free contrasts a year.
    assert model.initial_point()["regional_shock_contrast_z"].shape == (2, 8)


def test_fit_summary_names_the_counties_with_the_largest_last_shocks():
    rng = np.random.default_rng(2)
    counties, years = ["03", "11", "32", "56"], [2020, 2021]
    last = np.array([0.10, -0.50, 0.40, -0.05])
    shocks = np.zeros((2, 200, 4, 2))
    shocks[..., 1] = last + rng.normal(0.0, 0.01, (2, 200, 4))
    posterior = xr.Dataset(
        {
            "regional_shock": (("chain", "draw", "county", "year"), shocks),
            "regional_sigma": (("chain", "draw"), rng.uniform(0.10, 0.12, (2, 200))),
            "regional_persistence": (("chain", "draw"), rng.uniform(0.8, 0.9, (2, 200))),
        },
        coords={"county": counties, "year": years},
    )
    names = {"03": "Oslo", "11": "Rogaland", "32": "Akershus", "56": "Finnmark"}
    text = county_shock_summary(posterior, names)
    assert "largest in 2021: Rogaland -0.50, Akershus +0.40, Oslo +0.10." in text
    assert "innovation sd 0.11" in text and "persistence 0.8" in text
    assert county_shock_summary(posterior.drop_vars("regional_shock")) is None


def test_a_spec_without_county_shocks_keeps_the_hash_fits_were_saved_with():
    # A fit saved before the option stored its spec's canonical JSON without the key, and
    # load_fit refuses a file whose stored spec no longer hashes to the stored hash.
    spec = load_spec()
    raw = spec.to_dict()
    assert "regional_shocks" not in raw["migration"]
    assert "regional_sigma_sd" not in raw["migration"]["priors"]
    assert spec_from_dict(raw).hash == spec.hash
    raw["migration"]["regional_shocks"] = "county"
    with_shocks = spec_from_dict(raw)
    assert with_shocks.hash != spec.hash
    assert "regional_sigma_sd" in with_shocks.to_dict()["migration"]["priors"]
