"""``validate``: counted terms equal the ideal closed form exactly on an ideal spec (random small
networks, the bundled traces); on a real spec every residual is the sum of its named causes;
the CLI exits 0 on agreement, 1 on disagreement, 2 on bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sim.analytic import paper_v1 as v1
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.arch.energy import load_energy_table
from sim.cli import main
from sim.validation.compare import SCHEMA, run_validation

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


def test_paper_section_starts_from_the_v1_ratio_at_the_traces_sparsity(tiny_trace):
    doc = run_validation(str(tiny_trace), "spatial_dataflow", progress=False)
    p = doc["paper_v1"]
    c = v1.V1Constants.from_table(load_energy_table("paper_v1_45nm"))
    a = p["averages"]
    r = p["architectures"]["spatial_dataflow"]
    assert r["v1_ratio"] == pytest.approx(v1.ratio("spatial_dataflow", c, a["s_network"], 4))
    assert r["simulated_ratio"] == pytest.approx(doc["ratios"]["spatial_dataflow"]["counted"])
    names = [s["name"] for s in r["substitutions"]]
    assert {"padding_borders", "nonuniform_spikes", "ann_density", "weight_reuse", "fan_in"} <= set(names)
    # the three spike factors multiply to the true events per synapse
    f = a["factor_nonuniform"] * a["factor_borders"] * a["factor_layer1_direct"]
    assert a["rate_network"] * f == pytest.approx(a["rate_per_synapse"])
    assert "memory_hierarchy" not in p["architectures"]  # not replayed here
