"""Fitting the hierarchical migration model: recovery, OLS comparison, gate, save/load."""

import dataclasses
import json

import numpy as np
import pytest

from vekst.fit import (
    FitIdentityError,
    NotConvergedError,
    diagnose,
    fit_model,
    load_fit,
    projection_draws,
    require_converged,
    save_fit,
)
from vekst.models.ols import fit_ols
from vekst.models.simulate import simulate_migration_data
from vekst.models.spec import load_spec


@pytest.fixture(scope="module")
def simulated():
    return simulate_migration_data(n_regions=10, municipalities_per_region=6, seed=42)


@pytest.fixture(scope="module")
def fitted(simulated):
    data, _ = simulated
    return fit_model(load_spec(), data, draws=500, tune=500, chains=2, seed=7, progress=False)


def _interval(samples, prob=0.94):
    return np.quantile(samples, [(1 - prob) / 2, (1 + prob) / 2], axis=0)


def test_pooled_coefficients_inside_their_94_percent_intervals(fitted, simulated):
    _, truth = simulated
    beta_mu = fitted.idata.posterior["beta_mu"].stack(s=("chain", "draw"))
    for cov in beta_mu["covariate"].values:
        low, high = np.quantile(beta_mu.sel(covariate=cov).values, [0.03, 0.97])
        assert low <= truth.beta_mu[str(cov)] <= high, (cov, low, high)


def test_year_coefficients_beat_year_by_year_ols(fitted, simulated):
    data, truth = simulated
    ols = fit_ols(data)
    bayes = fitted.idata.posterior["beta_year"].mean(("chain", "draw")).values
    rmse_bayes = np.sqrt(np.mean((bayes - truth.beta_year) ** 2, axis=1))
    rmse_ols = np.sqrt(np.mean((ols.beta_year.values - truth.beta_year) ** 2, axis=1))
    # Partial pooling borrows strength across years for every covariate.
    assert (rmse_bayes < rmse_ols).all(), (rmse_bayes, rmse_ols)


def test_attractiveness_tracks_truth_better_than_ols_residuals(fitted, simulated):
    data, truth = simulated
    estimate = fitted.idata.posterior["attractiveness"].mean(("chain", "draw")).values
    assert np.corrcoef(estimate, truth.attractiveness)[0, 1] > 0.7
    # Shrinkage pays in squared error, most for small (noisy) municipalities.
    rmse_bayes = np.sqrt(np.mean((estimate - truth.attractiveness) ** 2))
    ols = fit_ols(data).attractiveness.values
    rmse_ols = np.sqrt(np.mean((ols - truth.attractiveness) ** 2))
    assert rmse_bayes < rmse_ols, (rmse_bayes, rmse_ols)


def test_fit_converges_and_is_labelled(fitted, simulated):
    data, _ = simulated
    d = fitted.diagnostics
    assert d.divergences == 0
    assert d.rhat_max < 1.05
    posterior = fitted.idata.posterior
    assert posterior["attractiveness"].dims == ("chain", "draw", "municipality")
    assert list(posterior["municipality"].values) == list(data.municipalities)
    assert posterior["beta_year"].dims == ("chain", "draw", "covariate", "year")


def test_save_load_round_trip_and_identity_checks(fitted, tmp_path):
    path = save_fit(fitted, tmp_path / "fit.nc")
    loaded = load_fit(path, spec=fitted.spec, data_hash_expected=fitted.idata.attrs["data_hash"])
    assert isinstance(loaded, type(fitted))
    idata, spec = loaded.idata, loaded.spec
    assert spec == fitted.spec
    assert loaded.diagnostics == fitted.diagnostics
    np.testing.assert_array_equal(loaded.migration.rate, fitted.migration.rate)
    np.testing.assert_allclose(
        idata.posterior["beta_mu"].values, fitted.idata.posterior["beta_mu"].values
    )
    with pytest.raises(FitIdentityError, match="not with 'no_jobs'"):
        load_fit(path, spec=load_spec("no_jobs"))
    with pytest.raises(FitIdentityError, match="fitted on data"):
        load_fit(path, data_hash_expected="0000")
    assert not list(tmp_path.glob("*.tmp"))


def test_load_refuses_an_edited_spec(fitted, tmp_path):
    path = save_fit(fitted, tmp_path / "fit.nc")
    idata = load_fit(path).idata
    raw = json.loads(idata.attrs["spec"])
    raw["migration"]["student_t_nu"] = 30.0
    idata.attrs["spec"] = json.dumps(raw)
    idata.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(FitIdentityError, match="the file was edited"):
        load_fit(tmp_path / "edited.nc")


def test_convergence_gate_refuses_a_short_fit_unless_overridden(simulated):
    data, _ = simulated
    short = fit_model(load_spec(), data, draws=15, tune=5, chains=2, seed=1, progress=False)
    assert not short.diagnostics.converged
    with pytest.raises(NotConvergedError, match="--allow-unconverged"):
        require_converged(short.idata)
    assert require_converged(short.idata, allow_unconverged=True).problems


def test_refit_with_new_data_reuses_the_compiled_model(fitted):
    other, _ = simulate_migration_data(n_regions=10, municipalities_per_region=6, seed=43)
    again = fit_model(load_spec(), other, draws=50, tune=50, chains=1, seed=2, progress=False)
    assert again.timings["compile_reused"] == 1.0
    # Different data, so a different posterior: the new data really reached the sampler.
    assert not np.allclose(
        again.idata.posterior["attractiveness"].mean(("chain", "draw")),
        fitted.idata.posterior["attractiveness"].mean(("chain", "draw")),
    )


def test_projection_draws_follow_the_contract(fitted):
    draws = projection_draws(fitted.idata, n_draws=100, seed=3)
    assert draws.sizes["draw"] == 100
    assert draws["beta_mu"].dims == ("draw", "covariate")
    assert draws["attractiveness"].dims == ("draw", "municipality")
    assert draws.attrs["covariates"] == list(fitted.migration.covariates)
    for name in ("year_effect_mu", "year_effect_sigma", "sigma_base", "sigma_pop", "beta_sigma"):
        assert name in draws


def test_diagnose_reports_worst_parameters(fitted):
    d = diagnose(fitted.idata)
    assert d.worst["rhat"] and d.worst["ess_bulk"]
    assert np.isfinite(d.bfmi_min)


def test_reused_joint_model_sees_new_expected_events(simulated):
    """A compiled model reused for new data must fit the new expected births, not the
    first data set's (they enter through pm.Data, not as constants)."""
    from vekst.models.data import VitalData
    from vekst.models.spec import spec_from_dict

    data, _ = simulated
    raw = load_spec().to_dict()
    raw["fertility"]["likelihood"] = "poisson"
    raw["fertility"]["priors"].pop("alpha_sd", None)
    spec = spec_from_dict(raw)
    rng = np.random.default_rng(0)
    expected = rng.uniform(50, 500, (len(data.municipalities), 5))
    observed = rng.poisson(expected).astype(float)

    def births(scale):
        return VitalData(
            municipalities=data.municipalities,
            years=np.arange(2017, 2022),
            regions=data.regions,
            observed=observed,
            expected=expected * scale,
            kind="births",
        )

    first = fit_model(
        spec, data, births(1.0), draws=100, tune=100, chains=1, seed=1, progress=False
    )
    second = fit_model(
        spec, data, births(2.0), draws=100, tune=100, chains=1, seed=1, progress=False
    )
    assert second.timings["compile_reused"] == 1.0
    # Twice the expected births for the same observed births: deviations fall by log 2.
    shift = float(
        first.idata.posterior["fert_dev"].mean() - second.idata.posterior["fert_dev"].mean()
    )
    assert abs(shift - np.log(2.0)) < 0.1, shift


def test_reused_compiled_model_labels_a_reordered_panel_correctly(fitted, simulated):
    """A panel of the same shape with two municipalities of one region swapped reuses the
    compiled model; each posterior must still sit under its own municipality's code."""
    data, truth = simulated
    order = np.arange(len(data.municipalities))
    # The two municipalities of region 0 whose true attractiveness differs most.
    first_region = np.flatnonzero(data.regions == data.regions[0])
    a = first_region[np.argmin(truth.attractiveness[first_region])]
    b = first_region[np.argmax(truth.attractiveness[first_region])]
    order[[a, b]] = order[[b, a]]
    swapped = dataclasses.replace(
        data,
        municipalities=data.municipalities[order],
        regions=data.regions[order],
        counties=data.counties[order],
        names=data.names[order],
        rate=data.rate[order],
        x=data.x[:, order],
        x_available=data.x_available[:, order],
        population=data.population[order],
    )
    again = fit_model(load_spec(), swapped, draws=300, tune=300, chains=2, seed=7, progress=False)
    assert again.timings["compile_reused"] == 1.0
    before = fitted.idata.posterior["attractiveness"].mean(("chain", "draw"))
    after = again.idata.posterior["attractiveness"].mean(("chain", "draw"))
    assert list(after["municipality"].values) == list(swapped.municipalities)
    for code in data.municipalities[[a, b]]:
        # Same data under the same label: the same estimate up to Monte Carlo error,
        # far closer than the gap between the two municipalities.
        gap = abs(
            float(before.sel(municipality=data.municipalities[a]))
            - float(before.sel(municipality=data.municipalities[b]))
        )
        assert abs(float(after.sel(municipality=code) - before.sel(municipality=code))) < gap / 4
