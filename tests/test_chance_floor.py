"""The chance floor: what births' and deaths' chance alone costs a perfect forecaster."""

import numpy as np
import pytest
import xarray as xr

from vekst.errors import PanelError
from vekst.evaluate.chance import chance_floor, chance_variance

AGES = np.arange(101)  # 100 is the open age


def _panel(population: np.ndarray, rate: np.ndarray, years: list[int]) -> xr.Dataset:
    """Panel of ``population`` (municipality, year, age, sex) and national rates (age)."""
    n_mun = population.shape[0]
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), population),
            "mortality_rate": (
                ("age", "sex", "year"),
                np.broadcast_to(rate[:, None, None], (len(AGES), 2, len(years))).copy(),
            ),
        },
        coords={
            "municipality": [f"{i:04d}" for i in range(n_mun)],
            "year": years,
            "age": AGES,
            "sex": ["female", "male"],
        },
    )


def test_variance_is_poisson_for_the_newborn_and_binomial_for_survivors():
    years = [2000, 2001, 2002, 2003]
    population = np.zeros((2, 4, len(AGES), 2))
    population[:, 3, 1, 0] = 50.0  # born after the origin: Poisson
    population[:, 3, 92, :] = 30.0  # alive at the origin: binomial survival
    rate = np.full(len(AGES), 0.2)
    variance = chance_variance(_panel(population, rate, years), origin=2000, horizon=3)
    survival = np.exp(-0.2 * 3)  # constant rate: exp(-(m + m) / 2) a year
    assert variance.sel(age_group="1-5").values == pytest.approx([50.0, 50.0])
    assert variance.sel(age_group="90+").values == pytest.approx([60 * (1 - survival)] * 2)
    assert variance.sel(age_group="total").values == pytest.approx(
        [50 + 60 * (1 - survival)] * 2
    )
    assert float(variance.sel(age_group="30-49").sum()) == 0.0


def test_an_oracle_misses_by_the_floor():
    """Simulate chance births and deaths around known expectations: the forecaster who
    knows the expectations has a median APE equal to the floor computed from the outcome."""
    rng = np.random.default_rng(11)
    n_mun = 3000
    years = [2000, 2001]
    expected_births = rng.uniform(5.0, 120.0, n_mun)
    start_89 = rng.integers(8, 150, n_mun)
    rate = np.zeros(len(AGES))
    rate[85:] = 0.25
    survival = np.exp(-0.25)
    population = np.zeros((n_mun, 2, len(AGES), 2))
    population[:, 0, 89, 0] = start_89
    population[:, 1, 0, 0] = rng.poisson(expected_births)
    population[:, 1, 90, 0] = rng.binomial(start_89, survival)
    panel = _panel(population, rate, years)
    floor = chance_floor(panel, [2000], [1], n_sim=300, seed=3).set_index(
        ["age_group", "size_class"]
    )
    realised = population[:, 1, :, 0]
    for group, age, expectation in (
        ("0", 0, expected_births),
        ("90+", 90, start_89 * survival),
    ):
        keep = realised[:, age] > 0
        oracle = 100 * np.abs(realised[keep, age] - expectation[keep]) / realised[keep, age]
        computed = floor.loc[(group, "all"), "floor_median_ape"]
        assert computed == pytest.approx(np.median(oracle), rel=0.06), group
        assert floor.loc[(group, "all"), "n"] == keep.sum()
    # Age groups nobody is in have no cells; the rest of the table has one row per class.
    assert "30-49" not in floor.index.get_level_values("age_group")
    assert set(floor.index.get_level_values("size_class")) == {"all", "<2k"}


def test_missing_rates_or_years_are_named():
    years = [2000, 2001, 2002]
    population = np.ones((1, 3, len(AGES), 2))
    rate = np.full(len(AGES), 0.01)
    panel = _panel(population, rate, years)
    with pytest.raises(PanelError, match="no population for 2004"):
        chance_variance(panel, origin=2001, horizon=3)
    panel["mortality_rate"].loc[dict(year=2001)] = np.nan
    with pytest.raises(PanelError, match="mortality_rate for 2001"):
        chance_variance(panel, origin=2000, horizon=2)
    # Pairs beyond the panel are skipped, not an error.
    complete = _panel(population, rate, years)
    floor = chance_floor(complete, [2000, 2001], [1, 2, 5], n_sim=10)
    assert set(floor["horizon"]) == {1, 2}
