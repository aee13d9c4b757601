"""simpy components. A simpy event is a transaction with a cycle-accurate duration; the
individual accesses inside it are counted by the kernels, not simulated one by one.

Contention: each component is a simpy Resource (DRAM: one channel; SRAM: ``ports``; PE
array: one), so a transaction that finds it busy waits, and the wait shows as a stall.

Timing of the tile pipeline (:data:`TIMING`, set with :func:`set_timing`, the CLI's
``--timing``): ``simpy`` runs the simpy model below, the reference; ``fast`` runs its compiled
twin (:func:`sim.kernels.pipeline.tile_pipeline`, a discrete-event simulator reproducing
simpy's event order, ties included), which gives the same cycles, stalls, per-stage cycles,
busy cycles and ``env.now`` on every input (tests/test_tile_pipeline_fast.py); ``auto``, the
default, is ``fast``: being exact, the fast path is right for one sample as for thousands,
and it is faster from the first tile list on (its one-time JIT compile is cached on disk).
Under ``fast`` and ``auto`` alike, an input the compiled path cannot take exactly (a field
or parameter that is not an integer, not below 2**53, a unit held by something else, ...)
runs on simpy: same figures, just slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral
from operator import attrgetter

import numpy as np
import simpy

from sim.errors import ParameterError
from sim.kernels.pipeline import tile_pipeline

_TILE_FIELDS = attrgetter("dram_in_bits", "sram_bits", "pe_ops", "dram_out_bits")

#: How :meth:`TilePipeline.run` times its tiles: "auto" (= "fast"), "simpy" or "fast".
TIMING = "auto"
TIMING_MODES = ("auto", "simpy", "fast")
#: The compiled path's range: every field and parameter below this (float division of such
#: integers rounds as Python's ``math.ceil(a / b)`` needs) and the makespan below _SPAN_LIMIT.
_EXACT_LIMIT = 2 ** 53
_SPAN_LIMIT = 2.0 ** 62


def check_timing(mode: str) -> str:
    """``mode`` if it is a timing mode; ParameterError naming ``--timing`` otherwise."""
    if mode not in TIMING_MODES:
        raise ParameterError(None, "--timing", f"must be one of {', '.join(TIMING_MODES)}, got {mode!r}")
    return mode


def set_timing(mode: str) -> None:
    """Set the module's timing mode (see the module docstring): "auto", "simpy" or "fast"."""
    global TIMING
    TIMING = check_timing(mode)


def get_timing() -> str:
    """The timing mode in force."""
    return TIMING


#: Tiles staged in the buffer at once: the PE array computes one while the next loads from
#: DRAM, so transfers overlap compute (double buffering; a constant of the design, not a spec field).
DOUBLE_BUFFERED = 2


class _Unit:
    def __init__(self, env: simpy.Environment, capacity: int):
        self.env = env
        self.resource = simpy.Resource(env, capacity=capacity)
        self.busy_cycles = 0
        self.capacity = capacity

    def _hold(self, cycles: int):
        with self.resource.request() as req:
            yield req
            yield self.env.timeout(cycles)
            self.busy_cycles += cycles


class Dram(_Unit):
    """Off-chip DRAM channel: ``latency + ceil(bits / bandwidth)`` cycles per transfer."""

    def __init__(self, env, width_bits: int, bandwidth_bits_per_cycle: int, latency_cycles: int):
        super().__init__(env, 1)
        self.bandwidth = bandwidth_bits_per_cycle
        self.latency = latency_cycles

    def cycles(self, bits: int) -> int:
        return 0 if bits <= 0 else self.latency + math.ceil(bits / self.bandwidth)

    def transfer(self, bits: int):
        if bits > 0:
            yield from self._hold(self.cycles(bits))


class Sram(_Unit):
    """Banked on-chip SRAM: each port moves ``width x banks / ports`` bits per cycle."""

    def __init__(self, env, width_bits: int, banks: int, ports: int, latency_cycles: int):
        super().__init__(env, ports)
        self.bits_per_cycle_per_port = max(1, width_bits * banks // ports)
        self.latency = latency_cycles

    def cycles(self, bits: int) -> int:
        return 0 if bits <= 0 else self.latency + math.ceil(bits / self.bits_per_cycle_per_port)

    def access(self, bits: int):
        if bits > 0:
            yield from self._hold(self.cycles(bits))


class PEArray(_Unit):
    """rows x cols PEs, ``ops_per_cycle`` each."""

    def __init__(self, env, rows: int, cols: int, ops_per_cycle: int):
        super().__init__(env, 1)
        self.ops_per_cycle = rows * cols * ops_per_cycle

    def cycles(self, ops: int) -> int:
        return 0 if ops <= 0 else math.ceil(ops / self.ops_per_cycle)


@dataclass
class Tile:
    """One transaction group: fetch ``dram_in_bits``, then compute ``pe_ops`` while moving
    ``sram_bits`` through the buffer, then write back ``dram_out_bits``."""

    stage: str
    dram_in_bits: int
    sram_bits: int
    pe_ops: int
    dram_out_bits: int


@dataclass
class PipelineStats:
    cycles: int = 0
    stall_cycles: int = 0
    stage_cycles: dict = field(default_factory=dict)
    stage_stalls: dict = field(default_factory=dict)


class TilePipeline:
    """Double-buffered tile pipeline: a loader fetches tile i+1 from DRAM while the PE array
    computes tile i; write-backs share the DRAM channel with loads. Compute waiting for its
    data is a stall."""

    def __init__(self, dram: Dram, sram: Sram, pe: PEArray):
        self.env = dram.env
        self.dram, self.sram, self.pe = dram, sram, pe

    def run(self, tiles: list[Tile], timing: str | None = None) -> PipelineStats:
        """Run ``tiles`` from ``env.now`` (the units idle): the stats, the units' busy cycles
        accumulated and ``env.now`` advanced by the makespan. ``timing``: the module's
        :data:`TIMING` unless given."""
        mode = TIMING if timing is None else check_timing(timing)
        if mode != "simpy":
            stats = self.run_fast(tiles)
            if stats is not None:
                return stats
        return self.run_simpy(tiles)

    def _fast_params(self) -> tuple | None:
        """The units' parameters for the compiled path, None where it cannot take them exactly
        (or a unit is in use: the compiled path assumes the units serve this pipeline alone)."""
        d, s, p = self.dram, self.sram, self.pe
        params = (d.bandwidth, d.latency, s.capacity, s.bits_per_cycle_per_port, s.latency, p.ops_per_cycle)
        if not all(isinstance(v, Integral) and 0 <= v < _EXACT_LIMIT for v in params):
            return None
        if min(d.bandwidth, s.bits_per_cycle_per_port, p.ops_per_cycle, s.capacity) < 1:
            return None  # the simpy model raises its own error
        for u in (d, s, p):
            if u.resource.users or u.resource.queue:
                return None
        if not isinstance(self.env.now, Integral):
            return None
        return tuple(int(v) for v in params)

    def run_fast(self, tiles: list[Tile]) -> PipelineStats | None:
        """The compiled twin of :meth:`run_simpy`: the same stats, busy cycles and
        ``env.now``; None (nothing run) for an input it cannot take exactly."""
        if not tiles:
            return PipelineStats() if self._fast_params() is not None else None
        try:
            arr = np.array(list(map(_TILE_FIELDS, tiles)))
        except (OverflowError, ValueError, TypeError):
            return None
        if arr.ndim != 2:
            return None
        return self._run_compiled([t.stage for t in tiles], arr.T)

    def run_arrays(self, stages, dram_in_bits, sram_bits, pe_ops, dram_out_bits,
                   timing: str | None = None) -> PipelineStats:
        """:meth:`run` on the tiles ``Tile(stages[i], dram_in_bits[i], ...)`` given as columns
        (sequences or integer arrays), for a caller that builds them vectorised."""
        mode = TIMING if timing is None else check_timing(timing)
        stages = list(stages)
        cols = [np.asarray(c) for c in (dram_in_bits, sram_bits, pe_ops, dram_out_bits)]
        if any(c.shape != (len(stages),) for c in cols):
            raise ValueError("run_arrays: every column needs one entry per stage")
        if mode != "simpy":
            stats = self._run_compiled(stages, np.array(cols)) if stages else self.run_fast([])
            if stats is not None:
                return stats
        return self.run_simpy([Tile(*row) for row in zip(stages, *(c.tolist() for c in cols))])

    def _run_compiled(self, stages: list, arr: np.ndarray) -> PipelineStats | None:
        """The compiled run of the tiles (``stages``; ``arr``: the four fields, one row each),
        or None where it cannot take them exactly."""
        params = self._fast_params()
        if params is None:
            return None
        n = len(stages)
        if arr.dtype.kind != "i" or arr.shape != (4, n):
            return None
        if int(arr.max()) >= _EXACT_LIMIT or int(arr.min()) <= -_EXACT_LIMIT:
            return None
        bw, dlat, ports, bpc, slat, opc = params
        # a bound on the makespan: every cycle of it is some unit's hold
        if float(np.abs(arr).sum(dtype=np.float64)) + n * (2.0 * dlat + 3.0 * slat + 6.0) >= _SPAN_LIMIT:
            return None
        cols = np.ascontiguousarray(arr, dtype=np.int64)
        cycles, stall, done, tail, dram_busy, sram_busy, pe_busy = tile_pipeline(
            cols[0], cols[1], cols[2], cols[3], bw, dlat, ports, bpc, slat, opc, DOUBLE_BUFFERED)
        stats = PipelineStats(cycles=int(cycles))
        # per stage, over each run of consecutive tiles of that stage: the cycles from the
        # compute's end before the run to its last tile's end, and the run's stalls
        stage_cycles, stage_stalls = stats.stage_cycles, stats.stage_stalls
        ends = [i for i in range(1, n) if not (stages[i] is stages[i - 1] or stages[i] == stages[i - 1])]
        ends.append(n)
        done_l = done.tolist()
        stall_sum = np.cumsum(stall).tolist()
        a, before, stalled = 0, 0, 0
        for b in ends:
            stage = stages[a]
            stage_stalls[stage] = stage_stalls.get(stage, 0) + stall_sum[b - 1] - stalled
            stage_cycles[stage] = stage_cycles.get(stage, 0) + done_l[b - 1] - before
            a, before, stalled = b, done_l[b - 1], stall_sum[b - 1]
        stage_cycles[stages[-1]] += int(tail)
        stats.stall_cycles = stall_sum[-1]
        self.dram.busy_cycles += int(dram_busy)
        self.sram.busy_cycles += int(sram_busy)
        self.pe.busy_cycles += int(pe_busy)
        if cycles:
            self.env.run(until=self.env.now + int(cycles))  # time moves as the simpy run moves it
        return stats

    def run_simpy(self, tiles: list[Tile]) -> PipelineStats:
        """The simpy model: the reference timing."""
        env = self.env
        store = simpy.Store(env)  # fetched tiles, in order
        # the tile buffers: a fetch takes a free one, the compute that used it frees it, so
        # tile i+2 loads only once tile i is computed (the loader runs one tile ahead)
        free = simpy.Container(env, capacity=DOUBLE_BUFFERED, init=DOUBLE_BUFFERED)
        stats = PipelineStats()
        start = env.now

        def loader():
            for tile in tiles:
                yield free.get(1)
                yield from self.dram.transfer(tile.dram_in_bits)
                if tile.dram_in_bits:
                    yield from self.sram.access(tile.dram_in_bits)  # the fill writes the buffer
                yield store.put(tile)

        def writeback(bits):
            yield from self.sram.access(bits)
            yield from self.dram.transfer(bits)

        def compute():
            last = env.now
            pending = []
            for _ in tiles:
                t0 = env.now
                tile = yield store.get()
                stall = env.now - t0
                cycles = max(self.pe.cycles(tile.pe_ops), self.sram.cycles(tile.sram_bits))
                with self.pe.resource.request() as pe_req, self.sram.resource.request() as port:
                    yield pe_req & port
                    yield env.timeout(cycles)
                    self.pe.busy_cycles += self.pe.cycles(tile.pe_ops)
                    self.sram.busy_cycles += self.sram.cycles(tile.sram_bits)
                yield free.put(1)  # its buffer takes the next fetch
                if tile.dram_out_bits:
                    pending.append(env.process(writeback(tile.dram_out_bits)))
                stats.stall_cycles += stall
                stats.stage_stalls[tile.stage] = stats.stage_stalls.get(tile.stage, 0) + stall
                stats.stage_cycles[tile.stage] = stats.stage_cycles.get(tile.stage, 0) + env.now - last
                last = env.now
            if pending:
                yield env.all_of(pending)
                stats.stage_cycles[tiles[-1].stage] += env.now - last

        env.process(loader())
        done = env.process(compute())
        env.run(until=done)
        stats.cycles = env.now - start
        return stats
