"""Completed dwellings (SSB table 05940): the shipped table and its place in the panel.

The embedded panel covers every municipality, but housing completions reached us for the
17 Telemark municipalities only (``telemark/bolig/fullforte_boliger_etter_boligtype.csv``,
2000-2021, 2024 codes 4001-4036; see ``data/README.md``). :func:`build_completions`
turns that file into ``data/housing_completions.csv`` (``municipality, year,
completions``), one row per municipality and year; :func:`attach_completions` puts it
into a panel as ``dwellings_completed`` (the variable ``vekst fetch`` fills from table
05940 for every municipality), NaN where no count exists, so the housing covariate
switches off there.

Code reforms: the rows are moved onto the panel's fixed 2024 code vintage with
:func:`vekst.data.codes.harmonise` (merged municipalities are summed, split ones shared out
by the code table's population weights). The Telemark file is already written on 2024
borders (e.g. 4020 Midt-Telemark also for the years before the 2020 merger of Bø and
Sauherad), so its codes are read as 2024 codes and map one to one; no Telemark
municipality was split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.codes import harmonise, normalise_codes
from vekst.data.default import data_dir
from vekst.errors import InputError
from vekst.io import atomic_write_text

__all__ = [
    "COMPLETIONS_FILE",
    "HousingDataError",
    "attach_completions",
    "build_completions",
    "read_completions",
    "read_source",
    "write_completions",
]

COMPLETIONS_FILE = "housing_completions.csv"
COLUMNS = ("municipality", "year", "completions")
#: Columns of the SSB 05940 extract (Telemark app layout). One row per building type; the
#: 6- and 4-group columns only label the row, so summing ``Antall`` over rows counts each
#: dwelling once.
SOURCE_COLUMNS = ("Kommunenummer", "År", "Bygningstype", "Antall")
#: The code vintage the extract is written in (2024 borders, see the module docstring).
SOURCE_VINTAGE = 2024


class HousingDataError(InputError):
    """A housing file cannot be read; the message names the file, row and what to do."""


def read_source(path: str | Path) -> pd.DataFrame:
    """Completed dwellings per municipality and year from an SSB 05940 building-type file.

    Parameters
    ----------
    path
        ``fullforte_boliger_etter_boligtype.csv``: one row per municipality, year
        (``01.01.YYYY``) and one of SSB's 21 building types.

    Returns
    -------
    pandas.DataFrame
        ``municipality`` (2024 code, str), ``year`` (int), ``completions`` (int), sorted.

    Raises
    ------
    HousingDataError
        On a missing column, an unreadable year or count, a negative count, or a building
        type listed twice for one municipality and year (which would double-count).
    """
    path = Path(path)
    if not path.is_file():
        raise HousingDataError(f"housing source {path} not found.")
    raw = pd.read_csv(path, dtype={"Kommunenummer": str, "År": str})
    missing = [c for c in SOURCE_COLUMNS if c not in raw.columns]
    if missing:
        raise HousingDataError(
            f"{path}: missing column(s) {missing}; expected the SSB 05940 building-type "
            f"layout with {list(SOURCE_COLUMNS)}."
        )
    years = raw["År"].str.strip().str.extract(r"(?:\d{2}\.\d{2}\.)?(\d{4})$")[0]
    bad = years.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.values)[0])
        raise HousingDataError(
            f"{path}, data row {row + 1}: year {raw['År'].iloc[row]!r} is neither YYYY nor "
            "01.01.YYYY."
        )
    counts = pd.to_numeric(raw["Antall"], errors="coerce")
    bad = counts.isna() | (counts < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.values)[0])
        raise HousingDataError(
            f"{path}, data row {row + 1} (municipality {raw['Kommunenummer'].iloc[row]}): "
            f"count {raw['Antall'].iloc[row]!r} is not a non-negative number."
        )
    frame = pd.DataFrame(
        {
            "municipality": normalise_codes(raw["Kommunenummer"]),
            "year": years.astype(int),
            "type": raw["Bygningstype"].astype(str),
            "completions": counts.astype(float),
        }
    )
    twice = frame.duplicated(["municipality", "year", "type"])
    if twice.any():
        first = frame[twice].iloc[0]
        raise HousingDataError(
            f"{path}: building type {first['type']!r} is listed twice for municipality "
            f"{first['municipality']} in {first['year']}; remove the duplicate (or the "
            "aggregate rows) so no dwelling is counted twice."
        )
    totals = frame.groupby(["municipality", "year"], as_index=False)["completions"].sum()
    totals = harmonise(
        totals,
        code_column="municipality",
        year=SOURCE_VINTAGE,
        value_columns=["completions"],
    )
    totals["completions"] = np.rint(totals["completions"]).astype(int)
    return totals[list(COLUMNS)].sort_values(["municipality", "year"]).reset_index(drop=True)


def write_completions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``municipality, year, completions`` to ``path`` atomically."""
    text = frame[list(COLUMNS)].to_csv(index=False, lineterminator="\n")
    return atomic_write_text(path, text)


def build_completions(source: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild the shipped table from the SSB 05940 extract.

    Parameters
    ----------
    source
        The building-type file (see :func:`read_source`).
    out
        Target file; ``data/housing_completions.csv`` by default.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    out = Path(out) if out is not None else data_dir() / COMPLETIONS_FILE
    return write_completions(read_source(source), out)


def read_completions(path: str | Path | None = None) -> pd.DataFrame:
    """The shipped completions table (or another file in its layout).

    Raises
    ------
    HousingDataError
        When the file is missing or lacks a column.
    """
    path = Path(path) if path is not None else data_dir() / COMPLETIONS_FILE
    if not path.is_file():
        raise HousingDataError(
            f"{path} not found; rebuild it with python -m vekst.data.housing --source "
            "<real data>/telemark/bolig/fullforte_boliger_etter_boligtype.csv."
        )
    frame = pd.read_csv(path, dtype={"municipality": str})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HousingDataError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}.")
    frame["municipality"] = normalise_codes(frame["municipality"])
    return frame


def attach_completions(panel: xr.Dataset, table: pd.DataFrame | None = None) -> xr.Dataset:
    """The panel with ``dwellings_completed`` (municipality, year) from ``table``.

    A panel that already has the variable (``vekst fetch``) is returned unchanged.

    Parameters
    ----------
    panel
        A panel on 2024 codes.
    table
        ``municipality, year, completions``; the shipped table by default.

    Returns
    -------
    xarray.Dataset
        A shallow copy with the variable added; NaN for municipalities and years the
        table does not cover.

    Raises
    ------
    HousingDataError
        When the panel is on another code vintage than the table's 2024 codes.
    """
    from vekst.data.panel_checks import vintage_of

    if "dwellings_completed" in panel:
        return panel
    vintage = vintage_of(panel, "panel")
    if vintage not in (None, SOURCE_VINTAGE):
        raise HousingDataError(
            f"the panel uses {vintage} municipality codes but the housing table has "
            f"{SOURCE_VINTAGE} codes; fetch dwellings_completed for this panel with `vekst "
            f"fetch` or move the panel to {SOURCE_VINTAGE} codes."
        )
    table = read_completions() if table is None else table
    grid = (
        table.set_index(["municipality", "year"])["completions"]
        .astype(float)
        .to_xarray()
        .reindex(municipality=panel["municipality"].values.astype(str), year=panel["year"].values)
    )
    out = panel.copy()
    out["dwellings_completed"] = (("municipality", "year"), grid.values)
    out["dwellings_completed"].attrs = {
        "units": "dwellings",
        "kind": "flow",
        "derived": "no",
        "long_name": "completed dwellings in the calendar year (SSB 05940)",
        "description": "completed dwellings, all 21 building types summed; NaN where unknown "
        "(outside the 17 Telemark municipalities in the shipped table)",
        "source": "data/housing_completions.csv (SSB 05940)",
    }
    return out


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - thin CLI
    """``python -m vekst.data.housing --source FILE [--out FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="fullforte_boliger_etter_boligtype.csv")
    parser.add_argument("--out", default=None, help=f"default: data/{COMPLETIONS_FILE}")
    args = parser.parse_args(argv)
    print(build_completions(args.source, args.out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
