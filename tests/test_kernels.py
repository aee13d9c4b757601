"""Every numba kernel against its plain-Python twin, on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.kernels import ann_input_counts, conv_positions_fanout, input_fanout, popcount_rows, spike_event_counts
from sim.trace import LayerSpec
from sim.trace.schema import conv_output_hw

import brute


@st.composite
def conv_layers(draw):
    g = draw(st.sampled_from([1, 2]))
    c = g * draw(st.integers(1, 2))
    k_out = g * draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    oh, ow = conv_output_hw(h, w, (kh, kw), (sh, sw), (ph, pw))
    if oh < 1 or ow < 1 or kh > h + 2 * ph or kw > w + 2 * pw:
        kh = kw = 1
        ph = pw = 0
        oh, ow = conv_output_hw(h, w, (1, 1), (sh, sw), (0, 0))
    kind = draw(st.sampled_from(["conv2d", "avgpool"]))
    if kind == "avgpool":
        return LayerSpec("p", "avgpool", (c, h, w), (c, oh, ow), (kh, kw), (sh, sw), (ph, pw))
    return LayerSpec("c", "conv2d", (c, h, w), (k_out, oh, ow), (kh, kw), (sh, sw), (ph, pw), groups=g)


@settings(max_examples=60, deadline=None)
@given(layer=conv_layers())
def test_each_input_fans_out_to_the_synapses_the_geometry_defines(layer):
    np.testing.assert_array_equal(input_fanout(layer), brute.fanout(layer))
    # and the fan-out sums to the in-bounds synapses (padding taps are not synapses)
    assert input_fanout(layer).sum() == sum(1 for _ in brute.synapses(layer))


def test_linear_fanout_is_out_features():
    layer = LayerSpec("fc", "linear", (7,), (5,))
    np.testing.assert_array_equal(input_fanout(layer), brute.fanout(layer))


def test_positions_fanout_on_a_padded_border():
    # 3x3 kernel, padding 1, stride 1 on 4x4: corners are covered by 4 windows, centre by 9
    cover = conv_positions_fanout(4, 4, 4, 4, 3, 3, 1, 1, 1, 1).reshape(4, 4)
    assert cover[0, 0] == 4 and cover[1, 1] == 9 and cover[0, 1] == 6


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 6), n=st.integers(1, 70), p=st.floats(0, 1), seed=st.integers(0, 1000))
def test_spike_event_counts_match_a_python_loop(T, n, p, seed):
    rng = np.random.default_rng(seed)
    spikes = rng.random((T, n)) < p
    packed = np.packbits(spikes, axis=1, bitorder="little")
    fan = rng.integers(0, 50, n).astype(np.int64)
    s, e = spike_event_counts(packed, n, fan)
    for t in range(T):
        assert s[t] == sum(1 for i in range(n) if spikes[t, i])
        assert e[t] == sum(int(fan[i]) for i in range(n) if spikes[t, i])
    np.testing.assert_array_equal(popcount_rows(packed), spikes.sum(axis=1))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 100), seed=st.integers(0, 1000), dtype=st.sampled_from([np.uint8, np.uint16, np.float32]))
def test_ann_input_counts_match_a_python_loop(n, seed, dtype):
    rng = np.random.default_rng(seed)
    levels = (rng.integers(0, 4, n) * (rng.random(n) < 0.5)).astype(dtype)
    fan = rng.integers(0, 30, n).astype(np.int64)
    nnz, macs, total = ann_input_counts(levels, fan)
    assert nnz == sum(1 for v in levels if v != 0)
    assert macs == sum(int(f) for v, f in zip(levels, fan) if v != 0)
    assert total == int(sum(levels))
