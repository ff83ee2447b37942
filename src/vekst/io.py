"""All-or-nothing file and folder writes: the one atomic writer of the package.

A file is written under a temporary name in its target folder and renamed over the
target when complete, so readers see the old file or the new one, never half of either.
A folder of outputs is written the same way: into a temporary sibling folder that
replaces the target in one rename when every file is in place, so a killed run leaves
the previous outputs intact and stale files of an earlier run never mix with new ones.

Files get mode 0666 and folders 0777, less the process umask (typically 0644 / 0755),
as files created by ``open()`` would; ``tempfile`` alone would leave them private.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from vekst.errors import InputError, OutputError

T = TypeVar("T")

__all__ = [
    "MANIFEST",
    "atomic_folder",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_file",
    "check_output_folder",
    "csv_records",
    "settings_from",
    "with_fields",
]

#: File written last into every output folder; its presence marks a complete folder.
MANIFEST = "manifest.json"
#: Temporary folders of killed runs older than this are removed by the next run.
LEFTOVER_AGE_S = 24 * 3600.0


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(path: str | Path, *, folder: bool = False) -> None:
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Write ``path`` all-or-nothing.

    Parameters
    ----------
    path
        The target file. Its folder is created when missing.
    write
        Called with the temporary file's path (a ``str`` in the target's folder, with the
        target's suffix); it must write the complete file there.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputError
        When the folder cannot be created or written (the target is left untouched).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as error:
        raise OutputError(
            f"cannot write {path}: {error.strerror or error}; choose a writable location."
        ) from error
    os.close(handle)
    try:
        write(tmp)
        _publish_mode(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all-or-nothing (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` all-or-nothing (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))


def check_output_file(path: str | Path, *, what: str = "--out") -> Path:
    """Check, before any computation, that a file can be written at ``path``.

    Parameters
    ----------
    path
        The target file.
    what
        How the user named it (an option), used in the message.

    Raises
    ------
    OutputError
        When ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name such as {path}/fit.nc.")
    _check_writable_parent(path, what)
    return path


def check_output_folder(
    path: str | Path, *, known: Iterable[str] = (), what: str = "--out"
) -> Path:
    """Check, before any computation, that ``path`` can take an output folder.

    The folder may be missing, empty, or hold only files an earlier output wrote (named
    in its :data:`MANIFEST` or in ``known``); anything else is refused, so a mistyped
    ``--out`` (or a report written into a projection folder) is never deleted by the
    folder's replacement.

    Parameters
    ----------
    path
        The target folder.
    known
        Names of files this output writes (an earlier run without a manifest).
    what
        How the user named it, used in the message.

    Raises
    ------
    OutputError
        When ``path`` is a file, a folder holding other files, or cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; give the name of a folder.")
    if path.is_dir():
        entries = {entry.name for entry in path.iterdir()}
        foreign = sorted(entries - set(known) - _listed(path) - {MANIFEST})
        if foreign:
            raise OutputError(
                f"{what} {path} already holds files vekst did not write ({foreign[:5]}); "
                "choose a new folder or empty this one (it would be replaced as a whole)."
            )
    _check_writable_parent(path, what)
    return path


def _listed(path: Path) -> set[str]:
    """Files the manifest of an earlier output in ``path`` says it wrote."""
    try:
        files = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(name) for name in files} if isinstance(files, list) else set()


def _check_writable_parent(path: Path, what: str) -> None:
    parent = path.absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {path}: {existing} is a file, not a folder; fix the path.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what} {path}: cannot write in {existing} (permission denied); choose a "
            "writable location."
        )


@contextlib.contextmanager
def atomic_folder(
    path: str | Path, *, known: Iterable[str] = (), manifest: dict | None = None
) -> Iterator[Path]:
    """Write an output folder all-or-nothing.

    Files are written into a temporary sibling folder (yielded); when the block ends
    without an error a :data:`MANIFEST` listing them is written last and the folder
    replaces ``path``. On an error (or Ctrl-C) the temporary folder is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path
        The output folder (see :func:`check_output_folder` for what it may hold).
    known
        Names of files an earlier run of the same output may have left without a manifest.
    manifest
        Extra entries for the manifest (e.g. ``{"converged": "yes"}``).

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.
    """
    path = check_output_folder(path, known=known)
    _remove_leftovers(path)
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.absolute().parent, prefix=f".{path.name}.new-"))
    except OSError as error:
        raise OutputError(f"cannot create a folder next to {path}: {error}") from error
    try:
        yield staging
        files = sorted(entry.name for entry in staging.iterdir())
        atomic_write_text(
            staging / MANIFEST,
            json.dumps({"files": files, **(manifest or {})}, indent=2, sort_keys=True) + "\n",
        )
        _publish_mode(staging, folder=True)
        _swap_in(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _remove_leftovers(path: Path) -> None:
    """Delete temporary siblings of ``path`` left by runs killed more than a day ago.

    A killed run cannot clean up; its hidden ``.NAME.new-*`` folder is never read, and
    the age limit keeps a concurrent run's folder safe.
    """
    parent = path.absolute().parent
    if not parent.is_dir():
        return
    cutoff = time.time() - LEFTOVER_AGE_S
    for pattern in (f".{path.name}.new-*", f".{path.name}.old-*"):
        for entry in parent.glob(pattern):
            with contextlib.suppress(OSError):
                if entry.is_dir() and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)


def _swap_in(staging: Path, path: Path) -> None:
    """Replace ``path`` by ``staging``: two renames, the old folder removed last."""
    if not path.exists():
        os.replace(staging, path)
        return
    retired = Path(tempfile.mkdtemp(dir=path.absolute().parent, prefix=f".{path.name}.old-"))
    os.rmdir(retired)
    os.replace(path, retired)
    try:
        os.replace(staging, path)
    except BaseException:
        # Put the previous outputs back rather than leave no folder at all.
        os.replace(retired, path)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def csv_records(
    path: str | Path, columns: Sequence[str], what: str, error: type[Exception] = InputError
) -> list[tuple[int, dict[str, str]]]:
    """The rows of a UTF-8 CSV (BOM allowed) that must have ``columns`` in its header.

    Parameters
    ----------
    path
        The file.
    columns
        Required header names.
    what
        What the file is, for messages ("job growth", "housing plan").
    error
        The exception raised (the caller's input error type).

    Returns
    -------
    list of (int, dict)
        ``(line number, record)`` pairs, the header being line 1.

    Raises
    ------
    error
        When the file is missing or a required column is absent (naming both).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} file {path} not found.")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise error(
                f"{path}: missing column(s) {missing}; the header must be {','.join(columns)}."
            )
        return list(enumerate(reader, start=2))


def with_fields(settings: T, overrides: dict[str, Any], what: str) -> T:
    """A frozen dataclass ``settings`` with fields replaced by name.

    Raises
    ------
    TypeError
        Naming the unknown field(s) and listing the known ones, with ``what`` (the
        function or settings they were given to).
    """
    known = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"{what} got unknown option(s) {unknown}; the options are {sorted(known)}."
        )
    return dataclasses.replace(settings, **overrides) if overrides else settings


def settings_from(kind: type[T], settings: T | None, overrides: dict[str, Any], what: str) -> T:
    """Settings of dataclass ``kind``: ``settings`` with fields replaced by name, or, when
    ``settings`` is ``None``, ``kind`` built from the named fields alone.

    Parameters
    ----------
    kind
        The frozen dataclass.
    settings
        A base instance, or ``None`` for ``kind``'s defaults.
    overrides
        Field values by name.
    what
        The function or settings they were given to (for the error message).

    Raises
    ------
    TypeError
        Naming the unknown field(s), or the required fields missing when ``settings`` is
        ``None``.
    """
    if settings is not None:
        return with_fields(settings, overrides, what)
    fields = dataclasses.fields(kind)
    known = {f.name for f in fields}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"{what} got unknown option(s) {unknown}; the options are {sorted(known)}."
        )
    required = [
        f.name
        for f in fields
        if f.init
        and f.name not in overrides
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        raise TypeError(f"{what} needs {required} (as a {kind.__name__} or by name).")
    return kind(**overrides)
