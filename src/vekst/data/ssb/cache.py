"""The SSB client's disk cache: atomic writes with a SHA-256 sidecar."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from vekst.data.ssb.errors import CacheCorruptionError
from vekst.io import atomic_write


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temp: Path(temp).write_bytes(data))


class DiskCache:
    """Response bodies on disk, one file per key with a SHA-256 sidecar.

    ``<root>/<folder>/<name>.json`` holds the body, ``<name>.json.sha256`` its digest. The
    body is written first and the sidecar second, each atomically, so an interrupted
    write leaves either nothing or a body without a valid sidecar, which :meth:`get`
    treats as corrupt.

    Parameters
    ----------
    root
        Cache folder (created on demand).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        #: Paths found corrupt (and removed) since the cache was opened.
        self.corrupt: list[Path] = []

    def path(self, folder: str, name: str) -> Path:
        """Where the body for ``folder``/``name`` lives."""
        return self.root / folder / f"{name}.json"

    def get(self, folder: str, name: str, *, max_age: float | None = None) -> bytes | None:
        """Return the cached body, or ``None`` when absent, too old, or corrupt.

        A corrupt entry (checksum mismatch, missing sidecar, invalid JSON) is deleted and
        recorded in :attr:`corrupt`, so that the caller fetches it again.
        """
        path = self.path(folder, name)
        sidecar = path.with_name(path.name + ".sha256")
        if not path.exists():
            return None
        if max_age is not None and time.time() - path.stat().st_mtime > max_age:
            return None
        try:
            body = path.read_bytes()
            expected = sidecar.read_text().strip() if sidecar.exists() else None
            if expected != hashlib.sha256(body).hexdigest():
                raise CacheCorruptionError(f"{path}: checksum does not match {sidecar.name}")
            json.loads(body)
        except (CacheCorruptionError, ValueError, OSError):
            self.corrupt.append(path)
            for stale in (path, sidecar):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            return None
        return body

    def put(self, folder: str, name: str, body: bytes) -> Path:
        """Store ``body`` atomically with its checksum and return its path."""
        path = self.path(folder, name)
        _atomic_write(path, body)
        _atomic_write(
            path.with_name(path.name + ".sha256"), hashlib.sha256(body).hexdigest().encode()
        )
        return path
