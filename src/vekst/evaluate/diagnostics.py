"""Diagnostics of the bands: how the predictive variance grows, and what rescaling would take.

* :func:`predictive_variance` -- the variance over draws of the forecast totals by horizon,
  in persons² and relative to the median (%²), averaged over units.
* :func:`variance_growth` -- the exponent ``b`` of ``variance ~ h^b`` per origin, method
  and level (least squares on log variance against log horizon). Independent yearly
  shocks give ``b ≈ 1`` for the cumulative population error; persistent shocks give
  more (the observed errors of the embedded panel grow like ``h^1.4`` to ``h^2``, see
  ``docs`` and issue 14), so an honest model should show ``b > 1``.
* :func:`rescaling_factors` -- by horizon and size class, the factor by which each band's
  half-widths (median to bound, on the side of the observation) would have to be
  multiplied for the band to cover its nominal share. **A diagnostic only**: it leaves
  the correlation between municipalities as it is, so it cannot make county or region
  bands honest, and it is not applied to any forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vekst.evaluate.metrics import DEFAULT_LEVELS
from vekst.evaluate.scoring import SIZE_CLASSES, TOTAL

__all__ = ["predictive_variance", "rescaling_factors", "variance_growth"]


def predictive_variance(
    forecast: xr.DataArray, origin: int, method: str, level: str
) -> pd.DataFrame:
    """Variance over draws of the forecast totals, averaged over units, by horizon.

    Parameters
    ----------
    forecast
        ``(draw, year, municipality, age_group)`` with a ``"total"`` age group.
    origin, method, level
        Labels of the rows.

    Returns
    -------
    pandas.DataFrame
        ``origin, method, level, horizon, n, variance`` (mean over units, persons²),
        ``relative_variance`` (mean of ``(sd / median * 100)²``, %²) and
        ``median_relative_sd`` (median over units of ``sd / median``, %).
    """
    totals = forecast.sel(age_group=TOTAL).astype(np.float64)
    variance = totals.var("draw", ddof=1) if totals.sizes["draw"] > 1 else totals.isel(draw=0) * 0
    median = totals.median("draw")
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = (100.0 * np.sqrt(variance) / median).where(median > 0)
    years = np.asarray(totals["year"].values)
    return pd.DataFrame(
        {
            "origin": origin,
            "method": method,
            "level": level,
            "horizon": years - origin,
            "n": totals.sizes["municipality"],
            "variance": variance.mean("municipality").values,
            "relative_variance": (relative**2).mean("municipality").values,
            "median_relative_sd": relative.median("municipality").values,
        }
    )


def _slope(horizon: np.ndarray, value: np.ndarray) -> float:
    keep = np.isfinite(value) & (value > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(horizon[keep]), np.log(value[keep]), 1)[0])


def variance_growth(variance: pd.DataFrame) -> pd.DataFrame:
    """Growth exponent of the predictive variance with horizon.

    Parameters
    ----------
    variance
        Output of :func:`predictive_variance` (several origins, methods, levels).

    Returns
    -------
    pandas.DataFrame
        ``origin, method, level, exponent`` (of the relative variance; ``> 1``: faster
        than linear) and ``pooled`` rows (``origin = "pooled"``) fitted on the mean over
        origins; methods without spread (zero variance) are left out.
    """
    if variance.empty:
        return pd.DataFrame(columns=["origin", "method", "level", "exponent"])
    rows = []
    for (origin, method, level), group in variance.groupby(["origin", "method", "level"]):
        exponent = _slope(group["horizon"].to_numpy(float), group["relative_variance"].to_numpy())
        if np.isfinite(exponent):
            rows.append((origin, method, level, exponent))
    pooled = variance.groupby(["method", "level", "horizon"], as_index=False)[
        "relative_variance"
    ].mean()
    for (method, level), group in pooled.groupby(["method", "level"]):
        exponent = _slope(group["horizon"].to_numpy(float), group["relative_variance"].to_numpy())
        if np.isfinite(exponent):
            rows.append(("pooled", method, level, exponent))
    return pd.DataFrame(rows, columns=["origin", "method", "level", "exponent"])


def rescaling_factors(
    scores: pd.DataFrame,
    *,
    method: str = "bayes",
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> pd.DataFrame:
    """Factors that would make the municipal bands cover their nominal share (diagnostic).

    For each scored municipality-year the ratio ``r = |y - median| / w`` is formed, with
    ``w`` the half-width of the band on the side of the observation (``upper - median`` if
    ``y`` lies above the median, else ``median - lower``); the band scaled by ``c`` covers
    ``y`` exactly when ``r <= c``, so the nominal-coverage factor is the ``L`` quantile of
    ``r`` over the group.

    Parameters
    ----------
    scores
        :attr:`vekst.evaluate.BacktestResult.scores`.
    method
        The ensemble method to diagnose.
    levels
        Interval levels.

    Returns
    -------
    pandas.DataFrame
        ``horizon, size_class`` (``"all"`` pools them), ``level``, ``n``, ``coverage``
        (as forecast) and ``scale`` (the factor; 1 means the band was right).
    """
    rows = scores[(scores["method"] == method) & (scores["age_group"] == TOTAL)]
    if "level" in rows.columns:
        rows = rows[rows["level"] == "municipality"]
    out = []
    if rows.empty:
        return pd.DataFrame(columns=["horizon", "size_class", "level", "n", "coverage", "scale"])
    classes = [label for label, _ in SIZE_CLASSES] + ["all"]
    for horizon, by_h in rows.groupby("horizon"):
        for label in classes:
            group = by_h if label == "all" else by_h[by_h["size_class"] == label]
            if group.empty:
                continue
            y = group["observed"].to_numpy(float)
            point = group["point"].to_numpy(float)
            for level in levels:
                name = f"{round(100 * level):d}"
                above = y > point
                width = np.where(
                    above,
                    group[f"upper_{name}"].to_numpy(float) - point,
                    point - group[f"lower_{name}"].to_numpy(float),
                )
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.abs(y - point) / width
                ratio = np.where(np.abs(y - point) == 0, 0.0, ratio)
                ratio = ratio[~np.isnan(ratio)]
                out.append(
                    {
                        "horizon": int(horizon),
                        "size_class": label,
                        "level": level,
                        "n": int(ratio.size),
                        "coverage": float(group[f"cover_{name}"].mean()),
                        "scale": float(np.quantile(ratio, level)) if ratio.size else np.nan,
                    }
                )
    return pd.DataFrame(out)
