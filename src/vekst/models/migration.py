r"""The hierarchical net-migration model.

.. math::

    y_{mt} = \gamma_t + \sum_k \beta_{kt} x_{kmt} a_{kmt} + \alpha_m + \varepsilon_{mt}

* :math:`y_{mt}`: net migration in % of the 1 January population.
* :math:`\gamma_t \sim N(\gamma_\mu, \gamma_\sigma)`: the year effect (national net
  immigration and common shocks).
* :math:`\beta_{kt} = \beta_{\mu,k} + \beta_{\sigma,k} z_{kt}`: coefficients partially
  pooled across years (non-centred by default; centred or fully pooled by spec).
* :math:`a_{kmt} \in \{0, 1\}`: whether covariate *k* is observed. Missing covariates
  switch their term off for that cell instead of dropping the year, so years without job
  data still inform the year effects, centrality, DS and attractiveness. We chose this over
  imputing VRA inside the model because VRA is missing for whole years (no employment
  data), where an imputation model would only return its own prior.
* :math:`\alpha_m = \alpha_{\text{region}[m]} + \delta_m` (+ county level, + drift): the
  residential attractiveness, partially pooled within labour-market regions. Region
  terms are zero-sum so they do not compete with :math:`\gamma_\mu`. The municipal
  levels are sampled centred, non-centred or, in the shipped specs, partially
  non-centred, each as far as its own years pin it down (``attractiveness_centered``).
* :math:`\varepsilon_{mt}`: Normal or Student-t with scale
  :math:`\sqrt{\sigma_{base}^2 + \sigma_{pop}^2 \cdot 10^4 / N_{mt}}`: small municipalities
  are noisier.

The likelihood is written on the balanced municipality x year grid with an explicit sum
over covariates; that layout is ~8x cheaper per gradient than long-format indexing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from vekst.models import dynamics
from vekst.models.data import MigrationData
from vekst.models.spec import ModelSpec

__all__ = [
    "MIN_COUNTIES_FOR_SHOCKS",
    "MIN_YEARS_FOR_SHOCKS",
    "MIN_YEARS_FOR_WALK",
    "add_migration_block",
    "build_migration_model",
]

#: Fewest counties for county shocks: zero-sum over two counties is one shock and its
#: mirror image, which a panel cannot tell from the local deviations.
MIN_COUNTIES_FOR_SHOCKS = 3
#: Fewest fitted years for county shocks: fitted on 2005-2008 (the backtest's origin
#: 2009) their persistence and scale were prior only and the fit had 206 divergent
#: transitions (70 after a refit at 0.99) against 24 without them.
MIN_YEARS_FOR_SHOCKS = 8
#: Fewest fitted years for the attractiveness walk: with fewer than two of its four-year
#: steps, a walk and the AR(1) deviation cannot be told apart.
MIN_YEARS_FOR_WALK = 8


def build_migration_model(spec: ModelSpec, data: MigrationData) -> pm.Model:
    """Build the migration model as a ``pm.Model`` with named coords.

    Parameters
    ----------
    spec
        The model spec; ``spec.migration`` is used.
    data
        Arrays from :func:`vekst.models.data.migration_data`.

    Returns
    -------
    pymc.Model
    """
    with pm.Model(coords=data.coords()) as model:
        add_migration_block(spec, data)
    return model


def add_migration_block(spec: ModelSpec, data: MigrationData) -> None:
    """Add the migration model's variables to the model on the context stack."""
    mspec = spec.migration
    priors = mspec.priors
    covariates = list(data.covariates)
    n_years = len(data.years)

    observed = data.observed
    rate_filled = np.where(observed, data.rate, 0.0)
    x_data = pm.Data("x", data.x * data.x_available, dims=("covariate", "municipality", "year"))
    inv_population = pm.Data(
        "inv_population", 1e4 / np.maximum(data.population, 1.0), dims=("municipality", "year")
    )
    rate_data = pm.Data("net_migration_rate", rate_filled, dims=("municipality", "year"))

    if mspec.time_structure == "ar1":
        mu = _time_structured_mean(spec, data, covariates, x_data)
    else:
        year_effect_mu = pm.Normal("year_effect_mu", 0.0, priors["year_effect_mu_sd"])
        year_effect_sigma = pm.HalfNormal("year_effect_sigma", priors["year_effect_sigma_sd"])
        # Centred: every year is informed by all municipalities, where centring mixes
        # better (non-centred year effects gave divergences and R-hat 1.013 on the
        # national panel).
        year_effect = pm.Normal("year_effect", year_effect_mu, year_effect_sigma, dims="year")
        mu = year_effect[None, :] + _attractiveness(spec, data)
        if covariates:
            beta_year = _year_coefficients(mspec, covariates, n_years, data)
            mu = mu + _covariate_terms(beta_year, x_data)

    sigma_base = pm.HalfNormal("sigma_base", priors["sigma_base_sd"])
    sigma_pop = pm.HalfNormal("sigma_pop", priors["sigma_pop_sd"])
    scale = pt.sqrt(sigma_base**2 + sigma_pop**2 * inv_population)

    if mspec.local_persistence:
        mu, scale = _persistent_deviations(spec, data, mu, scale, rate_data)
    if observed.all():
        mu_obs, scale_obs, y_obs = mu, scale, rate_data
        obs_dims: tuple[str, ...] | None = ("municipality", "year")
    else:
        flat = np.flatnonzero(observed.ravel())
        mu_obs = mu.ravel()[flat]
        scale_obs = scale.ravel()[flat]
        y_obs = rate_data.ravel()[flat]
        obs_dims = None
    if mspec.likelihood == "student_t":
        pm.StudentT(
            "net_migration_obs",
            nu=mspec.student_t_nu,
            mu=mu_obs,
            sigma=scale_obs,
            observed=y_obs,
            dims=obs_dims,
        )
    else:
        pm.Normal("net_migration_obs", mu=mu_obs, sigma=scale_obs, observed=y_obs, dims=obs_dims)


def _time_structured_mean(spec, data: MigrationData, covariates, x_data):
    """Mean of the ``ar1`` equation: loadings x national rate + VAR(1) states + attractiveness
    (see :mod:`vekst.models.dynamics`)."""
    model = pm.modelcontext(None)
    for name, values in dynamics.state_coords(spec, covariates, data).items():
        if name not in model.coords:
            model.add_coord(name, values)
    centred = _centred_covariates(spec.migration, covariates, data)
    national = loading = None
    if spec.migration.national_immigration:
        national = pm.Data("national_rate", data.national_rate, dims="year")
        loading = dynamics.add_loadings(spec, data)
    year_effect, beta_year = dynamics.add_state_processes(spec, data, covariates, centred, national)
    mu = year_effect[None, :] + _attractiveness(spec, data)
    if national is not None:
        mu = mu + loading[:, None] * national[None, :]
    if beta_year is not None:
        mu = mu + _covariate_terms(beta_year, x_data)
    n_counties, n_years = len(data.coords()["county"]), len(data.years)
    if spec.migration.regional_shocks == "county":
        mu = mu + _term_if_identified(
            lambda: dynamics.add_regional_shocks(spec, data),
            n_counties >= MIN_COUNTIES_FOR_SHOCKS and n_years >= MIN_YEARS_FOR_SHOCKS,
            f'regional_shocks = "county" needs at least {MIN_COUNTIES_FOR_SHOCKS} counties '
            f"and {MIN_YEARS_FOR_SHOCKS} years; the panel has {n_counties} and {n_years}, so "
            'the fit has no county shocks (set regional_shocks = "none" in the spec to '
            "silence this).",
        )
    if spec.migration.attractiveness_walk:
        floor = spec.migration.attractiveness_walk_min_population
        walking = int(dynamics.walking_municipalities(data, floor).sum())
        why_not = (
            f"attractiveness_walk needs at least {MIN_YEARS_FOR_WALK} years of net "
            f"migration; the panel has {n_years}"
            if n_years < MIN_YEARS_FOR_WALK
            else f"no municipality has the {floor:,.0f} people that "
            "attractiveness_walk_min_population asks for in the last fitted year"
        )
        mu = mu + _term_if_identified(
            lambda: dynamics.add_attractiveness_walk(spec, data),
            n_years >= MIN_YEARS_FOR_WALK and walking > 0,
            f"{why_not}, so attractiveness is held fixed over the years (set "
            "attractiveness_walk = false in the spec to silence this).",
        )
    return mu


def _term_if_identified(build, identified: bool, why_not: str):
    """An optional term of the equation, or 0 with the warning ``why_not`` on a panel too
    small to identify it."""
    if identified:
        return build()
    warnings.warn(why_not, stacklevel=3)
    return 0.0


def _covariate_terms(beta_year, x_data):
    """``sum_k beta_kt x_kmt`` as one broadcast product: a loop over covariates put two
    indexing ops per covariate into the gradient, each compiled by numba on its own."""
    return (beta_year[:, None, :] * x_data).sum(axis=0)


def _persistent_deviations(spec, data: MigrationData, mu, scale, rate_data):
    """Condition each year on last year's deviation: ``e_t = phi e_{t-1} + eps_t``.

    Returns the conditional mean and scale; a cell whose previous year is not observed
    gets the stationary scale ``scale / sqrt(1 - phi^2)``. The last fitted year's
    deviation is kept (``last_deviation``) so projections continue from it.
    """
    persistence = dynamics.add_local_persistence(spec, data)
    observed = data.observed
    deviation = pt.switch(observed, rate_data - mu, 0.0)
    previous_observed = np.zeros_like(observed)
    previous_observed[:, 1:] = observed[:, :-1]
    previous = pt.concatenate([pt.zeros((mu.shape[0], 1)), deviation[:, :-1]], axis=1)
    pm.Deterministic("last_deviation", deviation[:, -1], dims="municipality")
    phi = persistence[:, None]
    conditional_mean = mu + phi * previous
    stationary = scale / pt.sqrt(1.0 - phi**2)
    return conditional_mean, pt.switch(previous_observed, scale, stationary)


def _centred_covariates(mspec, covariates: list[str], data: MigrationData) -> list[int]:
    """Indices of covariates whose year coefficients are centred.

    ``"auto"``: a covariate observed in most years on a national-size panel (>= 200
    municipalities a year) informs each year's coefficient well, where centring mixes
    better; sparse covariates (VRA before employment data) or small panels leave the year
    coefficients mostly to the prior, where non-centring avoids the funnel (a
    60-municipality panel gave 39 divergences when centred). Covariates the spec lists in
    ``year_coefficients_exchangeable`` are never centred: where one year's data pin a
    coefficient down no better than its spread between years (DS), a centred state is a
    funnel whatever the number of municipalities.
    """
    if mspec.year_coefficients == "centered":
        return list(range(len(covariates)))
    if mspec.year_coefficients in ("non_centered", "pooled"):
        return []
    share = data.x_available.any(axis=1).mean(axis=1)
    per_year = data.x_available.sum(axis=1).max(axis=1)
    exchangeable = set(mspec.year_coefficients_exchangeable)
    return [
        k
        for k, name in enumerate(covariates)
        if share[k] >= 0.5 and per_year[k] >= 200 and name not in exchangeable
    ]


def _year_coefficients(
    mspec, covariates: list[str], n_years: int, data: MigrationData
) -> pt.TensorVariable:
    beta_mu = pm.Normal(
        "beta_mu",
        mu=np.array([mspec.beta_mu_mean[c] for c in covariates]),
        sigma=np.array([mspec.beta_mu_sd[c] for c in covariates]),
        dims="covariate",
    )
    if mspec.year_coefficients == "pooled":
        beta_year = pt.repeat(beta_mu[:, None], n_years, axis=1)
        pm.Deterministic("beta_year", beta_year, dims=("covariate", "year"))
        return beta_year
    beta_sigma = pm.HalfNormal(
        "beta_sigma",
        sigma=np.array([mspec.beta_sigma_sd[c] for c in covariates]),
        dims="covariate",
    )
    centered = _centred_covariates(mspec, covariates, data)
    rows = []
    for k, cov in enumerate(covariates):
        if k in centered:
            row = pm.Normal(f"beta_year_{cov}", beta_mu[k], beta_sigma[k], dims="year")
        else:
            z = pm.Normal(f"beta_year_{cov}_z", 0.0, 1.0, dims="year")
            row = beta_mu[k] + beta_sigma[k] * z
        rows.append(row)
    return pm.Deterministic("beta_year", pt.stack(rows), dims=("covariate", "year"))


def _centre_attractiveness(setting: bool | str, data: MigrationData) -> bool:
    """Whether to centre municipal attractiveness: ``"auto"`` centres when the data pin
    each municipality's level down well, i.e. when the standard error of a municipality's
    mean rate (within-municipality sd / sqrt(years)) is below 0.4 times the spread of
    the municipal means. Measured: 0.32 on the embedded panel (centred: R-hat 1.006, 0
    divergences; non-centred: R-hat 1.017), 0.47 on the 60-municipality simulated panel
    of the tests (centred gave 27 divergences there). A heuristic from these two cases."""
    if isinstance(setting, bool):
        return setting
    with np.errstate(invalid="ignore"):
        within = np.nanstd(data.rate, axis=1)
        n_years = np.maximum(np.isfinite(data.rate).sum(axis=1), 1)
        standard_error = np.nanmedian(within / np.sqrt(n_years))
        between = np.nanstd(np.nanmean(data.rate, axis=1))
    return bool(standard_error < 0.4 * between)


def centring_weights(data: MigrationData) -> np.ndarray:
    """How strongly each municipality's own years pin its attractiveness down, in [0, 1].

    ``w_m = tau^2 / (tau^2 + s_m^2)``: ``s_m`` is the standard error of municipality
    ``m``'s mean rate once each year's national mean is taken out, widened for the lag-1
    autocorrelation of those deviations (the mean of an AR(1) series of ``n`` years has
    variance ``v (1 + phi) / (n (1 - phi))``, ``phi`` pooled over municipalities), and
    ``tau^2`` is the spread of the true levels (:func:`_between_variance`). ``w = 1`` is
    the centred form, ``w = 0`` the non-centred one; in the normal model this weight makes
    the free variable a posteriori independent of the level above it (Papaspiliopoulos,
    Roberts and Skold 2007, Statistical Science 22(1)).
    """
    rate = np.where(data.observed, data.rate, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        deviation = rate - np.nanmean(rate, axis=0, keepdims=True)
        means = np.nanmean(deviation, axis=1)
        centred = deviation - means[:, None]
        lag_pairs = np.isfinite(centred[:, 1:]) & np.isfinite(centred[:, :-1])
        phi = float(
            np.sum(np.where(lag_pairs, centred[:, 1:] * centred[:, :-1], 0.0))
            / max(np.sum(np.where(lag_pairs, centred[:, 1:] ** 2, 0.0)), 1e-12)
        )
        n_years = np.maximum(np.isfinite(deviation).sum(axis=1), 1)
        phi = _unbiased_persistence(phi, float(np.median(n_years)))
        within = np.nanvar(deviation, axis=1, ddof=1)
    within = np.where(np.isfinite(within), within, np.nanmax(within))
    inflation = (1.0 + phi) / (1.0 - phi)
    # Deviations from a municipality's own mean also miss the part of the AR(1) variance
    # that the mean absorbs: E[within] = v (1 - inflation / n).
    noise = within * inflation / np.maximum(n_years - inflation, 1.0)
    means = np.where(np.isfinite(means), means, 0.0)
    between = _between_variance(means, noise)
    return between / (between + noise)


def _between_variance(means: np.ndarray, noise: np.ndarray) -> float:
    """DerSimonian-Laird estimate of the spread of true levels behind noisy ``means``.

    Precision-weighted, so the many noisy small municipalities do not swamp it (the plain
    ``var(means) - mean(noise)`` collapsed to zero in simulations where they dominate).
    """
    precision = 1.0 / np.maximum(noise, 1e-12)
    centre = np.sum(precision * means) / np.sum(precision)
    q = np.sum(precision * (means - centre) ** 2)
    scale = np.sum(precision) - np.sum(precision**2) / np.sum(precision)
    return max(float((q - (len(means) - 1)) / scale), 1e-6)


def _unbiased_persistence(pooled: float, n_years: float) -> float:
    """The AR(1) coefficient whose series, centred on their own means, give ``pooled``.

    Centring on the mean of ``n`` years takes ``v (1 + phi) / (n (1 - phi))`` off both the
    lag-1 covariance and the variance, so the pooled ratio is about
    ``(phi - k / n) / (1 - k / n)`` with ``k = (1 + phi) / (1 - phi)``; solved for ``phi``
    by bisection up to where ``k = n / 2`` (beyond it a series of ``n`` years cannot tell
    persistence from a level; 0.79 for 17 years) or 0.9.
    """
    half = max(n_years, 3.0) / 2.0
    low, high = 0.0, min(0.9, (half - 1.0) / (half + 1.0))

    def implied(phi: float) -> float:
        k = (1.0 + phi) / (1.0 - phi) / max(n_years, 3.0)
        return (phi - k) / (1.0 - k)

    if implied(high) <= pooled:
        return high
    if implied(low) >= pooled:
        return low
    for _ in range(50):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if implied(middle) < pooled else (low, middle)
    return 0.5 * (low + high)


def _partially_centred_attractiveness(
    total: pt.TensorVariable | float, muni_sigma: pt.TensorVariable, data: MigrationData
) -> pt.TensorVariable:
    """Municipal attractiveness centred in proportion to what its own years say.

    Fully centred, the weakly informed levels of small municipalities form a funnel with
    the municipal scale; fully non-centred, the well informed levels of large ones do.
    With ``w_m`` from :func:`centring_weights` the free variable is
    ``a_m ~ N(w_m mu_m, sigma^w_m)`` and ``alpha_m = mu_m + sigma^(1 - w_m) (a_m - w_m mu_m)``,
    so ``alpha_m ~ N(mu_m, sigma)`` exactly as in the other forms.
    """
    weight = pm.Data("attract_centring_weight", centring_weights(data), dims="municipality")
    # A raw sampler coordinate like the other ``*_z``: users and the gate read
    # ``attractiveness``.
    free = pm.Normal(
        "attract_municipality_partial_z",
        mu=weight * total,
        sigma=muni_sigma**weight,
        dims="municipality",
    )
    return total + muni_sigma ** (1.0 - weight) * (free - weight * total)


def _attractiveness(spec: ModelSpec, data: MigrationData) -> pt.TensorVariable:
    mspec = spec.migration
    priors = mspec.priors
    levels = mspec.attractiveness
    total = 0.0
    if "region" in levels:
        region_sigma = pm.HalfNormal("attract_region_sigma", priors["attract_region_sigma_sd"])
        region_z = pm.ZeroSumNormal("attract_region_z", sigma=1.0, dims="region")
        attract_region = pm.Deterministic("attract_region", region_sigma * region_z, dims="region")
        total = total + attract_region[data.region_index()]
    if "county" in levels:
        county_sigma = pm.HalfNormal("attract_county_sigma", priors["attract_county_sigma_sd"])
        county_z = pm.ZeroSumNormal("attract_county_z", sigma=1.0, dims="county")
        attract_county = pm.Deterministic("attract_county", county_sigma * county_z, dims="county")
        total = total + attract_county[data.county_index()]
    muni_sigma = pm.HalfNormal(
        "attract_municipality_sigma", priors["attract_municipality_sigma_sd"]
    )
    if mspec.attractiveness_centered == "partial":
        attractiveness = _partially_centred_attractiveness(total, muni_sigma, data)
    elif _centre_attractiveness(mspec.attractiveness_centered, data):
        # Each municipality's level is informed by every year of its net migration, so the
        # centred form mixes better (non-centred: R-hat 1.017 on the region scale with
        # 4 x 1500 draws on the national panel). The region terms stay zero-sum, so the
        # municipal mean is pinned near the region level and not confounded with
        # year_effect_mu.
        name = "attractiveness_free" if mspec.attractiveness_orthogonal_to else "attractiveness"
        attractiveness = pm.Normal(name, mu=total, sigma=muni_sigma, dims="municipality")
    else:
        muni_z = pm.ZeroSumNormal("attract_municipality_z", sigma=1.0, dims="municipality")
        attractiveness = total + muni_sigma * muni_z
    if mspec.attractiveness_orthogonal_to:
        attractiveness = _orthogonal_attractiveness(attractiveness, mspec, data)
    if attractiveness.name != "attractiveness":
        attractiveness = pm.Deterministic("attractiveness", attractiveness, dims="municipality")
    grid = attractiveness[:, None]
    if mspec.attractiveness_drift:
        drift_sigma = pm.HalfNormal("attract_drift_sigma", priors["attract_drift_sigma_sd"])
        drift_z = pm.Normal("attract_drift_z", 0.0, 1.0, dims="municipality")
        drift = pm.Deterministic("attract_drift", drift_sigma * drift_z, dims="municipality")
        centred_year = np.asarray(data.years, dtype=float) - float(np.mean(data.years))
        grid = grid + drift[:, None] * centred_year[None, :]
    return grid


def attractiveness_constraints(covariates: list[str], names, data: MigrationData) -> np.ndarray:
    """Orthonormal municipal directions attractiveness is kept orthogonal to, ``(k, mun)``
    (:func:`vekst.models.dynamics.covariate_directions`)."""
    return dynamics.covariate_directions(covariates, names, data)


def _orthogonal_attractiveness(free, mspec, data: MigrationData):
    """Attractiveness with its component along time-invariant covariates removed.

    Why: centrality hardly changes over time, so ``beta_centrality * c_m`` and a municipal
    attractiveness that rises with centrality explain the same thing. On the national
    panel that ridge (all 17 centrality year coefficients against 357 attractiveness
    levels) was the slowest direction of the sampler: R-hat 1.02 and bulk ESS about 300
    for every year's centrality coefficient, and the gate's failures. Removing it defines
    attractiveness as the published model does, as the residual once centrality is
    accounted for (an OLS residual is orthogonal to its regressors); the forecast's mean
    is unchanged because the sum ``beta c_m + alpha_m`` is what the data identify.
    """
    covariates = list(data.covariates)
    directions = attractiveness_constraints(covariates, mspec.attractiveness_orthogonal_to, data)
    model = pm.modelcontext(None)
    if "attractiveness_constraint" not in model.coords:
        model.add_coord("attractiveness_constraint", list(mspec.attractiveness_orthogonal_to))
    basis = pm.Data(
        "attractiveness_basis", directions, dims=("attractiveness_constraint", "municipality")
    )
    return free - pt.dot(pt.dot(basis, free), basis)
