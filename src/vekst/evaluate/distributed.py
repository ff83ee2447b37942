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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from vekst.evaluate.backtest import BacktestConfig, combine, observed_groups, run_origin
from vekst.evaluate.result import BacktestResult
from vekst.evaluate.truncation import BacktestError

if TYPE_CHECKING:
    from vekst.evaluate.store import OriginStore

__all__ = ["ClusterConfig", "backtest_distributed"]


@dataclass(frozen=True)
class ClusterConfig:
    """Where the tasks run.

    Attributes
    ----------
    scheduler
        Address of an existing scheduler (``tcp://host:8786``); ``None`` starts a
        ``LocalCluster``.
    workers
        Workers of the ``LocalCluster``.
    threads_per_worker
        Threads per worker (1: the fits use their own cores).
    processes
        Workers as processes (``False``: threads in this process, lighter, for tests).
    retries
        Times a task is retried when it fails (e.g. its worker died).
    """

    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    retries: int = 1


@dataclass(frozen=True)
class OriginTasks:
    """The origins a distributed backtest submits, and what each task needs.

    Attributes
    ----------
    panel, observed
        The panel the origins are fitted on and the one they are scored against (the
        same object when scored on the panel itself).
    config
        The backtest's settings.
    todo
        Origins to run (those not already in the store).
    saved
        The :class:`~vekst.evaluate.store.OriginStore` each finished origin is written
        to, or ``None``.
    say
        Progress and failure messages.
    retries
        Times a task is retried when it fails.
    """

    panel: xr.Dataset
    observed: xr.Dataset
    config: BacktestConfig
    todo: tuple[int, ...]
    saved: OriginStore | None
    say: Callable[[str], None]
    retries: int = 1


def _client(cluster: ClusterConfig):
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:  # the extra is optional
        raise BacktestError(
            "distributed backtests need dask.distributed: pip install 'vekst[dask]' (or run "
            "without --workers/--scheduler to run the origins one after another)."
        ) from error
    if cluster.scheduler:
        return Client(cluster.scheduler), None
    local = LocalCluster(
        n_workers=cluster.workers,
        threads_per_worker=cluster.threads_per_worker,
        processes=cluster.processes,
        dashboard_address=None,
    )
    return Client(local), local


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
        If dask.distributed is not installed or every origin failed.
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
        own = client is None
        local = None
        if own:
            client, local = _client(cluster or ClusterConfig())
        try:
            tasks = OriginTasks(
                panel=panel,
                observed=observed,
                config=config,
                todo=tuple(todo),
                retries=(cluster or ClusterConfig()).retries,
                saved=saved,
                say=say,
            )
            failures = _run(client, tasks, results)
        finally:
            if own:
                client.close()
                if local is not None:
                    local.close()
    if not results:
        raise BacktestError(f"every origin failed: {failures}; fix the first error.")
    codes = panel["municipality"].values.astype(str)
    result = combine(results, observed_groups(observed, codes), config)
    for origin, message in failures.items():
        result.notes[origin] = {"task_failed": message}
    result.settings["failed_origins"] = sorted(failures)
    return result


def _run(client, tasks: OriginTasks, results: list) -> dict[int, str]:
    """Submit one task per origin, collect them as they finish (appended to ``results``,
    saved when there is a store); failures by origin."""
    from distributed import as_completed

    panel_ref = client.scatter(tasks.panel, broadcast=True)
    observed_ref = (
        panel_ref
        if tasks.observed is tasks.panel
        else client.scatter(tasks.observed, broadcast=True)
    )
    token = abs(hash((tasks.config.seed, tuple(tasks.todo), id(tasks.panel)))) % 10**8
    futures = {
        client.submit(
            run_origin,
            panel_ref,
            origin,
            tasks.config,
            observed=observed_ref,
            key=f"vekst-backtest-{origin}-{token}",
            retries=tasks.retries,
            pure=False,
        ): origin
        for origin in tasks.todo
    }
    failures: dict[int, str] = {}
    done = 0
    for future in as_completed(futures):
        origin = futures[future]
        done += 1
        try:
            outcome = future.result()
        except Exception as error:  # reported per task; the others go on
            failures[origin] = f"{type(error).__name__}: {error}"
            tasks.say(
                f"origin {origin}: task FAILED: {failures[origin]} ({done}/{len(tasks.todo)})"
            )
            continue
        if tasks.saved is not None:
            tasks.saved.save(outcome)
        results.append(outcome)
        tasks.say(f"origin {origin} done ({done}/{len(tasks.todo)} origins)")
    return failures
