"""Closed form of the classical memory hierarchy (``memory_hierarchy``): every count of
docs/architectures/memory_hierarchy.md from layer geometry, T, the arch spec and five
statistics per layer (S, E, F, nnz, M; :mod:`sim.analytic.layer_stats`).

Per layer, over n samples (symbols as in docs/formulas.md, "Per-architecture closed forms"):
K output channels, P pixels per channel, N = K·P neurons, n_in inputs, n_w weights,
F_w = n_w/K weights per channel, cp = ⌈K/rows⌉, pp = ⌈P/cols⌉ passes of the PE array,
k_w and k_m resident weight and membrane channels, σ spilled event bits per pass.

Every count is a sum of terms named by their cause; the terms in
``closed_form.NONIDEAL_CAUSES`` vanish when everything is resident (k_w = k_m = K, σ = 0).
Counts do not depend on timing, so "no contention" costs nothing here. Nothing here imports
the engine, the architectures, the kernels or the workload.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    address_bits,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats, compute_layers
from sim.errors import ParameterError
from sim.trace import LayerSpec

ARCHITECTURE = "memory_hierarchy"


def channels_pixels(layer: LayerSpec) -> tuple[int, int]:
    """(K output channels or features, P output pixels per channel; 1 for linear layers)."""
    if len(layer.output_shape) == 3:
        k, h, w = layer.output_shape
        return k, h * w
    return layer.output_shape[0], 1


@dataclass(frozen=True)
class Residency:
    """What of one layer lives in the global buffer (per sample): k_w of K weight channels,
    k_m of K membrane channels (SNN), and ``spill_bits`` of events per pass that do not fit
    (a pass: the whole layer in ANN mode, all T steps under layer_major, one step under
    time_major)."""

    K: int
    P: int
    cp: int
    pp: int
    weights_per_channel: int
    k_w: int
    k_m: int
    spill_bits: int
    tile_passes: int  # channel passes over all weight tiles (``snn_weight_tiling``); cp untiled


def event_bits(layer: LayerSpec, first: bool, mode: str, T: int, loop_order: str,
               act_bits: int, input_bits: int) -> int:
    """Bits of input and output events held in the buffer during one pass. ANN: the input
    activations (the image at ``input_bits`` for layer 1) and the outputs at ``act_bits``.
    SNN: one bit per input and output neuron per step held (T steps under layer_major, one
    under time_major); layer 1's analog input is not an event."""
    if mode == "ann":
        return layer.n_inputs * (input_bits if first else act_bits) + layer.n_neurons * act_bits
    steps = T if loop_order == "layer_major" else 1
    return steps * ((0 if first else layer.n_inputs) + layer.n_neurons)


def plan_residency(spec, layers: list[LayerSpec], T: int, mode: str, act_bits: int,
                   ideal: bool = False) -> list[Residency]:
    """Residency rules of the doc: the buffer goes first to a layer's events, then to its
    weights, then (SNN) to its membranes, whole output channels at a time. layer_major: each
    layer has the whole buffer. time_major (SNN): all layers stay live across steps; the
    largest layer's events are set aside, then weights in layer order, then membranes in
    layer order share the rest. ``ideal``: everything resident, nothing spilled.
    ParameterError if one channel's weights exceed the whole buffer."""
    d, cap = spec.data, spec["global_buffer"].capacity_bytes * 8
    rows, cols = spec["pe_array"].rows, spec["pe_array"].cols
    loop = spec.mapping["loop_order"]
    tiling = mode == "snn" and spec.mapping["snn_weight_tiling"]
    if spec.mapping["snn_weight_tiling"] and loop != "layer_major":
        raise ParameterError(spec.path, "mapping.snn_weight_tiling",
                             "needs loop_order: layer_major (time_major keeps every layer live)")
    layers = compute_layers(layers)
    io = [event_bits(l, i == 0, mode, T, loop, act_bits, d.input_bits) for i, l in enumerate(layers)]
    shared = mode == "snn" and loop == "time_major"
    pool = cap - max(io) if shared else 0
    geo = [channels_pixels(l) for l in layers]
    k_w, free = [], []
    for l, (K, _), e in zip(layers, geo, io):
        per = l.n_weights // K * d.weight_bits
        if per > cap:
            raise ParameterError(spec.path, "components.global_buffer.capacity_bytes",
                                 f"{cap // 8} bytes cannot stage one output channel's weights of "
                                 f"layer {l.name} ({l.n_weights // K} weights)")
        avail = max(0, pool) if shared else max(0, cap - e)
        k = K if per == 0 else min(K, avail // per)
        k_w.append(k)
        free.append(avail - k * per)
        if shared:
            pool -= k * per
    out = []
    for l, (K, P), e, kw, fr in zip(layers, geo, io, k_w, free):
        km = 0
        if mode == "snn":
            avail = max(0, pool) if shared else fr
            km = min(K, avail // (P * d.membrane_bits))
            if shared:
                pool -= km * P * d.membrane_bits
        spill = max(0, e - cap)
        cp = math.ceil(K / rows)
        passes = cp
        if tiling:  # tiles of whole channels (weights + membranes) run all T steps each
            per_ch = l.n_weights // K * d.weight_bits + P * d.membrane_bits
            tile = min(K, max(0, cap - e) // per_ch)
            if tile == 0:
                raise ParameterError(spec.path, "components.global_buffer.capacity_bytes",
                                     f"{cap // 8} bytes cannot hold one output channel's weights and "
                                     f"membranes of layer {l.name} beside its events (mapping.snn_weight_tiling)")
            full, rest = divmod(K, tile)
            kw, km, passes = K, K, full * math.ceil(tile / rows) + (math.ceil(rest / rows) if rest else 0)
        if ideal:
            kw, km, spill, passes = K, (K if mode == "snn" else 0), 0, cp
        out.append(Residency(K, P, cp, math.ceil(P / cols), l.n_weights // K, kw, km, spill, passes))
    return out


def _snn_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, r: Residency, T: int) -> dict:
    """Terms of one layer over T steps and n samples in SNN mode; returns workload totals."""
    d, n = spec.data, st.samples
    wb, mb, pb, ib = d.weight_bits, d.membrane_bits, d.psum_bits, d.input_bits
    N, S, E, F = l.n_neurons, st.spikes_in, st.synaptic_events, st.spikes_out
    spiking, has_w = l.output == "spikes", l.n_weights > 0
    zs = spec.mapping["zero_skipping"]
    steps = n * T * N  # neuron updates
    # weights: every channel once per sample (t = 0); non-resident ones again at every step
    w = dict(weights_once_per_sample=n * l.n_weights if has_w else 0,
             weights_refetched_per_step_nonresident=(n * (T - 1) * (r.K - r.k_w) * r.weights_per_channel
                                                     if has_w else 0))
    led.add("dram.weight_read", wb, **w)
    led.add("global_buffer.weight_write", wb, **w)
    m = n * T * (r.K - r.k_m) * r.P
    led.add("dram.membrane_read", mb, membranes_per_step_nonresident=m)
    led.add("dram.membrane_write", mb, membranes_per_step_nonresident=m)
    passes = n if spec.mapping["loop_order"] == "layer_major" else n * T
    led.add("dram.spill_write", 1, io_events_spilled=passes * r.spill_bits)
    led.add("dram.spill_read", 1, io_events_spilled=passes * r.spill_bits)
    macs = 0
    if st.analog_input:
        # the image is a constant input current, computed once per sample like the ANN's layer 1
        macs = st.ann_macs if zs else n * l.dense_macs
        reads = (st.ann_nonzero_inputs if zs else n * l.n_inputs) * r.cp
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.input_write", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.weight_read", wb, weights_per_pixel_pass=n * l.n_weights * r.pp)
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
        led.add("global_buffer.spike_read", address_bits(l.n_inputs), spike_per_channel_pass=S * r.cp,
                spikes_reread_per_weight_tile=S * (r.tile_passes - r.cp))
        if has_w:
            led.add("global_buffer.weight_read", wb, weight_per_synaptic_event=E)
        led.add("register_file.membrane_read", mb, integrate_per_synaptic_event=E,
                threshold_check_per_neuron_step=steps if spiking else 0)
        led.add("pe_array.add", mb, integrate_per_synaptic_event=E, reset_per_output_spike=F)
        led.add("register_file.membrane_write", mb, integrate_per_synaptic_event=E, reset_per_output_spike=F)
    if spiking:
        led.add("pe_array.compare", mb, threshold_check_per_neuron_step=steps)
        led.add("global_buffer.spike_write", address_bits(N), output_spike=F)
    led.add("global_buffer.membrane_read", mb, membrane_tile_per_neuron_step=steps)
    led.add("global_buffer.membrane_write", mb, membrane_tile_per_neuron_step=steps)
    if not spiking:
        led.add("dram.output_write", mb, readout_once_per_sample=n * N)
    return {"macs": macs, "synaptic_ops": E, "spikes_in": S, "spikes_out": F, "neuron_updates": steps}


def _ann_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, r: Residency, act_bits: int) -> dict:
    """Terms of one layer of the ANN twin over n samples; returns workload totals."""
    d, n = spec.data, st.samples
    wb, pb, ib = d.weight_bits, d.psum_bits, d.input_bits
    N, spiking, has_w = l.n_neurons, l.output == "spikes", l.n_weights > 0
    zs = spec.mapping["zero_skipping"]
    macs = st.ann_macs if zs else n * l.dense_macs
    in_bits = ib if st.analog_input else act_bits
    reads = (st.ann_nonzero_inputs if zs else n * l.n_inputs) * r.cp
    # weights: every channel once per sample; non-resident ones again at every pixel pass
    w = dict(weights_once_per_sample=n * l.n_weights if has_w else 0,
             weights_refetched_per_pixel_pass_nonresident=(n * (r.pp - 1) * (r.K - r.k_w) * r.weights_per_channel
                                                           if has_w else 0))
    led.add("dram.weight_read", wb, **w)
    led.add("global_buffer.weight_write", wb, **w)
    led.add("global_buffer.weight_read", wb, weights_per_pixel_pass=n * l.n_weights * r.pp)
    if st.analog_input:
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("global_buffer.input_write", ib, image_once_per_sample=n * l.n_inputs)
    led.add("global_buffer.input_read", in_bits, input_per_channel_pass=reads)
    led.add("dram.spill_write", 1, io_events_spilled=n * r.spill_bits)
    led.add("dram.spill_read", 1, io_events_spilled=n * r.spill_bits)
    if has_w:
        led.add("pe_array.mac", wb, mac=macs)
        led.add("register_file.weight_read", wb, mac=macs)
    else:  # average pooling: a fixed-weight sum
        led.add("pe_array.add", pb, mac=macs)
    led.add("register_file.input_read", in_bits, mac=macs)
    led.add("register_file.psum_read", pb, mac=macs)
    led.add("register_file.psum_write", pb, mac=macs)
    out_bits = act_bits if spiking else pb
    if spiking:
        led.add("pe_array.compare", pb, quantise_per_neuron=n * N)
    led.add("global_buffer.output_write", out_bits, output_per_neuron=n * N)
    if not spiking:
        led.add("dram.output_write", out_bits, readout_once_per_sample=n * N)
    return {"macs": macs, "neuron_updates": n * N}


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count (per layer, per ``component.action``) of a ``memory_hierarchy`` replay of
    ``mode`` ("snn" or "ann"), from geometry, T, the spec and the per-layer statistics.

    ``stats`` holds one :class:`LayerEventStats` per compute layer (passthroughs dropped),
    summed over the same samples the replay runs. ``table``: an energy table to price the
    counts (pJ). ``ideal``: the spec's buffer is taken to hold everything."""
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    ab = spec.data.ann_bits(trace_act_bits)
    plan = plan_residency(spec, layers, T, mode, ab, ideal)
    out = []
    for l, st, r in zip(layers, stats, plan):
        led = TermLedger()
        work = _snn_layer(led, spec, l, st, r, T) if mode == "snn" else _ann_layer(led, spec, l, st, r, ab)
        out.append(finish_layer(l.name, led, work, spec, table, asdict(r)))
    samples = stats[0].samples if stats else 0
    return Prediction(ARCHITECTURE, mode, samples, T, ab, out, None if table is None else table.name)
