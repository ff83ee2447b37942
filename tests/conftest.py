"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_panel():
    """The embedded default panel (vekst.load_default()), loaded once per test session.

    Tests must not modify it; call ``vekst.load_default()`` for a private copy.
    """
    import vekst

    return vekst.load_default()
