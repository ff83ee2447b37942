"""Design matrix, net migration rate and centrality on a small hand-made panel."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.features import (
    FeatureError,
    MissingCentralityError,
    UnknownCovariateError,
    centrality,
    demographic_supply,
    design_matrix,
    employment_curve,
    net_migration_rate,
    region_centrality,
    vra,
    vra_split,
)

AGES = np.arange(106)
YEARS = list(range(2014, 2021))  # employment 2016-2019, commuting 2017-2019
CODES = ["0301", "3201", "3205", "3224"]


def make_panel(seed: int = 11) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    n, y = len(CODES), len(YEARS)
    pop = rng.integers(20, 200, size=(n, y, 106, 2)).astype(float)
    pop[0] *= 10  # Oslo is big: population weights must matter
    employed = np.full((n, y), np.nan)
    employed[:, 2:6] = rng.uniform(500, 1500, size=(n, 4))
    commuting = np.full((n, n, y), np.nan)
    commuting[:, :, 3:6] = rng.integers(0, 100, size=(n, n, 3)) + 500 * np.eye(n)[..., None]
    mortality = np.broadcast_to(
        np.minimum(np.exp(-9.5 + 0.09 * AGES), 0.9)[:, None, None], (106, 2, y)
    ).copy()
    net = rng.normal(0, 100, size=(n, y))
    net[:, -1] = np.nan
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), pop),
            "employed_workplace": (("municipality", "year"), employed),
            "commuting": (("municipality", "work_municipality", "year"), commuting),
            "mortality_rate": (("age", "sex", "year"), mortality),
            "net_migration_total": (("municipality", "year"), net),
        },
        coords={
            "municipality": CODES,
            "work_municipality": CODES,
            "year": YEARS,
            "age": AGES,
            "sex": ["female", "male"],
            "name": ("municipality", ["Oslo", "Bærum", "Lillestrøm", "Rælingen"]),
            "county": ("municipality", ["03", "32", "32", "32"]),
            "region": ("municipality", ["r1", "r1", "r2", "r2"]),
            "region_name": ("municipality", ["Oslo/Bærum", "Oslo/Bærum", "Romerike", "Romerike"]),
            "centrality": ("municipality", [1000.0, 950.0, 850.0, 700.0]),
        },
    )


@pytest.fixture(scope="module")
def rate() -> xr.DataArray:
    curve = employment_curve(AGES, 0.8, 19.0, 1.5, 63.0, 2.5)
    return xr.DataArray(
        np.stack([curve, curve], -1),
        dims=("age", "sex"),
        coords={"age": AGES, "sex": ["female", "male"]},
    )


def test_design_matrix_dims_coords_and_values(rate):
    panel = make_panel()
    x = design_matrix(panel, employment_rate=rate)
    assert x.dims == ("covariate", "municipality", "year")
    assert list(x["covariate"].values) == ["vra_0", "vra_1", "vra_2", "centrality", "ds"]
    assert list(x["municipality"].values) == CODES
    assert list(x["year"].values) == YEARS
    assert "percentage points" in str(x["units"].sel(covariate="vra_1").values)
    assert list(x["name"].values) == ["Oslo", "Bærum", "Lillestrøm", "Rælingen"]
    v = vra(panel)
    np.testing.assert_array_equal(x.sel(covariate="vra_1").values, v.sel(lag=1).values)
    c = centrality(panel)
    for year in YEARS:
        np.testing.assert_array_equal(x.sel(covariate="centrality", year=year).values, c.values)
    ds = demographic_supply(panel, rate)
    np.testing.assert_array_equal(x.sel(covariate="ds").values, ds.values)
    assert x.attrs["centrality_center"] == pytest.approx(0.875)
    np.testing.assert_allclose(x.attrs["ds_center_by_year"], ds.attrs["center"])
    assert "ds_center" not in x.attrs  # no single constant: DS is centred per year


def test_design_matrix_nan_exactly_where_inputs_are_missing(rate):
    panel = make_panel()
    panel["mortality_rate"].loc[{"year": 2015}] = np.nan
    x = design_matrix(panel, employment_rate=rate)
    # Job growth exists for 2017-2019 (employment 2016-2019).
    has_vra = {2017, 2018, 2019}
    for lag in (0, 1, 2):
        layer = x.sel(covariate=f"vra_{lag}")
        for year in YEARS:
            expected_present = (year - lag) in has_vra
            assert bool(layer.sel(year=year).notnull().all()) == expected_present, (lag, year)
            assert bool(layer.sel(year=year).isnull().all()) == (not expected_present)
    assert x.sel(covariate="centrality").notnull().all()
    ds = x.sel(covariate="ds")
    assert ds.sel(year=2015).isnull().all()
    assert ds.sel(year=[y for y in YEARS if y != 2015]).notnull().all()


def test_design_matrix_split_covariates_and_errors(rate):
    panel = make_panel()
    x = design_matrix(panel, covariates=["vra_own_0", "vra_neighbours_0", "vra_0"])
    np.testing.assert_allclose(
        x.sel(covariate="vra_own_0") + x.sel(covariate="vra_neighbours_0"),
        x.sel(covariate="vra_0"),
    )
    split = vra_split(panel)
    np.testing.assert_array_equal(
        x.sel(covariate="vra_own_0").values, split["own"].sel(lag=0).values
    )
    with pytest.raises(UnknownCovariateError, match=r"'jobs'.*vra_<lag>"):
        design_matrix(panel, covariates=["jobs"])


def test_net_migration_rate():
    panel = make_panel()
    rate = net_migration_rate(panel)
    pop = panel["population"].sel(municipality="3205", year=2016).sum()
    net = panel["net_migration_total"].sel(municipality="3205", year=2016)
    assert float(rate.sel(municipality="3205", year=2016)) == pytest.approx(float(100 * net / pop))
    assert rate.sel(year=2020).isnull().all()
    assert rate.dims == ("municipality", "year")
    by_age = panel["population"].isel(year=0, drop=True) * 0.0 + panel["net_migration_total"] / (
        106 * 2
    )
    other = panel.drop_vars("net_migration_total").assign(net_migration=by_age)
    xr.testing.assert_allclose(net_migration_rate(other), rate)
    with pytest.raises(FeatureError, match="net_migration"):
        net_migration_rate(panel.drop_vars("net_migration_total"))


def test_centrality_scaled_and_centred():
    panel = make_panel()
    c = centrality(panel)
    np.testing.assert_allclose(c.values, np.array([1000, 950, 850, 700]) / 1000 - 0.875)
    assert c.attrs["center"] == pytest.approx(0.875)
    assert list(c["name"].values)[3] == "Rælingen"
    weighted = centrality(panel, center="population", year=2016)
    pop = panel["population"].sel(year=2016).sum(("age", "sex")).values
    centre = float(np.sum(pop * np.array([1.0, 0.95, 0.85, 0.7])) / pop.sum())
    assert weighted.attrs["center"] == pytest.approx(centre)
    assert centrality(panel, center=0.5).values[0] == pytest.approx(0.5)


def test_region_centrality_is_population_weighted():
    panel = make_panel()
    rc = region_centrality(panel, 2018)
    pop = panel["population"].sel(year=2018).sum(("age", "sex")).values
    r2 = (pop[2] * 0.85 + pop[3] * 0.70) / (pop[2] + pop[3]) - 0.875
    assert float(rc.sel(region="r2")) == pytest.approx(r2)
    simple = (0.85 + 0.70) / 2 - 0.875
    assert float(rc.sel(region="r2")) != pytest.approx(simple)
    assert str(rc["region_name"].sel(region="r2").values) == "Romerike"


def test_missing_centrality_names_municipality():
    panel = make_panel()
    panel = panel.assign_coords(centrality=("municipality", [1000.0, np.nan, 850.0, 700.0]))
    with pytest.raises(MissingCentralityError, match=r"3201 \(Bærum\)"):
        centrality(panel)
    with pytest.raises(MissingCentralityError, match="centrality"):
        centrality(panel.drop_vars("centrality"))


def test_real_design_matrix_nan_pattern(default_panel):
    x = design_matrix(default_panel)
    assert x.shape == (5, 357, 18)
    present = x.notnull().sum("municipality").to_pandas()
    years = list(range(2005, 2023))
    expected = {
        # VRA of 2018-2021 (employment 2017-2021); Rindal's 2019 employment is missing.
        "vra_0": {2018: 357, 2019: 356, 2020: 356, 2021: 357},
        "vra_1": {2019: 357, 2020: 356, 2021: 356, 2022: 357},
        "vra_2": {2020: 357, 2021: 356, 2022: 356},
        "centrality": dict.fromkeys(years, 357),
        "ds": {y: 357 for y in years if y <= 2021},  # m(x) ends in 2021
    }
    for name, counts in expected.items():
        assert present.loc[name].to_dict() == {y: counts.get(y, 0) for y in years}, name
    rate = net_migration_rate(default_panel)
    assert rate.sel(year=slice(2005, 2021)).notnull().all()
    assert rate.sel(year=2022).isnull().all()
    assert abs(float(rate.sel(year=slice(2005, 2021)).median())) < 2
