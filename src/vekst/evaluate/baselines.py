"""Baseline forecasts as degenerate posterior draws, projected by the same engine.

A baseline here is a net-migration rule; the cohort-component projection
(:func:`vekst.projection.project`) does the rest, exactly as for the Bayesian draws, so the
comparison isolates the migration model. Every baseline is one draw with zero spread
(``beta_sigma``, ``year_effect_sigma``, ``sigma_base``, ``sigma_pop`` all 0) in the
projection contract, so the projected net migration rate of municipality ``m`` is::

    rate[m, t] = year_effect + sum_k beta_k * x[k, m, t] + attractiveness[m]

* **OLS** (:func:`ols_draws`): ``beta`` = pooled OLS coefficients, ``year_effect`` = the
  mean of the fitted year fixed effects, ``attractiveness`` = the mean OLS residual.
* **naive** (:func:`naive_draws`): no covariates, ``year_effect`` = 0 and
  ``attractiveness`` = the municipality's mean net migration rate over the last ``k``
  calendar years before the origin.
* **no migration**: :func:`vekst.projection.project` with ``draws=None``.

Baselines carry no fertility or mortality deviations (national rates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from vekst.errors import InputError
from vekst.models.data import MigrationData
from vekst.models.ols import OLSResult, fit_ols

__all__ = ["BaselineError", "naive_draws", "naive_rates", "ols_draws", "point_draws"]


class BaselineError(InputError):
    """A baseline cannot be built from the data given; the message says why."""


def point_draws(
    municipalities: Sequence[str],
    *,
    attractiveness: np.ndarray,
    covariates: Sequence[str] = (),
    beta: Sequence[float] | np.ndarray = (),
    year_effect: float = 0.0,
    centers: Mapping[str, float] | None = None,
    method: str = "point",
) -> xr.Dataset:
    """One deterministic draw in the projection contract.

    Parameters
    ----------
    municipalities
        Municipality codes, in the order of ``attractiveness``.
    attractiveness
        Municipality term of the rate, % of the 1 January population per year.
    covariates, beta
        Covariate names and their coefficients (same length).
    year_effect
        Common term of the rate, % per year.
    centers
        ``centrality_center`` / ``ds_center`` of the features the coefficients were fitted
        on (absent or 0: the projection centres on the mean over municipalities, as the
        features do).
    method
        Label stored in ``attrs["method"]``.

    Returns
    -------
    xarray.Dataset
        ``beta_mu``, ``beta_sigma`` (draw, covariate), ``year_effect_mu``,
        ``year_effect_sigma``, ``sigma_base``, ``sigma_pop`` (draw), ``attractiveness``
        (draw, municipality) with one draw and zero spread.
    """
    covariates = [str(c) for c in covariates]
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    if beta.size != len(covariates):
        raise BaselineError(
            f"{len(covariates)} covariates {covariates} but {beta.size} coefficients; pass "
            "one coefficient per covariate."
        )
    attractiveness = np.asarray(attractiveness, dtype=np.float64).reshape(-1)
    codes = [str(m) for m in municipalities]
    if attractiveness.size != len(codes):
        raise BaselineError(
            f"{attractiveness.size} attractiveness values for {len(codes)} municipalities."
        )
    if not np.all(np.isfinite(attractiveness)) or not np.all(np.isfinite(beta)):
        raise BaselineError(
            "a baseline coefficient or attractiveness value is not finite; fill missing "
            "municipalities (e.g. with 0) before building the draws."
        )
    centers = dict(centers or {})
    zero = np.zeros(1)
    return xr.Dataset(
        {
            "beta_mu": (("draw", "covariate"), beta[None, :]),
            "beta_sigma": (("draw", "covariate"), np.zeros((1, beta.size))),
            "year_effect_mu": (("draw",), np.array([float(year_effect)])),
            "year_effect_sigma": (("draw",), zero.copy()),
            "attractiveness": (("draw", "municipality"), attractiveness[None, :]),
            "sigma_base": (("draw",), zero.copy()),
            "sigma_pop": (("draw",), zero.copy()),
        },
        coords={"draw": [0], "covariate": covariates, "municipality": codes},
        attrs={
            "covariates": covariates,
            "centrality_center": float(centers.get("centrality_center", 0.0)),
            "ds_center": float(centers.get("ds_center", 0.0)),
            "method": method,
        },
    )


def ols_draws(migration: MigrationData, ols: OLSResult | None = None) -> xr.Dataset:
    """The OLS attractiveness model as one deterministic draw.

    Parameters
    ----------
    migration
        The arrays the OLS was (or is to be) fitted on.
    ols
        A fitted :func:`vekst.models.ols.fit_ols` result; fitted here when omitted.

    Returns
    -------
    xarray.Dataset
        See :func:`point_draws`; ``attrs`` add ``ols_r2``, ``ols_n_obs`` and
        ``municipalities_without_residual`` (their attractiveness is set to 0).

    Raises
    ------
    BaselineError
        If the OLS has no complete observation (every covariate missing in every year).
    """
    if ols is None:
        complete = migration.observed & migration.x_available.all(axis=0)
        if not complete.any():
            raise BaselineError(
                f"no municipality-year has every covariate of {list(migration.covariates)} "
                "observed, so the OLS cannot be fitted; use a spec without the missing "
                "covariates (e.g. load_spec('no_jobs') when job data are absent)."
            )
        ols = fit_ols(migration)
    year_effect = float(np.nanmean(ols.year_effect.values))
    attractiveness = np.asarray(ols.attractiveness.values, dtype=np.float64)
    missing = ~np.isfinite(attractiveness)
    draws = point_draws(
        [str(m) for m in migration.municipalities],
        attractiveness=np.where(missing, 0.0, attractiveness),
        covariates=list(migration.covariates),
        beta=ols.beta.sel(covariate=list(migration.covariates)).values,
        year_effect=year_effect,
        centers=migration.centers,
        method="ols",
    )
    draws.attrs.update(
        ols_r2=float(ols.r2),
        ols_n_obs=int(ols.n_obs),
        municipalities_without_residual=[
            str(m) for m in np.asarray(migration.municipalities)[missing]
        ],
    )
    return draws


def naive_rates(panel: xr.Dataset, origin: int, years: int) -> xr.DataArray:
    """Mean net migration rate of each municipality over the ``years`` before ``origin``.

    Parameters
    ----------
    panel
        Panel with ``net_migration_total`` (or ``net_migration``) and ``population``.
    origin
        First projected year; calendar years ``origin - years`` .. ``origin - 1`` are used
        where the panel has them.
    years
        Length of the window.

    Returns
    -------
    xarray.DataArray
        Dim ``municipality``, % of the 1 January population per year; ``attrs["years"]``
        lists the calendar years averaged (fewer than ``years`` when the panel is short).

    Raises
    ------
    BaselineError
        If no year of the window has net migration.
    """
    from vekst.features import net_migration_rate

    if years < 1:
        raise BaselineError(f"the naive window must be at least one year; got {years}.")
    rate = net_migration_rate(panel)
    window = rate.sel(year=(rate["year"] >= origin - years) & (rate["year"] < origin))
    has_data = np.asarray(window.notnull().any("municipality").values)
    window = window.isel(year=np.flatnonzero(has_data))
    if window.sizes["year"] == 0:
        raise BaselineError(
            f"no net migration in {origin - years}-{origin - 1}; the naive baseline needs at "
            f"least one calendar year before the origin {origin}."
        )
    mean = window.mean("year", skipna=True)
    mean.attrs = {
        "units": "% of population on 1 January per year",
        "years": [int(y) for y in window["year"].values],
    }
    return mean


def naive_draws(panel: xr.Dataset, origin: int, years: int = 5) -> xr.Dataset:
    """The naive baseline (mean rate of the last ``years`` years) as one draw.

    Parameters
    ----------
    panel
        Panel truncated at the origin (see :func:`vekst.evaluate.truncate_panel`).
    origin
        First projected year.
    years
        Length of the averaging window.

    Returns
    -------
    xarray.Dataset
        See :func:`point_draws`; ``attrs["naive_years"]`` lists the years averaged.
    """
    rates = naive_rates(panel, origin, years)
    values = np.asarray(rates.values, dtype=np.float64)
    # A municipality without any rate in the window keeps its population (rate 0).
    values = np.where(np.isfinite(values), values, 0.0)
    draws = point_draws(
        [str(m) for m in rates["municipality"].values],
        attractiveness=values,
        method=f"naive{years}",
    )
    draws.attrs["naive_years"] = rates.attrs["years"]
    return draws
