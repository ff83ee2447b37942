"""The short public API: ``import vekst`` is cheap and gives the names a notebook needs."""

import importlib
import inspect
import subprocess
import sys

import pytest

import vekst

#: What a notebook needs to load, fit, project, plot, report, backtest and simulate.
NOTEBOOK_NAMES = (
    "load_default",
    "load_panel",
    "fit_panel",
    "project_fit",
    "load_fit",
    "Scenario",
    "write_report",
    "backtest",
    "simulate_panel",
    "uncertainty_by_source",
    "plots",
)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_notebook_name_is_public_and_resolves(name):
    assert name in vekst.__all__
    value = getattr(vekst, name)
    assert callable(value) or inspect.ismodule(value)
    assert name in dir(vekst)


def test_every_listed_name_resolves_to_a_documented_object():
    for name in vekst.__all__:
        value = getattr(vekst, name)
        if name.startswith("__"):
            continue
        # Each name is the library's own object (not a copy), with a docstring.
        assert inspect.getdoc(value), name
        if not inspect.ismodule(value):
            home = importlib.import_module(value.__module__)
            assert getattr(home, value.__name__) is value, name


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'fit_pannel'"):
        vekst.fit_pannel  # noqa: B018


def test_import_vekst_does_not_load_pymc_or_matplotlib():
    code = (
        "import sys, vekst; "
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_names_load_their_modules_on_first_use():
    code = (
        "import sys, vekst; before = 'pymc' in sys.modules; vekst.fit_panel; "
        "import vekst.workflow; print(before, vekst.fit_panel is vekst.workflow.fit_panel)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "True"]
