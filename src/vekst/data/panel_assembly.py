"""Long frames to a panel (the second half of ``vekst fetch``): arrays on the panel's
coordinates, municipality names and regions, variable attributes, and merging with a base
panel; see :mod:`vekst.data.fetch` for the whole chain.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.panel import FLOW_VARIABLES, SEXES, validate_panel
from vekst.data.ssb import TableResult
from vekst.data.ssb_frames import MAX_AGE, FetchAssemblyError
from vekst.data.ssb_tables import (
    ALL_TABLES,
    COMMUTING,
    COMPONENTS,
    EMPLOYMENT,
    EMPLOYMENT_RATE,
    HOUSING,
    POPULATION,
)

__all__ = ["assemble_panel"]

#: Panel variable -> (kind, units) for the variables this module writes.
VARIABLE_KINDS: Mapping[str, tuple[str, str]] = {
    "population": ("stock", "persons"),
    "births": ("flow", "persons"),
    "deaths": ("flow", "persons"),
    "net_migration_total": ("flow", "persons"),
    "employed_workplace": ("flow", "persons"),
    "employed_residence": ("flow", "persons"),
    "commuting": ("flow", "persons"),
    "dwellings_completed": ("flow", "dwellings"),
    "employment_rate": ("rate", "employed persons per person"),
}


def _to_array(
    frame: pd.DataFrame, value: str, coords: Mapping[str, Sequence], fill: float = np.nan
) -> xr.DataArray:
    dims = list(coords)
    series = frame.set_index(dims)[value]
    series = series[~series.index.duplicated(keep="first")]
    index = pd.MultiIndex.from_product([list(c) for c in coords.values()], names=dims)
    values = series.reindex(index).to_numpy(float)
    values = np.where(np.isnan(values), fill, values) if not np.isnan(fill) else values
    return xr.DataArray(
        values.reshape([len(c) for c in coords.values()]),
        coords={d: list(c) for d, c in coords.items()},
        dims=dims,
        name=value,
    )


def _set_attrs(da: xr.DataArray, name: str, source: str) -> xr.DataArray:
    kind, units = VARIABLE_KINDS[name]
    da.attrs = {"kind": kind, "units": units, "derived": "no", "source": source}
    return da


def _municipality_coords(
    codes: Sequence[str], info: pd.DataFrame | None, population: TableResult | None
) -> dict[str, tuple[str, np.ndarray]]:
    if info is None:
        with contextlib.suppress(Exception):
            from vekst.data.codes import municipality_table

            info = municipality_table()
    if info is not None:
        info = info.copy()
        info.index = info.index.astype(str)
        missing = [c for c in codes if c not in info.index]
        if missing:
            raise FetchAssemblyError(
                f"municipality information lacks code(s) {missing[:10]}; it must cover every "
                "municipality of the panel (2024 codes)."
            )
        info = info.loc[list(codes)]
        out = {}
        for column in ("name", "county", "county_name", "region", "region_name", "centrality"):
            if column in info.columns:
                values = info[column].to_numpy()
                if column != "centrality":
                    values = values.astype(str)
                out[column] = ("municipality", values)
        if {"name", "county", "region"} <= set(out):
            return out
    warnings.warn(
        "no municipality table (names, BA-regions, centrality) was available; names come from "
        "SSB labels, county from the code, region is empty and centrality NaN. Pass "
        "municipality_info (or build the embedded data) for the full coordinates.",
        stacklevel=3,
    )
    labels: dict[str, str] = {}
    if population is not None:
        dim = population.metadata.dimension("Region")
        labels = dict(zip(dim.codes, dim.labels, strict=True))
    names = [re.sub(r"\s*\([^)]*\)\s*$", "", labels.get(c, c)) for c in codes]
    return {
        "name": ("municipality", np.array(names, dtype=str)),
        "county": ("municipality", np.array([c[:2] for c in codes], dtype=str)),
        "region": ("municipality", np.array([""] * len(codes), dtype=str)),
        "region_name": ("municipality", np.array([""] * len(codes), dtype=str)),
        "centrality": ("municipality", np.full(len(codes), np.nan)),
    }


def assemble_panel(
    tables: Mapping[str, pd.DataFrame],
    *,
    first_year: int,
    last_year: int | None = None,
    municipality_info: pd.DataFrame | None = None,
    base: xr.Dataset | None = None,
    results: Mapping[str, TableResult] | None = None,
) -> xr.Dataset:
    """Build a validated panel from harmonised long frames.

    Parameters
    ----------
    tables
        Output of :func:`prepare_tables`; ``population`` is required.
    first_year, last_year
        Year range; ``last_year=None`` ends with the last population year.
    municipality_info
        Index: 2024 codes; columns ``name``, ``county``, ``region``, ``region_name``,
        ``centrality``. Defaults to :func:`vekst.data.codes.municipality_table`.
    base
        A panel whose variables are kept where not fetched (fetched ones replace them).
    results
        Raw results (for SSB labels when no municipality table is available).

    Returns
    -------
    xarray.Dataset
        Passes :func:`vekst.data.panel.validate_panel`.

    Raises
    ------
    FetchAssemblyError
        If population is missing or incomplete.
    """
    if POPULATION.key not in tables:
        raise FetchAssemblyError(
            "the panel needs the population table (07459); include 'population' in --tables."
        )
    population = tables[POPULATION.key]
    years = sorted(int(y) for y in population["year"].unique() if y >= first_year)
    if last_year is not None:
        years = [y for y in years if y <= last_year]
    if not years:
        raise FetchAssemblyError(
            f"no population stock between {first_year} and {last_year or 'the latest year'}."
        )
    population = population.loc[population["year"].isin(years)]
    codes = sorted(population["municipality"].unique())
    pop = _to_array(
        population,
        "population",
        {"municipality": codes, "year": years, "age": range(MAX_AGE + 1), "sex": SEXES},
    )
    if bool(pop.isnull().any()):
        gaps = pop.isnull().any(["age", "sex"]).values
        bad = [
            f"{codes[int(m)]} in {years[int(y)]}" for m, y in zip(*np.nonzero(gaps), strict=True)
        ][:5]
        raise FetchAssemblyError(
            f"population (SSB {POPULATION.table_id}) is missing for {bad}; the 1 January stock "
            "is needed in every municipality and year. Narrow --from/--to to years SSB covers."
        )
    data: dict[str, xr.DataArray] = {
        "population": _set_attrs(pop, "population", f"SSB {POPULATION.table_id}")
    }
    muni_year = {"municipality": codes, "year": years}
    for key, spec, names in (
        (COMPONENTS.key, COMPONENTS, ("births", "deaths", "net_migration_total")),
        (EMPLOYMENT.key, EMPLOYMENT, ("employed_residence", "employed_workplace")),
        (HOUSING.key, HOUSING, ("dwellings_completed",)),
    ):
        if key in tables:
            for name in names:
                da = _to_array(tables[key], name, muni_year)
                data[name] = _set_attrs(da, name, f"SSB {spec.table_id}")
    if COMMUTING.key in tables:
        frame = tables[COMMUTING.key]
        da = _to_array(
            frame,
            "commuting",
            {"municipality": codes, "work_municipality": codes, "year": years},
            fill=0.0,
        )
        # Zeros were dropped while fetching; years SSB did not cover stay missing.
        covered = set(frame.attrs.get("years", frame["year"].unique()))
        absent = [y for y in years if y not in covered]
        if absent:
            da.loc[{"year": absent}] = np.nan
        data["commuting"] = _set_attrs(da, "commuting", f"SSB {COMMUTING.table_id}")
    if EMPLOYMENT_RATE.key in tables:
        da = _to_array(
            tables[EMPLOYMENT_RATE.key],
            "employment_rate",
            {"age": range(MAX_AGE + 1), "sex": SEXES, "year": years},
        )
        da = _set_attrs(da, "employment_rate", f"SSB {EMPLOYMENT_RATE.table_id}")
        da.attrs["note"] = "age-group rates (AKU) repeated over the single ages of each group"
        data["employment_rate"] = da

    panel = xr.Dataset(data)
    population_result = (results or {}).get(POPULATION.key)
    panel = panel.assign_coords(_municipality_coords(codes, municipality_info, population_result))
    if "commuting" in panel:
        panel = panel.assign_coords(work_municipality=codes)
    if base is not None:
        panel = _merge_base(panel, base)
    panel = _blank_last_year_flows(panel)
    panel.attrs = {
        "title": "vekst panel fetched from Statistics Norway (SSB)",
        "source": "Statistisk sentralbyrå (SSB), StatBank, PxWebApi 2; CC BY 4.0",
        "code_vintage": 2024,
        "tables": ", ".join(
            f"{spec.key}={spec.table_id}" for spec in ALL_TABLES if spec.key in tables
        ),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return validate_panel(panel, code_vintage=2024, source="fetched panel")


def _merge_base(panel: xr.Dataset, base: xr.Dataset) -> xr.Dataset:
    out = panel.copy()
    for name in base.data_vars:
        if name in out.data_vars:
            continue
        da = base[name]
        indexers = {d: out[d].values for d in da.dims if d in out.dims}
        out[name] = da.reindex(indexers)
    return out


def _blank_last_year_flows(panel: xr.Dataset) -> xr.Dataset:
    last = panel["year"].values[-1]
    for name in panel.data_vars:
        da = panel[name]
        is_flow = name in FLOW_VARIABLES or da.attrs.get("kind") == "flow"
        if is_flow and "year" in da.dims:
            attrs = dict(da.attrs)
            panel[name] = da.where(da["year"] != last)
            panel[name].attrs = attrs
    return panel
