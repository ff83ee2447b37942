"""`vekst report` reads a Zarr projection (lazily) as it reads projection.nc."""

import re

import pytest

pytest.importorskip("zarr")

from report_inputs import make_inputs, make_panel
from vekst.commands.report import _projection_file, open_projection_for_report
from vekst.projection.zarr_store import write_zarr
from vekst.report.html import ReportOptions, write_report


def _text(html: str) -> str:
    """The page without its embedded images (PNG bytes may differ between runs)."""
    return re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "IMG", html)


def test_report_from_a_zarr_store_equals_the_report_from_memory(tmp_path):
    inputs = make_inputs(make_panel())
    folder = tmp_path / "projection"
    write_zarr(inputs["projection"], folder / "projection.zarr")
    path = _projection_file(folder)
    assert path == folder / "projection.zarr"
    options = ReportOptions(municipalities=["4621"], dpi=30)
    expected = write_report(tmp_path / "memory", options=options, **inputs)
    with open_projection_for_report(path) as lazy:
        assert not lazy["population"].variable._in_memory  # read year by year
        assert lazy["population_total"].variable._in_memory
        inputs["projection"] = lazy
        written = write_report(tmp_path / "zarr", options=options, **inputs)
    assert _text(written.read_text(encoding="utf-8")) == _text(
        expected.read_text(encoding="utf-8")
    )


def test_a_folder_without_a_projection_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"projection\.zarr"):
        _projection_file(tmp_path)
