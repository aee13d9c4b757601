"""Closed form of the neuromorphic mesh (``neuromorphic``): every count of
docs/architectures/neuromorphic.md from the shared mapping policy (:mod:`sim.mapping.neuromorphic`,
static: geometry and spec only), its route figures enumerated in numpy
(:mod:`sim.analytic.neuromorphic_routes`) and the trace's events.

Traffic depends on *which* elements fire, not only how many, so the statistics here are per
element: with c_i the events of input element i (spikes summed over steps and samples; for
graded events, the samples in which it is non-zero) and the static figures of element i on
each part of a layer — packets p_i, hops h^ew_i and h^ns_i, synapses σ_i on the part's cores —

    noc.packet = Σ c_i·p_i,  noc.flit_hop_ew = f·Σ c_i·h^ew_i,  noc.flit_hop_ns = f·Σ c_i·h^ns_i,
    synapse_memory.<kind>_read = Σ c_i·σ_i  (= E when the layer is whole on the mesh)

with f the flits per packet and the read's kind that of the layer's synapses
(:func:`synapse_read`: ``dense_weight_read`` for a linear layer, ``weight_read`` for a conv or
average pool with shared kernels, ``sparse_weight_read`` without); the per-neuron terms need each part's neurons and output events.
On a layer graph a layer's input elements are its sources' outputs concatenated (an add's
operands), so a source read by several consumers is counted in each; an add's events read no
weights, a max pool's are compares (no neuron update), a LIF layer pays ``core.leak`` per
neuron per step. Terms whose cause is in ``closed_form.NONIDEAL_CAUSES`` (weights paged in,
events through DRAM between configurations) vanish when the model fits the mesh in one
configuration.
"""

from __future__ import annotations

import math

import numpy as np

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats, compute_layers
from sim.analytic.neuromorphic_routes import PartFigures, part_figures
from sim.errors import ParameterError
from sim.mapping.encoding import address_bits
from sim.mapping.graph import graph_sources
from sim.mapping.neuromorphic import (
    LayerGroups,
    MeshGeometry,
    build,
    neurons_per_core,
    partition_layers,
    stores_weights,
)
from sim.trace import LayerSpec

ARCHITECTURE = "neuromorphic"


def _num(x):
    """An exact int for measured (integer) statistics, a float for expectations."""
    return int(x) if float(x).is_integer() and not isinstance(x, float) else float(x)


#: Where a layer's synapse operations count in the workload totals (sim.workload.OP_TOTAL,
#: restated: the closed forms import no workload): MACs, residual adds or max-pool compares.
OP_TOTAL = {"conv2d": "macs", "linear": "macs", "avgpool": "adds", "add": "adds", "maxpool": "compares"}


def synapse_read(l: LayerSpec, weight_sharing: bool) -> str:
    """The ``synapse_memory`` action one synaptic event of a weight-storing layer counts (the
    kind of its synapses, restated from the simulator's
    ``sim.architectures.neuromorphic_mapping.synapse_read``): a linear layer's dense matrix,
    a conv's or average pool's shared kernels (``weight_sharing``) or explicit synapses."""
    if l.kind == "linear":
        return "dense_weight_read"
    return "weight_read" if weight_sharing else "sparse_weight_read"


def _dram_reads(led: TermLedger, key: str, bits: int, c, part, sources: list, size: int) -> None:
    """Events of the operands that enter from off-chip: from another configuration (paging),
    or the network's stored input spikes (rate or event encoding) once per sample."""
    paged = inputs = 0
    for k, (j, on) in enumerate(zip(sources, part.operands_on_chip)):
        if not on:
            events = c[k * size:(k + 1) * size].sum()
            if j is None:
                inputs += events
            else:
                paged += events
    led.add(key, bits, events_between_configurations=_num(paged))
    if any(j is None for j in sources):
        led.add(key, bits, input_events_once_per_sample=_num(inputs))


def _part(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, fig: PartFigures, mesh: MeshGeometry,
          groups: LayerGroups, n_configs: int, mode: str, T: int, ab: int, sources: list,
          currents: list[bool]) -> None:
    d, n = spec.data, st.samples
    has_dram = "dram" in spec.components
    analog = st.analog_input
    snn = mode == "snn"
    graded = analog or not snn
    mb = d.membrane_bits if snn else d.psum_bits
    part = fig.part
    N = int(part.node_neurons.sum())
    spiking = l.output == "spikes"
    bias = analog and spec.mapping["direct_input"] == "bias"  # no input event: a bias per neuron
    if n_configs > 1:  # every configuration pages its weights in, every sample
        words = int(groups.synapse_bits[part.g0:part.g1].sum()) // d.weight_bits
        led.add("dram.weight_read", d.weight_bits, weights_paged_per_sample=n * words)
        led.add("synapse_memory.weight_write", d.weight_bits, weights_paged_per_sample=n * words)
    c = st.per_element["nonzero_in" if graded else "spikes_in"]
    size = l.n_inputs // len(sources)
    steps = T if snn else 1
    if has_dram and (analog or not part.input_on_chip):
        if bias:
            led.add("dram.input_read", d.psum_bits, bias_once_per_sample=n * N)
        elif analog:
            led.add("dram.input_read", d.input_bits, image_once_per_sample=n * l.n_inputs)
        else:
            bits = address_bits(l.n_inputs) + (0 if snn else ab)
            _dram_reads(led, f"dram.{'spike' if snn else 'activation'}_read", bits, c, part, sources, size)
            off = sum(1 for cur, on in zip(currents, part.operands_on_chip) if cur and not on)
            if off:  # current values from another configuration, every step
                led.add("dram.input_read", mb, events_between_configurations=n * steps * off * size)
    payload = d.input_bits if analog else (0 if snn else ab)
    # a current operand: each of its elements is one graded value per step (the twin: once)
    cur = np.zeros(l.n_inputs)
    for k, is_current in enumerate(currents):
        if is_current:
            cur[k * size:(k + 1) * size] = n * steps
    if cur.any():  # an add that sums a current receives graded packets of the widest payload
        payload = max(payload, mb)
        c = c + cur.astype(c.dtype)
    # a packet: destination router, the source element's address, the payload
    flits = mesh.flits(mesh.header_bits + address_bits(l.n_inputs) + payload)
    if not bias:
        led.add("noc.packet", flits * mesh.flit_bits, packet_per_destination=_num(c @ fig.packets))
        led.add("noc.flit_hop_ew", mesh.flit_bits, flit_hops=flits * _num(c @ fig.hops_ew))
        led.add("noc.flit_hop_ns", mesh.flit_bits, flit_hops=flits * _num(c @ fig.hops_ns))
    syn = 0 if bias else _num(c @ fig.synapses)
    syn_cur = _num(cur.astype(np.int64) @ fig.synapses)  # the current values among them
    out = st.per_element["spikes_out" if snn else "nonzero_out"]
    fired = _num(out[groups.neuron_mask(part.g0, part.g1)].sum()) if spiking else 0
    if l.kind == "maxpool":  # no weights, no membranes, no neuron update
        if snn:
            led.add("core.compare", 1, spike_or_per_covering_window=syn)
        else:
            led.add("neuron_memory.psum_read", d.psum_bits, running_max_per_covering_window=syn)
            led.add("core.compare", ab, running_max_per_covering_window=syn)
            led.add("neuron_memory.psum_write", d.psum_bits, running_max_per_covering_window=syn)
            led.add("neuron_memory.state_read", d.psum_bits, maximum_read_once_per_sample=n * N)
        led.add("core.fire", 1, output_event=fired)
    else:
        mask = groups.neuron_mask(part.g0, part.g1)
        _neuron_part(led, spec, l, st, syn - syn_cur, syn_cur, fired, N, mode, T, bias,
                     _updated(spec, st, mask, mode, T, N, bias, any(currents)))
    if part.output_off_chip and has_dram:
        if spiking:
            bits = address_bits(l.n_neurons) + (0 if snn else ab)
            led.add(f"dram.{'spike' if snn else 'activation'}_write", bits,
                    events_between_configurations=fired)
        elif l.output == "current":  # its values, every step, for an add in another configuration
            led.add("dram.output_write", mb, events_between_configurations=n * steps * N)
        else:
            led.add("dram.output_write", mb, readout_once_per_sample=n * N)


def _updated(spec, st: LayerEventStats, mask: np.ndarray, mode: str, T: int, N: int, bias: bool,
             reads_current: bool) -> dict:
    """The neuron updates a part charges (compare, state write, leak), as {cause: count}:
    every neuron every step, or with ``neuron_updates: active`` the (neuron, step) pairs with
    input or a spike (``active_snn`` / ``active_ann`` of the part's neurons); a direct-input
    layer in the SNN, a bias in the twin and an add of a current give every neuron input
    every step."""
    n, steps = st.samples, (T if mode == "snn" else 1)
    if spec.mapping["neuron_updates"] == "all" or reads_current or (
            st.analog_input and (mode == "snn" or bias)):
        return {"neuron_update_per_step": n * steps * N}
    key = f"active_{mode}"
    if key not in st.per_element:
        raise ValueError("neuron_updates: active needs measured statistics (trace_event_stats)")
    return {"neuron_update_with_input_or_spike": _num(st.per_element[key][mask].sum())}


def _neuron_part(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, syn, syn_cur, fired, N: int,
                 mode: str, T: int, bias: bool, updated: dict) -> None:
    """The synaptic events and neuron updates of a part of a neuron layer (not a max pool);
    ``syn_cur``: an add's arriving current values (each a membrane read-modify-write and an
    add, like an operand event). A current layer updates no neuron. ``bias``: the direct
    input is each neuron's bias (no synaptic event: the bias written once per sample, read
    every step); ``updated``: the updates charged (:func:`_updated`); every neuron's state is
    read every step. A readout is updated every step with ``readout_every_step`` (SNN; its
    last step's state read is the read-out), else read out once."""
    d, n, snn = spec.data, st.samples, mode == "snn"
    graded = st.analog_input or not snn
    mb = d.membrane_bits if snn else d.psum_bits
    if bias:
        led.add(f"neuron_memory.{'current' if snn else 'psum'}_write", d.psum_bits, bias_stored_once_per_sample=n * N)
        if snn:
            led.add("neuron_memory.current_read", d.psum_bits, bias_read_per_neuron_step=n * T * N)
    elif stores_weights(l):
        led.add(f"synapse_memory.{synapse_read(l, spec.mapping['weight_sharing'])}", d.weight_bits,
                weight_per_synaptic_event=syn)
    if graded and not bias:
        acc = "current" if snn else "psum"
        if stores_weights(l):
            led.add("core.mac", d.weight_bits, graded_event_mac=syn)
        else:  # a residual add's non-zero operand, added into the partial sum
            led.add("core.add", d.psum_bits, graded_operand_add=syn, current_value_add=syn_cur)
        led.add(f"neuron_memory.{acc}_read", d.psum_bits, graded_event_mac=syn, current_value_add=syn_cur)
        led.add(f"neuron_memory.{acc}_write", d.psum_bits, graded_event_mac=syn, current_value_add=syn_cur)
    elif not graded:
        led.add("neuron_memory.membrane_read", mb, integrate_per_synaptic_event=syn, current_value_add=syn_cur)
        led.add("neuron_memory.membrane_write", mb, integrate_per_synaptic_event=syn, current_value_add=syn_cur)
    steps = T if snn else 1
    if snn:
        integrate = ({"integrate_current_per_neuron_step": n * T * N} if st.analog_input
                     else {"integrate_per_synaptic_event": syn})
        led.add("core.add", mb, **integrate, current_value_add=syn_cur, reset_per_output_spike=fired)
        if l.neuron is not None and l.neuron.leaks:
            led.add("core.leak", mb, **{("leak_per_neuron_step" if c == "neuron_update_per_step" else c): v
                                        for c, v in updated.items()})
    readout = l.output == "potential"
    if l.output == "spikes" or (snn and readout and spec.mapping["readout_every_step"]):
        led.add("neuron_memory.state_read", mb, neuron_update_per_step=n * steps * N)
        led.add("core.compare", mb, **updated)
        led.add("neuron_memory.state_write", mb, **updated)
        if l.output == "spikes":
            led.add("core.fire", 1, output_event=fired)
    if readout and not (snn and spec.mapping["readout_every_step"]):
        led.add("neuron_memory.state_read", mb, readout_once_per_sample=n * N)


def _workload(l: LayerSpec, st: LayerEventStats, mode: str, T: int) -> dict:
    """The layer's workload totals, as sim.workload.layer_totals defines them."""
    n = st.samples
    where = OP_TOTAL.get(l.kind)
    neurons = l.n_neurons if l.has_neurons else 0
    if mode == "ann":
        return {where or "macs": st.ann_macs + st.current_inputs if where else 0, "neuron_updates": n * neurons}
    work = {"macs": 0, "spikes_in": st.spikes_in, "spikes_out": st.spikes_out, "neuron_updates": n * T * neurons}
    if where:
        work["synaptic_ops" if where == "macs" else where] = st.synaptic_events + st.current_inputs * T
    if st.analog_input:
        work["macs"] += st.ann_macs
    return work


#: (spec document, layer geometry) -> (mapping, route figures) of the latest specs: the mapper
#: predicts each candidate in both modes in turn (sim.replay.mapper.search_modes), and the
#: routes do not depend on the mode. Two entries: a VGG16 mapping's figures take tens of MB.
_ROUTES: dict = {}
_ROUTES_KEPT = 2


def _mapped(spec, layers, sources):
    import json

    key = (json.dumps(spec.document, sort_keys=True, default=str),
           json.dumps([l.to_dict() for l in layers], sort_keys=True, default=str), json.dumps(sources))
    if key not in _ROUTES:
        mapping = build(spec, layers, sources)
        if len(_ROUTES) >= _ROUTES_KEPT:
            _ROUTES.pop(next(iter(_ROUTES)))
        _ROUTES[key] = (mapping, part_figures(mapping, spec.mapping["multicast"]))
    return _ROUTES[key]


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count of a ``neuromorphic`` replay of ``mode``, per layer and
    ``component.action``, from the mapping and the per-element statistics of
    :func:`sim.analytic.layer_stats.trace_event_stats` (summed over the replayed samples).
    ``layers``: a trace's layers (a chain or a graph, passthroughs included). ``ideal`` does
    not change the mapping (a bigger mesh would place the layers differently);
    ``ideal_counts`` and ``ideal_energy_pj`` always drop paging and the events between
    configurations."""
    sources = graph_sources(layers)
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    if any(not s.per_element for s in stats):
        raise ValueError("the neuromorphic closed form needs per-element statistics (trace_event_stats)")
    ab = spec.data.ann_bits(trace_act_bits)
    mapping, figures = _mapped(spec, layers, sources)
    n_configs, groups = mapping.n_segments, mapping.groups
    out = []
    for i, (l, st) in enumerate(zip(layers, stats)):
        led = TermLedger()
        mine = [f for f in figures if f.part.layer_index == i]
        for f in mine:
            _part(led, spec, l, st, f, mapping.mesh, groups[i], n_configs, mode, T, ab, sources[i],
                  [j is not None and layers[j].output == "current" for j in sources[i]])
        residency = {"configurations": n_configs, "cores": groups[i].n_groups,
                     "parts": [{"segment": f.part.segment, "groups": [f.part.g0, f.part.g1],
                                "input_on_chip": f.part.input_on_chip, "output_off_chip": f.part.output_off_chip}
                               for f in mine]}
        out.append(finish_layer(l.name, led, _workload(l, st, mode, T), spec, table, residency))
    return Prediction(ARCHITECTURE, mode, stats[0].samples if stats else 0, T, ab, out,
                      None if table is None else table.name)


def ideal_overrides(spec, layers: list[LayerSpec], T: int, trace_bits: int,
                    spike_input: bool = False) -> list[str]:
    """``--set`` overrides for the ideal assumptions: a mesh with a core for every neuron group
    of ``layers`` (execution order; passthroughs are dropped, so compute layers or all of a
    trace's layers give the same answer), so the model runs in one chip configuration (no
    paging, no events through DRAM): the width kept, the height raised. NoC hops are part of
    the architecture, not a departure from it, so they stay. ``T``, ``trace_bits`` and
    ``spike_input`` (the input's encoding) do not change the partition. [] when the model
    already fits, or when not one neuron fits a core (the simulator refuses that spec
    whatever the mesh, and says so)."""
    try:
        neurons_per_core(spec)
    except ParameterError:
        return []
    noc = spec["noc"]
    cores = sum(lg.n_groups for lg in partition_layers(spec, compute_layers(layers)))
    return [f"components.noc.height={math.ceil(cores / noc.width)}"] if cores > noc.width * noc.height else []
