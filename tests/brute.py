"""Brute-force references: enumerate every synapse of a layer explicitly."""

from __future__ import annotations

import numpy as np


def synapses(layer):
    """Yield (input_index, output_index) for every synapse of a conv/pool/linear layer."""
    if layer.kind == "linear":
        for o in range(layer.output_shape[0]):
            for i in range(layer.n_inputs):
                yield i, o
        return
    C, H, W = layer.input_shape
    K, OH, OW = layer.output_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding
    if layer.kind == "avgpool":
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
                            y, x = oy * sh - ph + ky, ox * sw - pw + kx
                            if 0 <= y < H and 0 <= x < W:
                                yield (c * H + y) * W + x, o


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
