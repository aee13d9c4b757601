"""Spatial dataflow (the paper's proposal): every layer on its own PE group, weights resident.

Each layer is placed on a group of PEs big enough to hold its weights (and, in SNN mode, its
membrane potentials) in the PEs' local memories; operands (spikes or activations) stream from
one group to the next over a simple interconnect; the layers form a pipeline whose throughput
is set by the slowest stage. Every count and option is written out in
docs/architectures/spatial_dataflow.md; this module implements exactly that text. Counts come
from the trace's real events (sim.workload); time from a simpy pipeline
(sim.architectures.spatial_dataflow_pipeline). Nothing here knows an energy price.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass

import simpy

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, address_bits
from sim.architectures.spatial_dataflow_pipeline import Txn, run_phase, steady_interval
from sim.engine import Dram, Ledger
from sim.errors import ParameterError
from sim.trace import LayerSpec
from sim.workload import LayerEvents, Workload

DRAM, MEM, LINK, PE = "dram", "local_memory", "interconnect", "pe_array"


@dataclass(frozen=True)
class Group:
    """A layer's PE group: ``pes`` PEs from ``first_pe`` in snake order over the chip's grid;
    ``bits`` of resident state (weights, and in SNN mode membranes and layer 1's input
    current); ``hops`` from the producer's group (or the input port) to this one."""

    layer: str
    pes: int
    first_pe: int
    bits: int
    hops: int
    fold: int


@dataclass
class Work:
    """What one transaction of a stage does: PE ops, local-memory bits, interconnect words
    received, off-chip bits."""

    ops: int = 0
    mem_bits: int = 0
    words: int = 0
    dram_bits: int = 0


def snake_xy(index: int, cols: int) -> tuple[int, int]:
    """(row, col) of PE ``index`` when PEs are numbered boustrophedon over ``cols`` columns."""
    row, col = divmod(index, cols)
    return row, (col if row % 2 == 0 else cols - 1 - col)


class SpatialDataflow:
    """Replays a workload on the spatial dataflow in SNN or ANN-twin mode."""

    name = "spatial_dataflow"

    def __init__(self, spec: ArchSpec, workload: Workload):
        self.spec, self.wl, self.d = spec, workload, spec.data
        self.m = spec.mapping
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.rows, self.cols = spec[PE].rows, spec[PE].cols
        self.n_pes = self.rows * self.cols
        self.cap_bits = spec[MEM].capacity_bytes * 8
        self.word = spec[LINK].width_bits

    # -- placement ----------------------------------------------------------------------
    def state_bits(self, l: LayerSpec, mode: str, analog: bool) -> int:
        """Bits a layer keeps resident on its group: weights; SNN: membranes, and layer 1's
        constant input current."""
        bits = l.n_weights * self.d.weight_bits
        if mode == "snn":
            bits += l.n_neurons * self.d.membrane_bits
            if analog:
                bits += l.n_neurons * self.d.psum_bits
        return bits

    def place(self, mode: str) -> list[Group]:
        """PE groups in layer order. A group gets the fewest PEs whose local memories hold its
        state; with ``pe_allocation: balanced`` the chip's spare PEs go, one at a time, to the
        fold's group with the most dense work per PE. Layers that do not fit on the chip
        together are an error, or with ``on_overflow: fold`` are split into consecutive folds
        that run one after the other on the whole chip."""
        layers = self.wl.layers
        first = {l.name: self.wl.producer(l.name) is None for l in layers}
        bits = [self.state_bits(l, mode, first[l.name]) for l in layers]
        need = [max(1, math.ceil(b / self.cap_bits)) for b in bits]
        where = f"components.{PE}"
        for l, g in zip(layers, need):
            if g > self.n_pes:
                raise ParameterError(self.spec.path, where,
                                     f"layer {l.name} alone needs {g} PEs of {self.cap_bits // 8} bytes "
                                     f"to hold its state; the chip has {self.n_pes}")
        if sum(need) > self.n_pes and self.m["on_overflow"] == "error":
            raise ParameterError(self.spec.path, where,
                                 f"the model does not fit on the chip: its layers need {sum(need)} PEs "
                                 f"({self.cap_bits // 8} bytes each), the chip has {self.n_pes} "
                                 f"({self.rows}x{self.cols}); enlarge pe_array or local_memory, or set "
                                 f"mapping.on_overflow=fold")
        folds: list[list[int]] = [[]]
        used = 0
        for i, g in enumerate(need):
            if used + g > self.n_pes:
                folds.append([])
                used = 0
            folds[-1].append(i)
            used += g
        pes = list(need)
        if self.m["pe_allocation"] == "balanced":
            for fold in folds:
                spare = self.n_pes - sum(need[i] for i in fold)
                heap = [(-max(1, layers[i].dense_macs) / pes[i], i) for i in fold]
                heapq.heapify(heap)
                for _ in range(spare):
                    _, i = heapq.heappop(heap)
                    pes[i] += 1
                    heapq.heappush(heap, (-max(1, layers[i].dense_macs) / pes[i], i))
        groups: list[Group] = []
        for f, fold in enumerate(folds):
            start, prev_centre = 0, (0, 0)  # a fold's input arrives at PE 0 (the chip's port)
            for i in fold:
                centre = snake_xy(start + pes[i] // 2, self.cols)
                hops = max(1, abs(centre[0] - prev_centre[0]) + abs(centre[1] - prev_centre[1]))
                groups.append(Group(layers[i].name, pes[i], start, bits[i], hops, f))
                start += pes[i]
                prev_centre = centre
        return groups

    # -- counting -----------------------------------------------------------------------
    def _deliver(self, led: Ledger, l: LayerSpec, g: Group, action: str, per_synapse: int,
                 per_input: int, words_each: int, w: Work, t: int | None) -> int:
        """Operand movements into the group: one per synapse (``per_synapse`` delivery) or one
        multicast per input operand; returns the local weight reads the delivery implies."""
        multicast = self.m["delivery"] == "multicast"
        transfers = (per_input if multicast else per_synapse) * words_each
        led.add(l.name, LINK, action, transfers, self.word, t)
        if self.m["per_hop"]:
            led.add(l.name, LINK, "hop", transfers * (g.hops - 1), self.word, t)
        w.words += transfers
        return per_synapse if multicast and l.n_weights else 0

    def _boundary(self, led: Ledger, l: LayerSpec, g: Group, groups_by_fold: dict, bits: int,
                  w: Work, t: int | None) -> None:
        """Fold boundaries: outputs of a fold's last layer go to DRAM, and the next fold's first
        layer reads its inputs back (``bits`` per value)."""
        fold = groups_by_fold[g.fold]
        reads = l.n_inputs if (g.fold > 0 and fold[0] is g) else 0
        writes = l.n_neurons if (g.fold + 1 < len(groups_by_fold) and fold[-1] is g) else 0
        led.add(l.name, DRAM, "boundary_read", reads, bits, t)
        led.add(l.name, DRAM, "boundary_write", writes, bits, t)
        w.dram_bits += (reads + writes) * bits

    def _weights(self, led: Ledger, l: LayerSpec, folded: bool, w: Work, t: int | None) -> None:
        """Folded layers reload their weights from DRAM once per sample; resident ones never."""
        n = l.n_weights if folded else 0
        led.add(l.name, DRAM, "weight_read", n, self.d.weight_bits, t)
        led.add(l.name, MEM, "weight_write", n, self.d.weight_bits, t)
        w.dram_bits += n * self.d.weight_bits
        w.mem_bits += n * self.d.weight_bits

    def count_ann(self, led: Ledger, l: LayerSpec, g: Group, ev: LayerEvents, folds: dict) -> Work:
        d, name, w = self.d, l.name, Work()
        zs = self.m["zero_skipping"]
        macs = ev.ann_macs if zs else ev.dense_macs
        in_bits = d.input_bits if ev.analog_input else self.act_bits
        reads = self._deliver(led, l, g, "act_transfer", macs, ev.ann_nnz_in if zs else l.n_inputs,
                              math.ceil(in_bits / self.word), w, None)
        led.add(name, MEM, "weight_read", reads, d.weight_bits)
        w.mem_bits += reads * d.weight_bits
        if l.n_weights:
            led.add(name, PE, "mac", macs, d.weight_bits)
        else:  # average pooling: a fixed-weight sum
            led.add(name, PE, "add", macs, d.psum_bits)
        spiking = l.output == "spikes"
        compares = l.n_neurons if spiking and self.m["neuron_ops"] == "hardware" else 0
        led.add(name, PE, "compare", compares, d.psum_bits)  # clamp + quantise
        w.ops += macs + compares
        self._weights(led, l, len(folds) > 1, w, None)
        self._boundary(led, l, g, folds, self.act_bits, w, None)
        if ev.analog_input:
            led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
            w.dram_bits += l.n_inputs * d.input_bits
        if not spiking:  # the readout leaves the chip
            led.add(name, DRAM, "output_write", l.n_neurons, d.psum_bits)
            w.dram_bits += l.n_neurons * d.psum_bits
        return w

    def count_snn_step(self, led: Ledger, l: LayerSpec, g: Group, ev: LayerEvents, t: int,
                       folds: dict) -> Work:
        d, name, w, T = self.d, l.name, Work(), self.wl.T
        N, E, F, S = l.n_neurons, int(ev.synops[t]), int(ev.out_spikes[t]), int(ev.in_spikes[t])
        mb, pb = d.membrane_bits, d.psum_bits
        spiking = l.output == "spikes"
        adds = 0
        if ev.analog_input:
            # direct encoding: the constant input current is computed once, like the ANN's layer 1
            zs = self.m["zero_skipping"]
            macs = (ev.ann_macs if zs else ev.dense_macs) if t == 0 else 0
            inputs = (ev.ann_nnz_in if zs else l.n_inputs) if t == 0 else 0
            reads = self._deliver(led, l, g, "act_transfer", macs, inputs,
                                  math.ceil(d.input_bits / self.word), w, t)
            led.add(name, PE, "mac", macs, d.weight_bits, t)
            led.add(name, DRAM, "input_read", l.n_inputs if t == 0 else 0, d.input_bits, t)
            led.add(name, MEM, "current_write", N if t == 0 else 0, pb, t)
            led.add(name, MEM, "current_read", N, pb, t)  # each step every neuron integrates it
            w.ops += macs
            w.dram_bits += (l.n_inputs * d.input_bits) if t == 0 else 0
            w.mem_bits += (N if t == 0 else 0) * pb + N * pb
            adds += N
        else:
            words = 1 if self.m["delivery"] == "per_synapse" else math.ceil(address_bits(l.n_inputs) / self.word)
            reads = self._deliver(led, l, g, "spike_transfer", E, S, words, w, t)
            adds += E
        led.add(name, MEM, "weight_read", reads, d.weight_bits, t)
        w.mem_bits += reads * d.weight_bits
        # every neuron's membrane is read and written back once per step (events accumulate
        # into it in between, in the PE's accumulator)
        led.add(name, MEM, "membrane_read", N, mb, t)
        led.add(name, MEM, "membrane_write", N, mb, t)
        w.mem_bits += 2 * N * mb
        compares = N if spiking else 0
        if spiking:  # reset by subtraction: ungated in the paper's accounting, else only on fire
            adds += N if self.m["neuron_ops"] == "paper" else F
        led.add(name, PE, "add", adds, mb, t)
        led.add(name, PE, "compare", compares, mb, t)
        w.ops += adds + compares
        self._weights(led, l, len(folds) > 1 and t == 0, w, t)
        self._boundary(led, l, g, folds, 1, w, t)  # one bit per neuron per step
        out = N if (not spiking and t == T - 1) else 0
        led.add(name, DRAM, "output_write", out, mb, t)
        w.dram_bits += out * mb
        return w

    def stage_cycles(self, g: Group, w: Work) -> int:
        """Cycles of one transaction on its group, DRAM excluded: the slowest of PE compute,
        local-memory bandwidth and interconnect delivery, plus the latencies."""
        s = self.spec
        mem_bw = s[MEM].width_bits * s[MEM].banks
        busy = max(math.ceil(w.ops / (g.pes * s[PE].ops_per_cycle)),
                   math.ceil(w.mem_bits / (g.pes * mem_bw)),
                   math.ceil(w.words / (g.pes * s[LINK].words_per_cycle)))
        return busy + s[MEM].latency_cycles + g.hops * s[LINK].latency_cycles

    # -- replay -------------------------------------------------------------------------
    def run(self, mode: str, samples: int, progress=None) -> RunResult:
        if mode not in ("snn", "ann"):
            raise ParameterError(None, "--mode", f"unknown mode {mode!r}")
        groups = self.place(mode)
        by_layer = {g.layer: g for g in groups}
        folds: dict[int, list[Group]] = {}
        for g in groups:
            folds.setdefault(g.fold, []).append(g)
        steps = self.wl.T if mode == "snn" else 1
        led = Ledger(by_step=(mode == "snn"))
        work = {l.name: dict.fromkeys(("spikes_in", "spikes_out", "synaptic_ops", "macs", "neuron_updates"), 0)
                for l in self.wl.layers}
        # txns[sample][layer index] = one Txn per step
        txns: list[list[list[Txn]]] = []
        for i in range(samples):
            events = self.wl.sample_events(i)
            per_layer = []
            for l, ev in zip(self.wl.layers, events):
                g = by_layer[l.name]
                if mode == "ann":
                    ws = [self.count_ann(led, l, g, ev, folds)]
                else:
                    ws = [self.count_snn_step(led, l, g, ev, t, folds) for t in range(steps)]
                per_layer.append([Txn(self.stage_cycles(g, w), w.dram_bits) for w in ws])
                self._workload(work[l.name], l, ev, mode)
            txns.append(per_layer)
            if progress:
                progress(1)
        env = simpy.Environment()
        s = self.spec
        dram = Dram(env, s[DRAM].width_bits, s[DRAM].bandwidth_bits_per_cycle, s[DRAM].latency_cycles)
        index = {l.name: k for k, l in enumerate(self.wl.layers)}
        attributed = {l.name: 0 for l in self.wl.layers}
        busy = dict(attributed)
        stalls, interval = 0, None
        if len(folds) == 1:  # all samples stream through one pipeline
            stages = [[txn for smp in txns for txn in smp[k]] for k in range(len(self.wl.layers))]
            phases = [(list(self.wl.layers), run_phase(env, dram, stages, self.m["stage_buffer"]))]
            interval = steady_interval(phases[0][1].done[-1], steps)
        else:  # folds take turns on the chip, sample by sample
            phases = []
            for smp in txns:
                for fold in folds.values():
                    ls = [self.wl.layers[index[g.layer]] for g in fold]
                    phases.append((ls, run_phase(env, dram, [smp[index[l.name]] for l in ls],
                                                 self.m["stage_buffer"])))
        for ls, ph in phases:
            for k, l in enumerate(ls):
                attributed[l.name] += ph.attributed[k]
                busy[l.name] += ph.busy[k]
                stalls += ph.stall[k]
        cycles = env.now
        pe_busy = sum(busy[g.layer] * g.pes for g in groups)
        util = {PE: pe_busy / (cycles * self.n_pes) if cycles else 0.0,
                DRAM: dram.busy_cycles / cycles if cycles else 0.0}
        slowest = max(busy, key=busy.get)
        extra = {
            "placement": {g.layer: asdict(g) for g in groups},
            "folds": len(folds),
            "pes_used": sum(g.pes for g in folds[0]) if len(folds) == 1 else self.n_pes,
            "pes_on_chip": self.n_pes,
            "ann_activation_bits": self.act_bits,
            "pipeline": {
                "stage_busy_cycles_per_sample": {k: v / samples for k, v in busy.items()},
                "bottleneck_stage": slowest,
                "steady_cycles_per_sample": interval,
                "first_sample_cycles": phases[0][1].done[-1][steps - 1] if len(folds) == 1 else None,
            },
        }
        notes = []
        if len(folds) > 1:
            notes.append(f"the model does not fit on the chip: {len(folds)} folds run in turn, each "
                         f"reloading its weights from DRAM every sample")
        return RunResult(self.name, mode, samples, led, cycles, stalls, attributed, util, work, notes, extra)

    def _workload(self, w: dict, l: LayerSpec, ev: LayerEvents, mode: str) -> None:
        """Workload totals, defined exactly as in memory_hierarchy (they belong to the trace)."""
        zs = self.m["zero_skipping"]
        macs = ev.ann_macs if zs else ev.dense_macs
        if mode == "ann":
            w["macs"] += macs
            w["neuron_updates"] += l.n_neurons
        else:
            w["spikes_in"] += int(ev.in_spikes.sum())
            w["spikes_out"] += int(ev.out_spikes.sum())
            w["synaptic_ops"] += int(ev.synops.sum())
            w["macs"] += macs if ev.analog_input else 0
            w["neuron_updates"] += l.n_neurons * self.wl.T
