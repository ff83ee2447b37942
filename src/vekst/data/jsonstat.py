"""A small JSON-stat reader for Statistics Norway responses.

Two dialects are read:

* **JSON-stat 2.0** (``"class": "dataset"`` with top-level ``id`` and ``size``), served by
  SSB's PxWebApi 2 for both ``/tables/{id}/data`` and ``/tables/{id}/metadata`` (the latter
  with an empty ``value`` list).
* **JSON-stat 1.0** bundles (``{"dataset": {...}}``, ``id``/``size`` inside ``dimension``),
  served by the retired API v0 and still found in recorded responses.

Values are stored in row-major order over the dimensions in ``id`` order. Cells that SSB
could not publish are ``null`` in ``value`` and carry a symbol in ``status``:

======  ==========================================================================
symbol  meaning (SSB's explanation of its special characters)
======  ==========================================================================
``.``   category not applicable: the category did not exist when figures were made
``..``  data not available: not entered or too unreliable to be published
``:``   confidential: suppressed so that persons or companies cannot be identified
======  ==========================================================================

:func:`parse` checks the document's internal consistency (each dimension's declared size
against its category list, the value count against the product of sizes) and raises
:class:`JsonStatError` naming the dimension and both numbers when they disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vekst.errors import SourceError

__all__ = [
    "STATUS_REASONS",
    "Dataset",
    "Dimension",
    "JsonStatError",
    "parse",
    "parse_metadata",
]

#: SSB's special characters and what they mean (shown in the ``reason`` column).
STATUS_REASONS: dict[str, str] = {
    ".": "category not applicable",
    "..": "data not available",
    ":": "confidential",
}


class JsonStatError(SourceError, ValueError):
    """A JSON-stat document is malformed or internally inconsistent."""


@dataclass(frozen=True)
class Dimension:
    """One dimension of a JSON-stat dataset.

    Attributes
    ----------
    id
        Variable code, e.g. ``"Region"`` or ``"ContentsCode"``.
    label
        Variable label, e.g. ``"region"``.
    codes
        Category codes in index (storage) order.
    labels
        Category labels, aligned with ``codes``.
    role
        ``"time"``, ``"geo"``, ``"metric"`` or ``None``.
    elimination
        Whether PxWebApi lets the variable be left out of a query (``extension.elimination``
        in PxWebApi 2 metadata); ``None`` when the document does not say.
    """

    id: str
    label: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]
    role: str | None = None
    elimination: bool | None = None

    @property
    def size(self) -> int:
        """Number of categories."""
        return len(self.codes)

    def label_of(self, code: str) -> str:
        """Label of category ``code``."""
        return self.labels[self.codes.index(code)]


@dataclass(frozen=True)
class Dataset:
    """A parsed JSON-stat dataset.

    Attributes
    ----------
    dimensions
        Dimensions in storage order (the order of ``id``).
    values
        Cell values as float, ``NaN`` where the document has ``null``; empty for metadata.
    status
        Status symbol by flat cell index (only cells that have one).
    label, source, updated
        Descriptive fields of the document.
    version
        ``"2.0"`` or ``"1.0"``.
    table_id
        SSB table id from ``extension.px.tableid`` (JSON-stat 2.0), else ``None``.
    """

    dimensions: tuple[Dimension, ...]
    values: np.ndarray
    status: Mapping[int, str] = field(default_factory=dict)
    label: str = ""
    source: str = ""
    updated: str = ""
    version: str = "2.0"
    table_id: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        """Dimension ids in storage order."""
        return tuple(d.id for d in self.dimensions)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Dimension sizes in storage order."""
        return tuple(d.size for d in self.dimensions)

    def dimension(self, dim_id: str) -> Dimension:
        """Return the dimension called ``dim_id``.

        Raises
        ------
        KeyError
            If the dataset has no such dimension; the message lists the ones it has.
        """
        for dim in self.dimensions:
            if dim.id == dim_id:
                return dim
        raise KeyError(f"dimension {dim_id!r} not in dataset (has {list(self.ids)})")

    def to_frame(self, *, labels: bool = False) -> pd.DataFrame:
        """Return the cells as a tidy frame, one row per cell in storage order.

        Parameters
        ----------
        labels
            Also add a ``<dimension>_label`` column per dimension.

        Returns
        -------
        pandas.DataFrame
            One string column per dimension (category codes), ``value`` (float, NaN where
            missing), ``status`` (SSB symbol or missing) and ``reason`` (the symbol's
            meaning from :data:`STATUS_REASONS`, or missing).
        """
        n_cells = math.prod(self.sizes)
        if self.values.size != n_cells:
            raise JsonStatError(
                f"{self.label or 'dataset'}: has {self.values.size} values for "
                f"{n_cells} cells; metadata documents have no cells to tabulate."
            )
        columns: dict[str, Any] = {}
        inner = n_cells
        outer = 1
        for dim in self.dimensions:
            inner //= dim.size
            positions = np.tile(np.repeat(np.arange(dim.size), inner), outer)
            outer *= dim.size
            codes = np.asarray(dim.codes, dtype=object)
            columns[dim.id] = codes[positions] if n_cells else codes[:0]
            if labels:
                names = np.asarray(dim.labels, dtype=object)
                columns[f"{dim.id}_label"] = names[positions] if n_cells else names[:0]
        frame = pd.DataFrame(columns)
        for column in list(frame.columns):
            frame[column] = frame[column].astype("str")
        frame["value"] = self.values.astype(float)
        status = np.full(n_cells, None, dtype=object)
        for index, symbol in self.status.items():
            status[index] = symbol
        frame["status"] = pd.Series(status, dtype="str")
        frame["reason"] = frame["status"].map(STATUS_REASONS).astype("str")
        return frame


def _load(document: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(document, bytes | bytearray):
        document = document.decode("utf-8")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            raise JsonStatError(f"not valid JSON: {error}") from error
    if not isinstance(document, Mapping):
        raise JsonStatError(f"a JSON-stat document is an object, got {type(document).__name__}")
    return document


def _category_codes(dim_id: str, category: Mapping[str, Any]) -> list[str]:
    index = category.get("index")
    label = category.get("label")
    if index is None:
        # JSON-stat allows a single-category dimension to list only labels.
        if not isinstance(label, Mapping) or not label:
            raise JsonStatError(f"dimension {dim_id!r} has neither category.index nor labels")
        return [str(code) for code in label]
    if isinstance(index, Sequence) and not isinstance(index, str):
        return [str(code) for code in index]
    if not isinstance(index, Mapping):
        raise JsonStatError(f"dimension {dim_id!r}: category.index must be an object or array")
    positions = sorted(index.values())
    if positions != list(range(len(index))):
        raise JsonStatError(
            f"dimension {dim_id!r}: category.index positions must be 0..{len(index) - 1} "
            f"without gaps or repeats (got {positions[:10]}...)"
        )
    codes = [""] * len(index)
    for code, position in index.items():
        codes[int(position)] = str(code)
    return codes


def _dimension(
    dim_id: str, body: Mapping[str, Any], declared_size: int, role: str | None, source: str
) -> Dimension:
    if not isinstance(body, Mapping) or "category" not in body:
        raise JsonStatError(f"{source}: dimension {dim_id!r} has no 'category' object")
    category = body["category"]
    codes = _category_codes(dim_id, category)
    if len(codes) != declared_size:
        raise JsonStatError(
            f"{source}: dimension {dim_id!r} declares size {declared_size} but lists "
            f"{len(codes)} categories; the document is internally inconsistent (was it "
            "trimmed by hand?). Fetch the table again."
        )
    label_map = category.get("label") or {}
    labels = tuple(str(label_map.get(code, code)) for code in codes)
    extension = body.get("extension") or {}
    elimination = extension.get("elimination") if isinstance(extension, Mapping) else None
    return Dimension(
        id=dim_id,
        label=str(body.get("label", dim_id)),
        codes=tuple(codes),
        labels=labels,
        role=role,
        elimination=bool(elimination) if elimination is not None else None,
    )


def _values(raw: Any, n_cells: int, source: str, allow_empty: bool) -> np.ndarray:
    if raw is None:
        raw = []
    if isinstance(raw, Mapping):
        # Sparse form: {"flat index": value}; absent cells are missing.
        values = np.full(n_cells, np.nan)
        for key, item in raw.items():
            position = int(key)
            if not 0 <= position < n_cells:
                raise JsonStatError(f"{source}: value index {position} outside 0..{n_cells - 1}")
            values[position] = np.nan if item is None else float(item)
        return values
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise JsonStatError(f"{source}: 'value' must be an array or an object")
    if allow_empty and len(raw) == 0:
        return np.empty(0)
    if len(raw) != n_cells:
        raise JsonStatError(
            f"{source}: 'value' has {len(raw)} entries but the sizes multiply to {n_cells} "
            "cells; the document is internally inconsistent. Fetch the table again."
        )
    try:
        # numpy turns None into NaN when asked for floats.
        return np.array(raw, dtype=float)
    except (TypeError, ValueError) as error:
        raise JsonStatError(f"{source}: 'value' holds a non-numeric entry ({error})") from error


def _status(raw: Any, n_cells: int, source: str) -> dict[int, str]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        return dict.fromkeys(range(n_cells), raw)
    if isinstance(raw, Mapping):
        out = {}
        for key, symbol in raw.items():
            position = int(key)
            if not 0 <= position < n_cells:
                raise JsonStatError(f"{source}: status index {position} outside 0..{n_cells - 1}")
            out[position] = str(symbol)
        return out
    if isinstance(raw, Sequence):
        if len(raw) == 1:
            return dict.fromkeys(range(n_cells), str(raw[0]))
        if len(raw) != n_cells:
            raise JsonStatError(f"{source}: 'status' has {len(raw)} entries for {n_cells} cells")
        return {i: str(symbol) for i, symbol in enumerate(raw) if symbol not in (None, "")}
    raise JsonStatError(f"{source}: 'status' must be a string, array or object")


def _roles(role: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(role, Mapping):
        for name, dims in role.items():
            for dim in dims or []:
                out[str(dim)] = str(name)
    return out


def _select_v1_dataset(document: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    candidates = {
        key: body
        for key, body in document.items()
        if isinstance(body, Mapping) and "dimension" in body
    }
    if not candidates:
        raise JsonStatError(
            f"{source}: not a JSON-stat dataset (no 'class': 'dataset' with 'id'/'size', and "
            "no JSON-stat 1.0 bundle member with 'dimension')"
        )
    if len(candidates) > 1:
        raise JsonStatError(
            f"{source}: JSON-stat 1.0 bundle holds {len(candidates)} datasets "
            f"{sorted(candidates)}; pass one of them to parse()"
        )
    return next(iter(candidates.values()))


def parse(
    document: Mapping[str, Any] | str | bytes,
    *,
    source: str = "response",
    allow_empty_values: bool = False,
) -> Dataset:
    """Parse a JSON-stat 2.0 dataset or a JSON-stat 1.0 bundle.

    Parameters
    ----------
    document
        The decoded JSON object, or its text / UTF-8 bytes.
    source
        Where the document came from (file name, table id), used in error messages.
    allow_empty_values
        Accept an empty ``value`` list (PxWebApi 2 metadata documents).

    Returns
    -------
    Dataset

    Raises
    ------
    JsonStatError
        If the document is not JSON-stat or is internally inconsistent; the message names
        the dimension and the declared and actual sizes.
    """
    doc = _load(document)
    if doc.get("class") == "dataset" and "id" in doc:
        body = doc
        ids = [str(i) for i in doc["id"]]
        sizes = [int(s) for s in doc.get("size", [])]
        dimensions = doc.get("dimension", {})
        roles = _roles(doc.get("role"))
        version = str(doc.get("version", "2.0"))
    else:
        body = _select_v1_dataset(doc, source)
        dimensions = body["dimension"]
        ids = [str(i) for i in dimensions.get("id", [])]
        sizes = [int(s) for s in dimensions.get("size", [])]
        roles = _roles(dimensions.get("role"))
        version = "1.0"
    if len(ids) != len(sizes):
        raise JsonStatError(
            f"{source}: 'id' names {len(ids)} dimensions but 'size' gives {len(sizes)} sizes"
        )
    missing = [dim_id for dim_id in ids if dim_id not in dimensions]
    if missing:
        raise JsonStatError(f"{source}: dimension(s) {missing} listed in 'id' but not described")
    dims = tuple(
        _dimension(dim_id, dimensions[dim_id], size, roles.get(dim_id), source)
        for dim_id, size in zip(ids, sizes, strict=True)
    )
    n_cells = math.prod(sizes)
    values = _values(body.get("value"), n_cells, source, allow_empty_values)
    status = _status(body.get("status"), n_cells, source) if values.size else {}
    extension = body.get("extension") or {}
    px = extension.get("px") if isinstance(extension, Mapping) else None
    table_id = str(px["tableid"]) if isinstance(px, Mapping) and "tableid" in px else None
    return Dataset(
        dimensions=dims,
        values=values,
        status=status,
        label=str(body.get("label", "")),
        source=str(body.get("source", "")),
        updated=str(body.get("updated", "")),
        version=version,
        table_id=table_id,
    )


def parse_metadata(
    document: Mapping[str, Any] | str | bytes, *, source: str = "metadata"
) -> Dataset:
    """Parse a PxWebApi 2 ``/metadata`` document (JSON-stat 2.0 with no values).

    Parameters
    ----------
    document
        The decoded JSON object, or its text / UTF-8 bytes.
    source
        Used in error messages.

    Returns
    -------
    Dataset
        With dimensions filled in and ``values`` empty.
    """
    return parse(document, source=source, allow_empty_values=True)
