"""Writing files safely: one atomic-write helper for the whole package.

Every output (netCDF, CSV, HTML, PNG) is written to a temporary file in the target folder
and renamed over the target, so a crash never leaves half a file behind. The temporary
file from :func:`tempfile.mkstemp` is owner-only (0600); outputs are meant to be shared
on a drive with colleagues, so the file is made readable by group and others (0644)
before the rename.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["FILE_MODE", "atomic_write", "atomic_write_bytes"]

#: Mode of every file vekst writes: owner read/write, group and others read.
FILE_MODE = 0o644


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Write ``path`` through ``write(tmp_name)`` and rename the result into place.

    Parameters
    ----------
    path
        Target file; its folder is created when missing.
    write
        Called with the name of a temporary file in the same folder; must write the
        complete content to it (e.g. ``lambda tmp: frame.to_csv(tmp)``).

    Returns
    -------
    pathlib.Path
        ``path``, now holding the new content with mode :data:`FILE_MODE`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path
        Target file.
    data
        The complete content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
