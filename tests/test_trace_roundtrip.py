"""Write -> read round trips of random traces: every stored event comes back bit-exact."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.trace import FORMAT_VERSION, LayerSpec, TraceMeta, TraceWriter, open_trace
from sim.trace.schema import conv_output_hw, with_graph
from sim.trace.stats import layer_stats


@st.composite
def random_network(draw):
    """A random chain conv -> [pool] -> flatten -> linear -> readout with valid geometry."""
    T = draw(st.integers(1, 8))
    c = draw(st.integers(1, 3))
    h = draw(st.integers(3, 9))
    w = draw(st.integers(3, 9))
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, 1))
    oc = draw(st.integers(1, 5))
    oh, ow = conv_output_hw(h, w, (k, k), (s, s), (p, p))
    if oh < 1 or ow < 1:
        oh, ow, k, s, p = h, w, 1, 1, 0
    layers = [LayerSpec("conv1", "conv2d", (c, h, w), (oc, oh, ow), (k, k), (s, s), (p, p), act_scale=1 / T)]
    shape = (oc, oh, ow)
    if oh >= 2 and ow >= 2 and draw(st.booleans()):
        ph, pw = conv_output_hw(oh, ow, (2, 2), (2, 2), (0, 0))
        layers.append(LayerSpec("pool1", "avgpool", shape, (oc, ph, pw), (2, 2), (2, 2), (0, 0), act_scale=1 / T))
        shape = (oc, ph, pw)
    flat = int(np.prod(shape))
    hidden = draw(st.integers(1, 12))
    layers += [LayerSpec("flatten", "flatten", shape, (flat,), output="passthrough"),
               LayerSpec("fc1", "linear", (flat,), (hidden,), act_scale=1 / T, has_bias=True),
               LayerSpec("fc2", "linear", (hidden,), (3,), output="potential")]
    return T, (c, h, w), layers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=random_network(), n=st.integers(1, 3), seed=st.integers(0, 2**16), data=st.data())
def test_random_trace_round_trips_bit_exact(tmp_path_factory, net, n, seed, data):
    T, input_shape, layers = net
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("rt") / "t.h5"
    meta = TraceMeta(model="random", dataset="none", T=T, n_samples=n, input_shape=input_shape)
    written = []
    with TraceWriter(path, meta, layers) as w:
        for layer in layers:
            if layer.n_weights:
                w.set_weights(layer.name, rng.integers(-128, 128, layer.weight_shape), 0.5,
                              bias=rng.normal(size=layer.output_shape[0]) if layer.has_bias else None)
        for i in range(n):
            density = data.draw(st.floats(0.0, 1.0))
            spikes = {l.name: rng.random((T, *l.output_shape)) < density for l in layers if l.output == "spikes"}
            acts = {name: s.sum(axis=0).astype(np.uint8) for name, s in spikes.items()}
            pots = {"fc2": rng.normal(size=3)}
            x = rng.random(input_shape).astype(np.float32)
            w.write_sample(i, label=i, input=x, spikes=spikes, activations=acts, potentials=pots)
            written.append((x, spikes, acts, pots))
    with open_trace(path) as tr:
        assert tr.T == T and tr.n_samples == n and tr.layers == with_graph(layers, meta.neuron)
        assert tr.labels().tolist() == list(range(n))
        for i, (x, spikes, acts, pots) in enumerate(written):
            np.testing.assert_array_equal(tr.input(i), x)
            for name, s in spikes.items():
                np.testing.assert_array_equal(tr.spikes(name, i), s)
                np.testing.assert_array_equal(tr.activations(name, i), acts[name])
            np.testing.assert_allclose(tr.potential("fc2", i), pots["fc2"].astype(np.float32))
            # fc1 consumes the flattened events of the layer before the passthrough
            prev = [l for l in layers if l.output == "spikes" and l.name != "fc1"][-1]
            np.testing.assert_array_equal(tr.input_spikes("fc1", i), spikes[prev.name].reshape(T, -1))
        stats = {s.name: s for s in layer_stats(tr)}
        for name in spikes:
            assert stats[name].spike_count == sum(int(s[name].sum()) for _, s, _, _ in written)


def test_writer_leaves_nothing_when_a_sample_is_missing(tmp_path):
    layers = [LayerSpec("fc1", "linear", (4,), (2,), act_scale=0.5)]
    meta = TraceMeta(model="m", dataset="d", T=2, n_samples=2, input_shape=(4,))
    path = tmp_path / "partial.h5"
    try:
        with TraceWriter(path, meta, layers) as w:
            w.write_sample(0, spikes={"fc1": np.zeros((2, 2), bool)}, activations={"fc1": np.zeros(2)})
    except ValueError as exc:
        assert "never written" in str(exc)
    else:
        raise AssertionError("closing with a missing sample must fail")
    assert list(tmp_path.iterdir()) == []


def test_writer_leaves_nothing_on_exception(tmp_path):
    layers = [LayerSpec("fc1", "linear", (4,), (2,), act_scale=0.5)]
    meta = TraceMeta(model="m", dataset="d", T=2, n_samples=1, input_shape=(4,))
    try:
        with TraceWriter(tmp_path / "x.h5", meta, layers) as w:
            w.write_sample(0, spikes={"fc1": np.zeros((3, 2), bool)}, activations={"fc1": np.zeros(2)})
    except ValueError:
        pass
    assert list(tmp_path.iterdir()) == []


def _one_layer(T=2, n=1, **meta):
    layers = [LayerSpec("fc1", "linear", (4,), (3,), act_scale=1 / T),
              LayerSpec("fc2", "linear", (3,), (2,), output="potential")]
    return layers, TraceMeta(model="m", dataset="d", T=T, n_samples=n, input_shape=(4,), **meta)


def test_writer_refuses_levels_the_reader_would_reject_and_leaves_nothing(tmp_path):
    import pytest

    layers, meta = _one_layer(twin_levels="spike_counts")
    spikes = np.array([[1, 0, 0], [1, 0, 0]], dtype=bool)
    for levels, match in (([3, 0, 0], "0..2"), ([-1, 0, 0], "0..2"), ([1.5, 0, 0], "0..2"),
                          ([1, 0, 0], "spike counts")):
        with pytest.raises(ValueError, match=match):
            with TraceWriter(tmp_path / "x.h5", meta, layers) as w:
                w.write_sample(0, input=np.zeros(4), spikes={"fc1": spikes}, activations={"fc1": np.array(levels)})
        assert list(tmp_path.iterdir()) == []


def test_writer_refuses_a_trace_over_the_limits_before_creating_a_file(tmp_path):
    import pytest

    from sim.errors import TraceFormatError

    layers, meta = _one_layer(T=70000)
    with pytest.raises(TraceFormatError, match="T: 70000 is over the limit of 65535"):
        TraceWriter(tmp_path / "x.h5", meta, layers)
    layers, meta = _one_layer()
    with pytest.raises(TraceFormatError, match="input: a direct-encoded trace stores its analog input"):
        TraceWriter(tmp_path / "x.h5", meta, layers, with_input=False)
    assert list(tmp_path.iterdir()) == []


def test_checksums_of_what_was_written_are_what_the_reader_recomputes(tmp_path):
    from sim.trace.integrity import meta_digest, row_digest

    import h5py

    layers, meta = _one_layer(n=2)
    path = tmp_path / "c.h5"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    with TraceWriter(path, meta, layers) as w:
        w.set_weights("fc1", np.ones((3, 4)), 0.5)
        w.set_weights("fc2", np.full((2, 3), -2), 0.25)
        for i in range(2):
            w.write_sample(i, input=x[i], spikes={"fc1": np.zeros((2, 3), bool)}, activations={"fc1": np.zeros(3)})
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION == 3
        assert [bytes(d) for d in f["input"].attrs["sha256"]] == [bytes(row_digest(r)) for r in x]
        # an unwritten readout row holds HDF5's fill value 0, and its checksum says so
        assert bytes(f["layers/001_fc2/potential"].attrs["sha256"][1]) == bytes(row_digest(np.zeros(2, np.float32)))
        assert list(f["layers/000_fc1/weight"].attrs["range"]) == [1, 1]
        stored = f.attrs["meta_sha256"]
    with open_trace(path) as tr:
        tr.verify()
    assert len(stored) == 32 and meta_digest([("/", {"a": 1})]).shape == (32,)
