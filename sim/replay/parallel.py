"""Sample-parallel replay on Dask: ``replay`` / ``validate --workers N [--scheduler ADDR]``
(docs/parallel.md).

The samples are split into contiguous chunks. A chunk is counted on a Dask worker exactly as
:func:`sim.replay.count_runs` counts a whole replay — one session per (spec, mode) run, each
sample decoded once and fed to every run, in sample order — and each session hands back its
state (:meth:`sim.architectures.base.Session.state`: the ledger, workload totals, cycles and
busy cycles as integers, and whatever its ``finish`` needs). Here, one session per run absorbs
the chunks' states in sample order and finishes, so the result is the serial one exactly:
counts, cycles, stalls, per-layer cycles, utilisation (computed once, from the summed integer
busy cycles), NoC figures and ``extra`` come out of the same ``finish`` over the same
integers. Where time is not a per-sample sum (the spatial dataflow's layer pipeline, through
which samples stream), the chunks hand over their transactions and the pipeline is timed here,
over every sample, as in the serial run.

All or nothing: a chunk whose worker dies is run again by Dask (up to
``distributed.scheduler.allowed-failures`` times); a chunk that cannot be counted fails the
replay (:class:`ReplayFailed`, one line naming the samples and the cause): there is never a
total over part of the samples. The mapper (``--map best``) runs before, in this process;
the chunks count the (spec, mode) runs it chose.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
import uuid
from dataclasses import dataclass
from typing import Callable

from sim.arch.spec import ArchSpec
from sim.errors import ParameterError, SimInputError
from sim.replay.cluster import prepare_local_workers, run_on_dask  # imports no Dask until they run

#: Chunks per worker (at least): enough to balance uneven samples and to move the progress
#: bar, few enough that a chunk's set-up (opening the trace, building the simulators: once
#: per worker, see :func:`_worker_sessions`) stays small beside its samples.
CHUNKS_PER_WORKER = 4
#: Samples per chunk at most: a long replay is cut into chunks of this size (progress, the
#: work a dead worker loses, and the states held until the chunks before them are in).
MAX_CHUNK = 64


class ReplayFailed(Exception):
    """A chunk of a sample-parallel replay could not be counted: the replay has no result.
    ``str()`` is one line naming the samples and the cause."""


@dataclass(frozen=True)
class Chunk:
    """Samples ``first`` .. ``stop - 1`` of the trace at ``trace_path`` (absolute: a worker may
    run elsewhere on a shared file system), counted for every (spec, mode) of ``runs``.
    ``trace_id``: the trace file's size and modification time when the replay started."""

    trace_path: str
    trace_id: tuple[int, int]
    runs: tuple[tuple[ArchSpec, str], ...]
    first: int
    stop: int
    token: str  # one per replay: Dask keys of concurrent replays on one scheduler differ
    settings: tuple = ()  # this process's settings a worker takes over (:func:`process_settings`)

    @property
    def key(self) -> str:
        return f"replay-{self.token}-samples-{self.first}-{self.stop}"

    @property
    def what(self) -> str:
        return f"samples {self.first}..{self.stop - 1}"


def chunk_bounds(samples: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous ``(first, stop)`` ranges covering samples 0 .. ``samples - 1`` in order:
    :data:`CHUNKS_PER_WORKER` per worker, more when a chunk would exceed :data:`MAX_CHUNK`,
    never an empty one; sizes differ by at most one."""
    from sim.architectures.base import split_evenly

    parts = min(samples, max(CHUNKS_PER_WORKER * workers, math.ceil(samples / MAX_CHUNK)))
    bounds, first = [], 0
    for size in split_evenly(samples, parts):
        bounds.append((first, first + size))
        first += size
    return bounds


def process_settings() -> tuple:
    """Process-wide settings of this run that a worker process must share: the tile
    pipeline's timing mode (``sim.engine.components``, where it has one)."""
    from sim.engine import components

    timing = getattr(components, "TIMING", None)
    return (("timing", timing),) if timing is not None and hasattr(components, "set_timing") else ()


def apply_settings(settings: tuple) -> None:
    """Take over :func:`process_settings` of the client (in a worker)."""
    from sim.engine import components

    for name, value in settings:
        if name == "timing":
            components.set_timing(value)


def trace_identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


# -- counting a chunk ------------------------------------------------------------------------
def count_states(workload, sessions: list, first: int, stop: int) -> list[dict]:
    """Feed samples ``first`` .. ``stop - 1`` of ``workload`` (each decoded once) to every
    session, in order; their states (:meth:`sim.architectures.base.Session.state`)."""
    for i in range(first, stop):
        events = workload.sample(i)
        for session in sessions:
            session.add(events)
    return [session.state() for session in sessions]


def merge_states(sessions: list, chunk_states) -> list:
    """``sessions`` (fresh, one per run) absorb each chunk's states, chunks in sample order;
    their results (:class:`sim.architectures.base.RunResult`), one per run."""
    for states in chunk_states:
        for session, state in zip(sessions, states):
            session.absorb(state)
    return [session.finish() for session in sessions]


#: In a worker: the trace of the last chunk, its workload and its simulators (by pickled
#: spec), kept for the next chunk of the same replay (a chunk's sessions are always new).
_WORKER: dict = {}


def _worker_sessions(chunk: Chunk) -> tuple[object, list]:
    """(workload, one new session per run of ``chunk``), the trace and simulators reused
    from this worker's previous chunk when it read the same file."""
    from sim.arch.registry import arch_kind
    from sim.trace import open_trace
    from sim.workload import Workload

    where = (chunk.trace_path, chunk.trace_id)
    if _WORKER.get("where") != where:
        if "trace" in _WORKER:
            _WORKER.pop("trace").close()
        _WORKER.clear()
        trace = open_trace(chunk.trace_path)
        _WORKER.update(where=where, trace=trace, workload=Workload(trace), sims={})
    workload, sims = _WORKER["workload"], _WORKER["sims"]
    sessions = []
    for spec, mode in chunk.runs:
        key = pickle.dumps(spec)
        if key not in sims:
            sims[key] = arch_kind(spec.architecture).simulator_class()(spec, workload)
        sessions.append(sims[key].start(mode))
    return workload, sessions


def count_chunk(chunk: Chunk) -> list[dict]:
    """Count one chunk (on a Dask worker): the states of its runs' sessions, in ``runs`` order.
    SimInputError when the trace is not the file the replay started with."""
    if trace_identity(chunk.trace_path) != chunk.trace_id:
        raise SimInputError(chunk.trace_path, None, "changed while the replay ran (size or modification time)")
    apply_settings(chunk.settings)
    workload, sessions = _worker_sessions(chunk)
    states = count_states(workload, sessions, chunk.first, chunk.stop)
    if trace_identity(chunk.trace_path) != chunk.trace_id:
        raise SimInputError(chunk.trace_path, None, "changed while the replay ran (size or modification time)")
    return states


def count_chunk_safely(chunk: Chunk) -> dict:
    """:func:`count_chunk` as the outcome :func:`sim.replay.cluster.run_on_dask` expects:
    ``{"status": "done", "states": [...]}``, or ``{"status": "failed", ...}`` with the error
    (a bad input's file, field and message, so this process raises it as the serial run would)."""
    try:
        return {"status": "done", "states": count_chunk(chunk)}
    except SimInputError as exc:
        return {"status": "failed", "error": exc.one_line(),
                "input_error": (type(exc).__name__, exc.file, exc.field, exc.message)}


# -- the replay ------------------------------------------------------------------------------
def check_parallel(workers: int, scheduler: str | None) -> None:
    """ParameterError for a ``--workers`` below 1, or for a parallel run without Dask."""
    if workers < 1:
        raise ParameterError(None, "--workers", f"must be >= 1, got {workers}")
    if (workers > 1 or scheduler) and importlib.util.find_spec("distributed") is None:
        raise ParameterError(None, "--scheduler" if scheduler else "--workers",
                             "a sample-parallel replay needs dask.distributed (pip install -e '.[dist]')")


def _input_error(fields) -> SimInputError:
    import sim.errors

    name, file, field, message = fields
    cls = getattr(sim.errors, name, SimInputError)
    return (cls if isinstance(cls, type) and issubclass(cls, SimInputError) else SimInputError)(file, field, message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "no message"


def count_runs_parallel(trace, runs: list[tuple[ArchSpec, str]], samples: int, workers: int = 2,
                        scheduler: str | None = None, progress: bool = True,
                        count: Callable[[Chunk], dict] = count_chunk_safely) -> list:
    """:func:`sim.replay.count_runs` of the first ``samples`` samples, in chunks on Dask (a
    LocalCluster of ``workers`` processes, or the running scheduler at ``scheduler``); the same
    :class:`sim.replay.Counted` list, exactly. ``count``: what counts one chunk on a worker.
    ReplayFailed when a chunk cannot be counted (its worker died more often than Dask retries
    it); the SimInputError of a chunk that met bad input."""
    from sim.replay import Counted, _progress, start_sessions
    from sim.workload import Workload

    check_parallel(workers, scheduler)
    if scheduler is None:
        prepare_local_workers()  # early: see there
    path = os.path.abspath(trace.path)
    trace_id = trace_identity(path)
    # every simulator is built (its static mapping checked) before the cluster starts
    sessions = start_sessions(Workload(trace), runs)
    token = uuid.uuid4().hex[:12]
    frozen = tuple((spec, mode) for spec, mode in runs)
    settings = process_settings()
    chunks = [Chunk(path, trace_id, frozen, a, b, token, settings) for a, b in chunk_bounds(samples, workers)]
    index = {c.key: k for k, c in enumerate(chunks)}
    pending: dict[int, list[dict]] = {}  # states of chunks that came back before an earlier one
    absorbed = 0  # chunks absorbed, in order
    failures: list[tuple[Chunk, dict]] = []
    bar = _progress(samples, f"replay {len(runs)} run{'s' * (len(runs) != 1)} on Dask", progress)

    def record(chunk: Chunk, outcome: dict) -> None:
        nonlocal absorbed
        if outcome.get("status") != "done":
            failures.append((chunk, outcome))
            return
        pending[index[chunk.key]] = outcome["states"]
        while absorbed in pending:  # absorb in sample order, as soon as a chunk's turn comes
            for session, state in zip(sessions, pending.pop(absorbed)):
                session.absorb(state)
            absorbed += 1
        if bar:
            bar.update(chunk.stop - chunk.first)

    try:
        run_on_dask(chunks, count, lambda c: c.key, scheduler, workers, keep_going=False, record=record)
    finally:
        if bar:
            bar.close()
    if failures:
        chunk, outcome = failures[0]
        if outcome.get("input_error"):
            raise _input_error(outcome["input_error"])
        raise ReplayFailed(f"{trace.path}: {chunk.what} could not be counted ({_one_line(outcome.get('error'))}); "
                           f"the replay has no result")
    if absorbed != len(chunks):  # run_on_dask returned without every outcome: never a partial total
        missing = chunks[absorbed]
        raise ReplayFailed(f"{trace.path}: {missing.what} never came back from Dask; the replay has no result")
    if trace_identity(path) != trace_id:
        raise SimInputError(trace.path, None, "changed while the replay ran (size or modification time)")
    results = [session.finish() for session in sessions]
    got = {r.samples for r in results}
    if got != {samples}:  # each session absorbed every chunk: a broken absorb is a bug, never a result
        raise ReplayFailed(f"{trace.path}: the chunks add up to {sorted(got)} samples, not {samples}")
    return [Counted(spec, mode, r) for (spec, mode), r in zip(runs, results)]
