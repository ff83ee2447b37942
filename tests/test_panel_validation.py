"""validate_panel: every class of bad input is refused with a message that says where."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.data.panel import PanelValidationError, validate_panel

CODES = ["0301", "3201", "4601"]
NAMES = ["Oslo", "Bærum", "Bergen"]
YEARS = [2010, 2011, 2012]
AGES = np.arange(0, 6)
SEXES = ["female", "male"]


def _panel() -> xr.Dataset:
    rng = np.random.default_rng(0)
    pop = rng.integers(50, 500, size=(3, 3, len(AGES), 2)).astype(np.int32)
    coords = {"municipality": CODES, "year": YEARS, "age": AGES, "sex": SEXES}
    panel = xr.Dataset(
        {
            "population": (
                ("municipality", "year", "age", "sex"),
                pop,
                {"kind": "stock", "units": "persons", "derived": "no"},
            ),
            "employed_workplace": (
                ("municipality", "year"),
                np.array([[10.0, 11, np.nan]] * 3),
                {"kind": "flow", "units": "persons", "derived": "no"},
            ),
            "net_migration_total": (
                ("municipality", "year"),
                np.array([[1.5, -2.0, np.nan]] * 3),
                {"kind": "flow", "units": "persons", "derived": "yes"},
            ),
            "mortality_rate": (
                ("age", "sex", "year"),
                np.full((len(AGES), 2, 3), 0.01),
                {"kind": "rate", "units": "per person-year", "derived": "no"},
            ),
        },
        coords=coords,
    )
    return panel.assign_coords(
        name=("municipality", NAMES),
        county=("municipality", ["03", "32", "46"]),
        region=("municipality", ["005", "005", "070"]),
    )


def _error(panel: xr.Dataset, **kwargs) -> str:
    with pytest.raises(PanelValidationError) as info:
        validate_panel(panel, source="test.nc", **kwargs)
    return str(info.value)


def test_valid_panel_is_returned_unchanged():
    panel = _panel()
    assert validate_panel(panel) is panel


def test_missing_dimension():
    message = _error(_panel().sum("sex"))
    assert "test.nc" in message and "missing dimension" in message and "'sex'" in message


def test_missing_coordinate():
    message = _error(_panel().drop_vars("region"))
    assert "missing coordinate" in message and "'region'" in message


def test_missing_population():
    message = _error(_panel().drop_vars("population"))
    assert "'population'" in message and "required" in message


def test_wrong_sexes_and_ages():
    panel = _panel().assign_coords(sex=["f", "m"])
    assert "expected ['female', 'male']" in _error(panel)
    panel = _panel().assign_coords(age=AGES + 1)
    assert "'age' must run 0, 1, 2" in _error(panel)


def test_duplicate_codes():
    panel = _panel().assign_coords(municipality=["0301", "0301", "4601"])
    message = _error(panel)
    assert "duplicate municipality code" in message and "0301" in message


def test_codes_of_the_2020_vintage():
    panel = _panel().assign_coords(municipality=["0301", "3001", "4601"])
    message = _error(panel)
    assert "3001" in message and "2024 code vintage" in message and "harmonise" in message
    # The same codes are fine when the 2020 vintage is declared or the check is skipped.
    validate_panel(panel.assign_coords(municipality=["0301", "3001", "4601"]), code_vintage=2020)
    validate_panel(panel, code_vintage=None)


def test_codes_that_are_not_four_digits():
    panel = _panel().assign_coords(municipality=["301", "3201", "4601"])
    assert "['301']" in _error(panel) and "4-digit" in _error(panel)


def test_negative_counts_name_variable_municipality_and_year():
    panel = _panel()
    panel["population"].loc[{"municipality": "3201", "year": 2011, "age": 3, "sex": "male"}] = -4
    message = _error(panel)
    assert "'population' is negative (-4)" in message
    assert "municipality 3201 (Bærum)" in message and "year 2011" in message
    assert "age 3" in message and "sex male" in message


def test_fractional_observed_counts():
    panel = _panel()
    panel["employed_workplace"].loc[{"municipality": "4601", "year": 2010}] = 10.5
    message = _error(panel)
    assert "'employed_workplace' is not a whole number" in message
    assert "municipality 4601 (Bergen)" in message and "year 2010" in message
    assert "derived" in message
    panel["employed_workplace"].attrs["derived"] = "yes"
    validate_panel(panel)  # estimated counts may be fractional


def test_nan_population():
    panel = _panel()
    population = panel["population"].astype(float)
    population.loc[{"municipality": "0301", "year": 2012, "age": 0, "sex": "female"}] = np.nan
    panel["population"] = population
    message = _error(panel)
    assert "'population' is NaN" in message
    assert "municipality 0301 (Oslo)" in message and "year 2012" in message


def test_years_out_of_order():
    panel = _panel().isel(year=[0, 2, 1])
    message = _error(panel)
    assert "years out of order at 2012 -> 2011" in message and "sortby" in message


def test_flow_in_the_last_stock_year():
    panel = _panel()
    panel["net_migration_total"].loc[{"municipality": "3201", "year": 2012}] = 3.0
    message = _error(panel)
    assert "flow 'net_migration_total' has values in 2012" in message
    assert "last stock year" in message and "2013" in message


def test_rates_above_one():
    panel = _panel()
    panel["mortality_rate"].loc[{"age": 5, "sex": "male", "year": 2011}] = 12.0
    message = _error(panel)
    assert "'mortality_rate' is above 1 (12)" in message
    assert "age 5" in message and "year 2011" in message and "per 1,000" in message


def test_negative_rates():
    panel = _panel()
    panel["mortality_rate"].loc[{"age": 2, "sex": "female", "year": 2010}] = -0.1
    message = _error(panel)
    assert "'mortality_rate' is negative" in message and "age 2" in message
