"""Recovery checks: fit the model to Simulated Norway and score it against the truth.

A small simulation-based calibration. Each replicate simulates a panel with
:func:`vekst.simulate.simulate_panel` (hyperparameters fixed at the published calibration,
everything below them drawn afresh), fits the spec with :func:`vekst.workflow.fit_panel`, and
records for every parameter whether the central 50, 80 and 94 % posterior intervals
contain the true value, how wide they are, and how far the posterior mean is from the
truth. The OLS baseline (:func:`vekst.models.ols.fit_ols`, intervals estimate +- z * se)
is scored on the same panels for the pooled and year-by-year coefficients.

With hyperparameters fixed rather than drawn from the prior, coverage of the parameters
below them (year coefficients, year effects, attractiveness, vital deviations) is
near-nominal when the model is right and the hyperparameters are well identified; the
pooled means and the scale parameters are single values per replicate, so their coverage
is a frequentist coverage over replicates (noisy with few replicates).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from vekst.io import settings_from

if TYPE_CHECKING:
    from vekst.cluster import TaskRunner

__all__ = [
    "COVERAGE_LEVELS",
    "PARAMETER_GROUPS",
    "RecoveryConfig",
    "ReplicateOutcome",
    "ReplicateSettings",
    "check_recovery",
    "default_truth",
    "exchangeable_years",
    "migration_only",
    "run_replicate",
    "score_ols",
    "score_posterior",
]

#: Central interval probabilities scored.
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.94)

#: Parameter groups: group name -> posterior variables (each also a truth variable).
PARAMETER_GROUPS: dict[str, tuple[str, ...]] = {
    "beta_mu": ("beta_mu",),
    "beta_sigma": ("beta_sigma",),
    "beta_year": ("beta_year",),
    "year_effect": ("year_effect",),
    "year_effect_hyper": ("year_effect_mu", "year_effect_sigma"),
    "attract_region": ("attract_region",),
    "attractiveness": ("attractiveness",),
    "attract_sigma": ("attract_region_sigma", "attract_municipality_sigma"),
    "noise": ("sigma_base", "sigma_pop"),
    "fert_dev": ("fert_dev",),
    "fert_sigma": ("fert_region_sigma", "fert_municipality_sigma"),
    "mort_dev": ("mort_dev",),
    "mort_sigma": ("mort_region_sigma", "mort_municipality_sigma"),
}


@dataclass(frozen=True)
class _Scores:
    """Per-element scores of one group in one replicate."""

    covered: dict[float, np.ndarray]
    width: dict[float, np.ndarray]
    estimate: np.ndarray
    truth: np.ndarray
    covariate: np.ndarray | None = None


def _aligned_truth(posterior_var: xr.DataArray, truth: xr.Dataset, name: str) -> np.ndarray:
    """Truth values in the order of the posterior's non-sample dims."""
    true = truth[name]
    dims = [d for d in posterior_var.dims if d not in ("chain", "draw")]
    if dims:
        true = true.sel({d: posterior_var[d].values for d in dims}).transpose(*dims)
    return np.asarray(true.values, dtype=float).ravel()


def score_posterior(
    posterior: xr.Dataset,
    truth: xr.Dataset,
    levels: Sequence[float] = COVERAGE_LEVELS,
) -> dict[str, _Scores]:
    """Score posterior intervals against the truth, group by group.

    Parameters
    ----------
    posterior
        ``idata.posterior`` of a fit (dims ``chain``, ``draw`` and the parameter dims).
    truth
        The truth from :func:`vekst.simulate.simulate_panel`.
    levels
        Central interval probabilities.

    Returns
    -------
    dict
        Group name -> scores (coverage and width per level, posterior means, truth); groups
        whose variables are not in both the posterior and the truth are left out.
    """
    out: dict[str, _Scores] = {}
    for group, names in PARAMETER_GROUPS.items():
        names = [n for n in names if n in posterior and n in truth]
        if not names:
            continue
        covered: dict[float, list[np.ndarray]] = {p: [] for p in levels}
        width: dict[float, list[np.ndarray]] = {p: [] for p in levels}
        estimates, truths, labels = [], [], []
        for name in names:
            var = posterior[name]
            dims = [d for d in var.dims if d not in ("chain", "draw")]
            samples = var.stack(sample=("chain", "draw")).transpose("sample", *dims).values
            samples = samples.reshape(samples.shape[0], -1)
            true = _aligned_truth(var, truth, name)
            labels.append(_covariate_labels(var, dims))
            for p in levels:
                low, high = np.quantile(samples, [(1 - p) / 2, (1 + p) / 2], axis=0)
                covered[p].append((low <= true) & (true <= high))
                width[p].append(high - low)
            estimates.append(samples.mean(0))
            truths.append(true)
        out[group] = _Scores(
            covered={p: np.concatenate(v) for p, v in covered.items()},
            width={p: np.concatenate(v) for p, v in width.items()},
            estimate=np.concatenate(estimates),
            truth=np.concatenate(truths),
            covariate=np.concatenate(labels),
        )
    return out


def _covariate_labels(var: xr.DataArray, dims: list[str]) -> np.ndarray:
    """Covariate name of each flattened element ('' where the variable has none)."""
    shape = [var.sizes[d] for d in dims]
    if "covariate" not in dims:
        return np.full(int(np.prod(shape)), "", dtype=object)
    names = np.asarray(var["covariate"].values, dtype=object)
    index = dims.index("covariate")
    grid = names.reshape([-1 if i == index else 1 for i in range(len(dims))])
    return np.broadcast_to(grid, shape).ravel()


def score_ols(ols, truth: xr.Dataset, levels: Sequence[float] = COVERAGE_LEVELS) -> dict:
    """Score the OLS baseline: ``beta`` against ``beta_mu``, ``beta_year`` year by year.

    Intervals are estimate +- z * se (classical standard errors); years where OLS could
    not be fitted are skipped. Attractiveness (mean pooled residual) gets a point score
    only, OLS has no interval for it.

    Parameters
    ----------
    ols
        :class:`vekst.models.ols.OLSResult`.
    truth
        The truth from :func:`vekst.simulate.simulate_panel`.
    levels
        Central interval probabilities.

    Returns
    -------
    dict
        Group name -> scores, like :func:`score_posterior`.
    """
    out: dict[str, _Scores] = {}
    pairs = {
        "beta_mu": (ols.beta, ols.beta_se, truth["beta_mu"]),
        "beta_year": (ols.beta_year, ols.beta_year_se, truth["beta_year"]),
    }
    for group, (estimate, se, true) in pairs.items():
        true = true.sel({d: estimate[d].values for d in estimate.dims}).transpose(*estimate.dims)
        est = np.asarray(estimate.values, dtype=float).ravel()
        err = np.asarray(se.values, dtype=float).ravel()
        tru = np.asarray(true.values, dtype=float).ravel()
        labels = _covariate_labels(estimate, list(estimate.dims))
        keep = np.isfinite(est) & np.isfinite(err)
        est, err, tru, labels = est[keep], err[keep], tru[keep], labels[keep]
        covered, width = {}, {}
        for p in levels:
            z = norm.ppf((1 + p) / 2)
            covered[p] = np.abs(est - tru) <= z * err
            width[p] = 2 * z * err
        out[group] = _Scores(covered, width, est, tru, labels)
    attract = ols.attractiveness
    tru = truth["attractiveness"].sel(municipality=attract["municipality"].values).values
    empty = {p: np.array([], dtype=float) for p in levels}
    out["attractiveness"] = _Scores(
        {p: np.array([], dtype=bool) for p in levels}, empty, attract.values.astype(float), tru
    )
    return out


def _subset(scores: _Scores, covariate: str) -> _Scores:
    keep = scores.covariate == covariate
    return _Scores(
        {p: v[keep] for p, v in scores.covered.items()},
        {p: v[keep] for p, v in scores.width.items()},
        scores.estimate[keep],
        scores.truth[keep],
        scores.covariate[keep],
    )


def _summarise(
    scores: list[tuple[str, dict[str, _Scores]]],
    levels: Sequence[float],
    by_covariate: bool = False,
) -> pd.DataFrame:
    """One row per (group, method): coverage, mean width, RMSE, mean correlation."""
    rows = []
    keys: dict[tuple[str, str], list[_Scores]] = {}
    for method, groups in scores:
        for group, s in groups.items():
            keys.setdefault((group, method), []).append(s)
            if by_covariate and s.covariate is not None:
                for cov in dict.fromkeys(c for c in s.covariate if c):
                    keys.setdefault((f"{group}[{cov}]", method), []).append(_subset(s, cov))
    order = {g: i for i, g in enumerate(PARAMETER_GROUPS)}

    def sort_key(item):
        group, method = item[0]
        return (order.get(group.split("[")[0], 99), "[" in group, method)

    for (group, method), items in sorted(keys.items(), key=sort_key):
        row: dict[str, object] = {"group": group, "method": method}
        n = sum(s.truth.size for s in items)
        n_intervals = sum(s.covered[levels[0]].size for s in items)
        row["n"] = n
        for p in levels:
            label = round(100 * p)
            if n_intervals:
                covered = np.concatenate([s.covered[p] for s in items])
                row[f"cover_{label}"] = float(np.mean(covered))
                row[f"width_{label}"] = float(np.mean(np.concatenate([s.width[p] for s in items])))
            else:
                row[f"cover_{label}"] = np.nan
                row[f"width_{label}"] = np.nan
        errors = np.concatenate([s.estimate - s.truth for s in items])
        row["rmse"] = float(np.sqrt(np.mean(errors**2)))
        correlations = [
            float(np.corrcoef(s.estimate, s.truth)[0, 1])
            for s in items
            if s.truth.size >= 3 and np.std(s.truth) > 0 and np.std(s.estimate) > 0
        ]
        row["corr"] = float(np.mean(correlations)) if correlations else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _vital_truth(vspec, truth):
    """Simulate events with the likelihood the spec fits (Poisson or negative binomial)."""
    if vspec.likelihood == "poisson":
        truth.alpha = None
    return truth


def migration_only(spec):
    """A copy of ``spec`` without the fertility and mortality blocks.

    The vital blocks and the migration block share no parameters, so the migration
    posterior is the same with or without them; leaving them out makes recovery checks of
    the migration model cheaper.

    Parameters
    ----------
    spec
        A :class:`~vekst.models.spec.ModelSpec`.
    """
    return _spec_variant(
        spec,
        "migration",
        "vital blocks off",
        fertility={"enabled": False},
        mortality={"enabled": False},
    )


def _spec_variant(spec, suffix: str, change: str, **blocks: dict):
    """A copy of ``spec`` named ``<name>-<suffix>`` with ``blocks`` (block name -> fields)
    updated; ``change`` says what differs, for the spec's source."""
    from vekst.models.spec import spec_from_dict

    raw = spec.to_dict()
    raw["name"] = f"{spec.name}-{suffix}"
    for block, fields in blocks.items():
        raw[block].update(fields)
    return spec_from_dict(raw, source=f"{spec.name} ({change})")


#: Persistence of the simulated states of a time-structured spec's default truth: national
#: net migration and the year effect as in the time-structure recovery test
#: (``tests/test_dynamics_fit.py``), the year coefficients less persistent.
DEFAULT_STATE_PERSISTENCE = {"national_net_migration": 0.8, "year_effect": 0.8}
DEFAULT_COEFFICIENT_PERSISTENCE = 0.6


def exchangeable_years(spec):
    """A copy of ``spec`` with exchangeable years: no VAR(1) time structure, no national
    immigration driver, no persistent local deviations (the structure of the published
    calibration, which :class:`~vekst.simulate.MigrationTruth` simulates by default).

    Parameters
    ----------
    spec
        A :class:`~vekst.models.spec.ModelSpec`.
    """
    return _spec_variant(
        spec,
        "iid",
        "exchangeable years",
        migration={
            "time_structure": "iid",
            "national_immigration": False,
            "local_persistence": False,
        },
    )


def default_truth(spec):
    """The truth a recovery check simulates for ``spec`` when it is given none.

    A recovery check tests a model on its own assumptions, so the simulated time structure
    is the spec's: exchangeable years for an ``iid`` spec (the published calibration), and
    for the ``ar1`` structure with national immigration and persistent local deviations the
    same calibration with persistent states (:data:`DEFAULT_STATE_PERSISTENCE`, year
    coefficients :data:`DEFAULT_COEFFICIENT_PERSISTENCE`). Fitting a time-structured spec
    to exchangeable years scored its year effects against a quantity it does not estimate
    (1-3 % coverage measured over 30 replicates).

    Parameters
    ----------
    spec
        A :class:`~vekst.models.spec.ModelSpec`.

    Returns
    -------
    vekst.simulate.MigrationTruth

    Raises
    ------
    ValueError
        For a mix the simulator has no truth for (e.g. ``ar1`` without national
        immigration); the message says what to pass instead.
    """
    from vekst.simulate import MigrationTruth

    m = spec.migration
    dynamic = (m.time_structure != "iid", m.national_immigration, m.local_persistence)
    if not any(dynamic):
        return MigrationTruth()
    if all(dynamic):
        rho = dict(DEFAULT_STATE_PERSISTENCE)
        rho.update({c: DEFAULT_COEFFICIENT_PERSISTENCE for c in m.covariates})
        return MigrationTruth(rho=rho)
    raise ValueError(
        f"spec '{spec.name}': the simulator has no default truth for time_structure="
        f"'{m.time_structure}', national_immigration={m.national_immigration}, "
        f"local_persistence={m.local_persistence}; pass truth_factory= (a callable returning "
        "a vekst.simulate.MigrationTruth) or check exchangeable_years(spec)."
    )


@dataclass(frozen=True)
class RecoveryConfig:
    """Settings of :func:`check_recovery` (every field has a default).

    Attributes
    ----------
    regions
        Labour-market regions to simulate: a number ``K`` (the K regions with the most
        municipalities, :func:`vekst.simulate.default_regions`), a list of codes,
        or ``None`` for 6 regions. The same regions are used in every replicate, so the
        compiled model is reused (new data go in through ``pm.Data``).
    draws, tune, chains
        Sampler settings per fit.
    seed
        Replicate ``r`` simulates with seed ``seed + r`` and samples with seed
        ``seed + 100_000 + r``.
    years
        Flow years simulated.
    levels
        Central interval probabilities scored.
    by_covariate
        Also report ``beta_mu``, ``beta_sigma`` and ``beta_year`` covariate by covariate
        (rows such as ``beta_mu[centrality]``).
    truth_factory
        Callable returning a fresh :class:`~vekst.simulate.MigrationTruth` per
        replicate (default: :func:`default_truth` of the spec).
    progress
        Show sampler progress bars.
    on_replicate
        Optional callback ``f(r, outcome, seconds)`` after each replicate (for progress
        reporting); ``outcome`` is a :class:`ReplicateOutcome` (``.diagnostics`` holds
        the fit's R-hat, ESS and divergences).
    runner
        A :class:`vekst.cluster.TaskRunner`: replicates as tasks on a Dask cluster (one
        task per replicate, seeded by its number, so the numbers equal the serial
        run's). ``None`` runs them one after another here. A replicate that raises is
        left out of the table and named in ``attrs["failed_replicates"]``.
    """

    regions: int | Sequence[str] | None = None
    draws: int = 500
    tune: int = 500
    chains: int = 2
    seed: int = 0
    years: range = range(2005, 2022)
    levels: Sequence[float] = COVERAGE_LEVELS
    by_covariate: bool = False
    truth_factory: Callable[[], Any] | None = None
    progress: bool = False
    on_replicate: Callable[[int, Any, float], None] | None = None
    runner: TaskRunner | None = None


def check_recovery(
    replicates: int = 20,
    spec=None,
    config: RecoveryConfig | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Simulate, fit and score ``replicates`` panels; coverage per parameter group.

    Births and deaths are simulated with the likelihood the spec fits (Poisson events
    where the spec says Poisson), so the check tests the model on its own assumptions.
    DS is computed with the employment profile the panel was simulated with.

    Parameters
    ----------
    replicates
        Number of simulated panels.
    spec
        A :class:`~vekst.models.spec.ModelSpec`, a spec path or name (see
        :func:`vekst.models.spec.load_spec`); default ``models/vareide2022.toml``. The
        panels are simulated with its covariates; :func:`migration_only` drops the vital
        blocks when only the migration model is checked.
    config
        Regions, sampler settings, seed, years, levels and hooks
        (:class:`RecoveryConfig`); default its defaults.
    **overrides
        Fields of :class:`RecoveryConfig` by name, e.g. ``check_recovery(1, regions=3,
        draws=300)``; an unknown name is a ``TypeError`` naming it.

    Returns
    -------
    pandas.DataFrame
        One row per (group, method) with ``method`` ``"bayes"`` or ``"ols"``: ``n``
        (parameter values scored, over replicates), ``cover_50``/``cover_80``/``cover_94``
        (share of true values inside the central interval), ``width_*`` (mean width),
        ``rmse`` (posterior mean or OLS estimate vs truth) and ``corr`` (mean over
        replicates of the correlation between estimate and truth). ``attrs`` hold the
        settings, each fit's diagnostics (``attrs["fits"]``) and the replicates whose
        task failed (``attrs["failed_replicates"]``, left out of the table).

    Raises
    ------
    RuntimeError
        If every replicate failed (the messages are in the error).
    """
    from vekst import load_default
    from vekst.cluster import run_tasks
    from vekst.features import estimate_employment_profile
    from vekst.models.spec import ModelSpec, load_spec
    from vekst.simulate import default_regions

    c = settings_from(RecoveryConfig, config, overrides, "check_recovery()")
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}.")
    if not isinstance(spec, ModelSpec):
        spec = load_spec(spec)
    if c.truth_factory is None:
        default_truth(spec)  # fails here, before any fit, for a spec it cannot simulate
    base = load_default()
    regions = 6 if c.regions is None else c.regions
    region_codes = (
        default_regions(base, int(regions))
        if isinstance(regions, int | np.integer)
        else [str(r) for r in regions]
    )
    settings = ReplicateSettings(
        spec=spec,
        region_codes=tuple(region_codes),
        employment_rate=estimate_employment_profile(base),
        draws=c.draws,
        tune=c.tune,
        chains=c.chains,
        seed=c.seed,
        years=c.years,
        levels=tuple(c.levels),
        truth_factory=c.truth_factory,
        progress=c.progress,
    )

    def report(r, outcome: ReplicateOutcome) -> None:
        if c.on_replicate is not None:
            c.on_replicate(r, outcome, outcome.seconds)

    outcome = run_tasks(
        run_replicate,
        range(replicates),
        shared={"settings": settings, "base": base},
        runner=c.runner,
        label="replicate",
        on_result=report,
    )
    done: list[ReplicateOutcome] = list(outcome.results.values())
    if not done:
        raise RuntimeError(f"every recovery replicate failed: {outcome.failures}")
    scores = [item for replicate in done for item in replicate.scores]
    table = _summarise(scores, c.levels, c.by_covariate)
    table.attrs = {
        "replicates": replicates,
        "spec": spec.name,
        "regions": region_codes,
        "municipalities": done[0].municipalities,
        "years": [int(c.years[0]), int(c.years[-1])],
        "draws": c.draws,
        "tune": c.tune,
        "chains": c.chains,
        "seed": c.seed,
        "fits": [replicate.fit for replicate in done],
        "failed_replicates": {int(k): v for k, v in outcome.failures.items()},
    }
    return table


@dataclass(frozen=True)
class ReplicateSettings:
    """What every recovery replicate shares (see :func:`check_recovery`).

    Attributes
    ----------
    spec
        The :class:`~vekst.models.spec.ModelSpec` fitted.
    region_codes
        Labour-market regions simulated.
    employment_rate
        Employment profile the panels are simulated with.
    draws, tune, chains
        Sampler settings per fit.
    seed
        Replicate ``r`` simulates with seed ``seed + r`` and samples with
        ``seed + 100_000 + r``.
    years
        Flow years simulated.
    levels
        Central interval probabilities scored.
    truth_factory
        Callable returning a fresh migration truth (``None``: :func:`default_truth` of the spec).
    progress
        Show sampler progress bars.
    """

    spec: Any
    region_codes: tuple[str, ...]
    employment_rate: xr.DataArray
    draws: int = 500
    tune: int = 500
    chains: int = 2
    seed: int = 0
    years: range = range(2005, 2022)
    levels: tuple[float, ...] = COVERAGE_LEVELS
    truth_factory: Any = None
    progress: bool = False


@dataclass
class ReplicateOutcome:
    """Scores and fit diagnostics of one replicate (what a task sends back).

    Attributes
    ----------
    replicate
        Replicate number.
    scores
        ``[(method, {group: scores})]`` for Bayes and OLS.
    fit
        Seconds and the fit's convergence diagnostics, as a dict.
    diagnostics
        The fit's diagnostics object (R-hat, ESS, divergences).
    municipalities
        Municipalities in the simulated panel.
    seconds
        Wall time of the replicate.
    """

    replicate: int
    scores: list
    fit: dict
    diagnostics: Any
    municipalities: int
    seconds: float


def run_replicate(r: int, settings: ReplicateSettings, base: xr.Dataset) -> ReplicateOutcome:
    """Simulate, fit and score replicate ``r`` (one independent task, seeded by ``r``).

    Parameters
    ----------
    r
        Replicate number; with ``settings.seed`` it fixes every random number.
    settings
        The run's shared settings.
    base
        The embedded panel the simulation starts from.

    Returns
    -------
    ReplicateOutcome
    """
    from vekst.models.ols import fit_ols
    from vekst.simulate import (
        SimulationTruth,
        VitalTruth,
        default_mortality,
        simulate_panel,
    )
    from vekst.workflow import SamplerConfig, fit_panel

    start = time.perf_counter()
    spec = settings.spec
    factory = settings.truth_factory or (lambda: default_truth(spec))
    known = SimulationTruth(
        migration=factory(),
        fertility=_vital_truth(spec.fertility, VitalTruth()),
        mortality=_vital_truth(spec.mortality, default_mortality()),
    )
    panel, truth = simulate_panel(
        known,
        seed=settings.seed + r,
        years=settings.years,
        regions=list(settings.region_codes),
        covariates=spec.migration.covariates,
        base=base,
        employment_rate=settings.employment_rate,
    )
    config = SamplerConfig(
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed + 100_000 + r,
        progress=settings.progress,
    )
    # The truth's employment profile, so DS is exactly the covariate that was simulated.
    result = fit_panel(panel, spec, config, employment_rate=truth["employment_rate"])
    scores = [("bayes", score_posterior(result.idata.posterior, truth, settings.levels))]
    if result.migration.covariates:
        scores.append(("ols", score_ols(fit_ols(result.migration), truth, settings.levels)))
    seconds = time.perf_counter() - start
    diagnostics = result.diagnostics.as_dict()
    fit = {
        "replicate": r,
        "seconds": seconds,
        **{
            k: v
            for k, v in diagnostics.items()
            if k in ("rhat_max", "ess_bulk_min", "divergences", "converged")
        },
    }
    return ReplicateOutcome(
        r, scores, fit, result.diagnostics, int(panel.sizes["municipality"]), seconds
    )
