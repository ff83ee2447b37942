"""Draw net migration from the migration model itself, with known parameters.

Used by recovery tests and by :mod:`vekst.simulate.panel` (which supplies real
covariates); here covariates can also be generated, so the model can be checked
on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vekst.models.data import MigrationData
from vekst.models.dynamics import NATIONAL, YEAR_EFFECT
from vekst.models.equation import (
    noise_scale,
    state_innovations,
    var1_path,
    zero_sum_ar1_path,
)

__all__ = ["MigrationTruth", "draw_net_migration_rate", "simulate_migration_data"]

#: Pooled coefficients of the published 2022 model (outcome in %; centrality per index/1000).
PUBLISHED_BETA = {"vra_0": 0.14, "vra_1": 0.10, "vra_2": 0.05, "centrality": 2.7, "ds": -0.40}
#: Across-year spread, roughly the sd of the published year-by-year table.
PUBLISHED_BETA_SIGMA = {"vra_0": 0.045, "vra_1": 0.04, "vra_2": 0.05, "centrality": 0.9, "ds": 0.25}


@dataclass
class MigrationTruth:
    """Known parameters of the migration model (all rates in % of population)."""

    beta_mu: dict[str, float] = field(default_factory=lambda: dict(PUBLISHED_BETA))
    beta_sigma: dict[str, float] = field(default_factory=lambda: dict(PUBLISHED_BETA_SIGMA))
    year_effect_mu: float = 0.4
    year_effect_sigma: float = 0.25
    attract_region_sigma: float = 0.25
    attract_municipality_sigma: float = 0.45
    sigma_base: float = 0.3
    sigma_pop: float = 1.5
    # Time structure (used when ``rho`` is given; see vekst.models.dynamics):
    rho: dict[str, float] | None = None
    national_mu: float = 0.5
    national_sigma: float = 0.15
    innovation_corr: float = 0.0
    loading_coef: dict[str, float] = field(
        default_factory=lambda: {"log_population": -0.15}
    )
    persistence_intercept: float = -1.0
    persistence_slope: float = 0.5
    # County x year shocks (``regional_shocks = "county"``), off at 0:
    regional_sigma: float = 0.0
    regional_persistence: float = 0.6
    # Attractiveness as a yearly random walk (``attractiveness_walk = true``), off at 0:
    # sd ``walk_sigma * exp(walk_slope * z)`` with z the standardised log population.
    walk_sigma: float = 0.0
    walk_slope: float = 0.0
    # Only places of at least this many people in the last year walk
    # (``attractiveness_walk_min_population``):
    walk_min_population: float = 0.0
    # Filled by the simulation:
    national: np.ndarray | None = None
    loading: np.ndarray | None = None
    persistence: np.ndarray | None = None
    beta_year: np.ndarray | None = None
    year_effect: np.ndarray | None = None
    attract_region: np.ndarray | None = None
    attractiveness: np.ndarray | None = None
    regional_shock: np.ndarray | None = None
    walk: np.ndarray | None = None


def draw_net_migration_rate(
    truth: MigrationTruth,
    x: np.ndarray,
    x_available: np.ndarray,
    population: np.ndarray,
    region_index: np.ndarray,
    covariates: tuple[str, ...],
    rng: np.random.Generator,
    county_index: np.ndarray | None = None,
) -> np.ndarray:
    """Draw parameters (stored in ``truth``) and the net migration rate grid.

    Parameters
    ----------
    truth
        Hyperparameters; year coefficients, year effects and attractiveness are drawn and
        written back into it.
    x, x_available
        Covariates and availability, (covariate, municipality, year).
    population
        (municipality, year).
    region_index
        Region of each municipality (0..n_regions-1).
    covariates
        Covariate names, in the order of ``x``.
    rng
        Random generator.
    county_index
        County of each municipality (0..n_counties-1); needed when
        ``truth.regional_sigma > 0``.

    Returns
    -------
    numpy.ndarray
        Net migration in % of population, (municipality, year).
    """
    n_muni, n_year = population.shape
    n_region = int(region_index.max()) + 1
    beta_mu = np.array([truth.beta_mu[c] for c in covariates])
    beta_sigma = np.array([truth.beta_sigma[c] for c in covariates])
    if truth.rho is not None:
        rate = _draw_dynamic(truth, x * x_available, population, region_index, covariates, rng)
        if truth.regional_sigma > 0:
            if county_index is None:
                raise ValueError("regional shocks (truth.regional_sigma > 0) need county_index.")
            rate = rate + _regional_shocks(truth, county_index, n_year, rng)[county_index]
        return rate
    truth.beta_year = beta_mu[:, None] + beta_sigma[:, None] * rng.normal(
        size=(len(covariates), n_year)
    )
    truth.year_effect = truth.year_effect_mu + truth.year_effect_sigma * rng.normal(size=n_year)
    truth.attractiveness = _attractiveness(truth, region_index, n_region, n_muni, rng)
    mean = truth.year_effect[None, :] + truth.attractiveness[:, None]
    mean = mean + np.einsum("kt,kmt->mt", truth.beta_year, x * x_available)
    scale = noise_scale(truth.sigma_base, truth.sigma_pop, population)
    return mean + scale * rng.normal(size=mean.shape)


def _attractiveness(truth, region_index, n_region, n_muni, rng) -> np.ndarray:
    region = rng.normal(0, truth.attract_region_sigma, n_region)
    truth.attract_region = region - region.mean()
    municipal = rng.normal(0, truth.attract_municipality_sigma, n_muni)
    return truth.attract_region[region_index] + municipal - municipal.mean()


def _draw_dynamic(truth, x, population, region_index, covariates, rng) -> np.ndarray:
    """The ``ar1`` equation (:mod:`vekst.models.dynamics`) run with known parameters; the
    states start from their stationary distribution (a 50-year burn-in)."""
    n_muni, n_year = population.shape
    n_region = int(region_index.max()) + 1
    names = [NATIONAL, YEAR_EFFECT, *covariates]
    mean = np.array(
        [truth.national_mu, truth.year_effect_mu, *(truth.beta_mu[c] for c in covariates)]
    )
    sd = np.array(
        [truth.national_sigma, truth.year_effect_sigma, *(truth.beta_sigma[c] for c in covariates)]
    )
    rho = np.array([truth.rho.get(name, 0.0) for name in names])
    corr = np.eye(len(names))
    if "centrality" in covariates:
        j = names.index("centrality")
        corr[1, j] = corr[j, 1] = truth.innovation_corr
    chol = np.linalg.cholesky(corr * np.outer(sd, sd))
    burn_in = 50
    innovations = state_innovations(rng, chol, "normal", 0.0, burn_in + n_year)
    states = var1_path(mean, mean, rho, innovations)[burn_in:]
    truth.national = states[:, 0]
    truth.year_effect = states[:, 1]
    truth.beta_year = states[:, 2:].T
    truth.attractiveness = _attractiveness(truth, region_index, n_region, n_muni, rng)
    log_population = np.log(population.mean(axis=1))
    # As vekst.models.dynamics.loading_inputs: centred log mean population only.
    terms = {"log_population": log_population - log_population.mean()}
    truth.loading = 1.0 + sum(truth.loading_coef[k] * v for k, v in terms.items())
    z = (log_population - log_population.mean()) / log_population.std()
    truth.persistence = 1.0 / (
        1.0 + np.exp(-(truth.persistence_intercept + truth.persistence_slope * z))
    )
    mean_rate = (
        truth.loading[:, None] * truth.national[None, :]
        + truth.year_effect[None, :]
        + truth.attractiveness[:, None]
        + np.einsum("kt,kmt->mt", truth.beta_year, x)
    )
    scale = noise_scale(truth.sigma_base, truth.sigma_pop, population)
    shocks = scale * rng.standard_normal(scale.shape)
    deviation = np.empty_like(shocks)
    phi = truth.persistence
    deviation[:, 0] = shocks[:, 0] / np.sqrt(1.0 - phi**2)
    for t in range(1, n_year):
        deviation[:, t] = phi * deviation[:, t - 1] + shocks[:, t]
    if truth.walk_sigma > 0:
        # Drawn last, so panels without the walk keep their random numbers.
        steps = rng.standard_normal((n_muni, n_year))
        walking = population[:, -1] >= truth.walk_min_population
        sd = truth.walk_sigma * np.exp(truth.walk_slope * z) * walking
        walk = np.cumsum(sd[:, None] * steps, axis=1)
        truth.walk = walk - walk.mean(axis=1, keepdims=True)
        deviation = deviation + truth.walk
    return mean_rate + deviation


def _regional_shocks(truth, county_index, n_year, rng) -> np.ndarray:
    """County x year AR(1) shocks with innovations centred over counties each year, from
    their stationary distribution (a 50-year burn-in); stored in ``truth``."""
    burn_in = 50
    path = zero_sum_ar1_path(
        rng,
        np.zeros(int(county_index.max()) + 1),
        truth.regional_persistence,
        truth.regional_sigma,
        burn_in + n_year,
    )
    truth.regional_shock = path[burn_in:].T
    return truth.regional_shock


def simulate_migration_data(
    *,
    n_regions: int = 12,
    municipalities_per_region: int = 6,
    years: range = range(2005, 2022),
    covariates: tuple[str, ...] = ("vra_0", "vra_1", "vra_2", "centrality", "ds"),
    job_years_from: int | None = None,
    truth: MigrationTruth | None = None,
    seed: int = 1,
    housing_share: float = 1.0,
) -> tuple[MigrationData, MigrationTruth]:
    """A self-contained simulated data set for the migration model.

    Covariates are generated with realistic spreads (VRA sd 1.5 pp, autocorrelated over
    years; centrality -0.3..0.3; DS sd 0.5 pp; ``housing_L``: completed dwellings per
    1,000 inhabitants, a municipal level of about 4 with yearly swings, centred on the
    mean of the observed cells) and populations from a log-normal.

    Parameters
    ----------
    n_regions, municipalities_per_region, years
        Size of the grid.
    covariates
        Covariates to generate.
    job_years_from
        If given, VRA covariates are missing before this year (as on the embedded data).
    truth
        Hyperparameters; defaults follow the published figures (give ``beta_mu`` and
        ``beta_sigma`` for ``housing_L``, which has no published value).
    seed
        Seed.
    housing_share
        Share of municipalities (the first ones) whose housing covariates are observed;
        the others are missing in every year, as outside Telemark on the real data.

    Returns
    -------
    (MigrationData, MigrationTruth)
    """
    rng = np.random.default_rng(seed)
    truth = truth or MigrationTruth()
    n_muni = n_regions * municipalities_per_region
    year_values = np.asarray(list(years))
    n_year = year_values.size
    region_index = np.repeat(np.arange(n_regions), municipalities_per_region)
    population = np.exp(rng.normal(np.log(8000), 1.1, n_muni))[:, None] * np.exp(
        np.cumsum(rng.normal(0, 0.01, (n_muni, n_year)), axis=1)
    )
    x = np.zeros((len(covariates), n_muni, n_year))
    relative_growth = rng.normal(0, 1.5, (n_muni, n_year + 2))
    centrality = rng.uniform(-0.3, 0.3, n_muni)
    # A generator of its own, so that panels without housing keep their random stream.
    housing = _simulated_housing(np.random.default_rng([seed, 18]), n_muni, n_year)
    with_housing = np.arange(n_muni) < round(housing_share * n_muni)
    for k, name in enumerate(covariates):
        if name.startswith("vra_"):
            lag = int(name[-1])
            x[k] = relative_growth[:, 2 - lag : 2 - lag + n_year]
        elif name == "centrality":
            x[k] = centrality[:, None]
        elif name == "ds":
            x[k] = rng.normal(0, 0.5, n_muni)[:, None] + rng.normal(0, 0.2, (n_muni, n_year))
            x[k] -= x[k].mean(axis=0, keepdims=True)
        elif name.startswith("housing_"):
            lag = int(name.rsplit("_", 1)[1])
            x[k] = housing[:, 2 - lag : 2 - lag + n_year]
    available = np.ones_like(x, dtype=bool)
    for k, name in enumerate(covariates):
        if name.startswith("housing_"):
            available[k][~with_housing] = False
            # Centred on the observed cells, as vekst.features.housing does.
            x[k] -= x[k][with_housing].mean() if with_housing.any() else 0.0
    if job_years_from is not None:
        for k, name in enumerate(covariates):
            if name.startswith("vra_"):
                available[k][:, year_values < job_years_from + int(name[-1])] = False
    county_index = region_index // 4
    rate = draw_net_migration_rate(
        truth, x, available, population, region_index, tuple(covariates), rng, county_index
    )
    data = MigrationData(
        municipalities=np.array([f"{9000 + i:04d}" for i in range(n_muni)]),
        years=year_values,
        covariates=tuple(covariates),
        regions=np.array([f"R{r:02d}" for r in region_index]),
        counties=np.array([f"C{c:02d}" for c in county_index]),
        names=np.array([f"Sim {i}" for i in range(n_muni)]),
        rate=rate,
        x=np.where(available, x, 0.0),
        x_available=available,
        population=population,
        centers={"centrality_center": 0.0, "ds_center": 0.0},
        national=truth.national,
    )
    return data, truth


def _simulated_housing(rng: np.random.Generator, n_muni: int, n_year: int) -> np.ndarray:
    """Completed dwellings per 1,000 inhabitants, (municipality, year + 2 lead years):
    a log-normal municipal level (median 4) times log-normal yearly swings (sd 0.5), the
    lumpy profile of the Telemark completions."""
    level = np.exp(rng.normal(np.log(4.0), 0.4, n_muni))
    return level[:, None] * np.exp(rng.normal(-0.125, 0.5, (n_muni, n_year + 2)))
