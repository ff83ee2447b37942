"""Backtest origins as independent tasks on ``dask.distributed``.

Each origin is one task (:func:`vekst.evaluate.backtest.run_origin`) keyed by its year and
seeded by :func:`~vekst.evaluate.backtest.origin_seed` from the run's seed and that key,
so the numbers equal the serial run's whichever worker runs which origin, in any order.
A task that raises (or whose worker dies, after one retry) is reported under its origin
(``notes[origin]["task_failed"]``) and the other origins' results are kept; with a store,
every finished origin is written as soon as it arrives, so nothing done is lost and a
rerun only runs what is missing.

Needs the optional extra ``dask`` (``pip install 'vekst[dask]'``). Workers need vekst and
its dependencies installed (the same versions as the client); the panel is sent to them
once (scattered), the results come back to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import xarray as xr

from vekst.cluster import ClusterConfig, TaskRunner, run_tasks
from vekst.evaluate.backtest import BacktestConfig, combine, observed_groups, run_origin
from vekst.evaluate.result import BacktestResult
from vekst.evaluate.truncation import BacktestError

__all__ = ["ClusterConfig", "backtest_distributed"]


def backtest_distributed(
    panel: xr.Dataset,
    config: BacktestConfig | None = None,
    *,
    observed: xr.Dataset | None = None,
    store: str | Path | None = None,
    cluster: ClusterConfig | None = None,
    client=None,
    log: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Run the origins of a backtest as tasks on a Dask cluster.

    Parameters
    ----------
    panel, config, observed, store
        As :func:`vekst.evaluate.backtest` (origins in the store are read, not run).
    cluster
        Where to run (default a two-worker ``LocalCluster``); ignored when ``client`` is
        given.
    client
        An existing ``distributed.Client`` to submit to (left open).
    log
        Callable receiving progress (``k/n origins done``) and failures.

    Returns
    -------
    BacktestResult
        The same numbers as the serial run; an origin whose task failed has no scores and
        ``notes[origin]["task_failed"]`` says why.

    Raises
    ------
    BacktestError
        If every origin failed.
    UsageError
        If dask.distributed is not installed.
    """
    from vekst.evaluate.store import OriginStore

    config = config or BacktestConfig()
    observed = panel if observed is None else observed
    say = log or (lambda message: None)
    saved = None if store is None else OriginStore(store, config, panel, observed)
    results = []
    todo = []
    for origin in config.origins:
        if saved is not None and saved.has(origin):
            say(f"origin {origin}: read from {saved.directory}")
            results.append(saved.load(origin))
        else:
            todo.append(origin)
    failures: dict[int, str] = {}
    if todo:
        runner = TaskRunner(cluster=cluster or ClusterConfig(), client=client, log=say)
        shared = {"panel": panel, "config": config}
        if observed is not panel:
            shared["observed"] = observed
        outcome = run_tasks(
            _origin_task,
            todo,
            shared=shared,
            runner=runner,
            label="origin",
            on_result=None if saved is None else lambda origin, result: saved.save(result),
        )
        results.extend(outcome.results.values())
        failures = dict(outcome.failures)
    if not results:
        raise BacktestError(f"every origin failed: {failures}; fix the first error.")
    codes = panel["municipality"].values.astype(str)
    result = combine(results, observed_groups(observed, codes), config)
    for origin, message in failures.items():
        result.notes[origin] = {"task_failed": message}
    result.settings["failed_origins"] = sorted(failures)
    return result


def _origin_task(origin: int, panel, config, observed=None):
    """One origin (:func:`run_origin`), keyed first for :func:`vekst.cluster.run_tasks`."""
    return run_origin(panel, origin, config, observed=observed)
