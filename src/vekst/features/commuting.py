"""Commuting shares: where each municipality's employed residents work, by year.

The weights of VRA (:func:`vekst.features.jobs.vra`): the share of a home municipality's
employed residents working in each municipality, from SSB's commuting matrix (03321), with
each job-growth year mapped to the nearest commuting year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import xarray as xr

from vekst.data.commuting_flows import (
    CommutingMatrix,
    commuting_matrix,
    commuting_years,
    complete_commuting_matrix_years,
)
from vekst.features.errors import (
    CommutingCoverageError,
    EmptyCommutingRowError,
    MissingCommutingError,
    MissingEmploymentError,
    describe_municipalities,
)

__all__ = [
    "Denominator",
    "OnIncomplete",
    "ShareMatrix",
    "commuting_shares",
    "commuting_year_map",
    "complete_commuting_years",
    "share_matrix",
]

Denominator = Literal["commuting", "employed_residence"]
OnIncomplete = Literal["raise", "nan"]


def _span(years: Sequence[int]) -> str:
    years = list(years)
    if not years:
        return "no year"
    if years == list(range(years[0], years[-1] + 1)):
        return f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    return ", ".join(str(y) for y in years)


def _commuting(panel: xr.Dataset) -> None:
    """Raise unless the panel has a ``commuting`` variable (either layout)."""
    if "commuting" not in panel.data_vars:
        raise MissingCommutingError(
            "the panel has no 'commuting' variable (employed persons by home municipality "
            "x work_municipality x year, SSB 03321); commuting shares and VRA need it."
        )


def complete_commuting_years(panel: xr.Dataset) -> list[int]:
    """Years whose commuting matrix has no missing (NaN) cell."""
    _commuting(panel)
    return complete_commuting_matrix_years(panel)


def commuting_year_map(
    panel: xr.Dataset,
    years: Iterable[int],
    commuting_year: int | Mapping[int, int] | None = None,
) -> dict[int, int]:
    """Which commuting matrix weights the job growth of each year.

    Parameters
    ----------
    panel
        Panel with ``commuting``.
    years
        Job-growth years to map.
    commuting_year
        ``None``: the same year when its matrix exists and is complete, else the nearest
        year with a complete matrix (ties to the earlier year). A matrix with NaN cells
        (a municipality absent that year, e.g. Rindal in 2019 in the embedded data) is
        skipped; if no matrix is complete, every matrix with data is a candidate (and
        :func:`commuting_shares` then reports the gaps). An ``int`` uses that matrix for
        every year. A mapping overrides the named years; the others follow the ``None``
        rule.

    Returns
    -------
    dict
        ``{job_growth_year: commuting_year}``.

    Raises
    ------
    MissingCommutingError
        If the panel has no commuting data, or an override names a year without a matrix.
    """
    _commuting(panel)
    available = commuting_years(panel)
    if not available:
        raise MissingCommutingError("the panel's 'commuting' variable is NaN in every year.")
    complete = complete_commuting_years(panel)
    candidates = complete or available
    overrides: dict[int, int] = {}
    if isinstance(commuting_year, Mapping):
        overrides = {int(k): int(v) for k, v in commuting_year.items()}
    elif commuting_year is not None:
        overrides = {int(y): int(commuting_year) for y in years}
    out = {}
    for year in years:
        year = int(year)
        chosen = overrides.get(year)
        if chosen is None:
            chosen = min(candidates, key=lambda c: (abs(c - year), c))
        elif chosen not in available:
            raise MissingCommutingError(
                f"commuting_year={chosen} was requested for job-growth year {year}, but the "
                f"panel has commuting matrices only for {_span(available)}."
            )
        out[year] = chosen
    return out


def commuting_shares(
    panel: xr.Dataset,
    year: int,
    denominator: Denominator = "commuting",
    on_incomplete: OnIncomplete = "raise",
) -> xr.DataArray:
    """Share of each municipality's employed residents working in each municipality.

    Parameters
    ----------
    panel
        Panel with ``commuting`` (and ``employed_residence`` for that denominator).
    year
        Year of the commuting matrix (4th quarter).
    denominator
        ``"commuting"``: the row total of the matrix, so rows sum to 1 (own municipality
        included). ``"employed_residence"``: all employed residents, including those
        working outside any municipality (shelf, Svalbard, unknown); rows sum to <= 1.
    on_incomplete
        What to do with a home municipality whose row is missing (any NaN cell, including
        a cell in a work municipality absent that year) or empty (no employed residents):
        ``"raise"`` (default) raises :class:`CommutingCoverageError` /
        :class:`EmptyCommutingRowError`; ``"nan"`` returns an all-NaN row for it. Never
        a row of zeros.

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, work_municipality)``, a fraction (0-1).

    Raises
    ------
    MissingCommutingError
        If the panel has no commuting matrix for ``year``; the message lists the years
        that have one.
    CommutingCoverageError
        A row with NaN cells, or a NaN ``employed_residence`` (``on_incomplete="raise"``).
    EmptyCommutingRowError
        A row whose total is 0 (``on_incomplete="raise"``).
    """
    if denominator not in ("commuting", "employed_residence"):
        raise ValueError(
            f"denominator must be 'commuting' or 'employed_residence', got {denominator!r}."
        )
    if on_incomplete not in ("raise", "nan"):
        raise ValueError(f"on_incomplete must be 'raise' or 'nan', got {on_incomplete!r}.")
    matrix = share_matrix(panel, year, denominator, on_incomplete)
    values = matrix.shares.toarray()
    values[matrix.nan_rows] = np.nan
    shares = xr.DataArray(
        values,
        dims=("municipality", "work_municipality"),
        coords={"municipality": panel["municipality"], "work_municipality": matrix.work_codes},
        name="commuting_share",
    )
    shares.attrs = {
        "units": "1",
        "long_name": "share of the home municipality's employed residents working in "
        "work_municipality (4th quarter)",
        "denominator": denominator,
        "commuting_year": int(year),
    }
    return shares


@dataclass(frozen=True)
class ShareMatrix:
    """Commuting shares of one year as a sparse matrix (see :func:`share_matrix`).

    Attributes
    ----------
    shares
        ``scipy.sparse.csr_array`` (home municipality in panel order, work column) of
        finite shares; rows in ``nan_rows`` hold no entry.
    nan_rows
        Home municipalities whose shares are unknown (missing row, no employed residents).
    work_codes
        Work municipality code of each column.
    year
        Year of the commuting matrix.
    """

    shares: sp.csr_array
    nan_rows: np.ndarray
    work_codes: np.ndarray
    year: int


def share_matrix(
    panel: xr.Dataset,
    year: int,
    denominator: Denominator = "commuting",
    on_incomplete: OnIncomplete = "raise",
) -> ShareMatrix:
    """Commuting shares of one year, kept sparse: :func:`commuting_shares` without the
    dense unit x unit array (100 MB a year at 3,570 areas).

    Parameters
    ----------
    panel, year, denominator, on_incomplete
        As in :func:`commuting_shares`; rows it would make NaN are listed in
        ``nan_rows``.

    Returns
    -------
    ShareMatrix

    Raises
    ------
    MissingCommutingError, CommutingCoverageError, EmptyCommutingRowError
        As :func:`commuting_shares`.
    """
    if denominator not in ("commuting", "employed_residence"):
        raise ValueError(
            f"denominator must be 'commuting' or 'employed_residence', got {denominator!r}."
        )
    if on_incomplete not in ("raise", "nan"):
        raise ValueError(f"on_incomplete must be 'raise' or 'nan', got {on_incomplete!r}.")
    _commuting(panel)
    available = commuting_years(panel)
    year = int(year)
    if year not in available:
        raise MissingCommutingError(
            f"no commuting matrix for {year}; the panel has commuting for "
            f"{_span(available)}. Pick one of those years (or pass commuting_year=... to "
            "vra())."
        )
    matrix = commuting_matrix(panel, year)
    flows = matrix.flows
    n_home = flows.shape[0]
    rows = matrix.entry_rows()
    missing_entry = np.isnan(flows.data)
    missing_row = np.bincount(rows[missing_entry], minlength=n_home) > 0
    # A work column is absent when every home's cell in it is missing.
    absent_work = (
        np.bincount(flows.indices[missing_entry], minlength=flows.shape[1]) == n_home
    )
    total = np.asarray(flows.sum(axis=1)).ravel()  # NaN in rows with a missing cell
    if denominator == "commuting":
        denom = total
    else:
        residents = _employment(panel, "employed_residence").sel(year=year).values
        missing_row = missing_row | np.isnan(residents)
        denom = residents
    empty = (total == 0) & ~missing_row
    if on_incomplete == "raise":
        _raise_incomplete(panel, matrix, absent_work, missing_row, empty)
    with np.errstate(invalid="ignore"):
        nan_rows = missing_row | ~(denom > 0)
    keep = ~nan_rows[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = flows.data[keep] / denom[rows[keep]]
    shares = sp.csr_array(
        (values, (rows[keep], flows.indices[keep])), shape=flows.shape
    )
    shares.eliminate_zeros()
    return ShareMatrix(shares, nan_rows, matrix.work_codes, year)


def _raise_incomplete(
    panel: xr.Dataset,
    matrix: CommutingMatrix,
    absent_work: np.ndarray,
    missing_row: np.ndarray,
    empty: np.ndarray,
) -> None:
    year = matrix.year
    if absent_work.any():
        codes = matrix.work_codes[absent_work]
        raise CommutingCoverageError(
            f"commuting {year}: work municipality {describe_municipalities(panel, codes)} "
            "has no data (NaN column), so no row total and no share of the matrix is "
            "known. Use another year's matrix (vra() skips incomplete years by itself), "
            "fill the column from SSB 03321, or pass on_incomplete='nan'."
        )
    if missing_row.any():
        codes = panel["municipality"].values[missing_row]
        raise CommutingCoverageError(
            f"commuting {year}: home municipality {describe_municipalities(panel, codes)} "
            f"has missing (NaN) commuting or employed-resident counts, so its commuting "
            "shares are unknown. Fill the row from SSB 03321 (map old codes with "
            "vekst.data.codes) or pass on_incomplete='nan' to get NaN for it."
        )
    if empty.any():
        codes = panel["municipality"].values[empty]
        raise EmptyCommutingRowError(
            f"commuting {year}: home municipality {describe_municipalities(panel, codes)} "
            "has no employed residents (row total 0), so its commuting shares are "
            "undefined. This usually means a code-mapping gap; check the source or pass "
            "on_incomplete='nan' to get NaN for it."
        )


def _share_matrix(
    panel: xr.Dataset,
    year: int,
    codes: list[str],
    denominator: Denominator,
    on_incomplete: OnIncomplete,
) -> tuple[ShareMatrix, np.ndarray, np.ndarray]:
    """Shares over panel work municipalities, own share per home, RA index per column.

    The returned matrix keeps only work columns that are panel municipalities (flows to
    others must be zero); the own share of a NaN row is 0 (the row is NaN anyway).
    """
    matrix = share_matrix(panel, year, denominator, on_incomplete)
    work_codes = [str(c) for c in matrix.work_codes]
    position = {c: i for i, c in enumerate(codes)}
    absent = [c for c in codes if c not in set(work_codes)]
    if absent:
        raise CommutingCoverageError(
            f"commuting {year}: municipality {describe_municipalities(panel, absent)} is "
            "missing from the work_municipality axis, so nobody's share of working there "
            "is known. Rebuild the commuting matrix over all panel municipalities (zeros "
            "included)."
        )
    inside = np.array([c in position for c in work_codes], dtype=bool)
    shares = matrix.shares
    if not inside.all():
        used = np.bincount(shares.indices, weights=shares.data, minlength=len(work_codes)) > 0
        bad = [c for c, u, i in zip(work_codes, used, inside, strict=True) if u and not i]
        if bad:
            raise CommutingCoverageError(
                f"commuting {year}: residents work in {bad[:8]}, which are not panel "
                "municipalities, so their job growth is unknown. Map those codes to the "
                "panel's code vintage or drop the flows."
            )
        keep = np.flatnonzero(inside)
        shares = sp.csr_array(shares[:, keep])
        work_codes = [work_codes[i] for i in keep]
    work_index = np.array([position[c] for c in work_codes], dtype=np.int64)
    own_col = np.empty(len(codes), dtype=np.int64)
    own_col[work_index] = np.arange(len(work_codes))
    rows = np.repeat(np.arange(shares.shape[0]), np.diff(shares.indptr))
    on_diagonal = shares.indices == own_col[rows]
    own_share = np.zeros(len(codes))
    own_share[rows[on_diagonal]] = shares.data[on_diagonal]
    kept = ShareMatrix(shares, matrix.nan_rows, np.asarray(work_codes), matrix.year)
    return kept, own_share, work_index


def _employment(panel: xr.Dataset, name: str) -> xr.DataArray:
    if name not in panel.data_vars:
        raise MissingEmploymentError(
            f"the panel has no '{name}' variable (employed persons, 4th quarter, by "
            "municipality and year); job growth needs it. Build the panel with employment "
            "data (SSB tables 11618/03321) or use vekst.load_default()."
        )
    # float64 throughout: the panel stores counts as float32.
    return panel[name].transpose("municipality", "year").astype(float)
