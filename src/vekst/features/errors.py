"""Errors of the features layer, and the helpers their messages use."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from vekst.errors import PanelError

__all__ = [
    "CommutingCoverageError",
    "EmptyCommutingRowError",
    "FeatureError",
    "MissingCommutingError",
    "MissingEmploymentError",
    "describe_municipalities",
    "years_with_data",
]


class FeatureError(PanelError):
    """A feature cannot be computed from the panel; the message says where and why."""


class MissingEmploymentError(FeatureError):
    """The panel lacks the employment counts a feature needs (variable or year)."""


class MissingCommutingError(FeatureError):
    """The panel has no commuting matrix at all, or none for a requested year."""


class CommutingCoverageError(MissingCommutingError):
    """A municipality is absent from (or has NaN cells in) a commuting matrix."""


class EmptyCommutingRowError(FeatureError):
    """A home municipality has no employed residents in a commuting matrix."""


def describe_municipalities(
    panel: xr.Dataset | xr.DataArray, codes: Iterable, limit: int = 8
) -> str:
    """Format codes as ``'3224 (Rælingen), 0301 (Oslo)'`` for error messages."""
    codes = [str(c) for c in codes]
    names: dict[str, str] = {}
    if "name" in panel.coords and "municipality" in panel["name"].dims:
        names = {
            str(c): str(n)
            for c, n in zip(panel["municipality"].values, panel["name"].values, strict=True)
        }
    parts = [f"{c} ({names[c]})" if c in names else c for c in codes[:limit]]
    more = f" and {len(codes) - limit} more" if len(codes) > limit else ""
    return ", ".join(parts) + more


def years_with_data(da: xr.DataArray) -> list[int]:
    """Years in which ``da`` has at least one non-missing value."""
    other = [d for d in da.dims if d != "year"]
    present = da.notnull().any(other) if other else da.notnull()
    return [int(y) for y in da["year"].values[np.asarray(present.values)]]
