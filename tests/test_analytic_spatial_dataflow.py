"""The spatial_dataflow closed form against the simulator, exactly, on small random networks
and on VGG16, for every mapping option; its non-ideal terms are exactly the counted excess
over the ideal (one fold, no distance) closed form."""

from __future__ import annotations

import pytest

from sim.arch.registry import architecture_names
from hypothesis import event, given
from hypothesis import strategies as st

from sim.analytic import spatial_dataflow as sd
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.replay import replay
from sim.trace import open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace

from analytic_helpers import FAST, assert_matches_report, random_trace

PAPER, HOROWITZ = load_energy_table("paper_v1_45nm"), load_energy_table("horowitz_45nm")
E_MEM, E_ADD = 20.0, 0.03  # the paper's v1 constants, pJ


def predict_all(tr, overrides, mode, table=PAPER, ideal=False):
    spec = load_arch_spec("spatial_dataflow", overrides)
    return sd.predict(spec, tr.layers, trace_event_stats(tr), tr.T, mode, trace_activation_bits(tr),
                      table, ideal)


def options(data) -> list[str]:
    pick = lambda name, values: f"{name}={data.draw(st.sampled_from(values))}"  # noqa: E731
    return [pick("mapping.delivery", ["per_synapse", "multicast"]), pick("mapping.per_hop", [False, True]),
            pick("mapping.neuron_ops", ["paper", "hardware"]), pick("mapping.zero_skipping", [True, False]),
            pick("mapping.pe_allocation", ["weights", "balanced"]), pick("mapping.on_overflow", ["error", "fold"]),
            pick("components.pe_array.rows", [1, 2, 3, 8]), pick("components.pe_array.cols", [1, 2, 5, 8]),
            pick("components.local_memory.capacity_bytes", [64, 256, 2048, 32768]),
            pick("components.interconnect.width_bits", [4, 8, 16]),
            pick("data.membrane_bits", [8, 16]), pick("data.ann_activation_bits", [0, 8])]


@FAST
@given(st.data())
def test_closed_form_counts_equal_the_simulators_for_every_mapping_option(data):
    path = random_trace(data)
    opts = options(data)
    table = data.draw(st.sampled_from([PAPER, HOROWITZ]))
    with open_trace(path) as tr:
        for mode in ("snn", "ann"):
            try:
                (rep,) = replay(tr, "spatial_dataflow", [mode], table.path, overrides=opts, progress=False)
            except ParameterError:  # the model or a layer does not fit the chip: both refuse
                event("rejected")
                with pytest.raises(ParameterError):
                    predict_all(tr, opts, mode, table)
                continue
            pred = predict_all(tr, opts, mode, table)
            assert_matches_report(pred, rep)
            assert pred.layers[0].residency["folds"] == rep["extra"]["folds"]
            event(f"{mode}: {rep['extra']['folds']} fold(s)")
            ideal = predict_all(tr, opts, mode, table, ideal=True)
            for p, r, i in zip(pred.layers, rep["layers"], ideal.layers):
                assert p.ideal_counts == i.counts
                extra = {k: sum(c.values()) for k, c in p.nonideal_terms().items()}
                assert {k: n - i.counts[k] for k, n in r["counts"].items() if n != i.counts[k]} == extra
                assert {c for cs in p.nonideal_terms().values() for c in cs} <= NONIDEAL_CAUSES


def test_vgg16_matches_the_simulator_and_the_papers_per_event_costs(tmp_path):
    path = tmp_path / "vgg16.h5"
    layers, shape = model_layers("vgg16", 6)
    write_synthetic_trace(path, layers, shape, model="vgg16", T=6, n_samples=1, rate=0.0757, seed=2,
                          with_weights=False)
    with open_trace(path) as tr:
        snn, ann = replay(tr, "spatial_dataflow", ["snn", "ann"], "paper_v1_45nm", progress=False)
        pred = predict_all(tr, [], "snn")
        assert_matches_report(pred, snn)
        assert_matches_report(predict_all(tr, [], "ann"), ann)
        stats = {s.name: s for s in trace_event_stats(tr)}
        # a spiking conv layer: E·(e_mem + e_add) + N·T·2·(e_mem + e_add), the paper's terms
        conv5 = next(l for l in pred.layers if l.name == "conv5")
        N = tr.layer("conv5").n_neurons
        assert conv5.energy_pj == pytest.approx(stats["conv5"].synaptic_events * (E_MEM + E_ADD)
                                                + N * 6 * 2 * (E_MEM + E_ADD), rel=1e-12)


def test_formulas_trace_arch_all_gives_every_closed_form(tmp_path, capsys):
    import json

    from sim.cli import main

    path = tmp_path / "tiny.h5"
    layers, shape = model_layers("tiny", 3)
    write_synthetic_trace(path, layers, shape, model="tiny", T=3, n_samples=1, rate=0.3, seed=4)
    out = tmp_path / "cf.json"
    assert main(["formulas", "--trace", str(path), "--arch", "all", "--json", str(out)]) == 0
    assert "Closed form spatial_dataflow" in capsys.readouterr().out
    doc = json.loads(out.read_text())["closed_form"]
    assert set(doc["architectures"]) == set(architecture_names())  # every registered architecture
    with open_trace(path) as tr:
        (snn,) = replay(tr, "spatial_dataflow", ["snn"], "paper_v1_45nm", progress=False)
    assert doc["architectures"]["spatial_dataflow"]["snn"]["counts"] == snn["counts"]
