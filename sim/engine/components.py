"""simpy components. A simpy event is a transaction with a cycle-accurate duration; the
individual accesses inside it are counted by the kernels, not simulated one by one.

Contention: each component is a simpy Resource (DRAM: one channel; SRAM: ``ports``; PE
array: one), so a transaction that finds it busy waits, and the wait shows as a stall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

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

    def run(self, tiles: list[Tile]) -> PipelineStats:
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
