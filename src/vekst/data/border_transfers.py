"""Border transfers that a panel's redistricting left in its population counts.

A panel moved onto one code vintage sums merged municipalities over their whole history,
but a transfer of part of a municipality to another (common at the 2017-2020 reforms) is
only corrected where the source knew how many people moved. Where it did not, one
municipality gains and a neighbour loses about the same number of people in one year,
and the residual method books both as migration: the embedded panel has Tønsberg at
+5.1 % and Sandefjord at -2.3 % net migration in 2016. A fit takes the pair for a
migration shock and a backtest scores it as a miss. :func:`suspected_border_transfers`
finds such mirrored jumps so that a user can check them against the source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["suspected_border_transfers"]

#: Years on each side whose median change is a municipality's usual change.
WINDOW = 3


def _unusual_change(totals: np.ndarray) -> np.ndarray:
    """Each year's change less the median change of the ``WINDOW`` years on either side."""
    change = np.diff(totals, axis=1)
    excess = np.full_like(change, np.nan)
    n_years = change.shape[1]
    for t in range(n_years):
        others = [k for k in range(max(0, t - WINDOW), min(n_years, t + WINDOW + 1)) if k != t]
        if others:
            excess[:, t] = change[:, t] - np.median(change[:, others], axis=1)
    return excess


def suspected_border_transfers(
    panel: xr.Dataset,
    *,
    min_share: float = 0.015,
    min_persons: float = 200.0,
    max_ratio: float = 2.0,
) -> pd.DataFrame:
    """Pairs of municipalities in one county whose populations jump in opposite directions.

    Parameters
    ----------
    panel
        A panel with ``population`` (municipality, year, ...) and a ``county`` coordinate
        (without it every municipality is its own county and nothing is found).
    min_share
        Smallest unusual change, as a share of each municipality's population.
    min_persons
        Smallest unusual change, in persons, of each of the two.
    max_ratio
        Largest ratio between the gain and the loss (either way).

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``year`` (the flow year, from 1 January ``year`` to 1 January
        ``year + 1``), ``gaining`` and ``losing`` (code and name), ``gained`` and
        ``lost`` (the unusual change in persons, beyond the median change of the
        municipality in the three years on either side). Empty when nothing is found.
    """
    totals = (
        panel["population"]
        .sum([d for d in panel["population"].dims if d not in ("municipality", "year")])
        .transpose("municipality", "year")
        .values.astype(np.float64)
    )
    excess = _unusual_change(totals)
    share = excess / totals[:, :-1]
    codes = panel["municipality"].values.astype(str)
    names = panel["name"].values.astype(str) if "name" in panel.coords else codes
    county = panel["county"].values.astype(str) if "county" in panel.coords else codes
    years = panel["year"].values
    rows = []
    for t in range(excess.shape[1]):
        big = np.abs(excess[:, t]) >= min_persons
        gains = np.flatnonzero(big & (share[:, t] >= min_share))
        losses = np.flatnonzero(big & (share[:, t] <= -min_share))
        for loss in losses:
            # A loss goes to one place: the gain in its county nearest to it in size.
            candidates = [g for g in gains if county[g] == county[loss]]
            if not candidates:
                continue
            ratios = excess[candidates, t] / -excess[loss, t]
            best = int(np.argmin(np.abs(np.log(ratios))))
            g = candidates[best]
            if 1 / max_ratio <= ratios[best] <= max_ratio:
                rows.append({
                    "year": int(years[t]),
                    "gaining": f"{codes[g]} {names[g]}",
                    "losing": f"{codes[loss]} {names[loss]}",
                    "gained": round(float(excess[g, t])),
                    "lost": round(float(-excess[loss, t])),
                })
    return pd.DataFrame(rows, columns=["year", "gaining", "losing", "gained", "lost"])
