"""Projections larger than memory: single-age stocks written to Zarr as they are computed.

The in-memory projection keeps every 1 January stock ``(draw, year, municipality, age,
sex)`` in one float32 array: 1000 draws of the 357 municipalities to 2040 are 5.1 GiB, so
:func:`~vekst.projection.project` falls back to age groups above 2 GiB. Here the kernel's
``store`` callback hands each chunk of draws to a :class:`ZarrSink`, which buffers the
chunk's years and writes it as whole Zarr chunks (no chunk is ever read back and
rewritten); memory stays at one chunk of draws, whatever the number of draws.

Layout: Zarr format 2 (strings and consolidated metadata are stable there and every Zarr
reader opens it); every variable with ``draw`` and ``municipality`` dims is chunked by
both (all years, ages and sexes of a chunk together: a municipality's pyramid over time
is one read), compressed with Blosc LZ4 and byte shuffle (:class:`ZarrLayout` ``compressor``).
Projected counts are float32 with busy mantissas, so stronger codecs gain little: on
chunks of the national projection LZ4 kept 80 % of the bytes at 430-570 MB/s, zstd level
1 78 % at 138 MB/s, LZ4 without shuffle 97 % (``docs/results/scaling.md``). The store
also holds ``population_age_group``, grouped from each chunk as it passes, so the
summaries never read the single ages back.

Variable names, dims, coordinates, attributes and dtypes are those of the in-memory
projection Dataset, so :func:`open_projection` gives a dask-backed Dataset that the
summaries of :mod:`vekst.projection.outputs` read block by block.

Needs the optional extra ``zarr`` (``pip install 'vekst[zarr]'``: zarr and dask).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from vekst.errors import UsageError
from vekst.io import atomic_folder

__all__ = [
    "ZarrLayout",
    "ZarrSink",
    "open_projection",
    "project_to_zarr",
    "require_zarr",
    "write_zarr",
]

#: Dims of the single-age stock, as in the in-memory projection.
POPULATION_DIMS = ("draw", "year", "municipality", "age", "sex")
ZARR_FORMAT = 2
#: Draws per ``population`` chunk of an in-memory projection written whole.
DEFAULT_DRAW_CHUNK = 10
#: Blosc codec name and level of each ``ZarrLayout.compressor`` ("none": no codec).
COMPRESSORS: dict[str, tuple[str, int]] = {"none": ("", 0), "lz4": ("lz4", 5), "zstd": ("zstd", 1)}
#: A chunk's single-age buffer above this is not double-buffered (memory over overlap).
DOUBLE_BUFFER_MAX_BYTES = 256 * 2**20


def require_zarr():
    """Import zarr, numcodecs and dask.array; a :class:`UsageError` saying what to install."""
    try:
        import dask.array
        import numcodecs
        import zarr
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise UsageError(
            f"Zarr output needs zarr and dask ({error}); pip install 'vekst[zarr]', or write "
            "netCDF (--format netcdf)."
        ) from error
    return zarr, numcodecs, dask.array


@dataclass(frozen=True)
class ZarrLayout:
    """Chunking of a projection store.

    Attributes
    ----------
    draw_chunk
        Draws per chunk of ``population``; ``None`` = the kernel's ``chunk_size``, so
        every chunk of draws the kernel finishes fills whole Zarr chunks.
    municipality_chunk
        Municipalities per chunk (50: about 7 MB of float32 per chunk for 10 draws and
        17 years of 106 ages).
    flow_draw_chunk
        Draws per chunk of the ``(draw, year, municipality)`` variables (small; fewer,
        larger chunks).
    compressor
        Codec of the single-age ``population``: ``"lz4"`` (default: Blosc LZ4, byte
        shuffle), ``"zstd"`` (Blosc zstd level 1) or ``"none"``. Projected float32 counts
        have busy mantissas: LZ4 keeps 80 % of the bytes at about 430-570 MB/s on one
        core (12 s of CPU per 1000 draws of the country), zstd 78 % at 140 MB/s. Where
        the disk writes slower than that (a shared disk: the store is written faster
        with LZ4 than without, ``docs/results/scaling.md``) LZ4 wins; on a fast local
        disk ``"none"`` saves the CPU. The other variables are small and always
        LZ4-compressed.
    """

    draw_chunk: int | None = None
    municipality_chunk: int = 50
    flow_draw_chunk: int = 250
    compressor: str = "lz4"

    def __post_init__(self) -> None:
        for name in ("draw_chunk", "municipality_chunk", "flow_draw_chunk"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"ZarrLayout.{name} must be at least 1, not {value}.")
        if self.compressor not in COMPRESSORS:
            raise ValueError(
                f"ZarrLayout.compressor must be one of {sorted(COMPRESSORS)}, not "
                f"{self.compressor!r}."
            )


def _compressor(name: str = "lz4"):
    """A Blosc codec, or ``None`` for no compression."""
    _, numcodecs, _ = require_zarr()
    if name == "none":
        return None
    cname, level = COMPRESSORS[name]
    return numcodecs.Blosc(cname=cname, clevel=level, shuffle=numcodecs.Blosc.SHUFFLE)


def _codecs(name: str = "lz4") -> list | None:
    """The ``compressors`` encoding: one codec, or ``None`` (format 2 takes no empty list)."""
    codec = _compressor(name)
    return None if codec is None else [codec]


def _chunks(variable: xr.Variable, draw_chunk: int, municipality_chunk: int) -> tuple:
    sizes = dict(zip(variable.dims, variable.shape, strict=True))
    chunk = {"draw": draw_chunk, "municipality": municipality_chunk}
    return tuple(min(chunk.get(dim, size), size) or 1 for dim, size in sizes.items())


def _encoding(dataset: xr.Dataset, layout: ZarrLayout) -> dict[str, dict]:
    """Chunks by draw and municipality and the compressor, for every data variable."""
    encoding = {}
    for name, variable in dataset.data_vars.items():
        spec: dict[str, Any] = {
            "compressors": _codecs(layout.compressor if name == "population" else "lz4")
        }
        if "draw" in variable.dims or "municipality" in variable.dims:
            draw_chunk = layout.flow_draw_chunk
            if name == "population":
                draw_chunk = layout.draw_chunk or DEFAULT_DRAW_CHUNK
            spec["chunks"] = _chunks(variable.variable, draw_chunk, layout.municipality_chunk)
        encoding[str(name)] = spec
    return encoding


class ZarrSink:
    """Receives the kernel's 1 January stocks and writes them to a Zarr store.

    :meth:`start` creates the ``population`` array and ``population_age_group`` (metadata
    and dimension coordinates only) and returns the kernel's ``store`` callback. The
    callback copies each year of a chunk of draws into a buffer (sex by sex: the kernel
    holds ``(sex, age)``, the store ``(age, sex)``, and a plain transposing copy runs ten
    times slower), groups the ages of that year with one float32 matrix product (the
    numbers of :func:`~vekst.projection.project` with ``detail="age_groups"``), and, when
    the chunk's last year arrives, hands both buffers to a writer thread. The summaries
    then read the small age groups, never the single ages back. Writes overlap the
    kernel with two buffers; a chunk above 256 MiB of single ages (thousands of units)
    gets one, so memory holds one chunk. :meth:`close` waits for the last write and
    raises its error, if any. The rest of the projection (totals, flows, coordinates,
    attributes) is added by :func:`project_to_zarr` when the kernel is done.

    Parameters
    ----------
    path
        The store (a folder), normally a temporary one (see :func:`project_to_zarr`).
    layout
        Chunking and codec; the draw chunk defaults to ``chunk_size``.
    chunk_size
        Draws per kernel chunk.
    """

    def __init__(self, path: str | Path, layout: ZarrLayout, chunk_size: int) -> None:
        self.path = Path(path)
        self.layout = layout
        self.draw_chunk = int(layout.draw_chunk or chunk_size)
        self.chunk_size = int(chunk_size)
        self._arrays: tuple = ()
        self._buffers: list[tuple[np.ndarray, np.ndarray]] = []
        self._which = 0
        self._pending: Future | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._matrix = np.empty((0, 0), dtype=np.float32)
        self.n_years = 0

    def start(self, n_draws: int, coords: Mapping[str, Any], attrs: Mapping[str, Any]):
        """Create the ``population`` arrays and return the kernel's ``store`` callback.

        Parameters
        ----------
        n_draws
            Draws the kernel will project.
        coords
            Values of ``year``, ``municipality``, ``age`` and ``sex``.
        attrs
            Attributes of ``population``.

        Returns
        -------
        callable
            ``store(draws, year_index, population)`` for
            :func:`~vekst.projection.kernel.run_kernel`.
        """
        from vekst.agegroups import AGE_GROUPS, age_group_matrix

        zarr, _, dask_array = require_zarr()
        labels = {"draw": np.arange(n_draws)}
        labels.update({dim: np.asarray(coords[dim]) for dim in POPULATION_DIMS[1:]})
        labels["age_group"] = np.array([label for label, _, _ in AGE_GROUPS])
        shape = tuple(len(labels[dim]) for dim in POPULATION_DIMS)
        draw_chunk = min(self.draw_chunk, n_draws)
        chunks = (draw_chunk, shape[1], min(self.layout.municipality_chunk, shape[2]), *shape[3:])
        group_shape = (*shape[:3], len(AGE_GROUPS))
        # All municipalities in one chunk: the age groups are read whole by the summaries.
        group_chunks = (draw_chunk, *group_shape[1:])
        # Lazy placeholders: to_zarr(compute=False) writes the metadata and the
        # coordinates but no chunk; the kernel's chunks fill them.
        skeleton = xr.Dataset(
            {
                "population": (
                    POPULATION_DIMS,
                    dask_array.empty(shape, chunks=chunks, dtype=np.float32),
                    dict(attrs),
                ),
                "population_age_group": (
                    ("draw", "year", "municipality", "age_group"),
                    dask_array.empty(group_shape, chunks=group_chunks, dtype=np.float32),
                    {"units": "persons", "kind": "stock", "long_name": "population on 1 January"},
                ),
            },
            coords=labels,
        )
        skeleton.to_zarr(
            self.path,
            mode="w",
            compute=False,
            zarr_format=ZARR_FORMAT,
            consolidated=False,
            encoding={
                "population": {"chunks": chunks, "compressors": _codecs(self.layout.compressor)},
                "population_age_group": {"chunks": group_chunks, "compressors": _codecs()},
            },
        )
        self._arrays = tuple(
            zarr.open_array(self.path / name, mode="r+", zarr_format=ZARR_FORMAT)
            for name in ("population", "population_age_group")
        )
        self.n_years = shape[1]
        # Rows in the kernel's (sex, age) cell order: both sexes into the same group.
        self._matrix = np.tile(age_group_matrix(labels["age"]), (2, 1)).astype(np.float32)
        single = (self.chunk_size, *shape[1:])
        double = 4 * int(np.prod(single)) <= DOUBLE_BUFFER_MAX_BYTES
        self._buffers = [
            (
                np.empty(single, dtype=np.float32),
                np.empty((self.chunk_size, *group_shape[1:]), dtype=np.float32),
            )
            for _ in range(2 if double else 1)
        ]
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vekst-zarr")
        return self.store

    def store(self, draws: slice, t: int, population: np.ndarray) -> None:
        """Keep year ``t`` of a chunk of draws; write the chunk after its last year.

        ``population`` is ``(draw, municipality, sex, age)`` (the kernel's layout).
        """
        if self._writer is None or not self._arrays:
            raise RuntimeError("ZarrSink.store called before ZarrSink.start.")
        n = draws.stop - draws.start
        if t == 0 and len(self._buffers) == 1:
            self._wait()  # the only buffer is refilled: its write must be done
        single, grouped = self._buffers[self._which]
        for k in range(population.shape[2]):
            single[:n, t, :, :, k] = population[:, :, k, :]
        flat = population.reshape(-1, self._matrix.shape[0])
        product = flat @ self._matrix.astype(population.dtype)
        grouped[:n, t] = product.reshape(*population.shape[:2], -1)
        if t == self.n_years - 1:
            self._wait()  # the other buffer's write is done: it may be refilled next
            self._pending = self._writer.submit(self._write, draws, single[:n], grouped[:n])
            self._which = (self._which + 1) % len(self._buffers)

    def _write(self, draws: slice, single: np.ndarray, grouped: np.ndarray) -> None:
        population, age_groups = self._arrays
        population[draws] = single
        age_groups[draws] = grouped

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # a failed write raises here, in the kernel's thread

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait for the chunk in flight and stop the writer thread.

        Parameters
        ----------
        raise_errors
            Re-raise an error of the last write (``False`` when already failing).
        """
        try:
            self._wait()
        except Exception:
            if raise_errors:
                raise
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None


def write_zarr(projection: xr.Dataset, path: str | Path, layout: ZarrLayout | None = None) -> Path:
    """Write an in-memory projection to a Zarr store, all-or-nothing.

    Parameters
    ----------
    projection
        Output of :func:`~vekst.projection.project`.
    path
        The store (a folder); an earlier vekst store there is replaced, a folder holding
        other files is refused.
    layout
        Chunking (default :class:`ZarrLayout`).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    require_zarr()
    layout = layout or ZarrLayout()
    with atomic_folder(path) as staging:
        projection.to_zarr(
            staging, mode="w", zarr_format=ZARR_FORMAT, encoding=_encoding(projection, layout)
        )
    return Path(path)


def project_to_zarr(
    panel: xr.Dataset,
    draws: xr.Dataset | None,
    path: str | Path,
    *,
    layout: ZarrLayout | None = None,
    attrs: Mapping[str, Any] | None = None,
    **options: Any,
) -> xr.Dataset:
    """Project and write the result to a Zarr store, single ages included, in bounded memory.

    The store is written in a temporary sibling folder and renamed to ``path`` when
    complete: an interrupted run leaves ``path`` as it was (missing, or the previous
    store).

    Parameters
    ----------
    panel, draws
        As for :func:`~vekst.projection.project`.
    path
        The store (a folder).
    layout
        Chunking (default :class:`ZarrLayout`).
    attrs
        Extra dataset attributes (e.g. the fit file and the convergence flag).
    **options
        Keyword arguments of :func:`~vekst.projection.project`. ``detail`` ``"auto"`` or
        ``"full"`` (the default) streams single ages to the store; ``"age_groups"`` and
        ``"totals"`` project in memory and write the smaller result.

    Returns
    -------
    xarray.Dataset
        The store opened lazily (:func:`open_projection`).
    """
    from vekst.projection.project import project

    require_zarr()
    layout = layout or ZarrLayout()
    detail = options.pop("detail", "full")
    if options.pop("trace", None) is not None:
        raise ValueError("project_to_zarr takes no 'trace' hook; call project() for that.")
    if detail not in ("auto", "full"):
        projection = project(panel, draws, detail=detail, **options)
        projection.attrs.update(attrs or {})
        write_zarr(projection, path, layout)
        return open_projection(path)
    chunk_size = int(options.pop("chunk_size", 10))
    with atomic_folder(path) as staging:
        sink = ZarrSink(staging, layout, chunk_size)
        try:
            projection = project(panel, draws, chunk_size=chunk_size, sink=sink, **options)
        except BaseException:
            sink.close(raise_errors=False)  # no write may touch the folder being removed
            raise
        sink.close()
        projection.attrs.update(attrs or {})
        # Mode "a" adds the totals, flows, coordinates and attributes beside the
        # population written chunk by chunk (the dimension coordinates are rewritten with
        # the same values).
        projection.to_zarr(
            staging,
            mode="a",
            zarr_format=ZARR_FORMAT,
            consolidated=True,
            encoding=_encoding(projection, layout),
        )
    return open_projection(path)


def open_projection(path: str | Path, chunks: Any = None) -> xr.Dataset:
    """Open a projection store lazily: every variable a dask array, nothing read yet.

    Parameters
    ----------
    path
        A store written by :func:`project_to_zarr` or :func:`write_zarr`.
    chunks
        Dask chunks; default the store's own (by draw and municipality).

    Returns
    -------
    xarray.Dataset
        Same variables, dims and coordinates as the in-memory projection.
    """
    require_zarr()
    path = Path(path)
    if not path.is_dir():
        raise UsageError(
            f"{path} is not a Zarr store (no such folder); write one with `vekst project "
            "--format zarr` or vekst.projection.zarr_store.project_to_zarr."
        )
    kwargs = {} if chunks is None else {"chunks": chunks}
    dataset = xr.open_zarr(path, zarr_format=ZARR_FORMAT, **kwargs)
    # Labels on municipality or draw (name, county, region, posterior_draw) are small and
    # are grouped by, which xarray refuses to do lazily: read them now.
    labels = [str(n) for n in dataset.coords if n not in dataset.dims]
    return dataset.assign_coords({name: dataset[name].load() for name in labels})
