"""Commuting shares: where each municipality's employed residents work, by year.

The weights of VRA (:func:`vekst.features.jobs.vra`): the share of a home municipality's
employed residents working in each municipality, from SSB's commuting matrix (03321), with
each job-growth year mapped to the nearest commuting year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import xarray as xr

from vekst.features.errors import (
    CommutingCoverageError,
    EmptyCommutingRowError,
    MissingCommutingError,
    MissingEmploymentError,
    describe_municipalities,
    years_with_data,
)

__all__ = [
    "Denominator",
    "OnIncomplete",
    "commuting_shares",
    "commuting_year_map",
    "complete_commuting_years",
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


def _commuting(panel: xr.Dataset) -> xr.DataArray:
    if "commuting" not in panel.data_vars:
        raise MissingCommutingError(
            "the panel has no 'commuting' variable (employed persons by home municipality "
            "x work_municipality x year, SSB 03321); commuting shares and VRA need it."
        )
    # copy=False: the matrix is unit x unit x year (1.8 GB at 3,570 areas), already float.
    commuting = panel["commuting"].transpose("municipality", "work_municipality", "year")
    return commuting.astype(float, copy=False)


def complete_commuting_years(panel: xr.Dataset) -> list[int]:
    """Years whose commuting matrix has no missing (NaN) cell."""
    commuting = _commuting(panel)
    complete = commuting.notnull().all(("municipality", "work_municipality"))
    return [int(y) for y in commuting["year"].values[np.asarray(complete.values)]]


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
    commuting = _commuting(panel)
    available = years_with_data(commuting)
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
    commuting = _commuting(panel)
    available = years_with_data(commuting)
    year = int(year)
    if year not in available:
        raise MissingCommutingError(
            f"no commuting matrix for {year}; the panel has commuting for "
            f"{_span(available)}. Pick one of those years (or pass commuting_year=... to "
            "vra())."
        )
    flows = commuting.sel(year=year)
    absent_work = flows.isnull().all("municipality")
    missing_row = flows.isnull().any("work_municipality")
    total = flows.sum("work_municipality", skipna=False)
    if denominator == "commuting":
        denom = total
    else:
        residents = _employment(panel, "employed_residence").sel(year=year)
        missing_row = missing_row | residents.isnull()
        denom = residents
    empty = (total == 0) & ~missing_row
    if on_incomplete == "raise":
        if bool(absent_work.any()):
            codes = flows["work_municipality"].values[np.asarray(absent_work.values)]
            raise CommutingCoverageError(
                f"commuting {year}: work municipality {describe_municipalities(panel, codes)} "
                "has no data (NaN column), so no row total and no share of the matrix is "
                "known. Use another year's matrix (vra() skips incomplete years by itself), "
                "fill the column from SSB 03321, or pass on_incomplete='nan'."
            )
        if bool(missing_row.any()):
            codes = panel["municipality"].values[np.asarray(missing_row.values)]
            raise CommutingCoverageError(
                f"commuting {year}: home municipality {describe_municipalities(panel, codes)} "
                f"has missing (NaN) commuting or employed-resident counts, so its commuting "
                "shares are unknown. Fill the row from SSB 03321 (map old codes with "
                "vekst.data.codes) or pass on_incomplete='nan' to get NaN for it."
            )
        if bool(empty.any()):
            codes = panel["municipality"].values[np.asarray(empty.values)]
            raise EmptyCommutingRowError(
                f"commuting {year}: home municipality {describe_municipalities(panel, codes)} "
                "has no employed residents (row total 0), so its commuting shares are "
                "undefined. This usually means a code-mapping gap; check the source or pass "
                "on_incomplete='nan' to get NaN for it."
            )
    shares = flows / denom.where(denom > 0)
    shares = shares.where(~missing_row)
    shares.name = "commuting_share"
    shares.attrs = {
        "units": "1",
        "long_name": "share of the home municipality's employed residents working in "
        "work_municipality (4th quarter)",
        "denominator": denominator,
        "commuting_year": year,
    }
    return shares


def _share_matrix(
    panel: xr.Dataset,
    year: int,
    codes: list[str],
    denominator: Denominator,
    on_incomplete: OnIncomplete,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share matrix over panel municipalities, own-share vector, RA index per work column."""
    shares = commuting_shares(panel, year, denominator, on_incomplete)
    work_codes = [str(c) for c in shares["work_municipality"].values]
    absent = [c for c in codes if c not in work_codes]
    if absent:
        raise CommutingCoverageError(
            f"commuting {year}: municipality {describe_municipalities(panel, absent)} is "
            "missing from the work_municipality axis, so nobody's share of working there "
            "is known. Rebuild the commuting matrix over all panel municipalities (zeros "
            "included)."
        )
    foreign = [c for c in work_codes if c not in codes]
    values = shares.values
    if foreign:
        cols = [work_codes.index(c) for c in foreign]
        used = np.nansum(values[:, cols], axis=0) > 0
        if used.any():
            bad = [c for c, u in zip(foreign, used, strict=True) if u]
            raise CommutingCoverageError(
                f"commuting {year}: residents work in {bad[:8]}, which are not panel "
                "municipalities, so their job growth is unknown. Map those codes to the "
                "panel's code vintage or drop the flows."
            )
        keep = [i for i, c in enumerate(work_codes) if c in codes]
        values = values[:, keep]
        work_codes = [work_codes[i] for i in keep]
    position = {c: i for i, c in enumerate(codes)}
    work_index = np.array([position[c] for c in work_codes])
    own_col = np.array([work_codes.index(c) for c in codes])
    own_share = values[np.arange(len(codes)), own_col]
    return values, own_share, work_index


def _employment(panel: xr.Dataset, name: str) -> xr.DataArray:
    if name not in panel.data_vars:
        raise MissingEmploymentError(
            f"the panel has no '{name}' variable (employed persons, 4th quarter, by "
            "municipality and year); job growth needs it. Build the panel with employment "
            "data (SSB tables 11618/03321) or use vekst.load_default()."
        )
    # float64 throughout: the panel stores counts as float32.
    return panel[name].transpose("municipality", "year").astype(float)
