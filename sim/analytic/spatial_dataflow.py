"""Closed form of the spatial dataflow (``spatial_dataflow``): every count of
docs/architectures/spatial_dataflow.md from layer geometry, T, the arch spec and the per-layer
statistics S, E, F, nnz, M (:mod:`sim.analytic.layer_stats`), and the placement policy shared
with the simulator (:mod:`sim.mapping.spatial_dataflow`).

Per layer, over n samples: N neurons, n_in inputs, n_w weights, w the interconnect word,
⌈b/w⌉ words per b-bit operand, h_k the hops of input edge k (from source k's PE group), and
the fold the layer runs in (its PE group, :func:`sim.mapping.spatial_dataflow.place`).
Weights stay resident, so the paper-ideal spec charges exactly one movement per synaptic
event or non-zero MAC and 2 membrane accesses + 2 adds per neuron-step (the paper's
per-event costs). A residual add is a neuron layer without weights (one add per operand
event), a max-pool a stateless layer of compares (the spike OR; the ANN's running max), a
LIF neuron one leak per neuron-step; a layer with several input edges pays each edge's
hops on that edge's operands (split per operand from ``per_element``). A current layer
(output ``current``) integrates like a neuron layer without its neuron step; each add it
feeds receives its n values per step (SNN) / sample (ANN) and adds each once.

Terms whose cause is in ``closed_form.NONIDEAL_CAUSES`` vanish when the model fits the chip
in one fold and movements pay no distance (``per_hop: false``); ``ideal=True`` predicts that
case whatever the spec's chip size. Nothing here imports the engine, the architectures, the
kernels or the workload.
"""

from __future__ import annotations

import math

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats, input_fanout, reads_stored_input, stored_input_spikes
from sim.mapping.encoding import address_bits
from sim.mapping.spatial_dataflow import Group, group_pes, place
from sim.trace import LayerSpec

ARCHITECTURE = "spatial_dataflow"


#: The placement keys of a prediction's ``residency`` (the group's edges are not listed).
RESIDENCY_KEYS = ("pes", "first_pe", "state_bits", "hops", "fold", "fold_first", "fold_last", "folds")
#: Where a layer's synapse operations count in the workload totals (as sim.workload does):
#: residual adds and max-pool compares apart from MACs / synaptic ops.
_OP_TOTAL = {"avgpool": "adds", "add": "adds", "maxpool": "compares"}


def _residency(g: Group) -> dict:
    """A layer's placement as the prediction's ``residency``."""
    return {k: getattr(g, k) for k in RESIDENCY_KEYS}


def _item(x):
    """A numpy scalar as a Python int (measured) or float (expected)."""
    return x.item() if hasattr(x, "item") else x


def _edges(spec, l: LayerSpec, st: LayerEventStats, p: Group, mode: str, currents=frozenset()):
    """Per input edge k: (per-synapse, per-input) operand counts over the samples — SNN: E_k,
    S_k; ANN: M_k, nnz_k (dense: n·N and n·n_in / k each; 0 on a current edge) — from the
    per-element statistics of operand k's slice of the input; None when one edge, or no
    per-hop cost, makes them moot."""
    if len(p.edges) < 2 or not spec.mapping["per_hop"]:
        return None
    k, n = len(p.edges), st.samples
    size, fan = l.n_inputs // k, input_fanout(l)
    if mode == "ann" and not spec.mapping["zero_skipping"]:
        return [(0, 0) if e.source in currents else (n * (l.dense_ops // k), n * size) for e in p.edges]
    el = st.per_element["spikes_in" if mode == "snn" else "nonzero_in"]
    return [(_item(el[j * size:(j + 1) * size] @ fan[j * size:(j + 1) * size]),
             _item(el[j * size:(j + 1) * size].sum())) for j in range(k)]


def _deliver(led: TermLedger, spec, action: str, per_synapse, per_input, words: int, p: Group,
             cause: str, has_w: bool, edges=None):
    """One movement per synapse (``per_synapse``) or one multicast per input operand, of
    ``words`` interconnect words each; with ``per_hop`` every movement also pays h_k − 1 more
    hops on its edge k (``edges``: per edge, its (per_synapse, per_input); None: one edge).
    Returns the local weight reads a multicast implies (one per synaptic event)."""
    multicast = spec.mapping["delivery"] == "multicast"
    w = spec["interconnect"].width_bits
    transfers = (per_input if multicast else per_synapse) * words
    led.add(f"interconnect.{action}", w, **{cause: transfers})
    if spec.mapping["per_hop"]:
        if edges is None:
            hops = transfers * (p.hops - 1)
        else:
            hops = sum((pi if multicast else ps) * words * (e.hops - 1) for (ps, pi), e in zip(edges, p.edges))
        led.add("interconnect.hop", w, hops_between_groups=hops)
    return per_synapse if multicast and has_w else 0


def _fold_traffic(led: TermLedger, spec, l: LayerSpec, p: Group, n_moves: int, bits: int, per_sample_weights: int,
                  currents=frozenset(), out_bits: int | None = None):
    """Folding: every layer reloads its weights per sample; a layer with a consumer in a later
    fold writes its outputs to DRAM once (``out_bits`` each, default ``bits``), and each spike
    or activation operand whose source ran in an earlier fold is read back (current operands:
    :func:`_currents`)."""
    wb = spec.data.weight_bits
    w = per_sample_weights * l.n_weights if p.folds > 1 else 0
    back = sum(e.via_dram and e.source not in currents for e in p.edges)
    led.add("dram.weight_read", wb, weights_reloaded_per_sample_folded=w)
    led.add("local_memory.weight_write", wb, weights_reloaded_per_sample_folded=w)
    led.add("dram.boundary_read", bits, fold_boundary=n_moves * (l.n_inputs // l.n_operands) * back)
    led.add("dram.boundary_write", bits if out_bits is None else out_bits,
            fold_boundary=n_moves * l.n_neurons if p.writes_out else 0)


def _currents(led: TermLedger, spec, l: LayerSpec, p: Group, n_moves: int, bits: int, currents) -> int:
    """An add's current operands, ``n_moves`` times (n·T steps in the SNN, n samples in the
    twin): each of the n values of every current edge k moves once to the group
    (``interconnect.current_transfer``, ⌈bits/w⌉ words), pays h_k − 1 more hops with
    ``per_hop`` and, from a source in an earlier fold, is first read back from DRAM
    (``dram.current_read``). Returns the values moved (one add each); nothing for a layer
    without current operands."""
    edges = [e for e in p.edges if e.source in currents]
    if not edges:
        return 0
    w = spec["interconnect"].width_bits
    n, words = l.n_inputs // l.n_operands, math.ceil(bits / w)
    values = n_moves * n * len(edges)
    led.add("interconnect.current_transfer", w, current_operand=values * words)
    if spec.mapping["per_hop"]:
        led.add("interconnect.hop", w, hops_between_groups=sum(n_moves * n * words * (e.hops - 1) for e in edges))
    if p.folds > 1:
        led.add("dram.current_read", bits, fold_boundary=n_moves * n * sum(e.via_dram for e in edges))
    return values


def _snn_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: Group, T: int,
               currents=frozenset()) -> dict:
    d, n, m = spec.data, st.samples, spec.mapping
    mb, pb, ib, wb = d.membrane_bits, d.psum_bits, d.input_bits, d.weight_bits
    N, S, E, F = l.n_neurons, st.spikes_in, st.synaptic_events, st.spikes_out
    w = spec["interconnect"].width_bits
    spiking, has_w, pool = l.output == "spikes", l.n_weights > 0, l.kind == "maxpool"
    steps = n * T * N
    macs = 0
    add: dict = {}
    if st.analog_input:  # the image's constant current, computed once per sample (never a max-pool)
        zs = m["zero_skipping"]
        macs = st.ann_macs if zs else n * l.dense_ops
        inputs = st.ann_nonzero_inputs if zs else n * l.n_inputs
        reads = _deliver(led, spec, "act_transfer", macs, inputs, math.ceil(ib / w), p,
                         "input_current_operand", has_w)
        led.add("pe_array.mac", wb, input_current_macs=macs)
        led.add("dram.input_read", ib, image_once_per_sample=n * l.n_inputs)
        led.add("local_memory.current_write", pb, input_current_once_per_sample=n * N)
        led.add("local_memory.current_read", pb, stored_current_per_neuron_step=steps)
        add = {"integrate_current_per_neuron_step": steps}
    else:
        sources = [e.source for e in p.edges]
        if reads_stored_input(st, sources):  # rate / event encoding: the input spikes from DRAM
            led.add("dram.spike_read", address_bits(l.n_inputs // l.n_operands),
                    input_events_once_per_sample=stored_input_spikes(st, sources))
        words = 1 if m["delivery"] == "per_synapse" else math.ceil(address_bits(l.n_inputs) / w)
        reads = _deliver(led, spec, "spike_transfer", E, S, words, p, "spike_operand", has_w,
                         _edges(spec, l, st, p, "snn", currents))
        if pool:  # the spike OR: one 1-bit compare per input spike and covering window
            led.add("pe_array.compare", 1, spike_or_per_synaptic_event=E)
        else:
            add = {"integrate_per_synaptic_event": E}
            cur = _currents(led, spec, l, p, n * T, mb, currents)
            if cur:  # an add: each current value, every step
                add["add_current_value_per_step"] = cur
    led.add("local_memory.weight_read", wb, weight_per_synaptic_event_multicast=reads)
    held = 0 if pool else steps  # neuron-steps of membrane (or current accumulator) state; a max-pool has none
    led.add("local_memory.membrane_read", mb, membrane_per_neuron_step=held)
    led.add("local_memory.membrane_write", mb, membrane_per_neuron_step=held)
    if spiking and not pool:  # the reset: every neuron-step (paper) or only on a spike (hardware)
        add["reset"] = steps if m["neuron_ops"] == "paper" else F
    led.add("pe_array.add", mb, **add)
    if l.has_neurons:  # (a max-pool's compares are its ORs; a current layer has no neuron step)
        led.add("pe_array.compare", mb, threshold_check_per_neuron_step=steps if spiking else 0)
    if l.neuron is not None and l.neuron.leaks:  # LIF: the membrane decays every neuron-step
        led.add("pe_array.leak", mb, leak_per_neuron_step=steps)
    current_out = l.output == "current"
    _fold_traffic(led, spec, l, p, n * T, 1, n, currents, mb if current_out else None)
    led.add("dram.output_write", mb, readout_once_per_sample=n * N if l.output == "potential" else 0)
    return {"macs": macs, _OP_TOTAL.get(l.kind, "synaptic_ops"): E + T * st.current_inputs, "spikes_in": S,
            "spikes_out": F, "neuron_updates": steps if l.has_neurons else 0}


def _ann_layer(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, p: Group, ab: int,
               currents=frozenset()) -> dict:
    d, n, m = spec.data, st.samples, spec.mapping
    N, spiking, has_w = l.n_neurons, l.output == "spikes", l.n_weights > 0
    zs = m["zero_skipping"]
    cin = st.current_inputs  # an add's current operand elements (fan-out 1): not activations
    macs = st.ann_macs if zs else n * l.dense_ops - cin
    in_bits = d.input_bits if st.analog_input else ab
    reads = _deliver(led, spec, "act_transfer", macs, st.ann_nonzero_inputs if zs else n * l.n_inputs - cin,
                     math.ceil(in_bits / spec["interconnect"].width_bits), p, "activation_operand", has_w,
                     _edges(spec, l, st, p, "ann", currents))
    cur = _currents(led, spec, l, p, n, d.psum_bits, currents)
    led.add("local_memory.weight_read", d.weight_bits, weight_per_mac_multicast=reads)
    if has_w:
        led.add("pe_array.mac", d.weight_bits, mac=macs)
    elif l.kind == "maxpool":  # each operand against its window's running max; no quantise
        led.add("pe_array.compare", in_bits, max_compare=macs)
    else:  # average pooling, a residual add: a fixed-weight sum (and each current value once)
        led.add("pe_array.add", d.psum_bits, mac=macs, **({"add_current_value": cur} if cur else {}))
    if l.has_neurons:
        hw = spiking and m["neuron_ops"] == "hardware"
        led.add("pe_array.compare", d.psum_bits, quantise_per_neuron=n * N if hw else 0)
    _fold_traffic(led, spec, l, p, n, ab, n, currents, d.psum_bits if l.output == "current" else None)
    if st.analog_input:
        led.add("dram.input_read", d.input_bits, image_once_per_sample=n * l.n_inputs)
    sources = [e.source for e in p.edges]
    if reads_stored_input(st, sources):  # rate / event encoding: the twin's input levels
        led.add("dram.input_read", ab, input_levels_once_per_sample=n * (l.n_inputs // l.n_operands)
                * sources.count(None))
    if l.output == "potential":
        led.add("dram.output_write", d.psum_bits, readout_once_per_sample=n * N)
    return {_OP_TOTAL.get(l.kind, "macs"): macs + cur, "neuron_updates": n * N if l.has_neurons else 0}


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count of a ``spatial_dataflow`` replay of ``mode`` ("snn" or "ann"), per layer and
    ``component.action``, from geometry, T, the spec and the per-layer statistics (summed over
    the replayed samples). ``table`` prices the counts (pJ); ``ideal``: the model fits the
    chip in one fold and movements pay no distance."""
    compute = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    groups = place(spec, layers, mode, ideal)  # all layers: passthroughs tell it the graph
    layers = compute
    ab = spec.data.ann_bits(trace_act_bits)
    currents = frozenset(l.name for l in layers if l.output == "current")
    out = []
    for l, st, p in zip(layers, stats, groups):
        led = TermLedger()
        work = (_snn_layer(led, spec, l, st, p, T, currents) if mode == "snn"
                else _ann_layer(led, spec, l, st, p, ab, currents))
        out.append(finish_layer(l.name, led, work, spec, table, _residency(p)))
    return Prediction(ARCHITECTURE, mode, stats[0].samples if stats else 0, T, ab, out,
                      None if table is None else table.name)


def ideal_overrides(spec, layers: list[LayerSpec], T: int, trace_bits: int,
                    spike_input: bool = False) -> list[str]:
    """``--set`` overrides that make ``spec`` satisfy ``predict(..., ideal=True)`` for these
    layers: enough PE rows (the columns kept) for every group of either mode in one fold, and
    no distance cost (``mapping.per_hop=false``); nothing already large enough is shrunk.
    ``T``, ``trace_bits`` and ``spike_input`` (the input's encoding) do not change the
    placement."""
    cols = spec["pe_array"].cols
    need = max(sum(group_pes(spec, layers, mode)) for mode in ("snn", "ann"))
    out = [f"components.pe_array.rows={math.ceil(need / cols)}"] if need > spec["pe_array"].rows * cols else []
    return out + (["mapping.per_hop=false"] if spec.mapping["per_hop"] else [])
