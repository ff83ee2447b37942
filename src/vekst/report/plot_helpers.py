"""Shared pieces of the report's figures: colours, labels, draw stacking, axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vekst.errors import InputError

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
    "housing": "Housing completions",
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

