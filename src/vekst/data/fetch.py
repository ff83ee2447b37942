"""Fetch SSB tables and assemble them into a panel (the engine of ``vekst fetch``).

Steps, per table of :mod:`vekst.data.ssb_tables`:

1. :meth:`vekst.data.ssb.SsbClient.fetch_table` returns a tidy frame with SSB's codes.
2. Cells marked ``.`` (category not applicable: the code was not in use that year) are
   dropped; ``..`` and ``:`` stay as missing values.
3. Municipality codes of every vintage are moved to one vintage with
   :func:`vekst.data.codes.harmonise`. A 2024 municipality gets a missing value when any of
   the old codes it sums had a missing value (harmonise itself skips NaN). Codes that the
   code table does not know are dropped only if all their values are zero or missing;
   otherwise the fetch stops. Counts of municipalities split between vintages (shared out
   by population weights) are rounded to whole persons.
4. The frames become the panel's variables (see :mod:`vekst.data.panel`): observed
   ``births``, ``deaths`` and ``net_migration_total`` (``attrs["derived"] = "no"``),
   ``population``, ``employed_*``, ``commuting``, plus ``dwellings_completed`` and
   ``employment_rate`` where fetched. Flows are NaN in the last stock year, as the schema
   requires.

With ``base`` (e.g. the embedded panel) the fetched variables replace the base's ones
(observed components replace derived ones); base variables that were not fetched
(``mortality_rate``, ``net_migration`` by age, ...) are kept on the fetched coordinates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from vekst.data.panel_assembly import assemble_panel
from vekst.data.ssb import SsbClient, TableResult
from vekst.data.ssb_frames import (
    CodeTable,
    FetchAssemblyError,
    drop_not_applicable,
    drop_not_applicable_or_zero,
    prepare_tables,
)
from vekst.data.ssb_tables import (
    ALL_TABLES,
    COMMUTING,
    POPULATION,
    TableSpec,
    table_by_key,
)
from vekst.io import atomic_write, settings_from

__all__ = [
    "FetchAssemblyError",
    "FetchOptions",
    "FetchResult",
    "fetch_panel",
    "write_outputs",
]


@dataclass
class FetchResult:
    """What :func:`fetch_panel` produced.

    Attributes
    ----------
    panel
        The validated panel.
    tables
        Harmonised tidy frame per table key (what the panel was built from).
    results
        Raw fetch results per table key (SSB codes, statuses, metadata).
    requests
        HTTP requests sent (retries included).
    """

    panel: xr.Dataset
    tables: dict[str, pd.DataFrame]
    results: dict[str, TableResult] = field(default_factory=dict)
    requests: int = 0


@dataclass(frozen=True)
class FetchOptions:
    """What :func:`fetch_panel` fetches and what it assembles the panel with.

    Attributes
    ----------
    first_year, last_year
        Years of the panel; ``last_year=None`` is the latest SSB has.
    tables
        Table keys to fetch (all of :data:`~vekst.data.ssb_tables.ALL_TABLES` by default);
        ``population`` is always needed.
    progress
        Per-chunk hook (table key, done, total).
    on_table
        Called before each table is fetched.
    municipality_info, base, code_table
        See :func:`assemble_panel` and :func:`harmonise_counts`.
    """

    first_year: int = 2000
    last_year: int | None = None
    tables: Iterable[str] | None = None
    progress: Callable[[str, int, int], None] | None = None
    on_table: Callable[[TableSpec], None] | None = None
    municipality_info: pd.DataFrame | None = None
    base: xr.Dataset | None = None
    code_table: CodeTable | None = None


def fetch_panel(
    client: SsbClient, options: FetchOptions | None = None, **overrides: Any
) -> FetchResult:
    """Fetch the tables and assemble the panel.

    Parameters
    ----------
    client
        The SSB client (its cache makes re-runs resume).
    options
        Years, tables, hooks and assembly inputs (:class:`FetchOptions`); default its
        defaults.
    **overrides
        Fields of :class:`FetchOptions` by name, e.g. ``fetch_panel(client,
        first_year=2019)``; an unknown name is a ``TypeError`` naming it.

    Returns
    -------
    FetchResult
    """
    o = settings_from(FetchOptions, options, overrides, "fetch_panel()")
    from vekst.data.codes import code_table as shipped_code_table

    table = shipped_code_table() if o.code_table is None else o.code_table
    first_mapped = int(table["year"].min())
    if o.first_year < first_mapped:
        raise FetchAssemblyError(
            f"--from {o.first_year} is before {first_mapped}, the first year the municipality "
            f"code table maps; use --from {first_mapped} or later."
        )
    keys = list(o.tables) if o.tables is not None else [spec.key for spec in ALL_TABLES]
    if POPULATION.key not in keys:
        keys.insert(0, POPULATION.key)
    results: dict[str, TableResult] = {}
    for key in keys:
        spec = table_by_key(key)
        if o.on_table is not None:
            o.on_table(spec)
        chunk_filter = (
            drop_not_applicable_or_zero if spec.key == COMMUTING.key else drop_not_applicable
        )
        results[key] = client.fetch_table(
            spec,
            first_year=o.first_year,
            last_year=o.last_year,
            progress=o.progress,
            chunk_filter=chunk_filter,
        )
    prepared = prepare_tables(results, code_table=table)
    panel = assemble_panel(
        prepared,
        first_year=o.first_year,
        last_year=o.last_year,
        municipality_info=o.municipality_info,
        base=o.base,
        results=results,
    )
    return FetchResult(panel=panel, tables=prepared, results=results, requests=client.requests_sent)


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    atomic_write(path, lambda temp: write(Path(temp)))


def write_outputs(result: FetchResult, out_dir: Path | str) -> dict[str, Path]:
    """Write the panel, the harmonised tables and a provenance note to ``out_dir``.

    Files: ``panel.nc`` (netCDF, h5netcdf engine), ``tables/<key>.csv.gz`` and
    ``provenance.json``; each written atomically.

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    panel_path = out / "panel.nc"
    _replace_atomically(panel_path, lambda p: result.panel.to_netcdf(p, engine="h5netcdf"))
    written["panel"] = panel_path
    for key, frame in result.tables.items():
        path = out / "tables" / f"{key}.csv.gz"
        _replace_atomically(path, lambda p, f=frame: f.to_csv(p, index=False, compression="gzip"))
        written[key] = path
    provenance = {
        "created": result.panel.attrs.get("created"),
        "source": result.panel.attrs.get("source"),
        "requests": result.requests,
        "tables": {
            key: {
                "table_id": r.query.spec.table_id,
                "title": r.query.spec.title,
                "updated": r.metadata.updated,
                "periods": [r.query.codes("Tid")[0], r.query.codes("Tid")[-1]],
                "chunks": r.chunks,
                "fetched_chunks": r.fetched,
            }
            for key, r in result.results.items()
        },
    }
    path = out / "provenance.json"
    _replace_atomically(path, lambda p: p.write_text(json.dumps(provenance, indent=2)))
    written["provenance"] = path
    return written
