"""The embedded default panel: real Norwegian data on 2024 municipality codes.

The data files live in the repository's top-level ``data/`` folder (see ``data/README.md``
for sources, licences and how every variable was made). :func:`data_dir` finds that folder
next to the package source (``<repo>/src/vekst/data/default.py`` -> ``<repo>/data``); set
the environment variable ``VEKST_DATA_DIR`` to use another folder (it takes precedence).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import xarray as xr

from vekst.data.components import add_derived_components
from vekst.data.panel import validate_panel
from vekst.errors import InputError

__all__ = [
    "DEFAULT_PANEL_FILE",
    "DefaultDataNotFoundError",
    "data_dir",
    "default_panel_path",
    "load_default",
]

DEFAULT_PANEL_FILE = "vekst_default.nc"
ENV_VAR = "VEKST_DATA_DIR"


class DefaultDataNotFoundError(InputError, FileNotFoundError):
    """The folder with the embedded data (``data/``) could not be found."""


def data_dir() -> Path:
    """Folder holding the embedded data files.

    Returns
    -------
    pathlib.Path
        ``$VEKST_DATA_DIR`` if set, else ``<repo>/data`` next to the package source.

    Raises
    ------
    DefaultDataNotFoundError
        If the folder does not exist.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        folder = Path(override).expanduser()
        if not folder.is_dir():
            raise DefaultDataNotFoundError(
                f"{ENV_VAR}={override!r} is not a folder; point it at the folder holding "
                f"{DEFAULT_PANEL_FILE} and municipality_codes.csv, or unset it."
            )
        return folder
    folder = Path(__file__).resolve().parents[3] / "data"
    if not folder.is_dir():
        raise DefaultDataNotFoundError(
            f"embedded data folder {folder} not found (vekst looks for 'data/' at the root of "
            "its source tree). Install vekst from a source checkout (pip install -e .) or set "
            f"{ENV_VAR} to a folder holding {DEFAULT_PANEL_FILE}."
        )
    return folder


def default_panel_path() -> Path:
    """Path of the embedded panel file.

    Returns
    -------
    pathlib.Path
        ``data_dir() / "vekst_default.nc"``.

    Raises
    ------
    DefaultDataNotFoundError
        If the file is missing (rebuild it with ``python -m vekst.data.build``).
    """
    path = data_dir() / DEFAULT_PANEL_FILE
    if not path.is_file():
        raise DefaultDataNotFoundError(
            f"{path} not found. Rebuild it with 'python -m vekst.data.build --source "
            f"<real data folder> --out {path}' or set {ENV_VAR}."
        )
    return path


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> xr.Dataset:
    # mtime_ns is part of the cache key so that a rebuilt file is re-read.
    panel = add_derived_components(xr.load_dataset(path, engine="h5netcdf"))
    # Housing completions ship as a CSV beside the panel (Telemark only, NaN elsewhere).
    from vekst.data.housing import COMPLETIONS_FILE, attach_completions, read_completions

    housing = Path(path).parent / COMPLETIONS_FILE
    if housing.is_file():
        panel = attach_completions(panel, read_completions(housing))
    return validate_panel(panel, code_vintage=2024, source=Path(path).name)


def load_default() -> xr.Dataset:
    """Load and validate the embedded default panel.

    The file is read once per process; every call returns a deep copy, so callers may
    modify the result freely. ``births`` (proxy), ``net_migration`` and
    ``net_migration_total`` are not stored in the file: they are computed here by
    :func:`vekst.data.components.add_derived_components` from the stored population and
    mortality rates, so the cohort-component identity holds exactly.

    Returns
    -------
    xarray.Dataset
        The panel (357 municipalities, 2024 codes, population 2005-2022); see
        :mod:`vekst.data.panel` for the schema and ``data/README.md`` for the sources.

    Raises
    ------
    DefaultDataNotFoundError
        If the data file cannot be found.
    vekst.data.panel.PanelValidationError
        If the file does not satisfy the panel schema.
    """
    path = default_panel_path()
    return _load(str(path), path.stat().st_mtime_ns).copy(deep=True)
