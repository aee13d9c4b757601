"""The mapper (sim.replay.mapper, issue 16): on small networks its choice is, for every
architecture and mode, no more expensive than any mapping of the space — each candidate
*simulated* here, independently of the closed forms the mapper uses — and the chosen mapping's
simulated counts equal the closed form's prediction exactly."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from sim.arch.energy import load_energy_table
from sim.arch.registry import ARCH_KINDS, Capability
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.replay.mapper import candidates, check_prediction, mapping_space, overrides_of, search
from sim.replay import count_runs, replay_document
from sim.report import build_report
from sim.trace import open_trace

TABLE = load_energy_table("paper_v1_45nm")
TRACES = ["traces/tiny_synth_T4.h5", "traces/tiny_resnet_T4.h5"]


def _simulated(trace, spec, mode, options):
    """Energy (pJ) and cycles of ``options`` on ``spec``, by simulation; None when refused."""
    try:
        cand = spec.with_overrides(overrides_of(options))
        counted = count_runs(trace, [(cand, mode)], progress=False)[0]
    except ParameterError:
        return None
    report = build_report(counted.result, cand, TABLE, {})
    return report["energy_pj"]["total"], report["cycles"]


@pytest.mark.parametrize("path", TRACES)
@pytest.mark.parametrize("arch", [k.name for k in ARCH_KINDS])
def test_the_best_mapping_costs_no_more_than_any_mapping_of_the_space_simulated(path, arch):
    spec = load_arch_spec(arch)
    with open_trace(REPO / path) as tr:
        for mode in ("snn", "ann"):
            choice = search(tr, spec, mode, TABLE)
            every = candidates(spec) + [c.options for c in choice.candidates]   # the grid and what the search added
            simulated = {json.dumps(c, sort_keys=True): _simulated(tr, spec, mode, c) for c in every}
            feasible = {k: v for k, v in simulated.items() if v is not None}
            assert feasible, "the spec's own mapping at least must run"
            best = simulated[json.dumps(choice.chosen.options, sort_keys=True)]
            assert best is not None
            assert all(best[0] <= e * (1 + 1e-12) for e, _ in feasible.values()), (mode, best, feasible)
            # the closed form priced every candidate exactly like the simulation
            for c in choice.candidates:
                sim = simulated[json.dumps(c.options, sort_keys=True)]
                assert (c.infeasible is None) == (sim is not None)
                if sim is not None:
                    assert c.energy_pj == pytest.approx(sim[0], rel=1e-12)


@pytest.mark.parametrize("arch", [k.name for k in ARCH_KINDS])
def test_the_chosen_mapping_simulated_equals_the_closed_form_exactly(arch):
    doc, reports = replay_document(str(REPO / "traces/tiny_resnet_T4.h5"), arch, ["snn", "ann"], "paper_v1_45nm",
                                   progress=False, map_policy="best")
    for r in reports:
        m = r["mapping"]
        assert m["prediction_check"] == {"exact": True, "differences": []}
        assert r["energy_pj"]["total"] == pytest.approx(m["chosen_energy_pj"], rel=1e-12)
        assert m["chosen_energy_pj"] <= m["spec_mapping_energy_pj"]
        assert r["arch"]["spec"]["mapping"] | m["chosen"] == r["arch"]["spec"]["mapping"]  # the run used it


def test_check_prediction_names_a_count_that_differs():
    _, reports = replay_document(str(REPO / "traces/tiny_synth_T4.h5"), "memory_hierarchy", ["snn"],
                                 "paper_v1_45nm", progress=False, map_policy="best")
    spec = load_arch_spec("memory_hierarchy")
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr:
        pred = search(tr, spec, "snn", TABLE).prediction
    report = json.loads(json.dumps(reports[0]))
    key = next(iter(report["layers"][0]["counts"]))
    report["layers"][0]["counts"][key] += 1
    got = check_prediction(report, pred)
    assert not got["exact"] and got["differences"][0]["term"] == key


def test_ties_keep_the_specs_own_mapping():
    # spatial_dataflow's pe_allocation and stage_buffer move cycles, not energy: the spec's values stay
    spec = load_arch_spec("spatial_dataflow")
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr:
        choice = search(tr, spec, "snn", TABLE)
    same = [c for c in choice.candidates if c.energy_pj == choice.chosen.energy_pj]
    assert len(same) > 1
    assert choice.chosen.options == choice.own.options == {k: spec.mapping[k] for k in choice.chosen.options}


def test_a_capability_is_offered_only_where_the_hardware_has_it():
    plain = load_arch_spec("neuromorphic")                      # the shipped mesh routes unicast
    assert mapping_space(plain)["multicast"] == (False,)
    rich = load_arch_spec("neuromorphic", ["mapping.multicast=true"])
    assert mapping_space(rich)["multicast"] == (True, False)
    assert isinstance(next(k for k in ARCH_KINDS if k.name == "neuromorphic").mapping_space["multicast"], Capability)
    # hardware fields are never in a space
    for kind in ARCH_KINDS:
        assert not set(kind.mapping_space) & {"zero_skipping", "io_x", "io_y", "neuron_ops", "per_hop", "on_overflow"}
        assert set(kind.mapping_space) <= set(kind.mapping)


def test_an_invalid_combination_is_refused_and_counted_not_chosen():
    spec = load_arch_spec("memory_hierarchy")
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr:
        choice = search(tr, spec, "snn", TABLE)
    refused = [c for c in choice.candidates if c.infeasible]
    assert [c.options for c in refused] == [{"loop_order": "time_major", "snn_weight_tiling": True}]
    assert "layer_major" in refused[0].infeasible
    assert choice.as_dict()["candidates_infeasible"] == 1


def test_the_cycles_objective_simulates_every_candidate_and_picks_the_fewest_cycles():
    spec = load_arch_spec("spatial_dataflow")
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr:
        choice = search(tr, spec, "snn", TABLE, objective="cycles")
        cycles = {json.dumps(c, sort_keys=True): _simulated(tr, spec, "snn", c)[1] for c in candidates(spec)}
    assert choice.chosen.cycles == min(cycles.values())
    assert all(c.cycles == cycles[json.dumps(c.options, sort_keys=True)] for c in choice.candidates)
    assert "simulation" in choice.evaluated_by


def test_unknown_objective_is_a_parameter_error():
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr, pytest.raises(ParameterError, match="--objective"):
        search(tr, load_arch_spec("memory_hierarchy"), "snn", TABLE, objective="area")


def test_replay_cli_reports_the_mapping_and_the_specs_figures(tmp_path):
    from sim.cli import main

    out = tmp_path / "r.json"
    assert main(["replay", str(REPO / "traces/tiny_synth_T4.h5"), "--arch", "neuromorphic", "--quiet",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    for run in doc["runs"]:
        m = run["mapping"]
        assert m["policy"] == "best" and m["candidates_evaluated"] >= 1
        assert set(m) >= {"chosen", "spec_mapping", "chosen_energy_pj", "spec_mapping_energy_pj", "prediction_check"}
    assert main(["replay", str(REPO / "traces/tiny_synth_T4.h5"), "--arch", "neuromorphic", "--quiet",
                 "--map", "spec", "--json", str(out)]) == 0
    assert all("mapping" not in run for run in json.loads(out.read_text())["runs"])


def test_validate_on_the_best_mapping_is_exact_under_ideal(tmp_path):
    from sim.validation.compare import run_validation

    doc = run_validation(str(REPO / "traces/tiny_resnet_T4.h5"), "all", ideal=True, progress=False,
                         paper=False, map_policy="best")
    assert doc["ok"] and doc["map"] == "best"
    assert all(r["mapping"]["prediction_check"]["exact"] for r in doc["runs"])


def test_breakeven_best_is_the_minimum_over_the_space_at_every_rate():
    from sim.studies.breakeven import _candidate_curves, best_curve
    from sim.trace.shapes import model_layers

    layers, _ = model_layers("tiny", 4)
    for kind in ARCH_KINDS:
        curves = _candidate_curves(load_arch_spec(kind.name), layers, 4, TABLE)
        assert len(curves) >= 2
        best = best_curve(curves)
        for r in (0.0, 0.05, 0.3, 1.0):
            e = [c(r) for c in curves]
            assert best(r) == (min(x[0] for x in e), min(x[1] for x in e))


def test_per_layer_tiling_is_the_best_of_every_assignment_of_layers_simulated():
    """memory_hierarchy, a 512-byte buffer: tiling every layer is refused (a tile cannot hold
    one channel beside its events) and none is not the cheapest; the mapper's per-layer choice
    equals the cheapest of all 2^layers subsets, each simulated here."""
    import itertools

    from sim.analytic.layer_stats import compute_layers

    spec = load_arch_spec("memory_hierarchy", ["components.global_buffer.capacity_bytes=512"])
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr:
        choice = search(tr, spec, "snn", TABLE)
        names = [l.name for l in compute_layers(tr.layers)]
        energies = {}
        for k in range(len(names) + 1):
            for subset in itertools.combinations(names, k):
                got = _simulated(tr, spec, "snn", {"loop_order": "layer_major", "snn_weight_tiling": list(subset) or False})
                if got is not None:
                    energies[subset] = got[0]
    tiled = choice.chosen.options["snn_weight_tiling"]
    assert isinstance(tiled, list) and 0 < len(tiled) < len(names)
    assert tuple(names) not in energies          # tiling every layer does not fit
    assert choice.chosen.energy_pj == pytest.approx(min(energies.values()), rel=1e-12)
    assert energies[tuple(n for n in names if n in tiled)] == min(energies.values())
    assert choice.chosen.energy_pj < min(c.energy_pj for c in choice.candidates
                                         if c.energy_pj is not None and not isinstance(c.options["snn_weight_tiling"], list))


def test_a_tiling_list_naming_an_unknown_layer_is_one_line():
    spec = load_arch_spec("memory_hierarchy", ['mapping.snn_weight_tiling=["conv1", "nope"]'])
    with open_trace(REPO / "traces/tiny_synth_T4.h5") as tr, pytest.raises(ParameterError, match="'nope'"):
        count_runs(tr, [(spec, "snn")], progress=False)
