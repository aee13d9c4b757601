"""Brute-force references: enumerate every synapse of a layer explicitly.

Plain Python loops over every output neuron and every tap of its window, and over every
synapse of a layer graph read from a trace; nothing here calls ``sim.kernels``,
``sim.analytic`` or ``sim.workload``, so the vectorised counters are checked against it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def taps(layer):
    """Yield (input_index or None, output_index) for every tap of every output neuron's window:
    None where the tap falls on padding (a dense array still computes it; it is no synapse).

    conv2d: the output channel's group of input channels x kh x kw dilated taps; avgpool and
    maxpool: its own channel's kh x kw window; linear: every input; add: operand k's element
    at the output's position, input index k * n + position (operands concatenated)."""
    if layer.kind == "linear":
        for o in range(layer.output_shape[0]):
            for i in range(layer.n_inputs):
                yield i, o
        return
    if layer.kind == "add":
        n = int(np.prod(layer.input_shape))
        for o in range(n):
            for k in range(layer.n_operands):
                yield k * n + o, o
        return
    if layer.kind == "flatten":
        return
    C, H, W = layer.input_shape
    K, OH, OW = layer.output_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding
    dh, dw = layer.dilation if layer.dilation else (1, 1)
    if layer.kind in ("avgpool", "maxpool"):
        in_channels_of = lambda k: [k]  # noqa: E731
    else:
        g = layer.groups
        cin, kout = C // g, K // g
        in_channels_of = lambda k: range((k // kout) * cin, (k // kout + 1) * cin)  # noqa: E731
    for k in range(K):
        for oy in range(OH):
            for ox in range(OW):
                o = (k * OH + oy) * OW + ox
                for c in in_channels_of(k):
                    for ky in range(kh):
                        for kx in range(kw):
                            y, x = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
                            if 0 <= y < H and 0 <= x < W:
                                yield (c * H + y) * W + x, o
                            else:
                                yield None, o


def synapses(layer):
    """Yield (input_index, output_index) for every synapse of a layer (padding taps dropped)."""
    for i, o in taps(layer):
        if i is not None:
            yield i, o


def dense_taps(layer) -> int:
    """Operations of one dense pass: every tap, padding included."""
    return sum(1 for _ in taps(layer))


def fanout(layer) -> np.ndarray:
    out = np.zeros(layer.n_inputs, dtype=np.int64)
    for i, _ in synapses(layer):
        out[i] += 1
    return out


def synaptic_events(layer, spikes_in: np.ndarray) -> np.ndarray:
    """Per time step, the synapses activated by the input spikes (bool [T, *input_shape])."""
    targets = fanout(layer)
    flat = spikes_in.reshape(spikes_in.shape[0], -1)
    return np.array([int(sum(targets[i] for i in np.flatnonzero(row))) for row in flat], dtype=np.int64)


def or_pool(spikes: np.ndarray, layer) -> np.ndarray:
    """A max-pool's spikes by definition: per step and output neuron, whether any input
    spike lies in its window. spikes: bool [T, *input_shape] -> bool [T, n_neurons]."""
    T = spikes.shape[0]
    flat = spikes.reshape(T, -1)
    out = np.zeros((T, layer.n_neurons), dtype=bool)
    for t in range(T):
        for i, o in synapses(layer):
            if flat[t, i]:
                out[t, o] = True
    return out


def operands(trace, layer):
    """Names of the layers (``"input"``: the network input) whose outputs ``layer`` reads, in
    ``inputs`` order, flatten followed back by walking the layer list."""
    by_name = {l.name: l for l in trace.layers}
    out = []
    for name in layer.inputs:
        while name != "input" and by_name[name].kind == "flatten":
            name = by_name[name].inputs[0]
        out.append(name)
    return out


def layer_events(trace, layer, sample: int, syn: list) -> dict:
    """What ``layer`` consumes and produces on one sample, by walking every synapse over the
    operands' spikes and levels unpacked from the file. ``syn``: ``list(synapses(layer))``."""
    T = trace.T
    ops = operands(trace, layer)
    n_in = layer.n_inputs
    if ops == ["input"]:
        x = trace.input(sample).reshape(-1)
        nonzero = [j for j in range(n_in) if x[j] != 0]
        active = [[] for _ in range(T)]
    else:
        spikes = np.concatenate([trace.spikes(s, sample).reshape(T, -1) for s in ops], axis=1)
        levels = np.concatenate([trace.activations(s, sample).reshape(-1) for s in ops])
        assert spikes.shape == (T, n_in) and levels.shape == (n_in,)
        nonzero = [j for j in range(n_in) if levels[j] != 0]
        active = [[j for j in range(n_in) if spikes[t, j]] for t in range(T)]
    nz = set(nonzero)
    sets = [set(a) for a in active]
    if layer.output == "spikes":
        fired = trace.spikes(layer.name, sample).reshape(T, -1)
        out_spikes = [sum(1 for o in range(layer.n_neurons) if fired[t, o]) for t in range(T)]
    else:
        out_spikes = [0] * T
    return {"in_spikes": [len(a) for a in active],
            "synops": [sum(1 for i, _ in syn if i in sets[t]) for t in range(T)],
            "out_spikes": out_spikes,
            "ann_nnz_in": len(nonzero),
            "ann_macs": sum(1 for i, _ in syn if i in nz),
            "dense_macs": dense_taps(layer),
            "analog_input": ops == ["input"],
            "active": active, "nonzero": nonzero}


def pool_expectation(pool, T: int, rate: float):
    """Per output neuron of the max-pool: expected spikes over T and the probability its twin
    level is non-zero, by enumerating every Binomial(T, rate) level of every input neuron with
    its probability, the IF spike trains those levels drive, and the OR over each window."""
    from sim.trace.synthetic import if_spike_train

    n = math.prod(pool.input_shape)
    spikes = np.zeros(pool.n_neurons)
    nonzero = np.zeros(pool.n_neurons)
    for levels in itertools.product(range(T + 1), repeat=n):
        prob = math.prod(math.comb(T, v) * rate ** v * (1 - rate) ** (T - v) for v in levels)
        trains = if_spike_train(np.array(levels).reshape(pool.input_shape), T)
        out = or_pool(trains, pool)
        spikes += prob * out.sum(axis=0)
        nonzero += prob * out.any(axis=0)
    return spikes, nonzero
