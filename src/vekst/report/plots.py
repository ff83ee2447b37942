"""Figures and tables planners read: fan charts, pyramids, drivers of growth, the barometer.

Every plot function takes plain labelled data (``xarray`` or ``pandas``), draws on the
``ax``/``axes`` it is given or on a new figure, and returns the
:class:`matplotlib.figure.Figure`. Nothing here calls ``show()``, reads files or knows
how the projection or the decomposition were computed, so the functions work on any
array with the documented dimensions. New figures are made with
:class:`matplotlib.figure.Figure` directly rather than ``pyplot``: no global figure
registry fills up when a report draws hundreds of them.

Posterior inputs may carry ``(chain, draw)`` or a single ``draw`` dimension; chains are
stacked into ``draw`` first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from vekst.agegroups import AGE_GROUPS
from vekst.errors import InputError

__all__ = [
    "AGE_GROUPS",
    "COMPONENT_LABELS",
    "PlotInputError",
    "age_group_table",
    "attractiveness_ranking",
    "coefficient_plot",
    "decomposition_chart",
    "decomposition_summary",
    "diagnostics_table",
    "fan_chart",
    "population_pyramid",
    "ranking_table",
    "stack_draws",
    "top_k_probability",
]

#: Plain-language names of the growth components of :mod:`vekst.decompose`.
COMPONENT_LABELS: dict[str, str] = {
    "expected_births": "Expected births",
    "fertility_deviation": "Births above/below expected",
    "expected_deaths": "Expected deaths",
    "mortality_deviation": "Deaths above/below expected",
    "national_immigration": "National immigration",
    "centrality": "Centrality",
    "own_jobs": "Job growth, own municipality",
    "neighbour_jobs": "Job growth, neighbours",
    "neighbours_jobs": "Job growth, neighbours",
    "ds": "Young people entering work (DS)",
    "attractiveness": "Attractiveness",
    "noise": "Unexplained (year-to-year noise)",
    "residual": "Unexplained (year-to-year noise)",
    "total": "Total growth",
}

_VITAL_COMPONENTS = frozenset(
    {"expected_births", "fertility_deviation", "expected_deaths", "mortality_deviation"}
)

# Colour-blind safe (Okabe-Ito) with one blue ramp for the bands.
_BLUE = "#0b5394"
_BAND_COLOURS = {0.95: "#c6dbef", 0.80: "#9ecae1", 0.50: "#6baed6"}
_FEMALE = "#cc6677"
_MALE = "#4477aa"
_VITAL = "#009e73"
_MIGRATION = "#0072b2"
_ATTRACT = "#e69f00"
_NOISE = "#999999"
_TOTAL = "#222222"
_POSITIVE = "#1b7837"
_NEGATIVE = "#b2182b"


class PlotInputError(InputError):
    """The data given to a plot function do not have the dimensions it needs."""


# --------------------------------------------------------------------------- helpers


def stack_draws(da: xr.DataArray, *, what: str = "draws") -> xr.DataArray:
    """Return ``da`` with one ``draw`` dimension (``chain`` and ``draw`` stacked).

    Parameters
    ----------
    da
        Posterior or projection draws with ``draw`` (and optionally ``chain``).
    what
        Name used in error messages.

    Returns
    -------
    xarray.DataArray
        ``draw`` first, numbered 0..n-1.

    Raises
    ------
    PlotInputError
        If ``da`` has no ``draw`` dimension.
    """
    if not isinstance(da, xr.DataArray):
        raise PlotInputError(f"{what}: expected an xarray.DataArray, got {type(da).__name__}")
    if "draw" not in da.dims:
        raise PlotInputError(
            f"{what}: no 'draw' dimension (dims are {list(da.dims)}); pass posterior or "
            "projection draws, not a summary."
        )
    if "chain" in da.dims:
        da = da.stack(_sample=("chain", "draw"))
        da = da.drop_vars(["_sample", "chain", "draw"], errors="ignore")
        da = da.rename({"_sample": "draw"})
    n = da.sizes["draw"]
    return da.transpose("draw", ...).assign_coords(draw=np.arange(n))


def _require_dims(da: xr.DataArray, dims: Sequence[str], what: str) -> None:
    extra = [d for d in da.dims if d not in dims]
    missing = [d for d in dims if d not in da.dims]
    if extra or missing:
        raise PlotInputError(
            f"{what}: needs dims {list(dims)}, got {list(da.dims)}"
            + (f"; sum or select {extra} first" if extra else "")
            + (f"; {missing} missing" if missing else "")
            + "."
        )


def _root_figure(ax: Axes) -> Figure:
    # Axes inside a SubFigure: return the figure that can be saved.
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no ``root``
        return ax.figure


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return _root_figure(ax), ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _thousands(value: float, _pos: Any = None) -> str:
    # Norwegian convention: a thin space groups thousands.
    return f"{value:,.0f}".replace(",", "\u2009")


def _unit_dim(da: xr.DataArray, what: str) -> str:
    others = [d for d in da.dims if d != "draw"]
    if len(others) != 1:
        raise PlotInputError(
            f"{what}: needs dims (draw, <unit>) with one unit dimension (region or "
            f"municipality), got {list(da.dims)}."
        )
    return str(others[0])


def _unit_labels(da: xr.DataArray, dim: str, labels: Mapping[str, str] | None) -> dict[str, str]:
    codes = [str(c) for c in da[dim].values]
    if labels is not None:
        return {c: str(labels.get(c, c)) for c in codes}
    for coord in ("name", f"{dim}_name", "region_name"):
        if coord in da.coords and da[coord].dims == (dim,):
            names = [str(n) for n in da[coord].values]
            return dict(zip(codes, names, strict=True))
    return {c: c for c in codes}


# --------------------------------------------------------------------------- fan chart


def fan_chart(
    history: pd.Series | xr.DataArray | None,
    draws: xr.DataArray,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    bands: Sequence[float] = (0.95, 0.80, 0.50),
    ylabel: str = "Persons (1 January)",
    legend: bool = True,
) -> Figure:
    """Observed history, projected median and nested uncertainty bands.

    Parameters
    ----------
    history
        Observed values by year (a ``pandas.Series`` indexed by year or a DataArray with
        dim ``year``); ``None`` draws the projection only.
    draws
        Projected values, dims ``(draw, year)`` (or ``(chain, draw, year)``).
    ax
        Axes to draw on; a new figure when omitted.
    title
        Axes title.
    bands
        Central interval probabilities, drawn from the widest to the narrowest.
    ylabel
        Label of the y axis.
    legend
        Draw a legend (switch off for small multiples).

    Returns
    -------
    matplotlib.figure.Figure
        One filled band per entry of ``bands``, a median line and, when given, the
        observed line.
    """
    draws = stack_draws(draws, what="fan_chart draws")
    _require_dims(draws, ("draw", "year"), "fan_chart draws")
    fig, ax = _new_axes(ax, (7.0, 4.0))
    years = np.asarray(draws["year"].values, dtype=float)
    values = np.asarray(draws.transpose("draw", "year").values, dtype=float)
    for prob in sorted(bands, reverse=True):
        low, high = np.nanquantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        colour = _BAND_COLOURS.get(round(prob, 2), _BAND_COLOURS[0.80])
        ax.fill_between(
            years, low, high, color=colour, linewidth=0, label=f"{prob * 100:.0f} % interval"
        )
    median = np.nanmedian(values, axis=0)
    ax.plot(years, median, color=_BLUE, linewidth=2.0, label="Median projection")
    if history is not None:
        if isinstance(history, xr.DataArray):
            _require_dims(history, ("year",), "fan_chart history")
            hist_years = np.asarray(history["year"].values, dtype=float)
            hist_values = np.asarray(history.values, dtype=float)
        else:
            hist_years = np.asarray(history.index, dtype=float)
            hist_values = np.asarray(history.values, dtype=float)
        ax.plot(hist_years, hist_values, color="black", linewidth=1.6, label="Observed")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins="auto"))
    ax.set_ylabel(ylabel)
    ax.set_xlabel("Year")
    ax.grid(True, axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    return fig


# --------------------------------------------------------------------------- pyramid


def _group_ages(da: xr.DataArray, group_size: int) -> xr.DataArray:
    if group_size <= 1:
        return da
    lower = (np.asarray(da["age"].values) // group_size) * group_size
    grouped = da.groupby(xr.DataArray(lower, dims="age", name="age_group")).sum("age")
    return grouped.rename({"age_group": "age"})


def population_pyramid(
    draws: xr.DataArray,
    year: int | None = None,
    ax: Axes | None = None,
    *,
    observed: xr.DataArray | None = None,
    observed_label: str | None = None,
    interval: float = 0.80,
    group_size: int = 1,
    title: str | None = None,
) -> Figure:
    """A probabilistic population pyramid: median bars with interval whiskers.

    Men are drawn to the left, women to the right. Each bar is the median number of
    persons of that age (or age group) over the draws; the whisker spans the central
    ``interval`` of the draws.

    Parameters
    ----------
    draws
        Persons, dims ``(draw, age, sex)``; with a ``year`` dimension ``year`` selects one.
        ``sex`` must hold ``"female"`` and ``"male"``.
    year
        The year shown (selected from ``draws`` when it has a ``year`` dim; used in the
        title).
    ax
        Axes to draw on; a new figure when omitted.
    observed
        Optional observed persons by ``(age, sex)`` drawn as an outline (e.g. the base year).
    observed_label
        Legend label of the outline.
    interval
        Probability of the whisker interval.
    group_size
        1 for single-year ages, 5 for five-year groups (the last group is open).
    title
        Axes title; default "Population <year>".

    Returns
    -------
    matplotlib.figure.Figure
        Two bar containers (labels "Men", "Women"), their whiskers and the optional outline.
    """
    draws = stack_draws(draws, what="population_pyramid draws")
    if "year" in draws.dims:
        if year is None:
            raise PlotInputError(
                "population_pyramid: draws have a 'year' dimension; pass year=... to choose one "
                f"of {[int(y) for y in draws['year'].values]}."
            )
        if year not in set(int(y) for y in draws["year"].values):
            raise PlotInputError(
                f"population_pyramid: year {year} is not in the draws (years "
                f"{int(draws['year'].min())}-{int(draws['year'].max())})."
            )
        draws = draws.sel(year=year)
    _require_dims(draws, ("draw", "age", "sex"), "population_pyramid draws")
    sexes = {str(s) for s in draws["sex"].values}
    if not {"female", "male"} <= sexes:
        raise PlotInputError(
            f"population_pyramid: coordinate 'sex' is {sorted(sexes)}; needs 'female' and 'male'."
        )
    draws = _group_ages(draws, group_size)
    fig, ax = _new_axes(ax, (6.0, 6.5))
    ages = np.asarray(draws["age"].values, dtype=float)
    height = 0.85 * max(group_size, 1)
    # Five-year groups: the bar covers its group, so place it at the group's middle.
    centres = ages + (group_size - 1) / 2 if group_size > 1 else ages
    q_low, q_high = (1 - interval) / 2, (1 + interval) / 2
    for sex, sign, colour, label in (
        ("male", -1.0, _MALE, "Men"),
        ("female", 1.0, _FEMALE, "Women"),
    ):
        values = np.asarray(draws.sel(sex=sex).transpose("draw", "age").values, dtype=float)
        median = np.nanmedian(values, axis=0)
        low, high = np.nanquantile(values, [q_low, q_high], axis=0)
        ax.barh(centres, sign * median, height=height, color=colour, alpha=0.75, label=label)
        left = np.minimum(sign * low, sign * high)
        right = np.maximum(sign * low, sign * high)
        x = sign * median
        ax.errorbar(
            x,
            centres,
            xerr=np.vstack([x - left, right - x]),
            fmt="none",
            ecolor="#333333",
            elinewidth=0.6,
            capsize=0,
            label=f"{interval * 100:.0f} % interval" if sign > 0 else None,
        )
    if observed is not None:
        _require_dims(observed, ("age", "sex"), "population_pyramid observed")
        observed = _group_ages(observed, group_size)
        obs_ages = np.asarray(observed["age"].values, dtype=float)
        obs_centres = obs_ages + (group_size - 1) / 2 if group_size > 1 else obs_ages
        for sex, sign in (("male", -1.0), ("female", 1.0)):
            ax.plot(
                sign * np.asarray(observed.sel(sex=sex).values, dtype=float),
                obs_centres,
                drawstyle="steps-mid",
                color="black",
                linewidth=0.9,
                label=(observed_label or "Observed") if sign > 0 else None,
            )
    ax.axvline(0.0, color="black", linewidth=0.6)
    limit = float(np.nanmax(np.abs(ax.get_xlim())))
    ax.set_xlim(-limit, limit)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _thousands(abs(v))))
    ax.set_xlabel("Persons (men left, women right)")
    ax.set_ylabel("Age" if group_size <= 1 else f"Age ({group_size}-year groups)")
    ax.set_title(title or (f"Population {year}" if year is not None else "Population"))
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return fig


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


def decomposition_summary(
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


def _signed_persons(value: float) -> str:
    if round(value) == 0:
        return "0"
    return f"{value:+,.0f}".replace(",", "\u2009").replace("-", "\u2212")


def _component_colour(name: str) -> str:
    if name in _VITAL_COMPONENTS:
        return _VITAL
    if name == "attractiveness":
        return _ATTRACT
    if name in ("noise", "residual"):
        return _NOISE
    return _MIGRATION


def decomposition_chart(
    summary: pd.DataFrame,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    units: str = "Persons per year",
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Horizontal bars of the drivers of yearly growth, with intervals and the total.

    Parameters
    ----------
    summary
        One row per component (index: component name), columns ``mean`` and an interval
        pair (``q10``/``q90`` or any two ``q..`` columns, lower first). A row named
        ``"total"`` is drawn as the total; without one the total is the sum of the means
        (drawn without an interval).
    ax
        Axes to draw on; a new figure when omitted.
    title
        Axes title.
    units
        x-axis label.
    labels
        Display names by component; default :data:`COMPONENT_LABELS`.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per component and one for the total (the last, at the bottom, dark).
    """
    if "mean" not in summary.columns:
        raise PlotInputError(
            f"decomposition_chart: summary needs a 'mean' column, has {list(summary.columns)}."
        )
    interval_cols = [c for c in summary.columns if str(c).startswith("q")]
    labels = {**COMPONENT_LABELS, **(labels or {})}
    parts = summary.drop(index="total", errors="ignore")
    if "total" in summary.index:
        total_row = summary.loc["total"]
    else:
        total_row = pd.Series({"mean": float(parts["mean"].sum())})
    fig, ax = _new_axes(ax, (7.5, 0.42 * (len(parts) + 2) + 1.2))
    names = [str(n) for n in parts.index]
    n = len(names)
    # Components from the top down, the total below a separating line.
    positions = np.arange(n, 0, -1, dtype=float)
    total_pos = -0.5
    means = parts["mean"].to_numpy(dtype=float)
    colours = [_component_colour(name) for name in names]
    ax.barh(positions, means, color=colours, height=0.7, label="Components")
    ax.barh([total_pos], [float(total_row["mean"])], color=_TOTAL, height=0.7, label="Total")
    # Each bar's extent: its interval where there is one, else the bar itself.
    total_mean = float(total_row["mean"])
    left = np.append(means, total_mean).astype(float)
    right = left.copy()
    if len(interval_cols) >= 2:
        lo_col, hi_col = interval_cols[0], interval_cols[1]
        lows = parts[lo_col].to_numpy(dtype=float)
        highs = parts[hi_col].to_numpy(dtype=float)
        ax.errorbar(
            means,
            positions,
            xerr=np.vstack([np.clip(means - lows, 0, None), np.clip(highs - means, 0, None)]),
            fmt="none",
            ecolor="#333333",
            elinewidth=1.0,
            capsize=3,
        )
        left[:n], right[:n] = np.minimum(lows, means), np.maximum(highs, means)
        total_low = float(total_row.get(lo_col, np.nan))
        total_high = float(total_row.get(hi_col, np.nan))
        if np.isfinite(total_low) and np.isfinite(total_high):
            ax.errorbar(
                [total_mean],
                [total_pos],
                xerr=[[max(total_mean - total_low, 0.0)], [max(total_high - total_mean, 0.0)]],
                fmt="none",
                ecolor="#333333",
                elinewidth=1.0,
                capsize=3,
            )
            left[n], right[n] = min(total_low, total_mean), max(total_high, total_mean)
    span = max(float(np.nanmax(np.abs(np.concatenate([left, right, [0.0]])))), 1e-9)
    for i, (y, value) in enumerate([*zip(positions, means, strict=True), (total_pos, total_mean)]):
        # Label beyond the whisker so number and interval do not overlap.
        anchor = right[i] if value >= 0 else left[i]
        offset = 0.02 * span * (1 if value >= 0 else -1)
        ax.text(
            anchor + offset,
            y,
            _signed_persons(value),
            va="center",
            ha="left" if value >= 0 else "right",
            fontsize="small",
        )
    ax.axvline(0.0, color="black", linewidth=0.7)
    ax.axhline(0.25, color="#888888", linewidth=0.6, linestyle="--")
    ax.set_yticks([*positions, total_pos])
    ax.set_yticklabels([labels.get(name, name) for name in names] + [labels["total"]])
    ax.set_xlabel(units)
    ax.set_xlim(-1.3 * span, 1.3 * span)
    ax.grid(True, axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


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


def attractiveness_ranking(
    draws: xr.DataArray,
    top: int | None = 20,
    ax: Axes | None = None,
    *,
    prob: float = 0.94,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    units: str = "Net migration beyond what jobs, centrality and DS explain (% per year)",
) -> Figure:
    """The barometer with error bars: posterior mean and interval per unit, sorted.

    Units whose interval lies wholly above zero are green, wholly below red, and grey
    where the data cannot tell the sign.

    Parameters
    ----------
    draws
        Attractiveness draws, dims ``(draw, unit)`` or ``(chain, draw, unit)``; the unit
        dim is ``region`` or ``municipality`` (any name works).
    top
        Show this many units with the highest mean; all when ``None``.
    ax
        Axes to draw on; a new figure when omitted.
    prob
        Probability of the interval (default 94 %).
    labels
        Display names by unit code; default a ``name`` coordinate when present, else codes.
    title
        Axes title.
    units
        x-axis label.

    Returns
    -------
    matplotlib.figure.Figure
        y tick labels list the units from the highest mean (top row) downwards.
    """
    table = ranking_table(draws, prob=prob, labels=labels)
    if top is not None:
        table = table.head(top)
    n = len(table)
    fig, ax = _new_axes(ax, (7.0, 0.28 * n + 1.3))
    positions = np.arange(n, 0, -1, dtype=float)
    means = table["mean"].to_numpy()
    colours = np.where(
        table["low"].to_numpy() > 0,
        _POSITIVE,
        np.where(table["high"].to_numpy() < 0, _NEGATIVE, _NOISE),
    )
    ax.hlines(positions, table["low"], table["high"], colors=colours, linewidth=2.0)
    ax.scatter(means, positions, color=colours, zorder=3, s=18)
    ax.axvline(0.0, color="black", linewidth=0.7)
    ax.set_yticks(positions)
    ax.set_yticklabels(table["name"].tolist())
    ax.set_ylim(0.3, n + 0.7)
    ax.set_xlabel(units)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title or f"Attractiveness: mean and {prob * 100:.0f} % interval")
    return fig


# --------------------------------------------------------------------------- coefficients


def coefficient_plot(
    beta_year: xr.DataArray,
    beta_mu: xr.DataArray,
    ols_beta_year: xr.DataArray,
    axes: Sequence[Axes] | np.ndarray | None = None,
    *,
    ols_beta_year_se: xr.DataArray | None = None,
    prob: float = 0.94,
    labels: Mapping[str, str] | None = None,
    observed: xr.DataArray | None = None,
) -> Figure:
    """Coefficients by year: the pooled Bayesian model against year-by-year OLS.

    One panel per covariate. The shaded band is the pooled coefficient (``beta_mu``, its
    ``prob`` interval); blue points with bars are the partially pooled yearly
    coefficients; open squares are the year-by-year OLS estimates (with 95 % bars when
    ``ols_beta_year_se`` is given). Years in which a covariate was not observed (see
    ``observed``) are drawn in grey: there the yearly coefficient only repeats what the
    other years say.

    Parameters
    ----------
    beta_year
        Posterior draws, dims ``(draw, covariate, year)`` (or with ``chain``).
    beta_mu
        Posterior draws, dims ``(draw, covariate)`` (or with ``chain``).
    ols_beta_year
        Year-by-year OLS, dims ``(covariate, year)``; NaN years are skipped.
    axes
        At least one axes per covariate; new figure when omitted.
    ols_beta_year_se
        Standard errors of ``ols_beta_year``.
    prob
        Interval probability of the Bayesian estimates.
    labels
        Display names by covariate.
    observed
        Boolean ``(covariate, year)``: whether the covariate had data that year (e.g. a
        fit's ``fit_data["x_available"].any("municipality")``); all years when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    beta_year = stack_draws(beta_year, what="beta_year")
    beta_mu = stack_draws(beta_mu, what="beta_mu")
    _require_dims(beta_year, ("draw", "covariate", "year"), "beta_year")
    _require_dims(beta_mu, ("draw", "covariate"), "beta_mu")
    _require_dims(ols_beta_year, ("covariate", "year"), "ols_beta_year")
    covariates = [str(c) for c in beta_year["covariate"].values]
    labels = dict(labels or {})
    if axes is None:
        ncols = min(3, len(covariates))
        nrows = int(np.ceil(len(covariates) / ncols))
        fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for extra in grid[len(covariates) :]:
            extra.set_visible(False)
        axes_list = list(grid[: len(covariates)])
    else:
        axes_list = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(axes_list) < len(covariates):
            raise PlotInputError(
                f"coefficient_plot: {len(covariates)} covariates need as many axes, got "
                f"{len(axes_list)}."
            )
        fig = _root_figure(axes_list[0])
    q = [(1 - prob) / 2, (1 + prob) / 2]
    years = np.asarray(beta_year["year"].values, dtype=float)
    for ax, cov in zip(axes_list, covariates, strict=False):
        pooled = np.asarray(beta_mu.sel(covariate=cov).values, dtype=float)
        p_low, p_high = np.quantile(pooled, q)
        ax.axhspan(p_low, p_high, color="#d9d9d9", alpha=0.8, label="Pooled (all years)")
        ax.axhline(pooled.mean(), color="#555555", linewidth=1.0)
        yearly = np.asarray(beta_year.sel(covariate=cov).transpose("draw", "year").values)
        y_mean = yearly.mean(axis=0)
        y_low, y_high = np.quantile(yearly, q, axis=0)
        has_data = np.ones(years.size, dtype=bool)
        if observed is not None and cov in set(observed["covariate"].values.astype(str)):
            has_data = np.asarray(
                observed.sel(covariate=cov)
                .reindex(year=beta_year["year"].values, fill_value=False)
                .values,
                dtype=bool,
            )
        for mask, colour, label in (
            (has_data, _BLUE, "Bayesian, by year"),
            (~has_data, _NOISE, "Bayesian, year without data"),
        ):
            if not mask.any():
                continue
            ax.errorbar(
                years[mask] - 0.15,
                y_mean[mask],
                yerr=np.vstack([y_mean[mask] - y_low[mask], y_high[mask] - y_mean[mask]]),
                fmt="o",
                color=colour,
                markersize=3.5,
                elinewidth=1.0,
                label=label,
            )
        ols = ols_beta_year.sel(covariate=cov)
        ols_years = np.asarray(ols["year"].values, dtype=float)
        ols_values = np.asarray(ols.values, dtype=float)
        keep = np.isfinite(ols_values)
        yerr = None
        if ols_beta_year_se is not None:
            se = np.asarray(ols_beta_year_se.sel(covariate=cov).values, dtype=float)[keep]
            yerr = 1.96 * se
        ax.errorbar(
            ols_years[keep] + 0.15,
            ols_values[keep],
            yerr=yerr,
            fmt="s",
            mfc="white",
            color="#d55e00",
            markersize=3.5,
            elinewidth=0.8,
            label="OLS, year by year",
        )
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.set_title(labels.get(cov, cov))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.grid(True, axis="y", alpha=0.3)
    axes_list[0].legend(loc="best", fontsize="x-small", frameon=False)
    return fig


# --------------------------------------------------------------------------- diagnostics


def diagnostics_table(
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
            "diagnostics_table: pass vekst.fit.Diagnostics, its as_dict() or its JSON, not "
            f"{type(diagnostics).__name__}."
        )
    missing = [
        key
        for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min")
        if key not in diagnostics
    ]
    if missing:
        raise PlotInputError(f"diagnostics_table: diagnostics lack {missing}.")
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
