"""The report's backtest track record (vekst.report.bands) from a long backtest table."""

import numpy as np
import pandas as pd

from vekst.report.bands import (
    age_group_coverage,
    aggregate_coverage,
    band_coverage,
    bands_section,
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
