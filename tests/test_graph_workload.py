"""Layer graphs (format 3) against brute force: the fan-out of every layer kind, the events of
random small graphs counted by the workload and by the closed-form statistics, the synthetic
max-pool's spike OR, ResNet-18's dense MACs from its geometry, and the exact expectation of a
max-pool's spikes.

The references (tests/brute.py) loop over every output neuron, window tap and synapse in
plain Python and read the spikes and levels straight from the trace."""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.analytic import layer_stats
from sim.kernels import input_fanout
from sim.trace import LayerSpec
from sim.trace.reader import Trace
from sim.trace.schema import NeuronModel, conv_output_hw
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace
from sim.workload import Workload, layer_totals

import brute

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
LIF = NeuronModel(type="LIF", threshold=1.0, reset="zero", leak=0.5)


# -- geometry ---------------------------------------------------------------------------------
def _axis(draw, n, k_max=3, s_max=4, pad_max=2, dilate=False):
    """(kernel, stride, padding, dilation) along one axis of ``n`` pixels whose window fits the
    padded input (so at least one output position exists)."""
    k, s, p = draw(st.integers(1, k_max)), draw(st.integers(1, s_max)), draw(st.integers(0, pad_max))
    d = draw(st.integers(1, 3)) if dilate else 1
    if d * (k - 1) + 1 > n + 2 * p:
        d, k = 1, min(k, n + 2 * p)
    return k, s, p, d


def _windowed(draw, kind, name, src, in_shape, *, neuron=None, s_max=4, max_out=3):
    """A conv2d (random groups, dilation), avgpool or maxpool layer reading ``src``."""
    c, h, w = in_shape
    ay = _axis(draw, h, s_max=s_max, dilate=kind == "conv2d")
    ax = _axis(draw, w, s_max=s_max, dilate=kind == "conv2d")
    kernel, stride, padding, dilation = zip(ay, ax)
    oh, ow = conv_output_hw(h, w, kernel, stride, padding, dilation)
    if kind == "conv2d":
        g = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        k_out = g * draw(st.integers(1, max(1, max_out // g)))
        return LayerSpec(name, kind, in_shape, (k_out, oh, ow), kernel, stride, padding, groups=g,
                         inputs=(src,), dilation=dilation, neuron=neuron)
    return LayerSpec(name, kind, in_shape, (c, oh, ow), kernel, stride, padding, inputs=(src,),
                     neuron=neuron if kind == "avgpool" else None)


@st.composite
def windowed_layers(draw):
    """One conv2d (groups, dilation > 1, padding, stride up to 4 > kernel), avgpool or maxpool."""
    kind = draw(st.sampled_from(["conv2d", "conv2d", "avgpool", "maxpool"]))
    c = draw(st.sampled_from([1, 2, 3, 4, 6]))
    shape = (c, draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return _windowed(draw, kind, "l", "input", shape, max_out=6)


@st.composite
def add_layers(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    k = draw(st.integers(2, 4))
    return LayerSpec("a", "add", shape, shape, inputs=tuple(f"x{j}" for j in range(k)))


def _geometry_is_maximal(layer):
    """Output positions are every window start that fits the padded input, and no more."""
    for n, o, k, s, p, d in zip(layer.input_shape[1:], layer.output_shape[1:], layer.kernel, layer.stride,
                                layer.padding, layer.dilation_hw):
        span = d * (k - 1) + 1
        assert (o - 1) * s + span <= n + 2 * p < o * s + span


@settings(max_examples=60, deadline=None)
@given(layer=windowed_layers())
def test_windowed_fanout_counts_every_in_bounds_tap_of_every_window(layer):
    _geometry_is_maximal(layer)
    want = brute.fanout(layer)
    np.testing.assert_array_equal(input_fanout(layer), want)
    np.testing.assert_array_equal(layer_stats.input_fanout(layer), want)
    # a dense pass computes every tap, padding included; only conv/avgpool taps are MACs
    assert layer.dense_ops == brute.dense_taps(layer)
    assert layer.dense_macs == (brute.dense_taps(layer) if layer.kind != "maxpool" else 0)


@settings(max_examples=20, deadline=None)
@given(layer=add_layers())
def test_add_fanout_is_one_per_operand_element(layer):
    want = brute.fanout(layer)
    assert want.shape == (layer.n_operands * math.prod(layer.input_shape),) and (want == 1).all()
    np.testing.assert_array_equal(input_fanout(layer), want)
    np.testing.assert_array_equal(layer_stats.input_fanout(layer), want)
    assert layer.dense_ops == brute.dense_taps(layer) == layer.n_operands * layer.n_neurons
    assert layer.dense_macs == 0


def test_dilated_tap_skips_the_pixels_between():
    # a 1x3 kernel with dilation 2 on a 1x5 row: output 0 reads pixels 0, 2, 4 only
    layer = LayerSpec("c", "conv2d", (1, 1, 5), (1, 1, 1), (1, 3), (1, 1), (0, 0), inputs=("input",),
                      dilation=(1, 2))
    assert list(brute.fanout(layer)) == [1, 0, 1, 0, 1]
    assert list(input_fanout(layer)) == list(layer_stats.input_fanout(layer)) == [1, 0, 1, 0, 1]


# -- random graphs ----------------------------------------------------------------------------
@st.composite
def graphs(draw):
    """A small random layer graph: an analog-input conv stem, then convs, pools, adds of
    earlier same-shape layers (each layer reads any earlier spiking layer, so outputs fan out
    to several consumers); every end of the graph read by a flatten + linear readout, the last
    maybe through a hidden linear layer or an add of the flatten and a linear layer.
    Returns (layers, input_shape)."""
    input_shape = (draw(st.integers(1, 2)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    layers = [_windowed(draw, "conv2d", "stem", "input", input_shape, s_max=2)]
    for j in range(draw(st.integers(2, 5))):
        spiking = [l for l in layers if l.output == "spikes"]
        kind = draw(st.sampled_from(["conv2d", "maxpool", "avgpool", "add", "add", "input_conv"]))
        if kind == "input_conv":   # a second layer driven by the analog input
            layers.append(_windowed(draw, "conv2d", f"in{j}", "input", input_shape, s_max=2))
            continue
        src = draw(st.sampled_from(spiking))
        if kind != "add":
            layers.append(_windowed(draw, kind, f"{kind}{j}", src.name, src.output_shape, s_max=2))
            continue
        same = [l for l in spiking if l.output_shape == src.output_shape and l is not src]
        if not same or draw(st.booleans()):   # a shape-preserving conv as the other operand
            c = src.output_shape[0]
            d = draw(st.integers(1, 2))
            k = draw(st.sampled_from([1, 3]))
            conv = LayerSpec(f"res{j}", "conv2d", src.output_shape, src.output_shape, (k, k), (1, 1),
                             ((k // 2) * d,) * 2, groups=draw(st.sampled_from([g for g in (1, c) if c % g == 0])),
                             inputs=(src.name,), dilation=(d, d))
            layers.append(conv)
            same.append(conv)
        operands = [src, *draw(st.permutations(same))[:draw(st.integers(1, 2))]]
        operands = draw(st.permutations(operands))
        layers.append(LayerSpec(f"add{j}", "add", src.output_shape, src.output_shape,
                                inputs=tuple(l.name for l in operands)))
    consumed = {src for l in layers for src in l.inputs}
    ends = [l for l in layers if l.name not in consumed]
    for j, end in enumerate(ends):   # every end of the graph is read by a readout (the last via a hidden layer)
        flat = LayerSpec(f"flatten{j}", "flatten", end.output_shape, (end.n_neurons,), output="passthrough",
                         inputs=(end.name,))
        layers.append(flat)
        prev = flat
        tail = draw(st.sampled_from(["readout", "hidden", "residual"])) if end is ends[-1] else "readout"
        if tail == "hidden":
            prev = LayerSpec("fc_hidden", "linear", (prev.output_shape[0],), (draw(st.integers(1, 4)),),
                             inputs=(prev.name,))
            layers.append(prev)
        elif tail == "residual" and end.n_neurons <= 32:   # an add of a flatten and a linear layer
            hidden = LayerSpec("fc_hidden", "linear", flat.output_shape, flat.output_shape, inputs=(flat.name,))
            prev = LayerSpec("fc_add", "add", flat.output_shape, flat.output_shape,
                             inputs=draw(st.permutations([flat.name, hidden.name])))
            layers += [hidden, prev]
        layers.append(LayerSpec(f"readout{j}", "linear", (prev.output_shape[0],), (draw(st.integers(1, 3)),),
                                output="potential", inputs=(prev.name,)))
    return layers, input_shape


def _write_pair(tmp: Path, layers, input_shape, T: int, rate: float, seed: int) -> tuple[Path, Path]:
    """The same graph as a recorded-twin IF trace and an SNN-only LIF one (same seed: same spikes)."""
    if_path, lif_path = tmp / "if.h5", tmp / "lif.h5"
    write_synthetic_trace(if_path, layers, input_shape, model="graph", T=T, n_samples=2, rate=rate, seed=seed,
                          with_weights=False)
    lif = [replace(l, neuron=LIF) if l.has_neurons else l for l in layers]
    write_synthetic_trace(lif_path, lif, input_shape, model="graph", T=T, n_samples=2, rate=rate, seed=seed,
                          with_weights=False)
    return if_path, lif_path


graph_traces = st.tuples(graphs(), st.integers(1, 4), st.floats(0.05, 0.7), st.integers(0, 2**16))


def _traces(case, tmp):
    (layers, input_shape), T, rate, seed = case
    return _write_pair(Path(tmp), layers, input_shape, T, rate, seed)


@FAST
@given(case=graph_traces)
def test_graph_layer_events_equal_a_walk_over_every_synapse(case):
    with tempfile.TemporaryDirectory() as tmp:
        for path in _traces(case, tmp):
            with Trace(path, open_timeout=0) as tr:
                wl = Workload(tr)
                syn = {l.name: list(brute.synapses(l)) for l in wl.layers}
                index = {l.name: k for k, l in enumerate(wl.layers)}
                want_sources = [[None if s == "input" else index[s] for s in brute.operands(tr, l)] for l in wl.layers]
                assert wl.sources == want_sources
                assert wl.is_chain == (want_sources == [[k - 1 if k else None] for k in range(len(wl.layers))])
                assert wl.consumers == [[j for j, s in enumerate(want_sources) if k in s] for k in range(len(wl.layers))]
                for i in range(tr.n_samples):
                    se = wl.sample(i)
                    for k, layer in enumerate(wl.layers):
                        want = brute.layer_events(tr, layer, i, syn[layer.name])
                        ev = se.layers[k]
                        got = {"in_spikes": ev.in_spikes.tolist(), "synops": ev.synops.tolist(),
                               "out_spikes": ev.out_spikes.tolist(), "ann_nnz_in": ev.ann_nnz_in,
                               "ann_macs": ev.ann_macs, "dense_macs": ev.dense_macs,
                               "analog_input": ev.analog_input}
                        assert got == {key: want[key] for key in got}, (path.name, layer.name, i)
                        assert se.input_nonzero(k).tolist() == want["nonzero"], layer.name
                        if not want["analog_input"]:
                            ptr, idx = se.input_spike_indices(k)
                            rows = [sorted(idx[ptr[t]:ptr[t + 1]].tolist()) for t in range(tr.T)]
                            assert rows == want["active"], layer.name


@FAST
@given(case=graph_traces)
def test_closed_form_statistics_equal_the_workload_sums(case):
    with tempfile.TemporaryDirectory() as tmp:
        for path in _traces(case, tmp):
            with Trace(path, open_timeout=0) as tr:
                wl = Workload(tr)
                events = [wl.sample(i).layers for i in range(tr.n_samples)]
                stats = layer_stats.trace_event_stats(tr)
                assert [s.name for s in stats] == [l.name for l in wl.layers]
                for k, (layer, st_) in enumerate(zip(wl.layers, stats)):
                    evs = [e[k] for e in events]
                    assert st_.analog_input == evs[0].analog_input
                    assert st_.spikes_in == sum(int(e.in_spikes.sum()) for e in evs), layer.name
                    assert st_.synaptic_events == sum(int(e.synops.sum()) for e in evs), layer.name
                    assert st_.spikes_out == sum(int(e.out_spikes.sum()) for e in evs), layer.name
                    assert st_.ann_nonzero_inputs == sum(e.ann_nnz_in for e in evs), layer.name
                    assert st_.ann_macs == sum(e.ann_macs for e in evs), layer.name
                    for key, attr in (("spikes_in", "in_spikes"), ("synaptic_events", "synops"),
                                      ("spikes_out", "out_spikes")):
                        np.testing.assert_array_equal(st_.per_step[key], sum(getattr(e, attr) for e in evs))
                    # per input element: the operands' spikes, concatenated in ``inputs`` order
                    ops = brute.operands(tr, layer)
                    if ops != ["input"]:
                        per_el = sum(np.concatenate([tr.spikes(s, i).reshape(tr.T, -1).sum(axis=0) for s in ops])
                                     for i in range(tr.n_samples))
                        np.testing.assert_array_equal(st_.per_element["spikes_in"], per_el)


@FAST
@given(case=graph_traces)
def test_synthetic_maxpool_fires_the_or_of_its_window_and_twins_count_spikes(case):
    with tempfile.TemporaryDirectory() as tmp:
        if_path, lif_path = _traces(case, tmp)
        with Trace(if_path, open_timeout=0) as tr_if, Trace(lif_path, open_timeout=0) as tr_lif:
            assert (tr_if.twin, tr_lif.twin) == ("recorded", "derived")
            spiking = [l for l in tr_if.layers if l.output == "spikes"]
            for i in range(tr_if.n_samples):
                for layer in spiking:
                    s = tr_if.spikes(layer.name, i)
                    # the same seed gives the same spikes whatever the neuron model says
                    np.testing.assert_array_equal(tr_lif.spikes(layer.name, i), s)
                    counts = s.sum(axis=0)
                    np.testing.assert_array_equal(tr_lif.activations(layer.name, i), counts)
                    np.testing.assert_array_equal(tr_if.activations(layer.name, i), counts)
                    if layer.kind == "maxpool":
                        (src,) = brute.operands(tr_if, layer)
                        want = brute.or_pool(tr_if.spikes(src, i), layer)
                        np.testing.assert_array_equal(s.reshape(tr_if.T, -1), want)


# -- ResNet-18 ----------------------------------------------------------------------------------
#: CIFAR ResNet-18 from the issue, by hand: (in channels, out channels, kernel, resolution
#: divisor) of every conv after the stem (3x3, 3 -> 64 at 32x32). Stages of two basic blocks,
#: 64/128/256/512 channels, strides 1/2/2/2; a 1x1 shortcut conv where the shape changes.
RESNET18_CONVS = [
    (64, 64, 3, 1), (64, 64, 3, 1), (64, 64, 3, 1), (64, 64, 3, 1),
    (64, 128, 3, 2), (128, 128, 3, 2), (64, 128, 1, 2), (128, 128, 3, 2), (128, 128, 3, 2),
    (128, 256, 3, 4), (256, 256, 3, 4), (128, 256, 1, 4), (256, 256, 3, 4), (256, 256, 3, 4),
    (256, 512, 3, 8), (512, 512, 3, 8), (256, 512, 1, 8), (512, 512, 3, 8), (512, 512, 3, 8),
]
#: (channels, resolution divisor) of the eight residual adds
RESNET18_ADDS = [(64, 1), (64, 1), (128, 2), (128, 2), (256, 4), (256, 4), (512, 8), (512, 8)]


def resnet18_by_hand(maxpool: bool) -> dict[str, int]:
    """Dense ops of one pass: MACs of the convs and Linear(512, 10), the global average pool's
    fixed-weight sums, the residual adds (two operands each) and the max-pool's compares (3x3
    window, stride 2, padding 1 after the stem: the stages run at 16x16 instead of 32x32)."""
    side = 16 if maxpool else 32
    stem = 32 * 32 * 64 * 3 * 3 * 3
    convs = sum((side // div) ** 2 * cout * cin * k * k for cin, cout, k, div in RESNET18_CONVS)
    last = side // 8
    return {"macs": stem + convs + 512 * 10,
            "avgpool": 512 * last * last,
            "adds": sum(2 * ch * (side // div) ** 2 for ch, div in RESNET18_ADDS),
            "compares": 64 * 16 * 16 * 3 * 3 if maxpool else 0}


def test_resnet18_dense_macs_equal_the_cifar_geometry():
    layers, input_shape = model_layers("resnet18", 6)
    assert input_shape == (3, 32, 32)
    hand = resnet18_by_hand(maxpool=False)
    assert hand["macs"] == 555_422_720   # the well-known 0.56 GMAC of CIFAR ResNet-18
    assert sum(l.dense_macs for l in layers if l.kind in ("conv2d", "linear")) == hand["macs"]
    assert sum(l.dense_macs for l in layers if l.kind == "avgpool") == hand["avgpool"] == 512 * 16
    assert sum(l.dense_ops for l in layers if l.kind == "add") == hand["adds"]
    assert [l.kind for l in layers].count("add") == 8 and "maxpool" not in [l.kind for l in layers]
    assert all(l.dense_macs == 0 for l in layers if l.kind in ("add", "flatten"))


@pytest.fixture(scope="module")
def resnet18_maxpool(tmp_path_factory):
    layers, input_shape = model_layers("resnet18", 2, maxpool=True)
    path = tmp_path_factory.mktemp("r18") / "resnet18_maxpool.h5"
    write_synthetic_trace(path, layers, input_shape, model="resnet18", T=2, n_samples=1, rate=0.1, seed=3,
                          with_weights=False)
    return path


@pytest.mark.parametrize("mode,zero_skipping", [("ann", False), ("ann", True), ("snn", False), ("snn", True)])
def test_resnet18_adds_and_compares_are_counted_apart_from_macs(resnet18_maxpool, mode, zero_skipping):
    with Trace(resnet18_maxpool, open_timeout=0) as tr:
        wl = Workload(tr)
        events = wl.sample(0).layers
        per_layer = [layer_totals(l, ev, mode, tr.T, zero_skipping) for l, ev in zip(wl.layers, events)]
    total = {key: sum(t[key] for t in per_layer) for key in per_layer[0]}
    by_kind = lambda kind: [(l, ev, t) for l, ev, t in zip(wl.layers, events, per_layer) if l.kind == kind]  # noqa: E731
    adds, pools, avg = by_kind("add"), by_kind("maxpool"), by_kind("avgpool")
    assert len(adds) == 8 and len(pools) == 1 and len(avg) == 1
    for _, _, t in adds + pools + avg:   # never inside MACs or the synaptic ops of a conv (pool sums are adds)
        assert t["macs"] == 0 and t["synaptic_ops"] == 0
    assert by_kind("maxpool")[0][2]["neuron_updates"] == 0
    hand = resnet18_by_hand(maxpool=True)
    mac_layers = [(l, ev) for l, ev in zip(wl.layers, events) if l.kind in ("conv2d", "linear")]
    if mode == "ann" and not zero_skipping:
        assert total["macs"] == hand["macs"]
        assert total["adds"] == hand["adds"] + hand["avgpool"]
        assert total["compares"] == hand["compares"]
    elif mode == "ann":
        assert total["macs"] == sum(ev.ann_macs for _, ev in mac_layers)
        assert total["adds"] == sum(ev.ann_macs for _, ev, _ in adds + avg) > 0
        assert total["compares"] == sum(ev.ann_macs for _, ev, _ in pools) > 0
    else:
        (stem, stem_ev), = [(l, ev) for l, ev in mac_layers if ev.analog_input]
        assert stem.name == "conv1"
        assert total["macs"] == (stem_ev.ann_macs if zero_skipping else stem.dense_macs)
        assert total["synaptic_ops"] == sum(int(ev.synops.sum()) for _, ev in mac_layers)
        assert total["adds"] == sum(int(ev.synops.sum()) for _, ev, _ in adds + avg) > 0
        assert total["compares"] == sum(int(ev.synops.sum()) for _, ev, _ in pools) > 0


# -- expectation of a max-pool --------------------------------------------------------------------
POOLS = {  # (input shape, kernel, stride, padding)
    "2x2 window on 2x2": ((1, 2, 2), (2, 2), (2, 2), (0, 0)),
    "3x3 padded windows on 2x2": ((1, 2, 2), (3, 3), (1, 1), (1, 1)),
    "overlapping 1x2 windows on 1x3": ((1, 1, 3), (1, 2), (1, 1), (0, 0)),
    "two channels, 1x2 windows stride 2 on 1x2": ((2, 1, 2), (1, 2), (1, 2), (0, 0)),
}


def _pool_graph(input_shape, kernel, stride, padding):
    c, h, w = input_shape
    oh, ow = conv_output_hw(h, w, kernel, stride, padding)
    stem = LayerSpec("stem", "conv2d", input_shape, input_shape, (1, 1), (1, 1), (0, 0), inputs=("input",))
    pool = LayerSpec("pool", "maxpool", input_shape, (c, oh, ow), kernel, stride, padding, inputs=("stem",))
    flat = LayerSpec("flatten", "flatten", pool.output_shape, (pool.n_neurons,), output="passthrough",
                     inputs=("pool",))
    fc = LayerSpec("fc", "linear", (pool.n_neurons,), (2,), output="potential", inputs=("flatten",))
    return [stem, pool, flat, fc]


@settings(max_examples=20, deadline=None)
@given(pool=st.sampled_from(sorted(POOLS)), T=st.integers(1, 3), rate=st.floats(0.0, 1.0), samples=st.integers(1, 3))
def test_expected_maxpool_spikes_equal_the_enumerated_expectation(pool, T, rate, samples):
    layers = _pool_graph(*POOLS[pool])
    stats = {s.name: s for s in layer_stats.expected_event_stats(layers, T, rate, samples=samples)}
    spikes, nonzero = brute.pool_expectation(layers[1], T, rate)
    p = stats["pool"]
    assert p.spikes_out == pytest.approx(samples * spikes.sum(), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(p.per_element["spikes_out"], samples * spikes, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p.per_element["nonzero_out"], samples * nonzero, rtol=1e-9, atol=1e-12)
    # the readout behind the flatten consumes exactly those spikes and non-zero levels
    fc = stats["fc"]
    assert fc.spikes_in == pytest.approx(samples * spikes.sum(), rel=1e-9, abs=1e-12)
    assert fc.synaptic_events == pytest.approx(2 * samples * spikes.sum(), rel=1e-9, abs=1e-12)
    assert fc.ann_nonzero_inputs == pytest.approx(samples * nonzero.sum(), rel=1e-9, abs=1e-12)
