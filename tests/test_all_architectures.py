"""Every registered architecture side by side: the workload's counts agree, `--arch all`."""

from __future__ import annotations

import json

import pytest

from sim.arch.registry import ARCH_KINDS
from sim.replay import replay
from sim.report import WORKLOAD_TOTALS
from sim.trace import open_trace

from conftest import REPO, run_cli

ALL_ARCHITECTURES = tuple(k.name for k in ARCH_KINDS)

# SNN: events of the trace; ANN: the MACs the best-case ANN executes and its neurons
WORKLOAD = {"snn": WORKLOAD_TOTALS, "ann": ("macs", "neuron_updates")}


@pytest.fixture(scope="module")
def all_reports(tmp_path_factory):
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    layers, shape = model_layers("tiny", 4)
    path = tmp_path_factory.mktemp("all") / "tiny.h5"
    write_synthetic_trace(path, layers, shape, model="tiny", T=4, n_samples=2, rate=0.2, seed=11)
    with open_trace(path) as tr:
        return path, {a: replay(tr, a, ["snn", "ann"], "paper_v1_45nm", progress=False) for a in ALL_ARCHITECTURES}


def test_the_four_architectures_are_registered_each_with_a_simulator_closed_form_spec_and_doc():
    assert set(ALL_ARCHITECTURES) == {"memory_hierarchy", "neuromorphic", "spatial_dataflow", "systolic_array"}
    for kind in ARCH_KINDS:
        assert kind.simulator_class().name == kind.name
        cf = kind.closed_form_module()
        assert cf.ARCHITECTURE == kind.name and callable(cf.predict) and callable(cf.ideal_overrides)
        assert (REPO / "arch_specs" / f"{kind.name}.yaml").is_file()
        assert (REPO / kind.doc).is_file()


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_workload_counts_are_the_same_on_every_architecture(all_reports, mode):
    _, reports = all_reports
    i = ["snn", "ann"].index(mode)
    ref_arch = ALL_ARCHITECTURES[0]
    ref = reports[ref_arch][i]
    assert ref["totals"]["neuron_updates"] > 0
    if mode == "snn":
        assert ref["totals"]["synaptic_ops"] > 0 and ref["totals"]["spikes_in"] > 0
    for arch, reps in reports.items():
        rep = reps[i]
        assert rep["mode"] == mode
        for key in WORKLOAD[mode]:
            assert rep["totals"][key] == ref["totals"][key], f"{arch} vs {ref_arch}: {mode} {key}"
            per_layer = {l["name"]: l["totals"][key] for l in rep["layers"]}
            ref_layer = {l["name"]: l["totals"][key] for l in ref["layers"]}
            assert per_layer == ref_layer, f"{arch} vs {ref_arch}: {mode} {key} per layer"


def test_arch_all_mode_both_gives_every_run_and_a_ratio_per_architecture(all_reports, tmp_path):
    trace, reports = all_reports
    out, png = tmp_path / "all.json", tmp_path / "bars.png"
    res = run_cli("replay", trace, "--arch", "all", "--mode", "both", "--map", "spec", "--json", out, "--plot", png)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert [(r["arch"]["architecture"], r["mode"]) for r in doc["runs"]] == \
        [(a, m) for a in ALL_ARCHITECTURES for m in ("snn", "ann")]
    assert set(doc["ratios"]) == set(ALL_ARCHITECTURES)
    for arch in ALL_ARCHITECTURES:
        snn, ann = (r for r in doc["runs"] if r["arch"]["name"] == arch)
        assert doc["ratios"][arch] == pytest.approx(snn["energy_pj"]["total"] / ann["energy_pj"]["total"])
        assert snn["energy_pj"]["total"] == pytest.approx(reports[arch][0]["energy_pj"]["total"])
        assert f"E_SNN / E_ANN on {arch}" in res.stdout
    for key in ("synaptic_ops", "spikes_in"):
        assert len({r["totals"][key] for r in doc["runs"] if r["mode"] == "snn"}) == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_into_a_directory_writes_energy_breakdown_png(all_reports, tmp_path):
    from sim.plots.energy import energy_plot_path, plot_energy_breakdown

    _, reports = all_reports
    assert energy_plot_path(tmp_path / "a" / "x.png") == tmp_path / "a" / "x.png"
    path = energy_plot_path(tmp_path / "figs")
    assert path == tmp_path / "figs" / "energy_breakdown.png"
    path.parent.mkdir()  # the CLI creates the --plot directory itself (sim.report.output.Outputs)
    plot_energy_breakdown(reports["spatial_dataflow"], path)
    assert path.stat().st_size > 1000


def test_energy_bars_stack_each_components_energy_per_sample(all_reports):
    from sim.plots.energy import energy_breakdown

    _, reports = all_reports
    runs = [r for reps in reports.values() for r in reps]
    labels, stacks = energy_breakdown(runs)
    assert len(labels) == 2 * len(ALL_ARCHITECTURES)
    for k, rep in enumerate(runs):
        assert sum(v[k] for v in stacks.values()) == pytest.approx(rep["energy_pj"]["total"] / rep["samples"] / 1e6)


BUNDLED_VGG16 = REPO / "traces" / "vgg16_fmnist_T6.h5"


@pytest.mark.skipif(not BUNDLED_VGG16.exists(), reason="bundled VGG16 trace not recorded yet")
def test_bundled_vgg16_workload_is_the_same_on_every_architecture():
    with open_trace(BUNDLED_VGG16) as tr:
        runs = {a: replay(tr, a, ["snn", "ann"], "paper_v1_45nm", samples=1, progress=False)
                for a in ALL_ARCHITECTURES}
    for key in ("synaptic_ops", "spikes_in"):
        assert len({snn["totals"][key] for snn, _ in runs.values()}) == 1, key
    assert runs[ALL_ARCHITECTURES[0]][0]["totals"]["synaptic_ops"] > 0
    assert all(ann["energy_pj"]["total"] > 0 for _, ann in runs.values())
