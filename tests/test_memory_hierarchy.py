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
    assert rep["totals"]["macs"] == conv_macs + fc_macs   # average-pool sums are adds, not MACs
    assert rep["totals"]["adds"] == pool_adds


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
            # an average pool's spike events are adds (fixed weights), not synaptic ops
            assert s["totals"]["adds" if layer.kind == "avgpool" else "synaptic_ops"] == syn
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


# --- time: a tile pipeline scheduled by hand ----------------------------------------------------
def _two_layer_trace(path, n_samples: int):
    """image (1, 2, 2) -> flatten -> fc1 linear 4 -> 4 (spiking) -> out linear 4 -> 2 (readout)."""
    from sim.trace import LayerSpec, TraceMeta, TraceWriter

    layers = [LayerSpec("flat", "flatten", (1, 2, 2), (4,), output="passthrough"),
              LayerSpec("fc1", "linear", (4,), (4,)),
              LayerSpec("out", "linear", (4,), (2,), output="potential")]
    T = 2
    meta = TraceMeta(model="hand", dataset="hand", T=T, n_samples=n_samples, input_shape=(1, 2, 2), synthetic=True)
    with TraceWriter(path, meta, layers) as w:
        for i in range(n_samples):
            w.write_sample(i, input=np.ones((1, 2, 2)), spikes={"fc1": np.zeros((T, 4), bool)},
                           activations={"fc1": np.zeros(4, np.uint8)}, potentials={"out": np.zeros(2)})
    return path


HAND_SPEC = ["mapping.zero_skipping=false",  # dense ANN: every count is data-independent
             "components.dram.bandwidth_bits_per_cycle=16", "components.dram.latency_cycles=1",
             "components.global_buffer.capacity_bytes=3072", "components.global_buffer.width_bits=24",
             "components.global_buffer.banks=1", "components.global_buffer.ports=1",
             "components.global_buffer.latency_cycles=1",
             "components.pe_array.rows=2", "components.pe_array.cols=1", "components.pe_array.ops_per_cycle=1"]


def test_the_tile_pipeline_runs_as_scheduled_by_hand(tmp_path):
    """Two samples of a two-layer ANN through the double-buffered tile pipeline, scheduled by
    hand from docs/architectures/memory_hierarchy.md ("Time") and ``TilePipeline``.

    Spec: DRAM 16 bits/cycle, latency 1 -> a transfer of b bits takes 1 + ceil(b/16) cycles.
    Buffer: 24-bit words, 1 bank, 1 port, latency 1 -> 24 bits per port per cycle, an access
    of b bits takes 1 + ceil(b/24) cycles. PE array 2 x 1, 1 op per cycle -> 2 ops per cycle.
    Bits: weights, image and ANN activations 8, partial sums 24. The 3 KiB buffer holds
    everything (no spill, every weight resident, fetched once per sample).

    Tiles (docs "ANN twin, per layer"; one tile per channel pass, the work split evenly: every
    pass fills the 2 x 1 array, so its fold-aware PE ops are its own ops):
      fc1: K = 4 channels on 2 PE rows -> 2 passes; 1 output pixel on 1 column -> 1 pass.
        DRAM in: 16 weights + 4 image values = 20 x 8 = 160 bits.
        buffer: 16 weight writes (the fill) + 16 weight reads + 4 inputs x 2 passes + 4 outputs
                = (16 + 16 + 8 + 4) x 8 = 352 bits.
        PE ops: 16 dense MACs + 4 compares (clamp/quantise) = 20.
        -> tiles A1, A2 of 80 DRAM bits, 176 buffer bits, 10 ops each.
      out (readout, 2 channels -> 1 pass): DRAM in 8 weights x 8 = 64 bits; buffer
        (8 + 8 + 4) x 8 + 2 outputs x 24 = 208 bits; 8 MACs; write-back 2 x 24 = 48 bits.
        -> tile B.
    Durations:
      DRAM: A 1 + 5 = 6, B 1 + 4 = 5, write-back 1 + 3 = 4.
      buffer fill (the loader writes what it fetched, on a port): A 1 + 4 = 5, B 1 + 3 = 4;
        write-back read 1 + 2 = 3.
      compute = max(PE, buffer): A max(ceil(10/2), 1 + ceil(176/24)) = max(5, 9) = 9,
                                 B max(ceil(8/2), 1 + ceil(208/24)) = max(4, 10) = 10.
    Schedule of one sample (the port is shared, so fills wait for compute and vice versa):
      loader  A1: DRAM [0, 6), fill [6, 11), ready 11
      compute A1: waits 0 -> 11 (stall 11), runs [11, 20)
      loader  A2: DRAM [11, 17); fill asks for the port at 17, compute holds it until 20:
                  fill [20, 25), ready 25
      compute A2: waits 20 -> 25 (stall 5), runs [25, 34)
      loader  B : DRAM [25, 30); fill waits for the port until 34: fill [34, 38), ready 38
      compute B : waits 34 -> 38 (stall 4), runs [38, 48)
      write-back: buffer [48, 51), DRAM [51, 55); the sample ends at 55.
    So 55 cycles and 11 + 5 + 4 = 20 stall cycles per sample; fc1's tiles complete at 20
    and 34 (34 cycles), out's at 48, plus the write-back to 55 (21 cycles). The second
    sample starts when the first has ended and repeats the schedule."""
    path = _two_layer_trace(tmp_path / "hand.h5", n_samples=2)
    with open_trace(path) as tr:
        (rep,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm", overrides=HAND_SPEC, progress=False)
    assert rep["extra"]["plan"]["fc1"]["channel_passes"] == 2 and rep["extra"]["plan"]["out"]["channel_passes"] == 1
    assert rep["cycles"] == 2 * 55
    assert rep["stall_cycles"] == 2 * (11 + 5 + 4)
    assert {l["name"]: l["cycles"] for l in rep["layers"]} == {"fc1": 2 * 34, "out": 2 * 21}
    # busy cycles: DRAM 6 + 6 + 5 + 4; buffer fills 5 + 5 + 4, compute 9 + 9 + 10, write-back 3;
    # PE 5 + 5 + 4 -- per sample, over 55 cycles
    assert rep["utilisation"]["dram"] == pytest.approx(21 / 55)
    assert rep["utilisation"]["global_buffer"] == pytest.approx(45 / 55)
    assert rep["utilisation"]["pe_array"] == pytest.approx(14 / 55)


def test_the_loader_fetches_only_one_tile_ahead_of_the_compute():
    """docs/architectures/memory_hierarchy.md: 'A loader fetches tile i+1 from DRAM while the PE
    array computes tile i' (``DOUBLE_BUFFERED``: 'the PE array computes one while the next
    loads'). Two tile buffers: tile i+2 can load only once tile i's compute has freed its buffer.

    DRAM 64 bits/cycle, latency 1; buffer 320 bits per port per cycle, latency 1, 2 ports (a
    fill never waits for a port); a 1 x 1 PE array. Tiles 1-3 fetch 64 bits (DRAM 2 + fill 2)
    and compute 100 ops; tile 4 fetches 6400 bits (DRAM 1 + 100 = 101, fill 1 + 20 = 21).
      tile 1 ready 4; compute [4, 104)                  stall 4
      tile 2 loads [4, 8) into the second buffer
      tile 3 loads when tile 1 frees its buffer: [104, 108); compute 2 [104, 204)
      tile 4 loads when tile 2 frees its buffer: [204, 326); compute 3 [204, 304)
      compute 4 waits 304 -> 326 (stall 22), runs [326, 426)
    -> 426 cycles, 26 stall cycles."""
    import simpy

    from sim.engine.components import Dram, PEArray, Sram, Tile, TilePipeline

    env = simpy.Environment()
    pipe = TilePipeline(Dram(env, 64, 64, 1), Sram(env, 640, 1, 2, 1), PEArray(env, 1, 1, 1))
    tiles = [Tile("a", 64, 0, 100, 0) for _ in range(3)] + [Tile("a", 6400, 0, 100, 0)]
    stats = pipe.run(tiles)
    assert (stats.cycles, stats.stall_cycles) == (426, 26)
