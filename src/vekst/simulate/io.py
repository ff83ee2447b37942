"""Reading and writing a simulated panel with its truth (one netCDF file, two groups)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from vekst.data.panel import validate_panel
from vekst.io import atomic_write
from vekst.simulate.base import SimulationError

__all__ = ["TRUTH_GROUP", "read_simulated", "write_simulated"]

TRUTH_GROUP = "truth"


def write_simulated(panel: xr.Dataset, truth: xr.Dataset, path: str | Path) -> Path:
    """Write a simulated panel (root group) and its truth (group ``truth``) atomically.

    Parameters
    ----------
    panel, truth
        Output of :func:`vekst.simulate.simulate_panel`.
    path
        Target netCDF file (h5netcdf engine); written to a temporary file in the same
        folder first, then renamed.

    Returns
    -------
    pathlib.Path
    """

    def write(tmp: str) -> None:
        panel.to_netcdf(tmp, engine="h5netcdf", mode="w")
        truth.to_netcdf(tmp, engine="h5netcdf", mode="a", group=TRUTH_GROUP)

    return atomic_write(path, write)


def read_simulated(path: str | Path) -> tuple[xr.Dataset, xr.Dataset]:
    """Read a file written by :func:`write_simulated`.

    Parameters
    ----------
    path
        The netCDF file.

    Returns
    -------
    (xarray.Dataset, xarray.Dataset)
        The validated panel and its truth.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; create it with `vekst simulate --out {path}`.")
    panel = xr.load_dataset(path, engine="h5netcdf")
    try:
        truth = xr.load_dataset(path, engine="h5netcdf", group=TRUTH_GROUP)
    except OSError as error:
        raise SimulationError(
            f"{path} has no '{TRUTH_GROUP}' group; it was not written by write_simulated."
        ) from error
    validate_panel(panel, code_vintage=2024, source=path.name)
    return panel, truth
