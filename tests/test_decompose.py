"""Growth decomposition: components add up to growth; each term is what it claims."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.decompose import (
    COMPONENTS,
    DecompositionError,
    decompose_history,
    decompose_projection,
    decomposition_summary,
)
from vekst.projection import make_test_draws, project
from vekst.projection.testing import toy_panel

BASE = 2020


@pytest.fixture(scope="module")
def panel():
    return toy_panel(5, (2012, BASE), n_regions=2, seed=9)


@pytest.fixture(scope="module")
def draws(panel):
    return make_test_draws(panel, 25, seed=4)


def test_projection_components_add_up_to_growth(panel, draws):
    projection = project(panel, draws, base_year=BASE, end_year=BASE + 6, seed=2)
    parts = decompose_projection(projection)
    assert list(parts["component"].values) == list(COMPONENTS)
    total = parts["contribution"].sum("component")
    # Growth straight from the stored single-age population, summed in float64.
    stock = projection["population"].astype(np.float64).sum(("age", "sex"))
    growth = stock.diff("year", label="lower").transpose("draw", "municipality", "year")
    np.testing.assert_allclose(total.values, growth.values, atol=0.5)
    np.testing.assert_allclose(parts["growth"].values, growth.values, atol=0.5)
    # Expected births and deaths have the sign of their effect on growth.
    assert float(parts["contribution"].sel(component="expected_births").min()) > 0
    assert float(parts["contribution"].sel(component="expected_deaths").max()) < 0
    # The attractiveness term is attractiveness (%) x population / 100.
    attract = parts["contribution"].sel(component="attractiveness").isel(year=0)
    population = projection["population_total"].isel(year=0)
    expected = draws["attractiveness"] * population / 100
    np.testing.assert_allclose(attract.values, expected.transpose(*attract.dims).values,
                               rtol=1e-5)


def test_projection_without_components_is_refused(panel, draws):
    projection = project(panel, draws, base_year=BASE, end_year=BASE + 2,
                         record_components=False)
    with pytest.raises(DecompositionError, match="record_components"):
        decompose_projection(projection)


def test_history_components_add_up_to_observed_growth(panel, draws):
    parts = decompose_history(panel, draws)
    total = parts["contribution"].sum("component")
    population = panel["population"].sum(("age", "sex"))
    years = parts["year"].values
    observed = (population.sel(year=years + 1).values - population.sel(year=years).values)
    np.testing.assert_allclose(total.values, np.broadcast_to(observed, total.shape), atol=1e-6)
    # Observed births enter as expected + deviation.
    births = parts["contribution"].sel(component=["expected_births", "fertility_deviation"])
    np.testing.assert_allclose(
        births.sum("component").isel(draw=0).values,
        panel["births"].sel(year=years).transpose("municipality", "year").values,
    )


def test_history_terms_use_year_specific_coefficients(panel, draws):
    from vekst.features import centrality

    years = np.arange(2013, BASE)
    year_effect = xr.DataArray(
        np.tile(np.linspace(-1, 1, len(years)), (draws.sizes["draw"], 1)),
        dims=("draw", "year"), coords={"year": years},
    )
    beta_year = draws["beta_mu"].expand_dims(year=years).transpose("draw", "covariate", "year")
    beta_year = beta_year.copy()
    beta_year.loc[dict(covariate="centrality", year=2015)] = 10.0
    with_years = draws.assign(year_effect=year_effect, beta_year=beta_year)
    parts = decompose_history(panel, with_years, years=years)
    population = panel["population"].sum(("age", "sex")).sel(year=years)
    national = parts["contribution"].sel(component="national_immigration").isel(draw=0)
    np.testing.assert_allclose(
        national.values, (year_effect.isel(draw=0) * population / 100).transpose(
            "municipality", "year").values
    )
    central = parts["contribution"].sel(component="centrality", year=2015).isel(draw=0)
    x = centrality(panel)
    np.testing.assert_allclose(
        central.values, (10.0 * x * population.sel(year=2015) / 100).values, rtol=1e-10
    )
    # Without year-specific draws the pooled means are used.
    pooled = decompose_history(panel, draws, years=years)
    mean_effect = draws["year_effect_mu"].isel(draw=0).item()
    np.testing.assert_allclose(
        pooled["contribution"].sel(component="national_immigration").isel(draw=0).values,
        (mean_effect * population / 100).transpose("municipality", "year").values,
    )
    # Own + neighbours' jobs together are sum_L beta_L x VRA_L.
    from vekst.features import design_matrix

    x_all = design_matrix(panel, covariates=["vra_0", "vra_1", "vra_2"]).fillna(0.0)
    jobs = pooled["contribution"].sel(component=["own_jobs", "neighbours_jobs"]).sum(
        "component").isel(draw=0)
    beta = draws["beta_mu"].isel(draw=0)
    expected = sum(
        beta.sel(covariate=c).item() * x_all.sel(covariate=c, year=years) for c in
        ("vra_0", "vra_1", "vra_2")
    ) * population / 100
    np.testing.assert_allclose(jobs.values, expected.transpose("municipality", "year").values,
                               atol=1e-9)


def test_summary_totals_and_places(panel, draws):
    projection = project(panel, draws, base_year=BASE, end_year=BASE + 4, seed=2)
    parts = decompose_projection(projection)
    frame = decomposition_summary(parts)
    totals = frame[frame["component"] == "total"].set_index("municipality")["mean"]
    growth = parts["growth"].mean(("draw", "year")).to_series()
    np.testing.assert_allclose(totals.loc[growth.index].to_numpy(), growth.to_numpy())
    nation = decomposition_summary(parts, by="nation").set_index("component")
    summed = parts["contribution"].sum("municipality").mean("year")
    for component in COMPONENTS:
        values = summed.sel(component=component).values
        assert nation.loc[component, "mean"] == pytest.approx(values.mean())
        assert nation.loc[component, "q10"] == pytest.approx(np.quantile(values, 0.1))
    per_year = decomposition_summary(parts, by="region", average=False)
    assert set(per_year["year"]) == set(parts["year"].values)


def test_history_with_fit_features_uses_their_years_and_values(panel, draws):
    from vekst.features import design_matrix

    covariates = [str(c) for c in draws["covariate"].values]
    x = design_matrix(panel, covariates=covariates).sel(year=slice(2015, 2018))
    available = x.notnull()
    # A fit's fit_data group: covariates as the model saw them, 0 where switched off.
    fit_data = xr.Dataset({"x": x.fillna(0.0), "x_available": available})
    parts = decompose_history(panel, draws, fit_data)
    assert parts["year"].values.tolist() == [2015, 2016, 2017, 2018]
    doubled = fit_data.assign(x=fit_data["x"] * 2)
    twice = decompose_history(panel, draws, doubled)
    for component in ("centrality", "ds"):
        np.testing.assert_allclose(
            twice["contribution"].sel(component=component),
            2 * parts["contribution"].sel(component=component),
        )
    total = twice["contribution"].sum("component")
    np.testing.assert_allclose(total, twice["growth"], atol=1e-6)


def test_housing_is_booked_as_its_own_driver(panel):
    from vekst.features.housing import housing_rate

    with_housing = panel.copy()
    rng = np.random.default_rng(5)
    completions = rng.poisson(10.0, (panel.sizes["municipality"], panel.sizes["year"]))
    values = completions.astype(float)
    values[-1] = np.nan  # no data: the term is off, so nothing is booked
    with_housing["dwellings_completed"] = (("municipality", "year"), values)
    draws = make_test_draws(
        with_housing, 6, seed=1, covariates=["centrality", "housing_0", "housing_1"],
        beta_mu=[[2.7, 0.08, 0.05]], beta_sigma=[[1.0, 0.0, 0.0]],
    )
    parts = decompose_history(with_housing, draws)
    years = parts["year"].values
    population = with_housing["population"].sum(("age", "sex")).sel(year=years)
    rate = housing_rate(with_housing, lags=[0, 1]).fillna(0.0).sel(year=years)
    expected = (0.08 * rate.sel(lag=0) + 0.05 * rate.sel(lag=1)) * population / 100
    housing = parts["contribution"].sel(component="housing").isel(draw=0)
    np.testing.assert_allclose(
        housing.values, expected.transpose("municipality", "year").values, rtol=1e-9
    )
    assert float(np.abs(housing.isel(municipality=-1)).max()) == 0.0
