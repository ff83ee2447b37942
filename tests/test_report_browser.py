"""The report in a real browser: headless Chromium at desktop (1400 px) and phone (400 px).

Skipped with a message where no Chromium is installed (``.ci/run`` installs Debian's
``chromium``). Checks what a reader would notice: images that do not load, script errors,
anything wider than the screen, and a unit picker that does not change what is shown.
"""

import numpy as np
import pandas as pd
import pytest

from browser import find_browser, probe
from report_inputs import (
    make_attribution,
    make_housing_effect,
    make_inputs,
    make_panel,
    with_housing,
)
from vekst.report.html import ReportOptions, write_report

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium found (tried chromium, chromium-browser, google-chrome); install "
    "it (Debian: apt-get install chromium) to run the browser tests",
)


def _backtest():
    """A backtest table whose size classes and counties measured different coverage."""
    rows = [
        ("municipality", 2015, 4, size, "total", share)
        for size, share in (("all", 0.81), ("<2k", 0.83), ("50k+", 0.76))
    ]
    rows.append(("county", 2015, 4, "all", "total", 0.84))
    columns = ["level", "origin", "horizon", "size_class", "age_group", "coverage_80"]
    return pd.DataFrame(rows, columns=columns).assign(
        method="bayes", coverage_50=0.5, coverage_95=0.95, median_ape=2.0
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    # A fit with housing terms and a plan for two municipalities, the target among them.
    inputs = with_housing(make_inputs(make_panel()))
    # An official projection for one municipality that runs past the projection's end.
    official = pd.DataFrame(
        {
            "municipality": "4621",
            "vintage": 2020,
            "alternative": "MMMM",
            "year": [2020, 2030, 2040, 2050],
            "population": [1000.0, 1050.0, 1100.0, 1150.0],
        }
    )
    codes = [str(c) for c in inputs["projection"]["municipality"].values]
    # Norwegian, so the phone layout is tried with the longer labels.
    options = ReportOptions(
        dpi=40,
        lang="nb",
        official=official,
        housing_plan=make_housing_effect(codes, ["4621", "3203"]),
        backtest=_backtest(),
    )
    attribution = make_attribution(codes, np.arange(2022, 2041))
    return write_report(out, options=options, uncertainty=attribution, **inputs)


@pytest.mark.parametrize("width", [1400, 400])
def test_report_renders_cleanly_and_the_picker_works(page, width):
    result = probe(BROWSER, page, width=width, target="m4621")
    assert result["viewport"] == width
    assert result["errors"] == [] and result["stderr_errors"] == []
    # 2 national + the sources of the national band + the 3 largest municipalities x 4
    # (fan, pyramids, sources, drivers) + 2 rankings + coefficients, all decoded.
    assert result["images"] == 18 and result["broken"] == []
    assert result["page"] <= width, f"page is {result['page']} px wide at {width} px"
    assert result["wide"] == [], f"wider than the {width} px viewport: {result['wide']}"
    # 1 nation + 12 municipalities + 5 counties + 5 regions.
    assert result["options"] == 23
    assert result["before"] == "Norge"
    assert result["after"] == "Place 4621 (4621)"
    # The nation quotes the counties' measured coverage, a place of 1,000 its size class's.
    assert "fylkene" in result["caption_before"] and "84 %" in result["caption_before"]
    assert "under 2 000 innbyggere" in result["caption_after"]
    assert "83 %" in result["caption_after"]
    assert result["fan_changed"]
    # Fan chart, two pyramids, the drivers, the sources of the band and the housing plan.
    assert result["svgs"] == 6
    # The plan's box: hidden for the nation (no plan), shown for the planning place.
    assert result["housing_before"] is False and result["housing_after"] is True
    assert "Folketall 1. januar 2022" in result["keys"]
    # Header, 12 age groups and the total.
    assert result["table_rows"] == 14
    # Statistics Norway's line: the years 2020-2040 the chart spans, not 2050.
    assert result["official_points"] == 3
    assert result["official_right"] <= float(result["fan_width"])
