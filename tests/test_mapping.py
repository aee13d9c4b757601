"""Mapping policies (sim.mapping): numpy-only, and the one policy both the simulator and the
closed forms use."""

from __future__ import annotations


# --- spatial_dataflow: one placement policy for the simulator and the closed form ------------
import json as _json
import subprocess as _subprocess
import sys as _sys
from pathlib import Path as _Path

import pytest as _pytest

from sim.analytic import spatial_dataflow as _sd_closed_form
from sim.analytic.layer_stats import trace_activation_bits as _sd_act_bits
from sim.analytic.layer_stats import trace_event_stats as _sd_event_stats
from sim.arch.spec import load_arch_spec as _sd_load_spec
from sim.errors import ParameterError as _SdParameterError
from sim.mapping.spatial_dataflow import INPUT_PORT_PE, place, snake_xy
from sim.replay import replay as _sd_replay
from sim.trace import open_trace as _sd_open_trace

_SD_ROOT = _Path(__file__).resolve().parents[1]
# modules a mapping policy must not pull in: they would make the closed forms depend on the
# simulator they are meant to check
_SD_FORBIDDEN = ("numba", "simpy", "sim.engine", "sim.kernels", "sim.architectures", "sim.workload")
_SD_SMALL_CHIP = ["components.local_memory.capacity_bytes=256", "components.pe_array.rows=4",
                  "components.pe_array.cols=4"]
_SD_SPECS = {
    "fits": [],
    "balanced": ["mapping.pe_allocation=balanced", "mapping.per_hop=true"],
    "fold": _SD_SMALL_CHIP + ["mapping.on_overflow=fold", "mapping.per_hop=true"],
    "fold_balanced": _SD_SMALL_CHIP + ["mapping.on_overflow=fold", "mapping.pe_allocation=balanced"],
}


def _sd_modules_loaded_by(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = _subprocess.run([_sys.executable, "-c", code], cwd=_SD_ROOT, check=True, capture_output=True,
                          text=True).stdout
    return _json.loads(out)


def test_the_spatial_placement_policy_imports_no_simulator_module():
    loaded = _sd_modules_loaded_by("sim.mapping.spatial_dataflow")
    assert "sim.mapping.spatial_dataflow" in loaded
    assert [m for m in loaded if any(m == f or m.startswith(f + ".") for f in _SD_FORBIDDEN)] == []


def test_snake_order_turns_at_the_end_of_each_row_and_the_input_port_is_pe_0():
    assert [snake_xy(i, 3) for i in range(7)] == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0)]
    assert snake_xy(INPUT_PORT_PE, 3) == (0, 0)


@_pytest.mark.parametrize("mode", ["snn", "ann"])
@_pytest.mark.parametrize("name", list(_SD_SPECS))
def test_the_spatial_simulator_and_closed_form_place_layers_by_the_mapping_policy(tiny_trace, name, mode):
    overrides = _SD_SPECS[name]
    spec = _sd_load_spec("spatial_dataflow", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        (rep,) = _sd_replay(tr, "spatial_dataflow", [mode], "paper_v1_45nm", overrides=overrides, progress=False)
        pred = _sd_closed_form.predict(spec, tr.layers, _sd_event_stats(tr), tr.T, mode, _sd_act_bits(tr))
        groups = place(spec, tr.layers, mode)
    assert rep["extra"]["placement"] == {
        g.layer: {"layer": g.layer, "pes": g.pes, "first_pe": g.first_pe, "bits": g.state_bits,
                  "hops": g.hops, "fold": g.fold} for g in groups}
    assert rep["extra"]["folds"] == groups[0].folds
    assert [lp.residency for lp in pred.layers] == [
        {"pes": g.pes, "first_pe": g.first_pe, "state_bits": g.state_bits, "hops": g.hops, "fold": g.fold,
         "fold_first": g.fold_first, "fold_last": g.fold_last, "folds": g.folds} for g in groups]
    chip = spec["pe_array"].rows * spec["pe_array"].cols
    if name == "fold" and mode == "snn":  # the case this spec exists for: it really folds
        assert groups[0].folds > 1
    if name.endswith("balanced"):  # every fold hands out the whole chip
        for f in range(groups[0].folds):
            assert sum(g.pes for g in groups if g.fold == f) == chip


@_pytest.mark.parametrize("overrides,message", [
    (_SD_SMALL_CHIP + ["mapping.on_overflow=error"], "the model does not fit on the chip"),
    (_SD_SMALL_CHIP + ["mapping.on_overflow=fold", "components.pe_array.rows=2"], "alone needs"),
])
def test_a_model_that_does_not_fit_is_the_same_parameter_error_everywhere(tiny_trace, overrides, message):
    spec = _sd_load_spec("spatial_dataflow", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        with _pytest.raises(_SdParameterError, match=message) as policy:
            place(spec, tr.layers, "snn")
        with _pytest.raises(_SdParameterError) as simulator:
            _sd_replay(tr, "spatial_dataflow", ["snn"], "paper_v1_45nm", overrides=overrides, progress=False)
        with _pytest.raises(_SdParameterError) as closed_form:
            _sd_closed_form.predict(spec, tr.layers, _sd_event_stats(tr), tr.T, "snn", _sd_act_bits(tr))
    assert str(simulator.value) == str(closed_form.value) == str(policy.value)


@_pytest.mark.parametrize("overrides", [[], _SD_SMALL_CHIP + ["mapping.per_hop=true"]])
def test_the_spatial_ideal_overrides_fit_both_modes_in_one_fold(tiny_trace, overrides):
    spec = _sd_load_spec("spatial_dataflow", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        ideal = _sd_closed_form.ideal_overrides(spec, tr.layers, tr.T, _sd_act_bits(tr))
        fixed = _sd_load_spec("spatial_dataflow", overrides + ideal + ["mapping.on_overflow=error"])
        for mode in ("snn", "ann"):
            assert {g.folds for g in place(fixed, tr.layers, mode)} == {1}
    assert fixed.mapping["per_hop"] is False
    assert (ideal == []) == (overrides == [])  # nothing already large enough is changed


# --- memory_hierarchy: one residency/tiling policy for the simulator and the closed form -----
import math as _math  # noqa: E402

from sim.analytic import memory_hierarchy as _mh_closed_form  # noqa: E402
from sim.mapping import memory_hierarchy as _mh_policy  # noqa: E402

_MH_SMALL = ["components.global_buffer.capacity_bytes=1024", "components.pe_array.rows=4"]
_MH_SPECS = {
    "default": [],
    "small_buffer": _MH_SMALL,
    "time_major": ["components.global_buffer.capacity_bytes=2048", "mapping.loop_order=time_major"],
    "weight_tiling": _MH_SMALL + ["mapping.snn_weight_tiling=true"],
}


def test_the_memory_hierarchy_policy_imports_no_simulator_module():
    loaded = _sd_modules_loaded_by("sim.mapping.memory_hierarchy")
    assert "sim.mapping.memory_hierarchy" in loaded
    assert [m for m in loaded if any(m == f or m.startswith(f + ".") for f in _SD_FORBIDDEN)] == []
    assert not any(m == "sim.analytic" or m.startswith("sim.analytic.") for m in loaded)


@_pytest.mark.parametrize("mode", ["snn", "ann"])
@_pytest.mark.parametrize("name", list(_MH_SPECS))
def test_the_memory_hierarchy_simulator_and_closed_form_use_the_residency_policy(tiny_trace, name, mode):
    overrides = _MH_SPECS[name]
    spec = _sd_load_spec("memory_hierarchy", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        (rep,) = _sd_replay(tr, "memory_hierarchy", [mode], "paper_v1_45nm", overrides=overrides, progress=False)
        bits = spec.data.ann_bits(_sd_act_bits(tr))
        pred = _mh_closed_form.predict(spec, tr.layers, _sd_event_stats(tr), tr.T, mode, _sd_act_bits(tr))
        plan = _mh_policy.plan(spec, tr.layers, tr.T, mode, bits)
    assert rep["extra"]["plan"] == {lp.name: r.as_report_dict() for lp, r in zip(pred.layers, plan)}
    assert [lp.residency for lp in pred.layers] == [r.as_residency_dict() for r in plan]
    resident = all(r.weights_nonresident() == 0 and r.io_spill_bits == 0 for r in plan)
    assert resident == (name == "default" or (name == "weight_tiling" and mode == "snn"))
    if name == "weight_tiling" and mode == "snn":  # fc1 runs in tiles: more passes than cp
        assert any(r.tile_passes > r.channel_passes for r in plan)


@_pytest.mark.parametrize("overrides,mode,message", [
    (["components.global_buffer.capacity_bytes=64"], "ann", "cannot stage one output channel's weights of layer fc1"),
    (["components.global_buffer.capacity_bytes=64"], "snn", "cannot stage one output channel's weights of layer fc1"),
    (["components.global_buffer.capacity_bytes=64", "mapping.snn_weight_tiling=true"], "snn",
     "cannot hold one output channel's weights and membranes of layer conv1"),
    (["mapping.snn_weight_tiling=true", "mapping.loop_order=time_major"], "ann", "needs loop_order: layer_major"),
])
def test_a_buffer_too_small_is_the_same_parameter_error_in_simulator_and_closed_form(tiny_trace, overrides,
                                                                                       mode, message):
    spec = _sd_load_spec("memory_hierarchy", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        with _pytest.raises(_SdParameterError, match=message) as policy:
            _mh_policy.plan(spec, tr.layers, tr.T, mode, spec.data.ann_bits(_sd_act_bits(tr)))
        with _pytest.raises(_SdParameterError) as simulator:
            _sd_replay(tr, "memory_hierarchy", [mode], "paper_v1_45nm", overrides=overrides, progress=False)
        with _pytest.raises(_SdParameterError) as closed_form:
            _mh_closed_form.predict(spec, tr.layers, _sd_event_stats(tr), tr.T, mode, _sd_act_bits(tr))
    assert str(simulator.value) == str(closed_form.value) == str(policy.value)


@_pytest.mark.parametrize("overrides", [[], _MH_SMALL, _MH_SPECS["time_major"],
                                        ["components.global_buffer.capacity_bytes=1073741824"]])
def test_the_memory_hierarchy_ideal_overrides_make_every_layer_resident_in_both_modes(tiny_trace, overrides):
    spec = _sd_load_spec("memory_hierarchy", overrides)
    with _sd_open_trace(tiny_trace) as tr:
        bits = _sd_act_bits(tr)
        ideal = _mh_closed_form.ideal_overrides(spec, tr.layers, tr.T, bits)
        fixed = _sd_load_spec("memory_hierarchy", overrides + ideal)
        for mode in ("snn", "ann"):
            for r in _mh_policy.plan(fixed, tr.layers, tr.T, mode, fixed.data.ann_bits(bits)):
                assert (r.weights_nonresident(), r.io_spill_bits) == (0, 0)
                assert r.membranes_nonresident() == (0 if mode == "snn" else r.channels * r.pixels)
        need = _mh_policy.resident_bits(spec, tr.layers, tr.T, spec.data.ann_bits(bits))
    cap = fixed["global_buffer"].capacity_bytes * 8
    assert need <= cap
    if ideal:  # rounded up to whole bytes and buffer words, no further
        assert cap - need < _math.lcm(8, fixed["global_buffer"].width_bits)
    assert (ideal == []) == (need <= spec["global_buffer"].capacity_bytes * 8)


# --- neuromorphic: one partition / segment / placement policy for the simulator and the closed form
import json as _nm_json
import subprocess as _nm_subprocess
import sys as _nm_sys
from pathlib import Path as _NmPath

import numpy as _np
import pytest as _nm_pytest

import sim.mapping.neuromorphic as _nm_policy
from sim.analytic import neuromorphic as _nm_closed_form
from sim.analytic.layer_stats import trace_activation_bits as _nm_act_bits
from sim.analytic.layer_stats import trace_event_stats as _nm_event_stats
from sim.arch.spec import load_arch_spec as _nm_load_spec
from sim.architectures import neuromorphic_mapping as _nm_routing
from sim.architectures.neuromorphic import Neuromorphic as _NmSimulator
from sim.errors import ParameterError as _NmParameterError
from sim.trace import open_trace as _nm_open_trace
from sim.workload import Workload as _NmWorkload

_NM_ROOT = _NmPath(__file__).resolve().parents[1]
# what a policy must not pull in: the closed form takes it as an input and must not depend on
# the simulator it checks
_NM_FORBIDDEN = ("numba", "simpy", "sim.engine", "sim.kernels", "sim.architectures", "sim.analytic",
                 "sim.workload")
_NM_SMALL = ["components.noc.width=8", "components.noc.height=8", "components.neuron_memory.capacity_bytes=96",
             "components.synapse_memory.capacity_bytes=1024"]
_NM_SPECS = {
    "default": [],
    "spatial_nearest": _NM_SMALL + ["mapping.partition=spatial", "mapping.placement=nearest"],
    "no_weight_sharing": _NM_SMALL + ["mapping.weight_sharing=false", "mapping.multicast=true"],
    "segments_with_dram": ["components.noc.width=2", "components.noc.height=2",
                           "components.neuron_memory.capacity_bytes=96", "mapping.placement=nearest",
                           "mapping.io_x=1", "mapping.io_y=1"],
}


def test_the_neuromorphic_mapping_policy_imports_no_simulator_module():
    code = "import json, sys, sim.mapping.neuromorphic; print(json.dumps(sorted(sys.modules)))"
    out = _nm_subprocess.run([_nm_sys.executable, "-c", code], cwd=_NM_ROOT, check=True,
                             capture_output=True, text=True).stdout
    loaded = _nm_json.loads(out)
    assert "sim.mapping.neuromorphic" in loaded
    assert [m for m in loaded if any(m == f or m.startswith(f + ".") for f in _NM_FORBIDDEN)] == []


def test_the_simulator_and_closed_form_build_the_neuromorphic_mapping_with_the_policy():
    assert _nm_routing.build is _nm_policy.build
    assert _nm_closed_form.build is _nm_policy.build
    assert _nm_closed_form.partition_layers is _nm_policy.partition_layers


def _nm_record(monkeypatch, name: str) -> list:
    """Record every call of policy function ``name`` (args and result) made through ``build``."""
    calls, real = [], getattr(_nm_policy, name)

    def spy(*args):
        out = real(*args)
        calls.append((args, out))
        return out

    monkeypatch.setattr(_nm_policy, name, spy)
    return calls


def _nm_same(a, b) -> bool:
    if isinstance(a, _np.ndarray) or isinstance(b, _np.ndarray):
        return _np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_nm_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_nm_same(a[k], b[k]) for k in a)
    if isinstance(a, _nm_policy.LayerGroups):
        return a.layer == b.layer and _nm_same(a.gon, b.gon) and _nm_same(a.synapse_bits, b.synapse_bits)
    return a == b


@_nm_pytest.mark.parametrize("name", list(_NM_SPECS))
def test_the_neuromorphic_simulator_and_closed_form_partition_segment_and_place_alike(tiny_trace, name,
                                                                                      monkeypatch):
    overrides = _NM_SPECS[name]
    spec = _nm_load_spec("neuromorphic", overrides)
    spied = {f: _nm_record(monkeypatch, f) for f in ("partition_layers", "segments", "place")}
    monkeypatch.setattr(_nm_closed_form, "_ROUTES", {})   # the closed form's route cache: map afresh
    with _nm_open_trace(tiny_trace) as tr:
        sim = _NmSimulator(spec, _NmWorkload(tr))
        by_simulator = {f: list(calls) for f, calls in spied.items()}
        for calls in spied.values():
            calls.clear()
        pred = _nm_closed_form.predict(spec, tr.layers, _nm_event_stats(tr), tr.T, "snn", _nm_act_bits(tr))
    for f, calls in spied.items():  # the same policy calls, with the same arguments and results
        assert len(calls) == len(by_simulator[f]) > 0, f
        assert _nm_same(calls, by_simulator[f]), f
    m = sim.map
    assert [lp.residency for lp in pred.layers] == [
        {"configurations": m.n_segments, "cores": m.groups[i].n_groups,
         "parts": [{"segment": p.segment, "groups": [p.g0, p.g1], "input_on_chip": p.input_on_chip,
                    "output_off_chip": p.output_off_chip} for p in m.layer_parts(i)]}
        for i in range(len(pred.layers))]
    if name == "segments_with_dram":  # the case this spec exists for: several configurations
        assert m.n_segments > 1


@_nm_pytest.mark.parametrize("overrides", [[], _NM_SPECS["segments_with_dram"], _NM_SPECS["no_weight_sharing"]])
def test_the_neuromorphic_ideal_overrides_give_a_mesh_with_a_core_for_every_group(tiny_trace, overrides):
    spec = _nm_load_spec("neuromorphic", overrides)
    with _nm_open_trace(tiny_trace) as tr:
        ideal = _nm_closed_form.ideal_overrides(spec, tr.layers, tr.T, _nm_act_bits(tr))
        fixed = _nm_load_spec("neuromorphic", overrides + ideal)
        layers = [l for l in tr.layers if l.output != "passthrough"]
        mapping = _nm_policy.build(fixed, layers, [None] + list(range(len(layers) - 1)))
    assert mapping.n_segments == 1
    assert fixed["noc"].width == spec["noc"].width  # only the height grows
    assert (ideal == []) == (spec["noc"].width * spec["noc"].height >= sum(g.n_groups for g in mapping.groups))


@_nm_pytest.mark.parametrize("overrides,message", [
    (["components.neuron_memory.capacity_bytes=1"], "cannot hold one neuron's"),
    (["components.synapse_memory.capacity_bytes=8"], "cannot hold the 18 weights of one neuron of layer conv1"),
    (["components.noc.width=2", "mapping.io_x=5"], r"I/O port \(5, 0\) is outside the 2x"),
])
def test_a_spec_the_neuromorphic_policy_refuses_is_the_same_parameter_error_everywhere(tiny_trace, overrides,
                                                                                      message):
    spec = _nm_load_spec("neuromorphic", overrides)
    with _nm_open_trace(tiny_trace) as tr:
        with _nm_pytest.raises(_NmParameterError, match=message) as simulator:
            _NmSimulator(spec, _NmWorkload(tr))
        with _nm_pytest.raises(_NmParameterError) as closed_form:
            _nm_closed_form.predict(spec, tr.layers, _nm_event_stats(tr), tr.T, "snn", _nm_act_bits(tr))
    assert str(simulator.value) == str(closed_form.value)


def test_an_io_port_off_the_mesh_names_the_coordinate_at_fault():
    from sim.arch.spec import load_arch_spec
    from sim.errors import ParameterError
    from sim.mapping.neuromorphic import io_node, mesh_geometry

    for field, value in (("io_x", 99), ("io_y", 99)):
        spec = load_arch_spec("neuromorphic", [f"mapping.{field}={value}"])
        with _pytest.raises(ParameterError) as err:
            io_node(spec, mesh_geometry(spec))
        assert err.value.field == f"mapping.{field}"


def test_a_mapping_too_large_to_hold_is_refused_before_partitioning():
    import time

    from sim.arch.spec import load_arch_spec
    from sim.errors import ParameterError
    from sim.mapping.neuromorphic import build
    from sim.trace.shapes import model_layers

    layers = [l for l in model_layers("vgg16", 6)[0] if l.output != "passthrough"]
    spec = load_arch_spec("neuromorphic", ["components.neuron_memory.capacity_bytes=3",
                                           "components.noc.width=1", "components.noc.height=1"])
    t0 = time.perf_counter()
    with _pytest.raises(ParameterError) as err:
        build(spec, layers, [None] + list(range(len(layers) - 1)))
    assert err.value.field == "components.neuron_memory.capacity_bytes" and "GiB" in str(err.value)
    assert time.perf_counter() - t0 < 5  # refused from the shapes, nothing allocated
