"""Closed form of the classical memory hierarchy (``memory_hierarchy``): every count of
docs/architectures/memory_hierarchy.md from layer geometry, T, the arch spec and five
statistics per layer (S, E, F, nnz, M; :mod:`sim.analytic.layer_stats`).

Per layer, over n samples (symbols as in docs/formulas.md, "Per-architecture closed forms"):
K output channels, P pixels per channel, N = K·P neurons, n_in inputs, n_w weights,
F_w = n_w/K weights per channel, cp = ⌈K/rows⌉, pp = ⌈P/cols⌉ passes of the PE array,
k_w and k_m resident weight and membrane channels, σ spilled event bits per pass. The
residency plan is the simulator's own mapping policy (:mod:`sim.mapping.memory_hierarchy`),
taken as an input: a spec the simulator refuses raises the same ParameterError here. On a
layer graph the plan holds the tensors live across each layer (σ includes their spill); an
add counts like an average pool (no weights) over its operands' events, a max-pool is a
stateless 1-bit OR per synaptic event (SNN) or a compare per non-zero input and window (ANN),
and a LIF layer adds one leak per neuron per step. A current layer (output ``current``)
integrates like a neuron layer into an accumulator held like membranes, without a neuron
update, and writes its N values to the buffer every step (the twin: its N psums once); the
add reads and adds them (C = current operand values).

Every count is a sum of terms named by their cause; the terms in
``closed_form.NONIDEAL_CAUSES`` vanish when everything is resident (k_w = k_m = K, σ = 0).
Counts do not depend on timing, so "no contention" costs nothing here. Nothing here imports
the engine, the architectures, the kernels or the workload.
"""

from __future__ import annotations

import math

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats, reads_stored_input, stored_input_spikes
from sim.mapping import memory_hierarchy as policy
from sim.mapping.encoding import address_bits
from sim.mapping.memory_hierarchy import LayerResidency
from sim.trace import LayerSpec

ARCHITECTURE = "memory_hierarchy"
#: The workload total a layer's synapse operations count under (sim.workload.OP_TOTAL):
#: conv/linear/avgpool MACs (SNN: synaptic ops), a residual add's adds, a max-pool's compares.
_OP_TOTAL = {"conv2d": "macs", "linear": "macs", "avgpool": "adds", "add": "adds", "maxpool": "compares"}


def ideal_overrides(spec, layers: list[LayerSpec], T: int, trace_bits: int,
                    spike_input: bool = False) -> list[str]:
    """``--set`` overrides that give ``spec`` a global buffer holding, for every layer of
    ``layers`` in both modes, its events, all its weights and (SNN) all its membranes
    (:func:`sim.mapping.memory_hierarchy.resident_bits`), rounded up to whole bytes and
    buffer words; [] when the buffer is already large enough. ``spike_input``: the trace's
    input is stored spikes (rate or event encoding), events the buffer holds too."""
    need = policy.resident_bits(spec, layers, T, spec.data.ann_bits(trace_bits), spike_input)
    buf = spec["global_buffer"]
    if need <= buf.capacity_bytes * 8:
        return []
    unit = math.lcm(8, buf.width_bits)  # a whole number of bytes and of buffer words
    return [f"components.global_buffer.capacity_bytes={math.ceil(need / unit) * unit // 8}"]


def _snn_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, r: LayerResidency, T: int,
               sources: list) -> dict:
    """Terms of one layer over T steps and n samples in SNN mode; returns workload totals.
    ``sources``: the layer's source indices (None: the network input)."""
    d, n = spec.data, st.samples
    wb, mb, pb, ib = d.weight_bits, d.membrane_bits, d.psum_bits, d.input_bits
    N, S, E, F = l.n_neurons, st.spikes_in, st.synaptic_events, st.spikes_out
    spiking, has_w = l.output == "spikes", l.n_weights > 0
    # membranes, or a current layer's accumulator; a max-pool (spike OR) keeps none
    stateful = policy.keeps_state(l)
    C = st.current_inputs  # an add's current operand values (n samples): read and added each step
    zs = spec.mapping["zero_skipping"]
    steps = n * T * N if stateful else 0  # membrane (accumulator) tiles per step
    updates = n * T * N if l.has_neurons else 0  # neuron updates
    # weights: every channel once per sample (t = 0); non-resident ones again at every step
    w = dict(weights_once_per_sample=n * l.n_weights if has_w else 0,
             weights_refetched_per_step_nonresident=n * (T - 1) * r.weights_nonresident() if has_w else 0)
    led.add("dram.weight_read", wb, **w)
    led.add("global_buffer.weight_write", wb, **w)
    if stateful:
        m = n * T * r.membranes_nonresident()
        led.add("dram.membrane_read", mb, membranes_per_step_nonresident=m)
        led.add("dram.membrane_write", mb, membranes_per_step_nonresident=m)
    passes = n if spec.mapping["loop_order"] == "layer_major" else n * T
    led.add("dram.spill_write", 1, io_events_spilled=passes * r.io_spill_bits)
    led.add("dram.spill_read", 1, io_events_spilled=passes * r.io_spill_bits)
    macs = 0
    if st.analog_input:
        # the image is a constant input current, computed once per sample like the ANN's layer 1
        macs = st.ann_macs if zs else n * l.dense_ops
        reads = (st.ann_nonzero_inputs if zs else n * l.n_inputs) * r.channel_passes
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.input_write", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.weight_read", wb, weights_per_pixel_pass=n * l.n_weights * r.pixel_passes)
        led.add("global_buffer.input_read", ib, image_per_channel_pass=reads)
        led.add("pe_array.mac", wb, input_current_macs=macs)
        led.add("register_file.weight_read", wb, input_current_macs=macs)
        led.add("register_file.input_read", ib, input_current_macs=macs)
        led.add("register_file.psum_read", pb, input_current_macs=macs, stored_current_per_neuron_step=steps)
        led.add("register_file.psum_write", pb, input_current_macs=macs)
        led.add("register_file.membrane_read", mb, integrate_per_neuron_step=steps)
        led.add("pe_array.add", mb, integrate_per_neuron_step=steps, reset_per_output_spike=F)
        led.add("register_file.membrane_write", mb, integrate_per_neuron_step=steps)
    else:
        a = address_bits(l.n_inputs // l.n_operands)  # an address within its operand
        if reads_stored_input(st, sources):  # rate / event encoding: the input spikes come on chip
            arrive = stored_input_spikes(st, sources)
            led.add("dram.spike_read", a, input_events_once_per_sample=arrive)
            led.add("global_buffer.input_write", a, input_events_once_per_sample=arrive)
        # an add reads each operand's events
        led.add("global_buffer.spike_read", a,
                spike_per_channel_pass=S * r.channel_passes,
                spikes_reread_per_weight_tile=S * (r.tile_passes - r.channel_passes))
        if not stateful:
            led.add("pe_array.compare", 1, spike_or_per_synaptic_event=E)
        else:
            if has_w:
                led.add("global_buffer.weight_read", wb, weight_per_synaptic_event=E)
            led.add("register_file.membrane_read", mb, integrate_per_synaptic_event=E,
                    threshold_check_per_neuron_step=steps if spiking else 0)
            led.add("pe_array.add", mb, integrate_per_synaptic_event=E, reset_per_output_spike=F,
                    **({"current_per_value_step": T * C} if C else {}))
            led.add("register_file.membrane_write", mb, integrate_per_synaptic_event=E, reset_per_output_spike=F)
            if C:
                led.add("global_buffer.current_read", mb, current_per_value_step=T * C)
    if stateful and l.neuron is not None and l.neuron.leaks:
        led.add("pe_array.leak", mb, leak_per_neuron_step=steps)
    if spiking and stateful:
        led.add("pe_array.compare", mb, threshold_check_per_neuron_step=steps)
    if spiking:
        led.add("global_buffer.spike_write", address_bits(N), output_spike=F)
    if l.output == "current":
        led.add("global_buffer.current_write", mb, current_per_neuron_step=n * T * N)
    if stateful:
        led.add("global_buffer.membrane_read", mb, membrane_tile_per_neuron_step=steps)
        led.add("global_buffer.membrane_write", mb, membrane_tile_per_neuron_step=steps)
    if l.output == "potential":
        led.add("dram.output_write", mb, readout_once_per_sample=n * N)
    op = _OP_TOTAL[l.kind]
    return {"macs": macs, ("synaptic_ops" if op == "macs" else op): E + T * C, "spikes_in": S, "spikes_out": F,
            "neuron_updates": updates}


def _ann_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, r: LayerResidency, act_bits: int,
               sources: list) -> dict:
    """Terms of one layer of the ANN twin over n samples; returns workload totals.
    ``sources``: the layer's source indices (None: the network input)."""
    d, n = spec.data, st.samples
    wb, pb, ib = d.weight_bits, d.psum_bits, d.input_bits
    N, spiking, has_w = l.n_neurons, l.output == "spikes", l.n_weights > 0
    zs = spec.mapping["zero_skipping"]
    C = st.current_inputs  # an add's current operand values (n samples): read and added densely
    macs = st.ann_macs if zs else n * l.dense_ops - C
    in_bits = ib if st.analog_input else act_bits
    reads = (st.ann_nonzero_inputs if zs else n * l.n_inputs - C) * r.channel_passes
    # weights: every channel once per sample; non-resident ones again at every pixel pass
    w = dict(weights_once_per_sample=n * l.n_weights if has_w else 0,
             weights_refetched_per_pixel_pass_nonresident=(n * (r.pixel_passes - 1) * r.weights_nonresident()
                                                           if has_w else 0))
    led.add("dram.weight_read", wb, **w)
    led.add("global_buffer.weight_write", wb, **w)
    led.add("global_buffer.weight_read", wb, weights_per_pixel_pass=n * l.n_weights * r.pixel_passes)
    if st.analog_input:
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.input_write", ib, image_once_per_sample=n * l.n_inputs)
    if reads_stored_input(st, sources):  # rate / event encoding: the twin's input levels
        levels = n * (l.n_inputs // l.n_operands) * sources.count(None)
        led.add("dram.input_read", act_bits, input_levels_once_per_sample=levels)
        led.add("global_buffer.input_write", act_bits, input_levels_once_per_sample=levels)
    led.add("global_buffer.input_read", in_bits, input_per_channel_pass=reads)
    led.add("dram.spill_write", 1, io_events_spilled=n * r.io_spill_bits)
    led.add("dram.spill_read", 1, io_events_spilled=n * r.io_spill_bits)
    # what accumulates: a partial sum, or a max-pool's running max (a level, like its inputs)
    acc_bits = in_bits if l.kind == "maxpool" else pb
    if has_w:
        led.add("pe_array.mac", wb, mac=macs)
        led.add("register_file.weight_read", wb, mac=macs)
    elif l.kind == "maxpool":  # a compare against the running max per (input, window)
        led.add("pe_array.compare", in_bits, mac=macs)
    else:  # average pooling, a residual add: a fixed-weight sum
        led.add("pe_array.add", pb, mac=macs, **({"current_per_value": C} if C else {}))
    if C:
        led.add("global_buffer.current_read", pb, current_per_value=C)
    led.add("register_file.input_read", in_bits, mac=macs)
    led.add("register_file.psum_read", acc_bits, mac=macs)
    led.add("register_file.psum_write", acc_bits, mac=macs)
    out_bits = act_bits if spiking else pb
    if spiking and l.has_neurons:  # a max-pool's levels in are its levels out: no quantise
        led.add("pe_array.compare", pb, quantise_per_neuron=n * N)
    led.add("global_buffer.output_write", out_bits, output_per_neuron=n * N)
    if l.output == "potential":
        led.add("dram.output_write", out_bits, readout_once_per_sample=n * N)
    return {_OP_TOTAL[l.kind]: macs + C, "neuron_updates": n * N if l.has_neurons else 0}


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count (per layer, per ``component.action``) of a ``memory_hierarchy`` replay of
    ``mode`` ("snn" or "ann"), from geometry, T, the spec and the per-layer statistics.

    ``stats`` holds one :class:`LayerEventStats` per compute layer (passthroughs dropped),
    summed over the same samples the replay runs. ``table``: an energy table to price the
    counts (pJ). ``ideal``: the spec's buffer is taken to hold everything."""
    every = layers  # passthroughs too: the plan follows the graph's edges through them
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    ab = spec.data.ann_bits(trace_act_bits)
    sources = policy.graph_sources(every)
    spike_input = any(reads_stored_input(st, s) for st, s in zip(stats, sources))
    plan = policy.plan(spec, every, T, mode, ab, ideal, spike_input)
    out = []
    for l, st, r, s in zip(layers, stats, plan, sources):
        led = TermLedger()
        work = (_snn_layer(led, spec, l, st, r, T, s) if mode == "snn"
                else _ann_layer(led, spec, l, st, r, ab, s))
        out.append(finish_layer(l.name, led, work, spec, table, r.as_residency_dict()))
    samples = stats[0].samples if stats else 0
    return Prediction(ARCHITECTURE, mode, samples, T, ab, out, None if table is None else table.name)
