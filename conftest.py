"""Test tiers: the default run is fast; ``--run-slow`` adds, ``--only-slow`` selects, the
statistical checks marked ``slow`` (recovery, coverage, backtests)."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser):
    """Options of the slow statistical tier: ``--run-slow`` and ``--only-slow``."""
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--only-slow", action="store_true", help="run only tests marked slow")


def pytest_collection_modifyitems(config, items):
    """Skip tests marked slow unless asked for, or keep only them with ``--only-slow``."""
    if config.getoption("--only-slow"):
        items[:] = [item for item in items if "slow" in item.keywords]
        return
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow statistical check: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
