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

import contextlib
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.panel import FLOW_VARIABLES, SEXES, validate_panel
from vekst.data.ssb import SsbClient, TableResult, TableSpecError
from vekst.data.ssb_tables import (
    ALL_TABLES,
    COMMUTING,
    COMPONENTS,
    EMPLOYMENT,
    EMPLOYMENT_RATE,
    HOUSING,
    POPULATION,
    SEX_CODES,
    TableSpec,
    table_by_key,
)
from vekst.errors import PanelError
from vekst.io import atomic_write

__all__ = [
    "MAX_AGE",
    "FetchAssemblyError",
    "FetchResult",
    "assemble_panel",
    "fetch_panel",
    "harmonise_counts",
    "prepare_tables",
    "write_outputs",
]

#: Last (open) age of the panel.
MAX_AGE = 105

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

CodeTable = pd.DataFrame


class FetchAssemblyError(PanelError):
    """Fetched tables cannot be turned into a panel; the message says which and why."""


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


# --------------------------------------------------------------------------------------
# Harmonisation
# --------------------------------------------------------------------------------------


def drop_not_applicable(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop cells with status ``.`` (a code not in use in that period)."""
    if "status" not in frame.columns:
        return frame
    return frame.loc[frame["status"].ne(".").fillna(True).to_numpy(bool)].reset_index(drop=True)


def _drop_not_applicable_or_zero(frame: pd.DataFrame) -> pd.DataFrame:
    # Commuting matrices are dense with zeros; zeros are restored when the matrix is built.
    frame = drop_not_applicable(frame)
    keep = frame["value"].ne(0).to_numpy(bool) | frame["value"].isna().to_numpy(bool)
    return frame.loc[keep].reset_index(drop=True)


def harmonise_counts(
    frame: pd.DataFrame,
    *,
    code_columns: Sequence[str],
    value_columns: Sequence[str],
    year_column: str = "year",
    code_table: CodeTable | None = None,
    round_counts: bool = True,
    source: str = "table",
) -> pd.DataFrame:
    """Sum counts recorded under historical codes into 2024 municipalities.

    Parameters
    ----------
    frame
        Long frame: code column(s), ``year_column``, other key columns, value columns.
    code_columns
        Municipality code columns (each is harmonised in turn, e.g. home and work).
    value_columns
        Counts to sum.
    year_column
        The year whose code vintage each row uses.
    code_table
        Code table for :func:`vekst.data.codes.harmonise` (the shipped one by default).
    round_counts
        Round results to whole numbers (shares of split municipalities are fractional).
    source
        Table name for error messages.

    Returns
    -------
    pandas.DataFrame
        Same columns; a value is NaN when any contributing cell was missing.

    Raises
    ------
    FetchAssemblyError
        If a code unknown to the code table carries non-zero values.
    """
    from vekst.data.codes import code_table as shipped_code_table
    from vekst.data.codes import harmonise

    table = shipped_code_table() if code_table is None else code_table
    last_table_year = int(table["year"].max())
    work = frame.copy()
    flags = {column: f"_missing_{column}" for column in value_columns}
    for column, flag in flags.items():
        values = pd.to_numeric(work[column], errors="coerce").astype(float)
        work[flag] = values.isna().astype(float)
        work[column] = values.fillna(0.0)
    summed = [*value_columns, *flags.values()]
    for code_column in code_columns:
        before = work
        work = harmonise(
            work,
            code_column=code_column,
            year_column=year_column,
            value_columns=summed,
            drop_unknown=True,
            table=table,
        )
        dropped = work.attrs.get("dropped", [])
        if dropped:
            _check_dropped(
                before, dropped, code_column, year_column, value_columns, source, last_table_year
            )
    for column, flag in flags.items():
        values = work[column].to_numpy(float)
        if round_counts:
            values = np.round(values)
        values[work[flag].to_numpy(float) > 0] = np.nan
        work[column] = values
    return work.drop(columns=list(flags.values())).reset_index(drop=True)


def _check_dropped(
    frame: pd.DataFrame,
    dropped: Iterable[tuple[str, int]],
    code_column: str,
    year_column: str,
    value_columns: Sequence[str],
    source: str,
    last_table_year: int,
) -> None:
    from vekst.data.codes import normalise_codes

    # harmonise reports years after its table's last year as that year (codes are current).
    keyed = pd.DataFrame(
        {
            code_column: normalise_codes(frame[code_column]).to_numpy(),
            year_column: frame[year_column].astype(int).clip(upper=last_table_year).to_numpy(),
        }
    )
    pairs = pd.DataFrame(list(dropped), columns=[code_column, year_column]).drop_duplicates()
    hit = keyed.merge(pairs, how="left", indicator=True)["_merge"].eq("both").to_numpy(bool)
    values = frame.loc[hit, list(value_columns)].to_numpy(float)
    if np.nansum(np.abs(values)) > 0:
        shown = ", ".join(f"{c} in {y}" for c, y in list(dropped)[:10])
        raise FetchAssemblyError(
            f"{source}: municipality code(s) unknown to the code table carry data: {shown}. "
            "Either SSB uses a new code (update data/municipality_codes.csv) or the region "
            "pattern in src/vekst/data/ssb_tables.py lets a non-municipality through."
        )


# --------------------------------------------------------------------------------------
# Table -> long frames
# --------------------------------------------------------------------------------------


def _content_column(result: TableResult) -> pd.Series:
    contents_var = result.query.variables.get("ContentsCode", "ContentsCode")
    return result.frame[contents_var].map(dict(result.query.contents))


def _age_of(code: str) -> int:
    return int(code.rstrip("+"))


def _population_long(result: TableResult, code_table: CodeTable | None) -> pd.DataFrame:
    frame = drop_not_applicable(result.frame)
    ages = frame["Alder"].map(_age_of).clip(upper=MAX_AGE)
    long = pd.DataFrame(
        {
            "municipality": frame["Region"].astype(str),
            "year": frame["Tid"].astype(int),
            "age": ages.astype(int),
            "sex": frame["Kjonn"].map(dict(SEX_CODES)),
            "population": frame["value"].astype(float),
        }
    )
    if long["sex"].isna().any():
        raise FetchAssemblyError(
            f"SSB {POPULATION.table_id}: Kjonn codes {sorted(frame['Kjonn'].unique())} beyond "
            f"{dict(SEX_CODES)}; update SEX_CODES in src/vekst/data/ssb_tables.py."
        )
    # Ages above MAX_AGE (if SSB ever splits 105+) fold into the open group.
    long = long.groupby(["municipality", "year", "age", "sex"], as_index=False)["population"].sum(
        min_count=1
    )
    return harmonise_counts(
        long,
        code_columns=["municipality"],
        value_columns=["population"],
        code_table=code_table,
        source=f"SSB {POPULATION.table_id}",
    )


def _annual_components(result: TableResult) -> pd.DataFrame:
    frame = drop_not_applicable(result.frame)
    period = frame["Tid"].astype(str)
    long = pd.DataFrame(
        {
            "municipality": frame["Region"].astype(str),
            "year": period.str.slice(0, 4).astype(int),
            "quarter": period.str.slice(5).astype(int),
            "content": _content_column(result).to_numpy(),
            "value": frame["value"].astype(float).to_numpy(),
        }
    )
    grouped = long.groupby(["municipality", "year", "content"])
    annual = grouped["value"].sum(min_count=1).to_frame()
    # A year needs all four quarters observed; a partial year is not an annual figure.
    annual["quarters"] = grouped["value"].count()
    annual.loc[annual["quarters"] < 4, "value"] = np.nan
    wide = annual["value"].unstack("content").reset_index()
    wide.columns.name = None
    return wide


def _components_long(result: TableResult, code_table: CodeTable | None) -> pd.DataFrame:
    wide = _annual_components(result)
    columns = [c.column for c in COMPONENTS.contents]
    for column in columns:
        if column not in wide.columns:
            wide[column] = np.nan
    wide = wide[["municipality", "year", *columns]]
    out = harmonise_counts(
        wide,
        code_columns=["municipality"],
        value_columns=columns,
        code_table=code_table,
        source=f"SSB {COMPONENTS.table_id}",
    )
    out["net_migration_total"] = (
        out["in_migration"] - out["out_migration"] + out["immigration"] - out["emigration"]
    )
    return out


def _by_municipality_year(
    result: TableResult, spec: TableSpec, code_table: CodeTable | None
) -> pd.DataFrame:
    frame = drop_not_applicable(result.frame)
    long = pd.DataFrame(
        {
            "municipality": frame["Region"].astype(str).to_numpy(),
            "year": frame["Tid"].astype(int).to_numpy(),
            "content": _content_column(result).to_numpy(),
            "value": frame["value"].astype(float).to_numpy(),
        }
    )
    keyed = long.set_index(["municipality", "year", "content"])["value"]
    if keyed.index.has_duplicates:
        raise FetchAssemblyError(
            f"SSB {spec.table_id}: more than one value per municipality, year and content; "
            "a variable the spec does not pin down is left in the query (check its "
            "selections in src/vekst/data/ssb_tables.py)."
        )
    wide = keyed.unstack("content")
    wide.columns.name = None
    wide = wide.reset_index()
    columns = [c.column for c in spec.contents]
    for column in columns:
        if column not in wide.columns:
            wide[column] = np.nan
    return harmonise_counts(
        wide[["municipality", "year", *columns]],
        code_columns=["municipality"],
        value_columns=columns,
        code_table=code_table,
        source=f"SSB {spec.table_id}",
    )


def _commuting_long(result: TableResult, code_table: CodeTable | None) -> pd.DataFrame:
    frame = _drop_not_applicable_or_zero(result.frame)
    home = COMMUTING.options["home"]
    work = COMMUTING.options["work"]
    long = pd.DataFrame(
        {
            "municipality": frame[home].astype(str).to_numpy(),
            "work_municipality": frame[work].astype(str).to_numpy(),
            "year": frame["Tid"].astype(int).to_numpy(),
            "commuting": frame["value"].astype(float).to_numpy(),
        }
    )
    out = harmonise_counts(
        long,
        code_columns=["municipality", "work_municipality"],
        value_columns=["commuting"],
        code_table=code_table,
        source=f"SSB {COMMUTING.table_id}",
    )
    out.attrs["years"] = sorted(int(y) for y in result.query.codes("Tid"))
    return out


def _age_group_bounds(code: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{1,3})-(\d{1,3})", code)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.fullmatch(r"(\d{1,3})\+", code)
    if match:
        return int(match.group(1)), MAX_AGE
    return None


def _employment_rate_long(result: TableResult) -> pd.DataFrame:
    spec = EMPLOYMENT_RATE
    options = spec.options
    status_var = result.query.variables.get(options["status_variable"], options["status_variable"])
    dim = result.metadata.dimension(status_var)
    employed = [
        c
        for c, lab in zip(dim.codes, dim.labels, strict=True)
        if re.search(options["employed_label"], lab, re.IGNORECASE)
    ]
    totals = [
        c
        for c, lab in zip(dim.codes, dim.labels, strict=True)
        if re.search(options["total_label"], lab, re.IGNORECASE)
    ]
    if not employed or not totals:
        values = ", ".join(f"{c} ({lab})" for c, lab in zip(dim.codes, dim.labels, strict=True))
        raise TableSpecError(
            f"table {spec.table_id} ({spec.key}): cannot find the employed and the total rows "
            f"of {status_var!r} (patterns {options['employed_label']!r} and "
            f"{options['total_label']!r}); its values are {values}. Update the options in "
            "src/vekst/data/ssb_tables.py."
        )
    frame = drop_not_applicable(result.frame)
    sex_var = result.query.variables.get("Kjonn", "Kjonn")
    age_var = result.query.variables.get("Alder", "Alder")
    keys = [sex_var, age_var, "Tid"]
    top = frame.loc[frame[status_var].eq(employed[0])].set_index(keys)["value"]
    bottom = frame.loc[frame[status_var].eq(totals[0])].set_index(keys)["value"]
    rate = (top / bottom).rename("employment_rate").reset_index()
    rate["sex"] = rate[sex_var].map(dict(SEX_CODES))
    rate["year"] = rate["Tid"].astype(int)
    bounds = rate[age_var].map(_age_group_bounds)
    rate = rate.loc[bounds.notna()]
    rate["low"] = [b[0] for b in bounds.dropna()]
    rate["high"] = [b[1] for b in bounds.dropna()]
    rows = []
    for (sex, year), group in rate.groupby(["sex", "year"]):
        for age in range(MAX_AGE + 1):
            covering = group.loc[(group["low"] <= age) & (group["high"] >= age)]
            if covering.empty:
                continue
            # The narrowest group is the most specific estimate for this age.
            best = covering.loc[(covering["high"] - covering["low"]).idxmin()]
            rows.append((age, sex, year, float(best["employment_rate"])))
    return pd.DataFrame(rows, columns=["age", "sex", "year", "employment_rate"])


def prepare_tables(
    results: Mapping[str, TableResult], *, code_table: CodeTable | None = None
) -> dict[str, pd.DataFrame]:
    """Turn raw fetch results into harmonised long frames keyed by table key.

    Parameters
    ----------
    results
        :class:`~vekst.data.ssb.TableResult` per table key (``population``, ...).
    code_table
        Code table for harmonisation (the shipped one by default).

    Returns
    -------
    dict
        ``population``: municipality, year, age, sex, population; ``components``:
        municipality, year, births, deaths, immigration, emigration, in_migration,
        out_migration, net_migration_total; ``employment``: municipality, year,
        employed_residence, employed_workplace; ``commuting``: municipality,
        work_municipality, year, commuting; ``housing``: municipality, year,
        dwellings_completed; ``employment_rate``: age, sex, year, employment_rate.
    """
    builders: dict[str, Callable[[TableResult], pd.DataFrame]] = {
        POPULATION.key: lambda r: _population_long(r, code_table),
        COMPONENTS.key: lambda r: _components_long(r, code_table),
        EMPLOYMENT.key: lambda r: _by_municipality_year(r, EMPLOYMENT, code_table),
        COMMUTING.key: lambda r: _commuting_long(r, code_table),
        HOUSING.key: lambda r: _by_municipality_year(r, HOUSING, code_table),
        EMPLOYMENT_RATE.key: _employment_rate_long,
    }
    out = {}
    for key, result in results.items():
        if key not in builders:
            raise FetchAssemblyError(f"no assembly rule for table {key!r}")
        out[key] = builders[key](result)
    return out


# --------------------------------------------------------------------------------------
# Long frames -> panel
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Orchestration and output
# --------------------------------------------------------------------------------------


def fetch_panel(
    client: SsbClient,
    *,
    first_year: int = 2000,
    last_year: int | None = None,
    tables: Iterable[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_table: Callable[[TableSpec], None] | None = None,
    municipality_info: pd.DataFrame | None = None,
    base: xr.Dataset | None = None,
    code_table: CodeTable | None = None,
) -> FetchResult:
    """Fetch the tables and assemble the panel.

    Parameters
    ----------
    client
        The SSB client (its cache makes re-runs resume).
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

    Returns
    -------
    FetchResult
    """
    from vekst.data.codes import code_table as shipped_code_table

    table = shipped_code_table() if code_table is None else code_table
    first_mapped = int(table["year"].min())
    if first_year < first_mapped:
        raise FetchAssemblyError(
            f"--from {first_year} is before {first_mapped}, the first year the municipality "
            f"code table maps; use --from {first_mapped} or later."
        )
    keys = list(tables) if tables is not None else [spec.key for spec in ALL_TABLES]
    if POPULATION.key not in keys:
        keys.insert(0, POPULATION.key)
    results: dict[str, TableResult] = {}
    for key in keys:
        spec = table_by_key(key)
        if on_table is not None:
            on_table(spec)
        chunk_filter = (
            _drop_not_applicable_or_zero if spec.key == COMMUTING.key else drop_not_applicable
        )
        results[key] = client.fetch_table(
            spec,
            first_year=first_year,
            last_year=last_year,
            progress=progress,
            chunk_filter=chunk_filter,
        )
    prepared = prepare_tables(results, code_table=table)
    panel = assemble_panel(
        prepared,
        first_year=first_year,
        last_year=last_year,
        municipality_info=municipality_info,
        base=base,
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
