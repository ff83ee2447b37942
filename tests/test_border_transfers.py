"""Border transfers left in a panel's counts are found, and only mirrored jumps are."""

from __future__ import annotations

import numpy as np
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


def test_the_embedded_panel_shows_the_2017_transfer_from_sandefjord_to_tonsberg():
    from vekst import load_default
    from vekst.commands.info import info_tables

    panel = load_default()
    totals = panel["population"].sum(("age", "sex"))
    # the jump itself, from the counts: +2,771 and -1,395 between 1 January 2016 and 2017
    jump = totals.sel(year=2017) - totals.sel(year=2016)
    assert float(jump.sel(municipality="3905")) > 2_500
    assert float(jump.sel(municipality="3907")) < -1_000

    found = suspected_border_transfers(panel)
    pair = found[(found["year"] == 2016) & found["gaining"].str.startswith("3905")]
    assert len(pair) == 1 and pair.iloc[0]["losing"].startswith("3907")

    titles = [str(table.title) for table in info_tables(panel)]
    assert "Suspected border transfers" in titles
