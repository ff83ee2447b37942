"""Forecast scores: percentage errors, CRPS from draws, interval coverage, summaries.

Conventions
-----------
* Draws lie on one axis (``axis``, default the first). A point forecast is a single draw.
* The **point** of an ensemble is its median.
* Percentage errors are ``100 * (point - observed) / observed``; they are NaN where the
  observed value is not positive (an age group with nobody in it has no relative error).
* **CRPS** uses the energy form ``E|X - y| - 0.5 E|X - X'|`` over the empirical
  distribution of the draws. ``E|X - X'|`` comes from the sorted draws in O(n log n):
  with ``x_(1) <= ... <= x_(n)``, ``E|X - X'| = 2 / n^2 * sum_i (2 i - n - 1) x_(i)``. For a
  single draw it reduces to the absolute error. ``crps_pct`` is CRPS in percent of the
  observed value, so it is comparable with the APE across municipalities of any size.
* **Coverage** of a central interval of level ``L``: whether the observed value lies
  within the ``(1 - L) / 2`` and ``(1 + L) / 2`` empirical quantiles of the draws (linear
  interpolation between order statistics, numpy's default). Point forecasts have no
  interval: their coverage is NaN.
* **Interval score** of a central interval ``[l, u]`` of level ``L`` (Gneiting & Raftery
  2007), with ``alpha = 1 - L``: ``(u - l) + 2 / alpha * (l - y) 1{y < l} + 2 / alpha *
  (y - u) 1{y > u}``. Lower is better; it rewards narrow bands and punishes misses in
  proportion to their distance. A point forecast is a zero-width interval, so its score is
  ``2 / alpha * |point - y|``: baselines and ensembles are scored on one scale.
  ``interval_score_pct_L`` divides by the observed value, like ``crps_pct``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_LEVELS",
    "absolute_percentage_error",
    "central_interval",
    "crps_ensemble",
    "interval_coverage",
    "interval_score",
    "percentage_error",
    "score_ensemble",
    "summarise_scores",
]

#: Central interval levels scored by default.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.95)


def _level_name(level: float) -> str:
    return f"{round(100 * level):d}"


def percentage_error(point: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Signed percentage error ``100 * (point - observed) / observed``.

    Parameters
    ----------
    point, observed
        Arrays of the same shape (broadcastable).

    Returns
    -------
    numpy.ndarray
        Positive where the forecast is too high; NaN where ``observed <= 0`` or missing.
    """
    point = np.asarray(point, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    positive = observed > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            positive, 100.0 * (point - observed) / np.where(positive, observed, 1.0), np.nan
        )


def absolute_percentage_error(point: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Absolute percentage error ``100 * |point - observed| / observed`` (NaN if not > 0).

    Parameters
    ----------
    point, observed
        Arrays of the same shape (broadcastable).

    Returns
    -------
    numpy.ndarray
    """
    return np.abs(percentage_error(point, observed))


def crps_ensemble(draws: np.ndarray, observed: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Continuous ranked probability score of an ensemble (energy form, sorted draws).

    Parameters
    ----------
    draws
        Forecast draws; the draws lie on ``axis``.
    observed
        Observed values, shaped like ``draws`` without ``axis`` (or broadcastable to it).
    axis
        Axis of ``draws`` holding the draws.

    Returns
    -------
    numpy.ndarray
        CRPS in the units of the data (0 for a perfect point forecast); NaN where any draw or
        the observation is NaN.
    """
    x = np.sort(np.moveaxis(np.asarray(draws, dtype=np.float64), axis, -1), axis=-1)
    y = np.asarray(observed, dtype=np.float64)[..., None]
    n = x.shape[-1]
    if n == 0:
        raise ValueError("crps_ensemble needs at least one draw.")
    mean_abs_error = np.abs(x - y).mean(axis=-1)
    # Weights of the order statistics in the mean absolute difference of all pairs.
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    spread = 2.0 / n**2 * (x @ weights)
    return mean_abs_error - 0.5 * spread


def central_interval(
    draws: np.ndarray, level: float, *, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of the central ``level`` interval of the draws.

    Parameters
    ----------
    draws
        Forecast draws on ``axis``.
    level
        Interval level in (0, 1), e.g. 0.8.
    axis
        Axis of the draws.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.
    """
    if not 0 < level < 1:
        raise ValueError(f"interval level must lie in (0, 1); got {level}.")
    low, high = np.quantile(
        np.asarray(draws, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2], axis=axis
    )
    return low, high


def interval_coverage(
    draws: np.ndarray, observed: np.ndarray, level: float, *, axis: int = 0
) -> np.ndarray:
    """Whether each observation lies in the central ``level`` interval of its draws.

    Parameters
    ----------
    draws
        Forecast draws on ``axis``.
    observed
        Observed values.
    level
        Interval level in (0, 1).
    axis
        Axis of the draws.

    Returns
    -------
    numpy.ndarray
        1.0 (covered), 0.0 (not covered) or NaN (observation missing), float.
    """
    low, high = central_interval(draws, level, axis=axis)
    y = np.asarray(observed, dtype=np.float64)
    covered = ((low <= y) & (y <= high)).astype(np.float64)
    return np.where(np.isfinite(y), covered, np.nan)


def interval_score(
    lower: np.ndarray, upper: np.ndarray, observed: np.ndarray, level: float
) -> np.ndarray:
    """Interval score of central intervals ``[lower, upper]`` of ``level`` (lower is better).

    Parameters
    ----------
    lower, upper
        Interval bounds (broadcastable with ``observed``); equal bounds are a point forecast.
    observed
        Observed values.
    level
        Nominal level of the interval in (0, 1).

    Returns
    -------
    numpy.ndarray
        ``(u - l) + 2 / (1 - level) * (distance of y outside [l, u])``, in the units of the
        data; NaN where ``observed`` is missing.
    """
    if not 0 < level < 1:
        raise ValueError(f"interval level must lie in (0, 1); got {level}.")
    low = np.asarray(lower, dtype=np.float64)
    high = np.asarray(upper, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    penalty = 2.0 / (1.0 - level)
    below = np.clip(low - y, 0.0, None)
    above = np.clip(y - high, 0.0, None)
    return (high - low) + penalty * (below + above)


def score_ensemble(
    draws: np.ndarray,
    observed: np.ndarray,
    *,
    axis: int = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    point_forecast: bool | None = None,
) -> dict[str, np.ndarray]:
    """Every score of an ensemble (or point) forecast against the observations.

    Parameters
    ----------
    draws
        Forecast draws on ``axis``; one draw is a point forecast.
    observed
        Observed values (the shape of ``draws`` without ``axis``).
    axis
        Axis of the draws.
    levels
        Central interval levels to report.
    point_forecast
        Treat the forecast as a point forecast (no intervals, coverage NaN); default: when
        there is exactly one draw.

    Returns
    -------
    dict
        ``point`` (median), ``error`` (point - observed), ``pe``, ``ape`` (%), ``crps``
        (persons), ``crps_pct`` (% of observed), and per level ``L`` (e.g. ``"80"``)
        ``lower_L``, ``upper_L``, ``cover_L``.
    """
    x = np.moveaxis(np.asarray(draws, dtype=np.float64), axis, 0)
    y = np.asarray(observed, dtype=np.float64)
    if point_forecast is None:
        point_forecast = x.shape[0] == 1
    point = np.median(x, axis=0)
    crps = crps_ensemble(x, y, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        crps_pct = np.where(y > 0, 100.0 * crps / np.where(y > 0, y, 1.0), np.nan)
    out = {
        "point": point,
        "error": point - y,
        "pe": percentage_error(point, y),
        "ape": absolute_percentage_error(point, y),
        "crps": crps,
        "crps_pct": crps_pct,
    }
    for level in levels:
        name = _level_name(level)
        if point_forecast:
            nan = np.full(y.shape, np.nan)
            out[f"lower_{name}"], out[f"upper_{name}"], out[f"cover_{name}"] = nan, nan, nan
            score = interval_score(point, point, y, level)
        else:
            low, high = central_interval(x, level, axis=0)
            out[f"lower_{name}"], out[f"upper_{name}"] = low, high
            covered = ((low <= y) & (y <= high)).astype(np.float64)
            out[f"cover_{name}"] = np.where(np.isfinite(y), covered, np.nan)
            score = interval_score(low, high, y, level)
        out[f"is_{name}"] = score
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"is_pct_{name}"] = np.where(y > 0, 100.0 * score / np.where(y > 0, y, 1.0), np.nan)
    return out


def summarise_scores(
    scores: pd.DataFrame,
    by: Sequence[str] = ("origin", "method", "horizon"),
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> pd.DataFrame:
    """Aggregate per-unit scores into one row per group.

    Parameters
    ----------
    scores
        Long frame with columns ``ape``, ``pe``, ``crps``, ``crps_pct`` and ``cover_L``
        (one row per municipality, year, age group, ...), e.g.
        :attr:`vekst.evaluate.BacktestResult.scores`.
    by
        Columns to group by.
    levels
        Interval levels whose coverage is averaged.

    Returns
    -------
    pandas.DataFrame
        Per group: ``n`` (rows with an APE), ``median_ape``, ``mean_ape``, ``bias`` (mean
        signed percentage error), ``aggregate_bias`` (the summed forecast against the
        summed observation, %, when ``point`` and ``observed`` are given: the mean
        percentage error of small cells is pushed up by their chance, because a cell that
        happens to be small weighs more), ``crps`` (mean, persons), ``crps_pct`` (mean, % of
        observed), ``coverage_L`` (share of observations inside the interval; NaN for point
        forecasts).
    """
    by = list(by)
    missing = [c for c in [*by, "ape", "pe", "crps", "crps_pct"] if c not in scores.columns]
    if missing:
        raise KeyError(f"scores lack the column(s) {missing}; pass the frame of scored rows.")
    grouped = scores.groupby(by, sort=False, observed=True, dropna=False)
    out = pd.DataFrame(
        {
            "n": grouped["ape"].count(),
            "median_ape": grouped["ape"].median(),
            "mean_ape": grouped["ape"].mean(),
            "bias": grouped["pe"].mean(),
            "crps": grouped["crps"].mean(),
            "crps_pct": grouped["crps_pct"].mean(),
        }
    )
    if {"point", "observed"} <= set(scores.columns):
        valid = scores["ape"].notna()
        sums = scores[valid].groupby(by, sort=False, observed=True, dropna=False)[
            ["point", "observed"]
        ].sum()
        out["aggregate_bias"] = 100.0 * (sums["point"] - sums["observed"]) / sums["observed"]
    for level in levels:
        name = _level_name(level)
        column = f"cover_{name}"
        if column in scores.columns:
            out[f"coverage_{name}"] = grouped[column].mean()
    for level in levels:
        name = _level_name(level)
        if f"is_{name}" in scores.columns:
            out[f"interval_score_{name}"] = grouped[f"is_{name}"].mean()
        if f"is_pct_{name}" in scores.columns:
            out[f"interval_score_pct_{name}"] = grouped[f"is_pct_{name}"].mean()
    return out.reset_index()
