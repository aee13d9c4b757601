"""Closed form of the systolic array (``systolic_array``): every count of
docs/architectures/systolic_array.md from layer geometry, T, the arch spec and the per-layer
statistics (E synaptic events and F output spikes; :mod:`sim.analytic.layer_stats`).

The array is dense: every conv/linear layer is an im2col GEMM whose folds, buffer reads and
writes depend on geometry alone (P pixels, F fan-in, K filters, rf x cf folds: the simulator's own mapping policy,
:mod:`sim.mapping.systolic_array`). Only
the SNN's in-array adds (E: a zero spike gates its PE) and its spike-driven neuron resets (F)
come from the trace. Per layer over n samples:

- ANN: n·P·F·K MACs; ifmap, filter and ofmap traffic as the dataflow folds it; DRAM reads
  of the input and weights once each, again per sweep where a working set does not fit the
  live part of its buffer (cause ``operand_refetched_per_sweep``).
- SNN: one binary GEMM per step (n·T times the ANN's buffer traffic, 1-bit inputs), every
  column output added into a membrane; weights from DRAM once per sample, or every step
  when they do not fit (``weights_refetched_per_step``); membranes in the ofmap buffer, or
  to DRAM and back every step (``membranes_per_step_dram``).

Counts do not depend on timing. Nothing here imports the engine, the architectures, the
kernels or the workload.
"""

from __future__ import annotations

import math

from sim.analytic.closed_form import Prediction, TermLedger, checked_layers, finish_layer
from sim.analytic.layer_stats import LayerEventStats, reads_stored_input
from sim.mapping import systolic_array as policy
from sim.mapping.graph import graph_sources
from sim.mapping.memory_hierarchy import keeps_state
from sim.trace import LayerSpec

ARCHITECTURE = "systolic_array"
#: The workload total a layer's synapse operations count under (sim.workload.OP_TOTAL).
_OP_TOTAL = {"conv2d": "macs", "linear": "macs", "avgpool": "adds", "add": "adds", "maxpool": "compares"}


def _dram_in(led: TermLedger, p: policy.LayerPlan, action: str, bits: int, unique, steps) -> None:
    """The input from DRAM into the ifmap buffer: once per pass of the layer, again per sweep
    when it does not fit."""
    if not p.input_from_dram:
        unique = 0
    once = "activations_spilled" if p.input_spilled else "input_once_per_pass"
    terms = {once: steps * unique, "operand_refetched_per_sweep": steps * unique * (p.ifmap_passes - 1)}
    led.add(f"dram.{action}", bits, **terms)
    led.add("ifmap_buffer.input_write" if action == "input_read" else "ifmap_buffer.spike_write", bits, **terms)


def _weights_in(led: TermLedger, spec, p: policy.LayerPlan, n: int, fetches: int, per_step: int) -> None:
    """Weights from DRAM: ``fetches`` times per sample, ``per_step`` more when they do not fit
    for all T steps; each fetch once per sweep of a working set that does not fit."""
    wb, w = spec.data.weight_bits, p.gemm.weights
    terms = dict(weights_once_per_sample=n * w * fetches,
                 operand_refetched_per_sweep=n * w * (p.filter_passes - 1) * fetches,
                 weights_refetched_per_step=n * w * p.filter_passes * per_step)
    led.add("dram.weight_read", wb, **terms)
    led.add("filter_buffer.weight_write", wb, **terms)


def _gemm_ann(led: TermLedger, spec, p: policy.LayerPlan, n: int, in_bits: int) -> None:
    d, f = spec.data, p.folds
    led.add("pe_array.mac", d.weight_bits, mac=n * p.gemm.macs)
    led.add("ifmap_buffer.input_read", in_bits, im2col_per_column_fold=n * f.ifmap_reads)
    led.add("filter_buffer.weight_read", d.weight_bits, weights_per_fold=n * f.filter_reads)
    led.add("ofmap_buffer.output_write", d.psum_bits, psum_per_row_fold=n * f.ofmap_writes)
    on_chip = spec.mapping["layer_io"] == "on_chip"  # partial sums accumulate in the buffer
    led.add("ofmap_buffer.psum_read", d.psum_bits, psum_accumulated=n * f.psum_reads if on_chip else 0)
    _dram_in(led, p, "input_read", in_bits, p.gemm.in_unique, n)
    _weights_in(led, spec, p, n, 1, 0)


def _ann_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: policy.LayerPlan,
               act_bits: int) -> dict:
    d, n, N = spec.data, st.samples, l.n_neurons
    in_bits = d.input_bits if st.analog_input else act_bits
    spiking = l.output == "spikes"
    out_bits = act_bits if spiking else d.psum_bits
    C = st.current_inputs
    if p.gemm is not None:
        _gemm_ann(led, spec, p, n, in_bits)
        written, written_bits = p.folds.ofmap_writes, d.psum_bits
    else:
        ops = n * l.dense_ops - C
        led.add("ifmap_buffer.input_read", in_bits, input_per_op=ops)
        if C:
            led.add("ifmap_buffer.current_read", d.psum_bits, current_per_value=C)
        if l.kind == "maxpool":
            led.add("pe_array.compare", in_bits, op=ops)
        else:
            led.add("pe_array.add", d.psum_bits, op=ops, **({"current_per_value": C} if C else {}))
        led.add("ofmap_buffer.output_write", out_bits, output_per_neuron=n * N)
        _dram_in(led, p, "input_read", in_bits, n * l.n_inputs - C, 1)
        written, written_bits = N, out_bits
    if spiking and l.has_neurons:
        led.add("pe_array.compare", d.psum_bits, quantise_per_neuron=n * N)
    k = (written if spec.mapping["layer_io"] == "dram" else N) if p.output_to_dram else 0
    led.add("dram.output_write", written_bits, **{_out_cause(p, "output_per_pass"): n * k})
    return _work(l, st, "ann", 1)


def _snn_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: policy.LayerPlan, T: int) -> dict:
    d, n, N, mb = spec.data, st.samples, l.n_neurons, spec.data.membrane_bits
    E, F, C = st.synaptic_events, st.spikes_out, st.current_inputs
    stateful = keeps_state(l)
    nT = n * T
    if st.analog_input:
        if p.gemm is not None:
            _gemm_ann(led, spec, p, n, d.input_bits)
        led.add("ofmap_buffer.psum_read", d.psum_bits, current_per_step=nT * N)
        led.add("ofmap_buffer.membrane_read", mb, membrane_per_step=nT * N)
        led.add("pe_array.add", mb, integrate_per_step=nT * N, reset_per_spike=F)
        led.add("ofmap_buffer.membrane_write", mb, membrane_per_step=nT * N)
    elif p.gemm is not None:
        f = p.folds
        led.add("ifmap_buffer.spike_read", 1, im2col_per_column_fold=nT * f.ifmap_reads)
        led.add("filter_buffer.weight_read", d.weight_bits, weights_per_fold=nT * f.filter_reads)
        led.add("ofmap_buffer.membrane_read", mb, column_output_per_row_fold=nT * f.ofmap_writes)
        led.add("pe_array.add", mb, synaptic_event=E, column_output_per_row_fold=nT * f.ofmap_writes,
                reset_per_spike=F)
        led.add("ofmap_buffer.membrane_write", mb, column_output_per_row_fold=nT * f.ofmap_writes)
        _dram_in(led, p, "spike_read", 1, p.gemm.in_unique, nT)
        _weights_in(led, spec, p, n, 1, (T - 1) if p.weights_per_step else 0)
    else:
        ops = nT * l.dense_ops - C * T
        led.add("ifmap_buffer.spike_read", 1, input_per_op=ops)
        if C:
            led.add("ifmap_buffer.current_read", mb, current_per_value=C * T)
        if l.kind == "maxpool":
            led.add("pe_array.compare", 1, op=ops)
        else:
            led.add("pe_array.add", mb, op=ops, **({"current_per_value": C * T} if C else {}),
                    **({"reset_per_spike": F} if stateful else {}))
        if stateful:
            led.add("ofmap_buffer.membrane_read", mb, membrane_per_step=nT * N)
            led.add("ofmap_buffer.membrane_write", mb, membrane_per_step=nT * N)
        _dram_in(led, p, "spike_read", 1, n * l.n_inputs - C, T)
    if stateful and l.neuron is not None and l.neuron.leaks:
        led.add("pe_array.leak", mb, leak_per_step=nT * N)
    spiking = l.output == "spikes"
    if spiking and stateful:
        led.add("pe_array.compare", mb, threshold_per_step=nT * N)
    if spiking:
        led.add("ofmap_buffer.spike_write", 1, spike_map_per_step=nT * N)
    if stateful and not p.membranes_fit:
        led.add("dram.membrane_read", mb, membranes_per_step_dram=nT * N)
        led.add("dram.membrane_write", mb, membranes_per_step_dram=nT * N)
    out = 1 if p.output_to_dram else 0
    if spiking:
        led.add("dram.spike_write", 1, **{_out_cause(p, "spike_map_per_step"): nT * N * out})
    elif l.output == "current":
        led.add("dram.current_write", mb, **{_out_cause(p, "current_per_step"): nT * N * out})
    else:
        led.add("dram.output_write", mb, readout_once_per_sample=n * N * out)
    return _work(l, st, "snn", T)


def _out_cause(p: policy.LayerPlan, ideal_name: str) -> str:
    """The term an output written to DRAM counts under: a spill under ``layer_io: on_chip``,
    else the architecture's own rule (``ideal_name``)."""
    return "activations_spilled" if p.output_spilled else ideal_name


def _work(l: LayerSpec, st: LayerEventStats, mode: str, T: int) -> dict:
    """The layer's workload totals (sim.workload.layer_totals): its non-zero work, the same on
    every architecture (the array's dense MACs are its ``pe_array.mac`` count): the ANN's
    non-zero ops, the SNN's synaptic events, neuron updates."""
    n, N, C = st.samples, l.n_neurons, st.current_inputs
    where = _OP_TOTAL.get(l.kind)
    out = {"neuron_updates": n * N * (T if mode == "snn" else 1) if l.has_neurons else 0}
    if mode == "ann":
        if where:
            out[where] = st.ann_macs + C
        return out
    out["spikes_in"], out["spikes_out"] = st.spikes_in, st.spikes_out
    if where:
        out["synaptic_ops" if where == "macs" else where] = st.synaptic_events + C * T
    if st.analog_input:
        out["macs"] = out.get("macs", 0) + st.ann_macs
    return out


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count (per layer, per ``component.action``) of a ``systolic_array`` replay of
    ``mode`` ("snn" or "ann"), from geometry, T, the spec and the per-layer statistics summed
    over the replayed samples. ``table`` prices the counts (pJ). ``ideal``: every operand
    fetched once, weights and membranes resident."""
    every = layers
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    ab = spec.data.ann_bits(trace_act_bits)
    sources = graph_sources(every)
    spike_input = any(reads_stored_input(st, s) for st, s in zip(stats, sources))
    plans = policy.plan(spec, every, T, mode, ab, ideal, spike_input)
    out = []
    for l, st, p in zip(layers, stats, plans):
        led = TermLedger()
        work = _snn_layer(led, spec, l, st, p, T) if mode == "snn" else _ann_layer(led, spec, l, st, p, ab)
        out.append(finish_layer(l.name, led, work, spec, table, p.as_report_dict()))
    samples = stats[0].samples if stats else 0
    return Prediction(ARCHITECTURE, mode, samples, T, ab, out, None if table is None else table.name)


def ideal_overrides(spec, layers: list[LayerSpec], T: int, trace_bits: int,
                    spike_input: bool = False) -> list[str]:
    """``--set`` overrides that make every operand's working set fit the live part of its
    buffer, every layer's weights the filter buffer's and its membranes the ofmap buffer, in
    both modes (nothing already large enough is shrunk)."""
    d = spec.data
    ab = d.ann_bits(trace_bits)
    half = 2 if spec.mapping["double_buffered"] else 1
    need = {policy.IFMAP: 0, policy.FILTER: 0, policy.OFMAP: 0}
    sources = graph_sources(layers)
    comp = [l for l in layers if l.output != "passthrough"]
    for l, srcs in zip(comp, sources):
        g = policy.gemm(l)
        if g is None:
            continue
        in_bits = d.input_bits if None in srcs and not spike_input else ab  # the ANN's; the SNN's is 1
        need[policy.IFMAP] = max(need[policy.IFMAP], g.in_unique * max(in_bits, 1))
        # all the weights: the SNN keeps them for T steps, and every dataflow's re-read working
        # set (OS: one column fold's) is a part of them
        need[policy.FILTER] = max(need[policy.FILTER], g.weights * d.weight_bits)
    on_chip = spec.mapping["layer_io"] == "on_chip"
    for l in comp:
        need[policy.OFMAP] = max(need[policy.OFMAP], l.n_neurons * d.membrane_bits)
        if on_chip and l.output != "potential":  # activations held between layers, both modes
            held = l.n_neurons * max(policy.output_bits(spec, l, m, ab) for m in ("snn", "ann"))
            need[policy.OFMAP] = max(need[policy.OFMAP], held)
            # the ifmap buffer's whole capacity holds them (need[IFMAP] is a live-part figure)
            need[policy.IFMAP] = max(need[policy.IFMAP], -(-held // half))
    out = []
    for buf, bits in need.items():
        live = bits * (half if buf != policy.OFMAP else 1)
        if live > spec[buf].capacity_bytes * 8:
            unit = math.lcm(8, spec[buf].width_bits)  # a whole number of bytes and of buffer words
            out.append(f"components.{buf}.capacity_bytes={math.ceil(live / unit) * unit // 8}")
    return out
