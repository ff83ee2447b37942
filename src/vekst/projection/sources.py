"""The sources of a projection's uncertainty, and how each is held at its mean.

A stochastic projection draws from six sources. Holding one of them at its mean while the
others keep the same random numbers (the same seed) shows how much of the band it makes;
:func:`vekst.uncertainty.uncertainty_by_source` does this for each source in turn.

``parameters``
    Posterior uncertainty of the fitted parameters (coefficients, attractiveness, process
    means, loadings, persistence, the last fitted states, fertility and mortality
    deviations). Held: every draw gets the posterior mean.
``common_shocks``
    Future innovations of the shared processes: national net migration, the year effect,
    the year coefficients and the county shocks where fitted. Held: their innovation sds
    are zero, so the processes follow their conditional mean path from the last fitted
    year.
``local_shocks``
    Future municipal deviations (persistent and transient) and the future steps of the
    attractiveness walk where fitted. Held: their innovation scale is zero, so a
    persistent deviation decays from its last fitted value and attractiveness stays at
    its last fitted level.
``age_schedule``
    Uncertainty of each municipality's migration age-sex schedule and its yearly residual
    patterns. Held: the posterior mean schedule, no yearly patterns.
``fertility``
    The national TFR path, each municipality's yearly deviation of births from its level
    beyond chance (:mod:`vekst.projection.birth_dispersion`) and the demographic (Poisson)
    noise of births. Held: the mean TFR path of the draws and expected births at each
    municipality's level.
``mortality``
    Lee-Carter shocks of the mortality index and the demographic (binomial) noise of
    deaths. Held: the mean mortality path and expected survivors.
"""

from __future__ import annotations

from collections.abc import Iterable

import xarray as xr

from vekst.errors import InputError

__all__ = ["SOURCES", "UnknownSourceError", "check_sources", "hold_draws"]

SOURCES: tuple[str, ...] = (
    "parameters",
    "common_shocks",
    "local_shocks",
    "age_schedule",
    "fertility",
    "mortality",
)

#: Innovation sds of the shared processes (``common_shocks``) and of the local terms.
_COMMON_SDS = ("year_effect_sigma", "beta_sigma", "national_sigma", "regional_sigma")
_LOCAL_SDS = ("sigma_base", "sigma_pop", "attract_walk_sd")


class UnknownSourceError(InputError):
    """A source name that is not one of :data:`SOURCES`."""


def check_sources(held: Iterable[str] | None) -> frozenset[str]:
    """The held sources as a set, after checking each name.

    Raises
    ------
    UnknownSourceError
        Naming the unknown source and listing the known ones.
    """
    names = frozenset(held or ())
    unknown = sorted(names - set(SOURCES))
    if unknown:
        raise UnknownSourceError(
            f"unknown source(s) of uncertainty {unknown}; choose from {list(SOURCES)}."
        )
    return names


def hold_draws(draws: xr.Dataset, held: frozenset[str]) -> xr.Dataset:
    """Posterior draws with the draw-level sources in ``held`` set to their mean.

    Parameters
    ----------
    draws
        Selected draws in the projection contract (a ``draw`` dimension).
    held
        From :func:`check_sources`; ``parameters``, ``common_shocks`` and ``local_shocks``
        act here, the others in the projection's vital and age-schedule inputs.

    Returns
    -------
    xarray.Dataset
        Same variables, dims and draw count.
    """
    out = draws
    if "parameters" in held:
        means = {
            name: out[name].mean("draw").broadcast_like(out[name]).astype(out[name].dtype)
            for name in out.data_vars
            if "draw" in out[name].dims and out[name].dtype.kind == "f"
        }
        out = out.assign(means)
    for source, names in (("common_shocks", _COMMON_SDS), ("local_shocks", _LOCAL_SDS)):
        if source in held:
            out = out.assign({name: out[name] * 0.0 for name in names if name in out})
    return out
