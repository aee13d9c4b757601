"""Closed form of the neuromorphic mesh (``neuromorphic``): every count of
docs/architectures/neuromorphic.md from the mapping (:mod:`sim.analytic.neuromorphic_mapping`,
static: geometry and spec only) and the trace's events.

Traffic depends on *which* elements fire, not only how many, so the statistics here are per
element: with c_i the events of input element i (spikes summed over steps and samples; for
graded events, the samples in which it is non-zero) and the static figures of element i on
each part of a layer — packets p_i, hops h^ew_i and h^ns_i, synapses σ_i on the part's cores —

    noc.packet = Σ c_i·p_i,  noc.flit_hop_ew = f·Σ c_i·h^ew_i,  noc.flit_hop_ns = f·Σ c_i·h^ns_i,
    synapse_memory.weight_read = Σ c_i·σ_i  (= E when the layer is whole on the mesh)

with f the flits per packet; the per-neuron terms need each part's neurons and output events.
Terms whose cause is in ``closed_form.NONIDEAL_CAUSES`` (weights paged in, events through
DRAM between configurations) vanish when the model fits the mesh in one configuration.
"""

from __future__ import annotations

from sim.analytic.closed_form import (
    Prediction,
    TermLedger,
    address_bits,
    checked_layers,
    finish_layer,
)
from sim.analytic.layer_stats import LayerEventStats
from sim.analytic.neuromorphic_mapping import PartFigures, build
from sim.trace import LayerSpec

ARCHITECTURE = "neuromorphic"


def _num(x):
    """An exact int for measured (integer) statistics, a float for expectations."""
    return int(x) if float(x).is_integer() and not isinstance(x, float) else float(x)


def _part(led: TermLedger, spec, l: LayerSpec, st: LayerEventStats, part: PartFigures, mesh, groups,
          n_configs: int, mode: str, T: int, ab: int) -> None:
    d, n = spec.data, st.samples
    has_dram = "dram" in spec.components
    analog = st.analog_input
    snn = mode == "snn"
    graded = analog or not snn
    mb = d.membrane_bits if snn else d.psum_bits
    N = part.neurons
    spiking = l.output == "spikes"
    if n_configs > 1:  # every configuration pages its weights in, every sample
        words = int(groups.synapse_bits[part.g0:part.g1].sum()) // d.weight_bits
        led.add("dram.weight_read", d.weight_bits, weights_paged_per_sample=n * words)
        led.add("synapse_memory.weight_write", d.weight_bits, weights_paged_per_sample=n * words)
    c = st.per_element["nonzero_in" if graded else "spikes_in"]
    if has_dram and (analog or not part.input_on_chip):
        if analog:
            led.add("dram.input_read", d.input_bits, image_once_per_sample=n * l.n_inputs)
        else:
            bits = address_bits(l.n_inputs) + (0 if snn else ab)
            led.add(f"dram.{'spike' if snn else 'activation'}_read", bits,
                    events_between_configurations=_num(c.sum()))
    payload = d.input_bits if analog else (0 if snn else ab)
    flits = mesh.flits(l, payload)
    led.add("noc.packet", flits * mesh.flit_bits, packet_per_destination=_num(c @ part.packets))
    led.add("noc.flit_hop_ew", mesh.flit_bits, flit_hops=flits * _num(c @ part.hops_ew))
    led.add("noc.flit_hop_ns", mesh.flit_bits, flit_hops=flits * _num(c @ part.hops_ns))
    syn = _num(c @ part.synapses)
    led.add("synapse_memory.weight_read", d.weight_bits, weight_per_synaptic_event=syn)
    if graded:
        acc = "current" if snn else "psum"
        led.add("core.mac", d.weight_bits, graded_event_mac=syn)
        led.add(f"neuron_memory.{acc}_read", d.psum_bits, graded_event_mac=syn)
        led.add(f"neuron_memory.{acc}_write", d.psum_bits, graded_event_mac=syn)
    else:
        led.add("neuron_memory.membrane_read", mb, integrate_per_synaptic_event=syn)
        led.add("neuron_memory.membrane_write", mb, integrate_per_synaptic_event=syn)
    out = st.per_element["spikes_out" if snn else "nonzero_out"]
    fired = _num(out[part.neuron_mask].sum()) if spiking else 0
    steps = T if snn else 1
    if snn:
        integrate = ({"integrate_current_per_neuron_step": n * T * N} if analog
                     else {"integrate_per_synaptic_event": syn})
        led.add("core.add", mb, **integrate, reset_per_output_spike=fired)
    if spiking:
        led.add("neuron_memory.state_read", mb, neuron_update_per_step=n * steps * N)
        led.add("core.compare", mb, neuron_update_per_step=n * steps * N)
        led.add("neuron_memory.state_write", mb, neuron_update_per_step=n * steps * N)
        led.add("core.fire", 1, output_event=fired)
    else:
        led.add("neuron_memory.state_read", mb, readout_once_per_sample=n * N)
    if part.output_off_chip and has_dram:
        if spiking:
            bits = address_bits(l.n_neurons) + (0 if snn else ab)
            led.add(f"dram.{'spike' if snn else 'activation'}_write", bits,
                    events_between_configurations=fired)
        else:
            led.add("dram.output_write", mb, readout_once_per_sample=n * N)


def predict(spec, layers: list[LayerSpec], stats: list[LayerEventStats], T: int, mode: str,
            trace_act_bits: int, table=None, ideal: bool = False) -> Prediction:
    """Every count of a ``neuromorphic`` replay of ``mode``, per layer and
    ``component.action``, from the mapping and the per-element statistics of
    :func:`sim.analytic.layer_stats.trace_event_stats` (summed over the replayed samples).
    ``ideal`` does not change the mapping (a bigger mesh would place the layers
    differently); ``ideal_counts`` and ``ideal_energy_pj`` always drop paging and the events
    between configurations."""
    layers = checked_layers(spec, ARCHITECTURE, mode, layers, stats)
    if any(not s.per_element for s in stats):
        raise ValueError("the neuromorphic closed form needs per-element statistics (trace_event_stats)")
    producers = [None if s.analog_input else i - 1 for i, s in enumerate(stats)]
    ab = spec.data.ann_bits(trace_act_bits)
    mesh, groups, parts, n_configs = build(spec, layers, producers)
    out = []
    for i, (l, st) in enumerate(zip(layers, stats)):
        led = TermLedger()
        mine = [p for p in parts if p.index == i]
        for p in mine:
            _part(led, spec, l, st, p, mesh, groups[i], n_configs, mode, T, ab)
        n = st.samples
        if mode == "snn":
            work = {"macs": st.ann_macs if st.analog_input else 0, "synaptic_ops": st.synaptic_events,
                    "spikes_in": st.spikes_in, "spikes_out": st.spikes_out, "neuron_updates": n * T * l.n_neurons}
        else:
            work = {"macs": st.ann_macs, "neuron_updates": n * l.n_neurons}
        residency = {"configurations": n_configs, "cores": groups[i].n,
                     "parts": [{"segment": p.segment, "groups": [p.g0, p.g1], "input_on_chip": p.input_on_chip,
                                "output_off_chip": p.output_off_chip} for p in mine]}
        out.append(finish_layer(l.name, led, work, spec, table, residency))
    return Prediction(ARCHITECTURE, mode, stats[0].samples if stats else 0, T, ab, out,
                      None if table is None else table.name)
