"""Border transfers left in a panel's counts are found, and only mirrored jumps are."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.data.border_transfers import suspected_border_transfers

YEARS = np.arange(2008, 2020)


def _panel(totals: dict[str, np.ndarray], county: dict[str, str]) -> xr.Dataset:
    codes = list(totals)
    population = np.stack([totals[c] for c in codes])[:, :, None, None] / 2.0
    population = np.repeat(population, 2, axis=3)
    return xr.Dataset(
        {"population": (("municipality", "year", "age", "sex"), population)},
        coords={
            "municipality": codes,
            "year": YEARS,
            "age": [0],
            "sex": ["female", "male"],
            "county": ("municipality", [county[c] for c in codes]),
            "name": ("municipality", [f"Place {c}" for c in codes]),
        },
    )


def _growth(start: float, per_year: float, rng: np.random.Generator) -> np.ndarray:
    steps = per_year + rng.normal(0.0, 0.15 * abs(per_year) + 20.0, YEARS.size - 1)
    return start + np.concatenate([[0.0], np.cumsum(steps)])


def test_a_transfer_between_neighbours_is_found_and_a_boom_is_not():
    rng = np.random.default_rng(7)
    totals = {
        "0001": _growth(30_000, 300, rng),
        "0002": _growth(40_000, 400, rng),
        "0003": _growth(20_000, 100, rng),
        "0004": _growth(25_000, 200, rng),
        "0005": _growth(35_000, 150, rng),
    }
    county = {"0001": "01", "0002": "01", "0003": "02", "0004": "03", "0005": "04"}
    moved = 900.0
    flow_year = 2013
    after = YEARS > flow_year
    totals["0001"][after] += moved  # part of 0002 is moved to 0001 ...
    totals["0002"][after] -= moved
    totals["0003"][after] += 900.0  # ... a boom with no matching loss in its county
    totals["0004"][YEARS > 2015] += 800.0  # ... and a jump mirrored in another county
    totals["0005"][YEARS > 2015] -= 800.0

    found = suspected_border_transfers(_panel(totals, county))

    assert len(found) == 1
    row = found.iloc[0]
    assert row["year"] == flow_year
    assert row["gaining"] == "0001 Place 0001" and row["losing"] == "0002 Place 0002"
    assert abs(row["gained"] - moved) < 0.15 * moved
    assert abs(row["lost"] - moved) < 0.15 * moved


def test_a_steady_panel_has_no_suspects():
    rng = np.random.default_rng(11)
    totals = {f"{i:04d}": _growth(10_000 + 5_000 * i, 50 * i, rng) for i in range(1, 9)}
    county = {code: "01" for code in totals}
    assert suspected_border_transfers(_panel(totals, county)).empty


def _cells(rng: np.random.Generator, n_mun: int) -> xr.DataArray:
    """Whole persons ``(municipality, year, age, sex)`` growing by about 1 % a year."""
    base = rng.integers(0, 400, size=(n_mun, 1, 20, 2)).astype(float)
    growth = 1.01 ** np.arange(YEARS.size)[None, :, None, None]
    values = np.round(base * growth + rng.integers(0, 3, size=(n_mun, YEARS.size, 20, 2)))
    return xr.DataArray(
        values,
        dims=("municipality", "year", "age", "sex"),
        coords={
            "municipality": [f"{i:04d}" for i in range(1, n_mun + 1)],
            "year": YEARS,
            "age": np.arange(20),
            "sex": ["female", "male"],
        },
    )


def test_a_known_transfer_is_moved_onto_the_later_border():
    from vekst.data.border_transfers import BorderTransfer
    from vekst.data.build_sources import BuildLog, move_border_transfers

    rng = np.random.default_rng(3)
    pop = _cells(rng, 4)
    transfer = BorderTransfer(2014, "0002", "0001", 900, "an area", "a test")
    # The source's counts: the area sits in 0002 until 1 January 2014, in 0001 after.
    share = 900.0 / float(pop.sel(municipality="0002", year=2013).sum())
    raw = pop.copy()
    raw.loc[{"municipality": "0002", "year": YEARS >= 2014}] *= 1 - share
    raw.loc[{"municipality": "0001", "year": YEARS >= 2014}] += (
        share * pop.sel(municipality="0002", year=YEARS >= 2014).values
    )
    raw = np.round(raw)
    county = {"0001": "01", "0002": "01", "0003": "02", "0004": "02"}
    found = suspected_border_transfers(
        xr.Dataset({"population": raw}).assign_coords(
            county=("municipality", [county[c] for c in raw["municipality"].values])
        )
    )
    rows = found[["year", "gaining", "losing"]].values.tolist()
    assert rows == [[2013, "0001 0001", "0002 0002"]]

    log = BuildLog()
    moved = move_border_transfers(raw, (transfer,), log)

    later = YEARS >= 2014
    np.testing.assert_array_equal(moved.sel(year=later), raw.sel(year=later))
    pair = ["0001", "0002"]
    np.testing.assert_array_equal(
        moved.sel(municipality=pair).sum("municipality"),
        raw.sel(municipality=pair).sum("municipality"),
    )
    np.testing.assert_array_equal(moved.sel(municipality=["0003", "0004"]),
                                  raw.sel(municipality=["0003", "0004"]))
    taken = raw.sel(municipality="0002") - moved.sel(municipality="0002")
    assert float(taken.sel(year=2013).sum()) == 900
    assert log.notes["border_transfers"]["0002->0001 (2014)"]["persons"] == 900
    assert np.all(taken.values >= 0) and np.all(moved.values >= 0)
    np.testing.assert_array_equal(taken.values, np.round(taken.values))
    # Every cell of every earlier year gives the same share, to the rounding of a person.
    before = raw.sel(municipality="0002", year=~later)
    assert float(np.abs(taken.sel(year=~later) - share * before).max()) <= 1.0
    # The mirrored jump is gone.
    corrected = xr.Dataset({"population": moved}).assign_coords(
        county=("municipality", [county[c] for c in moved["municipality"].values])
    )
    assert suspected_border_transfers(corrected).empty


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        ((2014, "0002", "0009", 100), "municipality 0009 is not in the panel"),
        ((2008, "0002", "0001", 100), "must hold the effective year and one before it"),
        ((2014, "0002", "0001", 10**7), "expected under a half"),
    ],
)
def test_a_transfer_the_panel_cannot_hold_is_refused(transfer, message):
    from vekst.data.border_transfers import BorderTransfer
    from vekst.data.build_sources import SourceFileError, move_border_transfers

    pop = _cells(np.random.default_rng(1), 2)
    with pytest.raises(SourceFileError, match=message):
        move_border_transfers(pop, (BorderTransfer(*transfer, "an area", "a test"),))


def test_the_embedded_panel_has_its_known_transfers_on_the_2024_borders():
    from vekst import load_default
    from vekst.commands.info import info_tables
    from vekst.data.border_transfers import KNOWN_TRANSFERS, BorderTransfer
    from vekst.data.build_sources import move_border_transfers

    panel = load_default()
    assert suspected_border_transfers(panel).empty
    tables = {str(table.title): table for table in info_tables(panel)}
    assert "Suspected border transfers" not in tables
    moved = tables["Border transfers moved onto the later borders"]
    assert moved.row_count == len(KNOWN_TRANSFERS)
    assert next(iter(moved.columns[1].cells)) == "3907 Sandefjord"
    assert list(moved.columns[3].cells) == [f"{t.persons:,}" for t in KNOWN_TRANSFERS]
    totals = panel["population"].sum(("age", "sex"))
    change = totals.diff("year")
    for transfer in KNOWN_TRANSFERS:
        for code in (transfer.losing, transfer.gaining):
            # The year of the move is an ordinary year, not a jump of hundreds of people.
            steps = change.sel(municipality=code).to_pandas()
            usual = steps.drop(transfer.effective).abs().max()
            assert abs(steps[transfer.effective]) <= usual, (code, steps.to_dict())

    # Undone (the area moved back before 2017), the 2016 jump shows again, in `vekst info`.
    back = BorderTransfer(2017, "3905", "3907", 2126, "Vear", "this test")
    undone = panel.copy()
    undone["population"] = move_border_transfers(panel["population"], (back,))
    found = suspected_border_transfers(undone)
    pair = found[(found["year"] == 2016) & found["gaining"].str.startswith("3905")]
    assert len(pair) == 1 and pair.iloc[0]["losing"].startswith("3907")
    titles = [str(table.title) for table in info_tables(undone)]
    assert "Suspected border transfers" in titles
