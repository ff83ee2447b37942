"""Finished backtest origins on disk, so that an interrupted run resumes where it stopped.

Each origin is written as soon as it is done: ``origin_<year>.csv.gz`` (its long scores),
``origin_<year>_variance.csv`` (predictive variance) and ``origin_<year>.json`` (its note
and a fingerprint of the settings and the data). The JSON is written last, so a file set
without it is incomplete and ignored. An origin is reused only when the fingerprint
matches: other settings, another seed, other data, another version of vekst's code or of
the model specs run it again (and overwrite it), so a store never hands back results of
a model that has since changed.
All files are written atomically (temporary file, then rename).

The folder is a cache (about 15 MB per national origin, compressed): it holds a
``.gitignore`` that ignores everything in it, so writing it under ``docs/results`` does not
put it into the repository.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from vekst.evaluate.result import write_csv_atomic
from vekst.io import atomic_write_text

if TYPE_CHECKING:
    from vekst.evaluate.backtest import BacktestConfig, OriginResult

__all__ = ["OriginStore", "fingerprint", "write_json_atomic", "write_text_atomic"]

#: Columns read back as text (codes with leading zeros, labels).
_TEXT = ("method", "municipality", "name", "size_class", "age_group", "level")


def _digest(array: xr.DataArray) -> str:
    values = np.ascontiguousarray(np.asarray(array.values, dtype=np.float64))
    return hashlib.sha256(values.tobytes()).hexdigest()[:16]


def _code_digest() -> str:
    """Digest of vekst's source files: any change to the code invalidates a store."""
    from vekst.graph_cache import code_digest

    return code_digest()


def _spec_digest(spec) -> str:
    """Digest of the specs an origin may use (the given one, the default, ``no_jobs``)."""
    from vekst.models.spec import ModelSpec, load_spec

    specs = [load_spec(None), load_spec("no_jobs")]
    if spec is not None:
        specs.append(spec if isinstance(spec, ModelSpec) else load_spec(spec))
    return hashlib.sha256(repr(specs).encode()).hexdigest()[:16]


def fingerprint(config: BacktestConfig, panel: xr.Dataset, observed: xr.Dataset) -> dict:
    """What must match for a stored origin to be reused.

    Parameters
    ----------
    config
        Backtest settings (all but the list of origins and the progress bar).
    panel, observed
        The data learnt from and scored against (digests of their populations and
        municipality codes).

    Returns
    -------
    dict
        Settings, digests of the data, of vekst's source code and of the model specs.
    """
    settings = config.settings()
    settings.pop("origins")
    return {
        "code": _code_digest(),
        "specs": _spec_digest(config.spec),
        "settings": settings,
        "panel": _digest(panel["population"]),
        "observed": _digest(observed["population"]),
        "municipalities": hashlib.sha256(
            ",".join(panel["municipality"].values.astype(str)).encode()
        ).hexdigest()[:16],
    }


def write_text_atomic(text: str, path: Path) -> None:
    """Write text atomically (:func:`vekst.io.atomic_write_text`)."""
    atomic_write_text(path, text)


def write_json_atomic(data: dict, path: Path) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    write_text_atomic(json.dumps(data, indent=1, default=_plain), path)


def _plain(value):
    """numpy scalars as Python numbers, anything else JSON cannot hold as text."""
    return value.item() if isinstance(value, np.generic) else str(value)


class OriginStore:
    """A folder of finished origins of one backtest configuration.

    Parameters
    ----------
    directory
        Folder (created when missing).
    config, panel, observed
        Identify the run (see :func:`fingerprint`).
    """

    def __init__(
        self, directory: str | Path, config: BacktestConfig, panel: xr.Dataset, observed: xr.Dataset
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        ignore = self.directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# finished backtest origins: a cache, not results\n*\n")
        self.fingerprint = json.loads(json.dumps(fingerprint(config, panel, observed)))

    def _paths(self, origin: int) -> tuple[Path, Path, Path]:
        stem = self.directory / f"origin_{int(origin)}"
        return (
            stem.with_suffix(".csv.gz"),
            self.directory / f"origin_{int(origin)}_variance.csv",
            stem.with_suffix(".json"),
        )

    def has(self, origin: int) -> bool:
        """Whether the origin is stored, complete, with the same fingerprint."""
        scores, variance, meta = self._paths(origin)
        if not (meta.exists() and scores.exists() and variance.exists()):
            return False
        try:
            stored = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return stored.get("fingerprint") == self.fingerprint

    def save(self, result: OriginResult) -> None:
        """Write one finished origin (scores and variance first, the JSON last)."""
        scores, variance, meta = self._paths(result.origin)
        write_csv_atomic(result.scores, scores)
        write_csv_atomic(result.variance, variance)
        write_json_atomic(
            {"origin": result.origin, "fingerprint": self.fingerprint, "note": result.note}, meta
        )

    def load(self, origin: int) -> OriginResult:
        """Read one stored origin back (without forecast arrays)."""
        from vekst.evaluate.backtest import OriginResult

        scores, variance, meta = self._paths(origin)
        frame = pd.read_csv(
            scores, dtype={c: str for c in _TEXT}, keep_default_na=False, na_values=[""]
        )
        try:
            spread = pd.read_csv(variance, dtype={"method": str, "level": str})
        except pd.errors.EmptyDataError:
            spread = pd.DataFrame()
        note = json.loads(meta.read_text())["note"]
        return OriginResult(origin=int(origin), scores=frame, note=note, variance=spread)
