"""``validate``: counted terms equal the ideal closed form exactly on an ideal spec (random small
networks, the bundled traces); on a real spec every residual is the sum of its named causes;
the CLI exits 0 on agreement, 1 on disagreement, 2 on bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.cli import main
from sim.replay import replay
from sim.trace import open_trace
from sim.validation.compare import SCHEMA, run_validation

import brute
from analytic_helpers import FAST, random_trace
from conftest import BUNDLED_TINY, REPO

ARCHS = {"memory_hierarchy", "spatial_dataflow", "neuromorphic"}


def residuals(doc):
    return [(run["arch"], run["mode"], r["layer"], r["term"], r["residual"])
            for run in doc["runs"] for r in run["terms"] if r["residual"] != 0]


def small_specs(data) -> dict[str, list[str]]:
    """Per architecture, a spec too small for the network (so --ideal has to enlarge it)."""
    pick = lambda name, values: f"{name}={data.draw(st.sampled_from(values))}"  # noqa: E731
    return {"memory_hierarchy": [pick("components.global_buffer.capacity_bytes", [8, 64, 262144]),
                                 pick("mapping.loop_order", ["layer_major", "time_major"])],
            "spatial_dataflow": [pick("components.local_memory.capacity_bytes", [64, 256, 32768]),
                                 pick("components.pe_array.rows", [1, 2]), pick("components.pe_array.cols", [1, 3]),
                                 pick("mapping.per_hop", [True, False]), pick("mapping.on_overflow", ["fold", "error"])],
            "neuromorphic": [pick("components.noc.width", [1, 2]), pick("components.noc.height", [1, 2]),
                             pick("components.neuron_memory.capacity_bytes", [12, 48, 3072])]}


@settings(FAST, max_examples=5)
@given(st.data())
def test_ideal_spec_gives_zero_residual_on_random_networks_for_every_architecture(data):
    path = str(random_trace(data))
    for arch, overrides in small_specs(data).items():
        doc = run_validation(path, arch, ideal=True, overrides=overrides, progress=False, paper=False)
        event(f"{arch}: {'enlarged' if doc['archs'][arch]['forced_overrides'] else 'already ideal'}")
        assert [r["mode"] for r in doc["runs"]] == ["snn", "ann"]
        assert residuals(doc) == []
        assert doc["ok"]
        for run in doc["runs"]:
            assert all(r["counted"] == r["predicted"] and not r["causes"] for r in run["terms"])
            assert all(t["residual"] == 0 for t in run["totals"].values())
            assert run["energy_pj"]["counted"] == pytest.approx(run["energy_pj"]["predicted"], rel=1e-12)


VGG16 = REPO / "traces" / "vgg16_fmnist_T6.h5"


@pytest.mark.parametrize("trace,samples", [
    (BUNDLED_TINY, None), (REPO / "traces" / "digits_snn_T6.h5", 4),
    pytest.param(VGG16, 1, marks=pytest.mark.skipif(not VGG16.exists(), reason="VGG16 trace not recorded"))])
def test_ideal_validation_of_the_bundled_traces_exits_0_with_zero_residual(trace, samples, tmp_path, capsys):
    out = tmp_path / "v.json"
    args = ["validate", str(trace), "--arch", "all", "--ideal", "--quiet", "--json", str(out)]
    assert main(args + (["--samples", str(samples)] if samples else [])) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA and doc["ideal"] and doc["ok"]
    assert residuals(doc) == []
    assert "RESULT: agree" in capsys.readouterr().out


@pytest.mark.parametrize("arch,overrides,cause", [
    ("memory_hierarchy", ["components.global_buffer.capacity_bytes=600"], "weights_refetched_per_step_nonresident"),
    ("spatial_dataflow", ["mapping.per_hop=true", "components.local_memory.capacity_bytes=256",
                          "mapping.on_overflow=fold", "components.pe_array.rows=4",
                          "components.pe_array.cols=4"], "fold_boundary"),
    ("neuromorphic", ["components.noc.width=1", "components.noc.height=1",
                      "components.neuron_memory.capacity_bytes=96"], "weights_paged_per_sample"),
])
def test_each_residual_is_the_sum_of_its_named_causes(tiny_trace, arch, overrides, cause):
    doc = run_validation(str(tiny_trace), arch, overrides=overrides, progress=False, paper=False)
    assert doc["ok"]
    if arch == "memory_hierarchy":  # the figure draws residuals by cause
        from sim.plots.validation import plot_validation

        plot_validation(doc, str(tiny_trace.with_suffix(".png")))
        assert tiny_trace.with_suffix(".png").stat().st_size > 0
    seen = set()
    for run in doc["runs"]:
        for r in run["terms"]:
            assert r["residual"] == sum(r["causes"].values()), r
            assert r["unexplained"] == 0
            assert set(r["causes"]) <= NONIDEAL_CAUSES
            seen |= set(r["causes"])
        e = run["energy_pj"]
        assert e["counted"] - e["predicted"] == pytest.approx(sum(e["causes"].values()), rel=1e-9, abs=1e-6)
    assert cause in seen
    assert residuals(doc), "a real spec should leave residuals"


def test_a_wrong_prediction_is_unexplained_and_exits_1(tiny_trace, monkeypatch, capsys):
    from sim.analytic import memory_hierarchy as mh

    real = mh.predict

    def off_by_one(*a, **kw):
        pred = real(*a, **kw)
        layer = pred.layers[-1]
        key = next(iter(layer.ideal_counts))
        layer.ideal_counts[key] += 1
        return pred

    monkeypatch.setattr(mh, "predict", off_by_one)
    assert main(["validate", str(tiny_trace), "--arch", "memory_hierarchy", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "UNEXPLAINED" in out and "DISAGREE" in out
    assert main(["validate", str(tiny_trace), "--arch", "memory_hierarchy", "--ideal", "--quiet"]) == 1


@pytest.mark.parametrize("args", [["validate", "missing.h5"], ["validate", str(BUNDLED_TINY), "--arch", "nope"],
                                  ["validate", str(BUNDLED_TINY), "--samples", "0"],
                                  ["validate", str(BUNDLED_TINY), "--samples", "999"],
                                  ["validate", str(BUNDLED_TINY), "--set", "mapping.nope=1"],
                                  ["validate", str(BUNDLED_TINY), "--plot", "x.svg"]])
def test_bad_input_exits_2_with_one_line(args, capsys):
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


# paper_v1_45nm's v1 constants (docs/validation.md: e_mem, e_add, e_mul in pJ; the table's rho, N)
E_MEM, E_ADD, E_MUL, RHO, N_FAN_IN = 20.0, 0.03, 0.2, 0.45, 2395


def v1_spatial_ratio(s: float, T: int, rho: float = RHO, N: float = N_FAN_IN) -> float:
    """The paper's v1 spatial dataflow, per synapse (docs/formulas.md):
    E_SNN = (1 − s)·T·(e_mem + e_add) + 2T·(e_mem + e_add)/N, E_ANN = rho·(e_mem + e_mul + e_add)."""
    e_snn = (1 - s) * T * (E_MEM + E_ADD) + 2 * T * (E_MEM + E_ADD) / N
    return e_snn / (rho * (E_MEM + E_MUL + E_ADD))


def test_paper_section_starts_from_the_v1_ratio_at_the_traces_sparsity(tiny_trace):
    """Every number of the paper section recomputed from the trace by brute force and from the
    v1 formula by hand. tiny: conv1 4x8x8 (fan-in 2·3·3 = 18, direct-encoded), conv2 8x8x8
    (fan-in 36), pool1 8x4x4 (fan-in 4), fc1 16 (fan-in 128), fc2 4 (fan-in 16)."""
    doc = run_validation(str(tiny_trace), "spatial_dataflow", progress=False)
    p = doc["paper_v1"]
    assert "memory_hierarchy" not in p["architectures"]  # not replayed here
    neurons = {"conv1": 256, "conv2": 512, "pool1": 128, "fc1": 16, "fc2": 4}
    fan_in = {"conv1": 18, "conv2": 36, "pool1": 4, "fc1": 128, "fc2": 16}
    D = sum(neurons[k] * fan_in[k] for k in neurons)  # dense synapses
    D_spk = D - neurons["conv1"] * fan_in["conv1"]  # synapses of the spike-driven layers
    W = 4 * 2 * 9 + 8 * 4 * 9 + 16 * 128 + 4 * 16  # stored weights (pooling has none)
    with open_trace(tiny_trace) as tr:
        T, n = tr.T, tr.n_samples
        compute = [l for l in tr.layers if l.output != "passthrough"]
        assert [l.name for l in compute] == list(neurons)
        # the paper's network sparsity: every spiking output except the direct-encoded layer 1's
        rated = ["conv2", "pool1", "fc1"]
        fired = sum(int(tr.spikes(name, i).sum()) for name in rated for i in range(n))
        r_net = fired / (n * T * sum(neurons[k] for k in rated))
        # synaptic events E and zero-skipping MACs M, synapse by synapse
        E = M = fan_spk = 0
        for l in compute:
            fan = brute.fanout(l)
            prev = tr.producer(l.name)
            for i in range(n):
                x = tr.input(i) if prev is None else tr.activations(prev.name, i)
                M += int(fan[x.reshape(-1) != 0].sum())
                if prev is not None:
                    E += int(brute.synaptic_events(l, tr.input_spikes(l.name, i)).sum())
            fan_spk += int(fan.sum()) if prev is not None else 0
    a = p["averages"]
    assert (a["synapses_dense"], a["weights"], a["neurons"], a["synaptic_events"]) == (D, W, sum(neurons.values()), E)
    assert a["s_network"] == pytest.approx(1 - r_net, rel=1e-12)
    r = p["architectures"]["spatial_dataflow"]
    assert r["v1_ratio"] == pytest.approx(v1_spatial_ratio(1 - r_net, T), rel=1e-12)
    # the simulated ratio is a plain replay of both modes priced with the v1 table
    with open_trace(tiny_trace) as tr:
        snn, ann = replay(tr, "spatial_dataflow", ["snn", "ann"], "paper_v1_45nm", progress=False)
    assert r["simulated_ratio"] == pytest.approx(snn["energy_pj"]["total"] / ann["energy_pj"]["total"], rel=1e-12)
    # each average replaced by the trace's true value, one at a time (docs/validation.md)
    s_true = 1 - E / (n * T * D)
    want = {"nonuniform_spikes": ("s", 1 - E / (n * T * fan_spk)),
            "padding_borders": ("s", 1 - r_net * fan_spk / D_spk),
            "layer1_direct_encoding": ("s", 1 - r_net * D_spk / D),
            "spike_events_per_synapse": ("s", s_true),
            "ann_density": ("rho", M / (n * D)),
            "weight_reuse": ("R", D / W),
            "fan_in": ("N", D / sum(neurons.values()))}
    rows = {row["name"]: row for row in r["substitutions"]}
    assert set(rows) == set(want)
    for name, (symbol, value) in want.items():
        assert rows[name]["symbol"] == symbol and rows[name]["value"] == pytest.approx(value, rel=1e-12), name
        kw = {"s": {"s": value}, "rho": {"s": 1 - r_net, "rho": value}, "N": {"s": 1 - r_net, "N": value},
              "R": {"s": 1 - r_net}}[symbol]  # R does not enter the spatial formula
        assert rows[name]["ratio"] == pytest.approx(v1_spatial_ratio(T=T, **kw), rel=1e-12), name
    every = v1_spatial_ratio(s_true, T, rho=M / (n * D), N=D / sum(neurons.values()))
    assert r["all_true_averages"]["ratio"] == pytest.approx(every, rel=1e-12)
