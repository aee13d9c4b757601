"""Systolic array (SCALE-Sim-like): a rows x cols PE array fed by three SRAM buffers (ifmap,
filter, ofmap) and DRAM, every conv/linear layer an im2col GEMM folded onto the array under a
weight-, output- or input-stationary dataflow; the SNN runs one binary GEMM per time step on
the same array.

Every count and rule is written out in docs/architectures/systolic_array.md; this module
implements exactly that text. The folds, fold timing and access patterns are the mapping
policy of :mod:`sim.mapping.systolic_array`, shared with the closed form; the SNN's synaptic
events and spikes come from the trace (sim.workload); time comes from the tile pipeline of
sim.engine, one tile per fold (its DRAM traffic prefetched while the previous fold computes),
so stalls are the DRAM's. Nothing here knows an energy price.
"""

from __future__ import annotations

import numpy as np

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, Simulator, TileSession, split_evenly
from sim.engine import Ledger
from sim.mapping.memory_hierarchy import keeps_state
from sim.mapping.systolic_array import (DRAM, FILTER, IFMAP, OFMAP, PE, LayerPlan, check_mapping,
                                        im2col_nonzero, plan, streamed_rows, vector_cycles)
from sim.trace import LayerSpec
from sim.workload import LayerEvents, SampleEvents, Workload, add_totals


class SystolicArray(Simulator):
    """Replays a workload on the systolic array in SNN or ANN-twin mode."""

    name = "systolic_array"

    def __init__(self, spec: ArchSpec, workload: Workload):
        super().__init__(spec, workload)
        check_mapping(spec)
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.dataflow = spec.mapping["dataflow"]
        self.layer_io = spec.mapping["layer_io"]
        self.skip = spec.mapping["skip_zero_rows"]
        self.rows, self.cols = spec[PE].rows, spec[PE].cols
        self.rate = self.rows * self.cols * spec[PE].ops_per_cycle
        self.spike_input = workload.trace.meta.spike_input

    def plan(self, mode: str) -> dict[str, LayerPlan]:
        plans = plan(self.spec, self.wl.trace.layers, self.wl.T, mode, self.act_bits,
                     spike_input=self.spike_input)
        return {p.name: p for p in plans}

    def in_bits(self, ev: LayerEvents) -> int:
        return self.d.input_bits if ev.analog_input else self.act_bits

    # -- counting: one call per layer (ANN) or per layer and step (SNN) --------------------
    def _dram_in(self, led: Ledger, l: LayerSpec, p: LayerPlan, action: str, bits: int, unique: int) -> int:
        """The layer's input from DRAM into the ifmap buffer (when it comes from DRAM)."""
        n = unique * p.ifmap_passes if p.input_from_dram else 0
        led.add(l.name, DRAM, action, n, bits)
        led.add(l.name, IFMAP, "input_write" if action == "input_read" else "spike_write", n, bits)
        return n * bits

    def _weights_in(self, led: Ledger, l: LayerSpec, p: LayerPlan, fetch: bool) -> int:
        wb = self.d.weight_bits
        n = p.gemm.weights * p.filter_passes if fetch else 0
        led.add(l.name, DRAM, "weight_read", n, wb)
        led.add(l.name, FILTER, "weight_write", n, wb)
        return n * wb

    def _gemm_ann(self, led: Ledger, l: LayerSpec, p: LayerPlan, in_bits: int) -> tuple[int, int]:
        """The dense GEMM of a layer at ``in_bits`` per input (ANN, or the SNN's analog first
        layer once): (DRAM bits in, DRAM bits out)."""
        d, f, name = self.d, p.folds, l.name
        led.add(name, PE, "mac", p.gemm.macs, d.weight_bits)
        led.add(name, IFMAP, "input_read", f.ifmap_reads, in_bits)
        led.add(name, FILTER, "weight_read", f.filter_reads, d.weight_bits)
        led.add(name, OFMAP, "output_write", f.ofmap_writes, d.psum_bits)
        # on_chip: partial sums accumulate in the ofmap buffer; dram: they drain (SCALE-Sim)
        led.add(name, OFMAP, "psum_read", f.psum_reads if self.layer_io == "on_chip" else 0, d.psum_bits)
        dram_in = self._dram_in(led, l, p, "input_read", in_bits, p.gemm.in_unique)
        dram_in += self._weights_in(led, l, p, True)
        return dram_in, 0

    def count_ann(self, led: Ledger, l: LayerSpec, p: LayerPlan, ev: LayerEvents) -> tuple[int, int]:
        d, name = self.d, l.name
        in_bits = self.in_bits(ev)
        spiking = l.output == "spikes"
        out_bits = self.act_bits if spiking else d.psum_bits
        if p.gemm is not None:
            dram_in, _ = self._gemm_ann(led, l, p, in_bits)
            written, written_bits = p.folds.ofmap_writes, d.psum_bits
        else:
            ops, C = ev.dense_macs, ev.current_in
            led.add(name, IFMAP, "input_read", ops, in_bits)
            if C:
                led.add(name, IFMAP, "current_read", C, d.psum_bits)
            if l.kind == "maxpool":
                led.add(name, PE, "compare", ops, in_bits)
            else:
                led.add(name, PE, "add", ops + C, d.psum_bits)
            led.add(name, OFMAP, "output_write", l.n_neurons, out_bits)
            dram_in = self._dram_in(led, l, p, "input_read", in_bits, l.n_inputs - C)
            written, written_bits = l.n_neurons, out_bits
        if spiking and l.has_neurons:
            led.add(name, PE, "compare", l.n_neurons, d.psum_bits)  # clamp + quantise
        n = (written if self.layer_io == "dram" else l.n_neurons) if p.output_to_dram else 0
        led.add(name, DRAM, "output_write", n, written_bits)
        return dram_in, n * written_bits

    def count_snn_step(self, led: Ledger, l: LayerSpec, p: LayerPlan, ev: LayerEvents, t: int) -> tuple[int, int]:
        d, name, T, mb = self.d, l.name, self.wl.T, self.d.membrane_bits
        N, E, F = l.n_neurons, int(ev.synops[t]), int(ev.out_spikes[t])
        stateful = keeps_state(l)
        dram_in = dram_out = 0
        if ev.analog_input:
            if t == 0:  # the constant input current, computed once as a dense GEMM
                dram_in, _ = (self._gemm_ann(led, l, p, d.input_bits) if p.gemm is not None
                              else (0, 0))
            led.add(name, OFMAP, "psum_read", N, d.psum_bits)      # the stored current
            led.add(name, OFMAP, "membrane_read", N, mb)
            led.add(name, PE, "add", N + F, mb)
            led.add(name, OFMAP, "membrane_write", N, mb)
        elif p.gemm is not None:
            f = p.folds
            led.add(name, IFMAP, "spike_read", f.ifmap_reads, 1)
            led.add(name, FILTER, "weight_read", f.filter_reads, d.weight_bits)
            # E weights added in the array (a zero spike gates its PE); each column output
            # (one per output and row fold) added into the membrane or accumulator
            led.add(name, OFMAP, "membrane_read", f.ofmap_writes, mb)
            led.add(name, PE, "add", E + f.ofmap_writes + F, mb)
            led.add(name, OFMAP, "membrane_write", f.ofmap_writes, mb)
            dram_in += self._dram_in(led, l, p, "spike_read", 1, p.gemm.in_unique)
            dram_in += self._weights_in(led, l, p, t == 0 or p.weights_per_step)
        else:
            ops, C = ev.dense_macs, ev.current_in
            led.add(name, IFMAP, "spike_read", ops, 1)
            if C:
                led.add(name, IFMAP, "current_read", C, mb)
            if l.kind == "maxpool":
                led.add(name, PE, "compare", ops, 1)
            else:
                led.add(name, PE, "add", ops + C + (F if stateful else 0), mb)
            if stateful:
                led.add(name, OFMAP, "membrane_read", N, mb)
                led.add(name, OFMAP, "membrane_write", N, mb)
            dram_in += self._dram_in(led, l, p, "spike_read", 1, l.n_inputs - C)
        if stateful and l.neuron is not None and l.neuron.leaks:
            led.add(name, PE, "leak", N, mb)
        spiking = l.output == "spikes"
        if spiking and stateful:
            led.add(name, PE, "compare", N, mb)
        if spiking:
            led.add(name, OFMAP, "spike_write", N, 1)
        if stateful and not p.membranes_fit:  # membranes live in DRAM between steps
            led.add(name, DRAM, "membrane_read", N, mb)
            led.add(name, DRAM, "membrane_write", N, mb)
            dram_in += N * mb
            dram_out += N * mb
        out = N if p.output_to_dram else 0
        if spiking:
            led.add(name, DRAM, "spike_write", out, 1)
            dram_out += out
        elif l.output == "current":
            led.add(name, DRAM, "current_write", out, mb)
            dram_out += out * mb
        else:  # the readout's potentials leave once, after the last step
            out = out if t == T - 1 else 0
            led.add(name, DRAM, "output_write", out, mb)
            dram_out += out * mb
        return dram_in, dram_out

    # -- time ------------------------------------------------------------------------------
    def step_cycles(self, l: LayerSpec, p: LayerPlan, ev: LayerEvents, events: SampleEvents, i: int,
                    t: int | None) -> tuple[np.ndarray, int]:
        """The cycles of each tile of compute layer i's pass (``t`` None: the ANN) or SNN step
        ``t`` — a GEMM's folds in fold order, else one tile on the output lanes — and the
        vectors streamed with ``skip_zero_rows`` (0 without)."""
        if ev.analog_input and t is not None:  # the input current once, then integrated each step
            integrate = np.array([vector_cycles(l.n_neurons, self.cols)], dtype=np.int64)
            if p.gemm is None or t > 0:
                return integrate, 0
            return np.append(np.full(p.folds.folds, p.folds.fold_cycles, dtype=np.int64), integrate), 0
        if p.gemm is None:
            ops = l.n_neurons if ev.analog_input else ev.dense_macs + ev.current_in
            return np.array([vector_cycles(ops, self.cols)], dtype=np.int64), 0
        if t is None or not self.skip:
            return np.full(p.folds.folds, p.folds.fold_cycles, dtype=np.int64), 0
        streamed = self.streamed(l, p, events, i, t)
        return p.folds.overhead + streamed, int(streamed.sum())

    def streamed(self, l: LayerSpec, p: LayerPlan, events: SampleEvents, i: int, t: int) -> np.ndarray:
        """Per fold, the streamed input vectors of step ``t`` that hold a spike."""
        ptr, idx = events.input_spike_indices(i)
        spikes = np.zeros(l.n_inputs, dtype=bool)
        spikes[idx[ptr[t]:ptr[t + 1]]] = True
        return streamed_rows(p.folds, im2col_nonzero(l, spikes))

    def _start(self, mode: str) -> "_Session":
        return _Session(self, mode)


def _tiles(stage: str, cycles: np.ndarray, dram_in: int, dram_out: int, rate: int) -> tuple:
    """One tile per fold: its cycles (as PE ops at the array's rate), the layer step's DRAM
    bits in and out split evenly over its folds (exact sums)."""
    n = len(cycles)
    return ([stage] * n, np.asarray(split_evenly(dram_in, n), np.int64), np.zeros(n, np.int64),
            cycles * rate, np.asarray(split_evenly(dram_out, n), np.int64))


class _Session(TileSession):
    """One replay of a mode: every sample's folds counted into one ledger and run, in sample
    order, through one tile pipeline (time accumulates over samples)."""

    COUNTERS = ("layer_cycles", "compute_cycles", "streamed_rows")

    def __init__(self, arch: SystolicArray, mode: str):
        # DRAM fills write the three buffers side by side: their widths add up;
        # streamed_rows (skip_zero_rows): vectors streamed per layer
        bufs = [arch.spec[b] for b in (IFMAP, FILTER, OFMAP)]
        super().__init__(arch, mode, (sum(b.width_bits * b.banks for b in bufs), 1, 1,
                                      max(b.latency_cycles for b in bufs)))

    def add(self, sample: SampleEvents) -> None:
        a, led, T = self.arch, self.led, self.arch.wl.T
        cols: list[tuple] = []
        for i, (l, ev) in enumerate(zip(a.wl.layers, sample.layers)):
            p = self.plans[l.name]
            steps = [None] if self.mode == "ann" else range(T)
            for t in steps:
                if t is None:
                    din, dout = a.count_ann(led, l, p, ev)
                else:
                    din, dout = a.count_snn_step(led, l, p, ev, t)
                cyc, streamed = a.step_cycles(l, p, ev, sample, i, t)
                self.streamed_rows[l.name] += streamed
                self.compute_cycles[l.name] += int(cyc.sum())
                cols.append(_tiles(l.name, cyc, din, dout, a.rate))
        # the workload's own totals: its non-zero work, the same on every architecture (the
        # array's dense MACs are its pe_array.mac count)
        add_totals(self.work, a.wl.layers, sample.layers, self.mode, T, True)
        stages = [s for c in cols for s in c[0]]
        arrays = [np.concatenate([c[k] for c in cols]) for k in range(1, 5)]
        self._ran(self.pipe.run_arrays(stages, *arrays))

    def finish(self) -> RunResult:
        a = self.arch
        cycles = self.cycles
        util = {DRAM: self.dram.busy_cycles / cycles if cycles else 0.0,
                PE: self.pe.busy_cycles / cycles if cycles else 0.0}
        extra = {"plan": {n: p.as_report_dict() for n, p in self.plans.items()},
                 "compute_cycles": dict(self.compute_cycles),
                 "dataflow": a.dataflow, "layer_io": a.layer_io,
                 "ann_activation_bits": a.act_bits}
        if self.mode == "snn" and a.skip:
            extra["streamed_rows"] = dict(self.streamed_rows)
        return RunResult(a.name, self.mode, self.samples, self.led, cycles, self.stalls,
                         self.layer_cycles, util, self.work, extra=extra)
