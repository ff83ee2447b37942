"""Data of the report's explorer: every municipality, county and region in one JSON blob.

The explorer lets a reader pick any unit and see its fan chart, key numbers, age-group
table, pyramid and drivers of growth without a network and without a server: the numbers
are summarised here (quantiles over the simulated futures) and embedded in the page, and
a small inline script draws them as SVG. Counties, regions and the nation are summed
**draw by draw** before quantiles are taken, as in :mod:`vekst.projection.outputs`.

Only what was estimated is included: a growth component whose events are not observed in
the panel (deaths in the embedded data) is left out of the drivers rather than shown as a
zero bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vekst.agegroups import AGE_GROUPS, age_group_matrix
from vekst.report.i18n import COMPONENT_NAMES, Lang

__all__ = ["FIVE_YEAR_GROUPS", "estimated_components", "explorer_data", "unit_membership"]

#: Five-year age groups of the pyramids (the last is open).
FIVE_YEAR_GROUPS: tuple[str, ...] = tuple(
    [f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"]
)
_BAND = (0.10, 0.50, 0.90)
_FAN = (0.025, 0.10, 0.25, 0.50, 0.75, 0.90, 0.975)


def _str_map(ds: xr.Dataset, key: str, value: str) -> dict[str, str]:
    if key not in ds.coords or value not in ds.coords:
        return {}
    return dict(zip(ds[key].values.astype(str), ds[value].values.astype(str), strict=True))


def unit_membership(
    projection: xr.Dataset, panel: xr.Dataset, lang: Lang | str = Lang.en
) -> tuple[list[dict[str, str]], np.ndarray]:
    """The units of the explorer and which municipalities each sums.

    Parameters
    ----------
    projection
        The projection (``municipality`` with ``name``, ``county``, ``region`` coords).
    panel
        The panel (``county_name``, ``region_name`` where the projection lacks them).
    lang
        Language of the nation's name.

    Returns
    -------
    (list of dict, numpy.ndarray)
        Units as ``{"id", "kind", "code", "name"}`` (nation first, then municipalities,
        counties and regions, each sorted by name) and a 0/1 matrix ``(unit,
        municipality)``.
    """
    codes = projection["municipality"].values.astype(str)
    names = _str_map(projection, "municipality", "name") or _str_map(panel, "municipality", "name")
    nation = "Norge" if Lang(lang) is Lang.nb else "Norway"
    units: list[dict[str, str]] = [{"id": "n", "kind": "nation", "code": "", "name": nation}]
    rows: list[np.ndarray] = [np.ones(len(codes))]
    for code in sorted(codes, key=lambda c: names.get(c, c)):
        units.append({"id": f"m{code}", "kind": "municipality", "code": code,
                      "name": names.get(code, code)})
        rows.append((codes == code).astype(float))
    for kind, name_coord in (("county", "county_name"), ("region", "region_name")):
        if kind not in projection.coords:
            continue
        keys = projection[kind].values.astype(str)
        labels = {
            **_str_map(panel, kind, name_coord),
            **_str_map(projection, kind, name_coord),
        }
        for key in sorted(set(keys), key=lambda k: labels.get(k, k)):
            units.append({"id": f"{kind[0]}{key}", "kind": kind, "code": key,
                          "name": labels.get(key, key)})
            rows.append((keys == key).astype(float))
    return units, np.vstack(rows)


def _by_unit(member: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    """Sum ``values`` over the municipality ``axis`` into units (the unit axis replaces it)."""
    moved = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    return np.moveaxis(moved @ member.T, -1, axis)


def _ints(array: np.ndarray) -> list:
    return np.rint(array).astype(np.int64).tolist()


def _five_year_matrix(ages: np.ndarray) -> np.ndarray:
    index = np.minimum(np.asarray(ages, dtype=int) // 5, len(FIVE_YEAR_GROUPS) - 1)
    return np.eye(len(FIVE_YEAR_GROUPS))[index]


def _table_years(years: Sequence[int], base: int) -> list[int]:
    chosen = [base] + [y for y in years if y > base and y % 5 == 0] + [years[-1]]
    return [y for y in dict.fromkeys(chosen) if y in years]


def _pyramid_years(years: Sequence[int]) -> list[int]:
    shown = [y for y in (2030, 2040) if y in years]
    return shown or [years[-1]]


def _age_detail(projection, panel, member, base, years) -> dict[str, Any]:
    """Age-group table and five-year pyramids per unit (quantiles over draws)."""
    out: dict[str, Any] = {"table_years": _table_years(years, base), "groups": []}
    labels = [label for label, _, _ in AGE_GROUPS]
    if "population" in projection:
        ages = projection["population"]["age"].values
        groups = age_group_matrix(ages)
        five = _five_year_matrix(ages)
        table, pyramids = [], {}
        for year in sorted(set(out["table_years"]) | set(_pyramid_years(years))):
            # One year at a time bounds memory: (draw, municipality, age, sex) only.
            stock = projection["population"].sel(year=year).transpose(
                "draw", "municipality", "age", "sex"
            )
            stock = np.asarray(stock.values, dtype=np.float64)
            # Group ages per municipality first, then sum into units: two small matrix
            # products instead of one over every age (40x fewer operations at 357 places).
            if year in out["table_years"]:
                grouped = np.matmul(stock.sum(axis=3), groups)  # (draw, municipality, group)
                grouped = np.matmul(member, grouped)  # (draw, unit, group)
                table.append(np.quantile(grouped, _BAND, axis=0))  # (q, unit, group)
            if year in _pyramid_years(years):
                by_sex = np.matmul(stock.transpose(0, 3, 1, 2), five)  # (draw, sex, mun, group)
                by_sex = np.matmul(member, by_sex)  # (draw, sex, unit, group)
                pyramids[year] = np.quantile(
                    by_sex.transpose(0, 2, 3, 1), _BAND, axis=0
                )  # (q, unit, group, sex)
        out["groups"] = labels
        out["table"] = np.stack(table, axis=2)  # (q, unit, year, group)
        out["pyramids"] = pyramids
        out["sexes"] = [str(s) for s in projection["sex"].values]
        observed = panel["population"].sel(year=base) if base in panel["year"] else None
        if observed is not None:
            observed = observed.reindex(municipality=projection["municipality"].values)
            observed = observed.transpose("municipality", "age", "sex").fillna(0).values
            panel_five = _five_year_matrix(panel["age"].values)
            # optimize: contracted pairwise (ages into groups, then places into units);
            # the one naive loop over all four indices took 2.9 s of the demo's report.
            out["observed"] = np.einsum(
                "um,mas,ag->ugs", member, observed, panel_five, optimize=True
            )
    elif "population_age_group" in projection:
        draws = projection["population_age_group"].sel(year=out["table_years"])
        draws = draws.transpose("draw", "year", "municipality", "age_group")
        units = _by_unit(member, draws.values, axis=2)  # (draw, year, unit, group)
        out["groups"] = [str(g) for g in draws["age_group"].values]
        out["table"] = np.quantile(units, _BAND, axis=0).transpose(0, 2, 1, 3)
    return out


def estimated_components(
    panel: xr.Dataset, components: Sequence[str], contribution: xr.DataArray | None = None
) -> list[str]:
    """The components that were estimated: a vital deviation needs its observed events.

    Parameters
    ----------
    panel
        The panel (``births``/``deaths`` data variables where observed).
    components
        Component names of :mod:`vekst.decompose`.
    contribution
        The decomposition's contributions (with a ``component`` dimension); when given,
        ``housing`` is left out where it is zero throughout (a fit without housing terms).

    Returns
    -------
    list of str
        ``components`` without ``mortality_deviation`` when the panel has no deaths (and
        without ``fertility_deviation`` when it has no births).
    """
    dropped = set()
    if "deaths" not in panel.data_vars:
        dropped.add("mortality_deviation")
    if "births" not in panel.data_vars:
        dropped.add("fertility_deviation")
    if contribution is not None and "housing" in contribution["component"].values:
        if not np.any(contribution.sel(component="housing").values):
            dropped.add("housing")
    return [c for c in components if c not in dropped]


def _drivers(decomposition, panel, member, codes) -> dict[str, Any] | None:
    if decomposition is None:
        return None
    if isinstance(decomposition, xr.Dataset):
        if "contribution" not in decomposition:
            return None
        decomposition = decomposition["contribution"]
    if not {"draw", "component", "municipality", "year"} <= set(decomposition.dims):
        return None
    array = decomposition.reindex(municipality=list(codes)).fillna(0.0)
    array = array.mean("year").transpose("draw", "component", "municipality")
    components = estimated_components(
        panel, [str(c) for c in array["component"].values], decomposition
    )
    values = _by_unit(member, array.sel(component=components).values, axis=2)
    total = values.sum(axis=1, keepdims=True)  # per draw: the total's own band
    values = np.concatenate([values, total], axis=1)  # (draw, component, unit)
    years = decomposition["year"].values
    covered = np.isin(codes, decomposition["municipality"].values.astype(str))
    return {
        "components": [*components, "total"],
        "mean": values.mean(axis=0),
        "q10": np.quantile(values, 0.10, axis=0),
        "q90": np.quantile(values, 0.90, axis=0),
        "first": int(years.min()),
        "last": int(years.max()),
        "covered": (member @ (~covered).astype(float)) == 0,
    }


def _official(official: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Latest vintage of the official projection per municipality (totals over ages)."""
    if official is None or official.empty:
        return {}
    frame = official.copy()
    frame["municipality"] = frame["municipality"].astype(str)
    result: dict[str, dict[str, Any]] = {}
    for code, rows in frame.groupby("municipality"):
        rows = rows[rows["vintage"] == rows["vintage"].max()]
        if "MMMM" in set(rows["alternative"]):
            rows = rows[rows["alternative"] == "MMMM"]
        else:
            rows = rows[rows["alternative"] == rows["alternative"].iloc[0]]
        series = rows.groupby("year")["population"].sum().sort_index()
        result[f"m{code}"] = {
            "vintage": int(rows["vintage"].iloc[0]),
            "alternative": str(rows["alternative"].iloc[0]),
            "years": [int(y) for y in series.index],
            "values": _ints(series.to_numpy()),
        }
    return result


def explorer_data(
    panel: xr.Dataset,
    projection: xr.Dataset,
    *,
    decomposition: xr.Dataset | xr.DataArray | None = None,
    official: pd.DataFrame | None = None,
    lang: Lang | str = Lang.en,
) -> dict[str, Any]:
    """Summaries of every unit for the report's explorer, ready for ``json.dumps``.

    Parameters
    ----------
    panel
        The panel (history up to the base year, names, observed age structure).
    projection
        The projection (``population`` or ``population_age_group``, and
        ``population_total``, by draw).
    decomposition
        Growth decomposition ``(draw, component, municipality, year)`` or ``None``.
    official
        Official projection rows as from :func:`vekst.evaluate.official.read_ssb_projection`
        (``municipality, vintage, alternative, year, population``), or ``None``.
    lang
        Language of the component names.

    Returns
    -------
    dict
        ``units`` (id, kind, code, name), ``years``, ``base``, ``history_years`` and per
        unit id in ``data``: ``fan`` (quantiles 2.5-97.5 % by year), ``history``,
        ``key`` numbers, ``ages`` (table), ``pyramid``, ``drivers`` and ``official``
        where available. Persons are rounded to whole numbers.
    """
    from vekst.report.html_helpers import base_year, projection_totals

    lang = Lang(lang)
    units, member = unit_membership(projection, panel, lang)
    codes = projection["municipality"].values.astype(str)
    base = base_year(projection)
    years = [int(y) for y in projection["year"].values]
    totals = projection_totals(projection).transpose("draw", "year", "municipality")
    by_unit = _by_unit(member, totals.values, axis=2)  # (draw, year, unit)
    fan = np.quantile(by_unit, _FAN, axis=0)  # (q, year, unit)
    growth = (by_unit[:, -1, :] > by_unit[:, 0, :]).mean(axis=0)
    history = panel["population"].sum(("age", "sex"))
    history = history.sel(year=history["year"] <= base).reindex(municipality=codes).fillna(0)
    history_years = [int(y) for y in history["year"].values]
    history_units = member @ history.transpose("municipality", "year").values
    ages = _age_detail(projection, panel, member, base, years)
    drivers = _drivers(decomposition, panel, member, codes)
    officials = _official(official)

    data: dict[str, Any] = {}
    for u, unit in enumerate(units):
        entry: dict[str, Any] = {
            "fan": _ints(fan[:, :, u]),
            "history": _ints(history_units[u]),
            "growth": round(float(growth[u]), 3),
        }
        if "table" in ages:
            entry["ages"] = _ints(ages["table"][:, u])  # (q, year, group)
        if ages.get("pyramids"):
            entry["pyramid"] = {
                str(year): _ints(values[:, u]) for year, values in ages["pyramids"].items()
            }
            if "observed" in ages:
                entry["pyramid_observed"] = _ints(ages["observed"][u])
        if drivers is not None and bool(drivers["covered"][u]):
            entry["drivers"] = [
                [round(float(drivers[k][c, u]), 1) for k in ("mean", "q10", "q90")]
                for c in range(len(drivers["components"]))
            ]
        if unit["id"] in officials:
            entry["official"] = officials[unit["id"]]
        data[unit["id"]] = entry
    return {
        "units": units,
        "years": years,
        "base": base,
        "history_years": history_years,
        "fan_levels": list(_FAN),
        "age_groups": ages.get("groups", []),
        "table_years": ages.get("table_years", []),
        "pyramid_groups": list(FIVE_YEAR_GROUPS),
        "components": (
            [COMPONENT_NAMES.get(c, {}).get(lang.value, c) for c in drivers["components"]]
            if drivers
            else []
        ),
        "component_keys": drivers["components"] if drivers else [],
        "drivers_period": [drivers["first"], drivers["last"]] if drivers else None,
        "data": data,
    }
