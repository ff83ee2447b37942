"""The panel: one validated ``xarray.Dataset`` that every source ends in.

Schema
------
Dimensions

* ``municipality`` -- 4-digit municipality code (str) of one code vintage (default 2024).
* ``year`` -- calendar year (int), strictly increasing. Stocks are on 1 January of the
  year; flows cover the calendar year (1 January ``year`` to 1 January ``year + 1``), so a
  flow is missing (NaN) in the last stock year.
* ``age`` -- completed years 0 .. ``max_age`` (int); the last age is an open interval.
* ``sex`` -- ``"female"``, ``"male"``.
* ``work_municipality`` -- same codes as ``municipality`` (dense commuting only).
* ``commuting_flow`` -- one non-zero commuting flow (sparse commuting only), with
  coordinates ``commuting_home``, ``commuting_work`` and ``commuting_year``; see
  :mod:`vekst.data.commuting_flows`.

Coordinates on ``municipality``: ``name``, ``county``, ``region`` (labour-market region,
BA-region code), ``region_name``, ``centrality`` (SSB index 0-1000).

Variables (where available); every variable carries ``attrs["kind"]`` in
``{"stock", "flow", "rate", "share"}``, ``attrs["units"]`` and ``attrs["derived"]``
(``"yes"`` when estimated rather than observed):

===============================  =====================================  ======
name                             dims                                   kind
===============================  =====================================  ======
population                       municipality, year, age, sex           stock
employed_workplace               municipality, year                     flow
employed_residence               municipality, year                     flow
commuting                        municipality, work_municipality, year  flow
                                 (or commuting_flow, sparse)
births                           municipality, year                     flow
deaths                           municipality, year                     flow
net_migration                    municipality, year, age, sex           flow
net_migration_total              municipality, year                     flow
mortality_rate                   age, sex, year                         rate
fertility_rate                   age, year                              rate
===============================  =====================================  ======

Employment and commuting are counted in the 4th quarter of the year; they are stored as
flows of that calendar year. ``mortality_rate`` is the national central death rate
m(x) per person-year, ``fertility_rate`` national age-specific fertility (births per woman
per year, ages in ``age``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from vekst.data.commuting_flows import (
    check_sparse_commuting,
    commuting_years,
    is_sparse_commuting,
)
from vekst.data.panel_checks import (
    PanelValidationError,
    check_labels,
    check_plausibility,
    counties_of,
    vintage_of,
)

__all__ = [
    "COUNT_VARIABLES",
    "FLOW_VARIABLES",
    "RATE_VARIABLES",
    "SEXES",
    "PanelValidationError",
    "check_labels",
    "check_plausibility",
    "load_panel",
    "validate_panel",
]

SEXES: tuple[str, str] = ("female", "male")
REQUIRED_DIMS: tuple[str, ...] = ("municipality", "year", "age", "sex")
REQUIRED_COORDS: tuple[str, ...] = ("name", "county", "region")

#: Variables holding counts of persons or events (non-negative, integer where observed).
COUNT_VARIABLES: tuple[str, ...] = (
    "population",
    "employed_workplace",
    "employed_residence",
    "commuting",
    "births",
    "deaths",
)
#: Variables that are flows over a calendar year (NaN in the last stock year).
FLOW_VARIABLES: tuple[str, ...] = (
    "employed_workplace",
    "employed_residence",
    "commuting",
    "births",
    "deaths",
    "net_migration",
    "net_migration_total",
)
#: Variables that are rates per person-year (must lie in [0, 1]).
RATE_VARIABLES: tuple[str, ...] = ("mortality_rate", "fertility_rate")



def validate_panel(
    panel: xr.Dataset,
    *,
    code_vintage: int | str | None = 2024,
    source: str = "panel",
    allow_unusual: bool = False,
) -> xr.Dataset:
    """Check a panel against the schema and return it unchanged.

    Parameters
    ----------
    panel
        The dataset to check.
    code_vintage
        Municipality code vintage the codes must belong to (2024 or 2020); ``"auto"``
        takes ``panel.attrs["code_vintage"]`` or, without it, requires the codes to be
        of one vintage from 2020 on (no pre-2020 or mixed codes); ``None`` skips the
        vintage check (e.g. for simulated panels with made-up codes).
    source
        Where the panel came from (a file name), used in error messages.
    allow_unusual
        Skip the plausibility checks (units against the national series, municipalities
        of zero persons, the centrality scale) for data that are truly unusual. Setting
        ``panel.attrs["allow_unusual"] = "yes"`` in the file does the same. Schema checks
        (dims, codes, gaps, negatives) always apply.

    Returns
    -------
    xarray.Dataset
        ``panel`` itself, so the call can be chained.

    Raises
    ------
    PanelValidationError
        On the first class of problem found, naming the variable, municipality and year.
    """
    _check_structure(panel, source)
    if code_vintage == "auto":
        code_vintage = vintage_of(panel, source)
    _check_codes(panel, code_vintage, source)
    _check_years(panel, source)
    check_labels(panel, source, code_vintage)
    for name in panel.data_vars:
        if name == "commuting" and is_sparse_commuting(panel):
            check_sparse_commuting(panel, source)
        else:
            _check_variable(panel, str(name), source)
    if not (allow_unusual or str(panel.attrs.get("allow_unusual", "no")) == "yes"):
        check_plausibility(panel, source)
    return panel


def load_panel(
    path: str | Path, *, code_vintage: int | str | None = "auto", allow_unusual: bool = False
) -> xr.Dataset:
    """Read a panel netCDF file and validate it.

    Parameters
    ----------
    path
        A file written by ``vekst fetch``, ``vekst simulate`` or ``vekst.data.build``.
    code_vintage, allow_unusual
        As in :func:`validate_panel` (the vintage is taken from the file by default).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    PanelValidationError
        When the file is missing, not a netCDF panel, or fails validation.
    """
    path = Path(path)
    if not path.is_file():
        raise PanelValidationError(
            f"panel file {path} not found; create one with `vekst fetch` or `vekst simulate`."
        )
    try:
        panel = xr.load_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as error:
        raise PanelValidationError(
            f"{path}: not a readable netCDF panel ({type(error).__name__}); give a file "
            "written by `vekst fetch` or `vekst simulate`, or rewrite it if it was cut short."
        ) from error
    return validate_panel(
        panel, code_vintage=code_vintage, source=str(path), allow_unusual=allow_unusual
    )


def _check_structure(panel: xr.Dataset, source: str) -> None:
    missing_dims = [d for d in REQUIRED_DIMS if d not in panel.dims]
    if missing_dims:
        raise PanelValidationError(
            f"{source}: missing dimension(s) {missing_dims}; a panel needs dims "
            f"{list(REQUIRED_DIMS)}. Build panels with vekst.data.build or "
            "vekst.simulate.simulate_panel."
        )
    missing_coords = [c for c in REQUIRED_COORDS if c not in panel.coords]
    if missing_coords:
        raise PanelValidationError(
            f"{source}: missing coordinate(s) {missing_coords} on 'municipality'; add them "
            "with panel.assign_coords(name=('municipality', [...]), ...)."
        )
    if "population" not in panel.data_vars:
        raise PanelValidationError(
            f"{source}: variable 'population' (1 January stock by municipality, year, age, "
            "sex) is required."
        )
    empty = [d for d in ("municipality", "year") if panel.sizes[d] == 0]
    if empty:
        raise PanelValidationError(
            f"{source}: the panel is empty (no {' and no '.join(empty)}); select at least "
            "one municipality and one year."
        )
    sexes = [str(s) for s in panel["sex"].values]
    if sorted(sexes) != sorted(SEXES):
        raise PanelValidationError(
            f"{source}: coordinate 'sex' is {sexes}; expected {list(SEXES)}."
        )
    ages = np.asarray(panel["age"].values)
    if ages[0] != 0 or np.any(np.diff(ages) != 1):
        raise PanelValidationError(
            f"{source}: coordinate 'age' must run 0, 1, 2, ... in steps of one year "
            f"(got {ages[:3].tolist()} ... {ages[-2:].tolist()})."
        )


def _check_codes(panel: xr.Dataset, code_vintage: int | None, source: str) -> None:
    codes = [str(c) for c in panel["municipality"].values]
    seen: set[str] = set()
    duplicates = sorted({c for c in codes if c in seen or seen.add(c)})
    if duplicates:
        raise PanelValidationError(
            f"{source}: duplicate municipality code(s) {duplicates[:10]}; each municipality "
            "must appear once. Sum or drop the duplicated rows before building the panel."
        )
    if code_vintage is None:
        return
    bad_format = [c for c in codes if not re.fullmatch(r"\d{4}", c)]
    if bad_format:
        raise PanelValidationError(
            f"{source}: municipality code(s) {bad_format[:10]} are not 4-digit codes."
        )
    allowed = counties_of(code_vintage)
    foreign = [c for c in codes if c[:2] not in allowed]
    if foreign:
        raise PanelValidationError(
            f"{source}: municipality code(s) {foreign[:10]} do not belong to the "
            f"{code_vintage} code vintage (county part {sorted({c[:2] for c in foreign})}). "
            "Map them to the panel's vintage with vekst.data.codes.harmonise() first."
        )


def _check_years(panel: xr.Dataset, source: str) -> None:
    years = np.asarray(panel["year"].values)
    if years.size > 1 and np.any(np.diff(years) <= 0):
        position = int(np.argmax(np.diff(years) <= 0))
        raise PanelValidationError(
            f"{source}: years out of order at {years[position]} -> {years[position + 1]}; "
            "years must strictly increase. Sort with panel.sortby('year')."
        )
    if years.size > 1 and np.any(np.diff(years) > 1):
        # Flows and lags are taken between consecutive entries; across a gap they would
        # silently span two or more calendar years.
        position = int(np.argmax(np.diff(years) > 1))
        missing = list(range(int(years[position]) + 1, int(years[position + 1])))
        raise PanelValidationError(
            f"{source}: year(s) {missing} missing between {years[position]} and "
            f"{years[position + 1]}; years must be consecutive. Add the missing years "
            "(flows may be NaN) or keep only the years after the gap."
        )


def _first_cell(mask: xr.DataArray) -> str:
    """Describe the first True cell of ``mask`` as 'municipality 0301 (Oslo), year 2010'."""
    index = np.argwhere(np.asarray(mask.values))[0]
    parts = []
    for dim, i in zip(mask.dims, index, strict=True):
        label = mask[dim].values[i]
        if dim == "municipality" and "name" in mask.coords:
            parts.append(f"municipality {label} ({mask['name'].values[i]})")
        else:
            parts.append(f"{dim} {label}")
    return ", ".join(parts)


def _check_variable(panel: xr.Dataset, name: str, source: str) -> None:
    da = panel[name]
    kind = da.attrs.get("kind")
    if name in COUNT_VARIABLES:
        values = da
        required = name == "population"
        if required and bool(values.isnull().any()):
            raise PanelValidationError(
                f"{source}: '{name}' is NaN at {_first_cell(values.isnull())}; population "
                "stocks are required in every cell. Fill the gap from the source or drop "
                "the year."
            )
        negative = values < 0
        if bool(negative.any()):
            raise PanelValidationError(
                f"{source}: '{name}' is negative ({float(values.where(negative).min()):g}) "
                f"at {_first_cell(negative)}; counts cannot be negative. Check the source "
                "file or the code mapping."
            )
        if da.attrs.get("derived", "no") != "yes":
            fractional = np.abs(values - np.round(values)) > 1e-6
            if bool(fractional.any()):
                raise PanelValidationError(
                    f"{source}: '{name}' is not a whole number at {_first_cell(fractional)}; "
                    "observed counts must be integers (mark estimated counts with "
                    "attrs['derived'] = 'yes')."
                )
    if name in RATE_VARIABLES or kind == "rate":
        above = da > 1
        if bool(above.any()):
            raise PanelValidationError(
                f"{source}: '{name}' is above 1 ({float(da.max()):g}) at {_first_cell(above)}; "
                "rates must be per person-year, not per 1,000 or per cent. Divide by 1000 "
                "(or 100) before building the panel."
            )
        if bool((da < 0).any()):
            raise PanelValidationError(
                f"{source}: '{name}' is negative at {_first_cell(da < 0)}; rates cannot be "
                "negative."
            )
    if name in FLOW_VARIABLES and "year" in da.dims and panel.sizes["year"] > 0:
        last = da.isel(year=-1)
        if bool(last.notnull().any()):
            last_year = int(panel["year"].values[-1])
            raise PanelValidationError(
                f"{source}: flow '{name}' has values in {last_year}, the last stock year; a "
                f"flow of {last_year} needs the stock of 1 January {last_year + 1}, which the "
                f"panel lacks. Set '{name}' to NaN in {last_year} or add the {last_year + 1} "
                "stock."
            )


def describe_availability(panel: xr.Dataset, names: Iterable[str] | None = None) -> dict:
    """Years with data and whether each variable is observed or derived.

    Parameters
    ----------
    panel
        A validated panel.
    names
        Variables to describe; all data variables by default.

    Returns
    -------
    dict
        ``{name: {"years": (first, last) or None, "derived": bool, "kind": str}}``.
    """
    out = {}
    for name in names or [str(n) for n in panel.data_vars]:
        da = panel[name]
        years = None
        if name == "commuting" and is_sparse_commuting(panel):
            with_flows = commuting_years(panel)
            years = (with_flows[0], with_flows[-1]) if with_flows else None
        elif "year" in da.dims:
            present = da.notnull()
            other = [d for d in da.dims if d != "year"]
            if other:
                present = present.any(other)
            with_data = panel["year"].values[np.asarray(present.values)]
            if with_data.size:
                years = (int(with_data.min()), int(with_data.max()))
        out[name] = {
            "years": years,
            "derived": da.attrs.get("derived", "no") == "yes",
            "kind": da.attrs.get("kind", "?"),
        }
    return out
