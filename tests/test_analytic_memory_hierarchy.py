"""The memory_hierarchy closed form against brute force and against the simulator, exactly.

(a) its data-dependent statistics (S, E, F, nnz, M, fan-out) equal brute-force enumeration of
every synapse on small random layers; (b) its per-layer counts equal a replay's counts
exactly, with everything resident and with the spec's real (small) buffer; (c) its energies
equal the report's within float rounding.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sim.analytic import memory_hierarchy as mh
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.analytic.layer_stats import (
    compute_layers,
    expected_event_stats,
    input_fanout,
    trace_activation_bits,
    trace_event_stats,
)
from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.replay import replay
from sim.trace import open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace

import brute
from analytic_helpers import FAST, assert_matches_report, random_trace
from conftest import REPO, run_cli

HUGE = "components.global_buffer.capacity_bytes=1073741824"
PAPER, HOROWITZ = load_energy_table("paper_v1_45nm"), load_energy_table("horowitz_45nm")


def predict_all(tr, overrides, mode, table=PAPER, ideal=False):
    spec = load_arch_spec("memory_hierarchy", overrides)
    return mh.predict(spec, tr.layers, trace_event_stats(tr), tr.T, mode, trace_activation_bits(tr),
                      table, ideal)


# --- (a) statistics vs brute force ------------------------------------------------------------
@FAST
@given(st.data())
def test_each_statistic_equals_brute_force_enumeration_of_synapses(data):
    path = random_trace(data)
    with open_trace(path) as tr:
        stats = trace_event_stats(tr)
        for layer, s in zip(compute_layers(tr.layers), stats):
            fan = brute.fanout(layer)
            assert np.array_equal(input_fanout(layer), fan), layer
            prev = tr.producer(layer.name)
            nnz = macs = spikes = events = fired = 0
            steps = np.zeros(tr.T, np.int64)
            for i in range(tr.n_samples):
                x = tr.input(i) if prev is None else tr.activations(prev.name, i)
                nz = x.reshape(-1) != 0
                nnz += int(nz.sum())
                macs += sum(int(fan[j]) for j in np.flatnonzero(nz))
                if prev is not None:
                    sp = tr.input_spikes(layer.name, i)
                    spikes += int(sp.sum())
                    per_step = brute.synaptic_events(layer, sp)
                    steps += per_step
                    events += int(per_step.sum())
                if layer.output == "spikes":
                    fired += int(tr.spikes(layer.name, i).sum())
            assert s.analog_input == (prev is None)
            assert (s.spikes_in, s.synaptic_events, s.spikes_out) == (spikes, events, fired)
            assert (s.ann_nonzero_inputs, s.ann_macs) == (nnz, macs)
            assert np.array_equal(s.per_step["synaptic_events"], steps)


# --- (b), (c) counts and energy vs the simulator -----------------------------------------------
@FAST
@given(st.data())
def test_closed_form_counts_equal_the_simulators_with_everything_resident(data):
    path = random_trace(data)
    pe = [f"components.pe_array.rows={data.draw(st.integers(1, 4))}",
          f"components.pe_array.cols={data.draw(st.integers(1, 4))}"]
    opts = pe + [HUGE, f"mapping.zero_skipping={data.draw(st.booleans())}",
                 f"mapping.loop_order={data.draw(st.sampled_from(['layer_major', 'time_major']))}",
                 f"data.ann_activation_bits={data.draw(st.sampled_from([0, 8]))}"]
    table = data.draw(st.sampled_from([PAPER, HOROWITZ]))
    with open_trace(path) as tr:
        reports = replay(tr, "memory_hierarchy", ["snn", "ann"], table.path, overrides=opts, progress=False)
        for rep in reports:
            pred = predict_all(tr, opts, rep["mode"], table)
            assert_matches_report(pred, rep)
            assert not any(l.nonideal_terms() for l in pred.layers)
            assert pred.counts() == predict_all(tr, opts, rep["mode"], table, ideal=True).counts()


@FAST
@given(st.data())
def test_closed_form_counts_equal_the_simulators_with_a_small_buffer(data):
    path = random_trace(data)
    opts = [f"components.pe_array.rows={data.draw(st.integers(1, 4))}",
            f"components.pe_array.cols={data.draw(st.integers(1, 4))}",
            f"components.global_buffer.capacity_bytes={8 * data.draw(st.integers(1, 40))}",
            f"mapping.zero_skipping={data.draw(st.booleans())}"]
    loop = data.draw(st.sampled_from(["layer_major", "time_major"]))
    opts.append(f"mapping.loop_order={loop}")
    if loop == "layer_major":
        opts.append(f"mapping.snn_weight_tiling={data.draw(st.booleans())}")
    with open_trace(path) as tr:
        try:
            reports = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm", overrides=opts,
                             progress=False)
        except ParameterError as refused:  # the buffer cannot hold one channel: both refuse, alike
            event("rejected")
            with pytest.raises(ParameterError) as closed_form:
                predict_all(tr, opts, "snn")
            assert str(closed_form.value) == str(refused)
            return
        for rep in reports:
            pred = predict_all(tr, opts, rep["mode"])
            assert_matches_report(pred, rep)
            # the counted excess over the ideal closed form is exactly the named non-ideal terms
            ideal = predict_all(tr, opts, rep["mode"], ideal=True)
            for p, r, i in zip(pred.layers, rep["layers"], ideal.layers):
                assert p.ideal_counts == i.counts
                extra = {k: sum(c.values()) for k, c in p.nonideal_terms().items()}
                assert {k: n - i.counts[k] for k, n in r["counts"].items() if n != i.counts[k]} == extra
                assert set(c for cs in p.nonideal_terms().values() for c in cs) <= NONIDEAL_CAUSES
                for cs in p.nonideal_terms().values():
                    for c in cs:
                        event(c)


def test_vgg16_layers_match_the_simulator_exactly(tmp_path):
    path = tmp_path / "vgg16.h5"
    layers, shape = model_layers("vgg16", 6)
    write_synthetic_trace(path, layers, shape, model="vgg16", T=6, n_samples=1, rate=0.0757, seed=1,
                          with_weights=False)
    with open_trace(path) as tr:
        for opts in ([], [HUGE, "mapping.loop_order=time_major"]):
            for rep in replay(tr, "memory_hierarchy", ["snn", "ann"], "horowitz_45nm", overrides=opts,
                              progress=False):
                assert_matches_report(predict_all(tr, opts, rep["mode"], HOROWITZ), rep)


# --- expectations for a spike rate --------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_expected_statistics_are_exact_where_the_synthetic_trace_is_deterministic(tmp_path, rate):
    layers, shape = model_layers("tiny", 3)
    path = tmp_path / "t.h5"
    write_synthetic_trace(path, layers, shape, model="tiny", T=3, n_samples=2, rate=rate, seed=0)
    with open_trace(path) as tr:
        measured = trace_event_stats(tr)
        nnz_image = sum(int(np.count_nonzero(tr.input(i))) for i in range(2))
    expected = expected_event_stats(layers, 3, rate, samples=2, input_density=nnz_image / (2 * 128))
    for m, e in zip(measured, expected):
        assert m.as_dict() == pytest.approx(e.as_dict())


def test_expected_counts_scale_linearly_with_the_spike_rate():
    layers, _ = model_layers("tiny", 4)
    spec = load_arch_spec("memory_hierarchy", [HUGE])
    e = {r: mh.predict(spec, layers, expected_event_stats(layers, 4, r), 4, "snn", 3, PAPER).energy_pj
         for r in (0.0, 0.1, 0.2)}
    assert e[0.2] - e[0.1] == pytest.approx(e[0.1] - e[0.0])
    assert e[0.1] > e[0.0]


# --- package boundary and CLI -------------------------------------------------------------------
def test_analytic_package_imports_nothing_of_the_simulator():
    code = ("import sys, sim.analytic, sim.analytic.memory_hierarchy, sim.analytic.layer_stats, "
            "sim.analytic.closed_form, sim.analytic.paper_v1, sim.analytic.spatial_dataflow, "
            "sim.analytic.neuromorphic\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numba', 'simpy', 'torch') or "
            "m.startswith(('sim.engine', 'sim.architectures', 'sim.kernels', 'sim.workload'))]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_formulas_trace_json_holds_the_closed_form_and_matches_replay(tmp_path):
    path = tmp_path / "tiny.h5"
    layers, shape = model_layers("tiny", 4)
    write_synthetic_trace(path, layers, shape, model="tiny", T=4, n_samples=2, rate=0.2, seed=5)
    small = "components.global_buffer.capacity_bytes=1024"
    res = run_cli("formulas", "--trace", path, "--set", small, "--json", "-")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    cf = doc["closed_form"]["architectures"]["memory_hierarchy"]
    with open_trace(path) as tr:
        snn, ann = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm", overrides=[small],
                          progress=False)
        (qnn,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm",
                        overrides=[small, "data.ann_activation_bits=3"], progress=False)
    for mode, rep in (("snn", snn), ("ann", ann), ("qnn", qnn)):
        assert [l["counts"] for l in cf[mode]["layers"]] == [l["counts"] for l in rep["layers"]]
        assert cf[mode]["energy_pj"] == pytest.approx(rep["energy_pj"]["total"], rel=1e-12)
    assert cf["ratios"]["snn_over_ann"] == pytest.approx(snn["energy_pj"]["total"] / ann["energy_pj"]["total"])
    assert cf["qnn"]["ann_activation_bits"] == 3 and cf["ann"]["ann_activation_bits"] == 8
    text = run_cli("formulas", "--trace", path, "--set", small)
    assert text.returncode == 0 and "weights_refetched_per_step_nonresident" in text.stdout


@pytest.fixture(scope="module")
def tiny2(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "t.h5"
    layers, shape = model_layers("tiny", 2)
    write_synthetic_trace(path, layers, shape, model="tiny", T=2, n_samples=1, rate=0.2, seed=0)
    return path


@pytest.mark.parametrize("args", [["--trace", "missing.h5"], ["--sparsity", "0.9", "--trace", "{trace}"],
                                  ["--trace", "{trace}", "--samples", "9"], ["--ideal"],
                                  ["--trace", "{trace}", "--set", "nope.x=1"],
                                  ["--trace", "{trace}", "--set", "components.global_buffer.capacity_bytes=8"],
                                  ["--trace", "{trace}", "--energy", "no_such_table"]])
def test_formulas_trace_bad_input_exits_2_with_one_line(tiny2, capsys, args):
    from sim.cli import main

    rc = main(["formulas", *[a.replace("{trace}", str(tiny2)) for a in args]])
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and out == ""
