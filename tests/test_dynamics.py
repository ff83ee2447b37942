"""The time-structured migration equation run forward: AR(1) variance by horizon, noise
family, national constraint and the immigration scenario."""

from __future__ import annotations

import numpy as np
import pytest

from vekst.models.equation import apply_national_constraint, standard_shocks
from vekst.projection.migration import ModelMigration, StateDynamics

N_DRAWS, N_MUN, N_YEARS = 4000, 3, 6


def _model(
    dynamics=None, *, noise_family="normal", sigma=1e-9, n_draws=N_DRAWS, record=False, **kw
):
    ones = np.ones(n_draws)
    return ModelMigration(
        covariates=["centrality"],
        beta_mu=np.full((n_draws, 1), 2.0),
        beta_sigma=np.zeros((n_draws, 1)),
        year_effect_mu=0.3 * ones,
        year_effect_sigma=0.2 * ones,
        attractiveness=np.zeros((n_draws, N_MUN)),
        sigma_base=sigma * ones,
        sigma_pop=0.0 * ones,
        vra_own={},
        vra_neighbours={},
        centrality=np.array([-0.2, 0.0, 0.3]),
        ds_weights=None,
        ds_center=None,
        n_years=N_YEARS,
        seed=7,
        record=record,
        dynamics=dynamics,
        noise_family=noise_family,
        **kw,
    )


def _dynamics(rho, sd, last, mean, corr=0.0, n_draws=N_DRAWS, **kw):
    names = ["year_effect", "centrality"]
    return StateDynamics(
        names=names,
        mean=np.tile(mean, (n_draws, 1)),
        sd=np.tile(sd, (n_draws, 1)),
        rho=np.tile(rho, (n_draws, 1)),
        block=[0, 1],
        corr=np.tile(np.array([[1.0, corr], [corr, 1.0]]), (n_draws, 1, 1)),
        last=np.tile(last, (n_draws, 1)),
        **kw,
    )


def _run(model, n_draws=N_DRAWS, population=None):
    population = np.full((n_draws, N_MUN), 10_000.0) if population is None else population
    out = np.empty((n_draws, N_YEARS, N_MUN))
    for start in range(0, n_draws, 500):
        draws = slice(start, min(start + 500, n_draws))
        for t in range(N_YEARS):
            pop = population[draws]
            out[draws, t] = model(draws, t, pop[..., None], pop)
    return out


def test_projected_year_effect_has_the_analytic_ar1_moments():
    rho, sd, last, mean = np.array([0.8, 0.5]), np.array([0.3, 0.4]), [1.5, 2.5], [0.3, 2.0]
    rates = _run(_model(_dynamics(rho, sd, last, mean)))
    # Municipality 1 has centrality 0: its rate is the year effect alone.
    year_effect = rates[:, :, 1]
    h = np.arange(1, N_YEARS + 1)
    expected_mean = mean[0] + rho[0] ** h * (last[0] - mean[0])
    expected_var = sd[0] ** 2 * (1 - rho[0] ** (2 * h)) / (1 - rho[0] ** 2)
    se_mean = np.sqrt(expected_var / N_DRAWS)
    assert np.all(np.abs(year_effect.mean(0) - expected_mean) < 4 * se_mean)
    ratio = year_effect.var(0) / expected_var
    assert np.all(np.abs(ratio - 1) < 0.12), ratio
    # Persistence makes the variance of cumulative migration grow faster than linearly.
    cumulative = np.cumsum(year_effect - year_effect.mean(0), axis=1).var(0)
    assert cumulative[3] / cumulative[0] > 4 * 1.5


def test_innovation_correlation_carries_into_the_projection():
    rho, sd, last, mean = np.array([0.0, 0.0]), np.array([0.3, 0.4]), [0.3, 2.0], [0.3, 2.0]
    rates = _run(_model(_dynamics(rho, sd, last, mean, corr=-0.7)))
    year_effect = rates[:, 0, 1]
    # Municipality 2 (centrality 0.3) = year effect + 0.3 * beta: recover beta.
    beta = (rates[:, 0, 2] - year_effect) / 0.3
    assert np.corrcoef(year_effect, beta)[0, 1] == pytest.approx(-0.7, abs=0.05)


@pytest.mark.parametrize("family, excess", [("normal", 0.0), ("student_t", 6.0)])
def test_noise_is_drawn_from_the_fitted_family(family, excess):
    rates = _run(_model(noise_family=family, sigma=1.0, noise_nu=5.0))
    first = rates[:, 0, :] - rates[:, 0, :].mean(0)
    noise = (rates[:, 1:, :] - rates[:, 1:, :].mean(0)).ravel()
    kurtosis = np.mean(noise**4) / np.mean(noise**2) ** 2 - 3
    if family == "normal":
        assert abs(kurtosis) < 0.5
    else:
        # t(5) has excess kurtosis 6; the sample value is noisy but far above the normal's.
        assert kurtosis > 2.0
    assert first.std() > 0.5


def test_standard_shocks_refuse_an_unknown_family():
    with pytest.raises(ValueError, match="unknown noise family 'cauchy'"):
        standard_shocks(np.random.default_rng(0), "cauchy", 1.0, (2,))


def test_national_constraint_makes_municipal_migration_add_up():
    rng = np.random.default_rng(3)
    rate = rng.normal(0.5, 1.0, (50, 7))
    population = rng.uniform(1e3, 1e5, (50, 7))
    loading = rng.uniform(0.5, 1.5, (50, 7))
    national = rng.normal(0.6, 0.2, 50)
    constrained, adjustment = apply_national_constraint(rate, population, loading, national)
    weighted = (constrained * population).sum(1) / population.sum(1)
    np.testing.assert_allclose(weighted, national, rtol=1e-12)
    # The adjustment is proportional to the loadings within a draw.
    ratio = adjustment / loading
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(7, axis=1), rtol=1e-10)


def test_immigration_scenario_fixes_national_net_migration_in_persons():
    n = 200
    names = ["national_net_migration", "year_effect", "centrality"]
    dynamics = StateDynamics(
        names=names,
        mean=np.tile([0.5, 0.0, 2.0], (n, 1)),
        sd=np.tile([0.2, 0.2, 0.3], (n, 1)),
        rho=np.tile([0.8, 0.5, 0.5], (n, 1)),
        block=[0, 1, 2],
        corr=np.tile(np.eye(3), (n, 1, 1)),
        last=np.tile([0.4, 0.1, 2.0], (n, 1)),
        loading=np.tile([1.4, 1.0, 0.6], (n, 1)),
        persistence=np.full((n, N_MUN), 0.5),
        last_deviation=np.zeros((n, N_MUN)),
        national_persons=np.full(N_YEARS, 9000.0),
    )
    population = np.tile([5_000.0, 20_000.0, 75_000.0], (n, 1))
    rates = _run(_model(dynamics, sigma=0.5, n_draws=n), n_draws=n, population=population)
    persons = (rates * population[:, None, :] / 100).sum(-1)
    np.testing.assert_allclose(persons, 9000.0, rtol=1e-9)
    # Without the scenario the national path is stochastic and varies between draws.
    free = StateDynamics(**{**dynamics.__dict__, "national_persons": None})
    rates = _run(_model(free, sigma=0.5, n_draws=n), n_draws=n, population=population)
    persons = (rates * population[:, None, :] / 100).sum(-1)
    assert persons[:, -1].std() > 100


def test_loading_inputs_drop_the_direction_of_centrality_and_keep_the_rest():
    from vekst.models.dynamics import loading_inputs
    from vekst.simulate import simulate_migration_data

    data, _ = simulate_migration_data(
        n_regions=6, municipalities_per_region=10, years=range(2010, 2020),
        covariates=("centrality",), seed=4,
    )
    k = list(data.covariates).index("centrality")
    # Make centrality track log population, as it does in Norway.
    log_population = np.log(data.population.mean(1))
    data.x[k] = (log_population - log_population.mean())[:, None] + 0.3 * data.x[k]
    _, raw = loading_inputs(data)
    _, orthogonal = loading_inputs(data, ("centrality",))
    means = np.nanmean(np.where(data.x_available[k], data.x[k], np.nan), axis=1)
    centred = means - means.mean()
    assert abs(np.corrcoef(raw[0], centred)[0, 1]) > 0.5
    assert abs(orthogonal[0] @ centred) < 1e-9 * np.linalg.norm(centred)
    assert abs(orthogonal[0].sum()) < 1e-9
    # What is left is log population's own part: the residual of its regression on
    # centrality.
    slope = (raw[0] @ centred) / (centred @ centred)
    np.testing.assert_allclose(orthogonal[0], raw[0] - slope * centred, atol=1e-10)


def test_chunks_interleaved_across_threads_keep_their_own_persistent_deviations():
    # The projection kernel may run chunks in threads; each thread's chunk carries its
    # AR(1) local deviation from year to year, so two chunks stepped in lockstep must give
    # what each gives alone.
    import threading

    n_draws = 20
    dynamics = _dynamics(
        np.array([0.5, 0.5]), np.array([0.1, 0.1]), np.zeros(2), np.zeros(2), n_draws=n_draws,
        persistence=np.full((n_draws, N_MUN), 0.8), last_deviation=np.zeros((n_draws, N_MUN)),
    )
    alone = _run(_model(dynamics, sigma=0.5, n_draws=n_draws), n_draws=n_draws)
    model = _model(dynamics, sigma=0.5, n_draws=n_draws)
    together = np.empty_like(alone)
    population = np.full((n_draws, N_MUN), 10_000.0)
    lockstep = threading.Barrier(2)

    def run(draws: slice) -> None:
        for t in range(N_YEARS):
            lockstep.wait()
            pop = population[draws]
            together[draws, t] = model(draws, t, pop[..., None], pop)

    threads = [threading.Thread(target=run, args=(slice(k, k + 10),)) for k in (0, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(together, alone)
    assert np.std(np.diff(alone, axis=1)) > 0.05


def _lkj_factor_by_hand(partial: np.ndarray, n: int) -> np.ndarray:
    """The LKJ factor from canonical partial correlations, entry by entry (LKJ 2009)."""
    rows, cols = np.tril_indices(n, -1)
    w = np.zeros((n, n))
    w[rows, cols] = partial
    factor = np.zeros((n, n))
    for i in range(n):
        rest = 1.0
        for j in range(i):
            factor[i, j] = w[i, j] * np.sqrt(rest)
            rest -= factor[i, j] ** 2
        factor[i, i] = np.sqrt(rest)
    return factor


@pytest.mark.parametrize("innovations", ["normal", "student_t"])
def test_state_process_density_is_the_var1_density(innovations):
    """The VAR(1) block's log density equals scipy's: a stationary start plus correlated
    innovations (multivariate normal or t), the correlation built from the LKJ partial
    correlations."""
    from types import SimpleNamespace

    import pymc as pm
    from pytensor.graph.traversal import ancestors
    from scipy import special, stats

    from vekst.models.dynamics import _process_logp

    rng = np.random.default_rng(4)
    n, years, nu = 4, 9, 5.0
    states = rng.normal(size=(n, years))
    mean, sd = rng.normal(size=n), rng.uniform(0.3, 2.0, n)
    rho = rng.uniform(-0.5, 0.95, n)
    unit = rng.uniform(0.05, 0.95, n * (n - 1) // 2)
    mspec = SimpleNamespace(innovations=innovations, innovations_nu=nu)
    with pm.Model(coords={"block_state": list("abcd"), "block_state_to": list("abcd")}):
        logp = _process_logp(mspec, states, mean, sd, rho, "corr", n)
    cpc = next(v for v in ancestors([logp]) if v.name == "corr_cpc")
    got = float(logp.eval({cpc: unit}))

    factor = _lkj_factor_by_hand(2 * unit - 1, n)
    cov = np.outer(sd, sd) * (factor @ factor.T)
    dev = states - mean[:, None]
    shocks = (dev[:, 1:] - rho[:, None] * dev[:, :-1]).T
    if innovations == "normal":
        innovation = stats.multivariate_normal(np.zeros(n), cov).logpdf(shocks).sum()
    else:  # the t density written out (scipy's multivariate_t agrees to ~1e-8 only)
        quad = np.einsum("ti,ij,tj->t", shocks, np.linalg.inv(cov), shocks)
        innovation = np.sum(
            special.gammaln((nu + n) / 2)
            - special.gammaln(nu / 2)
            - 0.5 * n * np.log(nu * np.pi)
            - 0.5 * np.linalg.slogdet(cov)[1]
            - 0.5 * (nu + n) * np.log1p(quad / nu)
        )
    start = stats.multivariate_normal(np.zeros(n), cov / (1 - np.outer(rho, rho))).logpdf(dev[:, 0])
    assert got == pytest.approx(innovation + start, rel=1e-10)
