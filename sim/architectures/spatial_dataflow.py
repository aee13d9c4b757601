"""Spatial dataflow (the paper's proposal): every layer on its own PE group, weights resident.

Each layer is placed on a group of PEs big enough to hold its weights (and, in SNN mode, its
membrane potentials) in the PEs' local memories; operands (spikes or activations) stream from
one group to the next over a simple interconnect; the layers form a pipeline whose throughput
is set by the slowest stage. The layers form a graph: a layer receives one stream of
operands per input edge (an add's operands, each from its own source group) and a layer with
several consumers sends its outputs to each. Every count and option is written out in
docs/architectures/spatial_dataflow.md; this module implements exactly that text. Placement
(PE groups, folds, hops) is the mapping policy shared with the closed form
(sim.mapping.spatial_dataflow); counts come from the trace's real events (sim.workload); time
from a simpy pipeline (sim.architectures.spatial_dataflow_pipeline). Nothing here knows an
energy price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, Simulator, add_ledger, add_workload
from sim.mapping.encoding import address_bits
from sim.architectures.spatial_dataflow_pipeline import TxnArray, run_phase, steady_interval
from sim.engine import Dram, Ledger
from sim.mapping.spatial_dataflow import Group, place
from sim.trace import LayerSpec
from sim.workload import LayerEvents, SampleEvents, Workload, add_totals, new_totals

DRAM, MEM, LINK, PE = "dram", "local_memory", "interconnect", "pe_array"


@dataclass
class Work:
    """What one transaction of a stage does: PE ops, local-memory bits, interconnect words
    received, off-chip bits."""

    ops: int = 0
    mem_bits: int = 0
    words: int = 0
    dram_bits: int = 0


class SpatialDataflow(Simulator):
    """Replays a workload on the spatial dataflow in SNN or ANN-twin mode."""

    name = "spatial_dataflow"

    def __init__(self, spec: ArchSpec, workload: Workload):
        super().__init__(spec, workload)
        self.m = spec.mapping
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.n_pes = spec[PE].rows * spec[PE].cols
        self.word = spec[LINK].width_bits
        # per layer name, its input elements that are the network's stored input spikes
        # (rate or event encoding): they enter from DRAM at the input port
        self.network_inputs = {l.name: workload.network_input_elements(i) for i, l in enumerate(workload.layers)}
        #: layers whose output is a current (membrane/current addition): their consumers (adds)
        #: receive N accumulated values per step (SNN) / per sample (ANN) on that edge
        self.currents = {l.name for l in workload.layers if l.output == "current"}

    # -- placement ----------------------------------------------------------------------
    def place(self, mode: str) -> list[Group]:
        """PE groups of the workload's layers in ``mode``, in layer order
        (:func:`sim.mapping.spatial_dataflow.place`, given the trace's layers: passthroughs
        tell it the graph)."""
        return place(self.spec, self.wl.trace.layers, mode)

    # -- counting -----------------------------------------------------------------------
    def _deliver(self, led: Ledger, l: LayerSpec, g: Group, action: str, per_synapse: int,
                 per_input: int, words_each: int, w: Work, edges=None) -> int:
        """Operand movements into the group: one per synapse (``per_synapse`` delivery) or one
        multicast per input operand; with ``per_hop`` each also pays its edge's hops − 1
        (``edges``: per input edge, (per_synapse, per_input) of that edge; None for a layer
        with one edge). Returns the local weight reads the delivery implies."""
        multicast = self.m["delivery"] == "multicast"
        transfers = (per_input if multicast else per_synapse) * words_each
        led.add(l.name, LINK, action, transfers, self.word)
        if self.m["per_hop"]:
            if edges is None:
                hops = transfers * (g.hops - 1)
            else:
                hops = sum(int(pi if multicast else ps) * words_each * (e.hops - 1)
                           for (ps, pi), e in zip(edges, g.edges))
            led.add(l.name, LINK, "hop", hops, self.word)
        w.words += transfers
        return per_synapse if multicast and l.n_weights else 0

    def _boundary(self, led: Ledger, l: LayerSpec, g: Group, bits: int, w: Work, out_bits: int | None = None) -> None:
        """Fold boundaries: a layer with a consumer in a later fold writes its outputs to DRAM
        once (``out_bits`` per value, default ``bits``: a current layer's are wider), and a
        layer reads back each spike / activation operand whose source ran in an earlier fold
        (``bits`` per value; current operands: :meth:`_currents`)."""
        out_bits = bits if out_bits is None else out_bits
        reads = (l.n_inputs // l.n_operands) * sum(e.via_dram and e.source not in self.currents for e in g.edges)
        writes = l.n_neurons if g.writes_out else 0
        led.add(l.name, DRAM, "boundary_read", reads, bits)
        led.add(l.name, DRAM, "boundary_write", writes, out_bits)
        w.dram_bits += reads * bits + writes * out_bits

    def _currents(self, led: Ledger, l: LayerSpec, g: Group, bits: int, w: Work) -> int:
        """An add's current operands (membrane/current addition), once per step (SNN) or
        sample (ANN): each of the n values of every current edge moves once to the group
        (``interconnect.current_transfer``, ⌈bits/w⌉ words each; with ``per_hop`` the edge's
        hops − 1 more), read back from DRAM first when its source ran in an earlier fold
        (``dram.current_read``, ``bits``). Returns the values (one add each); records
        nothing for a layer without current operands."""
        edges = [e for e in g.edges if e.source in self.currents]
        if not edges:
            return 0
        n, words = l.n_inputs // l.n_operands, math.ceil(bits / self.word)
        values = n * len(edges)
        led.add(l.name, LINK, "current_transfer", values * words, self.word)
        if self.m["per_hop"]:
            led.add(l.name, LINK, "hop", sum(n * words * (e.hops - 1) for e in edges), self.word)
        back = n * sum(e.via_dram for e in edges)
        if g.folds > 1:
            led.add(l.name, DRAM, "current_read", back, bits)
        w.words += values * words
        w.dram_bits += back * bits
        return values

    def _weights(self, led: Ledger, l: LayerSpec, folded: bool, w: Work) -> None:
        """Folded layers reload their weights from DRAM once per sample; resident ones never."""
        n = l.n_weights if folded else 0
        led.add(l.name, DRAM, "weight_read", n, self.d.weight_bits)
        led.add(l.name, MEM, "weight_write", n, self.d.weight_bits)
        w.dram_bits += n * self.d.weight_bits
        w.mem_bits += n * self.d.weight_bits

    def count_ann(self, led: Ledger, l: LayerSpec, g: Group, ev: LayerEvents, edges=None) -> Work:
        """One sample of layer ``l`` in the ANN twin (``edges``: see :meth:`_deliver`)."""
        d, name, w = self.d, l.name, Work()
        zs = self.m["zero_skipping"]
        macs = ev.ann_macs if zs else ev.dense_macs
        in_bits = d.input_bits if ev.analog_input else self.act_bits
        reads = self._deliver(led, l, g, "act_transfer", macs, ev.ann_nnz_in if zs else l.n_inputs - ev.current_in,
                              math.ceil(in_bits / self.word), w, edges)
        currents = self._currents(led, l, g, d.psum_bits, w)  # an add's current operands: once each
        led.add(name, MEM, "weight_read", reads, d.weight_bits)
        w.mem_bits += reads * d.weight_bits
        spiking = l.output == "spikes"
        compares = 0
        if l.n_weights:
            led.add(name, PE, "mac", macs, d.weight_bits)
        elif l.kind == "maxpool":  # each operand against its window's running max; no quantise
            led.add(name, PE, "compare", macs, in_bits)
        else:  # average pooling, a residual add (and its current operands): a fixed-weight sum
            led.add(name, PE, "add", macs + currents, d.psum_bits)
        if l.has_neurons:
            compares = l.n_neurons if spiking and self.m["neuron_ops"] == "hardware" else 0
            led.add(name, PE, "compare", compares, d.psum_bits)  # clamp + quantise
        w.ops += macs + currents + compares
        self._weights(led, l, g.folds > 1, w)
        # a current layer's outputs are its psums (pre-activation, psum bits)
        self._boundary(led, l, g, self.act_bits, w, d.psum_bits if l.output == "current" else None)
        if ev.analog_input:
            led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
            w.dram_bits += l.n_inputs * d.input_bits
        levels = self.network_inputs[name]
        if levels:  # rate / event encoding: the twin's input levels, once per sample
            led.add(name, DRAM, "input_read", levels, self.act_bits)
            w.dram_bits += levels * self.act_bits
        if l.output == "potential":  # the readout leaves the chip
            led.add(name, DRAM, "output_write", l.n_neurons, d.psum_bits)
            w.dram_bits += l.n_neurons * d.psum_bits
        return w

    def count_snn_step(self, led: Ledger, l: LayerSpec, g: Group, ev: LayerEvents, t: int,
                       edges=None) -> Work:
        """Step ``t`` of one sample of layer ``l`` in the SNN (``edges``: see :meth:`_deliver`).
        A neuron layer integrates its events into membranes and updates every neuron; a
        current layer integrates its events the same way into its N accumulators but has no
        neuron step (no compare, reset or leak: its consumers receive the values, see
        :meth:`_currents`); a max-pool is stateless: one 1-bit compare (the spike OR) per
        synaptic event."""
        d, name, w, T = self.d, l.name, Work(), self.wl.T
        N, E, F, S = l.n_neurons, int(ev.synops[t]), int(ev.out_spikes[t]), int(ev.in_spikes[t])
        mb, pb = d.membrane_bits, d.psum_bits
        spiking, pool = l.output == "spikes", l.kind == "maxpool"
        adds = 0
        if ev.analog_input:  # never a max-pool: the trace format refuses one on the image
            # direct encoding: the constant input current is computed once, like the ANN's layer 1
            zs = self.m["zero_skipping"]
            macs = (ev.ann_macs if zs else ev.dense_macs) if t == 0 else 0
            inputs = (ev.ann_nnz_in if zs else l.n_inputs) if t == 0 else 0
            reads = self._deliver(led, l, g, "act_transfer", macs, inputs,
                                  math.ceil(d.input_bits / self.word), w)
            led.add(name, PE, "mac", macs, d.weight_bits)
            led.add(name, DRAM, "input_read", l.n_inputs if t == 0 else 0, d.input_bits)
            led.add(name, MEM, "current_write", N if t == 0 else 0, pb)
            led.add(name, MEM, "current_read", N, pb)  # each step every neuron integrates it
            w.ops += macs
            w.dram_bits += (l.n_inputs * d.input_bits) if t == 0 else 0
            w.mem_bits += (N if t == 0 else 0) * pb + N * pb
            adds += N
        else:
            if self.network_inputs[name]:  # rate / event encoding: this step's input spikes
                bits = address_bits(l.n_inputs // l.n_operands)  # an address within the input
                led.add(name, DRAM, "spike_read", int(ev.network_spikes[t]), bits)
                w.dram_bits += int(ev.network_spikes[t]) * bits
            words = 1 if self.m["delivery"] == "per_synapse" else math.ceil(address_bits(l.n_inputs) / self.word)
            reads = self._deliver(led, l, g, "spike_transfer", E, S, words, w, edges)
            if pool:  # the spike OR: one compare per input spike and covering window
                led.add(name, PE, "compare", E, 1)
                w.ops += E
            else:
                adds += E + self._currents(led, l, g, mb, w)  # an add's current operands: every step
        led.add(name, MEM, "weight_read", reads, d.weight_bits)
        w.mem_bits += reads * d.weight_bits
        # every neuron's membrane (a current layer's accumulator) is read and written back once
        # per step (events accumulate into it in between, in the PE's accumulator); a max-pool
        # has none
        Nm = 0 if pool else N
        led.add(name, MEM, "membrane_read", Nm, mb)
        led.add(name, MEM, "membrane_write", Nm, mb)
        w.mem_bits += 2 * Nm * mb
        fires = spiking and not pool
        compares = N if fires else 0
        if fires:  # the reset (any rule): ungated in the paper's accounting, else only on fire
            adds += N if self.m["neuron_ops"] == "paper" else F
        led.add(name, PE, "add", adds, mb)
        if l.has_neurons:  # (a max-pool's compares are its 1-bit ORs; a current layer has none)
            led.add(name, PE, "compare", compares, mb)
        w.ops += adds + compares
        if l.neuron is not None and l.neuron.leaks:  # LIF: the membrane decays once per step
            led.add(name, PE, "leak", N, mb)
            w.ops += N
        self._weights(led, l, g.folds > 1 and t == 0, w)
        # one bit per neuron per step (a current layer's values: membrane bits)
        self._boundary(led, l, g, 1, w, mb if l.output == "current" else None)
        out = N if (l.output == "potential" and t == T - 1) else 0
        led.add(name, DRAM, "output_write", out, mb)
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
    def _start(self, mode: str) -> "_Session":
        return _Session(self, mode)


def _placement_json(g: Group) -> dict:
    """A group as the report's ``extra.placement`` entry (its keys are part of the report
    format: layer, pes, first_pe, bits, hops, fold)."""
    return {"layer": g.layer, "pes": g.pes, "first_pe": g.first_pe, "bits": g.state_bits,
            "hops": g.hops, "fold": g.fold}


class _Session:
    """One replay of a mode: every sample's transactions are counted as it arrives; the
    simpy layer pipeline runs over all of them at the end (samples stream through it)."""

    def __init__(self, arch: SpatialDataflow, mode: str):
        self.arch, self.mode = arch, mode
        self.groups = arch.place(mode)
        self.by_layer = {g.layer: g for g in self.groups}
        self.folds: dict[int, list[Group]] = {}
        for g in self.groups:
            self.folds.setdefault(g.fold, []).append(g)
        self.steps = arch.wl.T if mode == "snn" else 1
        self.led = Ledger()
        self.work = new_totals(arch.wl.layers)
        # per sample: int64 [layer index, step, (cycles, dram_bits)], one transaction per step
        self.txns: list[np.ndarray] = []

    def _edges(self, events: SampleEvents, i: int, g: Group):
        """Per input edge of compute layer i, its (per-synapse, per-input) operand counts — per
        step in SNN mode ([T][edge]), per sample in ANN mode ([edge]) — when the hops of
        several edges must be told apart (``per_hop``); None otherwise."""
        a = self.arch
        if len(g.edges) < 2 or not a.m["per_hop"]:
            return None
        wl, k = a.wl, len(g.edges)
        n, fan = wl.operand_size(i), wl.fanout(g.layer)
        if self.mode == "snn":
            ptr, idx = events.input_spike_indices(i)
            key = np.repeat(np.arange(wl.T), np.diff(ptr)) * k + idx // n
            s = np.bincount(key, minlength=wl.T * k).reshape(wl.T, k)
            e = np.bincount(key, weights=fan[idx], minlength=wl.T * k).astype(np.int64).reshape(wl.T, k)
            return [list(zip(e[t], s[t])) for t in range(wl.T)]
        if not a.m["zero_skipping"]:  # dense: every element of every operand (a current one: none)
            cur = wl.current_operands(i)
            return [(0, 0) if j in cur else (wl.layers[i].dense_ops // k, n) for j in range(k)]
        nz = events.input_nonzero(i)
        nnz = np.bincount(nz // n, minlength=k)
        macs = np.bincount(nz // n, weights=fan[nz], minlength=k).astype(np.int64)
        return list(zip(macs, nnz))

    def add(self, events: SampleEvents) -> None:
        a, led = self.arch, self.led
        per_layer = []
        for i, (l, ev) in enumerate(zip(a.wl.layers, events.layers)):
            g = self.by_layer[l.name]
            edges = self._edges(events, i, g)
            if self.mode == "ann":
                ws = [a.count_ann(led, l, g, ev, edges)]
            else:
                ws = [a.count_snn_step(led, l, g, ev, t, None if edges is None else edges[t])
                      for t in range(self.steps)]
            per_layer.append([(a.stage_cycles(g, w), w.dram_bits) for w in ws])
        add_totals(self.work, a.wl.layers, events.layers, self.mode, a.wl.T, a.m["zero_skipping"])
        self.txns.append(np.array(per_layer, dtype=np.int64).reshape(len(per_layer), self.steps, 2))

    # -- a replay in chunks of samples (sim.architectures.base.Session) ------------------
    # Samples stream through one pipeline (a sample's cycles depend on the samples around it:
    # the fill, back-pressure): a chunk hands over its transactions, and ``finish`` times
    # every sample's, in sample order, in the session that absorbed them.
    def state(self) -> dict:
        return {"ledger": self.led, "work": self.work, "txns": self.txns}

    def absorb(self, state: dict) -> None:
        add_ledger(self.led, state["ledger"])
        add_workload(self.work, state["work"])
        self.txns.extend(state["txns"])

    def _stage_sources(self, ks) -> list[list[int]]:
        """For a phase running compute layers ``ks`` (in order) as its stages: per stage, the
        stages it waits for — its sources in the same phase (the network input and earlier
        folds are already there)."""
        local = {k: j for j, k in enumerate(ks)}
        return [list(dict.fromkeys(local[s] for s in self.arch.wl.sources[k] if s in local)) for k in ks]

    def finish(self) -> RunResult:
        a, mode, txns, folds, groups, steps = self.arch, self.mode, self.txns, self.folds, self.groups, self.steps
        samples = len(txns)
        env = simpy.Environment()
        s = a.spec
        dram = Dram(env, s[DRAM].width_bits, s[DRAM].bandwidth_bits_per_cycle, s[DRAM].latency_cycles)
        layers = a.wl.layers
        index = {l.name: k for k, l in enumerate(layers)}
        attributed = {l.name: 0 for l in layers}
        busy = dict(attributed)
        stalls, interval = 0, None
        if len(folds) == 1:  # all samples stream through one pipeline
            table = np.stack(txns) if txns else np.zeros((0, len(layers), steps, 2), np.int64)
            stages = [TxnArray(table[:, k]) for k in range(len(layers))]
            phases = [(list(layers), run_phase(env, dram, stages, a.m["stage_buffer"],
                                               self._stage_sources(range(len(layers)))))]
            interval = steady_interval(phases[0][1].done[-1], steps)
        else:  # folds take turns on the chip, sample by sample
            phases = []
            for smp in txns:
                for fold in folds.values():
                    ks = [index[g.layer] for g in fold]
                    phases.append(([layers[k] for k in ks],
                                   run_phase(env, dram, [TxnArray(smp[k]) for k in ks], a.m["stage_buffer"],
                                             self._stage_sources(ks))))
        for ls, ph in phases:
            for k, l in enumerate(ls):
                attributed[l.name] += ph.attributed[k]
                busy[l.name] += ph.busy[k]
                stalls += ph.stall[k]
        cycles = env.now
        pe_busy = sum(busy[g.layer] * g.pes for g in groups)
        util = {PE: pe_busy / (cycles * a.n_pes) if cycles else 0.0,
                DRAM: dram.busy_cycles / cycles if cycles else 0.0}
        slowest = max(busy, key=busy.get)
        extra = {
            "placement": {g.layer: _placement_json(g) for g in groups},
            "folds": len(folds),
            "pes_used": sum(g.pes for g in folds[0]) if len(folds) == 1 else a.n_pes,
            "pes_on_chip": a.n_pes,
            "ann_activation_bits": a.act_bits,
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
        return RunResult(a.name, mode, samples, self.led, cycles, stalls, attributed, util, self.work, notes, extra)
