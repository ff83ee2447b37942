"""Rolling-origin backtests: fit on the years before an origin, project, compare.

For each origin year ``O`` the panel is cut by :func:`~vekst.evaluate.truncation.
truncate_panel` so that nothing observed on or after 1 January ``O`` (beyond the
1 January ``O`` stock itself) reaches the fit, the baselines or the projection. Each method
projects the stock of 1 January ``O`` ``1 .. horizon`` years ahead; the forecasts are scored
against the observed stocks of the full panel by municipality and planner age group, and,
summed per draw, by county and labour-market region (:mod:`vekst.evaluate.scoring`).

Every origin is an independent task (:func:`run_origin`) with its own seed derived from
the run's seed and the origin (:func:`origin_seed`), so a serial run, a resumed run and a
distributed run (:mod:`vekst.evaluate.distributed`) give the same numbers.

Methods
-------
``bayes``
    The hierarchical model, fitted and projected by the library's one pipeline
    (:func:`vekst.workflow.fit_panel`, :func:`vekst.workflow.project_fit`); an ensemble
    (median = point, intervals, CRPS). A fit that fails the convergence gate is still
    projected, and recorded as such (``notes[origin]["converged"]``, the table's
    ``converged`` column, the command's output).
``ols``
    The published OLS attractiveness model, projected without noise.
``naive5`` / ``naive10`` (any ``naive<k>``)
    Each municipality's mean net migration rate of the last ``k`` years.
``ccm5`` (any ``ccm<k>``)
    The planners' spreadsheet: constant rates and mean net migration by age and sex of the
    last ``k`` years (:mod:`vekst.evaluate.ccm`).
``no_migration``
    Births and deaths only.

Job-growth covariates
---------------------
VRA needs employment and commuting counts. When the truncated panel has no VRA in any
fitted year (on the embedded data: every origin up to 2018) and no spec is given, the
``no_jobs`` spec (centrality and DS) is used instead of the default spec, and the note of
the origin says so. DS needs a national employment-rate profile: it is estimated from the
truncated panel's employment counts where there are any, otherwise an a-priori profile
(:data:`PRIOR_EMPLOYMENT_PROFILE`) is used, the same in fit and projection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.evaluate.diagnostics import predictive_variance
from vekst.evaluate.methods import (
    PRIOR_EMPLOYMENT_PROFILE,
    OriginInputs,
    employment_profile,
    forecast_method,
    parse_methods,
    resolve_spec,
)
from vekst.evaluate.metrics import DEFAULT_LEVELS
from vekst.evaluate.result import MUNICIPALITY, BacktestResult
from vekst.evaluate.scoring import (
    AGGREGATE_LEVELS,
    PLANNER_AGE_GROUPS,
    SIZE_CLASSES,
    age_group_population,
    aggregate_forecast,
    score_forecast,
    size_class,
)
from vekst.evaluate.truncation import BacktestError, truncate_panel
from vekst.models.spec import ModelSpec

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_ORIGINS",
    "PLANNER_AGE_GROUPS",
    "PRIOR_EMPLOYMENT_PROFILE",
    "SIZE_CLASSES",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "OriginResult",
    "age_group_population",
    "backtest",
    "combine",
    "observed_groups",
    "origin_seed",
    "run_origin",
    "size_class",
    "truncate_panel",
]

DEFAULT_METHODS: tuple[str, ...] = (
    "bayes",
    "ols",
    "naive5",
    "naive10",
    "ccm5",
    "no_migration",
)
#: Origins of the standard backtest: every 1 January from 2009 to 2018.
DEFAULT_ORIGINS: tuple[int, ...] = tuple(range(2009, 2019))


@dataclass(frozen=True)
class BacktestConfig:
    """Settings of a backtest.

    Attributes
    ----------
    origins
        Origin years (1 January stocks are the jump-off); default 2009-2018.
    horizon
        Years ahead to score (1 .. horizon); years beyond the observed data are skipped.
    methods
        Any of ``bayes``, ``ols``, ``naive<k>``, ``ccm<k>``, ``no_migration``.
    spec
        Model spec (object, path or shipped name); default: the default spec when its VRA
        is observed before the origin, else ``no_jobs`` (stated in the notes).
    draws, tune, chains, target_accept
        Sampler settings of each Bayesian fit (per chain).
    refit_unconverged
        Fit an origin once more when its fit fails the convergence gate, with settings
        aimed at what failed (:func:`vekst.evaluate.methods.refit_settings`); the second
        fit is used and its gate recorded, the first one's diagnostics are kept in the
        notes. Without it (or when the second fit fails too) the rows say
        ``converged=False``.
    n_draws
        Posterior draws projected.
    seed
        Seed of the run; each origin's fit and projection use :func:`origin_seed`.
    sampler
        Sampler of the fit (``"nutpie"``, ``"pymc"``, ...).
    levels
        Interval levels scored.
    aggregates
        Aggregate levels scored beside municipalities (panel coordinates ``county``,
        ``region``); those the panel lacks are skipped.
    progress
        Show the sampler's progress bar.
    """

    origins: tuple[int, ...] = DEFAULT_ORIGINS
    horizon: int = 4
    methods: tuple[str, ...] = DEFAULT_METHODS
    spec: ModelSpec | str | None = None
    draws: int = 1500
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.95
    refit_unconverged: bool = True
    n_draws: int = 200
    seed: int = 20240101
    sampler: str = "nutpie"
    levels: tuple[float, ...] = DEFAULT_LEVELS
    aggregates: tuple[str, ...] = tuple(AGGREGATE_LEVELS)
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "origins", tuple(sorted({int(o) for o in self.origins})))
        object.__setattr__(self, "methods", tuple(parse_methods(self.methods)))
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        object.__setattr__(self, "aggregates", tuple(self.aggregates))
        if self.horizon < 1:
            raise BacktestError(f"horizon must be at least 1 year; got {self.horizon}.")
        if not self.origins:
            raise BacktestError("give at least one origin year, e.g. origins=(2012, 2015).")

    def settings(self) -> dict:
        """JSON-ready settings (the spec by name); identifies results a store may reuse."""
        out = asdict(self)
        out["origins"] = list(self.origins)
        out["spec"] = None if self.spec is None else str(getattr(self.spec, "name", self.spec))
        out.pop("progress")
        return out


@dataclass
class OriginResult:
    """The outcome of one origin (one task).

    Attributes
    ----------
    origin
        The origin year.
    scores
        Long scores of every method (municipalities and aggregates).
    note
        Spec, employment profile, diagnostics, ``converged``, timings, and ``failed``
        (``{method: message}``) for methods that raised.
    variance
        Predictive variance by method, level and horizon (ensemble methods).
    forecasts
        ``{method: DataArray (draw, year, municipality, age_group)}`` (municipalities).
    """

    origin: int
    scores: pd.DataFrame
    note: dict
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecasts: dict[str, xr.DataArray] = field(default_factory=dict)


def origin_seed(seed: int, origin: int) -> int:
    """The seed of one origin's fit and projection, derived from the run's seed.

    Parameters
    ----------
    seed
        Seed of the run.
    origin
        Origin year (the task's key).

    Returns
    -------
    int
        A 31-bit seed that depends only on ``(seed, origin)``, so an origin gives the same
        draws whether it runs alone, in a loop, resumed or on another worker.
    """
    state = np.random.SeedSequence([int(seed), int(origin)]).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def observed_groups(observed: xr.Dataset, municipalities: Sequence[str]) -> xr.DataArray:
    """Observed population by planner age group and total, ``(year, municipality, age_group)``.

    Parameters
    ----------
    observed
        Panel with the outcomes (``population``).
    municipalities
        Codes to keep, in order.
    """
    return age_group_population(
        observed["population"].sel(municipality=list(municipalities)).astype(np.float64)
    ).transpose("year", "municipality", "age_group")


# --- one origin ----------------------------------------------------------------------------
def run_origin(
    panel: xr.Dataset,
    origin: int,
    config: BacktestConfig,
    *,
    observed: xr.Dataset | None = None,
    log: Callable[[str], None] | None = None,
    keep_forecasts: bool = True,
) -> OriginResult:
    """Run every method for one origin: cut, fit/project, score (one independent task).

    A method that raises is recorded in ``note["failed"]`` (with the message) and the
    other methods still run; a :class:`BacktestError` about the origin itself (no
    observed year after it, outside the panel) or one where every method failed is
    raised.

    Parameters
    ----------
    panel
        The data the forecasts may learn from; only ``truncate_panel(panel, origin)`` is
        used.
    origin
        The origin year.
    config
        Backtest settings.
    observed
        Panel with the outcomes to score against (default ``panel``).
    log
        Callable receiving progress messages.
    keep_forecasts
        Keep the forecast arrays in the result (memory: draws x years x units x groups).

    Returns
    -------
    OriginResult
    """
    observed = panel if observed is None else observed
    say = log or (lambda message: None)
    origin = int(origin)
    obs_years = np.asarray(observed["year"].values, dtype=np.int64)
    target = np.array([y for y in range(origin + 1, origin + config.horizon + 1) if y in obs_years])
    if target.size == 0:
        raise BacktestError(
            f"origin {origin}: no observed stock in {origin + 1}-{origin + config.horizon} "
            f"(observed data end in {obs_years[-1]}); choose an earlier origin."
        )
    codes = panel["municipality"].values.astype(str)
    truth = observed_groups(observed, codes)
    truncated = truncate_panel(panel, origin)
    seed = origin_seed(config.seed, origin)
    note: dict = {
        "scored_years": [int(y) for y in target],
        "seed": seed,
        "timings_s": {},
        "failed": {},
    }
    profile, note["employment_profile"] = employment_profile(truncated)
    chosen = None
    if any(m in ("bayes", "ols") for m in config.methods):
        chosen, note["spec"] = resolve_spec(config.spec, truncated, profile, origin)
        note["spec_name"] = chosen.name
        years = np.asarray(truncated["year"].values)
        note["fit_years"] = [int(years[0]), origin - 1]
    inputs = OriginInputs(truncated, origin, int(target[-1]), seed, profile, chosen, note)
    levels = {
        level: np.asarray(panel[coord].values).astype(str)
        for level, coord in AGGREGATE_LEVELS.items()
        if level in config.aggregates and coord in panel.coords
    }
    aggregated_truth = {lv: aggregate_forecast(truth, codes_) for lv, codes_ in levels.items()}
    scores: list[pd.DataFrame] = []
    variance: list[pd.DataFrame] = []
    forecasts: dict[str, xr.DataArray] = {}
    for method in config.methods:
        say(f"origin {origin}: {method}")
        start = time.perf_counter()
        try:
            forecast = forecast_method(method, inputs, config, target)
        except Exception as error:  # one method's failure must not lose the others
            note["failed"][method] = f"{type(error).__name__}: {error}"
            say(f"origin {origin}: {method} FAILED: {error}")
            continue
        point = method != "bayes"
        frame = score_forecast(
            forecast, truth, truth.sel(year=origin), origin, method, config.levels, point
        )
        frames = [frame.assign(level=MUNICIPALITY)]
        if not point:
            variance.append(predictive_variance(forecast, origin, method, MUNICIPALITY))
        for level, membership in levels.items():
            summed = aggregate_forecast(forecast, membership)
            truth_level = aggregated_truth[level]
            part = score_forecast(
                summed,
                truth_level,
                truth_level.sel(year=origin),
                origin,
                method,
                config.levels,
                point,
            )
            frames.append(part.assign(level=level, size_class="all", name=part["municipality"]))
            if not point:
                variance.append(predictive_variance(summed, origin, method, level))
        scores.append(pd.concat(frames, ignore_index=True))
        if keep_forecasts:
            forecasts[method] = forecast
        note["timings_s"][method] = round(time.perf_counter() - start, 1)
    if not scores:
        raise BacktestError(
            f"origin {origin}: every method failed: {note['failed']}; fix the first error."
        )
    return OriginResult(
        origin=origin,
        scores=pd.concat(scores, ignore_index=True),
        note=note,
        variance=pd.concat(variance, ignore_index=True) if variance else pd.DataFrame(),
        forecasts=forecasts,
    )


def combine(
    results: Sequence[OriginResult], observed: xr.DataArray, config: BacktestConfig
) -> BacktestResult:
    """Put origin results (from any runner, in any order) into one :class:`BacktestResult`.

    Parameters
    ----------
    results
        One :class:`OriginResult` per origin.
    observed
        Observed population by age group (:func:`observed_groups`).
    config
        The settings of the run.
    """
    ordered = sorted(results, key=lambda r: r.origin)
    scores = pd.concat([r.scores for r in ordered], ignore_index=True)
    variance = [r.variance for r in ordered if not r.variance.empty]
    return BacktestResult(
        scores=scores,
        forecasts={(r.origin, m): f for r in ordered for m, f in r.forecasts.items()},
        observed=observed,
        notes={r.origin: r.note for r in ordered},
        settings=config.settings(),
        variance=pd.concat(variance, ignore_index=True) if variance else pd.DataFrame(),
    )


def backtest(
    panel: xr.Dataset,
    config: BacktestConfig | None = None,
    *,
    observed: xr.Dataset | None = None,
    store: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of the Bayesian forecast and the baselines, origin by origin.

    Parameters
    ----------
    panel
        The data the forecasts may learn from; each origin sees only
        ``truncate_panel(panel, origin)``.
    config
        Settings (:class:`BacktestConfig`; default: origins 2009-2018, horizons 1-4, every
        method).
    observed
        Panel with the outcomes to score against (default ``panel``). Passing a separate
        panel lets a test poison ``panel`` after the origin and compare.
    store
        Folder where each finished origin is written at once
        (:class:`vekst.evaluate.store.OriginStore`); origins already there with the same
        settings and data are read back instead of run again, so an interrupted run
        resumes.
    log
        Callable receiving progress messages (e.g. ``print``); silent when ``None``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    BacktestError
        For an origin outside the data, no observed year after an origin, an unknown
        method, or an origin where every method failed.
    """
    from vekst.evaluate.store import OriginStore

    config = config or BacktestConfig()
    observed = panel if observed is None else observed
    say = log or (lambda message: None)
    codes = panel["municipality"].values.astype(str)
    saved = None if store is None else OriginStore(store, config, panel, observed)
    results = []
    for origin in config.origins:
        if saved is not None and saved.has(origin):
            say(f"origin {origin}: read from {saved.directory}")
            results.append(saved.load(origin))
            continue
        result = run_origin(panel, origin, config, observed=observed, log=log)
        if saved is not None:
            saved.save(result)
        results.append(result)
    return combine(results, observed_groups(observed, codes), config)
