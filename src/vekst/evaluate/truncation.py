"""The cut at a backtest origin: the panel exactly as it was known on 1 January ``origin``.

Nothing observed on or after 1 January of the origin (beyond that day's stock) may reach a
fit, a baseline or a projection; :func:`truncate_panel` enforces it and
:func:`_assert_no_future` fails loudly if a later value survived.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.data.commuting_flows import YEAR, is_sparse_commuting
from vekst.errors import InputError

__all__ = ["BacktestError", "truncate_panel"]

_STOCK_KINDS = ("stock",)


class BacktestError(InputError):
    """A backtest cannot run as asked; the message names the origin/method and the fix."""


def truncate_panel(panel: xr.Dataset, origin: int) -> xr.Dataset:
    """The panel as it was known on 1 January ``origin``.

    * every dimension called ``year`` keeps the years up to ``origin``; every other
      dimension whose name ends in ``year`` (e.g. ``hist_year`` of the national rate
      histories) keeps the calendar years before ``origin``: later labels are dropped, not
      masked;
    * in year ``origin`` only stocks (``attrs["kind"] == "stock"``) keep their values; flows,
      rates and shares of calendar year ``origin`` (which end after 1 January ``origin``)
      become NaN;
    * the variables derived from stocks (those of
      :data:`vekst.data.components.DERIVED_VARIABLES` -- ``births``, ``net_migration``,
      ``net_migration_total`` -- marked ``attrs["derived"] == "yes"``) are dropped and
      recomputed from the truncated stocks with
      :func:`vekst.data.components.add_derived_components`, so no value computed from a
      later stock survives.

    Parameters
    ----------
    panel
        A panel (see :mod:`vekst.data.panel`).
    origin
        First year to forecast; its 1 January stock is the last observation kept.

    Returns
    -------
    xarray.Dataset
        A new dataset; ``attrs["backtest_origin"]`` records the cut.

    Raises
    ------
    BacktestError
        If ``origin`` is not a panel year or leaves fewer than two stock years.
    """
    years = np.asarray(panel["year"].values, dtype=np.int64)
    if origin not in years:
        raise BacktestError(
            f"origin {origin} is not a year of the panel ({years[0]}-{years[-1]}); choose an "
            "origin whose 1 January population the panel holds."
        )
    if int(np.sum(years < origin)) < 1:
        raise BacktestError(
            f"origin {origin} leaves no calendar year of flows before it (panel starts "
            f"{years[0]}); choose a later origin."
        )
    from vekst.data.commuting_flows import drop_commuting_from
    from vekst.data.components import DERIVED_VARIABLES, add_derived_components

    selection: dict[str, np.ndarray] = {}
    for dim in panel.dims:
        name = str(dim)
        if name == "year":
            selection[name] = np.flatnonzero(years <= origin)
        elif name.endswith("year"):
            labels = np.asarray(panel[name].values)
            selection[name] = np.flatnonzero(labels.astype(np.int64) < origin)
    truncated = drop_commuting_from(panel.isel(selection), origin)
    # Observed components (attrs derived != "yes") are flows like any other: cut and masked.
    derived = [
        n
        for n in DERIVED_VARIABLES
        if n in truncated.data_vars and truncated[n].attrs.get("derived", "no") == "yes"
    ]
    truncated = truncated.drop_vars(derived)
    for name in list(truncated.data_vars):
        da = truncated[name]
        if "year" in da.dims and da.attrs.get("kind") not in _STOCK_KINDS:
            masked = da.where(da["year"] < origin)
            masked.attrs = dict(da.attrs)
            truncated[name] = masked
    if derived:
        if "mortality_rate" not in truncated:
            raise BacktestError(
                f"the panel's {derived} are derived from stocks but it has no "
                "'mortality_rate' to derive them again after the cut; add national death "
                "rates or observed components."
            )
        recomputed = add_derived_components(truncated)
        for name in derived:
            truncated[name] = recomputed[name]
    truncated.attrs = {**panel.attrs, "backtest_origin": int(origin)}
    _assert_no_future(truncated, origin)
    return truncated


def _assert_no_future(panel: xr.Dataset, origin: int) -> None:
    """Guard: fail loudly if anything after the cut survived (a bug, not a user error)."""
    for dim in panel.dims:
        name = str(dim)
        if name == "year" and int(panel[name].max()) > origin:
            raise AssertionError(f"truncation kept year {int(panel[name].max())} > {origin}")
        if name != "year" and name.endswith("year") and panel.sizes[name]:
            if int(np.max(panel[name].values)) >= origin:
                raise AssertionError(f"truncation kept {name} >= {origin}")
    if is_sparse_commuting(panel):
        latest = int(np.max(panel[YEAR].values, initial=origin - 1))
        if latest >= origin:
            raise AssertionError(f"truncation kept commuting flows of {latest}")
    for name, da in panel.data_vars.items():
        if "year" in da.dims and da.attrs.get("kind") not in _STOCK_KINDS:
            if bool(da.sel(year=origin).notnull().any()):
                raise AssertionError(f"'{name}' has values in the origin year {origin}")
