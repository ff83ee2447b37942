"""Outputs are all-or-nothing: an interrupted or killed run leaves the previous outputs
intact, a rerun leaves no stale files, and every file carries the convergence flag."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fixtures.bad_input import (  # noqa: F401 - pytest finds fixtures by name
    base_panel_fixture,
    write_text,
)
from vekst.errors import (
    OutputError,
)
from vekst.io import MANIFEST, atomic_folder, atomic_write_text
from vekst.projection.outputs import write_projection_files

# --------------------------------------------------------------------------------------
# Outputs and interrupted runs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def projection(base_panel) -> xr.Dataset:
    """A small projection-shaped dataset (draws of totals) for the writers."""
    rng = np.random.default_rng(0)
    codes = base_panel["municipality"].values
    totals = rng.normal(5000, 100, size=(20, 3, len(codes))).astype(np.float32)
    data = xr.Dataset(
        {"population_total": (("draw", "year", "municipality"), totals)},
        coords={"draw": np.arange(20), "year": [2017, 2018, 2019], "municipality": codes,
                "name": ("municipality", base_panel["name"].values),
                "region": ("municipality", base_panel["region"].values),
                "county": ("municipality", base_panel["county"].values)},
    )
    return data.assign_attrs(converged="no")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


class Interrupt(KeyboardInterrupt):
    pass


def test_interrupted_run_leaves_the_previous_outputs(tmp_path, projection, monkeypatch):
    out = tmp_path / "out"
    write_projection_files(projection, out)
    before = _snapshot(out)
    calls = {"n": 0}
    original = pd.DataFrame.to_csv

    def killed_midway(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupt()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed_midway)
    changed = projection.assign(population_total=projection["population_total"] * 2)
    with pytest.raises(Interrupt):
        write_projection_files(changed, out)
    assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_full_disk_during_netcdf_leaves_the_previous_outputs(tmp_path, projection,
                                                             monkeypatch):
    out = tmp_path / "out"
    write_projection_files(projection, out)
    before = _snapshot(out)

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", disk_full)
    with pytest.raises(OSError, match="space"):
        write_projection_files(projection, out)
    assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_rerun_leaves_no_stale_files(tmp_path, projection):
    out = tmp_path / "out"
    write_projection_files(projection, out)
    assert (out / "region.csv").exists()
    without_regions = projection.drop_vars(["region", "county"])
    write_projection_files(without_regions, out)
    names = set(os.listdir(out))
    assert "region.csv" not in names and "county.csv" not in names
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(names - {MANIFEST})


def test_every_output_file_carries_the_convergence_flag(tmp_path, projection):
    written = write_projection_files(projection, tmp_path / "out")
    for label, path in written.items():
        if path.suffix == ".csv":
            assert set(pd.read_csv(path)["converged"]) == {"no"}, label
        else:
            assert xr.open_dataset(path, engine="h5netcdf").attrs["converged"] == "no"
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["converged"] == "no"


def test_output_folder_of_user_files_is_refused_and_kept(tmp_path, projection):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("keep me")
    with pytest.raises(OutputError, match=r"todo\.txt"):
        write_projection_files(projection, folder)
    assert (folder / "todo.txt").read_text() == "keep me"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_files_get_mode_from_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_folder(tmp_path / "folder") as staging:
            (staging / "b.txt").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "folder" / MANIFEST).stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o777 & ~umask


def test_failed_single_file_write_keeps_the_old_file(tmp_path):
    path = atomic_write_text(tmp_path / "fit.txt", "old")

    def broken(tmp):
        Path(tmp).write_text("half")
        raise Interrupt()

    from vekst.io import atomic_write

    with pytest.raises(Interrupt):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []



_KILLED_WRITER = """
import sys, time
from pathlib import Path
import pandas as pd
import xarray as xr
from vekst.projection.outputs import write_projection_files

projection = xr.load_dataset(sys.argv[1], engine="h5netcdf")
signal_file = Path(sys.argv[3])
original = pd.DataFrame.to_csv

def stall(self, *args, **kwargs):
    original(self, *args, **kwargs)
    signal_file.write_text("writing")
    time.sleep(60)

pd.DataFrame.to_csv = stall
write_projection_files(projection, sys.argv[2])
"""


def test_killed_process_leaves_the_previous_outputs(tmp_path, projection):
    """SIGKILL in the middle of writing (no cleanup runs): the old folder is untouched,
    and the next run replaces it and clears the killed run's old leftovers."""
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    write_projection_files(projection, out)
    before = _snapshot(out)
    source = tmp_path / "projection.nc"
    projection.assign(population_total=projection["population_total"] * 3).to_netcdf(
        source, engine="h5netcdf"
    )
    signal_file = tmp_path / "writing"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(source), str(out), str(signal_file)], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            assert child.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert _snapshot(out) == before
    (staging,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.new-")]
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(staging, (day_ago, day_ago))
    doubled = projection.assign(population_total=projection["population_total"] * 2)
    write_projection_files(doubled, out)
    assert _snapshot(out) != before
    assert _leftovers(tmp_path) == []



@pytest.mark.parametrize("converged", [True, False])
def test_a_saved_fit_says_whether_it_converged(tmp_path, converged):
    import arviz as az

    from vekst.fit import save_fit

    idata = az.from_dict(posterior={"beta": np.zeros((1, 5))})
    idata.attrs["diagnostics"] = json.dumps({"converged": converged, "problems": []})
    path = save_fit(idata, tmp_path / "fit.nc")
    back = xr.open_dataset(path, engine="h5netcdf")
    assert back.attrs["converged"] == ("yes" if converged else "no")


def test_files_added_to_an_output_folder_are_not_deleted_by_a_rerun(tmp_path, projection):
    """A report written into a projection folder would vanish with the folder's swap."""
    out = tmp_path / "out"
    write_projection_files(projection, out)
    (out / "index.html").write_text("<html>report</html>")
    before = _snapshot(out)
    with pytest.raises(OutputError, match=r"index\.html"):
        write_projection_files(projection, out)
    assert _snapshot(out) == before
