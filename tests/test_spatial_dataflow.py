"""spatial_dataflow: the paper's per-event costs in the ideal configuration, and the options."""

from __future__ import annotations

import math

import pytest

from sim.errors import ParameterError
from sim.replay import replay
from sim.trace import open_trace

import brute

# The paper's v1 constants (docs: shared reference, "Energy constants used by v1"), pJ
E_MEM, E_ADD, E_MUL, E_DRAM = 20.0, 0.03, 0.2, 2000.0


def _layer(report, name):
    return next(l for l in report["layers"] if l["name"] == name)


def _run(trace_path, modes, overrides=(), energy="paper_v1_45nm"):
    with open_trace(trace_path) as tr:
        return replay(tr, "spatial_dataflow", modes, energy, overrides=list(overrides), progress=False)


def test_each_event_costs_the_papers_constant_in_the_ideal_configuration(tiny_trace):
    snn, ann = _run(tiny_trace, ["snn", "ann"])
    for rep in (snn, ann):
        per = {k: rep["energy_pj"]["by_action"][k] / n for k, n in rep["counts"].items() if n}
        assert per["interconnect.act_transfer"] == pytest.approx(E_MEM, rel=1e-12)  # one movement
        assert per["pe_array.mac"] == pytest.approx(E_MUL + E_ADD, rel=1e-12)
    per = {k: snn["energy_pj"]["by_action"][k] / n for k, n in snn["counts"].items() if n}
    assert per["interconnect.spike_transfer"] == pytest.approx(E_MEM, rel=1e-12)
    assert per["pe_array.add"] == pytest.approx(E_ADD, rel=1e-12)
    assert per["pe_array.compare"] == pytest.approx(E_ADD, rel=1e-12)
    assert per["local_memory.membrane_read"] == per["local_memory.membrane_write"] == pytest.approx(E_MEM)
    # nothing outside the paper's model is charged: no weight traffic, no per-hop extras
    for rep in (snn, ann):
        assert rep["counts"]["local_memory.weight_read"] == 0
        assert rep["counts"]["dram.weight_read"] == 0
        assert "interconnect.hop" not in rep["counts"]


def test_layer_energies_are_the_papers_spatial_formula_on_a_real_trace(tiny_trace):
    """SNN: each spike-synapse event = one movement + one add; each neuron and step = a
    membrane read and write plus the fire step (compare, reset), 2(e_mem + e_add) as in the
    paper's T*2*(e_mem + e_add)/N term. ANN: each non-zero MAC = one movement + mul + add."""
    snn, ann = _run(tiny_trace, ["snn", "ann"])
    with open_trace(tiny_trace) as tr:
        T, n = tr.T, tr.n_samples
        for layer in (l for l in tr.layers if l.output != "passthrough"):
            prev = tr.producer(layer.name)
            fan = brute.fanout(layer)
            N = layer.n_neurons
            if prev is None:  # layer 1: analog image, constant current computed once
                macs = sum(int(fan[tr.input(i).reshape(-1) != 0].sum()) for i in range(n))
                image = layer.n_inputs * n * E_DRAM
                e_snn = (macs * (E_MEM + E_MUL + E_ADD) + image + N * n * E_MEM      # current stored
                         + N * T * n * (E_MEM + E_ADD)                                # read + integrate
                         + N * T * n * 2 * (E_MEM + E_ADD))
                assert _layer(snn, layer.name)["energy_pj"] == pytest.approx(e_snn, rel=1e-12)
                e_ann = macs * (E_MEM + E_MUL + E_ADD) + image
                assert _layer(ann, layer.name)["energy_pj"] == pytest.approx(e_ann, rel=1e-12)
                continue
            syn = sum(int(brute.synaptic_events(layer, tr.input_spikes(layer.name, i)).sum()) for i in range(n))
            macs = sum(int(fan[tr.activations(prev.name, i).reshape(-1) != 0].sum()) for i in range(n))
            assert syn > 0 and macs > 0
            if layer.output == "spikes":
                e_snn = syn * (E_MEM + E_ADD) + N * T * n * 2 * (E_MEM + E_ADD)
                e_ann = macs * (E_MEM + (E_MUL if layer.n_weights else 0) + E_ADD)  # pooling: no multiply
            else:  # the readout: no fire step; its potentials leave the chip once
                e_snn = syn * (E_MEM + E_ADD) + N * T * n * 2 * E_MEM + N * n * E_DRAM
                e_ann = macs * (E_MEM + E_MUL + E_ADD) + N * n * E_DRAM
            assert _layer(snn, layer.name)["energy_pj"] == pytest.approx(e_snn, rel=1e-12), layer.name
            assert _layer(ann, layer.name)["energy_pj"] == pytest.approx(e_ann, rel=1e-12), layer.name


def test_workload_totals_mean_what_they_mean_on_memory_hierarchy(tiny_trace):
    with open_trace(tiny_trace) as tr:
        ours = replay(tr, "spatial_dataflow", ["snn", "ann"], "paper_v1_45nm", progress=False)
        theirs = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm", progress=False)
    for a, b in zip(ours, theirs):
        for key in ("synaptic_ops", "spikes_in", "spikes_out", "macs", "neuron_updates"):
            assert a["totals"][key] == b["totals"][key], (a["mode"], key)
            assert [l["totals"][key] for l in a["layers"]] == [l["totals"][key] for l in b["layers"]]


def test_multicast_moves_each_spike_once_and_reads_each_weight_locally(tiny_trace):
    (ideal,) = _run(tiny_trace, ["snn"])
    (mc,) = _run(tiny_trace, ["snn"], ["mapping.delivery=multicast"])
    for li, lm in zip(ideal["layers"], mc["layers"]):
        t = li["totals"]
        if t["synaptic_ops"] == 0:
            continue
        assert li["counts"]["interconnect.spike_transfer"] == t["synaptic_ops"]
        # an address event of ceil(log2 n_in) bits in 8-bit words, once per input spike
        n_in = {"conv2": 4 * 8 * 8, "pool1": 8 * 8 * 8, "fc1": 128, "fc2": 16}[lm["name"]]
        words = -(-math.ceil(math.log2(n_in)) // 8)
        assert lm["counts"]["interconnect.spike_transfer"] == t["spikes_in"] * words
        has_weights = not lm["name"].startswith("pool")
        assert lm["counts"]["local_memory.weight_read"] == (t["synaptic_ops"] if has_weights else 0)
    assert mc["totals"]["synaptic_ops"] == ideal["totals"]["synaptic_ops"]


def test_per_hop_movement_charges_every_hop_between_groups(tiny_trace):
    """Placement by hand (docs/architectures/spatial_dataflow.md, Placement), SNN, 64-byte
    (512-bit) local memories, 8-bit weights, membranes and layer 1's input current:
      conv1: 72 weights + 256 membranes + 256 currents = 4672 bits -> ⌈4672/512⌉ = 10 PEs
      conv2: 288 weights + 512 membranes = 6400 bits -> 13 PEs
      pool1: no weights, 128 membranes = 1024 bits -> 2 PEs
      fc1: 2048 weights + 16 membranes = 16512 bits -> 33 PEs
      fc2: 64 weights + 4 membranes = 544 bits -> 2 PEs
    Consecutive PEs from 0: first PEs 0, 10, 23, 25, 58; centres (first + ⌊g/2⌋) 5, 16, 24,
    41, 59. Boustrophedon over 32 columns: PE p sits in row p // 32, column p % 32 on even
    rows and 31 − p % 32 on odd ones: (0, 5), (0, 16), (0, 24), (1, 22), (1, 4). Hops: the
    Manhattan distance from the producer's centre, or from the input port at PE 0 (0, 0):
      conv1 5, conv2 11, pool1 8, fc1 |1 − 0| + |22 − 24| = 3, fc2 |1 − 1| + |4 − 22| = 18.
    Each movement pays its hops beyond the first: per synapse, a spike-synapse event moves
    one 8-bit address word (spike-driven layers), a non-zero image tap one 8-bit value (layer 1)."""
    (rep,) = _run(tiny_trace, ["snn"], ["mapping.per_hop=true", "components.local_memory.capacity_bytes=64"])
    pes = {"conv1": 10, "conv2": 13, "pool1": 2, "fc1": 33, "fc2": 2}
    first = {"conv1": 0, "conv2": 10, "pool1": 23, "fc1": 25, "fc2": 58}
    hops = {"conv1": 5, "conv2": 11, "pool1": 8, "fc1": 3, "fc2": 18}
    placement = rep["extra"]["placement"]
    assert {k: (g["pes"], g["first_pe"], g["hops"]) for k, g in placement.items()} == {
        k: (pes[k], first[k], hops[k]) for k in pes}
    with open_trace(tiny_trace) as tr:
        n = tr.n_samples
        for layer in (l for l in tr.layers if l.output != "passthrough"):
            fan = brute.fanout(layer)
            if tr.producer(layer.name) is None:
                moves = sum(int(fan[tr.input(i).reshape(-1) != 0].sum()) for i in range(n))
            else:
                moves = sum(int(brute.synaptic_events(layer, tr.input_spikes(layer.name, i)).sum()) for i in range(n))
            c = _layer(rep, layer.name)["counts"]
            assert c.get("interconnect.spike_transfer", 0) + c.get("interconnect.act_transfer", 0) == moves
            assert c["interconnect.hop"] == moves * (hops[layer.name] - 1), layer.name


def test_hardware_neuron_ops_reset_only_neurons_that_fired(tiny_trace):
    (paper,) = _run(tiny_trace, ["snn"])
    (hw,) = _run(tiny_trace, ["snn"], ["mapping.neuron_ops=hardware"])
    with open_trace(tiny_trace) as tr:
        for layer in (l for l in tr.layers if l.output == "spikes"):
            N = layer.n_neurons * tr.T * tr.n_samples
            fired = sum(int(tr.spikes(layer.name, i).sum()) for i in range(tr.n_samples))
            diff = _layer(paper, layer.name)["counts"]["pe_array.add"] - _layer(hw, layer.name)["counts"]["pe_array.add"]
            assert diff == N - fired


def test_a_model_that_does_not_fit_is_an_error_naming_the_need(tiny_trace):
    with pytest.raises(ParameterError, match=r"does not fit on the chip: its layers need \d+ PEs"):
        _run(tiny_trace, ["snn"], ["components.pe_array.rows=1", "components.pe_array.cols=4", "components.local_memory.capacity_bytes=1024"])


def test_folding_reloads_each_folds_weights_from_dram_every_sample(tiny_trace):
    small = ["components.pe_array.rows=1", "components.pe_array.cols=4", "components.local_memory.capacity_bytes=1024", "mapping.on_overflow=fold"]
    for mode in ("snn", "ann"):
        (rep,) = _run(tiny_trace, [mode], small)
        (ideal,) = _run(tiny_trace, [mode])
        assert rep["extra"]["folds"] > 1 and rep["notes"]
        with open_trace(tiny_trace) as tr:
            weights = sum(l.n_weights for l in tr.layers) * tr.n_samples
            assert rep["counts"]["dram.weight_read"] == rep["counts"]["local_memory.weight_write"] == weights
        # outputs cross each fold boundary through DRAM and come back
        assert rep["counts"]["dram.boundary_write"] > 0
        assert rep["totals"]["dram_read_bits"] > ideal["totals"]["dram_read_bits"]
        for key in ("synaptic_ops", "spikes_in", "macs"):
            assert rep["totals"][key] == ideal["totals"][key]


def test_balanced_allocation_uses_the_spare_pes_and_shortens_the_pipeline(tiny_trace):
    (w,) = _run(tiny_trace, ["ann"])
    (b,) = _run(tiny_trace, ["ann"], ["mapping.pe_allocation=balanced"])
    assert b["extra"]["pes_used"] == b["extra"]["pes_on_chip"] > w["extra"]["pes_used"]
    assert b["cycles"] < w["cycles"]
    assert b["counts"] == w["counts"]  # more PEs change time, not work


def test_realistic_membranes_cost_more_per_access(tiny_trace):
    (ideal,) = _run(tiny_trace, ["snn"])
    (wide,) = _run(tiny_trace, ["snn"], ["data.membrane_bits=16"])
    e = lambda r: r["energy_pj"]["by_action"]["local_memory.membrane_read"]  # noqa: E731
    assert wide["counts"]["local_memory.membrane_read"] == ideal["counts"]["local_memory.membrane_read"]
    assert e(wide) == pytest.approx(2 * e(ideal))
    assert wide["energy_pj"]["total"] > ideal["energy_pj"]["total"]
