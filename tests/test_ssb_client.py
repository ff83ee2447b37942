"""The SSB client: request planning, rate limiting, retries, cache, resumption, spec checks.

Every test talks to a stub transport (tests/fixtures/ssb/stub.py) with a fake clock; an
autouse fixture makes any real network access fail loudly.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from dataclasses import replace
from itertools import product

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.ssb.stub import FakeClock, FakeDim, FakeTable, StubTransport, json_response
from vekst.data.jsonstat import parse_metadata
from vekst.data.ssb import (
    PUBLISHED_CELL_LIMIT,
    PUBLISHED_RATE_LIMIT,
    ClientSettings,
    DiskCache,
    RateLimiter,
    Response,
    RetryPolicy,
    SsbClient,
    SsbHttpError,
    TableSpecError,
    TransportError,
    plan_chunks,
    resolve_query,
)
from vekst.data.ssb_tables import ALL_TABLES, Content, Select, TableSpec


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --------------------------------------------------------------------------------------
# A small fake table: Region x Kjonn x ContentsCode x Tid
# --------------------------------------------------------------------------------------

REGIONS = ["0", "03", "0301", "1103", "4601", "5001", "2111", "0399"]
YEARS = [str(y) for y in range(2010, 2022)]

SPEC = TableSpec(
    key="toy",
    table_id="99999",
    title="Toy table",
    description="test",
    feeds=("population",),
    contents=(Content("persons", code="Personer1"),),
    selections=(Select("Kjonn", codes=("1", "2")),),
    split_order=("Tid", "Region"),
)


def toy_value(key: dict[str, str]) -> float:
    return float(int(key["Region"] or 0) * 10 + int(key["Kjonn"]) + int(key["Tid"]) % 100)


def toy_table(**kwargs) -> FakeTable:
    return FakeTable(
        "99999",
        [
            FakeDim("Region", REGIONS, elimination=True),
            FakeDim("Kjonn", ["0", "1", "2"], elimination=True),
            FakeDim("ContentsCode", ["Personer1", "Andre"], label="statistikkvariabel"),
            FakeDim("Tid", YEARS),
        ],
        kwargs.get("cell", toy_value),
    )


def make_client(tmp_path, transport, clock, **kwargs) -> SsbClient:
    options = {
        "transport": transport,
        "clock": clock,
        "cache_dir": tmp_path / "cache",
        "rate_limiter": RateLimiter(max_requests=1000, period=60.0, min_interval=0.0, clock=clock),
        "retry": RetryPolicy(max_retries=3, backoff=2.0),
    }
    options.update(kwargs)
    return SsbClient(**options)


# --------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------


def _cells(chunks):
    counter = Counter()
    for chunk in chunks:
        counter.update(product(*chunk.values()))
    return counter


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    max_cells=st.integers(30, 5000),
    data=st.data(),
)
def test_chunks_stay_under_limit_and_cover_every_cell_once(sizes, max_cells, data):
    names = [f"v{i}" for i in range(len(sizes))]
    dims = [(n, [f"{n}_{j}" for j in range(s)]) for n, s in zip(names, sizes, strict=True)]
    split = data.draw(st.permutations(names))
    # Keep the problem solvable: the unsplittable part must fit.
    fixed = [n for n in names if n not in split]
    if math.prod(sizes[names.index(n)] for n in fixed) > max_cells:
        return
    chunks = plan_chunks(dims, max_cells, split)
    assert all(math.prod(len(c) for c in chunk.values()) <= max_cells for chunk in chunks)
    covered = _cells(chunks)
    every = list(product(*[codes for _, codes in dims]))
    assert set(covered) == set(every)
    assert set(covered.values()) == {1}


def test_large_query_is_split_along_time_first():
    dims = [
        ("Region", [str(i) for i in range(900)]),
        ("Kjonn", ["1", "2"]),
        ("Alder", [str(a) for a in range(106)]),
        ("ContentsCode", ["Personer1"]),
        ("Tid", [str(y) for y in range(2000, 2026)]),
    ]
    total = 900 * 2 * 106 * 26
    chunks = plan_chunks(dims, 750_000, ["Tid", "Region", "Alder"])
    assert len(chunks) >= math.ceil(total / 750_000)
    assert all(math.prod(len(v) for v in c.values()) <= 750_000 for c in chunks)
    assert sum(math.prod(len(v) for v in c.values()) for c in chunks) == total
    # Whole years per chunk: only time was split.
    assert all(len(c["Region"]) == 900 and len(c["Alder"]) == 106 for c in chunks)


def test_appending_a_year_keeps_earlier_chunks():
    base = [("Region", [str(i) for i in range(100)]), ("Tid", [str(y) for y in range(2000, 2020)])]
    longer = [base[0], ("Tid", [str(y) for y in range(2000, 2021)])]
    before = plan_chunks(base, 700, ["Tid"])
    after = plan_chunks(longer, 700, ["Tid"])
    assert before[:-1] == after[: len(before) - 1]


def test_unsplittable_query_is_refused():
    with pytest.raises(ValueError, match="cannot split"):
        plan_chunks([("A", ["a"] * 10), ("B", ["b"] * 10)], 5, ["A"])


def test_client_requests_respect_the_cell_limit(tmp_path):
    clock = FakeClock()
    transport = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=10)
    client = make_client(tmp_path, transport, clock, max_cells=10)
    result = client.fetch_table(SPEC, first_year=2010)
    # 4 municipalities x 2 sexes x 1 content x 12 years.
    cells = 4 * 2 * 1 * 12
    assert result.chunks == transport.counts["data"] >= math.ceil(cells / 10)
    assert len(result.frame) == cells
    assert all(math.prod(len(v) for v in s.values()) <= 10 for s in transport.data_selections)
    with pytest.raises(ValueError, match="exceeds SSB's limit"):
        SsbClient(transport=transport, max_cells=PUBLISHED_CELL_LIMIT + 1)


def test_client_settings_object_and_keywords_fetch_the_same(tmp_path):
    clock = FakeClock()
    transport = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=10)
    limiter = RateLimiter(max_requests=1000, period=60.0, min_interval=0.0, clock=clock)
    settings = ClientSettings(
        transport=transport, clock=clock, rate_limiter=limiter, max_cells=10, lang="en"
    )
    by_object = SsbClient(settings, cache_dir=tmp_path / "a")
    by_name = SsbClient(
        transport=transport,
        clock=clock,
        rate_limiter=limiter,
        max_cells=10,
        lang="en",
        cache_dir=tmp_path / "b",
    )
    results = [c.fetch_table(SPEC, first_year=2010) for c in (by_object, by_name)]
    # max_cells reached the client: 96 cells in chunks of at most 10.
    assert results[0].chunks == results[1].chunks >= 10
    pd.testing.assert_frame_equal(results[0].frame, results[1].frame)
    assert by_object.lang == by_name.lang == "en"
    assert by_object.settings == replace(by_name.settings, cache_dir=tmp_path / "a")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['max_cell'\]"):
        SsbClient(settings, max_cell=5)


# --------------------------------------------------------------------------------------
# Rate limit
# --------------------------------------------------------------------------------------


def test_rate_limiter_window_with_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(max_requests=5, period=10.0, min_interval=0.0, clock=clock)
    stamps = []
    for _ in range(12):
        limiter.acquire()
        stamps.append(clock.now)
    # 12 requests at 5 per 10 s need at least two full windows.
    assert clock.now >= 20.0
    for start in stamps:
        in_window = [t for t in stamps if start <= t < start + 10.0]
        assert len(in_window) <= 5


def test_rate_limiter_min_interval():
    clock = FakeClock()
    limiter = RateLimiter(max_requests=100, period=60.0, min_interval=1.5, clock=clock)
    for _ in range(4):
        limiter.acquire()
    assert clock.now >= 3 * 1.5


def test_default_client_stays_under_published_rate(tmp_path):
    clock = FakeClock()
    transport = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=1)
    spec = TableSpec(
        key="toy",
        table_id="99999",
        title="t",
        description="d",
        feeds=(),
        contents=SPEC.contents,
        selections=SPEC.selections,
        split_order=("Tid", "Region", "Kjonn"),
    )
    client = SsbClient(transport=transport, clock=clock, cache_dir=None, max_cells=1)
    result = client.fetch_table(spec, first_year=2010)
    stamps = transport.times
    assert result.chunks == 12 * 4 * 2
    assert len(stamps) == result.chunks + 1
    for start in stamps:
        assert sum(start <= t < start + 60.0 for t in stamps) <= PUBLISHED_RATE_LIMIT
    # Any schedule within 30 per minute needs at least this long.
    assert clock.now >= 60.0 * ((len(stamps) - 1) // PUBLISHED_RATE_LIMIT)


# --------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------


def _scripted(statuses: list[int], headers=None):
    """Answer data calls with the given statuses in turn (then the real table)."""

    def script(kind, n, request):
        if kind == "data" and n <= len(statuses):
            return Response(statuses[n - 1], headers or {}, b'{"error": "busy"}')
        return None

    return script


def test_429_then_success_honours_retry_after(tmp_path):
    clock = FakeClock()
    transport = StubTransport(
        {"99999": toy_table()}, clock=clock, script=_scripted([429], {"Retry-After": "7"})
    )
    client = make_client(tmp_path, transport, clock)
    result = client.fetch_table(SPEC, first_year=2020)
    assert transport.counts["data"] == 2
    assert clock.sleeps == [7.0]
    assert len(result.frame) == 4 * 2 * 2


def test_503_twice_then_success_backs_off(tmp_path):
    clock = FakeClock()
    transport = StubTransport({"99999": toy_table()}, clock=clock, script=_scripted([503, 503]))
    client = make_client(tmp_path, transport, clock)
    client.fetch_table(SPEC, first_year=2020)
    assert transport.counts["data"] == 3
    assert clock.sleeps == [2.0, 4.0]


def test_gives_up_after_max_retries_naming_table_and_status(tmp_path):
    clock = FakeClock()
    transport = StubTransport({"99999": toy_table()}, clock=clock, script=_scripted([503] * 10))
    client = make_client(tmp_path, transport, clock, retry=RetryPolicy(max_retries=2))
    with pytest.raises(SsbHttpError) as error:
        client.fetch_table(SPEC, first_year=2020)
    assert transport.counts["data"] == 3
    assert "99999" in str(error.value) and "503" in str(error.value)
    assert error.value.status == 503 and error.value.table_id == "99999"


def test_client_errors_are_not_retried(tmp_path):
    clock = FakeClock()
    transport = StubTransport({}, clock=clock)
    client = make_client(tmp_path, transport, clock)
    with pytest.raises(SsbHttpError, match="HTTP 404") as error:
        client.fetch_table(SPEC, first_year=2020)
    assert "99999" in str(error.value) and "ssb_tables.py" in str(error.value)
    assert transport.counts["metadata"] == 1


# --------------------------------------------------------------------------------------
# Cache and resumption
# --------------------------------------------------------------------------------------


def _data_files(tmp_path):
    return sorted((tmp_path / "cache" / "99999").glob("data-*.json"))


def test_second_run_reads_the_cache(tmp_path):
    clock = FakeClock()
    first = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=40)
    result = make_client(tmp_path, first, clock, max_cells=40).fetch_table(SPEC, first_year=2010)
    second = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=40)
    again = make_client(tmp_path, second, clock, max_cells=40).fetch_table(SPEC, first_year=2010)
    assert second.counts == {"metadata": 0, "data": 0}
    assert again.fetched == 0
    assert again.frame.equals(result.frame)


@pytest.mark.parametrize("damage", ["truncate", "flip_digit"])
def test_corrupt_cache_file_is_detected_and_refetched(tmp_path, damage):
    clock = FakeClock()
    first = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=40)
    original = make_client(tmp_path, first, clock, max_cells=40).fetch_table(SPEC, first_year=2010)
    victim = _data_files(tmp_path)[1]
    body = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(body[: len(body) // 2])
    else:  # still valid JSON, caught by the checksum sidecar
        doc = json.loads(body)
        doc["value"][0] = doc["value"][0] + 1
        victim.write_bytes(json.dumps(doc).encode())
    second = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=40)
    client = make_client(tmp_path, second, clock, max_cells=40)
    again = client.fetch_table(SPEC, first_year=2010)
    assert second.counts["data"] == 1
    assert client.cache.corrupt == [victim]
    assert again.frame.equals(original.frame)
    assert DiskCache(tmp_path / "cache").get("99999", victim.stem) is not None


def test_resume_after_interruption_fetches_only_missing_chunks(tmp_path):
    clock = FakeClock()
    broken = StubTransport(
        {"99999": toy_table()},
        clock=clock,
        cell_limit=16,
        script=lambda kind, n, request: (
            Response(503, {}, b"down") if kind == "data" and n >= 3 else None
        ),
    )
    client = make_client(tmp_path, broken, clock, max_cells=16, retry=RetryPolicy(max_retries=0))
    with pytest.raises(SsbHttpError):
        client.fetch_table(SPEC, first_year=2010)
    assert broken.counts["data"] == 3
    assert len(_data_files(tmp_path)) == 2
    healthy = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=16)
    result = make_client(tmp_path, healthy, clock, max_cells=16).fetch_table(SPEC, first_year=2010)
    # 4 municipalities x 2 sexes = 8 cells per year, 2 years per chunk, 12 years.
    assert result.chunks == 6
    assert healthy.counts == {"metadata": 0, "data": 4}
    assert result.fetched == 4
    assert [s["Tid"] for s in healthy.data_selections] == [
        [str(y), str(y + 1)] for y in range(2014, 2022, 2)
    ]
    fresh = StubTransport({"99999": toy_table()}, clock=clock, cell_limit=16)
    reference = make_client(tmp_path / "fresh", fresh, clock, max_cells=16).fetch_table(
        SPEC, first_year=2010
    )
    assert result.frame.equals(reference.frame)


def test_refresh_ignores_cached_chunks(tmp_path):
    clock = FakeClock()
    first = StubTransport({"99999": toy_table()}, clock=clock)
    make_client(tmp_path, first, clock).fetch_table(SPEC, first_year=2020)
    second = StubTransport({"99999": toy_table()}, clock=clock)
    make_client(tmp_path, second, clock, refresh=True).fetch_table(SPEC, first_year=2020)
    assert second.counts["data"] == first.counts["data"] == 1
    assert second.counts["metadata"] == 1


def test_network_errors_are_retried(tmp_path):
    clock = FakeClock()
    inner = StubTransport({"99999": toy_table()}, clock=clock)

    class Flaky:
        calls = 0

        def send(self, request):
            Flaky.calls += 1
            if Flaky.calls == 2:  # the first data request
                raise TransportError("connection reset")
            return inner.send(request)

    client = make_client(tmp_path, Flaky(), clock)
    result = client.fetch_table(SPEC, first_year=2021)
    assert Flaky.calls == 3 and clock.sleeps == [2.0]
    assert len(result.frame) == 4 * 2


# --------------------------------------------------------------------------------------
# Spec resolution and tidy output
# --------------------------------------------------------------------------------------


def test_tidy_frame_keeps_status_and_selects_municipalities(tmp_path):
    def cell(key):
        if key["Region"] == "1103" and key["Tid"] == "2020":
            return ":"
        return toy_value(key)

    clock = FakeClock()
    transport = StubTransport({"99999": toy_table(cell=cell)}, clock=clock)
    result = make_client(tmp_path, transport, clock).fetch_table(
        SPEC, first_year=2019, last_year=2020
    )
    frame = result.frame
    # Region "0" (national), "03" (county), 2111 (Svalbard), 0399 (unknown) are not municipalities.
    assert sorted(frame["Region"].unique()) == ["0301", "1103", "4601", "5001"]
    assert sorted(frame["Tid"].unique()) == ["2019", "2020"]
    hidden = frame[(frame["Region"] == "1103") & (frame["Tid"] == "2020")]
    assert len(hidden) == 2 and hidden["value"].isna().all()
    assert set(hidden["status"]) == {":"} and set(hidden["reason"]) == {"confidential"}
    row = frame[(frame.Region == "4601") & (frame.Kjonn == "2") & (frame.Tid == "2019")]
    assert row["value"].item() == 4601 * 10 + 2 + 19
    assert result.query.contents == {"Personer1": "persons"}


def _meta():
    return parse_metadata(toy_table().metadata())


def test_renamed_value_code_names_table_variable_and_current_codes():
    spec = TableSpec(
        key="toy",
        table_id="99999",
        title="t",
        description="d",
        feeds=(),
        contents=(Content("persons", code="Personer2"),),
    )
    with pytest.raises(TableSpecError) as error:
        resolve_query(spec, _meta(), 2010)
    message = str(error.value)
    assert "99999" in message and "Personer2" in message and "Personer1" in message
    assert "ssb_tables.py" in message


def test_unknown_variable_and_empty_period_are_reported():
    spec = TableSpec(
        key="toy",
        table_id="99999",
        title="t",
        description="d",
        feeds=(),
        contents=(Content("persons", code="Personer1"),),
        selections=(Select("Alder", codes=("15-74",)),),
    )
    with pytest.raises(TableSpecError, match=r"no variable 'Alder'.*Region"):
        resolve_query(spec, _meta(), 2010)
    with pytest.raises(TableSpecError, match="covers 2010-2021"):
        resolve_query(SPEC, _meta(), 2030)


def test_variables_not_in_spec_are_eliminated_only_when_allowed():
    query = resolve_query(SPEC, _meta(), 2015)
    assert query.eliminated == ()
    table = toy_table()
    table.dims.insert(1, FakeDim("Alder", ["000", "001"], elimination=False))
    with pytest.raises(TableSpecError, match=r"'Alder'.*must be selected"):
        resolve_query(SPEC, parse_metadata(table.metadata()), 2015)
    table.dims[1].elimination = True
    assert "Alder" in resolve_query(SPEC, parse_metadata(table.metadata()), 2015).eliminated


def test_every_registered_table_is_documented():
    keys = [spec.key for spec in ALL_TABLES]
    assert len(keys) == len(set(keys))
    for spec in ALL_TABLES:
        assert spec.table_id.isdigit() and len(spec.table_id) == 5
        assert spec.feeds and spec.contents and spec.verified and spec.description


def test_metadata_is_fetched_with_json_stat2(tmp_path):
    clock = FakeClock()
    transport = StubTransport(
        {"99999": toy_table()},
        clock=clock,
        script=lambda kind, n, req: json_response({"oops": 1}) if kind == "metadata" else None,
    )
    client = make_client(tmp_path, transport, clock)
    with pytest.raises(Exception, match="not a JSON-stat dataset"):
        client.metadata("99999")
    url = transport.calls[0].url
    assert url.endswith("/tables/99999/metadata?lang=no&outputFormat=json-stat2")
