"""The migration equation in numpy, next to its PyMC builders.

:mod:`vekst.models.migration` and :mod:`vekst.models.dynamics` write the equation for
PyMC; the projection (:mod:`vekst.projection.migration`) and the simulator
(:mod:`vekst.simulate.migration`) run it forward with these functions, so the three agree on
the noise family, the scale, the state processes and the national constraint.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PROJECTION_VARIABLES",
    "REQUIRED_VARIABLES",
    "apply_national_constraint",
    "noise_scale",
    "standard_shocks",
    "state_innovations",
    "var1_path",
    "zero_sum_ar1_path",
]

#: Posterior variables every projection needs.
REQUIRED_VARIABLES: tuple[str, ...] = (
    "beta_mu",
    "beta_sigma",
    "year_effect_mu",
    "year_effect_sigma",
    "attractiveness",
    "sigma_base",
    "sigma_pop",
)
#: Posterior variables the projection reads, when present in a fit.
PROJECTION_VARIABLES: tuple[str, ...] = (
    *REQUIRED_VARIABLES,
    "fert_dev",
    "mort_dev",
    "beta_year",
    "year_effect",
    "rho",
    "state_corr",
    "national_mu",
    "national_sigma",
    "loading",
    "persistence",
    "last_deviation",
    "regional_shock",
    "regional_sigma",
    "regional_persistence",
    "attract_walk_sd",
    "attract_walk_last",
    "attract_drift",
)


def noise_scale(
    sigma_base: np.ndarray, sigma_pop: np.ndarray, population: np.ndarray
) -> np.ndarray:
    """Scale of the municipal noise, % of population: ``sqrt(sb^2 + sp^2 1e4 / N)``.

    Parameters
    ----------
    sigma_base, sigma_pop
        ``(draw,)`` (or broadcastable) scale parameters.
    population
        ``(draw, municipality)`` 1 January population.
    """
    return np.sqrt(
        np.asarray(sigma_base)[..., None] ** 2
        + np.asarray(sigma_pop)[..., None] ** 2 * 1e4 / np.maximum(population, 1.0)
    )


def standard_shocks(
    rng: np.random.Generator, family: str, nu: float, shape: tuple[int, ...]
) -> np.ndarray:
    """Standardised draws of a likelihood family (``"normal"`` or ``"student_t"``).

    Student-t draws are of the standard t with ``nu`` degrees of freedom (scale 1, as
    PyMC's ``StudentT(nu, mu, sigma)`` = ``mu + sigma * t_nu``), not rescaled to unit sd.
    """
    if family == "student_t":
        return rng.standard_t(nu, size=shape)
    if family == "normal":
        return rng.standard_normal(shape)
    raise ValueError(f"unknown noise family {family!r}; use 'normal' or 'student_t'.")


def state_innovations(
    rng: np.random.Generator,
    chol: np.ndarray,
    family: str,
    nu: float,
    n_steps: int,
) -> np.ndarray:
    """Correlated innovations of a VAR(1) block, ``(n_steps, n_states)``.

    Parameters
    ----------
    rng
        Generator.
    chol
        Cholesky factor of the innovation covariance ``(n_states, n_states)``.
    family, nu
        ``"normal"``, or ``"student_t"`` for the multivariate t (one chi-square mixing
        variable per step shared by the states, as ``pm.MvStudentT``).
    n_steps
        Number of years.
    """
    z = rng.standard_normal((n_steps, chol.shape[0]))
    if family == "student_t":
        z = z * np.sqrt(nu / rng.chisquare(nu, size=(n_steps, 1)))
    return z @ chol.T


def var1_path(
    last: np.ndarray, mean: np.ndarray, rho: np.ndarray, innovations: np.ndarray
) -> np.ndarray:
    """Run a VAR(1) with diagonal autoregression forward from ``last``.

    ``s_t = mean + rho * (s_{t-1} - mean) + innovation_t``.

    Parameters
    ----------
    last
        ``(state,)`` the state before the first step.
    mean, rho
        ``(state,)`` process means and AR(1) coefficients.
    innovations
        ``(step, state)``.

    Returns
    -------
    numpy.ndarray
        ``(step, state)``.
    """
    out = np.empty_like(innovations, dtype=np.float64)
    state = np.asarray(last, dtype=np.float64)
    for step in range(innovations.shape[0]):
        state = mean + rho * (state - mean) + innovations[step]
        out[step] = state
    return out


def zero_sum_ar1_path(
    rng: np.random.Generator,
    last: np.ndarray,
    persistence: float,
    sigma: float,
    n_steps: int,
) -> np.ndarray:
    """AR(1) paths of groups whose innovations sum to zero over the groups each step.

    The county shocks (``regional_shocks = "county"``): standard normals centred over
    groups, as PyMC's ``ZeroSumNormal``, scaled by ``sigma``.

    Parameters
    ----------
    rng
        Generator.
    last
        ``(group,)`` the shocks before the first step.
    persistence, sigma
        AR(1) coefficient and innovation sd.
    n_steps
        Number of steps.

    Returns
    -------
    numpy.ndarray
        ``(step, group)``.
    """
    n_groups = len(last)
    innovations = rng.standard_normal((n_steps, n_groups))
    innovations -= innovations.mean(axis=1, keepdims=True)
    zero = np.zeros(n_groups)
    return var1_path(last, zero, np.full(n_groups, persistence), sigma * innovations)


def apply_national_constraint(
    rate: np.ndarray, population: np.ndarray, loading: np.ndarray, national: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Make municipal rates add up to the national net migration rate.

    The discrepancy between the population-weighted mean rate and the national rate is
    spread over municipalities in proportion to their settlement loadings, so national
    net migration equals the national path exactly (the rest is internal redistribution,
    which sums to zero).

    Parameters
    ----------
    rate
        ``(draw, municipality)`` rates in %.
    population
        ``(draw, municipality)`` 1 January population (the weights).
    loading
        ``(draw, municipality)`` settlement loadings.
    national
        ``(draw,)`` national net migration rate in %.

    Returns
    -------
    (rate, adjustment)
        The constrained rates and the adjustment added to each municipality.
    """
    weights = population / population.sum(axis=1, keepdims=True)
    gap = national - (weights * rate).sum(axis=1)
    normalised = loading / (weights * loading).sum(axis=1, keepdims=True)
    adjustment = normalised * gap[:, None]
    return rate + adjustment, adjustment
