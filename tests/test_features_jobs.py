"""Relative job growth, commuting shares and VRA on small hand-made panels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.features import (
    CommutingCoverageError,
    EmptyCommutingRowError,
    MissingCommutingError,
    MissingEmploymentError,
    commuting_shares,
    commuting_year_map,
    national_job_growth,
    relative_job_growth,
    vra,
    vra_split,
)

CODES = ["0301", "3201", "3205", "3224"]
NAMES = ["Oslo", "Bærum", "Lillestrøm", "Rælingen"]
YEARS = [2016, 2017, 2018, 2019, 2020]
NAN = np.nan
# Employed by place of work, 4th quarter; 2020 is the last stock year, so flows are NaN.
EMPLOYED = np.array(
    [
        [1000.0, 1100.0, 1100.0, 1210.0, NAN],
        [500.0, 500.0, 550.0, 550.0, NAN],
        [200.0, 190.0, 190.0, 200.0, NAN],
        [100.0, 95.0, 100.0, 100.0, NAN],
    ]
)
# Home x work flows for 2017-2019; Rælingen (last) lives and works at home only.
FLOWS = np.array(
    [
        [900.0, 60.0, 40.0, 0.0],
        [150.0, 300.0, 50.0, 0.0],
        [50.0, 10.0, 140.0, 0.0],
        [0.0, 0.0, 0.0, 100.0],
    ]
)


def make_panel() -> xr.Dataset:
    n, y = len(CODES), len(YEARS)
    commuting = np.full((n, n, y), NAN)
    for j, year in enumerate(YEARS):
        if year in (2017, 2018, 2019):
            commuting[:, :, j] = FLOWS * (1.0 + 0.1 * (year - 2017))
    population = np.full((n, y, 106, 2), 10.0)
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), population),
            "employed_workplace": (("municipality", "year"), EMPLOYED.copy()),
            "employed_residence": (("municipality", "year"), EMPLOYED * 1.02),
            "commuting": (("municipality", "work_municipality", "year"), commuting),
        },
        coords={
            "municipality": CODES,
            "work_municipality": CODES,
            "year": YEARS,
            "age": np.arange(106),
            "sex": ["female", "male"],
            "name": ("municipality", NAMES),
            "county": ("municipality", ["03", "32", "32", "32"]),
            "region": ("municipality", ["a", "a", "b", "b"]),
        },
    )


def test_relative_job_growth_matches_hand_computation():
    ra = relative_job_growth(make_panel())
    # 2017: national 1885/1800 = +4.7222 %; Oslo +10 %, Bærum 0 %, Lillestrøm -5 %.
    national = 100 * (1885 / 1800 - 1)
    assert ra.sel(municipality="0301", year=2017) == pytest.approx(10 - national)
    assert ra.sel(municipality="3201", year=2017) == pytest.approx(0 - national)
    assert ra.sel(municipality="3205", year=2017) == pytest.approx(-5 - national)
    # 2019: national 2060/1940.
    national_2019 = 100 * (2060 / 1940 - 1)
    assert ra.sel(municipality="3205", year=2019) == pytest.approx(
        100 * (200 / 190 - 1) - national_2019
    )
    assert ra.attrs["units"] == "percentage points"
    assert ra.dims == ("municipality", "year")


def test_ra_is_nan_where_t_or_t_minus_1_is_missing():
    ra = relative_job_growth(make_panel())
    assert ra.sel(year=2016).isnull().all()  # no 2015
    assert ra.sel(year=2020).isnull().all()  # no 2020 employment


def test_employment_weighted_ra_is_zero_in_every_year():
    panel = make_panel()
    ra = relative_job_growth(panel)
    weights = panel["employed_workplace"].shift(year=1)
    for year in (2017, 2018, 2019):
        total = float((weights.sel(year=year) * ra.sel(year=year)).sum())
        assert abs(total) < 1e-9, year


def test_zero_employment_in_previous_year_gives_nan_not_zero():
    panel = make_panel()
    panel["employed_workplace"].loc[{"municipality": "3205", "year": 2017}] = 0.0
    ra = relative_job_growth(panel)
    assert np.isnan(float(ra.sel(municipality="3205", year=2018)))
    assert np.isfinite(ra.sel(municipality="0301", year=2018))


def test_national_job_growth_residence_uses_employed_residence():
    panel = make_panel()
    panel["employed_residence"].loc[{"municipality": "0301", "year": 2018}] = 2000.0
    growth = national_job_growth(panel, national="residence")
    before = 1.02 * 1885
    after = 2000.0 + 1.02 * (550 + 190 + 100)
    assert float(growth.sel(year=2018)) == pytest.approx(100 * (after / before - 1))
    assert float(national_job_growth(panel).sel(year=2018)) == pytest.approx(
        100 * (1940 / 1885 - 1)
    )


def test_missing_employment_variable_raises_named_error():
    panel = make_panel().drop_vars("employed_workplace")
    with pytest.raises(MissingEmploymentError, match="employed_workplace"):
        relative_job_growth(panel)


def test_requested_year_without_employment_names_year_and_available_years():
    with pytest.raises(MissingEmploymentError, match=r"2020.*2016-2019"):
        relative_job_growth(make_panel(), years=[2020])
    with pytest.raises(MissingEmploymentError, match="2015"):
        relative_job_growth(make_panel(), years=[2016])
    ok = relative_job_growth(make_panel(), years=[2018, 2019])
    assert list(ok["year"].values) == [2018, 2019]


def test_shares_rows_sum_to_one_and_match_flows():
    shares = commuting_shares(make_panel(), 2018)
    np.testing.assert_allclose(shares.sum("work_municipality"), 1.0)
    assert float(shares.sel(municipality="3201", work_municipality="0301")) == pytest.approx(
        150 / 500
    )
    assert shares.dims == ("municipality", "work_municipality")


def test_shares_over_employed_residents():
    panel = make_panel()
    shares = commuting_shares(panel, 2018, denominator="employed_residence")
    expected = FLOWS[1, 0] * 1.1 / (550 * 1.02)
    assert float(shares.sel(municipality="3201", work_municipality="0301")) == pytest.approx(
        expected
    )


def test_year_without_commuting_names_year_and_available_years():
    with pytest.raises(MissingCommutingError, match=r"2016.*2017-2019"):
        commuting_shares(make_panel(), 2016)
    with pytest.raises(MissingCommutingError, match="commuting"):
        commuting_shares(make_panel().drop_vars("commuting"), 2018)


def test_nan_row_raises_with_municipality_and_year_or_gives_nan_row():
    panel = make_panel()
    panel["commuting"].loc[{"municipality": "3205", "year": 2018}] = NAN
    with pytest.raises(CommutingCoverageError, match=r"2018.*3205 \(Lillestrøm\)"):
        commuting_shares(panel, 2018)
    shares = commuting_shares(panel, 2018, on_incomplete="nan")
    assert shares.sel(municipality="3205").isnull().all()
    assert shares.sel(municipality="0301").notnull().all()
    with pytest.raises(CommutingCoverageError, match="3205"):
        vra(panel, commuting_year=2018)
    forced = vra(panel, commuting_year=2018, on_incomplete="nan")
    assert np.isnan(float(forced.sel(lag=0, municipality="3205", year=2018)))
    assert np.isfinite(float(forced.sel(lag=0, municipality="3201", year=2018)))
    # Left to itself, vra() skips the incomplete 2018 matrix (nearest complete: 2017).
    automatic = vra(panel)
    assert (
        automatic.attrs["commuting_years"][list(automatic.attrs["job_growth_years"]).index(2018)]
        == 2017
    )
    assert np.isfinite(automatic.sel(lag=0, year=2018)).all()


def test_absent_work_municipality_column_is_named():
    panel = make_panel()
    panel["commuting"].loc[{"work_municipality": "3201", "year": 2019}] = NAN
    with pytest.raises(CommutingCoverageError, match=r"2019: work municipality 3201 \(Bærum\)"):
        commuting_shares(panel, 2019)
    assert commuting_year_map(panel, [2019]) == {2019: 2018}


def test_empty_row_raises_with_municipality_and_year_or_gives_nan_row():
    panel = make_panel()
    panel["commuting"].loc[{"municipality": "3224", "year": 2019}] = 0.0
    with pytest.raises(EmptyCommutingRowError, match=r"2019.*3224 \(Rælingen\)"):
        commuting_shares(panel, 2019)
    with pytest.raises(EmptyCommutingRowError, match="3224"):
        vra(panel)
    shares = commuting_shares(panel, 2019, on_incomplete="nan")
    assert shares.sel(municipality="3224").isnull().all()


def test_municipality_missing_from_work_axis_raises():
    panel = make_panel()
    trimmed = panel.drop_sel(work_municipality="3205")
    with pytest.raises(CommutingCoverageError, match=r"3205 \(Lillestrøm\)"):
        vra(trimmed)


def test_work_municipality_outside_panel_with_flows_raises():
    panel = make_panel()
    extra = panel["commuting"].isel(work_municipality=[0]).assign_coords(work_municipality=["9999"])
    commuting = xr.concat([panel["commuting"], extra], dim="work_municipality")
    panel = panel.drop_vars("commuting").drop_dims("work_municipality")
    panel["commuting"] = commuting
    with pytest.raises(CommutingCoverageError, match="9999"):
        vra(panel)


def test_home_only_municipality_has_vra_equal_to_own_ra():
    panel = make_panel()
    result = vra(panel)
    ra = relative_job_growth(panel)
    for year in (2017, 2018, 2019):
        assert float(result.sel(lag=0, municipality="3224", year=year)) == pytest.approx(
            float(ra.sel(municipality="3224", year=year))
        )


def test_vra_is_share_weighted_ra_by_hand():
    panel = make_panel()
    ra = relative_job_growth(panel).sel(year=2018)
    row = FLOWS[1] * 1.1
    expected = float(np.sum(row / row.sum() * ra.values))
    assert float(vra(panel).sel(lag=0, municipality="3201", year=2018)) == pytest.approx(expected)


def test_lag_convention():
    result = vra(make_panel())
    assert list(result["lag"].values) == [0, 1, 2]
    assert result.dims == ("lag", "municipality", "year")
    np.testing.assert_allclose(
        result.sel(lag=1, year=2019).values, result.sel(lag=0, year=2018).values
    )
    np.testing.assert_allclose(
        result.sel(lag=2, year=2020).values, result.sel(lag=0, year=2018).values
    )
    assert result.sel(lag=0, year=2020).isnull().all()
    assert result.sel(lag=1, year=2017).isnull().all()  # VRA 2016 needs 2015 employment


def test_commuting_year_map_same_nearest_and_override():
    panel = make_panel()
    assert commuting_year_map(panel, [2017, 2018, 2019]) == {2017: 2017, 2018: 2018, 2019: 2019}
    assert commuting_year_map(panel, [2015, 2016, 2020]) == {2015: 2017, 2016: 2017, 2020: 2019}
    assert commuting_year_map(panel, [2018], commuting_year=2019) == {2018: 2019}
    assert commuting_year_map(panel, [2017, 2018], commuting_year={2018: 2017}) == {
        2017: 2017,
        2018: 2017,
    }
    with pytest.raises(MissingCommutingError, match=r"2016.*2017-2019"):
        commuting_year_map(panel, [2018], commuting_year=2016)
    # Equidistant: the earlier matrix wins.
    panel["commuting"].loc[{"year": 2018}] = NAN
    assert commuting_year_map(panel, [2018]) == {2018: 2017}


def test_vra_records_and_uses_the_commuting_year():
    panel = make_panel()
    # Make 2018's flows very different so using the wrong matrix would show.
    panel["commuting"].loc[{"municipality": "3201", "year": 2018}] = [400.0, 0.0, 0.0, 100.0]
    result = vra(panel)
    assert dict(
        zip(result.attrs["job_growth_years"], result.attrs["commuting_years"], strict=True)
    ) == {2017: 2017, 2018: 2018, 2019: 2019}
    ra = relative_job_growth(panel).sel(year=2018)
    expected = 0.8 * float(ra.sel(municipality="0301")) + 0.2 * float(ra.sel(municipality="3224"))
    assert float(result.sel(lag=0, municipality="3201", year=2018)) == pytest.approx(expected)
    forced = vra(panel, commuting_year=2017)
    assert float(forced.sel(lag=0, municipality="3201", year=2018)) != pytest.approx(expected)


def test_unknown_destination_ra_nan_or_renormalised():
    panel = make_panel()
    panel["employed_workplace"].loc[{"municipality": "3205", "year": 2018}] = NAN
    ra = relative_job_growth(panel).sel(year=2018)
    assert np.isnan(float(ra.sel(municipality="3205")))
    strict = vra(panel, max_unknown_share=0.0).sel(lag=0, year=2018)
    assert np.isnan(float(strict.sel(municipality="0301")))  # 4 % work in 3205
    assert np.isfinite(float(strict.sel(municipality="3224")))  # nobody does
    default = vra(panel).sel(lag=0, year=2018)
    # Oslo: 4 % unknown <= 5 %: weighted RA over the known destinations, renormalised.
    known = FLOWS[0, :2]
    expected = float(np.sum(known * ra.values[:2]) / known.sum())
    assert float(default.sel(municipality="0301")) == pytest.approx(expected)
    # Bærum 10 %, Lillestrøm itself 70 % unknown: NaN, not zero.
    assert np.isnan(float(default.sel(municipality="3201")))
    assert np.isnan(float(default.sel(municipality="3205")))
    parts = vra_split(panel).sel(lag=0, year=2018)
    assert float(parts["unknown_share"].sel(municipality="0301")) == pytest.approx(0.04)
    assert float(parts["unknown_share"].sel(municipality="3224")) == 0.0
    assert float(
        parts["own"].sel(municipality="0301") + parts["neighbours"].sel(municipality="0301")
    ) == pytest.approx(expected)


def test_vra_split_parts_add_up_and_own_part_is_diagonal():
    panel = make_panel()
    parts = vra_split(panel)
    total = vra(panel)
    xr.testing.assert_allclose(parts["own"] + parts["neighbours"], total)
    ra = relative_job_growth(panel).sel(year=2019)
    own_share = FLOWS[0, 0] / FLOWS[0].sum()
    assert float(parts["own"].sel(lag=0, municipality="0301", year=2019)) == pytest.approx(
        own_share * float(ra.sel(municipality="0301"))
    )
    np.testing.assert_allclose(
        parts["neighbours"].sel(lag=0, municipality="3224", year=[2017, 2018, 2019]), 0.0
    )


# --- the embedded real panel ---------------------------------------------------------------


def test_real_panel_weighted_ra_zero_and_rows_sum_to_one(default_panel):
    ra = relative_job_growth(default_panel)
    weights = default_panel["employed_workplace"].astype(float).shift(year=1)
    for year in (2018, 2019, 2020, 2021):
        both = ra.sel(year=year).notnull()
        total = float((weights.sel(year=year) * ra.sel(year=year)).where(both).sum())
        assert abs(total) < 1e-6 * float(weights.sel(year=year).sum()), year
    for year in (2017, 2018, 2020, 2021):
        np.testing.assert_allclose(
            commuting_shares(default_panel, year).sum("work_municipality"), 1.0, rtol=1e-12
        )


def test_real_panel_rindal_2019_gap(default_panel):
    # SSB's 2019 files lack Rindal (moved county in 2019): named error, not zeros.
    with pytest.raises(CommutingCoverageError, match=r"2019: work municipality 5061 \(Rindal\)"):
        commuting_shares(default_panel, 2019)
    result = vra(default_panel)
    mapping = dict(
        zip(result.attrs["job_growth_years"], result.attrs["commuting_years"], strict=True)
    )
    assert mapping == {2018: 2018, 2019: 2018, 2020: 2020, 2021: 2021}
    lag0 = result.sel(lag=0, year=[2018, 2019, 2020, 2021]).to_series()
    assert set(lag0[lag0.isna()].index) == {("5061", 2019), ("5061", 2020)}
    parts = vra_split(default_panel).sel(lag=0, year=2019)
    surnadal = float(parts["unknown_share"].sel(municipality="1566"))
    assert 0.01 < surnadal < 0.05  # renormalised, so its VRA is kept
    assert float(parts["unknown_share"].sel(municipality="5061")) > 0.5
