"""The neuromorphic closed form against the simulator, exactly, on small random networks for
every mapping option (one and several chip configurations); its route figures against a
brute force over every synapse; its non-ideal terms are exactly paging and the events
between configurations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sim.analytic import neuromorphic as nm
from sim.analytic.closed_form import NONIDEAL_CAUSES
from sim.analytic.layer_stats import compute_layers, trace_activation_bits, trace_event_stats
from sim.analytic.neuromorphic_routes import part_figures
from sim.arch.energy import load_energy_table
from sim.arch.spec import load_arch_spec
from sim.errors import ParameterError
from sim.mapping.neuromorphic import build
from sim.replay import replay
from sim.trace import open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace

import brute
from analytic_helpers import FAST, assert_matches_report, random_trace

PAPER, LOIHI = load_energy_table("paper_v1_45nm"), load_energy_table("loihi")


def predict_all(tr, overrides, mode, table=PAPER):
    spec = load_arch_spec("neuromorphic", overrides)
    return nm.predict(spec, tr.layers, trace_event_stats(tr), tr.T, mode, trace_activation_bits(tr), table)


def options(data) -> list[str]:
    pick = lambda name, values: f"{name}={data.draw(st.sampled_from(values))}"  # noqa: E731
    w, h = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    return [f"components.noc.width={w}", f"components.noc.height={h}",
            f"mapping.io_x={data.draw(st.integers(0, w - 1))}", f"mapping.io_y={data.draw(st.integers(0, h - 1))}",
            pick("components.noc.flit_bits", [8, 32]),
            pick("components.neuron_memory.capacity_bytes", [3, 48, 384, 3072]),
            pick("components.synapse_memory.capacity_bytes", [64, 256, 131072]),
            pick("mapping.partition", ["channel_major", "spatial"]),
            pick("mapping.placement", ["row_major", "nearest"]),
            pick("mapping.multicast", [False, True]), pick("mapping.weight_sharing", [True, False]),
            pick("data.ann_activation_bits", [0, 8]),
            # the chip's Loihi behaviour (docs/architectures/neuromorphic.md)
            pick("mapping.readout_every_step", [True, False]), pick("mapping.direct_input", ["events", "bias"]),
            pick("mapping.neuron_updates", ["all", "active"])]


@FAST
@given(st.data())
def test_closed_form_counts_equal_the_simulators_for_every_mapping_option(data):
    path = random_trace(data)
    opts = options(data)
    table = data.draw(st.sampled_from([PAPER, LOIHI]))
    with open_trace(path) as tr:
        try:
            reports = replay(tr, "neuromorphic", ["snn", "ann"], table.path, overrides=opts, progress=False)
        except ParameterError:  # a neuron's fan-in or state does not fit a core: both refuse
            event("rejected")
            with pytest.raises(ParameterError):
                predict_all(tr, opts, "snn", table)
            return
        for rep in reports:
            pred = predict_all(tr, opts, rep["mode"], table)
            assert_matches_report(pred, rep)
            configs = rep["extra"]["mapping"]["segments"]
            event(f"{'one' if configs == 1 else 'several'} configuration(s)")
            for p in pred.layers:
                assert {c for cs in p.nonideal_terms().values() for c in cs} <= NONIDEAL_CAUSES
                if configs == 1:
                    assert p.counts == p.ideal_counts


@pytest.mark.parametrize("multicast", [False, True])
def test_route_figures_equal_a_brute_force_over_every_synapse(multicast):
    """Per input element: one packet per destination core (multicast: one per element that
    reaches any), hops as Manhattan distances (multicast: the XY tree's links, each once)."""
    spec = load_arch_spec("neuromorphic", ["components.noc.width=3", "components.noc.height=3",
                                           "components.neuron_memory.capacity_bytes=384",
                                           f"mapping.multicast={multicast}"])
    layers = compute_layers(model_layers("tiny", 2)[0])
    mapping = build(spec, layers, [None, 0, 1, 2, 3])
    groups, figures = mapping.groups, part_figures(mapping, multicast)
    assert mapping.n_segments == 1 and len(figures) == len(layers)
    for fig in figures:
        part, k = fig.part, fig.part.layer_index
        layer, gon = layers[k], groups[k].gon
        dests: dict[int, dict[int, int]] = {}
        for i, o in brute.synapses(layer):
            node = int(part.group_node[gon[o]])
            dests.setdefault(i, {})[node] = dests.get(i, {}).get(node, 0) + 1
        for i in range(layer.n_inputs):
            src = 0 if k == 0 else int(mapping.parts[k - 1].group_node[groups[k - 1].gon[i]])
            sx, sy = src % 3, src // 3
            d = dests.get(i, {})
            assert fig.synapses[i] == sum(d.values())
            if not multicast:
                assert fig.packets[i] == len(d)
                assert fig.hops_ew[i] == sum(abs(n % 3 - sx) for n in d)
                assert fig.hops_ns[i] == sum(abs(n // 3 - sy) for n in d)
                continue
            links = set()  # the union of the XY paths, link by link
            for n in d:
                x, y = sx, sy
                while x != n % 3:
                    nx = x + (1 if n % 3 > x else -1)
                    links.add(((x, y), (nx, y)))
                    x = nx
                while y != n // 3:
                    ny = y + (1 if n // 3 > y else -1)
                    links.add(((x, y), (x, ny)))
                    y = ny
            assert fig.packets[i] == (1 if d else 0)
            assert fig.hops_ew[i] == sum(1 for a, b in links if a[1] == b[1])
            assert fig.hops_ns[i] == sum(1 for a, b in links if a[0] == b[0])


def test_a_model_too_big_for_the_mesh_pages_its_weights_every_sample(tmp_path):
    path = tmp_path / "tiny.h5"
    layers, shape = model_layers("tiny", 3)
    write_synthetic_trace(path, layers, shape, model="tiny", T=3, n_samples=2, rate=0.2, seed=1)
    small = ["components.noc.width=2", "components.noc.height=2", "components.neuron_memory.capacity_bytes=48"]
    with open_trace(path) as tr:
        (rep,) = replay(tr, "neuromorphic", ["snn"], "paper_v1_45nm", overrides=small, progress=False)
        pred = predict_all(tr, small, "snn")
    assert_matches_report(pred, rep)
    assert rep["extra"]["mapping"]["segments"] > 1
    paged = sum(l.terms["dram.weight_read"]["weights_paged_per_sample"] for l in pred.layers)
    assert paged == rep["counts"]["dram.weight_read"] > 0
    assert pred.ideal_energy_pj < pred.energy_pj
    assert np.isclose(pred.energy_pj, rep["energy_pj"]["total"], rtol=1e-12)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_expected_counts_for_a_spike_rate_equal_the_measured_ones_where_they_are_certain(tmp_path, rate):
    from sim.analytic.layer_stats import expected_event_stats

    path = tmp_path / "t.h5"
    layers, shape = model_layers("tiny", 3)
    write_synthetic_trace(path, layers, shape, model="tiny", T=3, n_samples=2, rate=rate, seed=0)
    spec = load_arch_spec("neuromorphic", ["components.neuron_memory.capacity_bytes=384"])
    with open_trace(path) as tr:
        assert all(np.count_nonzero(tr.input(i)) == 128 for i in range(2))  # a dense image
        measured = nm.predict(spec, tr.layers, trace_event_stats(tr), 3, "snn", 2, PAPER)
    expected = nm.predict(spec, layers, expected_event_stats(layers, 3, rate, samples=2), 3, "snn", 2, PAPER)
    for m, e in zip(measured.layers, expected.layers):
        assert e.counts == pytest.approx(m.counts)
    assert expected.energy_pj == pytest.approx(measured.energy_pj, rel=1e-12)
