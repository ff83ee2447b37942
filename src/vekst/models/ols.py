"""The OLS baseline: the published procedure, labelled like the Bayesian output.

Two estimators on the same arrays the Bayesian model sees:

* **pooled** -- one OLS over all municipality-years with every covariate observed, with a
  year fixed effect standing in for the common national net-immigration term;
* **year by year** -- one OLS per year (intercept + covariates), the table the
  hierarchical model pools.

Residual attractiveness is the mean pooled-OLS residual of each municipality (actual minus
expected net migration, % per year), as in the published barometer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from vekst.models.data import MigrationData

__all__ = ["OLSResult", "fit_ols"]


@dataclass(frozen=True)
class OLSResult:
    """Coefficients, standard errors and residual attractiveness from OLS.

    Attributes
    ----------
    beta, beta_se
        Pooled coefficients and their classical standard errors, dim ``covariate``.
    year_effect
        Pooled model's year fixed effects, dim ``year``.
    r2, n_obs
        Pooled model's R² and number of municipality-years used.
    beta_year, beta_year_se
        Year-by-year coefficients, dims ``(covariate, year)``; NaN where a year lacks data.
    r2_year
        Year-by-year R², dim ``year``.
    attractiveness
        Mean pooled-model residual per municipality (% per year), dim ``municipality``.
    """

    beta: xr.DataArray
    beta_se: xr.DataArray
    year_effect: xr.DataArray
    r2: float
    n_obs: int
    beta_year: xr.DataArray
    beta_year_se: xr.DataArray
    r2_year: xr.DataArray
    attractiveness: xr.DataArray

    def table(self) -> xr.Dataset:
        """Everything as one labelled dataset."""
        return xr.Dataset(
            {
                "beta": self.beta,
                "beta_se": self.beta_se,
                "beta_year": self.beta_year,
                "beta_year_se": self.beta_year_se,
                "r2_year": self.r2_year,
                "year_effect": self.year_effect,
                "attractiveness": self.attractiveness,
            },
            attrs={"r2": self.r2, "n_obs": self.n_obs, "method": "OLS"},
        )


def _ols(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Least squares with classical standard errors: (coef, se, residuals, R²)."""
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    dof = max(len(y) - np.linalg.matrix_rank(design), 1)
    sigma2 = residuals @ residuals / dof
    covariance = sigma2 * np.linalg.pinv(design.T @ design)
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    total = y - y.mean()
    r2 = 1.0 - (residuals @ residuals) / (total @ total) if total @ total > 0 else np.nan
    return coef, se, residuals, float(r2)


def _constant_within(values: np.ndarray, complete: np.ndarray) -> bool:
    """Whether a (municipality, year) covariate is constant within every municipality."""
    masked = np.where(complete, values, np.nan)
    with warnings.catch_warnings():
        # Municipalities without a complete row give all-NaN slices (spread 0 below).
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(masked, axis=1) - np.nanmin(masked, axis=1)
    return bool(np.all(np.nan_to_num(spread) < 1e-12))


def fit_ols(
    data: MigrationData, *, min_obs_per_year: int = 10, municipality_effects: bool = False
) -> OLSResult:
    """Fit the pooled and year-by-year OLS baselines.

    Parameters
    ----------
    data
        The arrays the Bayesian model sees (:func:`vekst.models.data.migration_data`).
    min_obs_per_year
        Years with fewer complete observations get NaN year-by-year coefficients.
    municipality_effects
        Add a fixed effect per municipality to the pooled model (two-way fixed effects),
        the OLS counterpart of the Bayesian model's attractiveness: coefficients then come
        from changes within municipalities only. Covariates constant within every
        municipality (centrality) are not identified and get NaN; ``attractiveness``
        stays the mean residual (near 0 here, the levels sit in the fixed effects).

    Returns
    -------
    OLSResult
    """
    covariates = list(data.covariates)
    n_cov = len(covariates)
    n_muni, n_year = data.rate.shape
    complete = data.observed & data.x_available.all(axis=0)
    year_coords = {"year": [int(y) for y in data.years]}
    muni_coords = {"municipality": [str(m) for m in data.municipalities]}

    used_years = np.flatnonzero(complete.any(axis=0))
    rows_m, rows_t = np.nonzero(complete)
    y = data.rate[rows_m, rows_t]
    year_dummies = (rows_t[:, None] == used_years[None, :]).astype(float)
    x = data.x[:, rows_m, rows_t].T
    # Centrality is constant in time, so it stays identified next to year fixed effects.
    columns = [year_dummies, x]
    if municipality_effects:
        # One municipality dropped: the year dummies already hold the intercept.
        used_munis = np.unique(rows_m)[1:]
        columns.append((rows_m[:, None] == used_munis[None, :]).astype(float))
    coef, se, residuals, r2 = _ols(np.column_stack(columns), y)
    coef, se = coef[: len(used_years) + n_cov], se[: len(used_years) + n_cov]
    if municipality_effects:
        constant = np.array(
            [_constant_within(data.x[k], complete) for k in range(n_cov)], dtype=bool
        )
        coef[len(used_years) :][constant] = np.nan
        se[len(used_years) :][constant] = np.nan
    year_effect = np.full(n_year, np.nan)
    year_effect[used_years] = coef[: len(used_years)]

    residual_grid = np.full((n_muni, n_year), np.nan)
    residual_grid[rows_m, rows_t] = residuals
    with warnings.catch_warnings():
        # NaN, without a warning, for municipalities with no complete row.
        warnings.simplefilter("ignore", RuntimeWarning)
        attractiveness = np.nanmean(residual_grid, axis=1)

    beta_year = np.full((n_cov, n_year), np.nan)
    beta_year_se = np.full((n_cov, n_year), np.nan)
    r2_year = np.full(n_year, np.nan)
    for t in range(n_year):
        rows = np.flatnonzero(complete[:, t])
        if rows.size < max(min_obs_per_year, n_cov + 2):
            continue
        design = np.column_stack([np.ones(rows.size), data.x[:, rows, t].T])
        coef_t, se_t, _, r2_t = _ols(design, data.rate[rows, t])
        beta_year[:, t], beta_year_se[:, t], r2_year[t] = coef_t[1:], se_t[1:], r2_t

    cov_coords = {"covariate": covariates}
    return OLSResult(
        beta=xr.DataArray(coef[len(used_years) :], dims="covariate", coords=cov_coords),
        beta_se=xr.DataArray(se[len(used_years) :], dims="covariate", coords=cov_coords),
        year_effect=xr.DataArray(year_effect, dims="year", coords=year_coords),
        r2=r2,
        n_obs=int(y.size),
        beta_year=xr.DataArray(
            beta_year, dims=("covariate", "year"), coords={**cov_coords, **year_coords}
        ),
        beta_year_se=xr.DataArray(
            beta_year_se, dims=("covariate", "year"), coords={**cov_coords, **year_coords}
        ),
        r2_year=xr.DataArray(r2_year, dims="year", coords=year_coords),
        attractiveness=xr.DataArray(
            attractiveness,
            dims="municipality",
            coords={**muni_coords, "name": ("municipality", [str(n) for n in data.names])},
            attrs={"units": "% of population per year", "method": "mean pooled-OLS residual"},
        ),
    )
