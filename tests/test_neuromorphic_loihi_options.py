"""The neuromorphic chip's Loihi behaviour options (docs/architectures/neuromorphic.md, "Loihi
behaviour"): the readout updated every step, a direct input given as per-neuron biases, and
neuron updates charged to active neurons only — each counted against a brute force over the
trace's spikes, and the closed form equal to the simulator term by term."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analytic import neuromorphic as nm
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.arch.energy import load_energy_table
from sim.arch.registry import arch_kind
from sim.arch.spec import load_arch_spec
from sim.architectures.neuromorphic import Neuromorphic
from sim.replay import replay
from sim.trace import open_trace
from sim.workload import Workload

import brute
from analytic_helpers import assert_matches_report
from conftest import REPO

# one configuration: an 8x8 mesh of 32-neuron cores; several: a 2x2 mesh (paging, parts)
ONE = ["components.noc.width=8", "components.noc.height=8", "components.neuron_memory.capacity_bytes=96"]
PAGED = ["components.noc.width=2", "components.noc.height=2", "components.neuron_memory.capacity_bytes=96"]
PAPER = load_energy_table("paper_v1_45nm")


def counts(trace_path, overrides, mode="snn"):
    spec = load_arch_spec("neuromorphic", overrides)
    with open_trace(trace_path) as tr:
        result = Neuromorphic(spec, Workload(tr)).run(mode, tr.n_samples)
    return {name: result.ledger.layer_counts(name) for name in result.ledger.layers()}


def test_the_shipped_defaults_are_documented_and_are_not_mapping_choices():
    spec = load_arch_spec("neuromorphic")
    assert (spec.mapping["readout_every_step"], spec.mapping["direct_input"], spec.mapping["neuron_updates"]) == \
        (True, "events", "all")
    doc = (REPO / "docs" / "architectures" / "neuromorphic.md").read_text()
    for text in ("`mapping.readout_every_step`", "`mapping.direct_input`", "`mapping.neuron_updates`"):
        assert text in doc
    assert not {"readout_every_step", "direct_input", "neuron_updates"} & set(arch_kind("neuromorphic").mapping_space)


def test_a_readout_updated_every_step_pays_a_neuron_update_per_neuron_and_step_and_never_fires(tiny_trace):
    once = counts(tiny_trace, ONE + ["mapping.readout_every_step=false"])
    every = counts(tiny_trace, ONE + ["mapping.readout_every_step=true"])
    with open_trace(tiny_trace) as tr:
        n, T, N = tr.n_samples, tr.T, tr.layer("fc2").n_neurons
    assert once["fc2"]["neuron_memory.state_read"] == n * N  # read out once
    assert every["fc2"]["neuron_memory.state_read"] == n * T * N  # every step; the last is the read-out
    assert every["fc2"]["core.compare"] == every["fc2"]["neuron_memory.state_write"] == n * T * N
    assert "core.compare" not in once["fc2"] and "core.fire" not in every["fc2"]
    assert {k: v for k, v in once.items() if k != "fc2"} == {k: v for k, v in every.items() if k != "fc2"}
    # the twin has one step: its readout is read once either way
    assert counts(tiny_trace, ONE + ["mapping.readout_every_step=true"], "ann") == \
        counts(tiny_trace, ONE + ["mapping.readout_every_step=false"], "ann")


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_a_bias_input_sends_no_event_and_stores_one_bias_per_neuron(tiny_trace, mode):
    events = counts(tiny_trace, ONE, mode)
    bias = counts(tiny_trace, ONE + ["mapping.direct_input=bias"], mode)
    with open_trace(tiny_trace) as tr:
        n, T, N = tr.n_samples, tr.T, tr.layer("conv1").n_neurons
    c1 = bias["conv1"]
    assert not {k for k in c1 if k.startswith("noc.")}  # no input packet, no hop
    assert not {k for k in c1 if k.startswith("synapse_memory.")} | ({"core.mac", "neuron_memory.psum_read"} & set(c1))
    assert c1["dram.input_read"] == n * N  # the biases, not the image
    if mode == "snn":
        assert c1["neuron_memory.current_write"] == n * N and c1["neuron_memory.current_read"] == n * T * N
        assert c1["core.add"] == events["conv1"]["core.add"]  # N per step plus the resets, as before
    else:
        assert c1["neuron_memory.psum_write"] == n * N
    for key in ("neuron_memory.state_read", "core.compare", "neuron_memory.state_write", "core.fire"):
        assert c1[key] == events["conv1"][key]
    assert {k: v for k, v in bias.items() if k != "conv1"} == {k: v for k, v in events.items() if k != "conv1"}


def brute_active(trace_path, layer_name: str, mode: str) -> int:
    """(sample, step, neuron) triples in which the neuron receives an event or fires, one
    synapse at a time: SNN input spikes at that step; the twin's non-zero inputs once."""
    with open_trace(trace_path) as tr:
        layer = tr.layer(layer_name)
        syn = list(brute.synapses(layer))
        total = 0
        for s in range(tr.n_samples):
            if mode == "snn":
                x = tr.input_spikes(layer_name, s).reshape(tr.T, -1) != 0
                out = tr.spikes(layer_name, s).reshape(tr.T, -1) != 0 if layer.output == "spikes" else None
            else:
                x = tr.activations(tr.producer(layer_name).name, s).reshape(1, -1) != 0
                out = tr.activations(layer_name, s).reshape(1, -1) != 0 if layer.output == "spikes" else None
            active = np.zeros((x.shape[0], layer.n_neurons), dtype=bool) if out is None else out.copy()
            for i, o in syn:
                active[:, o] |= x[:, i]
            total += int(active.sum())
    return total


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_active_updates_charge_neurons_with_input_or_a_spike_and_every_state_read(tiny_trace, mode):
    all_ = counts(tiny_trace, ONE, mode)
    active = counts(tiny_trace, ONE + ["mapping.neuron_updates=active"], mode)
    for name in ("conv2", "pool1", "fc1", "fc2"):
        want = brute_active(tiny_trace, name, mode)
        if name == "fc2" and mode == "ann":  # the twin's readout is only read out
            assert "core.compare" not in active[name]
            continue
        assert active[name]["core.compare"] == active[name]["neuron_memory.state_write"] == want, name
        assert want <= all_[name]["core.compare"]
        assert active[name]["neuron_memory.state_read"] == all_[name]["neuron_memory.state_read"]
    if mode == "snn":  # the direct input drives every neuron every step
        assert active["conv1"] == all_["conv1"]


LOIHI = ["mapping.readout_every_step=true", "mapping.direct_input=bias", "mapping.neuron_updates=active"]


@pytest.mark.parametrize("trace", ["tiny_synth_T4", "tiny_resnet_lif_T4", "tiny_resnet_current_T4"])
@pytest.mark.parametrize("mesh", [ONE, PAGED], ids=["one_config", "paged"])
def test_the_closed_form_equals_the_simulator_with_the_loihi_behaviour(trace, mesh):
    path = REPO / "traces" / f"{trace}.h5"
    spec = load_arch_spec("neuromorphic", mesh + LOIHI)
    with open_trace(path) as tr:
        reports = replay(tr, "neuromorphic", ["snn", "ann"], PAPER.path, samples=2, overrides=mesh + LOIHI,
                         progress=False)
        stats = trace_event_stats(tr, 2)
        for rep in reports:
            pred = nm.predict(spec, tr.layers, stats, tr.T, rep["mode"], trace_activation_bits(tr), PAPER)
            assert_matches_report(pred, rep)
