"""Is one method's lead over another real? A paired bootstrap over municipalities.

Two methods forecast the same municipalities from the same origins, so their errors are
paired, and a municipality's errors from different origins are correlated: its forecasts
four years ahead from 2014 and from 2015 overlap in three years and share its local
history. The difference in median absolute percentage error is therefore judged by
resampling whole municipalities (every origin of a municipality goes in or out together),
with both methods' errors of a cell kept together. Resampling single cells would treat
ten overlapping forecasts of one place as ten independent pieces of evidence and give
intervals too narrow (``tests/test_paired.py`` shows it).

The interval is the percentile interval of the resampled differences. A difference whose
interval holds zero is "within noise": the backtest cannot tell the methods apart there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["best_baseline_comparison", "paired_median_difference"]

#: Verdicts of :func:`paired_median_difference`.
BETTER, WORSE, TIED = "better", "worse", "within noise"


def _weighted_medians(values: np.ndarray, cluster: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The median of ``values`` under each row of cluster ``counts`` ``(resample, cluster)``.

    A cell counts as many times as its cluster was drawn; the median is the smallest value
    whose cumulative weight reaches half the total: the values are sorted once, and each
    resample is one integer cumulative sum over its cells' weights, done in place.
    """
    order = np.argsort(values, kind="stable")
    cumulative = counts[:, cluster[order]]  # (resample, cell), a new integer array
    np.cumsum(cumulative, axis=1, out=cumulative)
    index = np.argmax(2 * cumulative >= cumulative[:, -1:], axis=1)
    return values[order][index]


def paired_median_difference(
    errors: np.ndarray,
    reference: np.ndarray,
    cluster: Sequence,
    *,
    level: float = 0.9,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, float | str]:
    """Difference in median of paired errors, with a cluster-bootstrap interval.

    Parameters
    ----------
    errors, reference
        Absolute errors of the method and of the method it is compared with, one pair per
        cell (same cells, same order). Pairs with a missing value in either are left out.
    cluster
        Cluster of each cell (the municipality): resampled as a whole.
    level
        Level of the central interval.
    n_boot
        Bootstrap resamples.
    seed
        Seed of the resampling.

    Returns
    -------
    dict
        ``difference`` (median of ``errors`` minus median of ``reference``), ``lo``,
        ``hi`` (the interval), ``verdict`` (``"better"`` where the interval lies below 0,
        ``"worse"`` above, else ``"within noise"``), ``n_cells``, ``n_clusters``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, not {level}.")
    errors = np.asarray(errors, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    labels = np.asarray(cluster)
    if not errors.shape == reference.shape == labels.shape or errors.ndim != 1:
        raise ValueError(
            f"errors {errors.shape}, reference {reference.shape} and cluster {labels.shape} "
            "must be 1-D and of one length (one pair of errors per cell)."
        )
    keep = np.isfinite(errors) & np.isfinite(reference)
    errors, reference, labels = errors[keep], reference[keep], labels[keep]
    if errors.size == 0:
        raise ValueError("no cell has both errors; nothing to compare.")
    _, cluster_id = np.unique(labels, return_inverse=True)
    n_clusters = int(cluster_id.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot)
    resampled = _weighted_medians(errors, cluster_id, counts) - _weighted_medians(
        reference, cluster_id, counts
    )
    tail = 0.5 * (1.0 - level)
    lo, hi = np.quantile(resampled, [tail, 1.0 - tail])
    verdict = BETTER if hi < 0 else WORSE if lo > 0 else TIED
    return {
        "difference": float(np.median(errors) - np.median(reference)),
        "lo": float(lo),
        "hi": float(hi),
        "verdict": verdict,
        "n_cells": int(errors.size),
        "n_clusters": n_clusters,
    }


def best_baseline_comparison(
    scores: pd.DataFrame,
    method: str = "bayes",
    *,
    horizons: Sequence[int] | None = None,
    level: float = 0.9,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each age group's median APE of ``method`` against the best other method.

    Parameters
    ----------
    scores
        ``BacktestResult.scores``: one row per origin, method, horizon, unit and age group
        with ``ape``; only ``level == "municipality"`` rows are used.
    method
        The method judged.
    horizons
        Horizons to compare (default: the last).
    level, n_boot, seed
        See :func:`paired_median_difference`.

    Returns
    -------
    pandas.DataFrame
        One row per horizon and age group: ``horizon, age_group, method, baseline`` (the
        other method with the lowest median APE over the cells both scored),
        ``median_ape``, ``baseline_median_ape``, ``difference``, ``lo``, ``hi``,
        ``level``, ``verdict``, ``n_cells``, ``n_municipalities``. Empty when ``method``
        or every other method is missing.
    """
    rows = scores
    if "level" in rows.columns:
        rows = rows[rows["level"] == "municipality"]
    if horizons is None:
        horizons = [int(rows["horizon"].max())] if not rows.empty else []
    keys = ["origin", "horizon", "municipality", "age_group"]
    out = []
    for horizon in horizons:
        at_h = rows[rows["horizon"] == horizon]
        wide = at_h.pivot_table(index=keys, columns="method", values="ape", aggfunc="first")
        if method not in wide.columns:
            continue
        others = [m for m in wide.columns if m != method]
        for group, cells in wide.groupby(level="age_group", sort=False):
            mine = cells[method].to_numpy()
            if not np.isfinite(mine).any():  # the method scored no cell of this group
                continue
            medians = {
                m: float(np.nanmedian(cells[m].where(np.isfinite(mine)).to_numpy()))
                for m in others
                if cells[m].notna().any()
            }
            medians = {m: v for m, v in medians.items() if np.isfinite(v)}
            if not medians:
                continue
            baseline = min(medians, key=medians.get)
            result = paired_median_difference(
                mine,
                cells[baseline].to_numpy(),
                cells.index.get_level_values("municipality").to_numpy(),
                level=level,
                n_boot=n_boot,
                seed=seed,
            )
            out.append(
                {
                    "horizon": int(horizon),
                    "age_group": group,
                    "method": method,
                    "baseline": baseline,
                    "median_ape": float(np.nanmedian(mine)),
                    "baseline_median_ape": medians[baseline],
                    "difference": result["difference"],
                    "lo": result["lo"],
                    "hi": result["hi"],
                    "level": level,
                    "verdict": result["verdict"],
                    "n_cells": result["n_cells"],
                    "n_municipalities": result["n_clusters"],
                }
            )
    return pd.DataFrame(out)
