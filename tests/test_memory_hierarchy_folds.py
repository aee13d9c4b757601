"""memory_hierarchy time: fold-aware PE cycles (docs/architectures/memory_hierarchy.md, "Time").

A channel pass with fewer channels than PE rows, or pixel passes with fewer pixels than PE
columns, leave PEs idle: the pass runs as long as the PEs it maps need, not ops / (rows x cols).
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.replay import replay
from sim.trace import open_trace

import brute

FOLD_ARRAY = {"rows": 4, "cols": 8}  # conv: 6 channels -> passes of 4 and 2; 4 pixels on 8 columns


def _fold_trace(path, T: int, n_samples: int, seed: int):
    """image (2, 3, 3) -> conv 2x2 -> (6, 2, 2) spiking -> flatten -> out linear 24 -> 3 (readout).
    On FOLD_ARRAY the conv's 6 channels take a full channel pass and one of 2 channels, its
    4 pixels a quarter of the columns; the readout's 3 channels and 1 pixel 3 PEs of 32."""
    from sim.trace import LayerSpec, TraceMeta, TraceWriter

    layers = [LayerSpec("c1", "conv2d", (2, 3, 3), (6, 2, 2), kernel=(2, 2), stride=(1, 1), padding=(0, 0)),
              LayerSpec("flat", "flatten", (6, 2, 2), (24,), output="passthrough"),
              LayerSpec("out", "linear", (24,), (3,), output="potential")]
    rng = np.random.default_rng(seed)
    meta = TraceMeta(model="folds", dataset="folds", T=T, n_samples=n_samples, input_shape=(2, 3, 3),
                     synthetic=True)
    with TraceWriter(path, meta, layers) as w:
        for i in range(n_samples):
            image = rng.integers(0, 3, (2, 3, 3)) * (rng.random((2, 3, 3)) < 0.6)  # zeros to skip
            spikes = rng.random((T, 6, 2, 2)) < 0.4
            w.write_sample(i, input=image, spikes={"c1": spikes},
                           activations={"c1": spikes.sum(axis=0).astype(np.uint8)},
                           potentials={"out": np.zeros(3)})
    return path, layers


def _pe_busy_cycles(report) -> int:
    return round(report["utilisation"]["pe_array"] * report["cycles"])


def _fold_spec(opc: int) -> list[str]:
    return [f"components.pe_array.{k}={v}" for k, v in {**FOLD_ARRAY, "ops_per_cycle": opc}.items()]


@pytest.mark.parametrize("timing", ["simpy", "fast"])
def test_a_dense_layer_costs_a_pass_of_its_fan_in_per_fold_however_few_pes_it_fills(tmp_path, monkeypatch,
                                                                                    timing):
    """Dense ANN on a 4 x 8 array: each channel pass x pixel pass runs as long as its busiest
    PE, which computes one output neuron: its fan-in taps plus the clamp/quantise compare.
    Enumerated PE by PE, pass by pass; not ceil(ops / 32), as if every PE were busy."""
    import math

    from sim.engine import components

    monkeypatch.setattr(components, "TIMING", timing)
    path, layers = _fold_trace(tmp_path / "folds.h5", T=2, n_samples=2, seed=0)
    rows, cols = FOLD_ARRAY["rows"], FOLD_ARRAY["cols"]
    with open_trace(path) as tr:
        (rep,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm",
                        overrides=["mapping.zero_skipping=false", *_fold_spec(1)], progress=False)
    expected, closed = 0, 0
    for layer in (l for l in layers if l.output != "passthrough"):
        K, P = (layer.output_shape[0], math.prod(layer.output_shape[1:]))
        ops = [0] * (K * P)  # per output neuron: every tap of its window (padding too), + quantise
        for _, o in brute.taps(layer):
            ops[o] += 1
        ops = [n + (1 if layer.output == "spikes" else 0) for n in ops]
        for c0 in range(0, K, rows):          # channel passes
            for p0 in range(0, P, cols):      # pixel passes
                expected += max(ops[k * P + p] for k in range(c0, min(K, c0 + rows))
                                for p in range(p0, min(P, p0 + cols)))
        closed += math.ceil(K / rows) * math.ceil(P / cols) * ops[0]  # cp * pp * F
    assert expected == closed == 2 * 9 + 1 * 24  # c1: 2 passes of 8 taps + 1; out: 24 taps
    assert _pe_busy_cycles(rep) == 2 * expected  # two samples
    assert rep["counts"]["pe_array.mac"] == 2 * (6 * 4 * 8 + 3 * 24)  # the counts are the dense MACs


def _restated_pe_cycles(ops: int, K: int, P: int, rows: int, cols: int, opc: int) -> int:
    """The fold-aware rule of docs/architectures/memory_hierarchy.md ("Time"), in exact fractions:
    pass i of k_i channels gets ops*k_i/K of the ops (rounded down, the remainder one each to
    the first passes), spread over its k_i x P neurons on a pp*cols-column array, so all
    rows*cols PEs are charged ops_i*rows*pp*cols/(k_i*P), rounded up."""
    from fractions import Fraction
    from math import ceil, floor

    cp, pp = ceil(Fraction(K, rows)), ceil(Fraction(P, cols))
    ks = [rows] * (cp - 1) + [K - (cp - 1) * rows]
    shares = [floor(Fraction(ops * k, K)) for k in ks]
    rest = ops - sum(shares)
    cycles = 0
    for i, (share, k) in enumerate(zip(shares, ks)):
        charged = ceil(Fraction((share + (i < rest)) * rows * pp * cols, k * P))
        cycles += ceil(Fraction(charged, rows * cols * opc))
    return cycles


@pytest.mark.parametrize("mode", ["ann", "snn"])
def test_sparse_layers_spread_their_ops_over_the_pes_their_folds_map(tmp_path, mode):
    """Zero-skipping ANN and SNN, T = 1 and one sample (one tile group per layer: its PE ops
    are its pe_array counts), 2 ops per PE per cycle: the PE busy cycles are the rule restated."""
    path, layers = _fold_trace(tmp_path / "folds.h5", T=1, n_samples=1, seed=1)
    with open_trace(path) as tr:
        (rep,) = replay(tr, "memory_hierarchy", [mode], "paper_v1_45nm",
                        overrides=["mapping.zero_skipping=true", *_fold_spec(2)], progress=False)
    expected = 0
    for layer in rep["layers"]:
        plan = rep["extra"]["plan"][layer["name"]]
        ops = sum(n for key, n in layer["counts"].items() if key.startswith("pe_array."))
        assert 0 < ops < plan["channels"] * plan["pixels"] * 24  # not dense
        expected += _restated_pe_cycles(ops, plan["channels"], plan["pixels"], FOLD_ARRAY["rows"],
                                        FOLD_ARRAY["cols"], 2)
    assert _pe_busy_cycles(rep) == expected


def test_a_layer_that_fills_the_array_is_charged_its_ops_split_evenly():
    from sim.architectures.base import split_evenly
    from sim.architectures.memory_hierarchy import pass_pe_ops

    for ops in (0, 1, 7, 1000, 123_457):
        assert pass_pe_ops(ops, 48, 64, 16, 16) == split_evenly(ops, 3)
        assert sum(pass_pe_ops(ops, 48, 64, 16, 16)) == ops
