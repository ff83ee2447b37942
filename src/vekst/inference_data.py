"""Turning a sampler's raw output into a self-describing ArviZ ``InferenceData``.

The samplers return every free variable, including the raw standard-normal copies of
non-centred parameters (``*_z``) and nutpie's unconstrained copies (``*_log__``,
``*_zerosum__``). Users read the meaningful quantities, so the posterior keeps only
those; the data the model saw go to ``observed_data`` and ``constant_data``, and the
pointwise log-likelihood of the observations to ``log_likelihood`` so that ``az.loo`` and
``az.compare`` work on a fit. Variables carry a long name and units; municipalities carry
their names as a coordinate.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm

__all__ = [
    "VARIABLE_LABELS",
    "add_data_groups",
    "add_log_likelihood",
    "is_raw_variable",
    "label_variables",
    "tidy_posterior",
]

#: Long name and units of the variables users read (``attrs`` of the posterior).
VARIABLE_LABELS: dict[str, tuple[str, str]] = {
    "beta_mu": ("pooled coefficient of the covariate", "% of population per covariate unit"),
    "beta_sigma": ("sd of the coefficient across years", "% of population per covariate unit"),
    "beta_year": ("coefficient of the covariate in the year", "% of population per unit"),
    "year_effect": ("year effect (national level of net migration)", "% of population"),
    "year_effect_mu": ("mean year effect", "% of population"),
    "year_effect_sigma": ("sd of the year effects", "% of population"),
    "attractiveness": ("residential attractiveness of the municipality", "% of population"),
    "attract_region": ("attractiveness of the labour-market region", "% of population"),
    "attract_county": ("attractiveness of the county", "% of population"),
    "attract_region_sigma": ("sd of regional attractiveness", "% of population"),
    "attract_county_sigma": ("sd of county attractiveness", "% of population"),
    "attract_municipality_sigma": ("sd of municipal attractiveness", "% of population"),
    "attract_drift": ("yearly drift of attractiveness", "% of population per year"),
    "sigma_base": ("noise sd of a large municipality", "% of population"),
    "sigma_pop": ("noise sd at 10,000 inhabitants beyond sigma_base", "% of population"),
    "fert_dev": ("log fertility relative to national rates", "log ratio"),
    "fert_region": ("regional log fertility deviation", "log ratio"),
    "fert_region_sigma": ("sd of regional fertility deviations", "log ratio"),
    "fert_municipality_sigma": ("sd of municipal fertility deviations", "log ratio"),
    "mort_dev": ("log mortality relative to national rates", "log ratio"),
    "mort_region": ("regional log mortality deviation", "log ratio"),
    "mort_region_sigma": ("sd of regional mortality deviations", "log ratio"),
    "mort_municipality_sigma": ("sd of municipal mortality deviations", "log ratio"),
    "rho": ("AR(1) coefficient of the state process", "1"),
    "state_corr": ("correlation of the state processes' innovations", "1"),
    "national_mu": ("mean national net migration", "% of national population"),
    "national_sigma": ("sd of national net migration innovations", "% of national population"),
    "loading_coef": ("effect on the settlement loading per unit of the term", "1"),
    "loading": ("share of national net migration settled here, relative to 1", "1"),
    "persistence": ("AR(1) coefficient of the municipality's deviations", "1"),
    "persistence_intercept": ("logit persistence at median size", "logit"),
    "persistence_slope": ("change of logit persistence per sd of log population", "logit"),
    "last_deviation": ("deviation in the last fitted year", "% of population"),
    "regional_shock": ("county shock shared by the county's municipalities", "% of population"),
    "regional_sigma": ("sd of the county shocks' yearly innovations", "% of population"),
    "regional_persistence": ("AR(1) coefficient of the county shocks", "1"),
    "attract_walk_sigma": (
        "yearly sd of the attractiveness walk at the mean size",
        "% of population",
    ),
    "attract_walk_slope": ("change of the walk's log sd per sd of log population", "1"),
    "attract_walk_sd": ("yearly sd of the municipality's attractiveness walk", "% of population"),
    "attract_walk_last": (
        "attractiveness walk in the last fitted year, around the mean",
        "% of population",
    ),
    "net_migration_obs": ("net migration", "% of population"),
    "births_obs": ("live births", "births"),
    "deaths_obs": ("deaths", "deaths"),
}


def is_raw_variable(name: str) -> bool:
    """Whether ``name`` is a raw sampler copy (``*_z``, nutpie's ``*_log__``, the unit-scale
    ``rho_unit`` or LKJ partial correlations)."""
    return name.endswith(("__", "_z", "_unit", "_cpc"))


def tidy_posterior(idata: az.InferenceData) -> az.InferenceData:
    """Drop the raw sampler copies from the posterior (in place; returned for chaining)."""
    posterior = idata.posterior
    raw = [name for name in posterior.data_vars if is_raw_variable(str(name))]
    if "beta_year" in posterior:
        # Centred rows ``beta_year_<covariate>`` are stacked into ``beta_year``.
        raw += [n for n in posterior.data_vars if str(n).startswith("beta_year_")]
    posterior = posterior.drop_vars(raw)
    used = {dim for var in posterior.data_vars.values() for dim in var.dims}
    # The raw copies' own dims (e.g. nutpie's ``beta_sigma_log___dim_0``) go with them.
    unused = [c for c in posterior.coords if not set(posterior[c].dims) <= used]
    idata.posterior = posterior.drop_vars(unused)
    return idata


def label_variables(idata: az.InferenceData, names_by_code: dict[str, str]) -> None:
    """Attach long names and units, and municipality names as a ``municipality_name`` coord.

    Parameters
    ----------
    idata
        A fit (changed in place).
    names_by_code
        Municipality name by code.
    """
    for group in ("posterior", "observed_data", "log_likelihood"):
        if group not in idata.groups():
            continue
        dataset = idata[group]
        for name in dataset.data_vars:
            long_name, units = VARIABLE_LABELS.get(str(name), (None, None))
            if long_name:
                dataset[name].attrs.update({"long_name": long_name, "units": units})
        if "municipality" in dataset.dims:
            codes = [str(c) for c in dataset["municipality"].values]
            dataset = dataset.assign_coords(
                municipality_name=("municipality", [names_by_code.get(c, c) for c in codes])
            )
        setattr(idata, group, dataset)


def add_data_groups(idata: az.InferenceData, model: pm.Model) -> None:
    """Add ``observed_data`` and ``constant_data`` from the model's data (in place)."""
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )

    coords, dims = coords_and_dims_for_inferencedata(model)
    observed = {k: np.asarray(v) for k, v in find_observations(model).items()}
    constants = {k: np.asarray(v) for k, v in find_constants(model).items()}
    extra = az.from_dict(
        observed_data=observed, constant_data=constants, coords=coords, dims=dims
    )
    for group in ("observed_data", "constant_data"):
        if group in idata.groups():
            delattr(idata, group)
    idata.extend(extra)


def add_log_likelihood(
    idata: az.InferenceData, model: pm.Model, var_names: tuple[str, ...] | None = None
) -> None:
    """Add the pointwise log-likelihood of the observations (float32) to ``idata``.

    Must run before :func:`tidy_posterior`: PyMC evaluates the likelihood from the free
    variables, raw copies included.

    Parameters
    ----------
    idata
        A fit with every free variable in its posterior (changed in place).
    model
        The model that was sampled.
    var_names
        Observed variables; all by default.
    """
    names = list(var_names) if var_names else [rv.name for rv in model.observed_RVs]
    free = {rv.name for rv in model.free_RVs}
    posterior = idata.posterior[[n for n in idata.posterior.data_vars if n in free]]
    with model:
        loglik = pm.compute_log_likelihood(
            az.InferenceData(posterior=posterior),
            var_names=names,
            extend_inferencedata=False,
            progressbar=False,
        )
    # float32 halves the size; ~7 significant digits is ample for LOO weights.
    group = loglik.astype(np.float32)
    if "log_likelihood" in idata.groups():
        delattr(idata, "log_likelihood")
    idata.add_groups({"log_likelihood": group})
