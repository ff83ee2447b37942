"""Readers for Human Mortality Database (HMD) and Human Fertility Database (HFD) text files.

HMD publishes its country files (``Mx_1x1.txt``, ``Deaths_1x1.txt``, ``Population.txt``,
``Births.txt``) and HFD its rate tables (``NORasfrRR.txt``) as column-aligned text: one or
two title lines, a blank line in HMD files, a header line, then data. Fields never contain
blanks, so splitting on runs of white space reads them exactly. Missing values are written
``.``; open age groups are written ``110+`` (HMD) or ``12-`` / ``55+`` (HFD).

The readers return tidy :class:`pandas.DataFrame` objects with integer ``year`` and ``age``
columns; the open-interval marker is dropped from the age and reported in a boolean
``open_age`` column so that callers can decide how to treat it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from vekst.errors import InputError

__all__ = [
    "HumanDatabaseFormatError",
    "read_hfd_asfr",
    "read_hmd_births",
    "read_hmd_lexis",
]


class HumanDatabaseFormatError(InputError):
    """An HMD/HFD file does not have the layout its reader expects."""


_YEAR = re.compile(r"^\d{4}$")


def _read_table(path: Path, expected: list[str]) -> pd.DataFrame:
    """Find the header line naming ``expected`` and read the rows below it as strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such HMD/HFD file; check the --source folder.")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header_at = None
    for i, line in enumerate(lines[:10]):
        if line.split() == expected:
            header_at = i
            break
    if header_at is None:
        raise HumanDatabaseFormatError(
            f"{path}: no header line with columns {expected} in the first 10 lines; is this "
            "the right HMD/HFD file (period 1x1 tables, version of 2023-2024)?"
        )
    rows = [line.split() for line in lines[header_at + 1 :] if line.strip()]
    bad = [i for i, row in enumerate(rows) if len(row) != len(expected)]
    if bad:
        line_no = header_at + 2 + bad[0]
        raise HumanDatabaseFormatError(
            f"{path}, line {line_no}: expected {len(expected)} fields {expected}, got "
            f"{rows[bad[0]]}."
        )
    frame = pd.DataFrame(rows, columns=expected, dtype=str)
    years = frame["Year"]
    not_plain = ~years.str.fullmatch(_YEAR.pattern)
    if not_plain.any():
        # HMD marks territorial changes with 'YYYY-'/'YYYY+'; Norway has none, so refuse
        # rather than silently pick one side of a border change.
        raise HumanDatabaseFormatError(
            f"{path}: year {years[not_plain].iloc[0]!r} is not a plain 4-digit year "
            "(territorial-change rows are not supported)."
        )
    return frame


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column.replace(".", np.nan), errors="raise").to_numpy(float)


def _ages(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    text = column.str.strip()
    open_age = text.str.endswith(("+", "-")).to_numpy()
    return text.str.rstrip("+-").astype(int).to_numpy(), open_age


def read_hmd_lexis(path: str | Path) -> pd.DataFrame:
    """Read an HMD period 1x1 table (``Mx_1x1``, ``Deaths_1x1``, ``Exposures_1x1``,
    ``Population``).

    Parameters
    ----------
    path
        The HMD text file.

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` (int), ``age`` (int; ``110+`` becomes 110), ``open_age`` (bool),
        ``female``, ``male``, ``total`` (float; HMD's ``.`` becomes NaN).

    Raises
    ------
    HumanDatabaseFormatError
        If the file has no ``Year Age Female Male Total`` header or a row has the wrong
        number of fields.
    """
    frame = _read_table(Path(path), ["Year", "Age", "Female", "Male", "Total"])
    age, open_age = _ages(frame["Age"])
    return pd.DataFrame(
        {
            "year": frame["Year"].astype(int).to_numpy(),
            "age": age,
            "open_age": open_age,
            "female": _numbers(frame["Female"]),
            "male": _numbers(frame["Male"]),
            "total": _numbers(frame["Total"]),
        }
    )


def read_hmd_births(path: str | Path) -> pd.DataFrame:
    """Read HMD ``Births.txt`` (live births by calendar year and sex).

    Parameters
    ----------
    path
        The HMD births file.

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` (int), ``female``, ``male``, ``total`` (float).
    """
    frame = _read_table(Path(path), ["Year", "Female", "Male", "Total"])
    return pd.DataFrame(
        {
            "year": frame["Year"].astype(int).to_numpy(),
            "female": _numbers(frame["Female"]),
            "male": _numbers(frame["Male"]),
            "total": _numbers(frame["Total"]),
        }
    )


def read_hfd_asfr(path: str | Path) -> pd.DataFrame:
    """Read an HFD period age-specific fertility table (``XXXasfrRR.txt``).

    Parameters
    ----------
    path
        The HFD file (Lexis squares, age in completed years).

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` (int), ``age`` (int; ``12-`` becomes 12 and ``55+`` becomes 55),
        ``open_age`` (bool), ``asfr`` (births per woman per year).
    """
    frame = _read_table(Path(path), ["Year", "Age", "ASFR"])
    age, open_age = _ages(frame["Age"])
    return pd.DataFrame(
        {
            "year": frame["Year"].astype(int).to_numpy(),
            "age": age,
            "open_age": open_age,
            "asfr": _numbers(frame["ASFR"]),
        }
    )
