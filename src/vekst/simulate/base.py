"""Inputs taken from the real base panel: regions, municipalities, national rates,
commuting shares and the first employment level of a Simulated Norway panel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import xarray as xr

from vekst.errors import InputError

__all__ = ["SimulationError", "default_regions"]


class SimulationError(InputError):
    """A simulation cannot be set up (unknown regions, years outside the base data...)."""


def default_regions(base: xr.Dataset, k: int) -> list[str]:
    """The ``k`` labour-market regions with the most municipalities (ties by code).

    Oslo/Bærum (``005``) is left out: one city of 700,000 next to small places makes a
    poor default for quick checks.

    Parameters
    ----------
    base
        A panel with a ``region`` coordinate (normally the embedded one).
    k
        Number of regions.

    Returns
    -------
    list of str
        Region codes.
    """
    codes, counts = np.unique(base["region"].values.astype(str), return_counts=True)
    order = sorted(
        (c for c in codes if c != "005"), key=lambda c: (-counts[list(codes).index(c)], c)
    )
    if k < 1 or k > len(order):
        raise SimulationError(f"k must be between 1 and {len(order)} regions, got {k}.")
    return sorted(order[:k])


def nearest_years(available: Sequence[int], wanted: Iterable[int]) -> list[int]:
    available = list(available)
    return [min(available, key=lambda a, w=int(w): (abs(a - w), a)) for w in wanted]


def years_with_data(da: xr.DataArray) -> list[int]:
    other = [d for d in da.dims if d != "year"]
    present = da.notnull().any(other) if other else da.notnull()
    return [int(y) for y in da["year"].values[np.asarray(present.values)]]


def rates_on(base: xr.Dataset, name: str, years: list[int]) -> xr.DataArray:
    """A national rate on ``years``, years without data taking the nearest year's values."""
    rate = base[name]
    available = years_with_data(rate)
    if not available:
        raise SimulationError(f"the base panel's '{name}' has no data in any year.")
    source = nearest_years(available, years)
    out = rate.sel(year=source).assign_coords(year=years)
    out.attrs = {
        **rate.attrs,
        "simulation_note": "copied from the embedded panel; years without data reuse the "
        "nearest year's rates",
    }
    return out


def select_municipalities(base: xr.Dataset, regions: Sequence[str] | None) -> xr.Dataset:
    if regions is None:
        return base
    wanted = [regions] if isinstance(regions, str) else [str(r) for r in regions]
    known = {str(r) for r in base["region"].values}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise SimulationError(
            f"unknown labour-market region code(s) {unknown}; the base panel has "
            f"{len(known)} regions, e.g. {sorted(known)[:8]}. Use the BA-region codes of the "
            "panel's 'region' coordinate (or vekst.simulate.default_regions)."
        )
    mask = np.isin(base["region"].values.astype(str), wanted)
    chosen = base.isel(municipality=np.flatnonzero(mask))
    return chosen.sel(work_municipality=chosen["municipality"].values)


def commuting_shares(base: xr.Dataset, years: list[int]) -> np.ndarray:
    """Real commuting shares (home, work, year) over the selected municipalities."""
    codes = base["municipality"].values
    flows = base["commuting"].sel(work_municipality=codes)
    flows = flows.transpose("municipality", "work_municipality", "year")
    available = years_with_data(flows)
    n = base.sizes["municipality"]
    if not available:
        raise SimulationError(
            "the base panel has no commuting matrix; Simulated Norway needs real commuting "
            "shares (the embedded panel has 2017-2021)."
        )
    out = np.empty((n, n, len(years)))
    for j, source in enumerate(nearest_years(available, years)):
        matrix = np.nan_to_num(flows.sel(year=source).values.astype(float), nan=0.0)
        total = matrix.sum(1, keepdims=True)
        # A home municipality whose residents all work outside the selection works at home.
        matrix = np.where(total > 0, matrix / np.where(total > 0, total, 1.0), np.eye(n))
        out[:, :, j] = matrix
    return out


def initial_jobs(base: xr.Dataset, population: np.ndarray) -> np.ndarray:
    jobs = base["employed_workplace"].transpose("municipality", "year")
    available = years_with_data(jobs)
    level = (
        jobs.sel(year=available[0]).values.astype(float)
        if available
        else np.full(base.sizes["municipality"], np.nan)
    )
    fallback = 0.45 * population
    level = np.where(np.isfinite(level) & (level > 0), level, fallback)
    return np.maximum(np.rint(level), 1.0)
