"""Residual-method net migration against the observed Telemark flows."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vekst.evaluate.observed_flows import (
    FlowFileError,
    agreement_summary,
    compare_net_migration,
    observed_age_groups,
    read_observed_flows,
)

REAL = Path(
    os.environ.get(
        "VEKST_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    )
)
FLOWS = REAL / "telemark" / "Flytting etter alder Telemark Panda.csv"
needs_source = pytest.mark.skipif(not FLOWS.is_file(), reason=f"{FLOWS} not available")


def test_age_groups_are_cut_at_the_last_observed_age():
    groups = observed_age_groups(70)
    assert groups[0] == ("0", 0, 0)
    assert groups[-1] == ("67-70", 67, 70)
    covered = [a for _, low, high in groups for a in range(low, high + 1)]
    assert covered == list(range(71))


@needs_source
def test_table_sums_the_file_and_the_panel(default_panel):
    observed = read_observed_flows(FLOWS, default_panel)
    table = compare_net_migration(default_panel, observed)
    row = table.query("municipality == '4001' and year == 2016 and age_group == '20-29'")
    raw = pd.read_csv(FLOWS, sep=";", encoding="utf-8-sig")
    ages = raw["Alder"].str.extract(r"^(\d+)")[0].astype(int)
    pick = raw[(raw["Region"] == "Porsgrunn") & (raw["År"] == 2016) & ages.between(20, 29)]
    expected = pick["Innflytting"].fillna(0).sum() - pick["Utflytting"].fillna(0).sum()
    assert float(row["observed_net"].iloc[0]) == expected
    residual = default_panel["net_migration"].sel(municipality="4001", year=2016, age=slice(20, 29))
    assert float(row["residual_net"].iloc[0]) == pytest.approx(float(residual.sum()))
    assert len(table) == 17 * 6 * len(observed_age_groups(70))


@needs_source
def test_residual_method_agrees_with_observed_flows_except_at_age_zero(default_panel):
    table = compare_net_migration(default_panel, read_observed_flows(FLOWS, default_panel))
    summary = agreement_summary(table).set_index("age_group")
    # Age 0 is 0 by construction in the residual; ages 1-49 track the register closely.
    # From 50 on, the residual's error from applying national mortality grows and the
    # agreement weakens (measured: correlation 0.40 at 50-66, 0.74 at 67-70).
    assert np.isnan(summary.loc["0", "correlation"])
    young = summary.loc[["1-5", "6-12", "13-15", "16-19", "20-29", "30-49"]]
    assert (young["correlation"] > 0.9).all(), young["correlation"]
    # Differences are small next to the gross flows the net balances.
    assert (young["mean_abs_difference"] < 0.1 * young["mean_gross_flow"]).all()
    assert summary.loc["50-66", "correlation"] > 0


def test_unknown_municipality_name_is_named(tmp_path, default_panel):
    path = tmp_path / "flows.csv"
    path.write_text(
        "År;Region;Alder;Utflytting;Innflytting;Nettoflytting\n2016;Kragerå;0 år;1;2;1\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowFileError, match="Kragerå"):
        read_observed_flows(path, default_panel)
