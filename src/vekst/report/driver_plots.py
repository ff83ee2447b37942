"""Figures of what drives growth: decomposition bars, the barometer, coefficients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vekst.report.plot_helpers import (
    _ATTRACT,
    _BLUE,
    _MIGRATION,
    _NEGATIVE,
    _NOISE,
    _POSITIVE,
    _TOTAL,
    _VITAL,
    _VITAL_COMPONENTS,
    COMPONENT_LABELS,
    PlotInputError,
    _new_axes,
    _require_dims,
    _root_figure,
    stack_draws,
)
from vekst.report.tables import ranking_table


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


