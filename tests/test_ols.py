"""The OLS baseline recovers what it was given."""

import numpy as np

from vekst.models.ols import fit_ols
from vekst.simulate import MigrationTruth, simulate_migration_data


def _pooled_truth() -> MigrationTruth:
    truth = MigrationTruth()
    truth.beta_sigma = dict.fromkeys(truth.beta_sigma, 0.0)
    return truth


def test_pooled_ols_reproduces_generating_coefficients_within_standard_errors():
    data, truth = simulate_migration_data(
        n_regions=20, municipalities_per_region=10, truth=_pooled_truth(), seed=11
    )
    result = fit_ols(data)
    for cov in data.covariates:
        estimate = float(result.beta.sel(covariate=cov))
        se = float(result.beta_se.sel(covariate=cov))
        assert abs(estimate - truth.beta_mu[cov]) < 3 * se, (cov, estimate, se)
    assert result.n_obs == data.rate.size
    assert 0 < result.r2 < 1


def test_standard_errors_are_calibrated_over_replicates():
    hits, total = 0, 0
    for seed in range(30):
        data, truth = simulate_migration_data(
            n_regions=8,
            municipalities_per_region=6,
            years=range(2010, 2020),
            truth=_pooled_truth(),
            seed=100 + seed,
        )
        result = fit_ols(data)
        for cov in ("vra_0", "ds"):
            z = (float(result.beta.sel(covariate=cov)) - truth.beta_mu[cov]) / float(
                result.beta_se.sel(covariate=cov)
            )
            hits += abs(z) < 1.645
            total += 1
    # Nominal 90 %; attractiveness left in the error term makes OLS SEs somewhat optimistic.
    assert 0.7 <= hits / total <= 1.0


def test_year_by_year_ols_and_residual_attractiveness():
    data, truth = simulate_migration_data(n_regions=15, municipalities_per_region=8, seed=5)
    result = fit_ols(data)
    assert result.beta_year.dims == ("covariate", "year")
    assert np.isfinite(result.beta_year.values).all()
    correlation = np.corrcoef(result.attractiveness.values, truth.attractiveness)[0, 1]
    # Noisy small places and centrality (also time-constant) blur the OLS residual.
    assert correlation > 0.6


def test_years_without_job_data_get_no_year_by_year_estimate():
    data, _ = simulate_migration_data(
        n_regions=10, municipalities_per_region=6, job_years_from=2018, seed=2
    )
    result = fit_ols(data)
    assert np.isnan(result.beta_year.sel(year=2015)).all()
    assert np.isfinite(result.beta_year.sel(year=2021)).all()
    # Pooled OLS (the published method) only uses complete rows.
    assert result.n_obs == int((data.x_available.all(axis=0)).sum())
