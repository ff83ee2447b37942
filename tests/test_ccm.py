"""The ccm<k> baseline: the planners' spreadsheet, checked against the accounting rules."""

import numpy as np
import pytest

from vekst.evaluate import BacktestError, ccm_projection, truncate_panel

ORIGIN = 2013


@pytest.fixture(scope="module")
def cut(default_panel):
    codes = ["4001", "4003", "4012", "4014", "4020", "4026", "0301"]
    panel = default_panel.sel(municipality=codes, year=slice(2005, 2017)).copy(deep=True)
    return truncate_panel(panel, ORIGIN)


def test_first_year_follows_survival_births_and_mean_migration(cut):
    from vekst.data.components import newborn_survival, survival_probability, survive
    from vekst.features import expected_births

    projected = ccm_projection(cut, ORIGIN, ORIGIN + 3, years=5)
    assert projected["year"].values.tolist() == [ORIGIN, ORIGIN + 1, ORIGIN + 2, ORIGIN + 3]
    assert projected.attrs["migration_years"] == list(range(ORIGIN - 5, ORIGIN))
    start = cut["population"].sel(year=ORIGIN).astype(float)
    np.testing.assert_array_equal(
        projected.sel(year=ORIGIN).transpose(*start.dims).values, start.values
    )
    # independent route: the components' xarray functions with the rates of ORIGIN - 1
    rates = cut["mortality_rate"].sel(year=ORIGIN - 1)
    survivors = survive(start, survival_probability(rates))
    migration = cut["net_migration"].sel(year=slice(ORIGIN - 5, ORIGIN - 1)).mean("year")
    following = (survivors + migration).transpose(*start.dims)
    got = projected.sel(year=ORIGIN + 1).transpose(*start.dims)
    older = got.sel(age=slice(1, None))
    expected_older = following.sel(age=slice(1, None)).clip(min=0)
    np.testing.assert_allclose(older.values, expected_older.values, rtol=1e-10, atol=1e-9)
    # births: national ASFR of ORIGIN - 1 x women (mean of the two stocks) x the
    # municipality's observed/expected births of the window
    window = list(range(ORIGIN - 5, ORIGIN))
    ratio = cut["births"].sel(year=window).sum("year") / expected_births(cut).sel(year=window).sum(
        "year"
    )
    women = 0.5 * (start.sel(sex="female") + following.sel(sex="female"))
    asfr = cut["fertility_rate"].sel(year=ORIGIN - 1).fillna(0.0)
    births = ratio * (women * asfr).sum("age")
    newborns = births * newborn_survival(rates).mean("sex")  # equal to 1e-4 across sexes
    age0 = got.sel(age=0).sum("sex") - migration.sel(age=0).sum("sex")
    np.testing.assert_allclose(age0.values, newborns.values, rtol=2e-4)


def test_a_municipality_losing_young_adults_keeps_losing_them(cut):
    # Oslo gains people in their twenties, most of the others lose them: the spreadsheet
    # carries each municipality's own age pattern of migration forward.
    projected = ccm_projection(cut, ORIGIN, ORIGIN + 1)
    migration = cut["net_migration"].sel(year=slice(ORIGIN - 5, ORIGIN - 1)).mean("year")
    young = migration.sel(age=slice(20, 24)).sum(("age", "sex"))
    change = projected.sel(year=ORIGIN + 1, age=slice(21, 25)).sum(("age", "sex")) - cut[
        "population"
    ].sel(year=ORIGIN, age=slice(20, 24)).sum(("age", "sex"))
    assert bool(np.all(np.sign(change.values) == np.sign(young.values)))
    assert float(young.sel(municipality="0301")) > 0 > float(young.sel(municipality="4014"))


def test_ccm_refuses_a_panel_without_migration_by_age(cut):
    with pytest.raises(BacktestError, match="net_migration"):
        ccm_projection(cut.drop_vars("net_migration"), ORIGIN, ORIGIN + 1)
    with pytest.raises(BacktestError, match="at least one calendar year"):
        ccm_projection(cut, 2005, 2006)
