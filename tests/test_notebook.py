"""The walkthrough notebook uses only ``import vekst`` and runs top to bottom (fast settings).

Running it fits a model (about two minutes on two shared cores), so that check is slow."""

import os
import re
from pathlib import Path

import pytest

import vekst

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def test_notebook_is_valid_and_reads_the_fast_switch():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "VEKST_NOTEBOOK_FAST" in source
    for step in (
        "vekst.load_default(",
        "vekst.design_matrix(",
        "vekst.fit_panel(",
        "vekst.plots.coefficient_plot(",
        "vekst.project_fit(",
        "vekst.plots.fan_chart(",
        "vekst.plots.population_pyramid(",
    ):
        assert step in source, step
    # The walkthrough needs nothing but the top-level API.
    vekst_imports = re.findall(r"^\s*(?:from|import)\s+(vekst\S*).*$", source, re.MULTILINE)
    assert vekst_imports == ["vekst"], vekst_imports
    used = set(re.findall(r"\bvekst\.(\w+)", source))
    assert used <= set(vekst.__all__), used - set(vekst.__all__)
    # Committed without outputs, so the file stays small and diffs stay readable.
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from vekst.data.default import DefaultDataNotFoundError, default_panel_path

    try:
        default_panel_path()
    except DefaultDataNotFoundError as error:
        pytest.skip(f"embedded data missing: {error}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {"VEKST_NOTEBOOK_FAST": "1", "MPLBACKEND": "Agg"}
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    # Coefficients, ranking, fan chart and pyramid are displayed.
    assert len(images) >= 4
