"""Format 3 (a layer graph): bad graphs are rejected with one line naming file, layer and field
(exit 2, nothing written); good graphs and SNN-only traces open, inspect and replay, and the
report says which ANN twin a run used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from sim.arch.registry import architecture_names
from sim.trace import open_trace

from conftest import REPO
from test_trace_corruption import assert_one_line_rejection, inspect_and_replay, reseal, run_cli_batch

RESNET = REPO / "traces" / "tiny_resnet_T4.h5"
RESNET_LIF = REPO / "traces" / "tiny_resnet_lif_T4.h5"
RESNET_CURRENT = REPO / "traces" / "tiny_resnet_current_T4.h5"


def _group(f, name):
    return f["layers"][next(g for g in f["layers"] if g.split("_", 1)[1] == name)]


def _inputs(layer, names):
    def edit(f):
        _group(f, layer).attrs["inputs"] = json.dumps(names)
    return edit


def _layer_attr(layer, key, value):
    def edit(f):
        _group(f, layer).attrs[key] = value
    return edit


def _neuron(layer, **change):
    def edit(f):
        g = _group(f, layer)
        g.attrs["neuron"] = json.dumps({**json.loads(g.attrs["neuron"]), **change})
    return edit


def _root(key, value):
    def edit(f):
        f.attrs[key] = value
    return edit


# (case, source trace, edit, words the one line must hold)
GRAPH_ERRORS = [
    ("cycle", RESNET, _inputs("s1b1_conv1", ["s1b1_add"]), ["layer s1b1_conv1", "inputs", "cycle"]),
    ("self-loop", RESNET, _inputs("s1b1_conv2", ["s1b1_conv2"]), ["layer s1b1_conv2", "inputs", "cycle"]),
    ("missing-input", RESNET, _inputs("s1b1_add", ["s1b1_conv2", "ghost"]),
     ["layer s1b1_add", "inputs", "missing input layer 'ghost'"]),
    ("add-shapes", RESNET, _inputs("s2b1_add", ["s2b1_conv2", "s1b1_add"]),
     ["layer s2b1_add", "input_shape", "s1b1_add", "[4, 4, 4]"]),
    ("add-one-operand", RESNET, _inputs("s1b1_add", ["s1b1_conv2"]), ["layer s1b1_add", "inputs", "two or more"]),
    ("two-inputs-to-conv", RESNET, _inputs("s1b1_conv2", ["s1b1_conv1", "maxpool"]),
     ["layer s1b1_conv2", "inputs", "one input"]),
    ("unknown-neuron", RESNET, _neuron("s1b1_conv1", type="Izhikevich"), ["layer s1b1_conv1", "neuron", "Izhikevich"]),
    ("lif-leak-range", RESNET_LIF, _neuron("conv1", leak=1.5), ["layer conv1", "neuron", "leak", "(0, 1]"]),
    ("maxpool-with-neuron", RESNET, _layer_attr("maxpool", "neuron", json.dumps(
        {"type": "IF", "threshold": 1.0, "reset": "subtract", "leak": 0.0})), ["layer maxpool", "neuron", "no neurons"]),
    ("dilation-on-pool", RESNET, _layer_attr("avgpool", "dilation", np.array([2, 2])), ["layer avgpool", "dilation"]),
    ("dangling-output", RESNET, _inputs("s2b1_add", ["s2b1_conv2", "s2b1_conv1"]),
     ["layer s2b1_down", "inputs", "no layer consumes"]),
    ("lif-with-stored-twin", RESNET, _neuron("s1b1_conv1", type="LIF", leak=0.5),
     ["layer s1b1_conv1", "neuron", "spike_counts"]),
    ("derived-twin-with-levels", RESNET, _root("twin_levels", "derived"), ["layer conv1", "activations", "derived"]),
    ("events-without-input-spikes", RESNET, _root("encoding", "events"), ["input_spikes", "missing"]),
    ("current-into-a-conv", RESNET_CURRENT, _inputs("s2b1_conv1", ["s1b1_conv2"]),
     ["layer s2b1_conv1", "inputs", "current", "only an add"]),
    ("current-with-a-neuron", RESNET_CURRENT, _layer_attr("s1b1_conv2", "neuron", json.dumps(
        {"type": "IF", "threshold": 1.0, "reset": "subtract", "leak": 0.0})), ["layer s1b1_conv2", "neuron", "current"]),
    ("current-from-a-maxpool", RESNET, _layer_attr("maxpool", "output", "current"), ["layer maxpool", "output", "current"]),
]


@pytest.fixture(scope="module")
def graph_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph")
    jobs, cases = [], {}
    for case, src, edit, words in GRAPH_ERRORS:
        path = tmp / f"{case}.h5"
        shutil.copy(src, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        reseal(path)   # the checksums agree: what must catch the edit is the graph validation
        argvs = inspect_and_replay(path, tmp / case)
        cases[case] = (path, words, len(jobs), [Path(a[-1]) for a in argvs])
        jobs += argvs
    runs = run_cli_batch(jobs, tmp / "runs")
    return {case: (path, words, runs[i:i + 2], outs) for case, (path, words, i, outs) in cases.items()}


@pytest.mark.parametrize("case", [c[0] for c in GRAPH_ERRORS])
def test_a_bad_graph_gives_one_line_naming_file_layer_and_field(graph_runs, case):
    path, words, runs, outs = graph_runs[case]
    for run, out in zip(runs, outs):
        assert_one_line_rejection(run, path, words, out)


def test_the_bundled_graphs_are_format_3_graphs_with_a_neuron_per_layer():
    with open_trace(RESNET) as tr:
        assert tr.format_version == 3 and tr.twin == "recorded"
        by = {l.name: l for l in tr.layers}
        assert by["s1b1_add"].inputs == ("s1b1_conv2", "maxpool") and by["s1b1_add"].n_operands == 2
        assert by["maxpool"].neuron is None and not by["maxpool"].has_neurons
        assert [c.name for c in tr.consumers("s1b1_add")] == ["s2b1_conv1", "s2b1_down"]
        assert [s.name for s in tr.sources("fc1")] == ["avgpool"]   # through the flatten
        tr.verify()
    with open_trace(RESNET_LIF) as tr:
        assert tr.twin == "derived" and tr.meta.twin_levels == "derived"
        assert all(l.neuron.type == "LIF" and l.neuron.leak == 0.5 for l in tr.layers if l.has_neurons)
        for layer in tr.layers:
            if layer.output == "spikes":   # the derived twin: each level is the spike count over T
                np.testing.assert_array_equal(tr.activations(layer.name, 1), tr.spikes(layer.name, 1).sum(axis=0))
        tr.verify()


def test_a_chain_written_today_is_format_3_and_reads_back_as_a_chain(tmp_path):
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace
    from sim.workload import Workload

    layers, shape = model_layers("tiny", 4)
    path = tmp_path / "chain.h5"
    write_synthetic_trace(path, layers, shape, model="tiny", T=4, n_samples=1, rate=0.2)
    with open_trace(path) as tr:
        assert tr.format_version == 3
        wl = Workload(tr)
        assert wl.is_chain and wl.sources == [[None], [0], [1], [2], [3]]


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replays")
    jobs = [["replay", p, "--arch", "all", "--mode", "both", "--samples", "2", "--quiet", "--json", tmp / f"{p.stem}.json"]
            for p in (RESNET, RESNET_LIF)]
    runs = run_cli_batch(jobs, tmp / "runs", timeout=240)
    return {p.stem: (run, json.loads((tmp / f"{p.stem}.json").read_text()) if run.returncode == 0 else None)
            for p, run in zip((RESNET, RESNET_LIF), runs)}


@pytest.mark.parametrize("stem,twin", [("tiny_resnet_T4", "recorded"), ("tiny_resnet_lif_T4", "derived")])
def test_a_graph_replays_on_every_architecture_and_its_report_names_the_twin(replays, stem, twin):
    run, doc = replays[stem]
    assert run.returncode == 0, run.stderr
    runs = doc["runs"]
    assert {(r["arch"]["architecture"], r["mode"]) for r in runs} == {
        (a, m) for a in architecture_names() for m in ("snn", "ann")}
    for r in runs:
        assert r["trace"]["twin"] == twin and r["trace"]["format_version"] == 3
        t = r["totals"]
        # two residual adds and one max-pool: counted apart from MACs in both modes
        assert t["adds"] > 0 and t["compares"] > 0
        add_layers = [l for l in r["layers"] if l["name"].endswith("_add")]
        assert len(add_layers) == 2 and all(l["totals"]["macs"] == 0 and l["totals"]["synaptic_ops"] == 0
                                            for l in add_layers)
        pool = next(l for l in r["layers"] if l["name"] == "maxpool")
        assert pool["totals"]["macs"] == 0 and pool["totals"]["neuron_updates"] == 0


@pytest.fixture(scope="module")
def if_and_lif_reports(tmp_path_factory):
    """The bundled LIF trace and the same spikes declared IF (same synth seed and rate, SNN-only
    too), replayed on every architecture in both modes with the paper's table."""
    from sim.arch.energy import load_energy_table
    from sim.arch.spec import load_arch_spec
    from sim.replay import replay_specs
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    path = tmp_path_factory.mktemp("if") / "tiny_resnet_if.h5"
    layers, shape = model_layers("tiny_resnet", 4)
    write_synthetic_trace(path, layers, shape, model="tiny_resnet", T=4, n_samples=4, rate=0.2, seed=4, snn_only=True)
    specs = [load_arch_spec(a) for a in architecture_names()]
    table = load_energy_table("paper_v1_45nm")
    out = {}
    for name, p in (("IF", path), ("LIF", RESNET_LIF)):
        with open_trace(p) as tr:
            out[name] = {(r["arch"]["architecture"], r["mode"]): r
                         for r in replay_specs(tr, specs, ["snn", "ann"], table, progress=False)}
    return out, table


def test_lif_costs_exactly_its_leaks_more_than_the_same_spikes_declared_if(if_and_lif_reports):
    from sim.report.pricing import action_energy_pj

    reports, table = if_and_lif_reports
    with open_trace(RESNET_LIF) as tr:
        neurons_T = sum(l.n_neurons for l in tr.layers if l.has_neurons) * tr.T * 4
    for key, lif in reports["LIF"].items():
        base = reports["IF"][key]
        leaks = {k: n for k, n in lif["counts"].items() if k.endswith(".leak")}
        if key[1] == "ann":   # the twin has no leak: the two traces' twins are the same QNN
            assert not leaks and lif["counts"] == base["counts"], key
            assert lif["energy_pj"]["total"] == base["energy_pj"]["total"], key
            continue
        assert sum(leaks.values()) == neurons_T, key   # one leak per neuron per step, every sample
        assert {k: n for k, n in lif["counts"].items() if k not in leaks} == \
            {k: n for k, n in base["counts"].items() if k not in leaks}, key
        comps = lif["arch"]["components"]
        leak_pj = sum(n * action_energy_pj(table, comps[k.split(".")[0]]["class"], "leak", layer["bits"][k],
                                           comps[k.split(".")[0]].get("capacity_bytes"))
                      for layer in lif["layers"] for k, n in layer["counts"].items() if k.endswith(".leak"))
        assert leak_pj > 0
        assert lif["energy_pj"]["total"] - base["energy_pj"]["total"] == pytest.approx(leak_pj, rel=1e-9), key


@pytest.mark.parametrize("model", ["resnet18", "sew_resnet"])
def test_validate_ideal_is_exact_on_a_synthetic_resnet_on_every_architecture(tmp_path, model):
    """The CIFAR ResNet-18 (IF) and SEW-ResNet (max-pool, LIF, SNN-only), T = 2, one sample:
    every counted term of every architecture equals the ideal closed form, in both modes."""
    trace, out = tmp_path / f"{model}.h5", tmp_path / "v.json"
    jobs = [["synth", "--model", model, "--T", "2", "--rate", "0.1", "--samples", "1", "--out", trace],
            ["validate", trace, "--arch", "all", "--ideal", "--quiet", "--json", out]]
    runs = run_cli_batch(jobs[:1], tmp_path / "s") + run_cli_batch(jobs[1:], tmp_path / "v", timeout=240)
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[1].returncode == 0, runs[1].stderr
    doc = json.loads(out.read_text())
    runs_ = doc["runs"]
    assert {(r["architecture"], r["mode"]) for r in runs_} == {
        (a, m) for a in architecture_names() for m in ("snn", "ann")}
    assert doc["ok"] is True
    for r in runs_:
        s = r["summary"]
        assert r["agree"] and s["terms"] > 100 and s["exact"] == s["terms"], (r["architecture"], r["mode"], s)
        assert all(t["counted"] == t["predicted"] for t in r["terms"])
        if r["mode"] == "snn" and model == "sew_resnet":   # LIF: the leaks are terms too
            assert any(t["term"].endswith(".leak") and t["counted"] > 0 for t in r["terms"])
