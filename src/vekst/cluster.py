"""Independent keyed tasks on ``dask.distributed``, or one after another in this process.

The shape shared by backtest origins, recovery replicates and scenario ensembles: one
task per key (an origin year, a replicate number, a scenario name), each seeded from the
run's seed and its own key by the task itself, so the numbers do not depend on which
worker runs which task, in which order, or whether it was retried. :func:`run_tasks`
submits ``function(key, **shared)`` for every key, sends the shared inputs (a panel, the
draws) to the workers once, reports progress as tasks finish and keeps the results of
the tasks that succeed beside a message for each one that raised (or whose worker died
after ``retries`` retries).

Without a cluster (``runner=None``) the same tasks run serially here with the same
failure handling, so a serial run and a distributed run give the same numbers.

Needs the optional extra ``dask`` (``pip install 'vekst[dask]'``) for the distributed
case. Workers need vekst and its dependencies installed (the same versions as the client).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vekst.errors import UsageError

__all__ = ["ClusterConfig", "TaskOutcome", "TaskRunner", "open_client", "run_tasks"]


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


@dataclass
class TaskRunner:
    """How :func:`run_tasks` runs: on a cluster, or serially when neither is given.

    Attributes
    ----------
    cluster
        Cluster to start or connect to (closed again when done).
    client
        An existing ``distributed.Client`` to submit to (left open); wins over
        ``cluster``.
    log
        Receives progress (``k/n ... done``) and failures, one line each.
    """

    cluster: ClusterConfig | None = None
    client: Any = None
    log: Callable[[str], None] | None = None

    @property
    def distributed(self) -> bool:
        """Whether tasks go to Dask (a cluster or a client is given)."""
        return self.cluster is not None or self.client is not None

    def say(self, message: str) -> None:
        """Pass a progress line to ``log``, if any."""
        if self.log is not None:
            self.log(message)


@dataclass
class TaskOutcome:
    """Results by key (in the order the keys were given) and failures by key.

    Attributes
    ----------
    results
        ``{key: return value}`` of the tasks that succeeded.
    failures
        ``{key: "ErrorType: message"}`` of the tasks that raised.
    """

    results: dict[Hashable, Any] = field(default_factory=dict)
    failures: dict[Hashable, str] = field(default_factory=dict)


def open_client(cluster: ClusterConfig, what: str = "tasks"):
    """A ``distributed.Client`` for ``cluster`` and the ``LocalCluster`` it started, if any.

    Raises
    ------
    UsageError
        If dask.distributed is not installed.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:  # the extra is optional
        raise UsageError(
            f"running {what} on Dask needs dask.distributed: pip install 'vekst[dask]' (or "
            "run without --workers/--scheduler to run them one after another)."
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


def run_tasks(
    function: Callable[..., Any],
    keys: Iterable[Hashable],
    *,
    shared: Mapping[str, Any] | None = None,
    runner: TaskRunner | None = None,
    label: str = "task",
    on_result: Callable[[Hashable, Any], None] | None = None,
) -> TaskOutcome:
    """Run ``function(key, **shared)`` for every key; keep what succeeds, report the rest.

    Parameters
    ----------
    function
        A module-level function (workers import it by name); it seeds itself from its
        key.
    keys
        Task keys, unique; their string form names the Dask task.
    shared
        Keyword arguments common to every task; sent to each worker once.
    runner
        Where to run; ``None`` (or a runner without cluster and client) runs serially.
    label
        What a task is, for progress lines (``"replicate 3 done (2/5 replicates)"``).
    on_result
        Called in this process with ``(key, result)`` as each task succeeds (e.g. to
        save it), in completion order.

    Returns
    -------
    TaskOutcome
        Results in the order of ``keys``; failures by key.
    """
    runner = runner or TaskRunner()
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique, got {keys}.")
    shared = dict(shared or {})
    outcome = TaskOutcome()
    if not keys:
        return outcome
    if runner.distributed:
        finished = _run_distributed(function, keys, shared, runner, label, on_result)
    else:
        finished = _run_serial(function, keys, shared, runner, label, on_result)
    outcome.failures = finished.failures
    outcome.results = {k: finished.results[k] for k in keys if k in finished.results}
    return outcome


def _progress(runner: TaskRunner, label: str, key, done: int, total: int, error=None) -> None:
    if error is None:
        runner.say(f"{label} {key} done ({done}/{total} {label}s)")
    else:
        runner.say(f"{label} {key}: task FAILED: {error} ({done}/{total} {label}s)")


def _collect(outcome, key, get_result, runner, label, done, total, on_result) -> None:
    """Record one task's result, or its failure, and report progress."""
    try:
        result = get_result()
    except Exception as error:  # reported per task; the others go on
        outcome.failures[key] = f"{type(error).__name__}: {error}"
        _progress(runner, label, key, done, total, outcome.failures[key])
        return
    outcome.results[key] = result
    if on_result is not None:
        on_result(key, result)
    _progress(runner, label, key, done, total)


def _run_serial(function, keys, shared, runner, label, on_result) -> TaskOutcome:
    outcome = TaskOutcome()
    for done, key in enumerate(keys, start=1):
        _collect(outcome, key, lambda key=key: function(key, **shared), runner, label, done,
                 len(keys), on_result)
    return outcome


def _run_distributed(function, keys, shared, runner, label, on_result) -> TaskOutcome:
    from uuid import uuid4

    client, local = runner.client, None
    if client is None:
        client, local = open_client(runner.cluster or ClusterConfig(), f"{label}s")
    try:
        from distributed import as_completed

        retries = (runner.cluster or ClusterConfig()).retries
        # Large inputs go to every worker once, not once per task; wrapped in a list so
        # that a dict or list value travels whole instead of item by item.
        refs = {
            name: client.scatter([value], broadcast=True)[0] for name, value in shared.items()
        }
        token = uuid4().hex[:8]
        futures = {
            client.submit(
                function,
                key,
                **refs,
                key=f"vekst-{label}-{key}-{token}",
                retries=retries,
                pure=False,
            ): key
            for key in keys
        }
        outcome = TaskOutcome()
        for done, future in enumerate(as_completed(futures), start=1):
            _collect(outcome, futures[future], future.result, runner, label, done, len(keys),
                     on_result)
        return outcome
    finally:
        if runner.client is None:
            client.close()
            if local is not None:
                local.close()
