"""Population figures: the fan chart and the probabilistic pyramid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from vekst.report.plot_helpers import (
    _BAND_COLOURS,
    _BLUE,
    _FEMALE,
    _MALE,
    PlotInputError,
    _new_axes,
    _require_dims,
    _thousands,
    stack_draws,
)

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


