"""Tables behind the figures: age groups, drivers of growth, rankings, convergence."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vekst.agegroups import AGE_GROUPS
from vekst.report.plot_helpers import (
    PlotInputError,
    _require_dims,
    _unit_dim,
    _unit_labels,
    stack_draws,
)

# --------------------------------------------------------------------------- age groups


def age_group_table(
    draws: xr.DataArray,
    years: Sequence[int] | None = None,
    groups: Sequence[tuple[str, int, int | None]] = AGE_GROUPS,
    *,
    total: bool = True,
) -> pd.DataFrame:
    """Persons by planning age group: mean and 10/50/90 % quantiles over draws.

    Draws are summed over the ages of a group (and over sex) *within each draw* before
    the quantiles are taken, so a group's interval is the interval of its total.

    Parameters
    ----------
    draws
        Persons, dims ``(draw, year, age)`` or ``(draw, year, age, sex)``; or already
        grouped, ``(draw, year, age_group)`` (then ``groups`` is not used and the rows
        follow the ``age_group`` coordinate).
    years
        Years to report; all years of ``draws`` when omitted.
    groups
        ``(label, first age, last age or None)``; default :data:`AGE_GROUPS`.
    total
        Add a row ``"Total"`` with all ages.

    Returns
    -------
    pandas.DataFrame
        Index: group label (in the order given). Columns: MultiIndex ``(year, statistic)``
        with statistic in ``mean, q10, q50, q90``.
    """
    draws = stack_draws(draws, what="age_group_table draws")
    if "sex" in draws.dims:
        draws = draws.sum("sex")
    pre_grouped = "age_group" in draws.dims and "age" not in draws.dims
    _require_dims(
        draws, ("draw", "year", "age_group" if pre_grouped else "age"), "age_group_table draws"
    )
    all_years = [int(y) for y in draws["year"].values]
    years = all_years if years is None else [int(y) for y in years]
    unknown = [y for y in years if y not in all_years]
    if unknown:
        raise PlotInputError(
            f"age_group_table: years {unknown} are not in the draws ({all_years[0]}-"
            f"{all_years[-1]})."
        )
    draws = draws.sel(year=years)
    rows: dict[str, xr.DataArray] = {}
    if pre_grouped:
        for label in draws["age_group"].values:
            rows[str(label)] = draws.sel(age_group=label)
        if total:
            rows["Total"] = draws.sum("age_group")
    else:
        ages = np.asarray(draws["age"].values)
        for label, first, last in groups:
            mask = (ages >= first) & (ages <= (ages.max() if last is None else last))
            rows[label] = draws.isel(age=np.flatnonzero(mask)).sum("age")
        if total:
            rows["Total"] = draws.sum("age")
    columns = pd.MultiIndex.from_product([years, ["mean", "q10", "q50", "q90"]])
    table = pd.DataFrame(index=pd.Index(list(rows), name="age group"), columns=columns, dtype=float)
    for label, values in rows.items():
        array = np.asarray(values.transpose("draw", "year").values, dtype=float)
        q10, q50, q90 = np.nanquantile(array, [0.1, 0.5, 0.9], axis=0)
        mean = np.nanmean(array, axis=0)
        for j, year in enumerate(years):
            table.loc[label, (year, "mean")] = mean[j]
            table.loc[label, (year, "q10")] = q10[j]
            table.loc[label, (year, "q50")] = q50[j]
            table.loc[label, (year, "q90")] = q90[j]
    table.columns.names = ["year", "statistic"]
    return table


# --------------------------------------------------------------------------- decomposition


def driver_summary(
    decomposition: xr.DataArray,
    *,
    years: Sequence[int] | None = None,
    low: float = 0.10,
    high: float = 0.90,
) -> pd.DataFrame:
    """Average yearly contribution of each growth component, with an interval.

    Each draw is first averaged over ``years``; the total is summed over components
    within each draw, so its interval accounts for how the components co-vary.

    Parameters
    ----------
    decomposition
        Persons per year, dims ``(draw, component, year)`` (one place; select or sum
        municipalities first).
    years
        Years to average over; all when omitted.
    low, high
        Quantiles of the interval.

    Returns
    -------
    pandas.DataFrame
        Index: components in input order plus ``"total"``; columns ``mean, q10, q90``
        (named after ``low``/``high`` rounded to per cent).
    """
    decomposition = stack_draws(decomposition, what="decomposition")
    _require_dims(decomposition, ("draw", "component", "year"), "decomposition")
    if years is not None:
        decomposition = decomposition.sel(year=list(years))
    per_draw = decomposition.mean("year").transpose("draw", "component")
    values = np.asarray(per_draw.values, dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    values = np.hstack([values, totals])
    names = [str(c) for c in per_draw["component"].values] + ["total"]
    lo_name, hi_name = f"q{round(low * 100)}", f"q{round(high * 100)}"
    return pd.DataFrame(
        {
            "mean": values.mean(axis=0),
            lo_name: np.quantile(values, low, axis=0),
            hi_name: np.quantile(values, high, axis=0),
        },
        index=pd.Index(names, name="component"),
    )


# --------------------------------------------------------------------------- ranking


def top_k_probability(draws: xr.DataArray, k: int = 10) -> pd.Series:
    """Probability that each unit is among the ``k`` highest, from the posterior draws.

    Units are ranked within each draw (largest value first; ties broken by position);
    the probability is the share of draws in which a unit's rank is at most ``k``.

    Parameters
    ----------
    draws
        Dims ``(draw, unit)`` or ``(chain, draw, unit)``; the unit dim may have any name.
    k
        Size of the top group (at least 1).

    Returns
    -------
    pandas.Series
        Indexed by unit (codes as strings), sorted from most to least likely. The values
        sum to ``min(k, number of units)``.
    """
    if k < 1:
        raise PlotInputError(f"top_k_probability: k must be at least 1, got {k}.")
    draws = stack_draws(draws, what="top_k_probability draws")
    dim = _unit_dim(draws, "top_k_probability draws")
    values = np.asarray(draws.transpose("draw", dim).values, dtype=float)
    # Sort descending with a stable sort so ties keep the input order.
    order = np.argsort(-values, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(values.shape[0])[:, None]
    ranks[rows, order] = np.arange(values.shape[1])[None, :]
    probability = (ranks < k).mean(axis=0)
    series = pd.Series(
        probability,
        index=pd.Index([str(c) for c in draws[dim].values], name=dim),
        name=f"P(top {k})",
    )
    return series.sort_values(ascending=False, kind="stable")


def ranking_table(
    draws: xr.DataArray,
    *,
    k: int = 10,
    prob: float = 0.94,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Posterior mean, central interval and top-``k`` probability per unit, sorted by mean.

    Parameters
    ----------
    draws
        Dims ``(draw, unit)`` or ``(chain, draw, unit)``.
    k
        Top group for the probability column.
    prob
        Probability of the central interval.
    labels
        Display names by unit code; default a ``name`` coordinate when present.

    Returns
    -------
    pandas.DataFrame
        Index: unit code; columns ``name, mean, low, high, p_top_k, rank`` (rank 1 = highest
        mean), sorted by ``mean`` descending.
    """
    draws = stack_draws(draws, what="ranking draws")
    dim = _unit_dim(draws, "ranking draws")
    names = _unit_labels(draws, dim, labels)
    values = np.asarray(draws.transpose("draw", dim).values, dtype=float)
    low, high = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    codes = [str(c) for c in draws[dim].values]
    table = pd.DataFrame(
        {
            "name": [names[c] for c in codes],
            "mean": values.mean(axis=0),
            "low": low,
            "high": high,
        },
        index=pd.Index(codes, name=dim),
    )
    table["p_top_k"] = top_k_probability(draws, k=k).reindex(table.index)
    table = table.sort_values("mean", ascending=False, kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    table.attrs.update({"k": k, "prob": prob})
    return table


# --------------------------------------------------------------------------- diagnostics


def convergence_table(
    diagnostics: Any,
    *,
    rhat_max: float | None = None,
    ess_min: float | None = None,
    bfmi_min: float | None = None,
) -> pd.DataFrame:
    """The convergence checks as a table: value, target and whether each passes.

    Parameters
    ----------
    diagnostics
        A :class:`vekst.fit.Diagnostics`, its ``as_dict()`` or the JSON stored in a fit's
        ``attrs["diagnostics"]``.
    rhat_max, ess_min, bfmi_min
        Targets; default the thresholds of the convergence gate in :mod:`vekst.fit`.

    Returns
    -------
    pandas.DataFrame
        Index: check; columns ``value``, ``target``, ``passed`` (bool; a BFMI that could not
        be computed counts as passed, as in the gate).
    """
    if rhat_max is None or ess_min is None or bfmi_min is None:
        from vekst.fit import BFMI_MIN, ESS_MIN, RHAT_MAX

        rhat_max = RHAT_MAX if rhat_max is None else rhat_max
        ess_min = ESS_MIN if ess_min is None else ess_min
        bfmi_min = BFMI_MIN if bfmi_min is None else bfmi_min
    if isinstance(diagnostics, str):
        diagnostics = json.loads(diagnostics)
    elif hasattr(diagnostics, "as_dict"):
        diagnostics = diagnostics.as_dict()
    if not isinstance(diagnostics, Mapping):
        raise PlotInputError(
            "convergence_table: pass vekst.fit.Diagnostics, its as_dict() or its JSON, not "
            f"{type(diagnostics).__name__}."
        )
    missing = [
        key
        for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min")
        if key not in diagnostics
    ]
    if missing:
        raise PlotInputError(f"convergence_table: diagnostics lack {missing}.")
    rhat = float(diagnostics["rhat_max"])
    bulk = float(diagnostics["ess_bulk_min"])
    tail = float(diagnostics["ess_tail_min"])
    divergences = int(diagnostics["divergences"])
    bfmi = float(diagnostics["bfmi_min"]) if diagnostics["bfmi_min"] is not None else np.nan
    rows = [
        ("Largest R-hat", rhat, f"≤ {rhat_max}", bool(rhat <= rhat_max)),
        ("Smallest bulk ESS", bulk, f"≥ {ess_min:.0f}", bool(bulk >= ess_min)),
        ("Smallest tail ESS", tail, f"≥ {ess_min:.0f}", bool(tail >= ess_min)),
        ("Divergent transitions", float(divergences), "0", divergences == 0),
        ("Smallest BFMI", bfmi, f"≥ {bfmi_min}", bool(not np.isfinite(bfmi) or bfmi >= bfmi_min)),
    ]
    return pd.DataFrame(
        [(value, target, passed) for _, value, target, passed in rows],
        index=pd.Index([name for name, *_ in rows], name="check"),
        columns=["value", "target", "passed"],
    )
