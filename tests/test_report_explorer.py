"""The explorer's numbers: every unit, sums taken draw by draw, only what was estimated."""

import numpy as np
import pandas as pd
import pytest

from report_inputs import CODES, make_inputs, make_panel
from vekst.report.explorer import FIVE_YEAR_GROUPS, explorer_data
from vekst.report.i18n import STRINGS, fmt_number, fmt_signed


@pytest.fixture(scope="module")
def inputs():
    return make_inputs(make_panel())


@pytest.fixture(scope="module")
def data(inputs):
    official = pd.DataFrame(
        {
            "municipality": ["4621"] * 3 + ["4621"] * 3,
            "vintage": [2020] * 3 + [2022] * 3,
            "alternative": ["MMMM"] * 6,
            "year": [2025, 2030, 2040] * 2,
            "age_group": ["total"] * 6,
            "population": [900.0, 950.0, 990.0, 1000.0, 1050.0, 1100.0],
        }
    )
    return explorer_data(
        inputs["panel"],
        inputs["projection"],
        decomposition=inputs["decomposition"],
        official=official,
        lang="nb",
    )


def test_every_municipality_county_and_region_is_a_unit(data, inputs):
    kinds = [u["kind"] for u in data["units"]]
    assert kinds.count("nation") == 1 and kinds[0] == "nation"
    assert sorted(u["code"] for u in data["units"] if u["kind"] == "municipality") == sorted(CODES)
    panel = inputs["panel"]
    assert {u["code"] for u in data["units"] if u["kind"] == "county"} == set(
        panel["county"].values
    )
    assert {u["name"] for u in data["units"] if u["kind"] == "region"} == set(
        panel["region_name"].values
    )
    assert set(data["data"]) == {u["id"] for u in data["units"]}


def test_county_bands_come_from_summed_draws(data, inputs):
    totals = inputs["projection"]["population_total"]
    county = "32"
    members = [c for c in CODES if c.startswith(county)]
    summed = totals.sel(municipality=members).sum("municipality").isel(year=-1).values
    fan = data["data"][f"c{county}"]["fan"]
    levels = data["fan_levels"]
    for i, level in enumerate(levels):
        assert abs(fan[i][-1] - np.quantile(summed, level)) <= 0.5
    # Adding the members' 10 % quantiles would give a lower bound far below the sum's.
    added = sum(
        np.quantile(totals.sel(municipality=c).isel(year=-1).values, 0.10) for c in members
    )
    assert fan[levels.index(0.10)][-1] > added


def test_age_table_and_pyramid_add_up_to_the_total(data, inputs):
    entry = data["data"]["m4621"]
    base_index = data["table_years"].index(data["base"])
    # The base year is observed: every quantile of the groups sums to the total.
    groups_sum = sum(entry["ages"][1][base_index])
    assert abs(groups_sum - entry["fan"][3][0]) <= len(data["age_groups"])
    observed = inputs["panel"]["population"].sel(municipality="4621", year=data["base"])
    assert sum(sum(row) for row in entry["pyramid_observed"]) == pytest.approx(
        float(observed.sum()), abs=len(FIVE_YEAR_GROUPS)
    )
    assert set(entry["pyramid"]) == {"2030", "2040"}


def test_drivers_leave_out_what_was_not_estimated(data, inputs):
    # The synthetic panel has no observed deaths (as the embedded data).
    assert "deaths" not in inputs["panel"]
    assert "mortality_deviation" not in data["component_keys"]
    assert data["component_keys"][-1] == "total"
    entry = data["data"]["m0301"]["drivers"]
    assert len(entry) == len(data["component_keys"])
    mean_without_total = sum(row[0] for row in entry[:-1])
    assert entry[-1][0] == pytest.approx(mean_without_total, abs=0.1 * len(entry))


def test_latest_official_vintage_is_attached(data):
    official = data["data"]["m4621"]["official"]
    assert official["vintage"] == 2022
    assert official["values"] == [1000, 1050, 1100]
    assert "official" not in data["data"]["m0301"]


def test_every_label_exists_in_both_languages():
    for key, texts in STRINGS.items():
        assert set(texts) == {"nb", "en"}, key
        assert all(text.strip() for text in texts.values()), key


def test_numbers_follow_the_language():
    assert fmt_number(1234567.25, "en", 1) == "1,234,567.2"
    assert fmt_number(1234567.25, "nb", 1) == "1\u202f234\u202f567,2"
    assert fmt_signed(-0.4, 2, "nb") == "\u22120,40"
    assert fmt_number(float("nan"), "nb") == "–"


def test_figure_labels_are_translated_in_place():
    from matplotlib.figure import Figure

    from vekst.report.i18n import translate_figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="Median projection")
    ax.set_xlabel("Year")
    ax.legend()
    translate_figure(fig, "en")
    assert ax.get_xlabel() == "Year"
    translate_figure(fig, "nb")
    assert ax.get_xlabel() == "År"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Median framskriving"]
