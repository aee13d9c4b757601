"""Running tasks on ``dask.distributed`` — a sweep's points (sim.studies.sweep), a replay's
chunks of samples (sim.replay.parallel): a LocalCluster or a running scheduler, tasks
submitted a window at a time, Ctrl-C during start-up or shutdown held back until the cluster
is in a state it can be shut down from. (Moved here from sim/studies/sweep_dask.py: the
replay stage may not import the studies stage.)"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Callable

from sim.errors import ParameterError


@contextlib.contextmanager
def sigint_deferred():
    """A Ctrl-C inside the block is remembered and raised (KeyboardInterrupt) when it ends.

    Interrupting LocalCluster half-way through its start-up leaves a cluster that can be
    neither used nor closed (tracebacks at exit); deferred, it interrupts a cluster that is
    up, which the caller then shuts down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
        if caught:
            raise KeyboardInterrupt


# LocalCluster workers are forked from multiprocessing's fork server, started with SIGINT
# ignored: a Ctrl-C in a terminal reaches the whole process group, and only this client
# should act on it (by shutting the cluster down); spawned workers would each print a
# KeyboardInterrupt traceback instead.
_WORKER_START = {"distributed.worker.multiprocessing-method": "forkserver"}
# Dask's own log stays quiet in the workers and this client: a point's failure reaches the
# user as its outcome, and the rest (a heartbeat racing the scheduler's shutdown on a loaded
# machine, a worker killed at shutdown) is noise with tracebacks.
_WORKER_LOGS = "DASK_LOGGING__DISTRIBUTED"


def prepare_local_workers() -> None:
    """Start the fork server of LocalCluster workers, ignoring SIGINT (idempotent). Called
    early, so that the few milliseconds in which this process ignores SIGINT too come before
    anything a Ctrl-C could interrupt half-way."""
    import multiprocessing.forkserver

    import dask
    from distributed.utils import get_mp_context

    if threading.current_thread() is not threading.main_thread():
        return  # signal dispositions can only be changed from the main thread
    with dask.config.set(_WORKER_START):
        get_mp_context()  # sets Dask's preload (distributed, numpy, ...) before the server starts
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited across exec, unlike a handler
    env = os.environ.get(_WORKER_LOGS)
    os.environ[_WORKER_LOGS] = "critical"  # read when the server imports distributed
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
        if env is None:
            del os.environ[_WORKER_LOGS]
        else:
            os.environ[_WORKER_LOGS] = env


def _connect(scheduler: str | None, workers: int):
    """(cluster or None, client): a LocalCluster of ``workers`` processes, or ``scheduler``."""
    import logging

    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return None, Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ParameterError(None, "--scheduler", f"cannot connect to {scheduler}: {exc}") from None
    prepare_local_workers()
    # No dashboard; the scheduler's HTTP server (health, metrics) on a free port, not 8787,
    # which another cluster may hold. Logs: see _WORKER_LOGS.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                           silence_logs=logging.CRITICAL)
    return cluster, Client(cluster)


def run_on_dask(todo: list, fn: Callable[[Any], dict], key: Callable[[Any], str], scheduler: str | None,
                workers: int, keep_going: bool, record: Callable[[Any, dict], None]) -> None:
    """Run ``fn(task)`` for each task of ``todo`` on Dask (``key(task)``: its Dask key),
    calling ``record(task, outcome)`` in this process as each finishes; an outcome is a dict
    whose ``status`` is ``"failed"`` for a failure.

    Tasks are submitted a window at a time (one per worker thread), so stopping after a
    failure (without ``keep_going``) means submitting no more: the tasks already running
    finish and are recorded, none is cancelled half-way."""
    import dask

    with dask.config.set(_WORKER_START):
        _run(todo, fn, key, scheduler, workers, keep_going, record)


def _run(todo, fn, key, scheduler, workers, keep_going, record) -> None:
    from dask.distributed import as_completed

    cluster = client = None
    try:
        with sigint_deferred():
            cluster, client = _connect(scheduler, workers)
        queue = iter(todo)
        running, tasks = as_completed(), {}

        def submit_more() -> None:
            window = max(1, sum(client.nthreads().values()))
            while running.count() < window:
                task = next(queue, None)
                if task is None:
                    return
                fut = client.submit(fn, task, key=key(task), pure=False)
                tasks[fut.key] = task
                running.add(fut)

        submit_more()
        stopped = False
        for fut in running:
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task was lost
                outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            record(tasks.pop(fut.key), outcome)
            fut.release()
            stopped = stopped or (outcome["status"] == "failed" and not keep_going)
            if not stopped:
                submit_more()
    finally:
        with sigint_deferred():  # a second Ctrl-C must not cut the shutdown short
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


