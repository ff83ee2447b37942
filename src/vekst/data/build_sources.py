"""Readers of the real source files behind the embedded panel (see :mod:`vekst.data.build`).

Each reader turns one source (SSB population and code tables, employment, commuting, the
Human Mortality and Fertility Databases) into labelled arrays on the panel's 2024
municipality codes, logging every decision in a :class:`BuildLog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.data.border_transfers import (
    KNOWN_TRANSFERS,
    MOVED_ATTRIBUTE,
    BorderTransfer,
    moved_transfers_attribute,
)
from vekst.data.codes import harmonise
from vekst.data.panel import SEXES
from vekst.errors import InputError

#: 2: the known border transfers moved onto the 2024 borders in the years before them.
DATA_VERSION = "2"
CODE_VINTAGE = 2024
YEARS = np.arange(2005, 2023)  # population stocks, 1 January
HIST_YEARS = np.arange(1950, 2022)  # national vital rates
AGES = np.arange(0, 106)  # 105 = 105+
CODE_TABLE_YEARS = (2000, 2024)
FLOAT_DIGITS = 4  # decimals kept in mapped counts and code weights (compresses better)

FILES = {
    "population": "csdata/nor_population_by_age_sex_b2024_municip_2005_2022.csv.gz",
    "nation": "csdata/nor_population_by_age_sex_b2024_nation_county.csv.gz",
    "redistricting": "csdata/nor_locations_redistricting_b2024.csv",
    "hierarchy": "csdata/nor_locations_hierarchy_b2024.csv",
    "baregions": "csdata/baregioner_2024_etter_kommune.csv",
    "centrality": "valg_analyser/sentralitet_klass.csv",
    "totals_2024": "valg_analyser/befolkning_2024.csv",
    "employment": "ssb_pendling_app/ssb11618_employed_15_74_by_residence_workplace_2017_2021.csv",
    "commuting": "ssb_pendling_app/ssb03321_commuting_flows_2017_2021_nonzero.csv.gz",
    "mx": "hmd_hfd_vital/Mx_1x1.txt",
    "deaths": "hmd_hfd_vital/Deaths_1x1.txt",
    "hmd_population": "hmd_hfd_vital/Population.txt",
    "births": "hmd_hfd_vital/Births.txt",
    "asfr": "hmd_hfd_vital/NORasfrRR.txt",
}

#: Ålesund (1508) and Haram (1580) were one municipality (1507) in 2020-2023. The source's
#: redistricting table splits every predecessor 50/50 between them; Haram of 2024 has the
#: borders of Haram before 2020 (1534), so the pre-2020 codes map whole.
ALESUND, HARAM = "1508", "1580"
PRE2020_TO_ALESUND = ("1504", "1523", "1529", "1546")
PRE2020_HARAM = "1534"
ALESUND_2020 = "1507"
#: Formed on 1 January 2006; the source has no 2005 rows for them.
FORMED_2006 = ("1160", "1576")

SSB_LICENCE = (
    "Statistics Norway (Statistisk sentralbyrå, SSB), NLOD 2.0 / CC BY 4.0; attribution "
    "'Statistisk sentralbyrå'"
)
HMD_CITATION = (
    "Human Mortality Database. Max Planck Institute for Demographic Research (Germany), "
    "University of California, Berkeley (USA), and French Institute for Demographic Studies "
    "(France). www.mortality.org (Norway, last modified 2024-08-01; CC BY 4.0)"
)
HFD_CITATION = (
    "Human Fertility Database. Max Planck Institute for Demographic Research (Germany) and "
    "Vienna Institute of Demography (Austria). www.humanfertility.org (Norway, last modified "
    "2023-04-19; CC BY 4.0)"
)


class SourceFileError(InputError):
    """A source file is missing or does not have the content the build expects."""


@dataclass
class BuildLog:
    """Numbers the build reports (and stores in attributes where they matter)."""

    notes: dict[str, object] = field(default_factory=dict)


def _path(source: Path, key: str) -> Path:
    path = source / FILES[key]
    if not path.is_file():
        raise SourceFileError(
            f"{path}: source file missing; --source must be the real-data folder described "
            "in its PROVENANCE.md."
        )
    return path


# ---------------------------------------------------------------------------------------
# Code table
# ---------------------------------------------------------------------------------------


def _official_totals(source: Path) -> pd.DataFrame:
    totals = pd.read_csv(_path(source, "totals_2024"), dtype={"kom2024": str})
    return totals.rename(columns={"kom2024": "code", "aar": "year", "befolkning": "persons"})


def haram_share(source: Path) -> pd.Series:
    """Haram's share of Ålesund + Haram (2024 borders) by year, 2000-2023.

    Taken from SSB's totals on 2024 borders (valg_analyser/befolkning_2024.csv) up to 2019,
    when Haram (1534) was a municipality of its own; held at the 2019 value for 2020-2023,
    when SSB published only the merged Ålesund (1507).
    """
    totals = _official_totals(source)
    wide = totals[totals["code"].isin([ALESUND, HARAM])].pivot(
        index="year", columns="code", values="persons"
    )
    share = (wide[HARAM] / (wide[ALESUND] + wide[HARAM])).loc[2000:2019]
    if share.isna().any() or len(share) != 20:
        raise SourceFileError(
            f"{FILES['totals_2024']}: Ålesund/Haram totals for 2000-2019 are incomplete."
        )
    held = pd.Series(share.loc[2019], index=range(2020, 2024))
    return pd.concat([share, held]).rename("haram_share")


def build_code_table(source: Path) -> pd.DataFrame:
    """Compact code table ``original_code, year, code_2024, weight`` for 2000-2024.

    Municipality rows of csdata's redistricting table, with the Ålesund/Haram weights
    replaced (see :data:`PRE2020_TO_ALESUND` and :func:`haram_share`). Weights are rounded
    to 4 decimals, the last weight of each code adjusted so that they sum to 1.
    """
    raw = pd.read_csv(_path(source, "redistricting"))
    raw = raw[raw["granularity_geo"] == "municip"]
    table = pd.DataFrame(
        {
            "original_code": raw["location_code_original"].str.removeprefix("municip_nor"),
            "year": raw["calyear"].astype(int),
            "code_2024": raw["location_code_current"].str.removeprefix("municip_nor"),
            "weight": raw["weighting"].astype(float),
        }
    )
    first, last = CODE_TABLE_YEARS
    table = table[table["year"].between(first, last)].drop_duplicates(
        ["original_code", "year", "code_2024"]
    )
    share = haram_share(source)
    is_alesund_family = table["code_2024"].isin([ALESUND, HARAM]) & (
        table["original_code"].isin([*PRE2020_TO_ALESUND, PRE2020_HARAM, ALESUND_2020])
    )
    table = table[~is_alesund_family]
    fixes = []
    for year in range(first, 2020):
        fixes += [(code, year, ALESUND, 1.0) for code in PRE2020_TO_ALESUND]
        fixes.append((PRE2020_HARAM, year, HARAM, 1.0))
    for year in range(2020, 2024):
        h = round(float(share.loc[year]), FLOAT_DIGITS)
        fixes += [(ALESUND_2020, year, ALESUND, 1.0 - h), (ALESUND_2020, year, HARAM, h)]
    table = pd.concat([table, pd.DataFrame(fixes, columns=table.columns)], ignore_index=True)
    table["weight"] = table["weight"].round(FLOAT_DIGITS)
    table = table.sort_values(["year", "original_code", "code_2024"]).reset_index(drop=True)
    sums = table.groupby(["original_code", "year"])["weight"].transform("sum")
    last_of_group = ~table.duplicated(["original_code", "year"], keep="last")
    table.loc[last_of_group, "weight"] += (1.0 - sums[last_of_group]).round(FLOAT_DIGITS)
    table["weight"] = table["weight"].round(FLOAT_DIGITS)
    check = table.groupby(["original_code", "year"])["weight"].sum()
    if (check - 1).abs().max() > 1e-9:
        raise SourceFileError("code table weights do not sum to 1 per code and year.")
    return table


# ---------------------------------------------------------------------------------------
# Municipalities and population
# ---------------------------------------------------------------------------------------


def _recode_to_2024(
    frame: pd.DataFrame, names: pd.Series, code_table: pd.DataFrame, file: str
) -> pd.DataFrame:
    """Re-index rows written under codes that are not 2024 codes.

    The BA-region file has three (3444 Jevnaker, 3445 Lunner, 1567 Rindal): a code that the
    code table maps whole is recoded with it, any other is matched by name among the 2024
    municipalities that have no row yet.
    """
    codes = names.index
    unknown = frame.index.difference(codes)
    free = names[codes.difference(frame.index)]
    renamed = {}
    for code in unknown:
        rows = code_table[code_table["original_code"] == code]
        rows = rows[rows["year"] == rows["year"].max()]
        if len(rows) == 1 and rows["weight"].iloc[0] == 1.0 and rows["code_2024"].iloc[0] in free:
            renamed[code] = rows["code_2024"].iloc[0]
            continue
        by_name = free[free == frame.loc[code, "source_name"]]
        if len(by_name) != 1:
            raise SourceFileError(
                f"{file}: code {code} ({frame.loc[code, 'source_name']}) matches no 2024 "
                "municipality by code table or name."
            )
        renamed[code] = by_name.index[0]
    out = frame.rename(index=renamed)
    if out.index.duplicated().any():
        raise SourceFileError(
            f"{file}: codes {sorted(out.index[out.index.duplicated()])} appear twice after "
            "recoding to 2024."
        )
    return out


def municipality_coords(source: Path, code_table: pd.DataFrame) -> pd.DataFrame:
    """The 357 municipalities with name, county, BA-region and centrality, sorted by code."""
    hierarchy = pd.read_csv(_path(source, "hierarchy"), dtype=str)
    hierarchy = hierarchy[hierarchy["municip_code"].str.startswith("municip_nor", na=False)]
    hierarchy = hierarchy.drop_duplicates("municip_code")
    table = pd.DataFrame(
        {
            "name": hierarchy["municip_name"].to_numpy(),
            "county": hierarchy["county_code"].str.removeprefix("county_nor").to_numpy(),
            "county_name": hierarchy["county_name"].to_numpy(),
        },
        index=pd.Index(hierarchy["municip_code"].str.removeprefix("municip_nor"), name="code"),
    ).sort_index()

    ba = pd.read_csv(_path(source, "baregions"), dtype=str)
    municipality = ba.iloc[:, 0].str.extract(r"^(\d{4})\s+(.+)$")
    region = ba["BA-region"].str.extract(r"^(\d{1,3})\s+(.+)$")
    if municipality.isna().any().any() or region.isna().any().any():
        raise SourceFileError(f"{FILES['baregions']}: unparsable municipality or BA-region.")
    # The file pads codes inconsistently ('05 Oslo/Bærum' and '5 Oslo/Bærum'); use 3 digits.
    regions = pd.DataFrame(
        {
            "region": region[0].astype(int).map("{:03d}".format).to_numpy(),
            "region_name": region[1].str.strip().to_numpy(),
            "source_name": municipality[1].str.strip().to_numpy(),
        },
        index=municipality[0].to_numpy(),
    )
    regions = _recode_to_2024(regions, table["name"], code_table, FILES["baregions"])
    regions = regions.drop(columns="source_name")
    centrality = pd.read_csv(_path(source, "centrality"), dtype=str)
    centrality = centrality[centrality["level"] == "2"].set_index("code")["notes"].astype(float)

    missing_ba = table.index.difference(regions.index)
    missing_c = table.index.difference(centrality.index)
    if len(missing_ba) or len(missing_c):
        raise SourceFileError(
            f"municipalities without BA-region {list(missing_ba)} or centrality {list(missing_c)}."
        )
    table = table.join(regions).assign(centrality=centrality.reindex(table.index).to_numpy())
    if len(table) != 357:
        raise SourceFileError(f"{FILES['hierarchy']}: {len(table)} municipalities, not 357.")
    return table


def _round_preserving_total(values: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative reals to integers summing to ``total`` (largest remainders)."""
    scaled = values * (total / values.sum()) if values.sum() > 0 else values
    floor = np.floor(scaled)
    short = int(total - floor.sum())
    order = np.argsort(-(scaled - floor), kind="stable")
    floor[order[:short]] += 1
    return floor.astype(np.int64)


def read_population(
    source: Path, codes: pd.Index, log: BuildLog
) -> tuple[xr.DataArray, pd.DataFrame]:
    """Population on 1 January 2005-2022 (municipality, year, age, sex), int32.

    Returns the stock and the national totals by year and sex (from the nation rows).
    """
    frame = pd.read_csv(
        _path(source, "population"),
        dtype={"municip_code": str, "sex": str, "year": np.int64, "age": np.int64},
    )
    if (frame["pop_jan1"] % 1 != 0).any():
        raise SourceFileError(f"{FILES['population']}: non-integer population counts.")
    index = pd.MultiIndex.from_product(
        [codes, YEARS, AGES, list(SEXES)], names=["municipality", "year", "age", "sex"]
    )
    series = frame.set_index(["municip_code", "year", "age", "sex"])["pop_jan1"]
    unexpected = series.index.difference(index)
    if len(unexpected):
        raise SourceFileError(f"{FILES['population']}: unexpected rows {list(unexpected[:5])}.")
    values = np.array(series.reindex(index).to_numpy(float)).reshape(
        len(codes), len(YEARS), len(AGES), 2
    )
    pop = xr.DataArray(
        values,
        dims=("municipality", "year", "age", "sex"),
        coords={"municipality": codes, "year": YEARS, "age": AGES, "sex": list(SEXES)},
    )

    nation = pd.read_csv(_path(source, "nation"))
    nation = nation[nation["granularity_geo"] == "nation"]
    national = (
        nation[nation["year"].isin(YEARS)]
        .set_index(["year", "age", "sex"])["pop_jan1"]
        .to_xarray()
        .reindex(year=YEARS, age=AGES, sex=list(SEXES))
    )

    pop = _resplit_alesund_haram(pop, source, log)
    pop = _fill_formed_2006(pop, national, source, log)
    if bool(pop.isnull().any()):
        raise SourceFileError("population still has missing cells after the 2005 fill.")
    pop = move_border_transfers(pop, KNOWN_TRANSFERS, log)
    national_table = national.sum("age").to_pandas().reset_index().rename_axis(None, axis=1)
    national_table["total"] = national_table["female"] + national_table["male"]
    return pop.astype(np.int32), national_table.astype(np.int64)


def move_border_transfers(
    pop: xr.DataArray, transfers: tuple[BorderTransfer, ...], log: BuildLog | None = None
) -> xr.DataArray:
    """Put the years before each border transfer onto the border after it.

    The area's residents in a year before ``effective`` are taken as a fixed share of
    every age-sex cell of the municipality that lost it: ``persons`` over that
    municipality's total on the last 1 January before the move. No age data for the areas
    exist in the sources, so the area is given its municipality's age-sex profile, and
    its share is held in earlier years. Each year's cells are rounded to whole persons
    keeping the year's rounded total, and never above the cell they come from.

    Parameters
    ----------
    pop
        Population ``(municipality, year, age, sex)``, whole persons.
    transfers
        The transfers (:data:`vekst.data.border_transfers.KNOWN_TRANSFERS`).
    log
        Receives, per transfer, the persons moved in the last year before it and the share.

    Returns
    -------
    xarray.DataArray
        The population with the transfers listed in its ``border_transfers_moved``
        attribute (:func:`vekst.data.border_transfers.moved_transfers` reads it back).

    Raises
    ------
    SourceFileError
        When a transfer names a municipality the panel lacks, falls outside its years, or
        moves half or more of a municipality.
    """
    pop = pop.copy()
    years = pop["year"].values
    codes = set(pop["municipality"].values.astype(str))
    moved_log = {}
    for transfer in transfers:
        label = f"{transfer.losing}->{transfer.gaining} ({transfer.effective})"
        missing = [c for c in (transfer.losing, transfer.gaining) if c not in codes]
        if missing:
            raise SourceFileError(
                f"border transfer {label}: municipality {missing[0]} is not in the panel; "
                "fix KNOWN_TRANSFERS in vekst.data.border_transfers."
            )
        before = years[years < transfer.effective]
        if transfer.effective not in years or not len(before):
            raise SourceFileError(
                f"border transfer {label}: the panel's years {years[0]}-{years[-1]} must "
                "hold the effective year and one before it."
            )
        losing = pop.sel(municipality=transfer.losing)
        share = transfer.persons / float(losing.sel(year=before[-1]).sum())
        if not 0 < share < 0.5:
            raise SourceFileError(
                f"border transfer {label}: {transfer.persons} persons are a share {share:.2f} "
                f"of {transfer.losing}; expected under a half."
            )
        for year in before:
            cells = losing.sel(year=year).values
            total = round(share * float(cells.sum()))
            moved = _round_preserving_total((share * cells).ravel(), total).reshape(cells.shape)
            moved = np.minimum(moved, cells)
            pop.loc[{"municipality": transfer.losing, "year": year}] = cells - moved
            gaining = pop.sel(municipality=transfer.gaining, year=year).values
            pop.loc[{"municipality": transfer.gaining, "year": year}] = gaining + moved
            if year == before[-1]:
                moved_log[label] = {"persons": int(moved.sum()), "share": round(share, 4)}
    if log is not None:
        log.notes["border_transfers"] = moved_log
    pop.attrs[MOVED_ATTRIBUTE] = moved_transfers_attribute(transfers)
    return pop


def _resplit_alesund_haram(pop: xr.DataArray, source: Path, log: BuildLog) -> xr.DataArray:
    """Replace csdata's 50/50 Ålesund/Haram split by SSB's population shares.

    The age-sex distribution of each is taken as that of the two together (no separate
    age data for Haram exist in the sources).
    """
    share = haram_share(source)
    both = pop.sel(municipality=[ALESUND, HARAM]).sum("municipality")
    haram = pop.sel(municipality=HARAM).copy()
    for year in pop["year"].values:
        cells = both.sel(year=year).values
        h = float(share.loc[int(year)])
        haram.loc[{"year": year}] = np.round(cells * h)
    pop.loc[{"municipality": HARAM}] = haram
    pop.loc[{"municipality": ALESUND}] = both - haram
    log.notes["haram_share"] = {int(y): round(float(v), 4) for y, v in share.items()}
    return pop


def _fill_formed_2006(
    pop: xr.DataArray, national: xr.DataArray, source: Path, log: BuildLog
) -> xr.DataArray:
    """Impute 1 January 2005 for Vindafjord (1160) and Aure (1576).

    Three facts are combined: the age-sex profile of the persons missing from the
    municipal sum in 2005 (national minus the other 355 municipalities), each
    municipality's total from SSB's 2024-border series, and each municipality's 2006
    profile carried back one year by the national cohort change (which splits the missing
    persons between the two). Iterative proportional fitting reconciles them; each
    municipality is then rounded to integers that keep its SSB total.
    """
    year = 2005
    others = pop.sel(year=year).drop_sel(municipality=list(FORMED_2006)).sum("municipality")
    missing = (national.sel(year=year) - others).clip(min=0).values.ravel()  # (age*sex)
    n05 = national.sel(year=year).values
    n06 = national.sel(year=year + 1).values
    seeds = []
    for code in FORMED_2006:
        p06 = pop.sel(municipality=code, year=year + 1).values
        back = np.empty_like(p06)
        back[:-1] = p06[1:] * n05[:-1] / np.maximum(n06[1:], 1)
        back[-1] = p06[-1] * n05[-1] / np.maximum(n06[-1], 1)
        seeds.append(back.ravel() + 1e-9)
    seed = np.vstack(seeds)  # (2, age*sex)
    totals = _official_totals(source)
    target = np.array(
        [
            int(totals.loc[(totals["code"] == c) & (totals["year"] == year), "persons"].iloc[0])
            for c in FORMED_2006
        ]
    )
    columns = missing * target.sum() / missing.sum()
    fit = seed.copy()
    for _ in range(200):
        column_sums = fit.sum(0)
        fit *= np.divide(columns, column_sums, out=np.zeros_like(columns), where=column_sums > 0)
        fit *= (target / fit.sum(1))[:, None]
    for i, code in enumerate(FORMED_2006):
        cells = _round_preserving_total(fit[i], int(target[i]))
        pop.loc[{"municipality": code, "year": year}] = cells.reshape(len(AGES), 2)
    log.notes["filled_2005"] = {
        "codes": list(FORMED_2006),
        "totals": target.tolist(),
        "missing_in_municipal_sum": int(missing.sum()),
    }
    return pop


# ---------------------------------------------------------------------------------------
# Employment and commuting
# ---------------------------------------------------------------------------------------


def read_employment(
    source: Path, codes: pd.Index, table: pd.DataFrame, log: BuildLog
) -> dict[str, xr.DataArray]:
    """SSB 11618 (ages 15-74, 4th quarter) on 2024 codes, (municipality, year)."""
    frame = pd.read_csv(_path(source, "employment"), dtype={"municip_code": str})
    columns = [
        "pop_15_74_resident",
        "employed_15_74_by_residence",
        "employed_15_74_by_workplace",
    ]
    # Rindal (1567) appears in 2019 with zeros under its pre-2019 code; SSB 03321 has no
    # Rindal in 2019 either, so the year is missing for it, not zero.
    empty = frame[columns].eq(0).all(axis=1)
    log.notes["employment_missing"] = [
        (str(c), int(y)) for c, y in frame.loc[empty, ["municip_code", "year"]].to_numpy()
    ]
    mapped = harmonise(
        frame[~empty],
        code_column="municip_code",
        year_column="year",
        value_columns=columns,
        table=table,
    )
    out = {}
    for column, name in zip(
        columns,
        ["population_15_74_q4", "employed_residence", "employed_workplace"],
        strict=True,
    ):
        wide = mapped.pivot(index="municip_code", columns="year", values=column)
        wide = wide.reindex(index=codes, columns=YEARS)
        out[name] = xr.DataArray(
            wide.to_numpy(float),
            dims=("municipality", "year"),
            coords={"municipality": codes, "year": YEARS},
        )
    return out


def _weight_matrix(table: pd.DataFrame, year: int, codes: pd.Index) -> tuple[pd.Index, np.ndarray]:
    rows = table[table["year"] == year]
    originals = pd.Index(sorted(rows["original_code"].unique()))
    matrix = np.zeros((len(originals), len(codes)))
    matrix[originals.get_indexer(rows["original_code"]), codes.get_indexer(rows["code_2024"])] = (
        rows["weight"].to_numpy()
    )
    return originals, matrix


def read_commuting(
    source: Path, codes: pd.Index, table: pd.DataFrame, log: BuildLog
) -> xr.DataArray:
    """SSB 03321 flows (home x work x year) on 2024 codes; NaN for years without data.

    Home and work codes are each mapped with the year's weights: ``W.T @ C @ W``.
    """
    frame = pd.read_csv(
        _path(source, "commuting"), dtype={"home_municip": str, "work_municip": str}
    )
    cube = np.full((len(codes), len(codes), len(YEARS)), np.nan)
    dropped: dict[int, int] = {}
    missing: dict[int, list[str]] = {}
    for year, flows in frame.groupby("year"):
        year = int(year)
        originals, weights = _weight_matrix(table, year, codes)
        home = originals.get_indexer(flows["home_municip"])
        work = originals.get_indexer(flows["work_municip"])
        known = (home >= 0) & (work >= 0)
        dropped[year] = int(flows.loc[~known, "employed"].sum())
        matrix = np.zeros((len(originals), len(originals)))
        np.add.at(matrix, (home[known], work[known]), flows.loc[known, "employed"].to_numpy())
        mapped = weights.T @ matrix @ weights
        if abs(mapped.sum() - matrix.sum()) > 1e-6 * matrix.sum():
            raise SourceFileError(f"commuting {year}: mapping did not preserve the total.")
        # A municipality with neither a row nor a column (not even its diagonal) is absent
        # from the year's table (Rindal 5061 in 2019): missing, not zero.
        absent = (mapped.sum(axis=1) == 0) & (mapped.sum(axis=0) == 0)
        mapped[absent, :] = np.nan
        mapped[:, absent] = np.nan
        if absent.any():
            missing[year] = codes[absent].tolist()
        cube[:, :, YEARS.tolist().index(year)] = mapped
    log.notes["commuting_dropped_persons"] = dropped
    log.notes["commuting_missing_municipalities"] = missing
    return xr.DataArray(
        cube,
        dims=("municipality", "work_municipality", "year"),
        coords={"municipality": codes, "work_municipality": codes.to_numpy(), "year": YEARS},
    )


# ---------------------------------------------------------------------------------------
# National vital rates
# ---------------------------------------------------------------------------------------


def _attrs(kind: str, units: str, derived: bool, source: str, description: str, **extra):
    return {
        "kind": kind,
        "units": units,
        "derived": "yes" if derived else "no",
        "source": source,
        "description": description,
        **{k: v for k, v in extra.items() if v is not None},
    }
