"""From stub SSB responses to a validated panel: harmonisation, components, commuting, CLI.

Six fake tables (the ids, variables and codes of src/vekst/data/ssb_tables.py) cover four
2024 municipalities through the code changes of 2020 and 2024: Moss (3103) = 0104 + 0136
in 2019 and 3002 in 2020-2023; Ålesund (1508) and Haram (1580) = 1504 / 1534 in 2019 and
shares of 1507 in 2020-2023; Oslo (0301) throughout. No test touches the network.
"""

from __future__ import annotations

import json
import urllib.request
from itertools import product

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fixtures.ssb.stub import FakeClock, FakeDim, FakeTable, StubTransport
from vekst.data.fetch import FetchAssemblyError, fetch_panel, write_outputs
from vekst.data.panel import validate_panel
from vekst.data.ssb import RateLimiter, SsbClient
from vekst.data.ssb_frames import harmonise_counts
from vekst.data.ssb_tables import ALL_TABLES

YEARS = list(range(2019, 2025))
SHARE_1508 = 0.8  # share of 2020-2023 code 1507 that lies in 2024's 1508

CODE_TABLE = pd.DataFrame(
    [
        ("0104", 2019, "3103", 1.0),
        ("0136", 2019, "3103", 1.0),
        ("0301", 2019, "0301", 1.0),
        ("1504", 2019, "1508", 1.0),
        ("1534", 2019, "1580", 1.0),
        *[
            (c, y, t, w)
            for y in range(2020, 2024)
            for c, t, w in (
                ("3002", "3103", 1.0),
                ("0301", "0301", 1.0),
                ("1507", "1508", SHARE_1508),
                ("1507", "1580", 1 - SHARE_1508),
            )
        ],
        ("3103", 2024, "3103", 1.0),
        ("0301", 2024, "0301", 1.0),
        ("1508", 2024, "1508", 1.0),
        ("1580", 2024, "1580", 1.0),
    ],
    columns=["original_code", "year", "code_2024", "weight"],
)
VALID = {(c, int(y)) for c, y in zip(CODE_TABLE.original_code, CODE_TABLE.year, strict=True)}
MUNICIPALITIES = ["0301", "1508", "1580", "3103"]
INFO = pd.DataFrame(
    {
        "name": ["Oslo", "Ålesund", "Haram", "Moss"],
        "county": ["03", "15", "15", "31"],
        "region": ["001", "061", "061", "003"],
        "region_name": ["Oslo", "Ålesund", "Ålesund", "Moss"],
        "centrality": [1000.0, 850.0, 600.0, 900.0],
    },
    index=pd.Index(MUNICIPALITIES, name="code"),
)
REGIONS = [
    "0",
    "03",
    "0104",
    "0136",
    "0301",
    "1504",
    "1534",
    "3002",
    "1507",
    "3103",
    "1508",
    "1580",
    "2111",
    "0399",
]
AGES = [f"{a:03d}" for a in range(105)] + ["105+"]


def year_of(period: str) -> int:
    return int(period[:4])


def valid(code: str, year: int) -> bool:
    return (code, year) in VALID


# Cell values: simple arithmetic so that expected sums can be written out in the tests.
def pop_value(code: str, sex: str, age: int, year: int) -> int:
    return 5 + int(code) % 13 + age % 7 + 3 * int(sex) + (year - 2019)


def component_value(code: str, content: str, year: int, quarter: int) -> int:
    return int(code) % 11 + 2 * len(content) + quarter + (year - 2019)


def commute_value(home: str, work: str, year: int) -> int:
    if home == "1534" and work == "0301":
        return 0
    return (int(home) + 3 * int(work)) % 50 + (year - 2019)


def population_table() -> FakeTable:
    def cell(key):
        year = int(key["Tid"])
        if key["Region"] == "2111":
            return 2000
        if not valid(key["Region"], year):
            return "."
        return pop_value(key["Region"], key["Kjonn"], int(key["Alder"].rstrip("+")), year)

    return FakeTable(
        "07459",
        [
            FakeDim("Region", REGIONS, elimination=True),
            FakeDim("Kjonn", ["1", "2"], elimination=True),
            FakeDim("Alder", AGES, elimination=True),
            FakeDim("ContentsCode", ["Personer1"], label="statistikkvariabel"),
            FakeDim("Tid", [str(y) for y in range(2015, 2025)]),
        ],
        cell,
    )


def components_table(hidden=(("0136", "Dode3", "2019K3"),), extra_regions=()) -> FakeTable:
    contents = [
        "Folketallet1",
        "Fodte2",
        "Dode3",
        "Innvandring5",
        "Utvandring6",
        "Tilflytting7",
        "Fraflytting8",
        "Folketilvekst10",
    ]
    periods = [f"{y}K{q}" for y in range(2018, 2025) for q in range(1, 5)][:-2]

    def cell(key):
        if (key["Region"], key["ContentsCode"], key["Tid"]) in hidden:
            return ".."
        year = year_of(key["Tid"])
        if key["Region"] in extra_regions:
            return 7
        if not valid(key["Region"], year):
            return "."
        return component_value(key["Region"], key["ContentsCode"], year, int(key["Tid"][-1]))

    return FakeTable(
        "01222",
        [
            FakeDim("Region", REGIONS + list(extra_regions), elimination=True),
            FakeDim("ContentsCode", contents, label="statistikkvariabel"),
            FakeDim("Tid", periods),
        ],
        cell,
    )


def employment_table() -> FakeTable:
    def cell(key):
        year = int(key["Tid"])
        if not valid(key["Region"], year):
            return "."
        if (key["Region"], key["ContentsCode"], year) == ("1534", "SysselArbsted", 2019):
            return ":"
        base = int(key["Region"]) % 97 * 10 + (year - 2019)
        return (
            base
            + {"BefolkningBosted": 1000, "SysselBosted": 500, "SysselArbsted": 400}[
                key["ContentsCode"]
            ]
        )

    return FakeTable(
        "11618",
        [
            FakeDim("Region", REGIONS),
            FakeDim("Kjonn", ["0", "1", "2"]),
            FakeDim("Alder", ["15-74", "15-19"]),
            FakeDim(
                "ContentsCode",
                ["BefolkningBosted", "SysselBosted", "SysselArbsted"],
                label="statistikkvariabel",
            ),
            FakeDim("Tid", [str(y) for y in range(2017, 2024)]),
        ],
        cell,
    )


def commuting_table() -> FakeTable:
    places = [r for r in REGIONS if r not in ("0", "03")]

    def cell(key):
        year = int(key["Tid"])
        home, work = key["Bokommuen"], key["ArbstedKomm"]
        if work == "2111" and valid(home, year):
            return 3
        if not (valid(home, year) and valid(work, year)):
            return "."
        return commute_value(home, work, year)

    return FakeTable(
        "03321",
        [
            FakeDim("ArbstedKomm", places),
            FakeDim("Bokommuen", places),
            FakeDim("ContentsCode", ["Sysselsatte"], label="statistikkvariabel"),
            FakeDim("Tid", [str(y) for y in range(2019, 2024)]),
        ],
        cell,
    )


def housing_table() -> FakeTable:
    def cell(key):
        year = int(key["Tid"])
        if not valid(key["Region"], year):
            return "."
        factor = 1 if key["ContentsCode"] == "Fullforte" else 100
        return factor * (int(key["Byggeareal"]) % 10 + int(key["Region"]) % 5 + year - 2019)

    return FakeTable(
        "05940",
        [
            FakeDim("Region", REGIONS, elimination=True),
            FakeDim("Byggeareal", ["111", "112", "121"], elimination=True),
            FakeDim("ContentsCode", ["Igangsatte", "Fullforte"], label="statistikkvariabel"),
            FakeDim("Tid", [str(y) for y in range(2000, 2025)]),
        ],
        cell,
    )


GROUP_RATE = {"15-24": 0.5, "25-54": 0.8, "55-74": 0.4, "15-74": 0.65}


def employment_rate_table() -> FakeTable:
    def cell(key):
        total = 300.0
        if key["ArbStyrkStatus"] == "0":
            value = total
        elif key["ArbStyrkStatus"] == "1":
            bump = 0.01 * (int(key["Tid"]) - 2019) + (0.02 if key["Kjonn"] == "1" else 0.0)
            value = total * (GROUP_RATE[key["Alder"]] + bump)
        else:
            value = 12.0
        return value if key["ContentsCode"] == "Personer" else 100 * value / total

    return FakeTable(
        "13618",
        [
            FakeDim(
                "ArbStyrkStatus",
                ["0", "1", "2"],
                labels=["Befolkningen i alt", "Sysselsatte", "Arbeidsledige"],
                label="arbeidsstyrkestatus",
            ),
            FakeDim("Kjonn", ["0", "1", "2"], label="kjønn"),
            FakeDim("Alder", ["15-74", "15-24", "25-54", "55-74"], label="alder"),
            FakeDim(
                "ContentsCode",
                ["Prosent", "Personer"],
                labels=["Prosent av befolkningen", "Personer (1 000)"],
                label="statistikkvariabel",
            ),
            FakeDim("Tid", [str(y) for y in range(2009, 2025)], label="år"),
        ],
        cell,
    )


def all_tables(**overrides) -> dict[str, FakeTable]:
    tables = {
        "07459": population_table(),
        "01222": components_table(),
        "11618": employment_table(),
        "03321": commuting_table(),
        "05940": housing_table(),
        "13618": employment_rate_table(),
    }
    tables.update(overrides)
    return tables


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def stub_client(tmp_path, tables=None) -> tuple[SsbClient, StubTransport]:
    clock = FakeClock()
    transport = StubTransport(tables or all_tables(), clock=clock)
    client = SsbClient(
        transport=transport,
        clock=clock,
        cache_dir=tmp_path / "cache",
        rate_limiter=RateLimiter(max_requests=1000, period=60, min_interval=0, clock=clock),
        max_cells=50_000,
    )
    return client, transport


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    client, _ = stub_client(tmp_path_factory.mktemp("fetch"))
    return fetch_panel(client, first_year=2019, code_table=CODE_TABLE, municipality_info=INFO)


def test_panel_is_valid_with_expected_layout(fetched):
    panel = fetched.panel
    assert validate_panel(panel, code_vintage=2024) is panel
    assert list(panel["municipality"].values) == MUNICIPALITIES
    assert list(panel["year"].values) == YEARS
    assert panel.sizes["age"] == 106 and list(panel["sex"].values) == ["female", "male"]
    assert list(panel["name"].values) == ["Oslo", "Ålesund", "Haram", "Moss"]
    assert list(panel["region"].values) == ["001", "061", "061", "003"]
    expected = {
        "population",
        "births",
        "deaths",
        "net_migration_total",
        "employed_residence",
        "employed_workplace",
        "commuting",
        "dwellings_completed",
        "employment_rate",
    }
    assert set(map(str, panel.data_vars)) == expected
    for name in ("births", "deaths", "net_migration_total"):
        assert panel[name].attrs["derived"] == "no"
        assert panel[name].attrs["kind"] == "flow"
        # Flows need next year's stock: missing in the last stock year.
        assert bool(panel[name].sel(year=2024).isnull().all())


def test_old_codes_are_summed_into_2024_municipalities(fetched):
    pop = fetched.panel["population"]
    for sex_code, sex in (("1", "male"), ("2", "female")):
        for age in (0, 37, 105):
            moss_2019 = pop_value("0104", sex_code, age, 2019) + pop_value(
                "0136", sex_code, age, 2019
            )
            assert pop.sel(municipality="3103", year=2019, age=age, sex=sex) == moss_2019
            assert pop.sel(municipality="3103", year=2021, age=age, sex=sex) == pop_value(
                "3002", sex_code, age, 2021
            )
            assert pop.sel(municipality="1580", year=2019, age=age, sex=sex) == pop_value(
                "1534", sex_code, age, 2019
            )
            # A split municipality gets its share, rounded to whole persons.
            share = round(SHARE_1508 * pop_value("1507", sex_code, age, 2022))
            assert pop.sel(municipality="1508", year=2022, age=age, sex=sex) == share
            assert pop.sel(municipality="0301", year=2024, age=age, sex=sex) == pop_value(
                "0301", sex_code, age, 2024
            )


def _annual(code, content, year):
    return sum(component_value(code, content, year, q) for q in range(1, 5))


def test_observed_components_from_quarters(fetched):
    panel = fetched.panel
    births = panel["births"]
    assert births.sel(municipality="0301", year=2020) == _annual("0301", "Fodte2", 2020)
    assert births.sel(municipality="3103", year=2019) == _annual("0104", "Fodte2", 2019) + _annual(
        "0136", "Fodte2", 2019
    )
    # One quarter of one contributing code was '..': the 2024 municipality's year is missing.
    assert np.isnan(panel["deaths"].sel(municipality="3103", year=2019))
    assert panel["deaths"].sel(municipality="3103", year=2020) == _annual("3002", "Dode3", 2020)
    net = (
        _annual("0301", "Tilflytting7", 2021)
        - _annual("0301", "Fraflytting8", 2021)
        + _annual("0301", "Innvandring5", 2021)
        - _annual("0301", "Utvandring6", 2021)
    )
    assert panel["net_migration_total"].sel(municipality="0301", year=2021) == net
    components = fetched.tables["components"]
    assert {"immigration", "emigration", "in_migration", "out_migration"} <= set(components)


def test_commuting_matrix_is_harmonised_on_both_sides(fetched):
    commuting = fetched.panel["commuting"]
    assert list(commuting["work_municipality"].values) == MUNICIPALITIES
    expected = commute_value("0104", "0301", 2019) + commute_value("0136", "0301", 2019)
    assert commuting.sel(municipality="3103", work_municipality="0301", year=2019) == expected
    inside_moss = sum(commute_value(h, w, 2019) for h, w in product(("0104", "0136"), repeat=2))
    assert commuting.sel(municipality="3103", work_municipality="3103", year=2019) == inside_moss
    assert commuting.sel(municipality="3103", work_municipality="0301", year=2020) == (
        commute_value("3002", "0301", 2020)
    )
    # A zero flow (dropped while fetching) comes back as zero, not missing.
    assert commuting.sel(municipality="1580", work_municipality="0301", year=2019) == 0
    # Svalbard (2111) is not a municipality and does not appear.
    assert "2111" not in fetched.tables["commuting"]["work_municipality"].values


def test_employment_and_housing(fetched):
    panel = fetched.panel
    assert (
        panel["employed_workplace"].sel(municipality="0301", year=2021) == 301 % 97 * 10 + 2 + 400
    )
    assert panel["employed_residence"].sel(municipality="3103", year=2019) == (
        (104 % 97 * 10 + 500) + (136 % 97 * 10 + 500)
    )
    assert np.isnan(panel["employed_workplace"].sel(municipality="1580", year=2019))
    assert panel["employed_workplace"].sel(municipality="1580", year=2020) == round(
        (1 - SHARE_1508) * (1507 % 97 * 10 + 1 + 400)
    )
    # The building-type variable is eliminated: SSB (here the stub) returns the sum.
    types = sum(int(t) % 10 for t in ("111", "112", "121"))
    assert panel["dwellings_completed"].sel(municipality="0301", year=2020) == (
        types + 3 * (301 % 5 + 1)
    )
    assert panel["dwellings_completed"].attrs["units"] == "dwellings"


def test_employment_rate_expanded_from_age_groups(fetched):
    rate = fetched.panel["employment_rate"]
    assert rate.attrs["kind"] == "rate"
    assert float(rate.sel(age=20, sex="male", year=2021)) == pytest.approx(0.5 + 0.02 + 0.02)
    assert float(rate.sel(age=40, sex="female", year=2019)) == pytest.approx(0.8)
    assert float(rate.sel(age=74, sex="female", year=2020)) == pytest.approx(0.41)
    assert np.isnan(rate.sel(age=14, sex="male", year=2021))
    assert np.isnan(rate.sel(age=75, sex="male", year=2021))


def test_harmonise_with_shipped_code_table_moves_2019_code_into_2024_municipality():
    from vekst.data import codes

    try:
        table = codes.code_table()
    except FileNotFoundError:
        pytest.skip("shipped code table (data/municipality_codes.csv) not built")
    frame = pd.DataFrame(
        {
            "municipality": ["0104", "0136", "0301"],
            "year": [2019, 2019, 2019],
            "births": [300.0, np.nan, 9000.0],
            "deaths": [250.0, 120.0, 4000.0],
        }
    )
    out = harmonise_counts(
        frame, code_columns=["municipality"], value_columns=["births", "deaths"], code_table=table
    ).set_index("municipality")
    assert out.loc["3103", "deaths"] == 370.0
    # Any missing part makes the merged municipality missing (harmonise alone would give 300).
    assert np.isnan(out.loc["3103", "births"])
    assert out.loc["0301", "births"] == 9000.0


def test_unknown_code_carrying_data_stops_the_fetch(tmp_path):
    tables = all_tables(**{"01222": components_table(extra_regions=("1234",))})
    client, _ = stub_client(tmp_path, tables)
    with pytest.raises(FetchAssemblyError, match="1234"):
        fetch_panel(
            client,
            first_year=2019,
            tables=["population", "components"],
            code_table=CODE_TABLE,
            municipality_info=INFO,
        )


def test_observed_components_replace_derived_ones_in_base(tmp_path, fetched):
    base = fetched.panel[["population"]].copy()
    base["births"] = fetched.panel["births"] + 5
    base["births"].attrs = {"kind": "flow", "units": "persons", "derived": "yes"}
    base["mortality_rate"] = xr.DataArray(
        np.full((106, 2, len(YEARS)), 0.01),
        coords={"age": base["age"], "sex": base["sex"], "year": base["year"]},
        dims=("age", "sex", "year"),
        attrs={"kind": "rate", "units": "per person-year", "derived": "no"},
    )
    client, _ = stub_client(tmp_path)
    result = fetch_panel(
        client,
        first_year=2019,
        tables=["population", "components"],
        code_table=CODE_TABLE,
        municipality_info=INFO,
        base=base,
    )
    panel = result.panel
    assert panel["births"].attrs["derived"] == "no"
    xr.testing.assert_equal(panel["births"], fetched.panel["births"])
    assert "mortality_rate" in panel and float(panel["mortality_rate"].max()) == 0.01


def test_last_year_and_write_outputs(tmp_path, fetched):
    client, _ = stub_client(tmp_path)
    short = fetch_panel(
        client,
        first_year=2019,
        last_year=2021,
        tables=["population", "components"],
        code_table=CODE_TABLE,
        municipality_info=INFO,
    )
    assert list(short.panel["year"].values) == [2019, 2020, 2021]
    assert np.isnan(short.panel["births"].sel(year=2021)).all()
    assert short.panel["births"].sel(municipality="0301", year=2020) == _annual(
        "0301", "Fodte2", 2020
    )
    written = write_outputs(fetched, tmp_path / "out")
    reloaded = xr.load_dataset(written["panel"], engine="h5netcdf")
    validate_panel(reloaded, code_vintage=2024)
    xr.testing.assert_allclose(reloaded["population"], fetched.panel["population"])
    provenance = json.loads(written["provenance"].read_text())
    assert provenance["tables"]["components"]["table_id"] == "01222"
    table = pd.read_csv(written["population"], dtype={"municipality": str})
    assert set(table["municipality"]) == set(MUNICIPALITIES)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_cli_help_documents_every_table():
    from typer.testing import CliRunner

    from vekst.cli import app

    result = CliRunner().invoke(app, ["fetch", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for spec in ALL_TABLES:
        assert spec.table_id in result.output
        assert spec.key in result.output


def test_cli_fetch_end_to_end_with_stub(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vekst.data.ssb as ssb
    from vekst.cli import app
    from vekst.data import codes

    try:
        codes.code_table()
    except FileNotFoundError:
        pytest.skip("shipped code table not built")
    clock = FakeClock()
    transport = StubTransport(all_tables(), clock=clock)
    real_client = ssb.SsbClient

    def client_factory(**kwargs):
        kwargs.update(transport=transport, clock=clock)
        return real_client(**kwargs)

    monkeypatch.setattr(ssb, "SsbClient", client_factory)
    info = tmp_path / "info.csv"
    INFO.reset_index().to_csv(info, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "fetch",
            "--from",
            "2019",
            "--to",
            "LATEST",
            "--out",
            str(out),
            "--tables",
            "population",
            "--tables",
            "components",
            "--municipality-info",
            str(info),
        ],
    )
    assert result.exit_code == 0, result.output
    panel = xr.load_dataset(out / "panel.nc", engine="h5netcdf")
    validate_panel(panel, code_vintage=2024)
    assert (out / "cache" / "01222").is_dir()
    # The real code table shares 1507 by its own weights; totals are kept.
    assert list(panel["year"].values) == YEARS


def test_years_before_the_code_table_are_refused(tmp_path):
    client, transport = stub_client(tmp_path)
    with pytest.raises(FetchAssemblyError, match="--from 2018 is before 2019"):
        fetch_panel(client, first_year=2018, code_table=CODE_TABLE, municipality_info=INFO)
    assert transport.calls == []
