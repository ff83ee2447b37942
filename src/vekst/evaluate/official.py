"""SSB's official regional population projections, read and compared with the backtests.

:func:`read_ssb_projection` reads a StatBank export of SSB's regional projections (tables
05904, 06917, 07268, 08109, 08825, 09482, 10213, 11168, 11668, 12882, ... as saved by
the Telemark county's data folder): one row per region, alternative, year and age group,
with the columns ``region, statistikkvariabel, år, alder, value`` and optionally
``Framskriving`` (the vintage) and ``Tabell`` (the StatBank table).

* Regions are **names**, not codes, and carry validity suffixes such as ``"Bamble
  (-2019)"``, ``"Kragerø (1960-2019)"`` or ``"Skien (2020-2023)"``. The suffix is removed
  and the name is looked up in the panel's ``name`` coordinate (2024 codes). Names of
  municipalities merged since the vintage are mapped through ``aliases`` (by default
  :data:`DEFAULT_ALIASES`: Bø (Telemark) and Sauherad -> Midt-Telemark) and summed. A name
  that is neither a panel name nor an alias is an error listing every such name.
* Border transfers the panel's build moved onto the 2024 borders
  (:func:`vekst.data.border_transfers.moved_transfers`) are moved in SSB's numbers too: a
  vintage before 2020 projects Sauherad with the Hjuksebø area (466 residents, moved to
  Notodden in 2020), so that share of Midt-Telemark's numbers (every year and age group,
  the share the panel's build used) goes to Notodden. The jump-off stocks then equal the
  panel's to within a few persons by age group (the panel's cells were rounded).
* Rows of the nation and of counties (``"Hele landet"``, ``"Telemark (-2019)"``,
  ``"Vestfold og Telemark (2020-2023)"``) are dropped and listed in
  ``frame.attrs["dropped_regions"]``.
* Age groups differ between vintages (``20-66`` before 2014, ``20-44`` and ``45-66``
  after); they are kept as published, with their first and last age.
* The alternative is the four-letter code of the label (``"Middels nasjonal vekst
  (Alternativ MMMM)"`` and ``"Hovedalternativet (MMMM)"`` are both ``"MMMM"``).

:func:`compare_official` puts SSB's numbers beside a :class:`~vekst.evaluate.BacktestResult`
for the municipalities the file covers: a vintage is compared with the origin equal to its
jump-off year (its first year; SSB's projection published in year ``V`` starts from the
1 January ``V`` stock).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.errors import InputError
from vekst.evaluate.metrics import DEFAULT_LEVELS

__all__ = [
    "AGGREGATE_REGIONS",
    "DEFAULT_ALIASES",
    "OfficialProjectionError",
    "compare_official",
    "read_ssb_projection",
]

#: Names of municipalities merged away since the projection vintage -> their 2024 name.
DEFAULT_ALIASES: dict[str, str] = {
    "Bø (Telemark)": "Midt-Telemark",
    "Sauherad": "Midt-Telemark",
}
#: Region names that are aggregates (nation, counties of 1972-2019, 2020-2023, 2024-).
AGGREGATE_REGIONS: frozenset[str] = frozenset(
    {
        "Hele landet",
        "Østfold",
        "Akershus",
        "Oslo fylke",
        "Hedmark",
        "Oppland",
        "Buskerud",
        "Vestfold",
        "Telemark",
        "Aust-Agder",
        "Vest-Agder",
        "Rogaland",
        "Hordaland",
        "Sogn og Fjordane",
        "Møre og Romsdal",
        "Sør-Trøndelag",
        "Nord-Trøndelag",
        "Trøndelag",
        "Nordland",
        "Troms",
        "Finnmark",
        "Troms og Finnmark",
        "Viken",
        "Innlandet",
        "Vestfold og Telemark",
        "Agder",
        "Vestland",
    }
)
REQUIRED_COLUMNS = ("region", "statistikkvariabel", "år", "alder", "value")
_SUFFIX = re.compile(r"\s*\((?:\d{4})?\s*-\s*(?:\d{4})?\)\s*$")
_ALTERNATIVE = re.compile(r"\(\s*(?:Alternativ\s+)?([A-Z]{4})\s*\)")
_AGE_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)\s*år$")
_AGE_SINGLE = re.compile(r"^(\d+)\s*år$")
_AGE_OPEN = re.compile(r"^(\d+)\s*år\s+eller\s+eldre$")
OUTPUT_COLUMNS = (
    "municipality",
    "name",
    "vintage",
    "table",
    "alternative",
    "alternative_label",
    "year",
    "age_group",
    "age_first",
    "age_last",
    "population",
)


class OfficialProjectionError(InputError):
    """An official projection file cannot be read or matched; the message says where."""


def _strip_suffix(name: str) -> str:
    """``"Kragerø (1960-2019)"`` -> ``"Kragerø"``; other parentheses are kept."""
    previous = None
    name = name.strip()
    while previous != name:
        previous, name = name, _SUFFIX.sub("", name).strip()
    return name


def _parse_age(label: str, path: Path) -> tuple[str, int, float]:
    text = label.strip()
    for pattern, kind in ((_AGE_RANGE, "range"), (_AGE_OPEN, "open"), (_AGE_SINGLE, "single")):
        match = pattern.match(text)
        if match:
            first = int(match[1])
            if kind == "range":
                last = int(match[2])
                return f"{first}-{last}", first, float(last)
            if kind == "open":
                return f"{first}+", first, np.inf
            return str(first), first, float(first)
    raise OfficialProjectionError(
        f"{path}: age group {label!r} in column 'alder' is not '<a> år', '<a>-<b> år' or "
        "'<a> år eller eldre'; export the table with age groups, not 'alle aldre'."
    )


def _parse_alternative(label: str, path: Path) -> str:
    match = _ALTERNATIVE.search(label)
    if not match:
        raise OfficialProjectionError(
            f"{path}: cannot find the alternative code (e.g. 'MMMM') in "
            f"statistikkvariabel {label!r}."
        )
    return match[1]


def read_ssb_projection(
    path: str | Path,
    panel: xr.Dataset | None = None,
    *,
    aliases: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read an SSB regional projection export into a tidy frame on 2024 codes.

    Parameters
    ----------
    path
        CSV file (UTF-8, comma-separated) with the columns ``region``,
        ``statistikkvariabel``, ``år``, ``alder``, ``value`` (and optionally
        ``Framskriving``, ``Tabell``).
    panel
        Supplies the ``name`` -> code mapping (its ``name`` coordinate); default the
        embedded panel.
    aliases
        Extra ``{source name: panel name}`` entries, added to :data:`DEFAULT_ALIASES`.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality`` (2024 code), ``name`` (panel name), ``vintage`` (jump-off
        year), ``table``, ``alternative`` (e.g. ``"MMMM"``), ``alternative_label``,
        ``year``, ``age_group`` (``"0"``, ``"1-5"``, ..., ``"90+"``), ``age_first``,
        ``age_last`` (``inf`` for the open group), ``population``. Rows of municipalities
        merged into one 2024 municipality are summed. ``attrs``: ``source``,
        ``dropped_regions``, ``merged`` (``{code: [source names]}``).

    Raises
    ------
    OfficialProjectionError
        If the file lacks a column, a region name is unknown (all unknown names are
        listed), or an age group or alternative cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise OfficialProjectionError(f"official projection file {path} not found.")
    raw = pd.read_csv(path, dtype=str, encoding="utf-8")
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise OfficialProjectionError(
            f"{path}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} (a "
            "StatBank CSV export of SSB's regional projection with region names)."
        )
    if panel is None:
        from vekst import load_default

        panel = load_default()
    codes = panel["municipality"].values.astype(str)
    names = panel["name"].values.astype(str)
    lookup: dict[str, str] = {}
    for code, name in zip(codes, names, strict=True):
        lookup.setdefault(name, code)
    table_aliases = {**DEFAULT_ALIASES, **dict(aliases or {})}

    region_names = raw["region"].astype(str).map(_strip_suffix)
    is_aggregate = region_names.isin(AGGREGATE_REGIONS) & ~region_names.isin(lookup)
    dropped = sorted(set(raw.loc[is_aggregate, "region"]))
    raw = raw.loc[~is_aggregate].copy()
    region_names = region_names.loc[~is_aggregate]
    target = region_names.map(lambda n: table_aliases.get(n, n))
    unknown = sorted(set(raw.loc[~target.isin(lookup), "region"]))
    if unknown:
        raise OfficialProjectionError(
            f"{path}: region name(s) {unknown} match no municipality name of the panel "
            "(2024 names). If a name belongs to a municipality merged since, pass "
            "aliases={'<old name>': '<2024 name>'}; check the spelling otherwise."
        )
    raw["municipality"] = target.map(lookup)
    raw["name"] = target
    merged = {
        code: sorted(set(group))
        for code, group in raw.groupby("municipality")["region"]
        if len(set(region_names.loc[group.index])) > 1
    }

    ages = {label: _parse_age(label, path) for label in raw["alder"].unique()}
    alternatives = {
        label: _parse_alternative(label, path) for label in raw["statistikkvariabel"].unique()
    }
    raw["age_group"] = raw["alder"].map(lambda a: ages[a][0])
    raw["age_first"] = raw["alder"].map(lambda a: ages[a][1])
    raw["age_last"] = raw["alder"].map(lambda a: ages[a][2])
    raw["alternative"] = raw["statistikkvariabel"].map(alternatives)
    raw["alternative_label"] = raw["statistikkvariabel"]
    raw["year"] = pd.to_numeric(raw["år"], errors="raise").astype(int)
    raw["population"] = pd.to_numeric(raw["value"], errors="coerce")
    if "Framskriving" in raw.columns:
        raw["vintage"] = pd.to_numeric(raw["Framskriving"], errors="raise").astype(int)
    else:
        raw["vintage"] = int(raw["year"].min())
    raw["table"] = raw["Tabell"] if "Tabell" in raw.columns else ""
    keys = [c for c in OUTPUT_COLUMNS if c != "population"]
    tidy = raw.groupby(keys, sort=False, dropna=False)["population"].sum(min_count=1).reset_index()
    tidy = tidy.sort_values(
        ["vintage", "alternative", "municipality", "year", "age_first"], ignore_index=True
    )[list(OUTPUT_COLUMNS)]
    tidy = _onto_panel_borders(tidy, panel, keys)
    tidy.attrs = {"source": str(path), "dropped_regions": dropped, "merged": merged}
    return tidy


def _onto_panel_borders(tidy: pd.DataFrame, panel: xr.Dataset, keys: list[str]) -> pd.DataFrame:
    """Move the share of each transferred area in vintages before the transfer, as the
    panel's build did (see the module docstring)."""
    from vekst.data.border_transfers import moved_transfers

    transfers = moved_transfers(panel)
    if not transfers:
        return tidy
    original = tidy
    tidy = tidy.assign(population=tidy["population"].astype(float))
    parts = [tidy]
    changed = False
    for transfer in transfers:
        last_old = transfer.effective - 1
        if last_old not in panel["year"].values:
            continue
        # The area's share of the old border's total, as the build took it.
        remaining = float(
            panel["population"].sel(municipality=transfer.losing, year=last_old).sum()
        )
        share = transfer.persons / (remaining + transfer.persons)
        rows = (tidy["municipality"] == transfer.losing) & (tidy["vintage"] < transfer.effective)
        if not rows.any():
            continue
        changed = True
        moved = tidy.loc[rows].copy()
        moved["population"] *= share
        moved["municipality"] = transfer.gaining
        moved["name"] = str(panel["name"].sel(municipality=transfer.gaining).values)
        tidy.loc[rows, "population"] *= 1.0 - share
        gaining = (tidy["municipality"] == transfer.gaining) & (
            tidy["vintage"] < transfer.effective
        )
        if gaining.any():  # a place the file does not cover gets nothing
            parts.append(moved)
    if not changed:
        return original
    if len(parts) == 1:
        return tidy
    combined = pd.concat(parts, ignore_index=True)
    summed = combined.groupby(keys, sort=False, dropna=False)["population"].sum(min_count=1)
    return summed.reset_index().sort_values(
        ["vintage", "alternative", "municipality", "year", "age_first"], ignore_index=True
    )[list(OUTPUT_COLUMNS)]


# --- comparison ----------------------------------------------------------------------------
def _comparable_groups(
    official_groups: Sequence[tuple[str, int, float]], planner_bounds: set[int]
) -> list[tuple[str, int, float, list[str]]]:
    """Merge neighbouring official groups until each is a union of planner groups.

    Returns ``(label, first, last, [official labels])`` per merged group.
    """
    out = []
    pending: list[tuple[str, int, float]] = []
    for group in sorted(official_groups, key=lambda g: g[1]):
        pending.append(group)
        first, last = pending[0][1], group[2]
        if pending[0][1] in planner_bounds and (np.isinf(last) or int(last) + 1 in planner_bounds):
            label = (
                f"{first}+"
                if np.isinf(last)
                else (str(first) if last == first else f"{first}-{int(last)}")
            )
            out.append((label, first, last, [g[0] for g in pending]))
            pending = []
    if pending:
        raise OfficialProjectionError(
            f"official age groups {[g[0] for g in pending]} cannot be matched to the planner "
            "age groups; compare totals only."
        )
    return out


def compare_official(
    result,
    official: pd.DataFrame,
    *,
    alternative: str = "MMMM",
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> pd.DataFrame:
    """Score SSB's projection beside the backtest methods on the municipalities it covers.

    For every origin of ``result`` with an official vintage of the same jump-off year, the
    backtest forecasts and the observations are summed into the official age groups
    (neighbouring official groups are merged where they cut through a planner group, e.g.
    20-44 and 45-66 become 20-66) plus ``"total"``, and SSB's numbers are scored as a point
    forecast named ``ssb_<alternative>``.

    Parameters
    ----------
    result
        A :class:`vekst.evaluate.BacktestResult`.
    official
        Output of :func:`read_ssb_projection` (several vintages may be concatenated).
    alternative
        SSB alternative to compare (``"MMMM"`` is the main one).
    levels
        Interval levels.

    Returns
    -------
    pandas.DataFrame
        Rows like :attr:`BacktestResult.scores` for the covered municipalities, years and
        the official age groups; ``attrs["skipped_origins"]`` lists origins without a
        vintage, ``attrs["jump_off_difference"]`` the largest absolute difference between
        SSB's jump-off stock and the observed one (a check of the name mapping).

    Raises
    ------
    OfficialProjectionError
        If the frame has no rows of ``alternative``.
    """
    from vekst.evaluate.scoring import PLANNER_AGE_GROUPS, TOTAL
    from vekst.evaluate.scoring import score_forecast as _score

    rows = official[official["alternative"] == alternative]
    if rows.empty:
        raise OfficialProjectionError(
            f"no rows of alternative {alternative!r}; the frame has "
            f"{sorted(official['alternative'].unique())}."
        )
    bounds = {first for _, first, _ in PLANNER_AGE_GROUPS}
    planner_labels = [label for label, _, _ in PLANNER_AGE_GROUPS]
    planner_last = {
        label: (np.inf if last is None else last) for label, _, last in PLANNER_AGE_GROUPS
    }
    observed = result.observed
    methods = list(dict.fromkeys(m for _, m in result.forecasts))
    frames: list[pd.DataFrame] = []
    skipped: list[int] = []
    jump_off_difference = 0.0
    for origin in sorted({o for o, _ in result.forecasts}):
        vintage = rows[rows["vintage"] == origin]
        if vintage.empty:
            skipped.append(int(origin))
            continue
        municipalities = sorted(
            set(vintage["municipality"]) & set(observed["municipality"].values.astype(str))
        )
        group_table = vintage[["age_group", "age_first", "age_last"]].drop_duplicates()
        groups = _comparable_groups(
            [(str(g), int(f), float(last)) for g, f, last in group_table.itertuples(index=False)],
            bounds,
        )
        labels = [g[0] for g in groups] + [TOTAL]
        # planner group -> comparable group
        matrix = np.zeros((len(planner_labels) + 1, len(labels)))
        for j, (_, first, last, _) in enumerate(groups):
            for i, label in enumerate(planner_labels):
                lo = PLANNER_AGE_GROUPS[i][1]
                if lo >= first and planner_last[label] <= last:
                    matrix[i, j] = 1.0
        matrix[-1, -1] = 1.0
        weights = xr.DataArray(
            matrix,
            dims=("age_group", "group"),
            coords={"age_group": [*planner_labels, TOTAL], "group": labels},
        )

        def regroup(array: xr.DataArray, weights=weights) -> xr.DataArray:
            out = xr.dot(array.sel(age_group=weights["age_group"].values), weights, dim="age_group")
            return out.rename(group="age_group")

        obs = regroup(observed.sel(municipality=municipalities))
        years = sorted(
            {int(y) for y in vintage["year"]}
            & {int(y) for y in result.forecasts[(origin, methods[0])]["year"].values}
        )
        ssb = _official_array(vintage, municipalities, years, groups, labels)
        base = vintage[vintage["year"] == origin]
        if not base.empty:
            ssb_base = _official_array(vintage, municipalities, [origin], groups, labels)
            difference = np.abs(ssb_base.sel(year=origin) - obs.sel(year=origin))
            jump_off_difference = max(jump_off_difference, float(difference.max()))
        at_origin = obs.sel(year=origin)
        for method in methods:
            forecast = result.forecasts[(origin, method)].sel(
                municipality=municipalities, year=years
            )
            frames.append(
                _score(
                    regroup(forecast),
                    obs,
                    at_origin,
                    origin,
                    method,
                    levels,
                    point=forecast.sizes["draw"] == 1,
                )
            )
        frames.append(
            _score(
                ssb.expand_dims(draw=[0]).transpose("draw", "year", "municipality", "age_group"),
                obs,
                at_origin,
                origin,
                f"ssb_{alternative}",
                levels,
                point=True,
            )
        )
    if not frames:
        out = pd.DataFrame()
    else:
        out = pd.concat(frames, ignore_index=True)
    out.attrs = {
        "skipped_origins": skipped,
        "jump_off_difference": jump_off_difference,
        "alternative": alternative,
    }
    return out


def _official_array(vintage, municipalities, years, groups, labels) -> xr.DataArray:
    """SSB's numbers summed into the comparable groups, (year, municipality, age_group)."""
    to_group = {member: label for label, _, _, members in groups for member in members}
    chosen = vintage[vintage["year"].isin(years) & vintage["municipality"].isin(municipalities)]
    chosen = chosen.assign(group=chosen["age_group"].map(to_group))
    table = chosen.groupby(["year", "municipality", "group"])["population"].sum(min_count=1)
    array = xr.DataArray.from_series(table).rename(group="age_group")
    array = array.reindex(year=years, municipality=municipalities, age_group=labels[:-1])
    total = array.sum("age_group", min_count=1).expand_dims(age_group=[labels[-1]])
    return (
        xr.concat([array, total], dim="age_group")
        .transpose("year", "municipality", "age_group")
        .astype(np.float64)
    )
