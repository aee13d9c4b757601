"""spatial_dataflow pipeline: on a hand-built network, throughput is the slowest stage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.replay import replay
from sim.trace import LayerSpec, TraceMeta, TraceWriter, open_trace

T, SAMPLES = 2, 4
# 16 analog inputs, 2 of them non-zero; fc1 fires 4 of 8 neurons every step, fc2 2 of 8
X = np.array([1, 0, 0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
L1 = np.array([2, 2, 2, 2, 0, 0, 0, 0])
L2 = np.array([2, 0, 2, 0, 0, 0, 0, 0])
# A PE holds 16 bytes; the interconnect delivers one word per PE per cycle; no latencies and a
# wide DRAM channel, so a transaction's cycles are ceil(work / PEs) plus one DRAM cycle
# where it touches DRAM (the image in, the readout out).
IDEAL_CHIP = ["components.local_memory.capacity_bytes=16", "components.local_memory.width_bits=128",
              "components.local_memory.banks=8", "components.local_memory.latency_cycles=0",
              "components.interconnect.latency_cycles=0", "components.dram.latency_cycles=0",
              "components.dram.bandwidth_bits_per_cycle=1024"]


@pytest.fixture(scope="module")
def hand_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("hand") / "hand.h5"
    layers = [LayerSpec("fc1", "linear", (16,), (8,), act_scale=1 / T),
              LayerSpec("fc2", "linear", (8,), (8,), act_scale=1 / T),
              LayerSpec("fc3", "linear", (8,), (4,), output="potential")]
    meta = TraceMeta(model="hand", dataset="hand", T=T, n_samples=SAMPLES, input_shape=(16,))
    fire = lambda levels: np.stack([levels == T] * T)  # noqa: E731  level T fires every step
    with TraceWriter(path, meta, layers) as w:
        for i in range(SAMPLES):
            w.write_sample(i, input=X, spikes={"fc1": fire(L1), "fc2": fire(L2)},
                           activations={"fc1": L1, "fc2": L2},
                           potentials={"fc3": np.zeros(4)}, ann_outputs={"fc3": np.zeros(4)})
    return path


def _run(path, mode):
    with open_trace(path) as tr:
        (rep,) = replay(tr, "spatial_dataflow", [mode], "paper_v1_45nm", overrides=IDEAL_CHIP, progress=False)
    return rep


def test_ann_pipeline_runs_at_the_pace_of_its_slowest_stage(hand_trace):
    # PEs: weights x 8 bits / 128 bits per PE -> fc1 128 w: 8, fc2 64 w: 4, fc3 32 w: 2
    # non-zero MACs: fc1 2 x 8 = 16, fc2 4 x 8 = 32, fc3 2 x 4 = 8
    stage = {"fc1": math.ceil(16 / 8) + 1, "fc2": math.ceil(32 / 4), "fc3": math.ceil(8 / 2) + 1}
    rep = _run(hand_trace, "ann")
    assert {k: v["pes"] for k, v in rep["extra"]["placement"].items()} == {"fc1": 8, "fc2": 4, "fc3": 2}
    pipe = rep["extra"]["pipeline"]
    assert pipe["stage_busy_cycles_per_sample"] == {k: float(v) for k, v in stage.items()}
    assert pipe["bottleneck_stage"] == "fc2"
    assert pipe["steady_cycles_per_sample"] == max(stage.values()) == 8
    assert pipe["first_sample_cycles"] == sum(stage.values())
    # fill once, then one sample per slowest-stage time
    assert rep["cycles"] == sum(stage.values()) + (SAMPLES - 1) * max(stage.values())
    assert rep["cycles"] == sum(l["cycles"] for l in rep["layers"])


def test_snn_pipeline_runs_at_the_pace_of_its_slowest_stage_summed_over_steps(hand_trace):
    # SNN state adds membranes (and layer 1's current): PEs fc1 (1024+64+64)/128 -> 9,
    # fc2 (512+64)/128 -> 5, fc3 (256+32)/128 -> 3.
    # fc1: t=0 16 MACs + 8 integrate + 8 reset + 8 compare, +1 DRAM cycle; t=1 without MACs
    # fc2: 4 spikes x 8 = 32 events + 8 reset + 8 compare per step; 32 words delivered
    # fc3: 2 spikes x 4 = 8 events per step; the readout leaves at the last step (+1)
    stage = {"fc1": [math.ceil(40 / 9) + 1, math.ceil(24 / 9)],
             "fc2": [math.ceil(48 / 5)] * T,
             "fc3": [math.ceil(8 / 3), math.ceil(8 / 3) + 1]}
    rep = _run(hand_trace, "snn")
    assert {k: v["pes"] for k, v in rep["extra"]["placement"].items()} == {"fc1": 9, "fc2": 5, "fc3": 3}
    pipe = rep["extra"]["pipeline"]
    assert pipe["stage_busy_cycles_per_sample"] == {k: float(sum(v)) for k, v in stage.items()}
    assert pipe["bottleneck_stage"] == "fc2"
    assert pipe["steady_cycles_per_sample"] == max(sum(v) for v in stage.values()) == 20
    assert rep["totals"]["synaptic_ops"] == SAMPLES * T * (32 + 8)


def test_a_slower_chip_moves_the_bottleneck_but_not_the_counts(hand_trace):
    fast = _run(hand_trace, "ann")
    with open_trace(hand_trace) as tr:
        (slow,) = replay(tr, "spatial_dataflow", ["ann"], "paper_v1_45nm",
                         overrides=IDEAL_CHIP + ["components.dram.bandwidth_bits_per_cycle=8"], progress=False)
    # the 128-bit image now takes 16 DRAM cycles: fc1 becomes the slowest stage, and the
    # readout's 32 bits wait for the same channel
    pipe = slow["extra"]["pipeline"]
    assert pipe["bottleneck_stage"] == "fc1"
    assert pipe["stage_busy_cycles_per_sample"]["fc1"] >= math.ceil(16 / 8) + 16
    assert pipe["steady_cycles_per_sample"] > fast["extra"]["pipeline"]["steady_cycles_per_sample"]
    assert slow["utilisation"]["dram"] > fast["utilisation"]["dram"]
    assert slow["counts"] == fast["counts"]
