r"""Time structure of the migration equation (``time_structure = "ar1"``).

Net migration is persistent: a migration wave lasts several years, a municipality that
is doing well this year tends to do well next year, and common shocks hit small and
peripheral places harder (``../shared/reference/forecast-uncertainty.md``). The ``ar1``
form of the equation is

.. math::

    y_{mt} = \lambda_m I_t + \gamma_t + \sum_k \beta_{kt} x_{kmt} a_{kmt} + \alpha_m
             + e_{mt}, \qquad e_{mt} = \phi_m e_{m,t-1} + \varepsilon_{mt}

* :math:`I_t`: national net migration in % of the national population (known in the
  past, a stochastic path or a scenario in the future) — the driver users can set.
* :math:`\lambda_m = 1 + \theta (\log N_m - \overline{\log N})^{\perp}`: the
  municipality's settlement loading on national immigration, estimated; :math:`\perp`
  marks the part of log population not explained by the municipal means of the
  covariates named in ``loading_orthogonal_to`` (centrality in the shipped specs).
* :math:`s_t = (I_t, \gamma_t, \beta_{kt})`: a stationary VAR(1) with diagonal
  autoregression :math:`\rho` around the means :math:`(\mu_I, \gamma_\mu, \beta_{\mu})`
  and innovations with sds :math:`(\sigma_I, \gamma_\sigma, \beta_\sigma)` and an LKJ
  correlation (Normal or multivariate Student-t). Sparse covariates (VRA observed in a few
  years) and those the spec lists in ``year_coefficients_exchangeable`` (DS in
  ``no_jobs``) get exchangeable non-centred year coefficients (their rho is 0).
* :math:`r_{c[m]t}` (``regional_shocks = "county"``): a county x year shock shared by the
  county's municipalities, AR(1) over years with persistence :math:`\psi` and innovation
  sd :math:`\sigma_r`, zero-sum over counties each year so it does not compete with the
  national terms (a county of one municipality, Oslo, shares its shock with nobody, so
  there it trades off against the local deviation). Why: the backtest's largest misses
  for places of 20,000-50,000 were shared by a region for several years (Rogaland after
  the 2014 oil-price fall, the Oslo suburbs), which neither the national terms nor one
  municipality's deviation carry. Off in the shipped specs: in the backtest it moved the
  large places' coverage by one to two points for fits three times slower
  (``docs/results/README.md``).
* :math:`w_{mt}` (``attractiveness_walk = true``): attractiveness that moves, a random
  walk with yearly sd :math:`\tau_m = \tau \exp(c\,z_m)` (:math:`z_m` as below),
  written on knots every :data:`WALK_KNOT_YEARS` years back from the last fitted year
  and interpolated between them, and centred over the fitted years, so
  :math:`\alpha_m` stays the mean attractiveness of the fitted years and
  :math:`\alpha_m + w_{mT}` is the level of the last. Why: a municipality's deviations
  drift (the variogram of the embedded panel rises at about 0.17-0.21 points a year for
  places of 5,000-50,000, ``../shared/reference/forecast-uncertainty.md``), which a fixed
  attractiveness and a decaying AR(1) deviation do not carry into the forecast: the
  bands of places of 20,000 and more covered 66 % four years ahead. Off in the shipped
  specs: in the backtest it lifted the coverage of places of 20,000-50,000 from 66 to
  72 % but widened small places' bands, which were wide enough, and doubled fit times
  (``docs/results/README.md``). ``attractiveness_walk_min_population`` walks only the
  places of at least that many people: from 10,000 it bettered every proper score of
  the backtest by about 1 %, but its fits failed the convergence gate at two of six
  origins.
* :math:`\phi_m = \operatorname{logistic}(a + b\,z_m)`, :math:`z_m` the standardised log
  population: persistent local deviations, more persistent in larger places; the
  innovation scale :math:`\sqrt{\sigma_{base}^2 + \sigma_{pop}^2 10^4/N_{mt}}` is larger
  in small places.

The projection (:mod:`vekst.projection.migration`) continues exactly these processes from
each draw's state in the last fitted year.
"""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import gammaln

from vekst.models.data import MigrationData

__all__ = [
    "NATIONAL",
    "YEAR_EFFECT",
    "add_attractiveness_walk",
    "add_local_persistence",
    "add_regional_shocks",
    "add_state_processes",
    "covariate_directions",
    "loading_inputs",
    "persistence_inputs",
    "walk_design",
    "walking_municipalities",
]

#: Largest AR(1) coefficient of the state processes and of the municipal deviations.
RHO_MAX = 0.98
PHI_MAX = 0.95
#: Names of the non-covariate state processes on the ``state`` coordinate.
NATIONAL = "national_net_migration"
YEAR_EFFECT = "year_effect"
#: Years between the knots of the attractiveness walk.
WALK_KNOT_YEARS = 4


def loading_inputs(
    data: MigrationData, orthogonal_to: tuple[str, ...] = ()
) -> tuple[list[str], np.ndarray]:
    """Municipal characteristics the loadings depend on, centred: ``(names, (term, mun))``.

    Log mean population, with its component along the municipal means of the covariates
    in ``orthogonal_to`` removed. Why: centrality barely changes over time, so
    ``theta * log N_m * I_t`` and the year coefficients of centrality times ``c_m``
    explain the same thing as far as log population goes with centrality; on the
    national panel that ridge made the loading the slowest direction of the sampler
    (posterior correlation -0.7 with each year's centrality coefficient, bulk ESS about
    450 of 4,000 draws). A centrality term in the loading itself was tried and dropped:
    beside year-specific centrality coefficients it is not identified (posterior
    0.14 +- 1.34 against a N(0, 2) prior).
    """
    names, rows = [], []
    log_population = np.log(np.maximum(np.nanmean(data.population, axis=1), 1.0))
    names.append("log_population")
    rows.append(log_population - log_population.mean())
    z = np.vstack(rows)
    if orthogonal_to:
        directions = covariate_directions(list(data.covariates), orthogonal_to, data)
        z = z - (z @ directions.T) @ directions
    return names, z


def covariate_directions(
    covariates: list[str], names: tuple[str, ...] | list[str], data: MigrationData
) -> np.ndarray:
    """Orthonormal municipal directions of covariates, ``(k, mun)``.

    Each named covariate's municipal mean over the years it was observed, centred over
    municipalities; orthonormalised (QR) so that a projection onto their complement is
    exact.
    """
    columns = []
    for name in names:
        k = covariates.index(name)
        available = data.x_available[k]
        with np.errstate(invalid="ignore"):
            means = np.where(available, data.x[k], 0.0).sum(1) / np.maximum(available.sum(1), 1)
        columns.append(means - means.mean())
    q, _ = np.linalg.qr(np.column_stack(columns))
    return q.T


def persistence_inputs(data: MigrationData) -> np.ndarray:
    """Standardised log mean population ``(municipality,)`` (drives persistence)."""
    log_population = np.log(np.maximum(np.nanmean(data.population, axis=1), 1.0))
    spread = log_population.std()
    return (log_population - log_population.mean()) / (spread if spread > 0 else 1.0)


def _process_logp(mspec, states, mean, sd, rho, corr_name: str, n_states: int):
    """Log density of a VAR(1) block ``states (n_states, year)`` with diagonal
    autoregression, stationary start and correlated innovations."""
    dev = states - mean[:, None]
    innovations = dev[:, 1:] - rho[:, None] * dev[:, :-1]
    corr_chol = _lkj_cholesky(corr_name, n_states, eta=4.0)
    corr = corr_chol @ corr_chol.T
    if n_states > 1:
        pm.Deterministic(corr_name, corr, dims=("block_state", "block_state_to"))
    cov = sd[:, None] * sd[None, :] * corr
    chol = sd[:, None] * corr_chol
    if mspec.innovations == "student_t":
        innovation_logp = _mvt_logp_chol(innovations, chol, n_states, mspec.innovations_nu)
    else:
        innovation_logp = _mvn_logp_chol(innovations, chol, n_states)
    stationary = cov / (1.0 - rho[:, None] * rho[None, :])
    start_chol = _small_cholesky(stationary, n_states)
    return innovation_logp + _mvn_logp_chol(dev[:, :1], start_chol, n_states)


def _small_cholesky(matrix: pt.TensorVariable, k: int) -> pt.TensorVariable:
    """Cholesky factor of a small ``(k, k)`` matrix, unrolled into scalar operations
    (``pt.linalg.cholesky``'s gradient calls ``solve_triangular``, slow here; see
    :func:`_whitened`)."""
    chol = [[pt.as_tensor_variable(0.0) for _ in range(k)] for _ in range(k)]
    for j in range(k):
        diagonal = matrix[j, j] - sum((chol[j][m] ** 2 for m in range(j)), start=0.0)
        chol[j][j] = pt.sqrt(diagonal)
        for i in range(j + 1, k):
            off = matrix[i, j] - sum((chol[i][m] * chol[j][m] for m in range(j)), start=0.0)
            chol[i][j] = off / chol[j][j]
    return pt.stack([pt.stack(row) for row in chol])


def _lkj_cholesky(name: str, n: int, eta: float) -> pt.TensorVariable:
    """Cholesky factor of an LKJ(eta) correlation matrix from canonical partial
    correlations (Lewandowski, Kurowicka & Joe 2009): the partial correlations of column
    ``j`` are ``2 Beta(b_j, b_j) - 1`` with ``b_j = eta + (n - 2 - j) / 2``.

    Built by hand because ``pm.LKJCorr``'s density checks positive definiteness in Python
    object mode under nutpie's numba backend.
    """
    if n == 1:
        return pt.ones((1, 1))
    rows, cols = np.tril_indices(n, -1)
    shape = eta + (n - 2 - cols) / 2.0
    unit = pm.Beta(f"{name}_cpc", alpha=shape, beta=shape, shape=len(rows))
    partial = 2.0 * unit - 1.0
    lookup = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(rows, cols, strict=True))}
    entries = [[pt.as_tensor_variable(0.0) for _ in range(n)] for _ in range(n)]
    entries[0][0] = pt.as_tensor_variable(1.0)
    for i in range(1, n):
        remaining = pt.as_tensor_variable(1.0)
        for j in range(i):
            entries[i][j] = partial[lookup[(i, j)]] * pt.sqrt(remaining)
            remaining = remaining - entries[i][j] ** 2
        entries[i][i] = pt.sqrt(remaining)
    return pt.stack([pt.stack(row) for row in entries])


def _whitened(values: pt.TensorVariable, chol: pt.TensorVariable, k: int):
    """``L^-1 values`` for the columns of ``values (k, n)``, and ``log det L``.

    Forward substitution unrolled over the (few) states: elementwise rows only. Both
    ``pm.MvNormal``'s logp (a positive-definiteness check in Python object mode under
    numba) and ``solve_triangular`` (a ~4 ms Python call per gradient here) made a
    national fit 40x slower per gradient than the whole rest of the model. Measured again
    with PyTensor 2.38, whose numba backend calls LAPACK for ``cholesky`` and
    ``solve_triangular``: with both (and the LKJ factor and the state vectors built
    without scalar indexing: 399 graph nodes instead of 622) the default national fit
    sampled in 280 s instead of 77 s, and compiled on an empty cache in 82.5 s instead of
    82.0 s (nearly all of it is LLVM on nutpie's callbacks, not the number of nodes).
    """
    rows = []
    for i in range(k):
        row = values[i]
        for j in range(i):
            row = row - chol[i, j] * rows[j]
        rows.append(row / chol[i, i])
    log_det = sum(pt.log(chol[i, i]) for i in range(k))
    return pt.stack(rows), log_det


def _mvn_logp_chol(values, chol, k: int) -> pt.TensorVariable:
    """Multivariate normal log density of the columns of ``values (k, n)``."""
    n = values.shape[1]
    solved, log_det = _whitened(values, chol, k)
    return -0.5 * pt.sum(solved**2) - n * log_det - 0.5 * n * k * np.log(2 * np.pi)


def _mvt_logp_chol(values, chol, k: int, nu: float):
    """Multivariate Student-t log density of the columns of ``values (k, n)``."""
    solved, log_det = _whitened(values, chol, k)
    quad = pt.sum(solved**2, axis=0)
    # In numpy: PyTensor casts constants such as 4.5 to float32 (exactly representable),
    # and its gammaln of them was off by ~1e-7 of the density.
    constant = float(gammaln((nu + k) / 2.0) - gammaln(nu / 2.0) - 0.5 * k * np.log(nu * np.pi))
    return pt.sum(constant - log_det - 0.5 * (nu + k) * pt.log1p(quad / nu))


def add_state_processes(
    spec,
    data: MigrationData,
    covariates: list[str],
    centred: list[int],
    national: pt.TensorVariable | None = None,
):
    """Year effects, year coefficients and national net migration as one VAR(1).

    Parameters
    ----------
    spec
        The model spec.
    data
        Model arrays.
    covariates
        Covariate names.
    centred
        Indices of covariates whose year coefficients are centred states of the VAR
        block; the others get exchangeable non-centred year coefficients.
    national
        The national net migration rate ``(year,)`` when it is a driver.

    Returns
    -------
    (year_effect, beta_year)
        ``(year,)``; ``(covariate, year)`` coefficients (or ``None`` without covariates).
    """
    mspec = spec.migration
    priors = mspec.priors
    block_names: list[str] = []
    block_states, block_mean, block_sd, block_rho = [], [], [], []

    rho_names = ([NATIONAL] if mspec.national_immigration else []) + [YEAR_EFFECT] + covariates
    # Sparse covariates (VRA, observed in a few years) get exchangeable year coefficients
    # (rho = 0): with 4 years of data an AR(1) on them is prior only, and its rho and sd
    # made the funnel behind the national fit's divergences (all at high rho and sd of
    # vra_2). Bounded below 0.98: at rho -> 1 the stationary start's covariance explodes;
    # 17 years cannot tell 0.98 from 1 anyway.
    persistent = [
        name for name in rho_names if name not in covariates or covariates.index(name) in centred
    ]
    rho_unit = pm.Beta("rho_unit", alpha=3.0, beta=2.0, shape=len(persistent))
    entries = [
        RHO_MAX * rho_unit[persistent.index(name)] if name in persistent else pt.constant(0.0)
        for name in rho_names
    ]
    rho = pm.Deterministic("rho", pt.stack(entries), dims="state")
    rho_of = {name: rho[i] for i, name in enumerate(rho_names)}

    if national is not None:
        national_mu = pm.Normal("national_mu", 0.0, priors["national_mu_sd"])
        national_sigma = pm.HalfNormal("national_sigma", priors["national_sigma_sd"])
        block_names.append(NATIONAL)
        block_states.append(national)
        block_mean.append(national_mu)
        block_sd.append(national_sigma)
        block_rho.append(rho_of[NATIONAL])

    year_effect_mu = pm.Normal("year_effect_mu", 0.0, priors["year_effect_mu_sd"])
    year_effect_sigma = pm.HalfNormal("year_effect_sigma", priors["year_effect_sigma_sd"])
    # Centred: every year's effect is informed by all municipalities (mixes better).
    year_effect = pm.Flat("year_effect", dims="year")
    block_names.append(YEAR_EFFECT)
    block_states.append(year_effect)
    block_mean.append(year_effect_mu)
    block_sd.append(year_effect_sigma)
    block_rho.append(rho_of[YEAR_EFFECT])

    beta_year = None
    if covariates:
        beta_mu = pm.Normal(
            "beta_mu",
            mu=np.array([mspec.beta_mu_mean[c] for c in covariates]),
            sigma=np.array([mspec.beta_mu_sd[c] for c in covariates]),
            dims="covariate",
        )
        beta_sigma = pm.HalfNormal(
            "beta_sigma",
            sigma=np.array([mspec.beta_sigma_sd[c] for c in covariates]),
            dims="covariate",
        )
        rows = []
        for k, cov in enumerate(covariates):
            if k in centred:
                row = pm.Flat(f"beta_year_{cov}", dims="year")
                block_names.append(cov)
                block_states.append(row)
                block_mean.append(beta_mu[k])
                block_sd.append(beta_sigma[k])
                block_rho.append(rho_of[cov])
            else:
                z = pm.Normal(f"beta_year_{cov}_z", 0.0, 1.0, dims="year")
                row = beta_mu[k] + beta_sigma[k] * z
            rows.append(row)
        beta_year = pm.Deterministic("beta_year", pt.stack(rows), dims=("covariate", "year"))

    model = pm.modelcontext(None)
    for dim in ("block_state", "block_state_to"):
        if dim not in model.coords:
            model.add_coord(dim, block_names)
    pm.Potential(
        "state_process",
        _process_logp(
            mspec,
            pt.stack(block_states),
            pt.stack(block_mean),
            pt.stack(block_sd),
            pt.stack(block_rho),
            "state_corr",
            len(block_names),
        ),
    )
    return year_effect, beta_year


def state_coords(spec, covariates: list[str], data: MigrationData) -> dict[str, list[str]]:
    """Coordinates of the time-structured model: ``state``, ``block_state`` and
    ``loading_term``."""
    mspec = spec.migration
    states = ([NATIONAL] if mspec.national_immigration else []) + [YEAR_EFFECT] + covariates
    coords = {"state": states}
    if mspec.national_immigration:
        coords["loading_term"] = loading_inputs(data)[0]
    return coords


def add_loadings(spec, data: MigrationData) -> pt.TensorVariable:
    """Settlement loadings ``lambda_m = 1 + theta . z_m`` as a Deterministic ``loading``.

    Returns
    -------
    pytensor.tensor.TensorVariable
        The loadings ``(municipality,)``.
    """
    _, z = loading_inputs(data, spec.migration.loading_orthogonal_to)
    # pm.Data, not a constant: a compiled model reused for another panel of the same
    # structure must see that panel's populations.
    inputs = pm.Data("loading_inputs", z, dims=("loading_term", "municipality"))
    theta = pm.Normal("loading_coef", 0.0, spec.migration.priors["loading_sd"], dims="loading_term")
    return pm.Deterministic("loading", 1.0 + pt.dot(theta, inputs), dims="municipality")


def add_local_persistence(spec, data: MigrationData) -> pt.TensorVariable:
    """Persistence ``phi_m = logistic(a + b z_m)`` of municipal deviations."""
    sd = spec.migration.priors["persistence_sd"]
    intercept = pm.Normal("persistence_intercept", -1.0, sd)
    slope = pm.Normal("persistence_slope", 0.0, sd)
    z = persistence_inputs(data)
    return pm.Deterministic(
        "persistence", PHI_MAX * pm.math.sigmoid(intercept + slope * z), dims="municipality"
    )


def zero_sum_basis(n: int) -> np.ndarray:
    """``(n - 1, n)`` orthonormal rows orthogonal to the ones vector."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    return q[:, : n - 1].T


def add_regional_shocks(spec, data: MigrationData) -> pt.TensorVariable:
    """County x year AR(1) shocks, ``(municipality, year)`` (see the module docstring).

    Zero-sum over counties each year and sampled centred: each county-year is the mean
    of some 20 municipalities' deviations, which pin it down better than its prior
    (the non-centred form left one chain of four stuck with every transition divergent
    on the national panel). The free coordinates are the shocks in an orthonormal basis
    of the zero-sum subspace, where the AR(1) density is that of ``n_county - 1``
    independent series. Recorded as ``regional_shock`` ``(county, year)`` with
    ``regional_sigma`` and ``regional_persistence``, which the projection continues.
    """
    sigma = pm.HalfNormal("regional_sigma", spec.migration.priors["regional_sigma_sd"])
    unit = pm.Beta("regional_persistence_unit", alpha=3.0, beta=2.0)
    persistence = pm.Deterministic("regional_persistence", PHI_MAX * unit)
    n_county = len(data.coords()["county"])
    model = pm.modelcontext(None)
    if "county_contrast" not in model.coords:
        model.add_coord("county_contrast", list(range(n_county - 1)))
    # A raw sampler coordinate like the other ``*_z`` (left out of the gate and the stored
    # posterior): users and the gate read ``regional_shock``.
    coordinates = pm.Flat("regional_shock_contrast_z", dims=("county_contrast", "year"))
    basis = zero_sum_basis(n_county)
    shocks = pm.Deterministic(
        "regional_shock", pt.dot(basis.T, coordinates), dims=("county", "year")
    )
    innovations = coordinates[:, 1:] - persistence * coordinates[:, :-1]
    start_sd = sigma / pt.sqrt(1.0 - persistence**2)
    pm.Potential(
        "regional_shock_process",
        pm.logp(pm.Normal.dist(0.0, sigma), innovations).sum()
        + pm.logp(pm.Normal.dist(0.0, start_sd), coordinates[:, 0]).sum(),
    )
    return shocks[data.county_index()]


def walk_knots(n_years: int, spacing: int = WALK_KNOT_YEARS) -> list[int]:
    """Year indices of the walk's knots: every ``spacing`` years back from the last fitted
    year, and the first year (so the last step may be shorter)."""
    return sorted(set(range(n_years - 1, -1, -spacing)) | {0})


def walk_design(n_years: int, spacing: int = WALK_KNOT_YEARS) -> np.ndarray:
    """Map from the walk's standardised steps to its path, ``(step, year)``.

    With ``K`` knots there are ``K - 1`` steps; the step between knots ``j - 1`` and ``j``
    has sd ``sqrt(years between them)``, so at the knots the path is a random walk with
    unit yearly sd. Between knots it is interpolated linearly (the within-step wiggle is
    left to the AR(1) deviation), and the path is centred over the years.
    """
    knots = walk_knots(n_years, spacing)
    n_steps = len(knots) - 1
    at_knots = np.zeros((n_steps, len(knots)))
    for j in range(1, len(knots)):
        at_knots[j - 1, j:] = np.sqrt(knots[j] - knots[j - 1])
    interpolate = np.zeros((len(knots), n_years))
    for t in range(n_years):
        j = min(int(np.searchsorted(knots, t, side="right")) - 1, len(knots) - 2)
        share = (t - knots[j]) / (knots[j + 1] - knots[j])
        interpolate[j, t] += 1.0 - share
        interpolate[j + 1, t] += share
    path = at_knots @ interpolate
    return path - path.mean(axis=1, keepdims=True)


def add_attractiveness_walk(spec, data: MigrationData) -> pt.TensorVariable:
    """Attractiveness as a random walk around its fitted mean, ``(municipality, year)``.

    The yearly sd is ``attract_walk_sigma * exp(attract_walk_slope * z_m)`` with ``z_m``
    the standardised log population (:func:`persistence_inputs`) centred over the places
    that walk, kept per municipality as ``attract_walk_sd``; the walk's value in the last
    fitted year is ``attract_walk_last``. The projection continues the walk from there
    with that sd. With ``attractiveness_walk_min_population`` only the places of at least
    that many people walk (:func:`walking_municipalities`); the others keep a fixed
    attractiveness, with ``attract_walk_sd`` and ``attract_walk_last`` zero.

    Non-centred steps and a free slope. Tried and not kept: steps partially centred by how
    well each place's years inform them, with the slope held at zero or above; on the
    backtest's panel 2005-2012 that fit failed the gate far worse (R-hat 1.148 and bulk ESS
    19 for ``attract_walk_sd`` after a refit, against 1.012 and 433 for this form).
    """
    priors = spec.migration.priors
    n_years = len(data.years)
    design = walk_design(n_years)
    knots = walk_knots(n_years)
    years = [int(y) for y in data.years]
    walking = walking_municipalities(data, spec.migration.attractiveness_walk_min_population)
    model = pm.modelcontext(None)
    if "walk_step" not in model.coords:
        model.add_coord(
            "walk_step", [f"{years[a]}-{years[b]}" for a, b in itertools.pairwise(knots)]
        )
    if "walk_municipality" not in model.coords:
        model.add_coord("walk_municipality", [str(m) for m in data.municipalities[walking]])
    sigma = pm.HalfNormal("attract_walk_sigma", priors["attract_walk_sigma_sd"])
    slope = pm.Normal("attract_walk_slope", 0.0, priors["attract_walk_slope_sd"])
    # Centred over the places that walk, so that sigma is the sd at their mean size: with
    # a floor, sizes centred over all places would tie sigma and the slope into a ridge.
    z = persistence_inputs(data)
    z = z - z[walking].mean()
    scale = pm.Deterministic(
        "attract_walk_sd", sigma * pt.exp(slope * z) * walking.astype(float), dims="municipality"
    )
    steps = pm.Normal("attract_walk_z", 0.0, 1.0, dims=("walk_municipality", "walk_step"))
    if walking.all():
        # Without a floor the graph stays the one fits were sampled with (no scatter).
        path = scale[:, None] * pt.dot(steps, pt.as_tensor_variable(design))
    else:
        index = np.flatnonzero(walking)
        moving = scale[index][:, None] * pt.dot(steps, pt.as_tensor_variable(design))
        path = pt.zeros((len(walking), n_years)).astype(moving.dtype)
        path = pt.set_subtensor(path[index], moving)
    pm.Deterministic("attract_walk_last", path[:, -1], dims="municipality")
    return path


def walking_municipalities(data: MigrationData, min_population: float = 0.0) -> np.ndarray:
    """Boolean ``(municipality,)``: the places whose attractiveness walks, those with at
    least ``min_population`` people in the last fitted year.

    Why a floor: below about 5,000 people the variogram of the embedded panel's deviations
    is flat (``../shared/reference/forecast-uncertainty.md``), and in the backtest a walk for
    every place widened the small places' bands for nothing (their interval score at h = 4
    rose from 12.4 to 13.1 % for places under 2,000) while it helped places of 20,000 and
    more (``docs/results/README.md``).
    """
    last = np.asarray(data.population, dtype=float)[:, -1]
    return np.nan_to_num(last, nan=0.0) >= float(min_population)
