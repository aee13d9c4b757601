"""memory_hierarchy replay: counts from real events, exact against brute force; buffer effects."""

from __future__ import annotations

import numpy as np
import pytest

from sim.arch.energy import load_energy_table
from sim.replay import replay
from sim.report import reprice
from sim.trace import open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace

import brute


def _layer(report, name):
    return next(l for l in report["layers"] if l["name"] == name)


@pytest.fixture(scope="module")
def vgg16_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16.h5"
    layers, shape = model_layers("vgg16", 6)
    write_synthetic_trace(path, layers, shape, model="vgg16", T=6, n_samples=1, rate=0.0757,
                          seed=3, with_weights=False)
    return path


def test_dense_ann_counts_exactly_the_macs_of_vgg16_geometry(vgg16_trace):
    # independent count: 13 conv 3x3 layers with padding 1 on CIFAR-10 maps, Linear(512, 10)
    cfg = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8), (256, 256, 8),
           (256, 256, 8), (256, 512, 4), (512, 512, 4), (512, 512, 4), (512, 512, 2), (512, 512, 2),
           (512, 512, 2)]
    conv_macs = sum(cin * cout * 9 * hw * hw for cin, cout, hw in cfg)
    fc_macs = 512 * 10
    pool_adds = sum(c * hw * hw for c, hw in [(64, 16), (128, 8), (256, 4), (512, 2), (512, 1)]) * 4
    with open_trace(vgg16_trace) as tr:
        (rep,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm",
                        overrides=["mapping.zero_skipping=false"], progress=False)
    assert rep["counts"]["pe_array.mac"] == conv_macs + fc_macs == 313_196_544 + 5_120
    assert rep["counts"]["pe_array.add"] == pool_adds
    assert rep["totals"]["macs"] == conv_macs + fc_macs + pool_adds


def test_zero_skipping_only_removes_macs_of_zero_inputs(vgg16_trace):
    with open_trace(vgg16_trace) as tr:
        dense, skip = (replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm", overrides=[o], progress=False)[0]
                       for o in ("mapping.zero_skipping=false", "mapping.zero_skipping=true"))
        conv2 = tr.layer("conv2")
        levels = tr.activations("conv1", 0).reshape(-1)
    assert skip["counts"]["pe_array.mac"] < dense["counts"]["pe_array.mac"]
    nnz = int(np.count_nonzero(levels))
    # conv2 reads each non-zero input once per channel pass of the 16-row PE array (64 / 16 = 4)
    assert _layer(skip, "conv2")["counts"]["global_buffer.input_read"] == nnz * 4
    assert _layer(dense, "conv2")["counts"]["global_buffer.input_read"] == conv2.n_inputs * 4


def test_every_event_count_matches_brute_force_on_a_small_trace(tiny_trace):
    with open_trace(tiny_trace) as tr:
        snn, ann = replay(tr, "memory_hierarchy", ["snn", "ann"], "paper_v1_45nm", progress=False)
        T = tr.T
        for layer in tr.layers:
            if layer.output == "passthrough":
                continue
            s, a = _layer(snn, layer.name), _layer(ann, layer.name)
            prev = tr.producer(layer.name)
            fired = sum(int(tr.spikes(layer.name, i).sum()) for i in range(tr.n_samples)) if layer.output == "spikes" else 0
            N = layer.n_neurons * T * tr.n_samples
            if prev is None:  # direct encoding: layer 1 sees the analog image
                x = [tr.input(i).reshape(-1) for i in range(tr.n_samples)]
                fan = brute.fanout(layer)
                macs = sum(int(fan[v != 0].sum()) for v in x)
                assert s["counts"]["pe_array.mac"] == macs == a["counts"]["pe_array.mac"]
                assert s["totals"]["synaptic_ops"] == 0
                continue
            syn = sum(int(brute.synaptic_events(layer, tr.input_spikes(layer.name, i)).sum())
                      for i in range(tr.n_samples))
            spikes_in = sum(int(tr.input_spikes(layer.name, i).sum()) for i in range(tr.n_samples))
            assert s["totals"]["synaptic_ops"] == syn
            assert s["totals"]["spikes_in"] == spikes_in
            assert s["totals"]["spikes_out"] == fired
            c = s["counts"]
            if layer.kind != "avgpool":
                assert c["global_buffer.weight_read"] == syn, "one weight fetched per synaptic event"
            assert c["pe_array.add"] == syn + fired
            assert c["register_file.membrane_write"] == syn + fired
            assert c["register_file.membrane_read"] == syn + (N if layer.output == "spikes" else 0)
            if layer.output == "spikes":
                assert c["pe_array.compare"] == N
                assert c["global_buffer.spike_write"] == fired
            # ANN twin with zero-skipping: MACs = non-zero inputs x their fan-out, by brute force
            fan = brute.fanout(layer)
            levels = [tr.activations(prev.name, i).reshape(-1) for i in range(tr.n_samples)]
            macs = sum(int(fan[v != 0].sum()) for v in levels)
            key = "pe_array.mac" if layer.kind != "avgpool" else "pe_array.add"
            assert a["counts"][key] == macs
            assert a["counts"]["register_file.psum_write"] == macs


def dram_bits(report):
    return report["totals"]["dram_read_bits"] + report["totals"]["dram_write_bits"]


@pytest.mark.parametrize("mode", ["snn", "ann"])
def test_shrinking_the_buffer_never_lowers_dram_traffic(tiny_trace, mode):
    sizes = [1 << 20, 8192, 2048, 1024, 512, 256]
    with open_trace(tiny_trace) as tr:
        fc1_weights = tr.layer("fc1").n_weights  # 2048 int8 weights
        traffic = [dram_bits(replay(tr, "memory_hierarchy", [mode], "paper_v1_45nm",
                                    overrides=[f"components.global_buffer.capacity_bytes={c}"],
                                    progress=False)[0]) for c in sizes]
    assert all(a <= b for a, b in zip(traffic, traffic[1:])), traffic
    # once fc1's 2 KiB of weights (plus its events) no longer fit, DRAM traffic rises
    assert fc1_weights == 2048
    assert traffic[sizes.index(1024)] > traffic[sizes.index(8192)]


def test_time_major_order_reloads_what_does_not_fit_every_step(tiny_trace):
    with open_trace(tiny_trace) as tr:
        big = ["components.global_buffer.capacity_bytes=1048576"]
        lm = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", overrides=big, progress=False)[0]
        tm = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm",
                    overrides=big + ["mapping.loop_order=time_major"], progress=False)[0]
        # with everything resident the loop order changes no count
        assert lm["counts"] == tm["counts"]
        small = ["components.global_buffer.capacity_bytes=2048"]
        lm = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", overrides=small, progress=False)[0]
        tm = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm",
                    overrides=small + ["mapping.loop_order=time_major"], progress=False)[0]
    # time-major keeps every layer's weights and membranes live at once: more spills
    assert dram_bits(tm) > dram_bits(lm)
    assert lm["totals"]["synaptic_ops"] == tm["totals"]["synaptic_ops"]


def test_energy_is_counts_times_table_and_repricing_equals_resimulating(tiny_trace):
    horowitz = load_energy_table("horowitz_45nm")
    with open_trace(tiny_trace) as tr:
        (paper,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", progress=False)
        (direct,) = replay(tr, "memory_hierarchy", ["snn"], "horowitz_45nm", progress=False)
    # by hand: every count times its table entry, scaled by bits
    table = load_energy_table("paper_v1_45nm")
    total = 0.0
    for layer in paper["layers"]:
        for key, n in layer["counts"].items():
            comp, action = key.split(".")
            bits = layer["bits"][key]
            if comp == "pe_array":
                names = {"mac": ["mul", "add"], "add": ["add"], "compare": ["compare"]}[action]
            else:
                cls = {"dram": "dram", "global_buffer": "sram", "register_file": "regfile"}[comp]
                names = [f"{cls}_{action.rsplit('_', 1)[1]}"]
            total += n * sum(table.entries[e].energy_pj * bits / table.entries[e].bits for e in names)
    assert paper["energy_pj"]["total"] == pytest.approx(total, rel=1e-12)
    again = reprice(paper, horowitz)
    assert again["energy_pj"]["total"] == pytest.approx(direct["energy_pj"]["total"], rel=1e-12)
    assert again["energy_pj"]["by_action"] == pytest.approx(direct["energy_pj"]["by_action"], rel=1e-12)
    assert again["counts"] == direct["counts"]


def test_cycles_and_utilisation_are_sane(tiny_trace):
    with open_trace(tiny_trace) as tr:
        (rep,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", progress=False)
    assert rep["cycles"] == sum(l["cycles"] for l in rep["layers"]) > 0
    assert all(0.0 <= u <= 1.0 for u in rep["utilisation"].values())
    slow = replay(open_trace(tiny_trace), "memory_hierarchy", ["snn"], "paper_v1_45nm",
                  overrides=["components.dram.bandwidth_bits_per_cycle=8"], progress=False)[0]
    assert slow["cycles"] > rep["cycles"] and slow["stall_cycles"] > rep["stall_cycles"]
    assert slow["counts"] == rep["counts"]


def test_weight_tiling_fetches_every_weight_once_and_rereads_spikes_per_tile(tiny_trace):
    small = ["components.global_buffer.capacity_bytes=1024", "components.pe_array.rows=4"]
    with open_trace(tiny_trace) as tr:
        (plain,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", overrides=small, progress=False)
        (tiled,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm",
                          overrides=small + ["mapping.snn_weight_tiling=true"], progress=False)
        n = tr.n_samples
        weights = sum(l.n_weights for l in tr.layers)
        fc1 = tr.layer("fc1")
        spikes_into_fc1 = sum(int(tr.input_spikes("fc1", i).sum()) for i in range(n))
    assert plain["counts"]["dram.weight_read"] > n * weights  # fc1's 2 KiB re-fetched every step
    assert tiled["counts"]["dram.weight_read"] == n * weights  # every weight exactly once per sample
    assert tiled["counts"]["dram.membrane_read"] == 0
    # fc1: 16 channels of 128 weights + 1 membrane; 1024 bytes minus its T=4 steps of
    # (128 + 16) event bits leave room for 7 channels -> tiles 7, 7, 2 -> 2 + 2 + 1 passes of 4 rows
    per_ch_bits = 128 * 8 + 16
    tile = (1024 * 8 - 4 * (128 + 16)) // per_ch_bits
    assert tile == 7
    fc1_tiled = next(l for l in tiled["layers"] if l["name"] == "fc1")["counts"]
    fc1_plain = next(l for l in plain["layers"] if l["name"] == "fc1")["counts"]
    assert fc1_plain["global_buffer.spike_read"] == spikes_into_fc1 * 4  # ceil(16 / 4) passes
    assert fc1_tiled["global_buffer.spike_read"] == spikes_into_fc1 * (2 + 2 + 1)
    assert fc1.output_shape == (16,)
    assert tiled["totals"]["synaptic_ops"] == plain["totals"]["synaptic_ops"]
    assert dram_bits(tiled) < dram_bits(plain)


def test_weight_tiling_needs_layer_major_and_changes_nothing_when_all_fits(tiny_trace):
    from sim.errors import ParameterError

    big = ["components.global_buffer.capacity_bytes=1048576"]
    with open_trace(tiny_trace) as tr:
        (plain,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", overrides=big, progress=False)
        (tiled,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm",
                          overrides=big + ["mapping.snn_weight_tiling=true"], progress=False)
        assert plain["counts"] == tiled["counts"]
        with pytest.raises(ParameterError, match="snn_weight_tiling"):
            replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm",
                   overrides=["mapping.snn_weight_tiling=true", "mapping.loop_order=time_major"], progress=False)
