"""The housing coefficient: recovered where housing drives migration, near zero where it
does not, and beside the OLS estimate of the same equation.

The two Bayesian fits (about 45 s on 2 cores, most of it compilation) are marked slow; the
OLS checks on the same simulated panels run in the default tier."""

import numpy as np
import pytest

from vekst.fit import fit_model
from vekst.models.ols import fit_ols
from vekst.models.spec import load_spec, spec_from_dict
from vekst.simulate import MigrationTruth, simulate_migration_data

COVARIATES = ("centrality", "housing_0")


def _spec():
    """The housing spec with exchangeable years and only the simulated covariates."""
    raw = load_spec("models/housing.toml").to_dict()
    raw["migration"].update(
        covariates=list(COVARIATES),
        time_structure="iid",
        national_immigration=False,
        local_persistence=False,
    )
    for table in ("beta_mu_mean", "beta_mu_sd", "beta_sigma_sd"):
        raw["migration"]["priors"][table] = {
            c: raw["migration"]["priors"][table][c] for c in COVARIATES
        }
    return spec_from_dict(raw)


def _simulate(effect: float, seed: int):
    truth = MigrationTruth(
        beta_mu={"centrality": 2.7, "housing_0": effect},
        beta_sigma={"centrality": 0.5, "housing_0": 0.01},
    )
    # 48 municipalities, housing observed in half of them (as Telemark in the nation).
    return simulate_migration_data(
        n_regions=8,
        municipalities_per_region=6,
        years=range(2008, 2021),
        covariates=COVARIATES,
        truth=truth,
        seed=seed,
        housing_share=0.5,
    )


@pytest.fixture(scope="module", params=[0.15, 0.0], ids=["effect", "no-effect"])
def fitted(request):
    data, _ = _simulate(request.param, seed=3)
    fit = fit_model(_spec(), data, draws=300, tune=300, chains=2, seed=5, progress=False)
    samples = fit.idata.posterior["beta_mu"].sel(covariate="housing_0").values.ravel()
    return request.param, data, samples


@pytest.mark.slow
def test_housing_coefficient_inside_its_90_percent_interval(fitted):
    effect, _, samples = fitted
    low, high = np.quantile(samples, [0.05, 0.95])
    assert low <= effect <= high, (effect, low, high)
    # Informative: the interval is narrow enough to tell 0.15 from 0.
    assert high - low < 0.12, (low, high)


@pytest.mark.slow
def test_housing_coefficient_close_to_ols_on_the_same_data(fitted):
    _, data, samples = fitted
    ols = fit_ols(data)
    estimate = float(ols.beta.sel(covariate="housing_0"))
    se = float(ols.beta_se.sel(covariate="housing_0"))
    assert abs(np.mean(samples) - estimate) < 2 * se, (np.mean(samples), estimate, se)


def test_housing_term_switched_off_where_unobserved():
    data, _ = _simulate(0.15, seed=3)
    k = data.covariates.index("housing_0")
    assert data.x_available[k, 24:].sum() == 0
    assert (data.x[k, 24:] == 0).all()
    assert data.x_available[k, :24].all()


@pytest.mark.parametrize("effect", [0.15, 0.0])
def test_ols_recovers_the_housing_coefficient_on_the_observed_subset(effect):
    """Over replicates, the pooled and two-way fixed-effects OLS estimates centre on the
    truth, using only the municipalities whose housing is observed."""
    pooled, within = [], []
    for seed in range(10):
        data, _ = _simulate(effect, seed=100 + seed)
        pooled.append(float(fit_ols(data).beta.sel(covariate="housing_0")))
        fe = fit_ols(data, municipality_effects=True)
        within.append(float(fe.beta.sel(covariate="housing_0")))
        assert np.isnan(float(fe.beta.sel(covariate="centrality")))  # constant within units
    for estimates in (pooled, within):
        # The mean of 10 replicates (sd of one about 0.07) is within 0.06 of the truth.
        assert abs(np.mean(estimates) - effect) < 0.06, (effect, np.mean(estimates))
