"""spatial_dataflow on layer graphs: residual adds, max pooling, LIF neurons, and one transfer
per edge from each source's PE group to its consumer's (docs/architectures/spatial_dataflow.md,
"Layer graphs"). Counts are checked against plain-Python enumerations of the trace's spikes
and levels, and the closed form against the simulator on graph traces; under rate or event
encoding each layer that reads the stored input spikes (SNN) or the twin's input levels (ANN)
reads them from DRAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy

from sim.analytic import spatial_dataflow as sd
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.architectures.spatial_dataflow_pipeline import Txn, run_phase
from sim.engine import Dram
from sim.mapping.encoding import address_bits
from sim.replay import replay
from sim.trace import NeuronModel, open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace
from sim.validation.compare import run_validation

from analytic_helpers import assert_matches_report, stored_input_reads, write_spike_input_traces

REPO = Path(__file__).resolve().parents[1]
RESNET = REPO / "traces" / "tiny_resnet_T4.h5"          # IF, recorded twin, max-pool, two adds
RESNET_LIF = REPO / "traces" / "tiny_resnet_lif_T4.h5"  # LIF, SNN-only (derived twin)
PAPER = "paper_v1_45nm"
# a chip small enough that tiny_resnet folds in two in both modes, the cut after s2b1_conv1
# crossing the shortcut s1b1_add -> s2b1_down
FOLDING = ["components.local_memory.capacity_bytes=256", "components.pe_array.rows=3",
           "components.pe_array.cols=3", "mapping.on_overflow=fold", "mapping.per_hop=true"]
OPTIONS = {
    "paper": [],
    "hops_multicast_hardware": ["mapping.per_hop=true", "mapping.delivery=multicast", "mapping.neuron_ops=hardware"],
    "hops_dense_balanced": ["mapping.per_hop=true", "mapping.zero_skipping=false", "mapping.pe_allocation=balanced",
                            "data.membrane_bits=16", "data.ann_activation_bits=0"],
    "folds": FOLDING,
    "folds_multicast": FOLDING + ["mapping.delivery=multicast", "components.interconnect.width_bits=4"],
}


def _replay(path, modes, overrides=(), energy=PAPER):
    with open_trace(path) as tr:
        return {r["mode"]: r for r in replay(tr, "spatial_dataflow", modes, energy, overrides=list(overrides),
                                             progress=False)}


def _layer(report, name):
    return next(l for l in report["layers"] if l["name"] == name)


# --- plain-Python references ------------------------------------------------------------------
def pool_windows(layer):
    """(input index, output index) of every in-bounds tap of every window of a pooling layer,
    by enumeration."""
    c_in, h, w = layer.input_shape
    _, oh, ow = layer.output_shape
    out = []
    for c in range(c_in):
        for oy in range(oh):
            for ox in range(ow):
                for ky in range(layer.kernel[0]):
                    for kx in range(layer.kernel[1]):
                        y = oy * layer.stride[0] - layer.padding[0] + ky
                        x = ox * layer.stride[1] - layer.padding[1] + kx
                        if 0 <= y < h and 0 <= x < w:
                            out.append(((c * h + y) * w + x, (c * oh + oy) * ow + ox))
    return out


def operand_spikes(tr, layer):
    """Per operand of ``layer`` (its sources, in order), its spikes over every sample and step."""
    return [sum(int(tr.spikes(s.name, i).sum()) for i in range(tr.n_samples)) for s in tr.sources(layer.name)]


def operand_nonzeros(tr, layer):
    """Per operand of ``layer``, its non-zero ANN-twin levels over every sample."""
    return [sum(int(np.count_nonzero(tr.activations(s.name, i))) for i in range(tr.n_samples))
            for s in tr.sources(layer.name)]


def snake_centre(first_pe, pes, cols):
    """(row, col) of a group's centre PE when PEs are numbered row by row, odd rows reversed."""
    row, col = divmod(first_pe + pes // 2, cols)
    return row, col if row % 2 == 0 else cols - 1 - col


def hops_between(placement, a, b, cols):
    (ra, ca), (rb, cb) = (snake_centre(placement[x]["first_pe"], placement[x]["pes"], cols) for x in (a, b))
    return max(1, abs(ra - rb) + abs(ca - cb))


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet():
    return _replay(RESNET, ["snn", "ann"])


@pytest.fixture(scope="module")
def if_and_lif(tmp_path_factory):
    """The same synthetic spikes declared LIF and IF (both with the derived twin)."""
    d = tmp_path_factory.mktemp("neurons")
    paths = {}
    for kind, neuron in (("LIF", NeuronModel("LIF", threshold=1.0, reset="zero", leak=0.5)),
                         ("IF", NeuronModel())):
        layers, shape = model_layers("tiny_resnet", 3, neuron=neuron)
        paths[kind] = d / f"{kind}.h5"
        write_synthetic_trace(paths[kind], layers, shape, model="tiny_resnet", T=3, n_samples=2, rate=0.2,
                              seed=5, snn_only=True)
    return paths


# --- (a) add and maxpool against enumeration --------------------------------------------------
def test_a_max_pool_costs_one_one_bit_compare_per_input_spike_and_window_and_no_neuron_state(resnet):
    snn, ann = resnet["snn"], resnet["ann"]
    with open_trace(RESNET) as tr:
        pool = tr.layer("maxpool")
        (src,) = tr.sources("maxpool")
        taps = pool_windows(pool)
        ors = compares = 0
        for i in range(tr.n_samples):
            spikes = tr.spikes(src.name, i).reshape(tr.T, -1)
            levels = tr.activations(src.name, i).reshape(-1)
            for inp, _ in taps:
                ors += int(spikes[:, inp].sum())
                compares += int(levels[inp] != 0)
    s, a = _layer(snn, "maxpool"), _layer(ann, "maxpool")
    assert s["counts"]["pe_array.compare"] == s["counts"]["interconnect.spike_transfer"] == ors
    assert s["bits"]["pe_array.compare"] == 1
    for stateless in ("local_memory.membrane_read", "local_memory.membrane_write", "pe_array.add",
                      "local_memory.weight_read"):
        assert s["counts"][stateless] == 0
    assert "pe_array.leak" not in s["counts"]
    assert s["totals"]["compares"] == ors and s["totals"]["synaptic_ops"] == 0
    assert s["totals"]["neuron_updates"] == 0
    # ANN: a compare against the running max per non-zero input and window, no quantise
    assert a["counts"]["pe_array.compare"] == a["counts"]["interconnect.act_transfer"] == compares
    assert a["bits"]["pe_array.compare"] == snn["extra"]["ann_activation_bits"]
    assert "pe_array.add" not in a["counts"] and "pe_array.mac" not in a["counts"]
    assert a["totals"]["compares"] == compares and a["totals"]["neuron_updates"] == 0


def test_a_residual_add_integrates_each_operand_spike_once_and_updates_its_neurons(resnet):
    snn, ann = resnet["snn"], resnet["ann"]
    with open_trace(RESNET) as tr:
        n, T = tr.n_samples, tr.T
        adds = [l for l in tr.layers if l.kind == "add"]
        assert len(adds) == 2
        for layer in adds:
            events, nonzero = sum(operand_spikes(tr, layer)), sum(operand_nonzeros(tr, layer))
            steps = layer.n_neurons * T * n
            s, a = _layer(snn, layer.name)["counts"], _layer(ann, layer.name)["counts"]
            # SNN: one movement and one add per operand spike (fan-out 1, no weight), then
            # every neuron's step: membrane read + write, threshold compare, reset add
            assert s["interconnect.spike_transfer"] == events
            assert s["pe_array.add"] == events + steps
            assert s["pe_array.compare"] == s["local_memory.membrane_read"] == s["local_memory.membrane_write"] == steps
            assert s["local_memory.weight_read"] == 0 and "pe_array.mac" not in s
            assert _layer(snn, layer.name)["totals"]["adds"] == events
            # ANN: one movement and one add per non-zero operand element
            assert a["interconnect.act_transfer"] == a["pe_array.add"] == nonzero
            assert _layer(ann, layer.name)["totals"]["adds"] == nonzero


# --- (b) per-edge transfers -------------------------------------------------------------------
def test_an_add_receives_each_operand_over_its_own_edge_paying_that_edges_hops():
    runs = _replay(RESNET, ["snn", "ann"], ["mapping.per_hop=true"])
    cols = load_arch_spec("spatial_dataflow")["pe_array"].cols
    with open_trace(RESNET) as tr:
        for name in ("s1b1_add", "s2b1_add"):
            layer = tr.layer(name)
            for mode, per_operand in (("snn", operand_spikes(tr, layer)), ("ann", operand_nonzeros(tr, layer))):
                rep = runs[mode]
                hops = [hops_between(rep["extra"]["placement"], s.name, name, cols) for s in tr.sources(name)]
                if name == "s1b1_add":  # the shortcut comes from farther away than the block
                    assert len(set(hops)) == 2
                counts = _layer(rep, name)["counts"]
                action = "interconnect.spike_transfer" if mode == "snn" else "interconnect.act_transfer"
                assert counts[action] == sum(per_operand)
                assert counts["interconnect.hop"] == sum(k * (h - 1) for k, h in zip(per_operand, hops))


def test_a_layer_with_two_consumers_sends_its_events_to_both():
    # multicast, 16-bit words: each spike moves once to each consumer group as one address word
    snn = _replay(RESNET, ["snn"], ["mapping.delivery=multicast", "components.interconnect.width_bits=16"])["snn"]
    with open_trace(RESNET) as tr:
        spikes = {l.name: sum(int(tr.spikes(l.name, i).sum()) for i in range(tr.n_samples))
                  for l in tr.layers if l.output == "spikes"}
        for source in ("maxpool", "s1b1_add"):
            consumers = tr.consumers(source)
            assert len(consumers) == 2
            for c in consumers:
                received = sum(spikes[s.name] for s in tr.sources(c.name))
                assert _layer(snn, c.name)["counts"]["interconnect.spike_transfer"] == received
                assert spikes[source] > 0


def test_a_tensor_crossing_a_fold_is_written_once_and_read_back_by_each_later_consumer():
    runs = _replay(RESNET, ["snn", "ann"], FOLDING)
    with open_trace(RESNET) as tr:
        for mode, rep in runs.items():
            fold = {k: v["fold"] for k, v in rep["extra"]["placement"].items()}
            moves = tr.n_samples * (tr.T if mode == "snn" else 1)
            crossing = 0
            for l in (x for x in tr.layers if x.output != "passthrough"):
                later = any(fold[c.name] > fold[l.name] for c in tr.consumers(l.name))
                back = [s for s in tr.sources(l.name) if s is not None and fold[s.name] < fold[l.name]]
                counts = _layer(rep, l.name)["counts"]
                assert counts["dram.boundary_write"] == (l.n_neurons * moves if later else 0)
                assert counts["dram.boundary_read"] == sum(s.n_neurons for s in back) * moves
                crossing += len(back)
            assert rep["extra"]["folds"] == 2 and crossing == 2
            # the shortcut's source is not its fold's last layer, yet its output goes to DRAM
            assert fold["s1b1_add"] == fold["s2b1_conv1"] == 0 and fold["s2b1_down"] == 1
            assert _layer(rep, "s1b1_add")["counts"]["dram.boundary_write"] > 0


def test_a_stage_waits_for_every_source_and_a_chain_times_as_before():
    def run(sources):
        env = simpy.Environment()
        dram = Dram(env, 64, 64, 0)
        stages = [[Txn(1)] * 4, [Txn(5)] * 4, [Txn(1)] * 4]
        return run_phase(env, dram, stages, 2, sources)

    dag = run([[], [0], [0, 1]])  # stage 2 adds stage 0's output to stage 1's
    assert all(dag.done[2][k] == dag.done[1][k] + 1 for k in range(4))
    assert [dag.done[2][k + 1] - dag.done[2][k] for k in range(3)] == [5, 5, 5]
    chain, default = run([[], [0], [1]]), run(None)
    assert (chain.done, chain.stall, chain.attributed) == (default.done, default.stall, default.attributed)


# --- (c) LIF --------------------------------------------------------------------------------
def test_a_lif_trace_costs_exactly_n_t_leak_ops_more_than_the_same_spikes_declared_if(if_and_lif):
    with open_trace(if_and_lif["IF"]) as a, open_trace(if_and_lif["LIF"]) as b:
        for l in (x for x in a.layers if x.output == "spikes"):
            for i in range(a.n_samples):
                assert np.array_equal(a.spikes(l.name, i), b.spikes(l.name, i))
        T, n = b.T, b.n_samples
        leaks = {l.name: l.n_neurons * T * n for l in b.layers if l.has_neurons}
        assert all(l.neuron.leaks for l in b.layers if l.has_neurons)
    lif, if_ = _replay(if_and_lif["LIF"], ["snn", "ann"]), _replay(if_and_lif["IF"], ["snn", "ann"])
    for lr, ir in zip(lif["snn"]["layers"], if_["snn"]["layers"]):
        extra = {k: v - ir["counts"].get(k, 0) for k, v in lr["counts"].items() if v != ir["counts"].get(k, 0)}
        assert extra == ({"pe_array.leak": leaks[lr["name"]]} if lr["name"] in leaks else {}), lr["name"]
        assert set(lr["counts"]) - set(ir["counts"]) <= {"pe_array.leak"}
    assert lif["snn"]["counts"]["pe_array.leak"] == sum(leaks.values())
    assert lif["snn"]["layers"][-1]["counts"]["pe_array.leak"] > 0  # the readout leaks too
    price = lif["snn"]["energy_pj"]["by_action"]["pe_array.leak"]
    assert price > 0
    assert lif["snn"]["energy_pj"]["total"] - if_["snn"]["energy_pj"]["total"] == pytest.approx(price, rel=1e-9)
    assert lif["ann"]["counts"] == if_["ann"]["counts"]  # the ANN twin does not leak


# --- (d) closed form == simulator -----------------------------------------------------------
def _assert_closed_form_equals_simulator(path, overrides, fold_only=()) -> dict:
    """Both modes: the closed form equals the replay term by term; its ideal counts equal the
    ideal prediction (``fold_only``: counts listed only where the chip folds) and the excess
    over them is the named non-ideal terms. Returns the replay's reports by mode."""
    table = load_energy_table("horowitz_45nm")
    spec = load_arch_spec("spatial_dataflow", overrides)
    runs = _replay(path, ["snn", "ann"], overrides, table.path)
    with open_trace(path) as tr:
        stats, bits = trace_event_stats(tr), trace_activation_bits(tr)
        for mode, rep in runs.items():
            pred = sd.predict(spec, tr.layers, stats, tr.T, mode, bits, table)
            assert_matches_report(pred, rep)
            ideal = sd.predict(spec, tr.layers, stats, tr.T, mode, bits, table, ideal=True)
            for p, r, i in zip(pred.layers, rep["layers"], ideal.layers):
                assert all(p.ideal_counts.get(k, 0) == 0 for k in fold_only)
                assert {k: v for k, v in p.ideal_counts.items() if k not in fold_only} == i.counts
                extra = {k: sum(c.values()) for k, c in p.nonideal_terms().items()}
                assert {k: v - i.counts.get(k, 0) for k, v in r["counts"].items() if v != i.counts.get(k, 0)} == extra
    return runs


@pytest.mark.parametrize("options", list(OPTIONS), ids=list(OPTIONS))
@pytest.mark.parametrize("path", [RESNET, RESNET_LIF], ids=["IF", "LIF"])
def test_closed_form_equals_the_simulator_on_graph_traces(path, options):
    runs = _assert_closed_form_equals_simulator(path, OPTIONS[options])
    if options.startswith("folds"):
        assert all(rep["extra"]["folds"] == 2 for rep in runs.values())


@pytest.mark.parametrize("path", [RESNET, RESNET_LIF], ids=["IF", "LIF"])
def test_validate_is_exact_under_ideal_and_names_every_residual_otherwise(path):
    doc = run_validation(str(path), "spatial_dataflow", ideal=True, progress=False, paper=False)
    assert doc["ok"] and all(r["summary"]["with_residual"] == 0 for r in doc["runs"])
    assert all(t["counted"] == t["predicted"] for r in doc["runs"] for t in r["totals"].values())
    doc = run_validation(str(path), "spatial_dataflow", overrides=FOLDING, progress=False, paper=False)
    assert doc["ok"] and all(r["summary"]["unexplained"] == 0 for r in doc["runs"])
    causes = {c for r in doc["runs"] for c in r["causes"]}
    assert causes == {"hops_between_groups", "fold_boundary", "weights_reloaded_per_sample_folded"}


# --- (e) stored input spikes (rate / event encoding) enter from DRAM ------------------------------
@pytest.fixture(scope="module")
def spike_input_traces(tmp_path_factory):
    return write_spike_input_traces(tmp_path_factory.mktemp("spike_input"))


@pytest.mark.parametrize("model", ["tiny_resnet", "tiny", "input_add"])
def test_stored_input_spikes_are_read_from_dram_by_each_layer_that_reads_them(spike_input_traces, model):
    runs = _replay(spike_input_traces[model], ["snn", "ann"])
    with open_trace(spike_input_traces[model]) as tr:
        readers = {l.name: stored_input_reads(tr, l.name) for l in tr.layers
                   if l.output != "passthrough" and None in tr.sources(l.name)}
        operand = {l.name: l.n_inputs // l.n_operands for l in tr.layers}
    ab = runs["ann"]["extra"]["ann_activation_bits"]
    assert readers and (model != "input_add" or len(readers) == 2)
    for mode, rep in runs.items():
        for layer in rep["layers"]:
            c, b, name = layer["counts"], layer["bits"], layer["name"]
            if name not in readers:
                assert "dram.spike_read" not in c and "dram.input_read" not in c, name
                continue
            spikes, levels = readers[name]
            if mode == "snn":  # each step's input spikes, at an address within the input
                assert c["dram.spike_read"] == spikes > 0 and "dram.input_read" not in c
                assert b["dram.spike_read"] == address_bits(operand[name])
            else:  # the twin's input levels, once per sample, dense like the image
                assert c["dram.input_read"] == levels and b["dram.input_read"] == ab


@pytest.mark.parametrize("options", ["paper", "hops_multicast_hardware", "folds"])
@pytest.mark.parametrize("model", ["tiny_resnet", "tiny", "input_add"])
def test_the_closed_form_equals_the_simulator_when_the_input_is_spikes(spike_input_traces, model, options):
    path, overrides = spike_input_traces[model], OPTIONS[options]
    table = load_energy_table("horowitz_45nm")
    spec = load_arch_spec("spatial_dataflow", overrides)
    runs = _replay(path, ["snn", "ann"], overrides, table.path)
    with open_trace(path) as tr:
        stats, bits = trace_event_stats(tr), trace_activation_bits(tr)
        for mode, rep in runs.items():
            pred = sd.predict(spec, tr.layers, stats, tr.T, mode, bits, table)
            assert_matches_report(pred, rep)
            for lp in pred.layers:
                for key in ("dram.spike_read", "dram.input_read"):
                    assert lp.terms.get(key, {}).keys() <= {"input_events_once_per_sample",
                                                            "input_levels_once_per_sample"}, lp.name
    doc = run_validation(str(path), "spatial_dataflow", ideal=True, overrides=overrides, progress=False,
                         paper=False)
    assert doc["ok"]


# --- (f) membrane/current addition: a current layer hands its N values to the add ------------
@pytest.fixture(scope="module")
def current_trace(tmp_path_factory):
    """tiny_resnet whose block outputs are currents (s1b1_add = current + max-pool spikes,
    s2b1_add = two currents)."""
    path = tmp_path_factory.mktemp("current") / "tiny_resnet_current.h5"
    layers, shape = model_layers("tiny_resnet", 4, residual="current")
    write_synthetic_trace(path, layers, shape, model="tiny_resnet", T=4, n_samples=2, rate=0.2, seed=7)
    return path


def test_a_current_layer_has_no_neuron_step_and_its_add_receives_n_values_per_step(current_trace):
    runs = _replay(current_trace, ["snn", "ann"])
    with open_trace(current_trace) as tr:
        n, T = tr.n_samples, tr.T
        currents = [l for l in tr.layers if l.output == "current"]
        assert len(currents) == 3
        for l in currents:
            s = _layer(runs["snn"], l.name)
            # integrates its events like a neuron layer (membrane accumulator), no compare/fire/leak
            assert "pe_array.compare" not in s["counts"] and "pe_array.leak" not in s["counts"]
            assert s["counts"]["local_memory.membrane_read"] == s["counts"]["local_memory.membrane_write"] \
                == l.n_neurons * T * n
            assert s["counts"]["pe_array.add"] == s["counts"]["interconnect.spike_transfer"] > 0
            assert s["totals"]["neuron_updates"] == s["totals"]["spikes_out"] == 0
            a = _layer(runs["ann"], l.name)
            assert "pe_array.compare" not in a["counts"] and "dram.output_write" not in a["counts"]
        for add in (l for l in tr.layers if l.kind == "add"):
            cur = [s for s in tr.sources(add.name) if s.output == "current"]
            spk = [s for s in tr.sources(add.name) if s.output != "current"]
            values = sum(s.n_neurons for s in cur)  # one value per element of each current operand
            assert values > 0
            events = sum(int(tr.spikes(s.name, i).sum()) for s in spk for i in range(n))
            nonzero = sum(int(np.count_nonzero(tr.activations(s.name, i))) for s in spk for i in range(n))
            s, a = _layer(runs["snn"], add.name), _layer(runs["ann"], add.name)
            assert s["counts"]["interconnect.current_transfer"] == values * T * n
            assert s["bits"]["interconnect.current_transfer"] == 8
            assert s["counts"]["interconnect.spike_transfer"] == events
            steps = add.n_neurons * T * n
            assert s["counts"]["pe_array.add"] == events + values * T * n + steps  # + the reset
            assert s["counts"]["pe_array.compare"] == steps
            assert s["totals"]["adds"] == events + values * T * n
            assert a["counts"]["interconnect.current_transfer"] == values * n
            assert a["counts"]["interconnect.act_transfer"] == nonzero
            assert a["counts"]["pe_array.add"] == a["totals"]["adds"] == nonzero + values * n


# a chip on which the current trace folds so that current edges cross fold cuts in both modes
# (s1b1_conv2 -> s1b1_add and s2b1_conv2 -> s2b1_add in SNN mode)
CURRENT_FOLDING = ["components.local_memory.capacity_bytes=256", "components.pe_array.rows=2",
                   "components.pe_array.cols=3", "mapping.on_overflow=fold", "mapping.per_hop=true"]
CURRENT_OPTIONS = {**OPTIONS, "folds_current": CURRENT_FOLDING,
                   "folds_current_wide": CURRENT_FOLDING + ["data.membrane_bits=16", "data.psum_bits=24",
                                                            "mapping.zero_skipping=false"]}


@pytest.mark.parametrize("options", list(CURRENT_OPTIONS), ids=list(CURRENT_OPTIONS))
def test_closed_form_equals_the_simulator_with_current_operands(current_trace, options):
    # a current read back from DRAM is listed only where the chip folds
    runs = _assert_closed_form_equals_simulator(current_trace, CURRENT_OPTIONS[options], ("dram.current_read",))
    for rep in runs.values():
        if options.startswith("folds"):
            assert rep["extra"]["folds"] > 1
        if options.startswith("folds_current"):  # current values cross a fold cut through DRAM
            assert sum(l["counts"].get("dram.current_read", 0) for l in rep["layers"]) > 0


def test_validate_is_exact_under_ideal_with_current_operands(current_trace):
    doc = run_validation(str(current_trace), "spatial_dataflow", ideal=True, progress=False, paper=False)
    assert doc["ok"] and all(r["summary"]["with_residual"] == 0 for r in doc["runs"])
    assert all(t["counted"] == t["predicted"] for r in doc["runs"] for t in r["totals"].values())
    doc = run_validation(str(current_trace), "spatial_dataflow", overrides=CURRENT_FOLDING, progress=False,
                         paper=False)
    assert doc["ok"] and all(r["summary"]["unexplained"] == 0 for r in doc["runs"])
