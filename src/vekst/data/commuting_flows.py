"""The panel's commuting matrix, stored dense or sparse, read through one accessor.

The ``commuting`` variable (employed persons by home municipality, work municipality and
year, 4th quarter) comes in two layouts:

* **dense**: dims ``(municipality, work_municipality, year)``. Simple, and right for the
  357 municipalities of the country (3 MB a year).
* **sparse** (coordinate list): dim ``commuting_flow``, one entry per non-zero flow, with
  coordinates ``commuting_home`` and ``commuting_work`` (municipality codes) and
  ``commuting_year`` (int) on it. A cell not listed is zero in a year that lists any
  finite flow, and missing in a year that lists none; a listed NaN is a missing cell.
  At 3,570 sub-municipal areas the dense matrix is 1.8 GB, almost all zeros; the sparse
  form holds the few destinations of each area.

Feature code and the projection read either through :func:`commuting_matrix` (a
``scipy.sparse`` matrix of one year over the panel's municipalities),
:func:`commuting_years` and :func:`complete_commuting_matrix_years`. Entries of the sparse
form whose home municipality or year is not in the panel are ignored, so selecting
municipalities or years of a panel keeps the accessor's answers consistent with the dense
layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import xarray as xr

__all__ = [
    "FLOW_DIM",
    "HOME",
    "SPARSE_FROM",
    "WORK",
    "YEAR",
    "CommutingMatrix",
    "check_sparse_commuting",
    "commuting_matrix",
    "commuting_years",
    "complete_commuting_matrix_years",
    "drop_commuting_from",
    "is_sparse_commuting",
    "sparse_work_codes",
    "to_dense_commuting",
    "to_sparse_commuting",
]

FLOW_DIM = "commuting_flow"
HOME = "commuting_home"
WORK = "commuting_work"
YEAR = "commuting_year"
#: Units from which generated panels store commuting sparsely (the dense matrix of 1,000
#: units and 18 years is 144 MB; of 3,570, 1.8 GB).
SPARSE_FROM = 1000


@dataclass(frozen=True)
class CommutingMatrix:
    """One year's commuting flows over the panel's home municipalities.

    Attributes
    ----------
    year
        Year of the matrix (4th quarter).
    flows
        ``scipy.sparse.csr_array`` (home municipality in panel order, work column);
        missing cells are stored as NaN entries.
    work_codes
        Work municipality code of each column (the panel's codes first in the sparse
        layout, the ``work_municipality`` axis in the dense one).
    """

    year: int
    flows: sp.csr_array
    work_codes: np.ndarray

    def entry_rows(self) -> np.ndarray:
        """Row (home) index of every stored entry, aligned with ``flows.data``."""
        return np.repeat(np.arange(self.flows.shape[0]), np.diff(self.flows.indptr))


def is_sparse_commuting(panel: xr.Dataset) -> bool:
    """Whether the panel stores ``commuting`` in the sparse (coordinate list) layout."""
    return "commuting" in panel.data_vars and FLOW_DIM in panel["commuting"].dims


def _entries(panel: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Home codes, work codes, years and values of the sparse entries inside the panel."""
    da = panel["commuting"]
    home = np.asarray(da[HOME].values).astype(str)
    work = np.asarray(da[WORK].values).astype(str)
    year = np.asarray(da[YEAR].values).astype(np.int64)
    values = np.asarray(da.values, dtype=float)
    inside = np.isin(year, np.asarray(panel["year"].values, dtype=np.int64)) & np.isin(
        home, np.asarray(panel["municipality"].values).astype(str)
    )
    return home[inside], work[inside], year[inside], values[inside]


def _positions(labels: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each of ``wanted`` in ``labels`` (all present, labels unique)."""
    order = np.argsort(labels)
    return order[np.searchsorted(labels, wanted, sorter=order)]


def _dense(panel: xr.Dataset) -> xr.DataArray:
    # copy=False: the dense matrix is unit x unit x year, already float in most panels.
    return (
        panel["commuting"]
        .transpose("municipality", "work_municipality", "year")
        .astype(float, copy=False)
    )


def commuting_years(panel: xr.Dataset) -> list[int]:
    """Panel years with at least one known (non-NaN) commuting flow, ascending."""
    if is_sparse_commuting(panel):
        _, _, year, values = _entries(panel)
        return sorted(int(y) for y in np.unique(year[np.isfinite(values)]))
    present = _dense(panel).notnull().any(("municipality", "work_municipality"))
    return [int(y) for y in panel["year"].values[np.asarray(present.values)]]


def complete_commuting_matrix_years(panel: xr.Dataset) -> list[int]:
    """Years whose commuting matrix has no missing (NaN) cell.

    In the sparse layout a year without any listed flow is missing, not complete.
    """
    if is_sparse_commuting(panel):
        _, _, year, values = _entries(panel)
        with_gaps = set(np.unique(year[~np.isfinite(values)]).tolist())
        return [y for y in commuting_years(panel) if y not in with_gaps]
    complete = _dense(panel).notnull().all(("municipality", "work_municipality"))
    return [int(y) for y in panel["year"].values[np.asarray(complete.values)]]


def commuting_matrix(panel: xr.Dataset, year: int) -> CommutingMatrix:
    """The commuting flows of one year as a sparse matrix over the panel's municipalities.

    Parameters
    ----------
    panel
        Panel with ``commuting`` in either layout.
    year
        Year of the matrix; the caller checks it is one of :func:`commuting_years`.

    Returns
    -------
    CommutingMatrix
    """
    year = int(year)
    codes = np.asarray(panel["municipality"].values).astype(str)
    if not is_sparse_commuting(panel):
        flows = _dense(panel).sel(year=year).values
        work_codes = np.asarray(panel["work_municipality"].values).astype(str)
        return CommutingMatrix(year, sp.csr_array(flows), work_codes)
    home, work, years, values = _entries(panel)
    this = years == year
    home, work, values = home[this], work[this], values[this]
    outside = np.setdiff1d(np.unique(work), codes)
    work_codes = np.concatenate([codes, outside])
    row = _positions(codes, home)
    col = _positions(work_codes, work)
    flows = sp.coo_array((values, (row, col)), shape=(codes.size, work_codes.size)).tocsr()
    return CommutingMatrix(year, flows, work_codes)


def drop_commuting_from(panel: xr.Dataset, year: int) -> xr.Dataset:
    """The panel without commuting flows of ``year`` and later (sparse layout only).

    The dense layout is masked like every other flow variable by the callers; this drops
    the entries of the sparse layout, which has no ``year`` dimension to mask along.
    """
    if not is_sparse_commuting(panel):
        return panel
    keep = np.flatnonzero(np.asarray(panel[YEAR].values, dtype=np.int64) < int(year))
    if keep.size == panel.sizes[FLOW_DIM]:
        return panel
    return panel.isel({FLOW_DIM: keep})


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def to_sparse_commuting(panel: xr.Dataset) -> xr.Dataset:
    """The panel with ``commuting`` in the sparse layout (zero cells dropped).

    Parameters
    ----------
    panel
        Panel with dense ``commuting``; a sparse one is returned unchanged.

    Returns
    -------
    xarray.Dataset
        Same variables, ``commuting`` along ``commuting_flow``; the ``work_municipality``
        dimension is dropped.
    """
    if "commuting" not in panel.data_vars or is_sparse_commuting(panel):
        return panel
    dense = panel["commuting"].transpose("municipality", "work_municipality", "year")
    values = np.asarray(dense.values)
    homes, works, years = [], [], []
    kept = []
    year_values = np.asarray(panel["year"].values, dtype=np.int64)
    for t in range(values.shape[2]):
        layer = values[:, :, t]
        if not np.isfinite(layer).any():
            continue  # a year without data lists no flow
        i, j = np.nonzero(layer != 0)  # NaN != 0: missing cells stay, as NaN entries
        homes.append(i)
        works.append(j)
        years.append(np.full(i.size, year_values[t]))
        kept.append(layer[i, j])
    home_index = _concat(homes, np.int64)
    work_index = _concat(works, np.int64)
    out = panel.drop_vars("commuting").drop_dims("work_municipality", errors="ignore")
    out["commuting"] = xr.DataArray(
        _concat(kept, float).astype(values.dtype, copy=False),
        dims=(FLOW_DIM,),
        coords={
            HOME: (FLOW_DIM, np.asarray(dense["municipality"].values).astype(str)[home_index]),
            WORK: (
                FLOW_DIM,
                np.asarray(dense["work_municipality"].values).astype(str)[work_index],
            ),
            YEAR: (FLOW_DIM, _concat(years, np.int64)),
        },
        attrs={**panel["commuting"].attrs, "layout": "sparse (coordinate list)"},
    )
    return out


def to_dense_commuting(panel: xr.Dataset) -> xr.Dataset:
    """The panel with ``commuting`` in the dense layout (for small panels and tests).

    Work municipalities are the panel's codes followed by any other listed code.
    """
    if not is_sparse_commuting(panel):
        return panel
    codes = np.asarray(panel["municipality"].values).astype(str)
    years = np.asarray(panel["year"].values, dtype=np.int64)
    home, work, year, values = _entries(panel)
    work_codes = np.concatenate([codes, np.setdiff1d(np.unique(work), codes)])
    dense = np.full((codes.size, work_codes.size, years.size), np.nan)
    with_data = set(commuting_years(panel))
    for t, y in enumerate(years):
        if int(y) in with_data:
            dense[:, :, t] = 0.0
    # Both code arrays are unique, so a sorted search finds each entry's row and column.
    rows = _positions(codes, home)
    cols = _positions(work_codes, work)
    dense[rows, cols, np.searchsorted(years, year)] = values
    attrs = {k: v for k, v in panel["commuting"].attrs.items() if k != "layout"}
    out = panel.drop_vars("commuting").drop_dims(FLOW_DIM, errors="ignore")
    out = out.assign_coords(work_municipality=work_codes)
    out["commuting"] = xr.DataArray(
        dense, dims=("municipality", "work_municipality", "year"), attrs=attrs
    )
    return out



def check_sparse_commuting(panel: xr.Dataset, source: str) -> None:
    """Schema checks of the sparse layout (entries whose home is in the panel); the
    coordinates are checked by :func:`sparse_work_codes`, which the label checks run first.

    Raises
    ------
    PanelValidationError
        Naming the home and work municipality and the year of the first bad entry, or the
        missing coordinate.
    """
    from vekst.data.panel_checks import PanelValidationError

    da = panel["commuting"]
    home, work, year, values = _entries(panel)

    def where(mask: np.ndarray) -> str:
        i = int(np.flatnonzero(mask)[0])
        more = int(mask.sum()) - 1
        also = f" (and {more} more entries)" if more else ""
        return f"home {home[i]}, work {work[i]}, year {year[i]}{also}"

    if (values < 0).any():
        raise PanelValidationError(
            f"{source}: 'commuting' is negative at {where(values < 0)}; counts cannot be "
            "negative. Check the source file or the code mapping."
        )
    fractional = np.abs(values - np.round(values)) > 1e-6
    if da.attrs.get("derived", "no") != "yes" and fractional.any():
        raise PanelValidationError(
            f"{source}: 'commuting' is not a whole number at {where(fractional)}; observed "
            "counts must be integers (mark estimated counts with attrs['derived'] = 'yes')."
        )
    last = int(panel["year"].values[-1])
    late = (year == last) & np.isfinite(values)
    if late.any():
        raise PanelValidationError(
            f"{source}: flow 'commuting' has values in {last}, the last stock year, at "
            f"{where(late)}; a flow of {last} needs the stock of 1 January {last + 1}. Drop "
            f"the {last} entries (drop_commuting_from(panel, {last})) or add the stock."
        )
    keys = np.rec.fromarrays([home, work, year])
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        duplicated = np.zeros(home.size, dtype=bool)
        duplicated[first[counts > 1]] = True
        raise PanelValidationError(
            f"{source}: 'commuting' lists the same flow twice at {where(duplicated)}; each "
            "(home, work, year) must appear once. Sum the duplicates first."
        )


def sparse_work_codes(panel: xr.Dataset, source: str) -> np.ndarray:
    """Work municipality codes of the sparse entries (for the label checks).

    Raises
    ------
    PanelValidationError
        If the layout lacks its coordinates (checked first, before any entry is read).
    """
    from vekst.data.panel_checks import PanelValidationError

    da = panel["commuting"]
    missing = [c for c in (HOME, WORK, YEAR) if c not in da.coords]
    if missing or da.dims != (FLOW_DIM,):
        raise PanelValidationError(
            f"{source}: sparse 'commuting' must have the single dimension '{FLOW_DIM}' with "
            f"coordinates {[HOME, WORK, YEAR]} on it (lacks {missing}); build it with "
            "vekst.data.commuting_flows.to_sparse_commuting(panel)."
        )
    _, work, _, _ = _entries(panel)
    return np.unique(work)
