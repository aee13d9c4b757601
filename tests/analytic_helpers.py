"""Shared by the closed-form tests: small random networks written as traces, and the
check that a closed form's prediction equals a replay's report exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sim.trace import LayerSpec, TraceMeta, TraceWriter
from sim.trace.schema import conv_output_hw


# --- random small networks ------------------------------------------------------------------
@st.composite
def window(draw, kind, c, h, w):
    """A conv/pool layer on a (c, h, w) map with a random kernel, stride, padding, groups."""
    kh, kw = draw(st.integers(1, min(3, h + 2))), draw(st.integers(1, min(3, w + 2)))
    # padding below the kernel, and enough of it that the window fits the padded map
    pad = (draw(st.integers(max(0, -(-(kh - h) // 2)), min(1, kh - 1))),
           draw(st.integers(max(0, -(-(kw - w) // 2)), min(1, kw - 1))))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    oh, ow = conv_output_hw(h, w, (kh, kw), stride, pad)
    if kind == "avgpool":
        return dict(kind=kind, out=(c, oh, ow), kernel=(kh, kw), stride=stride, padding=pad, groups=1)
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
    k = groups * draw(st.integers(1, 3))
    return dict(kind=kind, out=(k, oh, ow), kernel=(kh, kw), stride=stride, padding=pad, groups=groups)


@st.composite
def networks(draw):
    """Layers of a small random network: conv, optional conv/pool, flatten, optional hidden
    linear layer, linear readout; every map at least 1x1."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    layers, cur = [], shape
    kinds = ["conv2d"] + draw(st.lists(st.sampled_from(["conv2d", "avgpool"]), max_size=2))
    for i, kind in enumerate(kinds):
        g = draw(window(kind, *cur))
        layers.append(LayerSpec(f"l{i}", kind, cur, g["out"], g["kernel"], g["stride"], g["padding"],
                                g["groups"]))
        cur = g["out"]
    flat = int(np.prod(cur))
    layers.append(LayerSpec("flat", "flatten", cur, (flat,), output="passthrough"))
    if draw(st.booleans()):
        hidden = draw(st.integers(1, 6))
        layers.append(LayerSpec("fc", "linear", (flat,), (hidden,)))
        flat = hidden
    layers.append(LayerSpec("out", "linear", (flat,), (draw(st.integers(1, 4)),), output="potential"))
    return shape, layers


def write_random_trace(path, shape, layers, T, n, seed):
    """Random spikes, and ANN levels drawn independently of them (the closed form must take
    each statistic from the right source), and an input image with zeros."""
    rng = np.random.default_rng(seed)
    meta = TraceMeta(model="random", dataset="random", T=T, n_samples=n, input_shape=shape, synthetic=True)
    with TraceWriter(path, meta, layers) as w:
        for i in range(n):
            spikes, acts, pots = {}, {}, {}
            for l in layers:
                if l.output == "spikes":
                    spikes[l.name] = rng.random((T, *l.output_shape)) < rng.uniform(0.05, 0.6)
                    acts[l.name] = rng.integers(0, T + 1, l.output_shape) * (rng.random(l.output_shape) < 0.5)
                elif l.output == "potential":
                    pots[l.name] = rng.normal(size=l.output_shape)
            image = rng.random(shape) * (rng.random(shape) < 0.7)
            w.write_sample(i, input=image, spikes=spikes, activations=acts, potentials=pots)


_TMP = tempfile.TemporaryDirectory(prefix="analytic_mh_")  # removed at interpreter exit


def random_trace(data):
    shape, layers = data.draw(networks())
    T, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 2))
    path = Path(_TMP.name) / "random.h5"
    write_random_trace(path, shape, layers, T, n, data.draw(st.integers(0, 2**16)))
    return path


FAST = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


def assert_matches_report(pred, report):
    assert [l.name for l in pred.layers] == [l["name"] for l in report["layers"]]
    for p, r in zip(pred.layers, report["layers"]):
        assert p.counts == r["counts"], p.name
        assert p.bits == r["bits"], p.name
        assert p.totals == r["totals"], p.name
        assert p.energy_pj == pytest.approx(r["energy_pj"], rel=1e-12, abs=1e-9), p.name
    assert pred.counts() == report["counts"]
    assert pred.energy_pj == pytest.approx(report["energy_pj"]["total"], rel=1e-12)


# --- traces whose input is stored spikes (rate or event encoding) ----------------------------
def write_rate_graph(path, T: int = 3, n: int = 2, seed: int = 0, model: str = "rate_graph") -> Path:
    """A rate-encoded SNN-only LIF graph whose residual add reads the network's input spikes
    beside a conv's: conv1(input) + input -> add1 -> maxpool -> flatten -> fc (readout)."""
    from sim.trace.schema import NeuronModel

    rng = np.random.default_rng(seed)
    layers = [LayerSpec("conv1", "conv2d", (2, 4, 4), (2, 4, 4), (3, 3), (1, 1), (1, 1), inputs=("input",)),
              LayerSpec("add1", "add", (2, 4, 4), (2, 4, 4), inputs=("conv1", "input")),
              LayerSpec("pool", "maxpool", (2, 4, 4), (2, 2, 2), (2, 2), (2, 2), (0, 0), inputs=("add1",)),
              LayerSpec("flatten", "flatten", (2, 2, 2), (8,), output="passthrough", inputs=("pool",)),
              LayerSpec("fc", "linear", (8,), (3,), output="potential", inputs=("flatten",))]
    meta = TraceMeta(model=model, dataset="synthetic", T=T, n_samples=n, input_shape=(2, 4, 4),
                     encoding="rate", synthetic=True, twin_levels="derived",
                     neuron=NeuronModel("LIF", 1.0, "zero", 0.5))
    with TraceWriter(path, meta, layers, with_input=False) as w:
        for i in range(n):
            x, c, a = (rng.random((T, 2, 4, 4)) < 0.3 for _ in range(3))
            pool = a.reshape(T, 2, 2, 2, 2, 2).any(axis=(3, 5))
            pots = rng.normal(size=3)
            w.write_sample(i, input_spikes=x, spikes={"conv1": c, "add1": a, "pool": pool},
                           potentials={"fc": pots}, ann_outputs={"fc": pots})
    return Path(path)


def write_spike_input_traces(directory) -> dict[str, Path]:
    """Small traces whose first layers read the network's stored input spikes: tiny_resnet
    event-encoded, tiny (a chain) rate-encoded, and a graph in which a conv and an add both
    read the input (``input_add``, LIF, derived twin). Names -> paths."""
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    directory = Path(directory)
    out = {}
    for model, encoding in (("tiny_resnet", "events"), ("tiny", "rate")):
        layers, shape = model_layers(model, 4)
        out[model] = directory / f"{model}_{encoding}.h5"
        write_synthetic_trace(out[model], layers, shape, model=model, T=4, n_samples=2, rate=0.2, seed=3,
                              with_weights=False, encoding=encoding)
    out["input_add"] = write_rate_graph(directory / "input_add_rate.h5", seed=5, model="input_add")
    return out


def stored_input_reads(tr, name: str) -> tuple[int, int]:
    """(input spikes, input levels) that layer ``name`` of ``tr`` reads from the network's
    stored input, over every sample, counted from the trace itself: the unpacked
    ``input_spikes`` and the length of ``input_levels``, once per operand that is the input."""
    from sim.trace.schema import SPIKE_BITORDER

    k = sum(s is None for s in tr.sources(name))
    n_in = int(np.prod(tr.meta.input_shape))
    spikes = sum(int(np.unpackbits(tr.input_spikes_packed(i), axis=1, count=n_in, bitorder=SPIKE_BITORDER).sum())
                 for i in range(tr.n_samples))
    levels = sum(tr.input_levels(i).size for i in range(tr.n_samples))
    return k * spikes, k * levels
