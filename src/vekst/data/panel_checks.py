"""Checks of a panel beyond its schema: labels, code vintages and plausibility.

:func:`vekst.data.panel.validate_panel` runs these after the schema checks. The
plausibility checks catch data that are well formed but would give wrong forecasts
(population in thousands or multiplied by 1e9, a municipality of zero persons, a
centrality index on a 0-1 scale); they can be switched off for truly unusual data
(``allow_unusual=True``, or ``panel.attrs["allow_unusual"] = "yes"``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.errors import PanelError

__all__ = [
    "COUNTIES_2020_ONLY",
    "COUNTIES_2024",
    "COUNTIES_PRE_2020_ONLY",
    "PanelValidationError",
    "check_labels",
    "check_plausibility",
    "counties_of",
    "vintage_of",
]

#: Counties of the 2024 code vintage; a municipality code must start with one of them.
COUNTIES_2024: frozenset[str] = frozenset(
    {"03", "11", "15", "18", "31", "32", "33", "34", "39", "40", "42", "46", "50", "55", "56"}
)
#: Counties used only in the 2020-2023 vintage (Viken, Vestfold og Telemark, Troms og Finnmark).
COUNTIES_2020_ONLY: frozenset[str] = frozenset({"30", "38", "54"})
#: Counties of the codes before 2020 (before the county reform), absent from 2020 on.
COUNTIES_PRE_2020_ONLY: frozenset[str] = frozenset(
    {"01", "02", "04", "05", "06", "07", "08", "09", "10", "12", "14", "16", "17", "19", "20"}
)
#: Counties only the 2024 vintage has (split again from the 2020 counties).
_COUNTIES_2024_ONLY = frozenset({"31", "32", "33", "39", "40", "55", "56"})

#: Norway's population on 1 January has stayed below 5.6 million; a panel above this
#: cannot be Norwegian municipalities counted in persons.
NATIONAL_POPULATION_MAX = 6_500_000
#: Oslo, the largest municipality, has about 0.72 million people.
MUNICIPALITY_POPULATION_MAX = 1_500_000
#: Utsira, the smallest municipality, has about 200 people; a median municipality below
#: this is a population counted in thousands.
MEDIAN_MUNICIPALITY_MIN = 100.0
#: Crude birth and death rates of Norwegian municipalities lie well below 5 %.
CRUDE_RATE_MAX = 0.1


class PanelValidationError(PanelError):
    """A panel breaks the schema; the message names what and where and what to do."""


def vintage_of(panel: xr.Dataset, source: str) -> int | None:
    """The code vintage to check a panel against: its ``code_vintage`` attribute, or the
    one its codes imply.

    Raises
    ------
    PanelValidationError
        When the codes are from before 2020 or mix the 2020 and 2024 vintages.
    """
    stated = panel.attrs.get("code_vintage")
    if stated is not None:
        try:
            return int(stated)
        except (TypeError, ValueError):
            raise PanelValidationError(
                f"{source}: attribute code_vintage is {stated!r}; set it to 2024 or 2020."
            ) from None
    codes = [str(c) for c in panel["municipality"].values]
    if not all(len(c) == 4 and c.isdigit() for c in codes):
        return None  # made-up codes (simulations); nothing to check
    old = sorted(c for c in codes if c[:2] in COUNTIES_PRE_2020_ONLY)
    if old:
        raise PanelValidationError(
            f"{source}: municipality code(s) {old[:10]} are from before the 2020 county "
            "reform; map them to the 2024 codes with vekst.data.codes.harmonise() first."
        )
    only_2020 = sorted(c for c in codes if c[:2] in COUNTIES_2020_ONLY)
    only_2024 = sorted(c for c in codes if c[:2] in _COUNTIES_2024_ONLY)
    if only_2020 and only_2024:
        raise PanelValidationError(
            f"{source}: the codes mix vintages: {only_2020[:5]} exist only 2020-2023, "
            f"{only_2024[:5]} only from 2024; map all codes to one vintage with "
            "vekst.data.codes.harmonise()."
        )
    return 2020 if only_2020 else 2024


def counties_of(code_vintage: int) -> frozenset[str]:
    """County parts (first two digits) of the municipality codes of a vintage."""
    if code_vintage == 2024:
        return COUNTIES_2024
    return (COUNTIES_2024 - _COUNTIES_2024_ONLY) | COUNTIES_2020_ONLY


def check_labels(panel: xr.Dataset, source: str, code_vintage: int | None = None) -> None:
    """Region and county codes present; commuting only to municipality codes that exist.

    A panel of some municipalities keeps commuting to the others, so a work municipality
    outside the panel is accepted when it is a code of the panel's vintage (any code
    when the codes are made up, ``code_vintage=None``, must then be in the panel).

    Raises
    ------
    PanelValidationError
        Naming the municipality with a blank region or the unknown work municipality.
    """
    codes = [str(c) for c in panel["municipality"].values]
    for coord in ("region", "county"):
        values = panel[coord].values
        blank = [
            codes[i] for i, v in enumerate(values) if v is None or str(v).strip() in ("", "nan")
        ]
        if blank:
            raise PanelValidationError(
                f"{source}: municipality {blank[0]} has a blank {coord} code"
                f"{f' (and {len(blank) - 1} more)' if len(blank) > 1 else ''}; every "
                f"municipality needs its {coord} (the model pools by it). Fill "
                f"panel['{coord}'] from the code lists."
            )
    from vekst.data.commuting_flows import is_sparse_commuting, sparse_work_codes

    work_codes = None
    if is_sparse_commuting(panel):
        work_codes = sparse_work_codes(panel, source)
    elif "work_municipality" in panel.dims:
        work_codes = panel["work_municipality"].values
    if work_codes is not None:
        outside = sorted(set(map(str, work_codes)) - set(codes))
        if code_vintage is None:
            unknown = outside
        else:
            counties = counties_of(code_vintage)
            unknown = [
                c for c in outside if not (len(c) == 4 and c.isdigit() and c[:2] in counties)
            ]
        if unknown:
            raise PanelValidationError(
                f"{source}: commuting goes to work municipality code(s) {unknown[:10]}, "
                "which are neither municipalities of the panel nor codes of its vintage; "
                "harmonise the codes or drop those columns."
            )


def check_plausibility(panel: xr.Dataset, source: str) -> None:
    """Units and values that a well-formed panel may still get wrong.

    Raises
    ------
    PanelValidationError
        Naming the municipality and year, the likely cause, and the override.
    """
    override = (
        " If the data are truly so, pass allow_unusual=True (or set the panel attribute "
        "allow_unusual = 'yes')."
    )
    totals = panel["population"].sum(("age", "sex"), dtype=np.float64)
    national = totals.sum("municipality")
    if bool((national > NATIONAL_POPULATION_MAX).any()):
        year = int(national["year"].values[int(np.argmax(national.values))])
        raise PanelValidationError(
            f"{source}: the panel holds {float(national.max()):,.0f} people in {year}, more "
            f"than Norway ({NATIONAL_POPULATION_MAX:,} at most); the population is not in "
            "persons (scaled or summed twice)." + override
        )
    _check_municipal_totals(panel, totals, source, override)
    for name in ("births", "deaths"):
        if name not in panel or set(panel[name].dims) != {"municipality", "year"}:
            continue
        rate = panel[name] / totals.where(totals > 0)
        high = rate > CRUDE_RATE_MAX
        if bool(high.any()):
            m, y = np.argwhere(np.asarray(high.values))[0]
            raise PanelValidationError(
                f"{source}: {name} are {float(rate.values[m, y]):.0%} of the population in "
                f"municipality {codes_at(panel, m)}, year {int(panel['year'].values[y])}; "
                "population and events must both be counted in persons (is the "
                "population in thousands?)." + override
            )
    if "centrality" in panel.coords:
        centrality = np.asarray(panel["centrality"].values, dtype=np.float64)
        finite = centrality[np.isfinite(centrality)]
        if finite.size and (finite.max() <= 1.0 or finite.min() < 0 or finite.max() > 1000):
            raise PanelValidationError(
                f"{source}: centrality runs {finite.min():g}..{finite.max():g}; it must be "
                "SSB's index on 0-1000 (multiply a 0-1 index by 1000)." + override
            )


def codes_at(panel: xr.Dataset, index: int) -> str:
    """``'0301 (Oslo)'`` for the municipality at ``index``."""
    code = str(panel["municipality"].values[index])
    if "name" in panel.coords:
        return f"{code} ({panel['name'].values[index]})"
    return code


def _check_municipal_totals(
    panel: xr.Dataset, totals: xr.DataArray, source: str, override: str
) -> None:
    values = np.asarray(totals.transpose("municipality", "year").values)
    years = panel["year"].values
    zero = np.argwhere(values <= 0)
    if zero.size:
        m, y = zero[0]
        raise PanelValidationError(
            f"{source}: municipality {codes_at(panel, m)} has no inhabitants on 1 January "
            f"{int(years[y])}; a year of zeros is a missing year (projections from it would "
            "be 0 people). Fill it from the source or drop the municipality." + override
        )
    large = np.argwhere(values > MUNICIPALITY_POPULATION_MAX)
    if large.size:
        m, y = large[0]
        raise PanelValidationError(
            f"{source}: municipality {codes_at(panel, m)} has {values[m, y]:,.0f} people in "
            f"{int(years[y])}, more than any Norwegian municipality; the population is not "
            "in persons." + override
        )
    median = float(np.median(values))
    if median < MEDIAN_MUNICIPALITY_MIN:
        raise PanelValidationError(
            f"{source}: the median municipality has {median:g} people (smallest Norwegian "
            "municipality: about 200); the population looks counted in thousands. Convert "
            "it to persons." + override
        )
