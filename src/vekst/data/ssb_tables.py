"""Every Statistics Norway (SSB) table that ``vekst fetch`` reads, in one place.

Each table is a :class:`TableSpec`: the table id, what it holds, which panel variables it
feeds, and how to select from it (variable codes, value codes or patterns). Nothing else in
the package hard-codes an SSB table id or value code, so when SSB renames something only
this file changes.

When SSB changes a table
------------------------
SSB discontinues tables (a new id replaces an old one), renames value codes (e.g.
``Personer1`` -> ``Personer2``) and adds region codes after municipal reforms. The client
checks every selection against the table's metadata before it asks for data, so a change
shows up as :class:`vekst.data.ssb.TableSpecError` naming the table, the variable and the
codes it has now. To fix it:

1. Look the table up: ``https://data.ssb.no/api/pxwebapi/v2/tables/<id>/metadata?lang=no``
   (variables, value codes and labels) or search for its successor:
   ``https://data.ssb.no/api/pxwebapi/v2/tables?query=<words>``.
2. Edit the :class:`TableSpec` below: ``table_id``, a :class:`Select` (``variable``,
   ``codes`` / ``pattern``) or a :class:`Content` code.
3. Run ``pytest tests/test_ssb_client.py tests/test_fetch_assembly.py`` and
   ``vekst fetch --tables <key> ...`` for that one table. Cached chunks are keyed by the
   query, so a changed selection is fetched afresh.

Region codes are not listed: ``Region``-like variables take every value whose code matches
:data:`MUNICIPALITY_CODE_PATTERN` (all municipality codes of all vintages), and
:func:`vekst.data.codes.harmonise` maps them to the target vintage.

Verification status of each table is written in its ``verified`` field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "ALL_TABLES",
    "CONTENTS_VARIABLE",
    "MUNICIPALITY_CODE_PATTERN",
    "Content",
    "Select",
    "TableSpec",
    "table_by_key",
]

#: Name of the PxWeb "statistics variable" dimension in every SSB table.
CONTENTS_VARIABLE = "ContentsCode"

#: Municipality codes in SSB region lists: four digits, excluding Svalbard (21xx), Jan
#: Mayen (22xx), the continental shelf (23xx), "unknown municipality in county" (xx99) and
#: the catch-all codes 00xx/88xx/99xx. Codes of every vintage match; harmonisation maps them.
MUNICIPALITY_CODE_PATTERN = r"(?!00|2[1-3]|88|99)\d{2}(?!99)\d{2}"

#: Sex codes used by SSB's ``Kjonn`` variable.
SEX_CODES: Mapping[str, str] = MappingProxyType({"1": "male", "2": "female"})


@dataclass(frozen=True)
class Select:
    """How to select values of one table variable.

    Exactly one of ``codes``, ``pattern``, ``label_pattern``, ``every`` or ``eliminate``
    should be given.

    Attributes
    ----------
    variable
        The variable code (JSON-stat dimension id), e.g. ``"Kjonn"``.
    codes
        Exact value codes, e.g. ``("1", "2")``. Every code must exist in the table.
    pattern
        Regular expression that a value code must match in full.
    label_pattern
        Regular expression searched (case-insensitively) in the value labels; used where
        the codes have not been verified but the labels are documented.
    every
        Take every value of the variable.
    eliminate
        Leave the variable out of the query so that SSB returns its elimination value
        (usually the sum); only allowed where the metadata marks the variable eliminable.
    variable_label
        Label of the variable (e.g. ``"arbeidsstyrkestatus"``), used to find it when
        ``variable`` is not among the table's variable codes.
    codelist
        Optional PxWebApi code list (``vs_...`` value set or ``agg_...`` grouping). Its
        codes differ from the table's own, so give them in ``codes``; they are sent
        unchecked. None of the shipped specs uses one: vekst harmonises codes itself.
    """

    variable: str
    codes: tuple[str, ...] = ()
    pattern: str | None = None
    label_pattern: str | None = None
    every: bool = False
    eliminate: bool = False
    variable_label: str | None = None
    codelist: str | None = None

    def __post_init__(self) -> None:
        given = [
            bool(self.codes),
            self.pattern is not None,
            self.label_pattern is not None,
            self.every,
            self.eliminate,
        ]
        if sum(given) != 1:
            raise ValueError(
                f"Select({self.variable!r}): give exactly one of codes, pattern, "
                "label_pattern, every, eliminate"
            )


@dataclass(frozen=True)
class Content:
    """One value of the ``ContentsCode`` variable and the column it becomes.

    Attributes
    ----------
    column
        Name of the value column in the table's wide frame, e.g. ``"births"``.
    code
        SSB value code, e.g. ``"Fodte2"``.
    label_pattern
        Regular expression searched in the labels instead of an exact code (first match
        wins); for tables whose codes are not verified.
    """

    column: str
    code: str | None = None
    label_pattern: str | None = None

    def __post_init__(self) -> None:
        if (self.code is None) == (self.label_pattern is None):
            raise ValueError(f"Content({self.column!r}): give exactly one of code, label_pattern")


@dataclass(frozen=True)
class TableSpec:
    """An SSB table as ``vekst fetch`` uses it.

    Attributes
    ----------
    key
        Short name used on the command line (``--tables population``) and as the cache
        folder name.
    table_id
        SSB StatBank table id (five digits, a string).
    title
        SSB's title of the table.
    description
        What the table holds and how vekst uses it.
    feeds
        Panel variables built from it.
    contents
        Values of ``ContentsCode`` to fetch and the columns they become.
    selections
        Selections for the other non-time variables. Variables of the table not named here
        are eliminated when the metadata allows it, else the fetch stops with an error.
    region_variables
        Variables holding municipality codes (selected by
        :data:`MUNICIPALITY_CODE_PATTERN` and harmonised to one vintage).
    time_variable
        The time variable (``Tid``).
    time_unit
        ``"year"`` (codes ``2015``) or ``"quarter"`` (codes ``2015K1``).
    split_order
        Variables along which a query is split into chunks when it exceeds the cell
        limit, most preferred first (splitting by time keeps old chunks valid when SSB
        publishes a new year).
    options
        Table-specific settings read by the assembly (documented per table).
    verified
        How the ids and codes were checked.
    """

    key: str
    table_id: str
    title: str
    description: str
    feeds: tuple[str, ...]
    contents: tuple[Content, ...]
    selections: tuple[Select, ...] = ()
    region_variables: tuple[str, ...] = ("Region",)
    time_variable: str = "Tid"
    time_unit: Literal["year", "quarter"] = "year"
    split_order: tuple[str, ...] = ("Tid", "Region")
    options: Mapping[str, str] = field(default_factory=dict)
    verified: str = ""

    def all_selections(self) -> tuple[Select, ...]:
        """Selections for every named variable except time, region variables included."""
        regions = tuple(
            Select(name, pattern=MUNICIPALITY_CODE_PATTERN) for name in self.region_variables
        )
        return regions + self.selections

    def help_line(self) -> str:
        """One line for ``vekst fetch --help``."""
        return f"{self.key} (SSB {self.table_id}): {self.title} -> {', '.join(self.feeds)}"


POPULATION = TableSpec(
    key="population",
    table_id="07459",
    title="Befolkning, etter region, kjønn, alder, statistikkvariabel og år",
    description=(
        "Population on 1 January by municipality, sex and single year of age (0-104, 105+), "
        "1986-. Feeds the population stock."
    ),
    feeds=("population",),
    contents=(Content("population", code="Personer1"),),
    selections=(
        Select("Kjonn", codes=("1", "2")),
        # Single years of age; the open interval is written with "+", e.g. "105+". "999"
        # (a total, in tables that have one) is excluded.
        Select("Alder", pattern=r"(?!999)\d{1,3}\+?"),
    ),
    split_order=("Tid", "Region", "Alder"),
    verified=(
        "Table id, ContentsCode 'Personer1' and the variables Region/Kjonn/Alder/Tid: SSB's "
        "PxWebApi 2 user guide (examples for 07459) and published query examples. The age "
        "codes are selected by pattern because their zero-padding is not documented."
    ),
)

COMPONENTS = TableSpec(
    key="components",
    table_id="01222",
    title="Befolkning og kvartalsvise endringar, etter region, statistikkvariabel og kvartal",
    description=(
        "Quarterly components of change by municipality, 1997K4-: births, deaths, "
        "immigration, emigration, domestic in- and out-migration. Quarters are summed to "
        "calendar years (a year needs all four). Feeds observed births, deaths and "
        "net_migration_total = (in - out) + (immigration - emigration). Annual table 06913 "
        "only has total in/out moves, so it cannot split migration."
    ),
    feeds=("births", "deaths", "net_migration_total"),
    contents=(
        Content("births", code="Fodte2"),
        Content("deaths", code="Dode3"),
        Content("immigration", code="Innvandring5"),
        Content("emigration", code="Utvandring6"),
        Content("in_migration", code="Tilflytting7"),
        Content("out_migration", code="Fraflytting8"),
    ),
    time_unit="quarter",
    verified=(
        "Table id and all ContentsCode values: the recorded API v0 response in "
        "shared/data/real/befolkningsvekst_jsonstat1 (2015K1) and the 01222 metadata listing "
        "for 1997K4-2025K3 printed in SSB's PxWebApiData documentation."
    ),
)

EMPLOYMENT = TableSpec(
    key="employment",
    table_id="11618",
    title="Sysselsatte per 4. kvartal, etter bosted/arbeidssted, kjønn og alder",
    description=(
        "Employed persons 15-74 in the 4th quarter by municipality of residence and of "
        "work (register-based employment statistics, a-ordningen). Feeds "
        "employed_residence and employed_workplace."
    ),
    feeds=("employed_residence", "employed_workplace"),
    contents=(
        Content("employed_residence", code="SysselBosted"),
        Content("employed_workplace", code="SysselArbsted"),
    ),
    selections=(Select("Kjonn", codes=("0",)), Select("Alder", codes=("15-74",))),
    verified=(
        "Table id, Kjonn=0, Alder=15-74 and ContentsCode SysselBosted/SysselArbsted: SSB's "
        "own 'pendling' app (statisticsnorway/pendling, make_data.R) and the recorded "
        "extract in shared/data/real/ssb_pendling_app. First year not verified (the "
        "a-ordningen series starts around 2015); earlier years come back empty."
    ),
)

COMMUTING = TableSpec(
    key="commuting",
    table_id="03321",
    title=(
        "Sysselsatte per 4. kvartal. Pendlingsstrømmer etter arbeidsstedskommune, "
        "bostedskommune, statistikkvariabel og år"
    ),
    description=(
        "Commuting matrix: employed persons 15-74 in the 4th quarter by municipality of "
        "residence (Bokommuen) and of work (ArbstedKomm). Feeds commuting "
        "(municipality = home, work_municipality = work)."
    ),
    feeds=("commuting",),
    contents=(Content("commuting", code="Sysselsatte"),),
    region_variables=("Bokommuen", "ArbstedKomm"),
    split_order=("Tid", "ArbstedKomm", "Bokommuen"),
    options=MappingProxyType({"home": "Bokommuen", "work": "ArbstedKomm"}),
    verified=(
        "Table id, variables ArbstedKomm/Bokommuen and ContentsCode 'Sysselsatte': SSB's "
        "'pendling' app data (shared/data/real/ssb_pendling_app, PROVENANCE section 8) and "
        "the raw StatBank export in shared/data/real/spread_commuters."
    ),
)

HOUSING = TableSpec(
    key="housing",
    table_id="05940",
    title=(
        "Boligbygg. Igangsatte og fullførte boliger og bruksareal til bolig, etter region, "
        "bygningstype, statistikkvariabel og år"
    ),
    description=(
        "Completed dwellings by municipality and year, all building types together "
        "(the building-type variable is eliminated, SSB returns the sum). Feeds "
        "dwellings_completed (a scenario input; not part of the core panel schema)."
    ),
    feeds=("dwellings_completed",),
    contents=(Content("dwellings_completed", code="Fullforte"),),
    selections=(Select("Byggeareal", eliminate=True),),
    verified=(
        "Table id, variable Byggeareal and ContentsCode 'Fullforte' (completed; "
        "'Igangsatte' = started): published PxWebApi 2 queries of Telemark county "
        "(evensrii/Telemark), the source of shared/data/real/telemark/bolig. That "
        "Byggeareal is eliminable is not verified; if it is not, the fetch says so."
    ),
)

EMPLOYMENT_RATE = TableSpec(
    key="employment_rate",
    table_id="13618",
    title=("Personer, etter arbeidsstyrkestatus, kjønn og alder. Bruddjusterte tall (AKU)"),
    description=(
        "National labour force survey (AKU), annual, 2009-: persons by labour force status, "
        "sex and age group. employment_rate = employed / all persons in the group, "
        "expanded from age groups to single years (each age gets the narrowest group "
        "containing it; ages outside all groups are NaN). Feeds employment_rate."
    ),
    feeds=("employment_rate",),
    contents=(
        # The first statistics variable that is not a percentage (counts, in 1000s).
        Content("persons", label_pattern=r"^(?!.*prosent).*$"),
    ),
    selections=(
        Select("ArbStyrkStatus", every=True, variable_label="arbeidsstyrkestatus"),
        Select("Kjonn", codes=("1", "2"), variable_label="kjønn"),
        Select("Alder", pattern=r"\d{2}-\d{2}", variable_label="alder"),
    ),
    region_variables=(),
    split_order=("Tid",),
    options=MappingProxyType(
        {
            "status_variable": "ArbStyrkStatus",
            "status_variable_label": "arbeidsstyrkestatus",
            "employed_label": r"^sysselsatte",
            "total_label": r"(i alt|befolkning|alle)",
        }
    ),
    verified=(
        "Table id, title, period 2009- and variable labels (arbeidsstyrkestatus, kjønn, "
        "alder, statistikkvariabel, år): SSB's PxWebApi 2 table listing. Variable and value "
        "CODES are NOT verified: the labour-force-status variable and the contents are "
        "found by label, so a mismatch stops the fetch with the labels SSB has."
    ),
)

#: Every table ``vekst fetch`` knows, in fetch order.
ALL_TABLES: tuple[TableSpec, ...] = (
    POPULATION,
    COMPONENTS,
    EMPLOYMENT,
    COMMUTING,
    HOUSING,
    EMPLOYMENT_RATE,
)


def table_by_key(key: str) -> TableSpec:
    """Return the table called ``key`` (``population``, ``components``, ...).

    Raises
    ------
    KeyError
        Naming the known keys.
    """
    for spec in ALL_TABLES:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown table {key!r}; known: {[s.key for s in ALL_TABLES]}")


def _check_specs() -> None:
    keys = [spec.key for spec in ALL_TABLES]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate table keys in ALL_TABLES: {keys}")
    for spec in ALL_TABLES:
        for select in spec.all_selections():
            for pattern in (select.pattern, select.label_pattern):
                if pattern is not None:
                    re.compile(pattern)


_check_specs()
