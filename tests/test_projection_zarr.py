"""Projections streamed to Zarr: exact round trip, lazy opening, all-or-nothing writes."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("zarr")
dask_array = pytest.importorskip("dask.array")

from vekst.projection import (  # noqa: E402
    age_group_summary,
    aggregate,
    make_test_draws,
    population_summary,
    project,
)
from vekst.projection.testing import toy_panel  # noqa: E402
from vekst.projection.zarr_store import (  # noqa: E402
    ZarrLayout,
    ZarrSink,
    open_projection,
    project_to_zarr,
    write_zarr,
)

BASE = 2022
# chunk_size 4 does not divide 25 draws: the last chunk of the store is a short one.
OPTIONS = {"base_year": BASE, "end_year": 2027, "seed": 3, "chunk_size": 4}


@pytest.fixture(scope="module")
def panel():
    return toy_panel(12, (2010, BASE), n_regions=3, seed=6)


@pytest.fixture(scope="module")
def draws(panel):
    return make_test_draws(panel, 25, seed=2)


@pytest.fixture(scope="module")
def in_memory(panel, draws):
    return project(panel, draws, **OPTIONS)


@pytest.fixture(scope="module")
def stored(panel, draws, tmp_path_factory):
    path = tmp_path_factory.mktemp("zarr") / "projection.zarr"
    layout = ZarrLayout(municipality_chunk=5)
    return project_to_zarr(panel, draws, path, layout=layout, **OPTIONS), path


def test_round_trip_equals_the_in_memory_projection(in_memory, stored, panel, draws):
    lazy, _ = stored
    assert in_memory.attrs["detail"] == "full"
    loaded = lazy.load()
    # The store also keeps the age groups, as an age-group projection computes them.
    grouped = project(panel, draws, **OPTIONS, detail="age_groups")
    xr.testing.assert_identical(
        loaded["population_age_group"], grouped["population_age_group"]
    )
    xr.testing.assert_identical(
        loaded.drop_vars(["population_age_group", "age_group"]), in_memory
    )


def test_uncompressed_store_holds_the_same_numbers(panel, draws, in_memory, tmp_path):
    import zarr

    path = tmp_path / "raw.zarr"
    lazy = project_to_zarr(panel, draws, path, layout=ZarrLayout(compressor="none"), **OPTIONS)
    assert zarr.open_array(path / "population").metadata.compressor is None
    xr.testing.assert_identical(lazy["population"].load(), in_memory["population"])
    with pytest.raises(ValueError, match="compressor"):
        ZarrLayout(compressor="gzip")


def test_store_opens_lazily_in_chunks_of_draws_and_municipalities(stored):
    _, path = stored
    lazy = open_projection(path)
    for name in ("population", "population_total", "births", "migration_components"):
        assert isinstance(lazy[name].data, dask_array.Array), name
    chunks = dict(zip(lazy["population"].dims, lazy["population"].chunks, strict=True))
    assert chunks["draw"] == (4, 4, 4, 4, 4, 4, 1)
    assert chunks["municipality"] == (5, 5, 2)
    assert len(chunks["age"]) == 1 and len(chunks["year"]) == 1


def test_summaries_of_the_lazy_store_equal_the_in_memory_ones(in_memory, stored):
    lazy = open_projection(stored[1])
    pd.testing.assert_frame_equal(population_summary(lazy), population_summary(in_memory))
    pd.testing.assert_frame_equal(age_group_summary(lazy), age_group_summary(in_memory))
    pd.testing.assert_frame_equal(
        aggregate(lazy, "region", age_groups=True), aggregate(in_memory, "region", age_groups=True)
    )


def test_a_failed_run_leaves_no_store_and_keeps_the_previous_one(
    panel, draws, tmp_path, monkeypatch
):
    path = tmp_path / "projection.zarr"
    project_to_zarr(panel, draws.isel(draw=slice(0, 6)), path, **OPTIONS)
    before = open_projection(path).load()
    original = ZarrSink.store

    def failing(self, draws_slice, t, population):
        if draws_slice.start >= 8:  # the third chunk of draws: two are on disk already
            raise RuntimeError("simulated crash")
        original(self, draws_slice, t, population)

    monkeypatch.setattr(ZarrSink, "store", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        project_to_zarr(panel, draws, path, **OPTIONS)
    # The earlier store is untouched and no half-written sibling is left behind.
    xr.testing.assert_identical(open_projection(path).load(), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projection.zarr"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        project_to_zarr(panel, draws, tmp_path / "new.zarr", **OPTIONS)
    assert not (tmp_path / "new.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projection.zarr"]


def test_age_group_projection_written_whole(panel, draws, tmp_path):
    grouped = project(panel, draws, detail="age_groups", **OPTIONS)
    write_zarr(grouped, tmp_path / "groups.zarr")
    xr.testing.assert_identical(open_projection(tmp_path / "groups.zarr").load(), grouped)


def test_cli_project_format_zarr(tmp_path, monkeypatch, panel):
    """`vekst project --format zarr` with the fit module's functions replaced by stand-ins."""
    from typer.testing import CliRunner

    import vekst
    from vekst.cli import app

    diagnostics = types.SimpleNamespace(converged=True, problems=())
    fake_fit = types.SimpleNamespace(
        load_fit=lambda path: types.SimpleNamespace(idata="idata", spec="spec"),
        check_fit_panel=lambda fit, panel: None,
        projection_draws=lambda idata, n_draws=None, seed=0: make_test_draws(panel, n_draws),
        require_converged=lambda idata, allow_unconverged=False: diagnostics,
        NotConvergedError=RuntimeError,
    )
    monkeypatch.setitem(__import__("sys").modules, "vekst.fit", fake_fit)
    monkeypatch.setattr(vekst, "load_default", lambda: panel)
    fit_file = tmp_path / "fit.nc"
    fit_file.write_text("stand-in")
    out = tmp_path / "out"
    args = ["project", "--fit", str(fit_file), "--end-year", "2025", "--draws", "7",
            "--chunk-size", "3", "--format", "zarr", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "projection.zarr").is_dir() and not (out / "projection.nc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc", "out"]
    stored = open_projection(out / "projection.zarr")
    assert stored.attrs["converged"] == "yes" and stored.attrs["fit_file"] == str(fit_file)
    assert stored.sizes["draw"] == 7 and stored.attrs["detail"] == "full"
    # The CSV's national medians are those of the stored single ages, summed per draw.
    nation = pd.read_csv(out / "nation.csv", encoding="utf-8-sig")
    summed = stored["population"].sum(("municipality", "age", "sex"), dtype=np.float64)
    expected = np.rint(summed.median("draw").values).astype(int)
    np.testing.assert_allclose(nation["q50"].to_numpy(), expected, atol=1)
    assert (out / "age_groups.csv").exists()
    # A second run replaces the folder it wrote.
    again = CliRunner().invoke(app, [*args[:-2], "--seed", "1", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc", "out"]


def test_a_failed_chunk_write_is_raised_not_lost(panel, draws, tmp_path, monkeypatch):
    """Chunks are written by a background thread; its error must reach the caller."""
    original = ZarrSink.start

    def start(self, *args, **kwargs):
        store = original(self, *args, **kwargs)
        array, groups = self._arrays

        class DiskFull:
            def __setitem__(self, key, value):
                if key.start >= 8:
                    raise OSError("No space left on device")
                array[key] = value

        self._arrays = (DiskFull(), groups)
        return store

    monkeypatch.setattr(ZarrSink, "start", start)
    with pytest.raises(OSError, match="No space left"):
        project_to_zarr(panel, draws, tmp_path / "full.zarr", **OPTIONS)
    assert list(tmp_path.iterdir()) == []


def test_one_buffer_for_large_chunks_writes_the_same_store(
    panel, draws, in_memory, tmp_path, monkeypatch
):
    import vekst.projection.zarr_store as zarr_store

    monkeypatch.setattr(zarr_store, "DOUBLE_BUFFER_MAX_BYTES", 0)
    sinks = []
    original = ZarrSink.start

    def start(self, *args, **kwargs):
        sinks.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ZarrSink, "start", start)
    lazy = project_to_zarr(panel, draws, tmp_path / "one.zarr", **OPTIONS)
    assert len(sinks[0]._buffers) == 1
    xr.testing.assert_identical(lazy["population"].load(), in_memory["population"])
