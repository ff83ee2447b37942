"""The methods of a backtest: per-origin inputs and one forecast per method.

Each method turns the panel truncated at an origin into a forecast ``(draw, year,
municipality, age_group)``; see :mod:`vekst.evaluate.backtest` for the list. The Bayesian
model goes through the library's one pipeline (:mod:`vekst.workflow`); the baselines are
deterministic rules projected by the same engine (:mod:`vekst.evaluate.baselines`) or, for
``ccm<k>``, by the planners' spreadsheet (:mod:`vekst.evaluate.ccm`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from vekst.evaluate.scoring import PLANNER_AGE_GROUPS, TOTAL, age_group_population
from vekst.evaluate.truncation import BacktestError
from vekst.models.spec import ModelSpec, load_spec

if TYPE_CHECKING:
    from vekst.evaluate.backtest import BacktestConfig
    from vekst.fit import Diagnostics
    from vekst.workflow import SamplerConfig

__all__ = [
    "PRIOR_EMPLOYMENT_PROFILE",
    "REFIT_TARGET_ACCEPT",
    "OriginInputs",
    "employment_profile",
    "forecast_method",
    "parse_methods",
    "refit_settings",
    "resolve_spec",
]

_NAIVE = re.compile(r"^naive(?P<years>\d+)$")
_CCM = re.compile(r"^ccm(?P<years>\d+)$")

#: Parameters of :func:`vekst.features.employment_curve` used for DS when no employment
#: counts exist before the origin: an 80 % prime-age plateau entered around 19 and left
#: around 64, a round-number profile chosen before looking at any employment data.
PRIOR_EMPLOYMENT_PROFILE: dict[str, float] = {
    "plateau": 0.8,
    "rise_age": 19.0,
    "rise_scale": 2.0,
    "fall_age": 64.0,
    "fall_scale": 3.0,
}


def parse_methods(methods: Sequence[str]) -> list[str]:
    """Validated method names, in order.

    Raises
    ------
    BacktestError
        For an unknown or repeated method.
    """
    out = []
    for method in methods:
        method = str(method)
        if method in ("bayes", "ols", "no_migration") or _NAIVE.match(method) or _CCM.match(method):
            out.append(method)
        else:
            raise BacktestError(
                f"unknown backtest method {method!r}; use bayes, ols, naive<k> (e.g. naive5), "
                "ccm<k> (e.g. ccm5) or no_migration."
            )
    if len(set(out)) != len(out):
        raise BacktestError(f"methods are repeated: {list(methods)}.")
    return out


# --- per-origin inputs ---------------------------------------------------------------------
def employment_profile(truncated: xr.Dataset) -> tuple[xr.DataArray, str]:
    """Employment rates for DS from the truncated panel, or the a-priori profile, and why."""
    from vekst.features import employment_curve, estimate_employment_profile
    from vekst.features.jobs import FeatureError

    if "employed_residence" in truncated and bool(truncated["employed_residence"].notnull().any()):
        try:
            profile = estimate_employment_profile(truncated)
            return profile, "estimated from employment counts before the origin"
        except FeatureError as error:  # too little data: fall back, and say so
            reason = f"estimation failed ({error}); "
    else:
        reason = "no employment counts before the origin; "
    ages = truncated["age"].values
    curve = employment_curve(ages, **PRIOR_EMPLOYMENT_PROFILE)
    profile = xr.DataArray(
        np.repeat(curve[:, None], 2, axis=1),
        dims=("age", "sex"),
        coords={"age": ages, "sex": ["female", "male"]},
        attrs={"method": "a-priori profile", **PRIOR_EMPLOYMENT_PROFILE},
    )
    return profile, reason + f"a-priori profile {PRIOR_EMPLOYMENT_PROFILE}"


def resolve_spec(spec, truncated, employment_rate, origin) -> tuple[ModelSpec, str]:
    """The spec for one origin and the reason it was chosen."""
    from vekst.features.jobs import FeatureError
    from vekst.models.data import migration_data

    chosen = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    vra = [c for c in chosen.migration.covariates if c.startswith("vra")]
    if not vra:
        return chosen, f"spec '{chosen.name}' (no job-growth covariates)"
    try:
        data = migration_data(truncated, chosen, employment_rate=employment_rate)
        index = [data.covariates.index(c) for c in vra]
        available = all(bool(data.x_available[i].any()) for i in index)
    except FeatureError:
        available = False
    if available:
        return chosen, f"spec '{chosen.name}' (VRA observed before {origin})"
    if spec is None:
        fallback = load_spec("no_jobs")
        return fallback, (
            f"spec 'no_jobs' (centrality + DS): job growth (VRA) is not observed in any year "
            f"before {origin}, so the default spec '{chosen.name}' cannot use it"
        )
    return chosen, (
        f"spec '{chosen.name}' as given, but VRA is missing in every year before {origin}: "
        "its coefficients rest on the prior alone and the projection holds job growth at "
        "the national rate"
    )


def _forecast_groups(projection: xr.Dataset, years: np.ndarray) -> xr.DataArray:
    """Projected population by planner age group and total, (draw, year, municipality, group)."""
    labels = [label for label, _, _ in PLANNER_AGE_GROUPS]
    if (
        "population_age_group" in projection
        and [str(g) for g in projection["age_group"].values] == labels
    ):
        groups = projection["population_age_group"]
        total = projection["population_total"].expand_dims(age_group=[TOTAL])
        out = xr.concat([groups.astype(np.float64), total], dim="age_group")
    elif "population" in projection:
        out = age_group_population(projection["population"].astype(np.float64))
    else:
        raise BacktestError(
            "the projection holds neither 'population_age_group' with the planner groups nor "
            "'population' by single age; run it with detail='full' or 'age_groups'."
        )
    out = out.sel(year=years).transpose("draw", "year", "municipality", "age_group")
    keep = [c for c in out.coords if c in out.dims]
    out = out.reset_coords([c for c in out.coords if c not in keep], drop=True)
    return out.astype(np.float32)


# --- one method ----------------------------------------------------------------------------
@dataclass
class OriginInputs:
    """What every method of one origin shares (the note collects what they report)."""

    truncated: xr.Dataset
    origin: int
    end_year: int
    seed: int
    profile: xr.DataArray
    spec: ModelSpec | None
    note: dict


#: Target acceptance of a second fit after divergent transitions.
REFIT_TARGET_ACCEPT = 0.99


def refit_settings(sampler: SamplerConfig, diagnostics: Diagnostics) -> SamplerConfig:
    """Sampler settings for a second fit of an origin whose first fit failed the gate.

    Aimed at what failed: divergent transitions get a smaller step (target acceptance
    :data:`REFIT_TARGET_ACCEPT`), any other problem (a high R-hat, a low effective sample
    size or BFMI) twice the draws. The seed stays: the second fit is reproducible like
    the first.

    Parameters
    ----------
    sampler
        The first fit's :class:`vekst.workflow.SamplerConfig`.
    diagnostics
        The first fit's :class:`vekst.fit.Diagnostics`.
    """
    changes: dict = {}
    if diagnostics.divergences > 0:
        changes["target_accept"] = max(sampler.target_accept, REFIT_TARGET_ACCEPT)
    mixing = [p for p in diagnostics.problems if "divergent" not in p]
    if mixing or not changes:
        changes["draws"] = 2 * sampler.draws
    return sampler.with_overrides(**changes)


def _sampler_note(sampler: SamplerConfig) -> dict:
    """The settings of a fit that the notes record."""
    return {"draws": sampler.draws, "tune": sampler.tune, "target_accept": sampler.target_accept}


def _bayes(inputs: OriginInputs, config: BacktestConfig) -> xr.Dataset:
    """Fit and project through the library's pipeline; the gate is recorded, not enforced."""
    # imported here: pymc is slow to import and the baselines do not need it
    from vekst.workflow import SamplerConfig, fit_panel, project_fit

    sampler = SamplerConfig(
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        target_accept=config.target_accept,
        seed=inputs.seed,
        sampler=config.sampler,
        progress=config.progress,
    )
    fit = fit_panel(inputs.truncated, inputs.spec, sampler, employment_rate=inputs.profile)
    if config.refit_unconverged and not fit.diagnostics.converged:
        retry = refit_settings(sampler, fit.diagnostics)
        inputs.note["first_fit"] = {
            "sampler": _sampler_note(sampler),
            "diagnostics": fit.diagnostics.as_dict(),
        }
        inputs.note["refit_sampler"] = _sampler_note(retry)
        fit = fit_panel(inputs.truncated, inputs.spec, retry, employment_rate=inputs.profile)
    diagnostics = fit.diagnostics.as_dict()
    inputs.note["diagnostics"] = diagnostics
    inputs.note["converged"] = bool(fit.diagnostics.converged)
    projection = project_fit(
        fit,
        inputs.truncated,
        allow_unconverged=True,
        n_draws=config.n_draws,
        seed=inputs.seed,
        base_year=inputs.origin,
        end_year=inputs.end_year,
        employment_rate=inputs.profile,
        detail="age_groups",
        record_components=False,
    )
    inputs.note["schedule_calibrated_on"] = schedule_calibration(projection)
    return projection


def schedule_calibration(projection: xr.Dataset) -> list[int] | None:
    """The years the projection's migration age schedules were calibrated on, from its
    assumptions (``None``: the panel was too short to calibrate, or no schedule was used).

    The backtest records it per origin, so its headline can show the bands of origins with
    calibrated schedules apart from those of short panels.
    """
    import json

    assumptions = json.loads(projection.attrs.get("assumptions", "{}"))
    years = assumptions.get("migration_schedule_calibrated_on")
    return [int(y) for y in years] if years else None


def _baseline(method: str, inputs: OriginInputs) -> xr.Dataset:
    """Project a baseline's deterministic migration rule with the projection engine."""
    from vekst.projection import project

    truncated, origin, note = inputs.truncated, inputs.origin, inputs.note
    if method == "ols":
        from vekst.evaluate.baselines import ols_draws
        from vekst.models.data import migration_data

        migration = migration_data(truncated, inputs.spec, employment_rate=inputs.profile)
        draws = ols_draws(migration)
        note["ols"] = {
            "r2": draws.attrs["ols_r2"],
            "beta": dict(
                zip(draws.attrs["covariates"], draws["beta_mu"].values[0].tolist(), strict=True)
            ),
            "year_effect": float(draws["year_effect_mu"].values[0]),
        }
    elif method == "no_migration":
        draws = None
    else:
        from vekst.evaluate.baselines import naive_draws

        draws = naive_draws(truncated, origin, int(_NAIVE.match(method)["years"]))
        note[f"{method}_years"] = draws.attrs["naive_years"]
    return project(
        truncated,
        draws,
        base_year=origin,
        end_year=inputs.end_year,
        seed=inputs.seed,
        employment_rate=inputs.profile,
        detail="age_groups",
        record_components=False,
    )


def forecast_method(
    method: str, inputs: OriginInputs, config: BacktestConfig, target: np.ndarray
) -> xr.DataArray:
    """One method's forecast by planner age group, ``(draw, year, municipality, age_group)``.

    Parameters
    ----------
    method
        A method name (see :func:`parse_methods`).
    inputs
        The origin's truncated panel, seed, employment profile and spec; ``inputs.note``
        receives what the method reports (diagnostics, baseline details).
    config
        The backtest settings (sampler, draws).
    target
        Years to return.
    """
    if method == "bayes":
        return _forecast_groups(_bayes(inputs, config), target)
    match = _CCM.match(method)
    if match:
        from vekst.evaluate.ccm import ccm_projection

        population = ccm_projection(
            inputs.truncated, inputs.origin, inputs.end_year, int(match["years"])
        )
        inputs.note[f"{method}_years"] = population.attrs["migration_years"]
        groups = age_group_population(population.sel(year=target)).expand_dims(draw=[0])
        return groups.transpose("draw", "year", "municipality", "age_group").astype(np.float32)
    return _forecast_groups(_baseline(method, inputs), target)
