"""Closed form of the spatial dataflow (``spatial_dataflow``): every count of
docs/architectures/spatial_dataflow.md from layer geometry, T, the arch spec and the per-layer
statistics S, E, F, nnz, M (:mod:`sim.analytic.layer_stats`), and the placement policy shared
with the simulator (:mod:`sim.mapping.spatial_dataflow`).

Per layer, over n samples: N neurons, n_in inputs, n_w weights, w the interconnect word,
⌈b/w⌉ words per b-bit operand, h the hops from the producer's PE group, and the fold the
layer runs in (its PE group, :func:`sim.mapping.spatial_dataflow.place`). Weights stay resident, so the paper-ideal spec charges
exactly one movement per synaptic event or non-zero MAC and 2 membrane accesses + 2 adds per
neuron-step (the paper's per-event costs).

Terms whose cause is in ``closed_form.NONIDEAL_CAUSES`` vanish when the model fits the chip
in one fold and movements pay no distance (``per_hop: false``); ``ideal=True`` predicts that
case whatever the spec's chip size. Nothing here imports the engine, the architectures, the
kernels or the workload.
"""

from __future__ import annotations

import math
from dataclasses import asdict

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats
from sim.mapping.encoding import address_bits
from sim.mapping.spatial_dataflow import Group, group_pes, place
from sim.trace import LayerSpec

ARCHITECTURE = "spatial_dataflow"


def _residency(g: Group) -> dict:
    """A layer's placement as the prediction's ``residency`` (the group without its name)."""
    out = asdict(g)
    del out["layer"]
    return out


def _deliver(led: TermLedger, spec, action: str, per_synapse, per_input, words: int, p: Group,
             cause: str, has_w: bool):
    """One movement per synapse (``per_synapse``) or one multicast per input operand, of
    ``words`` interconnect words each; with ``per_hop`` every movement also pays h − 1 more
    hops. Returns the local weight reads a multicast implies (one per synaptic event)."""
    multicast = spec.mapping["delivery"] == "multicast"
    w = spec["interconnect"].width_bits
    transfers = (per_input if multicast else per_synapse) * words
    led.add(f"interconnect.{action}", w, **{cause: transfers})
    if spec.mapping["per_hop"]:
        led.add("interconnect.hop", w, hops_between_groups=transfers * (p.hops - 1))
    return per_synapse if multicast and has_w else 0


def _fold_traffic(led: TermLedger, spec, l: LayerSpec, p: Group, n_moves: int, bits: int, per_sample_weights: int):
    """Folding: every layer reloads its weights per sample; a fold's last layer writes its
    outputs to DRAM and the next fold's first layer reads them back."""
    wb = spec.data.weight_bits
    w = per_sample_weights * l.n_weights if p.folds > 1 else 0
    led.add("dram.weight_read", wb, weights_reloaded_per_sample_folded=w)
    led.add("local_memory.weight_write", wb, weights_reloaded_per_sample_folded=w)
    led.add("dram.boundary_read", bits,
            fold_boundary=n_moves * l.n_inputs if (p.fold > 0 and p.fold_first) else 0)
    led.add("dram.boundary_write", bits,
            fold_boundary=n_moves * l.n_neurons if (p.fold + 1 < p.folds and p.fold_last) else 0)


def _snn_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: Group, T: int) -> dict:
    d, n, m = spec.data, st.samples, spec.mapping
    mb, pb, ib, wb = d.membrane_bits, d.psum_bits, d.input_bits, d.weight_bits
    N, S, E, F = l.n_neurons, st.spikes_in, st.synaptic_events, st.spikes_out
    w = spec["interconnect"].width_bits
    spiking, has_w = l.output == "spikes", l.n_weights > 0
    steps = n * T * N
    macs = 0
    if st.analog_input:  # the image's constant current, computed once per sample
        zs = m["zero_skipping"]
        macs = st.ann_macs if zs else n * l.dense_macs
        inputs = st.ann_nonzero_inputs if zs else n * l.n_inputs
        reads = _deliver(led, spec, "act_transfer", macs, inputs, math.ceil(ib / w), p,
                         "input_current_operand", has_w)
        led.add("pe_array.mac", wb, input_current_macs=macs)
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("local_memory.current_write", pb, input_current_once_per_sample=n * N)
        led.add("local_memory.current_read", pb, stored_current_per_neuron_step=steps)
        add = {"integrate_current_per_neuron_step": steps}
    else:
        words = 1 if m["delivery"] == "per_synapse" else math.ceil(address_bits(l.n_inputs) / w)
        reads = _deliver(led, spec, "spike_transfer", E, S, words, p, "spike_operand", has_w)
        add = {"integrate_per_synaptic_event": E}
    led.add("local_memory.weight_read", wb, weight_per_synaptic_event_multicast=reads)
    led.add("local_memory.membrane_read", mb, membrane_per_neuron_step=steps)
    led.add("local_memory.membrane_write", mb, membrane_per_neuron_step=steps)
    if spiking:  # reset by subtraction: every neuron-step (paper) or only on a spike (hardware)
        add["reset"] = steps if m["neuron_ops"] == "paper" else F
    led.add("pe_array.add", mb, **add)
    led.add("pe_array.compare", mb, threshold_check_per_neuron_step=steps if spiking else 0)
    _fold_traffic(led, spec, l, p, n * T, 1, n)
    led.add("dram.output_write", mb, readout_once_per_sample=0 if spiking else n * N)
    return {"macs": macs, "synaptic_ops": E, "spikes_in": S, "spikes_out": F, "neuron_updates": steps}


def _ann_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: Group, ab: int) -> dict:
    d, n, m = spec.data, st.samples, spec.mapping
    N, spiking, has_w = l.n_neurons, l.output == "spikes", l.n_weights > 0
    zs = m["zero_skipping"]
    macs = st.ann_macs if zs else n * l.dense_macs
    in_bits = d.input_bits if st.analog_input else ab
    reads = _deliver(led, spec, "act_transfer", macs, st.ann_nonzero_inputs if zs else n * l.n_inputs,
                     math.ceil(in_bits / spec["interconnect"].width_bits), p, "activation_operand", has_w)
    led.add("local_memory.weight_read", d.weight_bits, weight_per_mac_multicast=reads)
    if has_w:
        led.add("pe_array.mac", d.weight_bits, mac=macs)
    else:  # average pooling: a fixed-weight sum
        led.add("pe_array.add", d.psum_bits, mac=macs)
    hw = spiking and m["neuron_ops"] == "hardware"
    led.add("pe_array.compare", d.psum_bits, quantise_per_neuron=n * N if hw else 0)
    _fold_traffic(led, spec, l, p, n, ab, n)
    if st.analog_input:
        led.add("dram.input_read", d.input_bits, image_once_per_sample=n * l.n_inputs)
    if not spiking:
        led.add("dram.output_write", d.psum_bits, readout_once_per_sample=n * N)
    return {"macs": macs, "neuron_updates": n * N}


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count of a ``spatial_dataflow`` replay of ``mode`` ("snn" or "ann"), per layer and
    ``component.action``, from geometry, T, the spec and the per-layer statistics (summed over
    the replayed samples). ``table`` prices the counts (pJ); ``ideal``: the model fits the
    chip in one fold and movements pay no distance."""
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    ab = spec.data.ann_bits(trace_act_bits)
    out = []
    for l, st, p in zip(layers, stats, place(spec, layers, mode, ideal)):
        led = TermLedger()
        work = _snn_layer(led, spec, l, st, p, T) if mode == "snn" else _ann_layer(led, spec, l, st, p, ab)
        out.append(finish_layer(l.name, led, work, spec, table, _residency(p)))
    return Prediction(ARCHITECTURE, mode, stats[0].samples if stats else 0, T, ab, out,
                      None if table is None else table.name)


def ideal_overrides(spec, layers: list[LayerSpec], T: int, trace_bits: int) -> list[str]:
    """``--set`` overrides that make ``spec`` satisfy ``predict(..., ideal=True)`` for these
    layers: enough PE rows (the columns kept) for every group of either mode in one fold, and
    no distance cost (``mapping.per_hop=false``); nothing already large enough is shrunk.
    ``T`` and ``trace_bits`` do not change the placement."""
    cols = spec["pe_array"].cols
    need = max(sum(group_pes(spec, layers, mode)) for mode in ("snn", "ann"))
    out = [f"components.pe_array.rows={math.ceil(need / cols)}"] if need > spec["pe_array"].rows * cols else []
    return out + (["mapping.per_hop=false"] if spec.mapping["per_hop"] else [])
