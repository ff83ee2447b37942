"""Expected births and deaths by indirect standardisation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.features import (
    MissingRateError,
    death_probability,
    expected_births,
    expected_deaths,
    vital_deviation,
)

AGES = np.arange(106)
YEARS = [2018, 2019, 2020]


def make_panel(seed: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    pop = rng.integers(0, 300, size=(3, len(YEARS), 106, 2)).astype(float)
    mortality = rng.uniform(0.0005, 0.3, size=(106, 2, len(YEARS)))
    fertility = np.full((106, len(YEARS)), np.nan)
    fertility[15:50] = rng.uniform(0.0, 0.15, size=(35, len(YEARS)))
    codes = ["3201", "3205", "3224"]
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), pop),
            "mortality_rate": (("age", "sex", "year"), mortality),
            "fertility_rate": (("age", "year"), fertility),
        },
        coords={
            "municipality": codes,
            "year": YEARS,
            "age": AGES,
            "sex": ["female", "male"],
            "name": ("municipality", ["Bærum", "Lillestrøm", "Rælingen"]),
        },
    )


def test_single_cohort_by_hand():
    panel = make_panel()
    panel["population"][:] = 0.0
    panel["population"].loc[{"municipality": "3224", "age": 30, "sex": "female"}] = [100, 120, 90]
    panel["fertility_rate"].loc[{"age": 30}] = [0.1, 0.2, 0.3]
    births = expected_births(panel, exposure="jan1")
    assert float(births.sel(municipality="3224", year=2019)) == pytest.approx(120 * 0.2)
    mean = expected_births(panel)
    assert float(mean.sel(municipality="3224", year=2018)) == pytest.approx(110 * 0.1)
    assert np.isnan(float(mean.sel(municipality="3224", year=2020)))  # no 1 Jan 2021 stock
    assert float(mean.sel(municipality="3201", year=2018)) == 0.0


def test_expected_births_sum_to_national_women_times_asfr():
    panel = make_panel()
    pop = panel["population"].values  # (m, t, a, s)
    women = pop[..., 0].sum(0)  # national women by year and age
    asfr = np.nan_to_num(panel["fertility_rate"].values.T)  # (t, a)
    national_jan1 = (women * asfr).sum(-1)
    national_mean = (0.5 * (women[:-1] + women[1:]) * asfr[:-1]).sum(-1)
    np.testing.assert_allclose(
        expected_births(panel, exposure="jan1").sum("municipality").values, national_jan1
    )
    np.testing.assert_allclose(
        expected_births(panel).sum("municipality").values[:-1], national_mean
    )


def test_expected_deaths_sum_to_national_population_times_mx():
    panel = make_panel()
    pop = panel["population"].values.sum(0)  # (t, a, s)
    mx = np.moveaxis(panel["mortality_rate"].values, -1, 0)  # (t, a, s)
    national = (pop * mx).sum((-2, -1))
    np.testing.assert_allclose(
        expected_deaths(panel, exposure="jan1").sum("municipality").values, national
    )
    mean = 0.5 * (pop[:-1] + pop[1:])
    np.testing.assert_allclose(
        expected_deaths(panel).sum("municipality").values[:-1],
        (mean * mx[:-1]).sum((-2, -1)),
    )
    out = expected_deaths(panel)
    assert out.dims == ("municipality", "year")
    assert out.attrs["units"] == "deaths"


def test_missing_rate_year_gives_nan_not_zero():
    panel = make_panel()
    panel["fertility_rate"].loc[{"year": 2019}] = np.nan
    births = expected_births(panel, exposure="jan1")
    assert births.sel(year=2019).isnull().all()
    assert births.sel(year=2018).notnull().all()
    panel["mortality_rate"].loc[{"year": 2018, "age": 70, "sex": "male"}] = np.nan
    assert expected_deaths(panel, exposure="jan1").sel(year=2018).isnull().all()


def test_missing_rates_raise_named_error():
    with pytest.raises(MissingRateError, match="fertility_rate"):
        expected_births(make_panel().drop_vars("fertility_rate"))
    with pytest.raises(MissingRateError, match="mortality_rate"):
        expected_deaths(make_panel().drop_vars("mortality_rate"))


def test_vital_deviation():
    observed = xr.DataArray(
        [120.0, 0.0, 59.0], dims="municipality", coords={"municipality": ["a", "b", "c"]}
    )
    expected = xr.DataArray(
        [84.0, 3.0, 63.0], dims="municipality", coords={"municipality": ["a", "b", "c"]}
    )
    dev = vital_deviation(observed, expected)
    np.testing.assert_allclose(dev["difference"].values, [36.0, -3.0, -4.0])
    assert float(dev["log_ratio"].sel(municipality="a")) == pytest.approx(np.log(120 / 84))
    assert np.isnan(float(dev["log_ratio"].sel(municipality="b")))
    with pytest.raises(ValueError):
        vital_deviation(observed, expected.isel(municipality=[0, 1]))


def test_death_probability():
    m = xr.DataArray([0.0, 0.1, 1.0])
    np.testing.assert_allclose(death_probability(m).values, 1 - np.exp(-m.values))


def test_real_panel_expected_births_match_national_births(default_panel):
    # HFD rates x the panel's women reproduce HMD's national births (indirect
    # standardisation of the whole country must give back the country).
    expected = expected_births(default_panel).sum("municipality").sel(year=slice(2005, 2021))
    births = default_panel["births_national"].sum("sex").sel(hist_year=slice(2005, 2021))
    np.testing.assert_allclose(expected.values, births.values, rtol=0.002)
    assert expected_births(default_panel).sel(year=2022).isnull().all()


def test_real_panel_expected_deaths_plausible(default_panel):
    deaths = expected_deaths(default_panel).sum("municipality").sel(year=slice(2005, 2021))
    # HMD Deaths_1x1 (Norway), both sexes, 2005-2021: m(x) x the panel's person-years
    # must give back the deaths the rates were made from, up to exposure differences.
    hmd = [
        41232,
        41253,
        41954,
        41712,
        41449,
        41499,
        41393,
        41992,
        41282,
        40394,
        40727,
        40726,
        40774,
        40840,
        40684,
        40611,
        42002,
    ]
    np.testing.assert_allclose(deaths.values, hmd, rtol=0.005)
    per_capita = expected_deaths(default_panel).sel(year=2019) / default_panel["population"].sel(
        year=2019
    ).sum(("age", "sex"))
    # Old places expect more deaths per head than young ones.
    old = default_panel["population"].sel(year=2019, age=slice(80, 105)).sum(("age", "sex"))
    share_old = old / default_panel["population"].sel(year=2019).sum(("age", "sex"))
    assert np.corrcoef(per_capita.values, share_old.values)[0, 1] > 0.8
