"""The report's backtest track record (vekst.report.bands) from a long backtest table."""

import re

import numpy as np
import pandas as pd

from vekst.report.bands import (
    age_group_coverage,
    aggregate_coverage,
    band_coverage,
    bands_section,
    coverage_notes,
    origins_like,
    read_backtest_notes,
    schedules_calibrated,
)


def _table():
    rng = np.random.default_rng(5)
    rows = []
    for origin in (2012, 2015):
        for horizon in (1, 2):
            for size in ("all", "<2k", "50k+"):
                rows.append(("municipality", origin, horizon, size, "total",
                             rng.uniform(0.7, 0.9)))
            for group in ("90+", "0", "20-29"):
                rows.append(("municipality", origin, horizon, "all", group,
                             rng.uniform(0.6, 0.9)))
            for level in ("county", "region"):
                rows.append((level, origin, horizon, "all", "total", rng.uniform(0.3, 0.5)))
    frame = pd.DataFrame(
        rows, columns=["level", "origin", "horizon", "size_class", "age_group", "coverage_80"]
    )
    frame["method"] = "bayes"
    frame["coverage_50"] = frame["coverage_80"] - 0.3
    frame["coverage_95"] = frame["coverage_80"] + 0.1
    frame["median_ape"] = 3.0
    return frame


def test_municipal_coverage_is_not_mixed_with_counties_and_regions():
    table = _table()
    coverage = band_coverage(table)
    municipal = table[(table.level == "municipality") & (table.age_group == "total")
                      & (table.size_class == "all")]
    expected = municipal.groupby("horizon")["coverage_80"].mean()
    np.testing.assert_allclose(coverage["all"].to_numpy(), expected.to_numpy())


def test_age_groups_and_aggregates_are_reported_at_the_longest_horizon():
    table = _table()
    ages = age_group_coverage(table)
    assert list(ages.index) == ["0", "20-29", "90+"]  # the planners' order
    cells = table[(table.age_group == "90+") & (table.horizon == 2)]
    assert np.isclose(ages.loc["90+", "coverage_80"], cells["coverage_80"].mean())
    aggregates = aggregate_coverage(table)
    county = table[(table.level == "county")].groupby("horizon")["coverage_80"].mean()
    np.testing.assert_allclose(aggregates["county"].to_numpy(), county.to_numpy())
    section = bands_section(band_coverage(table), "en", backtest=table)
    assert len(section["blocks"]) == 3
    assert "Labour-market regions" in section["blocks"][1]["html"]


def test_the_age_table_shows_the_chance_floor_of_its_horizon():
    table = _table()
    floor = pd.DataFrame(
        {
            "horizon": [2, 2, 1, 2],
            "size_class": ["all", "all", "all", "<2k"],
            "age_group": ["90+", "0", "90+", "90+"],
            "n": [10, 10, 10, 4],
            "floor_median_ape": [6.03, 8.78, 3.81, 12.8],
            "floor_mean_ape": [7.0, 10.0, 4.0, 15.0],
        }
    )
    section = bands_section(band_coverage(table), "en", backtest=table, floor=floor)
    html = section["blocks"][2]["html"]
    assert "Chance floor" in html and "6.0 %" in html and "8.8 %" in html
    assert "3.8 %" not in html and "12.8 %" not in html  # other horizon, other size
    assert "No method can go below it." in section["blocks"][2]["caption"]
    plain = bands_section(band_coverage(table), "nb", backtest=table)
    assert "Tilfeldighetsgulv" not in plain["blocks"][2]["html"]
    norsk = bands_section(band_coverage(table), "nb", backtest=table, floor=floor)
    assert "Tilfeldighetsgulv" in norsk["blocks"][2]["html"]


def test_the_age_table_says_how_the_model_compares_with_the_best_other_method(tmp_path):
    from vekst.report.bands import read_paired_comparison

    table = _table()
    paired = pd.DataFrame(
        {
            "horizon": [2, 2, 1],
            "age_group": ["90+", "20-29", "20-29"],
            "method": "bayes",
            "baseline": ["ols", "naive10", "ols"],
            "difference": [0.19, -0.3, -9.0],
            "lo": [0.02, -0.48, -10.0],
            "hi": [0.35, -0.15, -8.0],
            "verdict": ["worse", "better", "better"],
        }
    )
    path = tmp_path / "backtest_paired.csv"
    paired.to_csv(path, index=False)
    read = read_paired_comparison(path)
    assert read_paired_comparison(tmp_path / "missing.csv") is None
    section = bands_section(band_coverage(table), "en", backtest=table, paired=read)
    html = section["blocks"][2]["html"]
    assert "Against the best other method" in html
    assert "+0.19 (ols): worse" in html and "\u22120.30 (naive10): better" in html
    assert "9.00" not in html  # horizon 1 is not the table's horizon
    row_of_0 = next(row for row in html.split("<tr") if ">0<" in row)
    assert "–" in row_of_0  # no comparison for age 0: a dash, not a made-up verdict
    assert "resampling whole municipalities" in section["blocks"][2]["caption"]
    norsk = bands_section(band_coverage(table), "nb", backtest=table, paired=read)
    assert "Mot beste andre metode" in norsk["blocks"][2]["html"]
    assert "dårligere" in norsk["blocks"][2]["html"] and "0,19" in norsk["blocks"][2]["html"]


def _with_coverage(table, horizon, values):
    """The table with the 80 % coverage of the municipal totals at ``horizon`` set per
    size class (``values``: class -> share, the same in every origin)."""
    table = table.copy()
    for size, value in values.items():
        rows = (table.level == "municipality") & (table.age_group == "total")
        rows &= (table.size_class == size) & (table.horizon == horizon)
        table.loc[rows, "coverage_80"] = value
    return table


def test_each_fan_chart_quotes_the_coverage_of_its_own_kind_of_unit():
    table = _with_coverage(_table(), 2, {"all": 0.81, "<2k": 0.83, "50k+": 0.76})
    table.loc[(table.level == "county") & (table.horizon == 2), "coverage_80"] = 0.84
    notes = coverage_notes(table, "en")
    assert "81 %" in notes["all"] and "2 years ahead" in notes["all"]
    # A large municipality's chart states the 76 % its class measured, not the 81 % of all.
    assert "50,000 inhabitants and more" in notes["50k+"] and "76 %" in notes["50k+"]
    assert "under 2,000 inhabitants" in notes["<2k"] and "83 %" in notes["<2k"]
    assert "counties" in notes["nation"] and "84 %" in notes["nation"]
    # Age groups: the range measured at the longest horizon, with the groups at its ends.
    cells = table[(table.age_group != "total") & (table.horizon == 2)]
    shares = (100 * cells.groupby("age_group")["coverage_80"].mean()).round().astype(int)
    low, high = shares.idxmin(), shares.idxmax()
    assert f"{shares[low]} % of the time ({low})" in notes["ages"]
    assert f"to {shares[high]} % ({high})" in notes["ages"]
    norwegian = coverage_notes(table, "nb")
    assert "50 000 innbyggere og flere" in norwegian["50k+"] and "76 %" in norwegian["50k+"]


def test_the_intro_names_the_size_classes_whose_bands_are_too_narrow():
    narrow = _with_coverage(_table(), 2, {"all": 0.80, "<2k": 0.83, "50k+": 0.76})
    intro = bands_section(band_coverage(narrow), "en")["intro"]
    assert "municipalities of 50,000 inhabitants and more (76 %)" in intro
    assert "under 2,000" not in intro
    # Printed as 80 %, a class is not called too narrow.
    honest = _with_coverage(_table(), 2, {"all": 0.80, "<2k": 0.83, "50k+": 0.797})
    assert "holds for municipalities" not in bands_section(band_coverage(honest), "en")["intro"]


def _two_kinds_of_origins():
    """A backtest whose short-panel origins (2009, 2010) covered 95 % everywhere and whose
    calibrated origins (2013, 2014) covered 66 % in the largest class, with their notes as
    ``vekst backtest`` writes them."""
    frames = []
    for origin, share in ((2009, 0.95), (2010, 0.95), (2013, 0.66), (2014, 0.66)):
        table = _table().query("origin == 2012").assign(origin=origin)
        frames.append(_with_coverage(table, 2, {"all": share + 0.1 if share < 0.9 else share,
                                                "50k+": share}))
    table = pd.concat(frames, ignore_index=True)
    notes = {
        "settings": {"origins": [2009, 2010, 2013, 2014]},
        "origins": {
            "2009": {"converged": True, "schedule_calibrated_on": None},
            "2010": {"converged": True, "schedule_calibrated_on": None},
            "2013": {"converged": True, "schedule_calibrated_on": [2011, 2012]},
            "2014": {"converged": True, "schedule_calibrated_on": [2011, 2013]},
        },
    }
    return table, notes


def test_a_band_is_judged_by_the_origins_made_as_its_forecast_was(tmp_path):
    import json

    table, notes = _two_kinds_of_origins()
    path = tmp_path / "backtest_notes.json"
    path.write_text(json.dumps(notes))
    read = read_backtest_notes(path)
    assert read[2013]["schedule_calibrated_on"] == [2011, 2012] and 2009 in read
    assert read_backtest_notes(tmp_path / "missing.json") is None

    calibrated = origins_like(table, read, calibrated=True)
    assert calibrated.origins == (2013, 2014) and calibrated.others == (2009, 2010)
    assert np.isclose(calibrated.others_coverage, 0.95)
    notes_en = coverage_notes(calibrated.table, "en", calibrated)
    # The largest places quote the 66 % of forecasts made like this one, not the mean of
    # 66 % and 95 % over every origin, and say which origins those are.
    assert "66 %" in notes_en["50k+"] and "2013-2014" in notes_en["50k+"]
    assert "past years" not in notes_en["50k+"]
    intro = bands_section(band_coverage(calibrated.table), "en", origins=calibrated)["intro"]
    assert "origins 2013-2014, whose migration age schedules were calibrated" in intro
    assert "other origins (2009-2010) the bands held for 95 %" in intro
    norsk = coverage_notes(calibrated.table, "nb", calibrated)["50k+"]
    assert "startårene 2013-2014" in norsk and "66 %" in norsk

    short = origins_like(table, read, calibrated=False)
    assert short.origins == (2009, 2010)
    assert "95 %" in coverage_notes(short.table, "en", short)["50k+"]

    # Without the forecast's kind or the notes, every origin counts, in the old words.
    for whole in (origins_like(table, read, None), origins_like(table, None, True)):
        assert whole.origins == (2009, 2010, 2013, 2014) and whole.calibrated is None
        sentence = coverage_notes(whole.table, "en", whole)["50k+"]
        # The mean of 66, 66, 95 and 95 % (80.5 %), neither kind alone; the sentence
        # always ends with "(it should be 80 %)", so the measured figure is matched whole.
        assert "past years" in sentence
        assert re.search(r"band 8[01] % of the time", sentence), sentence


def test_the_forecast_says_whether_its_schedules_were_calibrated():
    import json

    import xarray as xr

    def projection(assumptions):
        return xr.Dataset(attrs={"assumptions": json.dumps(assumptions)})

    assert schedules_calibrated(projection({"migration_schedule_calibrated_on": [2018, 2021]}))
    assert schedules_calibrated(projection({"migration_schedule_calibrated_on": None})) is False
    assert schedules_calibrated(projection({"migration_schedule": "textbook"})) is None
    assert schedules_calibrated(xr.Dataset()) is None
