"""SSB tables to harmonised long frames (the first half of ``vekst fetch``).

Cells marked ``.`` (category not applicable) are dropped, municipality codes of every
vintage are moved to one vintage (:func:`harmonise_counts`), and each fetched table becomes
a long frame by municipality and year (:func:`prepare_tables`); see :mod:`vekst.data.fetch`
for the whole chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from vekst.data.ssb import TableResult, TableSpecError
from vekst.data.ssb_tables import (
    COMMUTING,
    COMPONENTS,
    EMPLOYMENT,
    EMPLOYMENT_RATE,
    HOUSING,
    POPULATION,
    SEX_CODES,
    TableSpec,
)
from vekst.errors import PanelError

__all__ = [
    "MAX_AGE",
    "CodeTable",
    "FetchAssemblyError",
    "drop_not_applicable",
    "drop_not_applicable_or_zero",
    "harmonise_counts",
    "prepare_tables",
]

#: Last (open) age of the panel.
MAX_AGE = 105

CodeTable = pd.DataFrame


class FetchAssemblyError(PanelError):
    """Fetched tables cannot be turned into a panel; the message says which and why."""


def drop_not_applicable(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop cells with status ``.`` (a code not in use in that period)."""
    if "status" not in frame.columns:
        return frame
    return frame.loc[frame["status"].ne(".").fillna(True).to_numpy(bool)].reset_index(drop=True)


def drop_not_applicable_or_zero(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop not-applicable cells (``.``) and zero counts (the commuting table's filter)."""
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
    frame = drop_not_applicable_or_zero(result.frame)
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
