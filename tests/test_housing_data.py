"""The shipped housing-completions table and the housing covariate built from it."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from vekst.data.housing import (
    HousingDataError,
    attach_completions,
    read_completions,
    read_source,
)
from vekst.features.housing import MissingHousingError, housing_rate

REAL = Path(
    os.environ.get(
        "VEKST_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    )
)
SOURCE = REAL / "telemark" / "bolig" / "fullforte_boliger_etter_boligtype.csv"
needs_source = pytest.mark.skipif(not SOURCE.is_file(), reason=f"{SOURCE} not available")


def _independent_sum(code: str, year: int) -> int:
    """Completions of one municipality-year summed straight from the source rows."""
    total = 0
    with SOURCE.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Kommunenummer"] == code and row["År"].endswith(str(year)):
                total += int(row["Antall"])
    return total


@needs_source
@pytest.mark.parametrize(("code", "year"), [("4001", 2010), ("4020", 2005), ("4036", 2021)])
def test_shipped_table_matches_the_source(code, year):
    shipped = read_completions()
    value = shipped.query("municipality == @code and year == @year")["completions"]
    assert value.size == 1
    assert int(value.iloc[0]) == _independent_sum(code, year)


@needs_source
def test_shipped_table_is_the_rebuilt_table_and_covers_telemark():
    shipped = read_completions()
    rebuilt = read_source(SOURCE)
    assert shipped.equals(rebuilt)
    assert sorted(shipped["municipality"].unique()) == sorted(
        {"4001", "4003", "4005", "4010", "4012", "4014", "4016", "4018", "4020", "4022",
         "4024", "4026", "4028", "4030", "4032", "4034", "4036"}
    )  # fmt: skip
    # Telemark total for 2001 as documented in PROVENANCE.md section 11.
    assert shipped.query("year == 2001")["completions"].sum() == 1029


def test_duplicate_building_type_is_refused(tmp_path):
    path = tmp_path / "bolig.csv"
    path.write_text(
        "Kommunenummer,År,Bygningstype,Antall\n"
        "4001,01.01.2010,Enebolig,5\n"
        "4001,01.01.2010,Enebolig,5\n"
    )
    with pytest.raises(HousingDataError, match="listed twice for municipality 4001 in 2010"):
        read_source(path)


def test_bad_count_names_the_row(tmp_path):
    path = tmp_path / "bolig.csv"
    path.write_text("Kommunenummer,År,Bygningstype,Antall\n4001,2010,Enebolig,-3\n")
    with pytest.raises(HousingDataError, match="municipality 4001"):
        read_source(path)


def test_default_panel_has_completions_only_in_telemark(default_panel):
    completions = default_panel["dwellings_completed"]
    observed = completions.notnull().any("year")
    codes = set(default_panel["municipality"].values[observed.values].astype(str))
    assert codes == set(read_completions()["municipality"])
    assert np.isnan(completions.sel(year=2022)).all()  # flows stop before the last stock


def test_housing_rate_is_per_thousand_and_lagged(default_panel):
    rate = housing_rate(default_panel, lags=[0, 1])
    center = rate.attrs["center"]
    population = float(default_panel["population"].sel(municipality="4003", year=2015).sum())
    completions = default_panel["dwellings_completed"].sel(municipality="4003", year=2015)
    expected = 1000 * float(completions)
    got = float(rate.sel(lag=0, municipality="4003", year=2015)) + center
    assert got == pytest.approx(expected / population)
    assert float(rate.sel(lag=1, municipality="4003", year=2016)) == float(
        rate.sel(lag=0, municipality="4003", year=2015)
    )
    assert rate.sel(lag=0, municipality="0301").isnull().all()


def test_missing_completions_are_a_clear_error(default_panel):
    panel = default_panel.drop_vars("dwellings_completed")
    with pytest.raises(MissingHousingError, match="attach_completions"):
        housing_rate(panel)
    assert "dwellings_completed" in attach_completions(panel)


def test_model_arrays_switch_the_housing_term_off_outside_telemark(default_panel):
    from vekst.models.data import migration_data
    from vekst.models.spec import load_spec, spec_from_dict

    raw = load_spec("models/housing.toml").to_dict()
    covariates = ["centrality", "housing_0", "housing_1"]
    raw["migration"]["covariates"] = covariates
    for table in ("beta_mu_mean", "beta_mu_sd", "beta_sigma_sd"):
        priors = raw["migration"]["priors"][table]
        raw["migration"]["priors"][table] = {c: priors[c] for c in covariates}
    data = migration_data(default_panel, spec_from_dict(raw))
    telemark = np.char.startswith(data.municipalities.astype(str), "40")
    for name in ("housing_0", "housing_1"):
        k = data.covariates.index(name)
        assert not data.x_available[k][~telemark].any()
        assert (data.x[k][~telemark] == 0).all()
    # Lag 1 needs the year before: unknown in the first migration year only.
    k = data.covariates.index("housing_1")
    assert not data.x_available[k][telemark, 0].any()
    assert data.x_available[k][telemark, 1:].all()
    # Centred on the observed cells: the same-year term averages 0 over Telemark.
    assert data.centers["housing_center"] > 0
    assert abs(np.mean(data.x[data.covariates.index("housing_0")][telemark])) < 1e-9


def test_panel_on_another_code_vintage_is_refused():
    from vekst.projection.testing import toy_panel

    panel = toy_panel(3, (2015, 2018), seed=1)  # 2020 codes (county 30)
    with pytest.raises(HousingDataError, match="2020 municipality codes"):
        attach_completions(panel)
