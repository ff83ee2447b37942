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


@pytest.fixture(scope="module")
def dask_client():
    """A two-worker local Dask cluster (threads, no dashboard) for distributed-run tests."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()
