"""Forecast evaluation: rolling-origin backtests, baselines, scores, official projections.

* :func:`backtest` -- fit on the years before each origin, project, score against what
  happened (:class:`BacktestResult`); :func:`truncate_panel` is the cut that keeps later
  data out.
* :mod:`~vekst.evaluate.baselines` -- OLS, naive and no-migration forecasts as degenerate
  draws for the same projection engine.
* :mod:`~vekst.evaluate.metrics` -- APE, bias, CRPS from draws, interval coverage.
* :func:`read_ssb_projection`, :func:`compare_official` -- SSB's official regional
  projections in the same comparison table.
"""

from vekst.evaluate.backtest import (
    DEFAULT_METHODS,
    PLANNER_AGE_GROUPS,
    SIZE_CLASSES,
    BacktestError,
    BacktestResult,
    age_group_population,
    backtest,
    size_class,
    truncate_panel,
)
from vekst.evaluate.baselines import BaselineError, naive_draws, naive_rates, ols_draws, point_draws
from vekst.evaluate.metrics import (
    absolute_percentage_error,
    central_interval,
    crps_ensemble,
    interval_coverage,
    percentage_error,
    score_ensemble,
    summarise_scores,
)
from vekst.evaluate.official import (
    OfficialProjectionError,
    compare_official,
    read_ssb_projection,
)

__all__ = [
    "DEFAULT_METHODS",
    "PLANNER_AGE_GROUPS",
    "SIZE_CLASSES",
    "BacktestError",
    "BacktestResult",
    "BaselineError",
    "OfficialProjectionError",
    "absolute_percentage_error",
    "age_group_population",
    "backtest",
    "central_interval",
    "compare_official",
    "crps_ensemble",
    "interval_coverage",
    "naive_draws",
    "naive_rates",
    "ols_draws",
    "percentage_error",
    "point_draws",
    "read_ssb_projection",
    "score_ensemble",
    "size_class",
    "summarise_scores",
    "truncate_panel",
]
