"""Forecast evaluation: rolling-origin backtests, baselines, scores, official projections.

* :func:`backtest` -- fit on the years before each origin, project, score against what
  happened (:class:`BacktestResult`), one independent task per origin (:func:`run_origin`;
  :mod:`~vekst.evaluate.distributed` runs them on Dask); :func:`truncate_panel`
  (:mod:`~vekst.evaluate.truncation`) is the cut that keeps later data out;
  :mod:`~vekst.evaluate.store` keeps finished origins so a run resumes.
* :mod:`~vekst.evaluate.methods`, :mod:`~vekst.evaluate.baselines`,
  :mod:`~vekst.evaluate.ccm` -- the Bayesian fit and the OLS, naive, ``ccm5`` (planners'
  spreadsheet) and no-migration baselines.
* :mod:`~vekst.evaluate.scoring`, :mod:`~vekst.evaluate.metrics` -- planner age groups,
  size classes, counties and regions summed per draw; APE, bias, CRPS from draws, interval
  coverage and interval score.
* :mod:`~vekst.evaluate.diagnostics` -- growth of the predictive variance with horizon and
  the rescaling a band would need (diagnostic only).
* :func:`read_ssb_projection`, :func:`compare_official` -- SSB's official regional
  projections in the same comparison table.
"""

from vekst.evaluate.backtest import (
    DEFAULT_METHODS,
    DEFAULT_ORIGINS,
    BacktestConfig,
    OriginResult,
    backtest,
    combine,
    origin_seed,
    run_origin,
)
from vekst.evaluate.baselines import BaselineError, naive_draws, naive_rates, ols_draws, point_draws
from vekst.evaluate.ccm import ccm_projection
from vekst.evaluate.diagnostics import predictive_variance, rescaling_factors, variance_growth
from vekst.evaluate.metrics import (
    absolute_percentage_error,
    central_interval,
    crps_ensemble,
    interval_coverage,
    interval_score,
    percentage_error,
    score_ensemble,
    summarise_scores,
)
from vekst.evaluate.official import (
    OfficialProjectionError,
    compare_official,
    read_ssb_projection,
)
from vekst.evaluate.result import BacktestResult
from vekst.evaluate.scoring import (
    PLANNER_AGE_GROUPS,
    SIZE_CLASSES,
    age_group_population,
    aggregate_forecast,
    size_class,
)
from vekst.evaluate.truncation import BacktestError, truncate_panel

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_ORIGINS",
    "PLANNER_AGE_GROUPS",
    "SIZE_CLASSES",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "BaselineError",
    "OfficialProjectionError",
    "OriginResult",
    "absolute_percentage_error",
    "age_group_population",
    "aggregate_forecast",
    "backtest",
    "ccm_projection",
    "central_interval",
    "combine",
    "compare_official",
    "crps_ensemble",
    "interval_coverage",
    "interval_score",
    "naive_draws",
    "naive_rates",
    "ols_draws",
    "origin_seed",
    "percentage_error",
    "point_draws",
    "predictive_variance",
    "read_ssb_projection",
    "rescaling_factors",
    "run_origin",
    "score_ensemble",
    "size_class",
    "summarise_scores",
    "truncate_panel",
    "variance_growth",
]
