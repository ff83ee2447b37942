"""The one pipeline: panel -> fit -> projection, as objects, for every caller.

``vekst fit``/``project``/``demo``, the backtest and the recovery checks all call these
functions, so the way a panel becomes model data, a fit and a projection is written once.
Commands keep only options, printing and files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import xarray as xr

from vekst.models.spec import ModelSpec

__all__ = ["SamplerConfig", "fit_panel", "model_inputs", "project_fit"]


@dataclass(frozen=True)
class SamplerConfig:
    """Sampler settings of a fit.

    Attributes
    ----------
    draws, tune, chains
        Draws and tuning steps per chain, number of chains.
    cores
        Parallel chains; default ``min(chains, cpu count)``.
    seed
        Seed: the same seed gives the same draws.
    sampler
        ``"nutpie"`` (default), ``"pymc"`` or ``"numpyro"``.
    progress
        Show a progress bar.
    target_accept
        NUTS target acceptance.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    seed: int = 20240101
    sampler: str = "nutpie"
    progress: bool = True
    target_accept: float = 0.99

    def with_seed(self, seed: int) -> SamplerConfig:
        """The same settings with another seed."""
        return replace(self, seed=int(seed))

    def with_overrides(self, **overrides) -> SamplerConfig:
        """These settings with some fields replaced by name.

        Raises
        ------
        TypeError
            Naming an unknown setting and listing the known ones.
        """
        from vekst.io import with_fields

        return with_fields(self, overrides, "the sampler settings")


def model_inputs(
    panel: xr.Dataset, spec: ModelSpec, *, employment_rate: xr.DataArray | None = None
):
    """The model's arrays for a panel: ``(migration, births, deaths)``.

    Parameters
    ----------
    panel
        A validated panel.
    spec
        The model spec; vital blocks switched off in it give ``None``.
    employment_rate
        National employment rates by age and sex for DS; estimated when omitted.

    Returns
    -------
    tuple
        :class:`~vekst.models.data.MigrationData` and
        :class:`~vekst.models.data.VitalData` (or ``None``) for births and deaths.
    """
    from vekst.models.data import migration_data, vital_data

    migration = migration_data(panel, spec, employment_rate=employment_rate)
    births = vital_data(panel, "births") if spec.fertility.enabled else None
    deaths = vital_data(panel, "deaths") if spec.mortality.enabled else None
    return migration, births, deaths


def fit_panel(
    panel: xr.Dataset,
    spec: ModelSpec | str | None = None,
    config: SamplerConfig | None = None,
    *,
    employment_rate: xr.DataArray | None = None,
    log_likelihood: bool = False,
):
    """Fit a model spec to a panel.

    Parameters
    ----------
    panel
        A validated panel (``vekst.load_default()`` or a fetched/simulated one).
    spec
        A :class:`~vekst.models.spec.ModelSpec`, a path to a spec file, or ``None`` for
        the default spec (``models/vareide2022.toml``).
    config
        Sampler settings; default :class:`SamplerConfig()`.
    employment_rate
        National employment rates by age and sex for DS; estimated when omitted.
    log_likelihood
        Keep the pointwise log-likelihood (:func:`vekst.fit.fit_model`).

    Returns
    -------
    vekst.fit.FitResult
        The fit with its diagnostics; the convergence gate is applied when projecting.
    """
    from vekst.fit import fit_model
    from vekst.models.spec import load_spec

    if not isinstance(spec, ModelSpec):
        spec = load_spec(spec)
    config = config or SamplerConfig()
    migration, births, deaths = model_inputs(panel, spec, employment_rate=employment_rate)
    return fit_model(
        spec,
        migration,
        births,
        deaths,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        cores=config.cores,
        seed=config.seed,
        sampler=config.sampler,
        progress=config.progress,
        target_accept=config.target_accept,
        log_likelihood=log_likelihood,
    )


def project_fit(
    fit,
    panel: xr.Dataset,
    *,
    allow_unconverged: bool = False,
    n_draws: int | None = 250,
    seed: int = 0,
    **options,
) -> xr.Dataset:
    """Project a panel with a fit's posterior draws, behind the convergence gate.

    Parameters
    ----------
    fit
        A :class:`~vekst.fit.FitResult` (or an ``InferenceData`` written by vekst).
    panel
        The panel to project from (its last year is the base year by default).
    allow_unconverged
        Project from a fit that failed the gate; the output is flagged.
    n_draws
        Posterior draws carried through the projection.
    seed
        Seed of the draw subset and of every random shock.
    **options
        Passed to :func:`vekst.projection.project` (``scenario``, ``end_year``,
        ``base_year``, ``detail`` ...).

    Returns
    -------
    xarray.Dataset
        The projection; attrs ``converged`` and ``diagnostics`` say how the fit fared.
    """
    import json

    from vekst.fit import projection_draws, require_converged
    from vekst.projection import project

    idata = getattr(fit, "idata", fit)
    diagnostics = require_converged(idata, allow_unconverged=allow_unconverged)
    draws = projection_draws(idata)
    projection = project(panel, draws, n_draws=n_draws, seed=seed, **options)
    projection.attrs["converged"] = int(diagnostics.converged)
    projection.attrs["diagnostics"] = json.dumps(diagnostics.as_dict())
    return projection
