"""The layer pipeline of the spatial dataflow, simulated with simpy.

Each layer is a stage (its own PE group). A stage processes its transactions in order — one
per time step of each sample in SNN mode, one per sample in ANN mode — and transaction k of
a stage starts only when transaction k of every one of its source stages has finished (their
spikes or activations have arrived: a chain's previous stage, every operand of a residual
add) and the stage itself is free. On every edge between two stages sits a buffer of
``buffer`` transactions; a stage waits while the buffer towards any of its consumers is full
(back-pressure). Every stage takes its transactions in the same order, so a layer graph (a
DAG) cannot deadlock on full buffers. Off-chip traffic of a transaction (the input image, a
fold boundary) holds the one DRAM channel first, so stages contend for it. The steady-state
throughput is set by the slowest stage; this module measures it rather than assuming it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine import Dram


@dataclass(frozen=True)
class Txn:
    """One transaction of one stage: ``cycles`` on its PE group after ``dram_bits`` of
    off-chip transfer (0 for none)."""

    cycles: int
    dram_bits: int = 0


class TxnArray:
    """A stage's transactions as int64 columns (cycles, dram_bits) [n, 2]: a sequence of
    :class:`Txn` that keeps 16 bytes per transaction instead of a Python object, so the
    spatial dataflow's sessions hold thousands of samples in flat, small memory."""

    def __init__(self, table: np.ndarray):
        self.table = np.ascontiguousarray(table, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return self.table.shape[0]

    def __getitem__(self, k: int) -> Txn:
        c, d = self.table[k]
        return Txn(int(c), int(d))


@dataclass
class PhaseResult:
    """Timing of one pipeline run.

    ``done[s][k]`` is the cycle at which stage s finished transaction k; ``busy[s]`` the
    cycles stage s spent working (DRAM waits included); ``stall[s]`` the cycles it waited
    for its input or for room in its successor's buffer; ``attributed[s]`` the cycles
    between consecutive completions charged to the stage that completed (they sum to the
    phase's length)."""

    start: int
    end: int
    done: list[list[int]]
    busy: list[int]
    stall: list[int]
    attributed: list[int] = field(default_factory=list)


def run_phase(env: simpy.Environment, dram: Dram, stages: list[list[Txn]], buffer: int,
              sources: list[list[int]] | None = None) -> PhaseResult:
    """Run the stages' transactions through the pipeline; returns its timing.

    ``sources[s]``: the stages (indices, all before s) whose transaction k stage s waits for
    before its own; None: a linear pipeline (each stage waits for the one before). Every
    stage must hold the same number of transactions (transaction k of each stage belongs to
    the same sample and time step)."""
    n = len(stages[0])
    if any(len(s) != n for s in stages):
        raise ValueError("every stage needs the same number of transactions")
    if sources is None:
        sources = [[s - 1] if s else [] for s in range(len(stages))]
    start = env.now
    # one buffer per edge: inbox[(src, dst)]; a stage puts each finished transaction into the
    # buffer of every consumer
    inbox = {(a, s): simpy.Store(env, capacity=buffer) for s, srcs in enumerate(sources) for a in srcs}
    consumers: list[list[int]] = [[] for _ in stages]
    for s, srcs in enumerate(sources):
        for a in srcs:
            consumers[a].append(s)
    done = [array("q", bytes(8 * n)) for _ in stages]   # n int64 zeros per stage
    busy = [0] * len(stages)
    stall = [0] * len(stages)
    # attribution as the completions happen (they come in time order): the cycles since the
    # previous completion time go to the lowest-numbered stage completing at the next time,
    # as if every (time, stage) were sorted — without keeping one entry per transaction
    attributed = [0] * len(stages)
    clock = {"last": start, "time": None, "stage": 0}

    def completed(time: int, s: int) -> None:
        if clock["time"] is None or time > clock["time"]:
            flush()
            clock["time"], clock["stage"] = time, s
        else:
            clock["stage"] = min(clock["stage"], s)

    def flush() -> None:
        if clock["time"] is not None:
            attributed[clock["stage"]] += clock["time"] - clock["last"]
            clock["last"] = clock["time"]

    def stage(s: int):
        for k in range(n):
            t0 = env.now
            for a in sources[s]:
                yield inbox[(a, s)].get()
            stall[s] += env.now - t0
            txn = stages[s][k]
            t1 = env.now
            if txn.dram_bits:
                yield from dram.transfer(txn.dram_bits)
            if txn.cycles:
                yield env.timeout(txn.cycles)
            busy[s] += env.now - t1
            done[s][k] = env.now
            completed(env.now, s)
            t2 = env.now
            for c in consumers[s]:
                yield inbox[(s, c)].put(k)
            stall[s] += env.now - t2

    procs = [env.process(stage(s)) for s in range(len(stages))]
    env.run(until=env.all_of(procs))
    flush()
    return PhaseResult(start, env.now, done, busy, stall, attributed)


def steady_interval(done_last_stage: list[int], per_sample: int) -> float | None:
    """Mean cycles between consecutive samples leaving the pipeline, after the first (the
    fill): the steady-state cycles per sample. None with fewer than two samples."""
    ends = done_last_stage[per_sample - 1::per_sample]
    return (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) >= 2 else None
