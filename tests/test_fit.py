"""Fitting the hierarchical migration model: recovery, OLS comparison, gate, save/load."""

import dataclasses
import json

import numpy as np
import pymc as pm
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
from vekst.models.spec import load_spec
from vekst.recovery import exchangeable_years
from vekst.simulate import simulate_migration_data


@pytest.fixture(scope="module")
def simulated():
    return simulate_migration_data(n_regions=10, municipalities_per_region=6, seed=42)


def iid_spec():
    """The default spec with exchangeable years, the structure the simulated data have."""
    return exchangeable_years(load_spec())


@pytest.fixture(scope="module")
def fitted(simulated):
    data, _ = simulated
    return fit_model(
        iid_spec(), data, draws=500, tune=500, chains=2, seed=7, progress=False,
        log_likelihood=True,
    )


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
    again = fit_model(iid_spec(), other, draws=50, tune=50, chains=1, seed=2, progress=False)
    assert again.timings["compile_reused"] == 1.0
    # The pointwise log-likelihood (10 s of the national fit) only where asked for.
    assert "log_likelihood" not in again.idata.groups()
    n_obs = int(fitted.migration.observed.sum())
    assert fitted.idata.log_likelihood["net_migration_obs"].size == n_obs * 2 * 500
    from vekst.commands.compare import CompareError, compare_fits

    with pytest.raises(CompareError, match="no pointwise log-likelihood"):
        compare_fits({"fitted": fitted, "plain": again})
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
    again = fit_model(iid_spec(), swapped, draws=300, tune=300, chains=2, seed=7, progress=False)
    assert again.timings["compile_reused"] == 1.0
    # The pointwise log-likelihood (10 s of the national fit) only where asked for.
    assert "log_likelihood" not in again.idata.groups()
    n_obs = int(fitted.migration.observed.sum())
    assert fitted.idata.log_likelihood["net_migration_obs"].size == n_obs * 2 * 500
    from vekst.commands.compare import CompareError, compare_fits

    with pytest.raises(CompareError, match="no pointwise log-likelihood"):
        compare_fits({"fitted": fitted, "plain": again})
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


#: The posterior of the default spec on the simulated panel: meaningful variables only.
EXPECTED_POSTERIOR = {
    "year_effect_mu": (),
    "year_effect_sigma": (),
    "year_effect": ("year",),
    "beta_mu": ("covariate",),
    "beta_sigma": ("covariate",),
    "beta_year": ("covariate", "year"),
    "attract_region_sigma": (),
    "attract_region": ("region",),
    "attract_municipality_sigma": (),
    "attractiveness": ("municipality",),
    "sigma_base": (),
    "sigma_pop": (),
}


def test_posterior_holds_only_labelled_meaningful_variables(fitted, simulated):
    data, _ = simulated
    posterior = fitted.idata.posterior
    dims = {str(name): var.dims[2:] for name, var in posterior.data_vars.items()}
    assert {k: dims.get(k) for k in EXPECTED_POSTERIOR} == EXPECTED_POSTERIOR
    assert not [n for n in dims if n.endswith(("_z", "__")) or n.startswith("beta_year_")]
    for name, var in posterior.data_vars.items():
        assert var.dims[:2] == ("chain", "draw"), name
        assert var.attrs["long_name"] and var.attrs["units"], name
    assert list(posterior["municipality_name"].values) == list(data.names)
    assert not [c for c in posterior.coords if "__" in str(c)]


def test_loo_works_and_matches_the_true_predictive_density(fitted, simulated):
    """az.loo on the stored pointwise log-likelihood: its elpd must agree with the log
    density of the data under the true parameters (which a wrongly ordered, scaled or
    incomplete log-likelihood would not)."""
    import arviz as az
    from scipy import stats

    data, truth = simulated
    idata = fitted.idata
    observed = data.observed
    np.testing.assert_array_equal(
        np.ravel(idata.observed_data["net_migration_obs"].values), data.rate[observed]
    )
    assert "x" in idata.constant_data and "inv_population" in idata.constant_data
    loo = az.loo(idata)
    assert loo.n_data_points == int(observed.sum())
    x = data.x * data.x_available
    mean = truth.year_effect[None, :] + truth.attractiveness[:, None]
    mean = mean + np.einsum("kt,kmt->mt", truth.beta_year, x)
    scale = np.sqrt(truth.sigma_base**2 + truth.sigma_pop**2 * 1e4 / data.population)
    true_lpd = stats.norm.logpdf(data.rate, mean, scale)[observed].sum()
    # Out-of-sample density falls short of the truth's in-sample one by about the
    # effective number of parameters; allow that and four standard errors either side.
    assert abs(loo.elpd_loo - (true_lpd - loo.p_loo / 2)) < loo.p_loo / 2 + 4 * loo.se, (
        loo.elpd_loo,
        true_lpd,
        loo.p_loo,
        loo.se,
    )


def test_a_fit_is_refused_on_another_panel(fitted, default_panel):
    from vekst.fit import check_fit_panel
    from vekst.models.data import data_hash
    from vekst.workflow import model_inputs

    panel = default_panel
    # The simulated fit was not made on this panel.
    with pytest.raises(FitIdentityError, match="Refit on this panel"):
        check_fit_panel(fitted, panel)
    # A fit whose stored hash is this panel's passes; one number changed, it is refused.
    own = dataclasses.replace(fitted, idata=fitted.idata.copy())
    own.idata.attrs = {**fitted.idata.attrs}
    own.idata.attrs["data_hash"] = data_hash(*model_inputs(panel, fitted.spec))
    check_fit_panel(own, panel)
    changed = panel.copy(deep=True)
    changed["population"].loc[{"municipality": "4012", "year": 2010}] += 50
    with pytest.raises(FitIdentityError, match="hash to"):
        check_fit_panel(own, changed)


def test_auto_centres_vital_deviations_where_events_inform_them():
    from vekst.models.data import VitalData
    from vekst.models.vital import centred_municipalities

    expected = np.array([[2.0] * 10, [40.0] * 10, [4000.0] * 10])
    births = VitalData(
        municipalities=np.array(["a", "b", "c"]),
        years=np.arange(2012, 2022),
        regions=np.array(["R", "R", "R"]),
        observed=expected.copy(),
        expected=expected,
        kind="births",
    )
    spec = load_spec()
    # Standard errors 1/sqrt(20), 1/sqrt(400), 1/sqrt(40000) against 0.25 x 0.2 = 0.05.
    assert centred_municipalities(spec.fertility, births).tolist() == [False, False, True]
    centred = dataclasses.replace(spec.fertility, parameterization="centered")
    assert centred_municipalities(centred, births).all()


def test_compare_ranks_the_better_predictive_density_first(fitted):
    from vekst.commands.compare import CompareError, compare_fits, comparison_text

    worse = fitted.idata.copy()
    # One nat less per observation: the comparison must rank it second by n_obs nats.
    worse.log_likelihood["net_migration_obs"] = worse.log_likelihood["net_migration_obs"] - 1
    table = compare_fits({"right": fitted, "worse": worse})
    n_obs = int(fitted.migration.observed.sum())
    assert list(table.index) == ["right", "worse"]
    assert table.loc["worse", "elpd_diff"] == pytest.approx(n_obs, rel=1e-3)
    text = comparison_text(table)
    assert max(len(line) for line in text.splitlines()) <= 80
    fewer = fitted.idata.copy()
    fewer.log_likelihood = fewer.log_likelihood.isel(municipality=slice(0, 10))
    with pytest.raises(CompareError, match="different migration observations"):
        compare_fits({"right": fitted, "fewer": fewer})


def test_numpyro_path_samples_the_same_posterior(fitted, simulated):
    """The JAX path (``pip install vekst[jax]``): same variables, same posterior."""
    pytest.importorskip("jax")
    pytest.importorskip("numpyro")
    data, _ = simulated
    other = fit_model(
        iid_spec(),  # the spec of ``fitted``: the comparison needs the same model
        data,
        draws=500,
        tune=500,
        chains=2,
        seed=3,
        sampler="numpyro",
        progress=False,
    )
    assert set(other.idata.posterior.data_vars) == set(fitted.idata.posterior.data_vars)
    for name in ("beta_mu", "attractiveness"):
        a = fitted.idata.posterior[name]
        b = other.idata.posterior[name]
        se = np.sqrt(a.var(("chain", "draw")) / 200 + b.var(("chain", "draw")) / 200)
        gap = np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw")))
        assert float((gap / se).max()) < 5, name


@pytest.mark.slow
@pytest.mark.parametrize("seed", [20240101, 1, 2])
def test_default_national_fit_passes_the_gate(default_panel, seed):
    """The default national fit (``vekst fit`` settings) passes the gate for each seed."""
    from vekst.commands.ui import FIT_DRAWS, FIT_TARGET_ACCEPT, FIT_TUNE
    from vekst.workflow import SamplerConfig, fit_panel

    config = SamplerConfig(
        draws=FIT_DRAWS,
        tune=FIT_TUNE,
        target_accept=FIT_TARGET_ACCEPT,
        seed=seed,
        progress=False,
    )
    result = fit_panel(default_panel, None, config)
    assert result.diagnostics.converged, result.diagnostics.problems
    assert result.diagnostics.divergences == 0


def test_diagnostics_of_a_constant_entry_neither_warn_nor_count():
    # rho of sparse covariates is 0 by construction: no R-hat, and no warning on the
    # user's terminal; the gate still reads the other variables.
    import warnings

    import arviz as az

    from vekst.fit import diagnose

    rng = np.random.default_rng(0)
    idata = az.from_dict(
        posterior={"a": rng.normal(size=(4, 500)), "rho": np.zeros((4, 500, 3))},
        sample_stats={"diverging": np.zeros((4, 500), bool), "energy": rng.normal(size=(4, 500))},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = diagnose(idata)
    assert result.worst["rhat"] == "a"
    assert result.rhat_max < 1.01


def test_attractiveness_draws_are_orthogonal_to_mean_centrality(fitted, simulated):
    # The shipped specs keep attractiveness orthogonal to municipal mean centrality (the
    # residual once the drivers are accounted for), in every draw, not only on average.
    data, _ = simulated
    k = list(data.covariates).index("centrality")
    available = data.x_available[k]
    means = np.where(available, data.x[k], 0.0).sum(1) / np.maximum(available.sum(1), 1)
    direction = (means - means.mean()) / np.linalg.norm(means - means.mean())
    draws = fitted.idata.posterior["attractiveness"].stack(s=("chain", "draw")).values
    projection = direction @ draws  # (draw,)
    assert np.abs(projection).max() < 1e-8 * np.abs(draws).max() * len(direction)
    assert np.abs(draws).max() > 0.05  # and attractiveness itself is not zero


def test_collapsed_poisson_births_have_the_cell_wise_posterior():
    """Summing births over years is exact for a deviation constant over years: the log
    density differs from the cell-wise Poisson by a constant and the gradient not at all."""
    from vekst.models.data import VitalData
    from vekst.models.vital import add_vital_block

    rng = np.random.default_rng(4)
    expected = rng.uniform(5.0, 400.0, size=(6, 9))
    births = VitalData(
        municipalities=np.array(list("abcdef")),
        years=np.arange(2010, 2019),
        regions=np.array(["R", "R", "S", "S", "S", "T"]),
        observed=rng.poisson(expected * 1.1).astype(float),
        expected=expected,
        kind="births",
    )
    spec = load_spec()
    coords = {
        "municipality": list("abcdef"),
        "region": ["R", "S", "T"],
        "births_year": [int(y) for y in births.years],
    }
    logps, grads = [], []
    for collapse in (True, False):
        with pm.Model(coords=coords) as model:
            add_vital_block(spec.fertility, births, collapse_years=collapse)
        logp, dlogp = model.compile_logp(), model.compile_dlogp()
        point = model.initial_point()
        moves = np.random.default_rng(7)  # the same three points for both forms
        values = []
        for shift in (0.0, 0.3, -0.2):
            moved = {k: v + shift * moves.standard_normal(np.shape(v)) for k, v in point.items()}
            values.append((logp(moved), dlogp(moved)))
        logps.append([v[0] for v in values])
        grads.append([v[1] for v in values])
    collapsed, cell_wise = np.array(logps[0]), np.array(logps[1])
    assert np.ptp(collapsed - cell_wise) < 1e-8
    assert np.abs(collapsed[1] - collapsed[0]) > 1.0  # the points differ in density
    for a, b in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_the_gate_reads_the_stored_diagnostics_only_while_they_describe_the_posterior(
    fitted, tmp_path, monkeypatch
):
    import vekst.fit as fit_module

    loaded = load_fit(save_fit(fitted, tmp_path / "fit.nc"))
    computed = []
    real_diagnose = fit_module.diagnose

    def counting_diagnose(idata, **kwargs):
        computed.append(idata.posterior.sizes["draw"])
        return real_diagnose(idata, **kwargs)

    monkeypatch.setattr(fit_module, "diagnose", counting_diagnose)
    stored = require_converged(loaded.idata, allow_unconverged=True)
    assert stored == fitted.diagnostics
    assert computed == []  # read back, not recomputed (13-17 s on the national fit)
    # Draws cut after the fit are diagnosed again: the stored verdict is not theirs.
    cut = loaded.idata.copy()
    cut.posterior = cut.posterior.isel(draw=slice(0, 20))
    again = require_converged(cut, allow_unconverged=True)
    assert computed == [20]
    assert again.ess_bulk_min < stored.ess_bulk_min
