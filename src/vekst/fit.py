"""Fitting, diagnostics, the convergence gate, and saving/loading fits.

nutpie is the default sampler: PyMC's own NUTS is an order of magnitude slower on
machines whose PyTensor has no BLAS (see ``benchmarks/fit_national.py``). numpyro is an
option (``pip install vekst[jax]``).

A fit is stored as an ArviZ ``InferenceData`` netCDF file. Its attrs carry the spec (JSON),
the spec hash, the data hash and the package version; :func:`load_fit` refuses a file
whose stored spec does not hash to the stored hash, whose version differs in major/minor,
or whose data hash differs from the data the caller supplies.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from vekst import __version__
from vekst.compile_cache import compile_key, compile_nutpie
from vekst.errors import FitError, NotConvergedError, UsageError
from vekst.inference_data import (
    add_data_groups,
    add_log_likelihood,
    label_variables,
    tidy_posterior,
)
from vekst.io import atomic_write
from vekst.mcmc_diagnostics import rank_diagnostics
from vekst.models.data import MigrationData, VitalData, data_hash
from vekst.models.joint import build_joint_model
from vekst.models.spec import ModelSpec, spec_from_dict
from vekst.workflow import SamplerConfig

__all__ = [
    "SAMPLERS",
    "Diagnostics",
    "FitIdentityError",
    "FitResult",
    "NotConvergedError",
    "check_fit_panel",
    "check_sampler_settings",
    "diagnose",
    "fit_model",
    "load_fit",
    "projection_draws",
    "require_converged",
    "save_fit",
]

#: Thresholds of the convergence gate.
RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3

#: Samplers fit_model can use.
SAMPLERS: tuple[str, ...] = ("nutpie", "pymc", "numpyro")


class FitIdentityError(FitError):
    """A saved fit does not match the spec, data or package version it is used with."""


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of a fit.

    Attributes
    ----------
    rhat_max, ess_bulk_min, ess_tail_min
        Worst R-hat and smallest bulk/tail ESS over the parameters checked.
    divergences
        Number of divergent transitions after tuning.
    bfmi_min
        Smallest energy BFMI over chains.
    worst
        Names of the parameters with the worst R-hat and bulk ESS.
    problems
        Human-readable reasons the gate fails; empty when it passes.
    """

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    bfmi_min: float
    worst: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def converged(self) -> bool:
        """Whether the convergence gate passes."""
        return not self.problems

    def as_dict(self) -> dict:
        """Plain-data form (stored in the fit's attrs)."""
        return {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": self.divergences,
            "bfmi_min": self.bfmi_min,
            "worst": self.worst,
            "problems": list(self.problems),
            "converged": self.converged,
        }


@dataclass
class FitResult:
    """A fitted model with everything needed to check and reuse it.

    Attributes
    ----------
    idata
        ArviZ InferenceData: ``posterior`` (meaningful variables only, labelled),
        ``sample_stats``, ``log_likelihood`` (pointwise, migration observations; only
        when asked for),
        ``observed_data``, ``constant_data`` and ``fit_data`` (the model's arrays).
    spec
        The model spec.
    diagnostics
        Convergence summary.
    migration
        The migration arrays the model saw (``None`` only for old files without them).
    timings
        Seconds spent compiling, sampling and post-processing (empty for a loaded fit).
    """

    idata: az.InferenceData
    spec: ModelSpec
    diagnostics: Diagnostics
    migration: MigrationData | None
    timings: dict[str, float]


def _checked_variables(idata: az.InferenceData) -> list[str]:
    """Free parameters and the quantities users read (skip raw z-scores and data)."""
    names = []
    for name in idata.posterior.data_vars:
        # Raw z-scores and nutpie's unconstrained copies are not reported to users.
        if name.endswith(("_z", "__")):
            continue
        names.append(str(name))
    return names


def diagnose(
    idata: az.InferenceData,
    *,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    bfmi_min: float = BFMI_MIN,
) -> Diagnostics:
    """Summarise R-hat, bulk and tail ESS, divergences and BFMI, and apply the gate.

    Parameters
    ----------
    idata
        A fit's InferenceData with ``posterior`` and ``sample_stats``.
    rhat_max, ess_min, bfmi_min
        Gate thresholds.

    Returns
    -------
    Diagnostics
    """
    names = _checked_variables(idata)
    posterior = idata.posterior
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    blocks = [
        posterior[name].transpose("chain", "draw", ...).values.reshape(n_chain, n_draw, -1)
        for name in names
    ]
    owner = np.repeat(np.array(names, dtype=object), [block.shape[2] for block in blocks])
    values = rank_diagnostics(np.concatenate(blocks, axis=2))

    def worst(per_quantity: np.ndarray, largest: bool) -> tuple[float, str]:
        # Entries constant by construction (the autoregression of sparse covariates is
        # fixed at 0) have no R-hat: NaN, skipped.
        finite = np.isfinite(per_quantity)
        if not finite.any():
            return (np.nan, "")
        index = np.flatnonzero(finite)[
            (np.argmax if largest else np.argmin)(per_quantity[finite])
        ]
        return float(per_quantity[index]), str(owner[index])

    rhat_value, rhat_name = worst(values["rhat"], largest=True)
    bulk_value, bulk_name = worst(values["ess_bulk"], largest=False)
    tail_value, _ = worst(values["ess_tail"], largest=False)
    stats = idata.sample_stats
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    try:
        bfmi = float(np.min(az.bfmi(idata)))
    except (KeyError, ValueError, AttributeError):
        bfmi = float("nan")
    problems = []
    if not rhat_value <= rhat_max:
        problems.append(f"R-hat {rhat_value:.3f} > {rhat_max} for '{rhat_name}'")
    if not bulk_value >= ess_min:
        problems.append(f"bulk ESS {bulk_value:.0f} < {ess_min:.0f} for '{bulk_name}'")
    if not tail_value >= ess_min:
        problems.append(f"tail ESS {tail_value:.0f} < {ess_min:.0f}")
    if divergences > 0:
        problems.append(f"{divergences} divergent transitions")
    if np.isfinite(bfmi) and bfmi < bfmi_min:
        problems.append(f"BFMI {bfmi:.2f} < {bfmi_min}")
    return Diagnostics(
        rhat_max=rhat_value,
        ess_bulk_min=bulk_value,
        ess_tail_min=tail_value,
        divergences=divergences,
        bfmi_min=bfmi,
        worst={"rhat": rhat_name, "ess_bulk": bulk_name},
        problems=tuple(problems),
    )


def _posterior_shape(idata: az.InferenceData) -> str:
    """``"chains x draws"`` of the posterior, e.g. ``"4x2000"``."""
    return f"{idata.posterior.sizes['chain']}x{idata.posterior.sizes['draw']}"


def stored_diagnostics(idata: az.InferenceData) -> Diagnostics | None:
    """The diagnostics written with the fit, or ``None`` when they may not describe it.

    :func:`fit_model` stores them in the attrs with the posterior's chains and draws; they
    are used only while the posterior still has that shape (a thinned or cut posterior,
    or a file written before the shape was stored, is diagnosed again). Recomputing R-hat
    and ESS over the national fit's 2,251 quantities took 13-17 s on every projection.
    """
    attrs = idata.attrs
    if "diagnostics" not in attrs:
        return None
    if attrs.get("diagnostics_draws") != _posterior_shape(idata):
        return None
    stored = json.loads(attrs["diagnostics"])
    stored.pop("converged", None)
    stored["problems"] = tuple(stored.get("problems", ()))
    return Diagnostics(**stored)


def require_converged(idata: az.InferenceData, allow_unconverged: bool = False) -> Diagnostics:
    """The convergence gate: raise unless the fit converged or the user overrides.

    Parameters
    ----------
    idata
        A fit. Its stored diagnostics (:func:`stored_diagnostics`) are used when they
        describe its posterior; otherwise they are computed.
    allow_unconverged
        Explicit override; the problems are still returned (and should be shown).

    Raises
    ------
    NotConvergedError
        Listing every failed check and what to do.
    """
    diagnostics = stored_diagnostics(idata) or diagnose(idata)
    if not diagnostics.converged and not allow_unconverged:
        raise NotConvergedError(
            "the fit did not converge: "
            + "; ".join(diagnostics.problems)
            + ". Refit with more tuning/draws (--tune, --draws) or a simpler spec; to "
            "project anyway, pass --allow-unconverged (the forecast will be flagged)."
        )
    return diagnostics


def check_sampler_settings(
    *, draws: int, tune: int, chains: int, sampler: str = "nutpie"
) -> None:
    """Refuse sampler settings that cannot give a fit, before anything is computed.

    Raises
    ------
    UsageError
        Naming the setting and the values allowed.
    """
    problems = []
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            problems.append(f"{name} must be a whole number >= {low}, not {value!r}")
    if sampler not in SAMPLERS:
        problems.append(f"sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    if problems:
        raise UsageError("; ".join(problems) + ".")


def fit_model(
    spec: ModelSpec,
    migration: MigrationData,
    births: VitalData | None = None,
    deaths: VitalData | None = None,
    config: SamplerConfig | None = None,
    *,
    log_likelihood: bool = False,
    **overrides,
) -> FitResult:
    """Fit the joint model (migration + the vital blocks whose data are given).

    Parameters
    ----------
    spec
        The model spec.
    migration, births, deaths
        Arrays from :mod:`vekst.models.data`.
    config
        Sampler settings (:class:`vekst.workflow.SamplerConfig`: draws, tune, chains,
        cores, seed, sampler, progress, target_accept); the seed makes results
        reproducible. The default target acceptance (0.99) is above the usual 0.8 because
        the region-level attractiveness scale sits near zero on real data, where small
        steps avoid divergences.
    log_likelihood
        Add the pointwise log-likelihood of the migration observations (a
        ``log_likelihood`` group, for PSIS-LOO and ``vekst compare``). Off by default:
        it cost the national fit about 10 s of its post-processing, and only the
        comparison of specs reads it.
    **overrides
        Fields of the config by name (``fit_model(spec, data, draws=500, seed=1)``).

    Returns
    -------
    FitResult
        With diagnostics; the convergence gate is applied at projection time.
    """
    config = (config or SamplerConfig()).with_overrides(**overrides)
    draws, tune, chains, cores = config.draws, config.tune, config.chains, config.cores
    seed, sampler, progress = config.seed, config.sampler, config.progress
    target_accept = config.target_accept
    check_sampler_settings(draws=draws, tune=tune, chains=chains, sampler=sampler)
    model = build_joint_model(spec, migration, births, deaths)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        key = compile_key(spec, model, migration, births, deaths)
        compiled, reused = compile_nutpie(model, key)
        timings["compile_s"] = time.perf_counter() - start
        timings["compile_reused"] = float(reused)
        start = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores or min(chains, os.cpu_count() or 1),
            seed=seed,
            progress_bar=progress,
            save_warmup=False,
            target_accept=target_accept,
        )
    elif sampler in ("pymc", "numpyro"):
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores or min(chains, os.cpu_count() or 1),
                random_seed=seed,
                progressbar=progress,
                nuts_sampler=sampler,
                compute_convergence_checks=False,
                target_accept=target_accept,
            )
        timings["compile_s"] = float("nan")
    else:
        raise ValueError(f"sampler must be 'nutpie', 'pymc' or 'numpyro', not {sampler!r}")
    timings["sampling_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if log_likelihood:
        # Before the tidy-up: PyMC needs the raw free variables, dropped next.
        add_log_likelihood(idata, model, ("net_migration_obs",))
    tidy_posterior(idata)
    add_data_groups(idata, model)
    # The model's arrays travel with the fit so a loaded fit can be checked and rebuilt.
    idata.add_groups({"fit_data": migration.to_dataset()})
    names = dict(zip(map(str, migration.municipalities), map(str, migration.names), strict=True))
    label_variables(idata, names)
    timings["postprocess_s"] = time.perf_counter() - start
    diagnostics = diagnose(idata)
    idata.attrs.update(_identity_attrs(spec, migration, births, deaths))
    idata.attrs["diagnostics"] = json.dumps(diagnostics.as_dict())
    idata.attrs["diagnostics_draws"] = _posterior_shape(idata)
    idata.attrs["sampler"] = sampler
    idata.attrs["seed"] = seed
    return FitResult(idata, spec, diagnostics, migration, timings)


def _identity_attrs(spec, migration, births, deaths) -> dict[str, str]:
    return {
        "spec": spec.to_json(),
        "spec_hash": spec.hash,
        "data_hash": data_hash(migration, births, deaths),
        "vekst_version": __version__,
        "covariates": json.dumps(list(migration.covariates)),
        **{k: float(v) for k, v in migration.centers.items()},
    }


def save_fit(
    result: FitResult | az.InferenceData, path: str | Path, *, log_likelihood: bool = False
) -> Path:
    """Write a fit to netCDF atomically (temporary file, then rename).

    The file's attrs carry ``converged = "yes"/"no"`` (the convergence gate's verdict).

    Parameters
    ----------
    result
        A :class:`FitResult` or its ``idata``.
    path
        Target ``.nc`` file.
    log_likelihood
        Keep the pointwise log-likelihood, where the fit has one
        (``fit_model(..., log_likelihood=True)``, for ``az.loo`` on the loaded fit). Off
        by default: for the national fit it is 6,069 observations x 8,000 draws in
        float32 (194 MB beside the posterior's 147 MB); ``vekst compare`` works on fits
        in memory.
    """
    idata = result.idata if isinstance(result, FitResult) else result
    if not log_likelihood and "log_likelihood" in idata.groups():
        idata = idata.copy()
        del idata.log_likelihood
    if "diagnostics" in idata.attrs:
        # The gate's verdict in plain sight, as in every projection output.
        converged = json.loads(idata.attrs["diagnostics"]).get("converged")
        idata.attrs["converged"] = "yes" if converged else "no"
    # Uncompressed: zlib took 5.7 of the national fit's 6.7 s of writing for a file 5 %
    # smaller (posterior draws are nearly incompressible).
    return atomic_write(
        path, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf", compress=False)
    )


def load_fit(
    path: str | Path,
    *,
    spec: ModelSpec | None = None,
    data_hash_expected: str | None = None,
) -> FitResult:
    """Read a fit and check its identity.

    Parameters
    ----------
    path
        A file written by :func:`save_fit`.
    spec
        If given, the stored spec must hash the same.
    data_hash_expected
        If given, the stored data hash must equal it.

    Returns
    -------
    FitResult
        The same type :func:`fit_model` returns (``timings`` empty); diagnostics as
        stored when the fit was made.

    Raises
    ------
    FitIdentityError
        When the file was altered, or was made by another spec, data or package version.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"fit file {path} not found; create one with `vekst fit --out`.")
    idata = az.from_netcdf(path, engine="h5netcdf")
    attrs = idata.attrs
    missing = [k for k in ("spec", "spec_hash", "data_hash", "vekst_version") if k not in attrs]
    if missing:
        raise FitIdentityError(
            f"{path}: attrs {missing} are missing; this file was not written by vekst.save_fit."
        )
    stored = spec_from_dict(json.loads(attrs["spec"]), source=f"{path} (stored spec)")
    if stored.hash != attrs["spec_hash"]:
        raise FitIdentityError(
            f"{path}: the stored spec hashes to {stored.hash} but the file says "
            f"{attrs['spec_hash']}; the file was edited. Refit with `vekst fit`."
        )
    if spec is not None and spec.hash != stored.hash:
        raise FitIdentityError(
            f"{path}: fitted with spec '{stored.name}' ({stored.hash}), not with "
            f"'{spec.name}' ({spec.hash}). Refit with this spec or load without one."
        )
    if data_hash_expected is not None and data_hash_expected != attrs["data_hash"]:
        raise FitIdentityError(
            f"{path}: fitted on data {attrs['data_hash']}, but the data given hash to "
            f"{data_hash_expected}. Refit on these data with `vekst fit`."
        )
    if _major_minor(attrs["vekst_version"]) != _major_minor(__version__):
        raise FitIdentityError(
            f"{path}: written by vekst {attrs['vekst_version']}, this is {__version__}. "
            "Refit with this version."
        )
    diagnostics = stored_diagnostics(idata) or diagnose(idata)
    migration = (
        MigrationData.from_dataset(idata["fit_data"]) if "fit_data" in idata.groups() else None
    )
    return FitResult(idata, stored, diagnostics, migration, {})


def check_fit_panel(fit: FitResult, panel: xr.Dataset) -> None:
    """Refuse a fit made on other data than ``panel``.

    The panel's model inputs under the fit's spec must hash to the data hash stored with
    the fit.

    Parameters
    ----------
    fit
        A fit from :func:`fit_model` or :func:`load_fit`.
    panel
        The panel the fit is about to be used with (projection, report).

    Raises
    ------
    FitIdentityError
        Naming both hashes and what to do.
    """
    from vekst.workflow import model_inputs

    stored = fit.idata.attrs.get("data_hash")
    migration, births, deaths = model_inputs(panel, fit.spec)
    given = data_hash(migration, births, deaths)
    if stored != given:
        raise FitIdentityError(
            f"the fit was made on data {stored}, but this panel's model inputs hash to "
            f"{given} (other municipalities, years or numbers). Refit on this panel with "
            "`vekst fit`, or use the panel the fit was made on."
        )


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def projection_draws(
    idata: az.InferenceData, n_draws: int | None = None, seed: int = 0
) -> xr.Dataset:
    """Posterior draws in the form the projection consumes.

    Parameters
    ----------
    idata
        A fit.
    n_draws
        Subsample this many draws (without replacement); all when ``None``.
    seed
        Seed of the subsample.

    Returns
    -------
    xarray.Dataset
        Dim ``draw`` (chains stacked) with ``beta_mu``, ``beta_sigma`` (covariate),
        ``year_effect_mu``, ``year_effect_sigma``, ``attractiveness`` (municipality),
        ``sigma_base``, ``sigma_pop``, and where fitted ``fert_dev``, ``mort_dev``,
        ``beta_year`` and ``year_effect`` (for the decomposition of past years); attrs
        ``covariates``, ``centrality_center``, ``ds_center``.
    """
    from vekst.models.equation import PROJECTION_VARIABLES

    posterior = idata.posterior
    names = [n for n in PROJECTION_VARIABLES if n in posterior]
    stacked = posterior[names].stack(sample=("chain", "draw"))
    stacked = stacked.drop_vars(["sample", "chain", "draw"], errors="ignore")
    stacked = stacked.rename({"sample": "draw"}).assign_coords(
        draw=np.arange(stacked.sizes["sample"])
    )
    if "beta_sigma" not in stacked and "beta_mu" in stacked:
        stacked["beta_sigma"] = xr.zeros_like(stacked["beta_mu"])
    if n_draws is not None and n_draws < stacked.sizes["draw"]:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(stacked.sizes["draw"], size=n_draws, replace=False))
        stacked = stacked.isel(draw=keep).assign_coords(draw=np.arange(n_draws))
    attrs = idata.attrs
    stacked.attrs = {
        "covariates": json.loads(attrs.get("covariates", "[]")),
        "centrality_center": float(attrs.get("centrality_center", 0.0)),
        "ds_center": float(attrs.get("ds_center", 0.0)),
        "housing_center": float(attrs.get("housing_center", 0.0)),
        "spec_hash": attrs.get("spec_hash", ""),
        **_equation_attrs(attrs),
    }
    if "fit_data" in idata.groups() and "rho" in stacked:
        fit_data = idata["fit_data"]
        stacked.attrs["last_fit_year"] = int(fit_data["year"].values[-1])
        migration = MigrationData.from_dataset(fit_data)
        if "national_mu" in stacked:
            stacked.attrs["last_national_rate"] = float(migration.national_rate[-1])
        if "regional_shock" in stacked:
            stacked.attrs["regional_groups"] = [int(g) for g in migration.county_index()]
    return stacked.transpose("draw", ...)


def _equation_attrs(attrs) -> dict:
    """The spec's noise families, which the projection must draw from."""
    if "spec" not in attrs:
        return {}
    migration = json.loads(attrs["spec"]).get("migration", {})
    return {
        "likelihood": migration.get("likelihood", "normal"),
        "student_t_nu": float(migration.get("student_t_nu", 5.0)),
        "innovations": migration.get("innovations", "normal"),
        "innovations_nu": float(migration.get("innovations_nu", 4.0)),
        "time_structure": migration.get("time_structure", "iid"),
    }
