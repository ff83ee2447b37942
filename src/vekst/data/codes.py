"""Municipality codes: moving data between code vintages.

Norwegian municipality codes changed with the mergers of 2020 (and smaller ones before) and
the splits of 2024. :func:`harmonise` sums values recorded under the codes valid in a
given year into the 2024 municipalities, using the shipped table
``data/municipality_codes.csv`` (columns ``original_code, year, code_2024, weight``; one
row per code valid in a year 2000-2024 and 2024 municipality it (partly) lies in). A weight
below 1 means the municipality was split: the value is shared out in proportion to
population (see ``data/README.md`` for how each split is weighted).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.default import data_dir, default_panel_path
from vekst.errors import PanelError

__all__ = [
    "CODE_TABLE_FILE",
    "UnknownMunicipalityCodeError",
    "code_table",
    "harmonise",
    "municipality_table",
    "normalise_codes",
]

CODE_TABLE_FILE = "municipality_codes.csv"
TABLE_COLUMNS = ("original_code", "year", "code_2024", "weight")


class UnknownMunicipalityCodeError(PanelError):
    """A municipality code is not valid in the year it is used in."""


@functools.lru_cache(maxsize=2)
def _read_code_table(path: str) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"original_code": str, "code_2024": str})
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; expected {list(TABLE_COLUMNS)}. Rebuild it "
            "with python -m vekst.data.build."
        )
    table["year"] = table["year"].astype(int)
    table["weight"] = table["weight"].astype(float)
    return table[list(TABLE_COLUMNS)]


def code_table(path: str | Path | None = None) -> pd.DataFrame:
    """The code-mapping table (``original_code, year, code_2024, weight``).

    Parameters
    ----------
    path
        A table file to read; the shipped ``data/municipality_codes.csv`` by default.

    Returns
    -------
    pandas.DataFrame
        A copy of the table; weights of one ``(original_code, year)`` sum to 1.
    """
    path = Path(path) if path is not None else data_dir() / CODE_TABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: code table not found; rebuild it with python -m vekst.data.build."
        )
    return _read_code_table(str(path)).copy()


def normalise_codes(codes: pd.Series) -> pd.Series:
    """Municipality codes as 4-character strings ('301' or 301 -> '0301').

    Parameters
    ----------
    codes
        Codes as integers or strings.

    Returns
    -------
    pandas.Series
        Stripped strings; all-digit codes shorter than 4 are zero-padded.
    """
    text = codes.astype(str).str.strip()
    digits = text.str.fullmatch(r"\d{1,3}")
    return text.where(~digits, text.str.zfill(4))


def harmonise(
    frame: pd.DataFrame,
    *,
    code_column: str,
    year_column: str | None = None,
    year: int | None = None,
    value_columns: list[str],
    target_vintage: int = 2024,
    drop_unknown: bool = False,
    table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Move values recorded under historical municipality codes onto 2024 codes.

    Every row's values are multiplied by the weight of each 2024 municipality its code
    maps to in its year, then summed by 2024 code and all other (non-value) columns, so
    merged municipalities add up and split ones are shared out.

    Parameters
    ----------
    frame
        Long-format data: one code column, value columns, and any key columns (year, age,
        sex ...), which are kept and grouped by.
    code_column
        Column with the municipality codes (int or str; '301' is read as '0301').
    year_column
        Column with the year in whose code vintage each row's code is written. Give this
        or ``year``.
    year
        The one year (code vintage) of all rows, when there is no year column.
    value_columns
        Columns to weight and sum (counts such as persons or jobs; do not pass rates).
    target_vintage
        Only 2024 is supported.
    drop_unknown
        Drop rows whose code is not valid in their year instead of raising; the dropped
        ``(code, year)`` pairs are listed in ``result.attrs["dropped"]``.
    table
        A code table with columns ``original_code, year, code_2024, weight``; the shipped
        one by default.

    Returns
    -------
    pandas.DataFrame
        Same columns, codes replaced by 2024 codes, one row per 2024 code and key; values
        are float where any weight was below 1. Years after the table's last year are
        treated as that year (codes are current); ``attrs["dropped"]`` lists dropped codes.

    Raises
    ------
    UnknownMunicipalityCodeError
        If a code is not valid in its year (and ``drop_unknown`` is false).
    ValueError
        On bad arguments (both or neither of ``year``/``year_column``, unknown columns,
        unsupported vintage, a year before the table starts).
    """
    if target_vintage != 2024:
        raise ValueError(
            f"target_vintage={target_vintage} is not supported; vekst panels use 2024 codes."
        )
    if (year_column is None) == (year is None):
        raise ValueError("give exactly one of year_column (a column name) or year (an int).")
    needed = [code_column, *value_columns] + ([year_column] if year_column else [])
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise ValueError(
            f"column(s) {absent} not in the frame (columns: {list(frame.columns)})."
        )
    table = code_table() if table is None else table
    first, last = int(table["year"].min()), int(table["year"].max())

    work = frame.copy()
    work[code_column] = normalise_codes(work[code_column])
    vintage = work[year_column].astype(int) if year_column else pd.Series(
        int(year), index=work.index  # type: ignore[arg-type]
    )
    too_early = vintage < first
    if too_early.any():
        raise ValueError(
            f"year {int(vintage[too_early].min())} is before {first}, the first year of the "
            f"code table; vekst maps codes of {first}-{last} only."
        )
    work["_vintage"] = vintage.clip(upper=last).to_numpy()
    work["_row"] = np.arange(len(work))

    merged = work.merge(
        table.rename(columns={"original_code": code_column, "year": "_vintage"}),
        on=[code_column, "_vintage"],
        how="left",
    )
    unknown = merged["code_2024"].isna()
    dropped: list[tuple[str, int]] = []
    if unknown.any():
        pairs = (
            merged.loc[unknown, [code_column, "_vintage"]]
            .drop_duplicates()
            .sort_values([code_column, "_vintage"])
        )
        dropped = [(str(c), int(y)) for c, y in pairs.itertuples(index=False)]
        if not drop_unknown:
            shown = ", ".join(f"{c} in {y}" for c, y in dropped[:10])
            more = f" (and {len(dropped) - 10} more)" if len(dropped) > 10 else ""
            raise UnknownMunicipalityCodeError(
                f"municipality code(s) not valid in their year: {shown}{more} (column "
                f"{code_column!r}). Check that the year is the vintage the codes are written "
                "in; codes such as Svalbard (21xx), the continental shelf (23xx) or "
                "'unknown' (9999) have no municipality: pass drop_unknown=True to drop them."
            )
        merged = merged.loc[~unknown]

    weights = merged["weight"].to_numpy(float)
    for column in value_columns:
        merged[column] = merged[column].to_numpy(float) * weights
    merged[code_column] = merged["code_2024"]
    keys = [c for c in frame.columns if c not in value_columns]
    out = (
        merged.groupby(keys, sort=True, dropna=False)[value_columns]
        .sum(min_count=1)
        .reset_index()[list(frame.columns)]
    )
    if np.all(weights == 1.0):
        for column in value_columns:
            original = frame[column].dtype
            if pd.api.types.is_integer_dtype(original) and not out[column].isna().any():
                out[column] = out[column].astype(original)
    out.attrs["dropped"] = dropped
    return out


@functools.lru_cache(maxsize=2)
def _municipality_table(path: str, mtime_ns: int) -> pd.DataFrame:
    with xr.open_dataset(path, engine="h5netcdf") as panel:
        coords = ["name", "county", "county_name", "region", "region_name", "centrality"]
        present = [c for c in coords if c in panel.coords]
        table = pd.DataFrame(
            {c: panel[c].values for c in present},
            index=pd.Index([str(c) for c in panel["municipality"].values], name="code"),
        )
    return table


def municipality_table() -> pd.DataFrame:
    """The 357 municipalities of 2024 with their names, counties, regions and centrality.

    Returns
    -------
    pandas.DataFrame
        Index ``code`` (4-digit str); columns ``name``, ``county``, ``county_name``,
        ``region`` (BA-region code), ``region_name``, ``centrality`` (SSB index 0-1000,
        2017-based). Read from the coordinates of the embedded panel.
    """
    path = default_panel_path()
    return _municipality_table(str(path), path.stat().st_mtime_ns).copy()
