"""Sparse (coordinate list) commuting: same numbers as the dense matrix everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.data.commuting_flows import (
    FLOW_DIM,
    HOME,
    WORK,
    YEAR,
    commuting_matrix,
    commuting_years,
    complete_commuting_matrix_years,
    is_sparse_commuting,
    to_dense_commuting,
    to_sparse_commuting,
)
from vekst.data.panel import PanelValidationError, describe_availability, validate_panel
from vekst.evaluate import truncate_panel
from vekst.features import commuting_shares, design_matrix, vra, vra_split
from vekst.features.errors import CommutingCoverageError
from vekst.projection import make_test_draws, project
from vekst.projection.testing import toy_panel


def _dense_values(panel: xr.Dataset) -> np.ndarray:
    return panel["commuting"].transpose("municipality", "work_municipality", "year").values


def test_toy_panel_layouts_hold_the_same_matrix():
    dense = toy_panel(7, sparse_commuting=False)
    sparse = toy_panel(7, sparse_commuting=True)
    assert is_sparse_commuting(sparse) and not is_sparse_commuting(dense)
    assert "work_municipality" not in sparse.dims
    # Every cell, NaN (the last year) included, bit for bit.
    np.testing.assert_array_equal(
        _dense_values(to_dense_commuting(sparse)), _dense_values(dense), strict=True
    )
    # Only non-zero flows are listed: 7 at home + 6 to the first unit, 17 flow years.
    assert sparse.sizes[FLOW_DIM] == 13 * 17
    # Dense -> sparse -> dense is the identity.
    back = to_dense_commuting(to_sparse_commuting(dense))
    np.testing.assert_array_equal(_dense_values(back), _dense_values(dense), strict=True)
    xr.testing.assert_identical(
        dense.drop_vars(["commuting", "work_municipality"]), sparse.drop_dims(FLOW_DIM)
    )
    validate_panel(sparse, code_vintage=None)


def test_toy_panel_is_sparse_from_the_threshold(monkeypatch):
    import vekst.projection.testing as testing

    monkeypatch.setattr(testing, "SPARSE_FROM", 5)
    assert is_sparse_commuting(toy_panel(5))
    assert not is_sparse_commuting(toy_panel(4))


def test_real_panel_with_gaps_gives_the_same_features_sparse(default_panel):
    """The embedded panel has NaN cells (Rindal 2019): missing rows, columns, years."""
    sparse = to_sparse_commuting(default_panel)
    assert sparse["commuting"].size < 0.1 * default_panel["commuting"].size
    assert commuting_years(sparse) == commuting_years(default_panel)
    assert complete_commuting_matrix_years(sparse) == complete_commuting_matrix_years(
        default_panel
    )
    assert describe_availability(sparse)["commuting"] == describe_availability(
        default_panel
    )["commuting"]
    for options in ({"on_incomplete": "nan"}, {"denominator": "employed_residence"}):
        dense_vra = vra(default_panel, **options)
        xr.testing.assert_allclose(vra(sparse, **options), dense_vra, rtol=0, atol=1e-12)
        assert dense_vra.notnull().any()
    xr.testing.assert_allclose(
        vra_split(sparse, on_incomplete="nan"),
        vra_split(default_panel, on_incomplete="nan"),
        rtol=0,
        atol=1e-12,
    )
    for year in commuting_years(default_panel):
        xr.testing.assert_allclose(
            commuting_shares(sparse, year, on_incomplete="nan"),
            commuting_shares(default_panel, year, on_incomplete="nan"),
            rtol=0,
            atol=1e-15,
        )
    xr.testing.assert_allclose(
        design_matrix(sparse), design_matrix(default_panel), rtol=0, atol=1e-12
    )
    # The incomplete year raises the same error, naming the same municipality.
    complete = complete_commuting_matrix_years(default_panel)
    gap = next(y for y in commuting_years(default_panel) if y not in complete)
    messages = []
    for panel in (default_panel, sparse):
        with pytest.raises(CommutingCoverageError) as error:
            commuting_shares(panel, gap)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_vra_of_a_sparse_panel_is_the_share_weighted_job_growth():
    """Against a plain dense computation, not the feature code."""
    panel = toy_panel(6, sparse_commuting=True)
    flows = _dense_values(to_dense_commuting(panel))
    employed = panel["employed_workplace"].transpose("municipality", "year").values
    growth = 100 * (employed[:, 1:] / employed[:, :-1] - 1)
    national = 100 * (employed[:, 1:].sum(0) / employed[:, :-1].sum(0) - 1)
    ra = growth - national[None]
    year = 2012
    j = int(year - panel["year"].values[0])
    shares = flows[:, :, j] / flows[:, :, j].sum(1, keepdims=True)
    expected = shares @ ra[:, j - 1]
    got = vra(panel, lags=(0,)).sel(lag=0, year=year).values
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_projection_of_a_sparse_panel_is_identical():
    dense = toy_panel(6, sparse_commuting=False)
    sparse = toy_panel(6, sparse_commuting=True)
    draws = make_test_draws(dense, 3, seed=4)
    a = project(dense, draws, end_year=2030, seed=5)
    b = project(sparse, draws, end_year=2030, seed=5)
    np.testing.assert_array_equal(a["population"].values, b["population"].values)
    assert a.attrs == b.attrs


def test_truncation_and_selection_keep_later_and_foreign_flows_out():
    panel = toy_panel(6, sparse_commuting=True).drop_vars(["net_migration", "net_migration_total"])
    cut = truncate_panel(panel, 2015)
    assert int(cut[YEAR].max()) == 2014
    validate_panel(cut, code_vintage=None)
    dense_cut = truncate_panel(to_dense_commuting(panel), 2015)
    xr.testing.assert_allclose(vra(cut), vra(dense_cut), rtol=0, atol=1e-12)
    # A selection of years or homes leaves entries behind; the accessor ignores them.
    early = panel.isel(year=slice(0, 10))
    assert commuting_years(early) == list(range(2005, 2015))
    some = panel.isel(municipality=[1, 3])
    matrix = commuting_matrix(some, 2010)
    assert matrix.flows.shape[0] == 2
    assert list(matrix.work_codes) == ["3002", "3004", "3001"]
    expected = _dense_values(to_dense_commuting(panel))[[1, 3]][:, [1, 3, 0], 5]
    np.testing.assert_array_equal(matrix.flows.toarray(), expected)


def _with_entry(panel: xr.Dataset, home: str, work: str, year: int, value: float):
    extra = xr.DataArray(
        [value],
        dims=(FLOW_DIM,),
        coords={HOME: (FLOW_DIM, [home]), WORK: (FLOW_DIM, [work]), YEAR: (FLOW_DIM, [year])},
    )
    out = panel.drop_dims(FLOW_DIM)
    out["commuting"] = xr.concat([panel["commuting"], extra], dim=FLOW_DIM)
    out["commuting"].attrs = dict(panel["commuting"].attrs)
    return out


@pytest.mark.parametrize(
    ("home", "work", "year", "value", "words"),
    [
        ("3002", "3003", 2010, -4.0, ["negative", "home 3002, work 3003, year 2010"]),
        ("3002", "3003", 2010, 4.5, ["whole number", "home 3002, work 3003, year 2010"]),
        ("3002", "3003", 2022, 4.0, ["last stock year", "2022"]),
        ("3002", "3002", 2010, 4.0, ["twice", "home 3002, work 3002, year 2010"]),
        ("3002", "9999", 2010, 4.0, ["9999"]),
    ],
)
def test_bad_sparse_entries_are_named(home, work, year, value, words):
    panel = _with_entry(toy_panel(4, sparse_commuting=True), home, work, year, value)
    with pytest.raises(PanelValidationError) as error:
        validate_panel(panel, code_vintage=None, source="toy.nc")
    for word in ["toy.nc", *words]:
        assert word in str(error.value)


def test_sparse_panel_without_coordinates_is_rejected():
    panel = toy_panel(4, sparse_commuting=True)
    panel = panel.drop_vars(WORK)
    with pytest.raises(PanelValidationError, match="commuting_work"):
        validate_panel(panel, code_vintage=None)


def test_sparse_panel_round_trips_through_netcdf(tmp_path):
    from vekst.data.panel import load_panel

    panel = toy_panel(5, sparse_commuting=True)
    panel.to_netcdf(tmp_path / "panel.nc", engine="h5netcdf")
    loaded = load_panel(tmp_path / "panel.nc", code_vintage=None)
    assert is_sparse_commuting(loaded)
    xr.testing.assert_allclose(vra(loaded), vra(panel), rtol=0, atol=0)
