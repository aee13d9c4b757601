"""Counting kernels over real events: fan-out per input, spikes and synaptic events per step,
non-zero activations and the MACs they cause.

All counts are exact int64. The kernels take flat arrays; ``sim.workload`` prepares them.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def conv_positions_fanout(in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh=1, dw=1):
    """For each input pixel (y, x), the number of output pixels whose window covers it.

    Output pixel (oy, ox) reads input (oy*sh - ph + ky*dh, ox*sw - pw + kx*dw) for ky < kh,
    kx < kw (dh, dw: the dilation); padding positions are not inputs, so border pixels are
    covered by fewer windows. Returns int64 [in_h * in_w].
    """
    count = np.zeros(in_h * in_w, dtype=np.int64)
    for oy in range(out_h):
        for ky in range(kh):
            y = oy * sh - ph + ky * dh
            if y < 0 or y >= in_h:
                continue
            for ox in range(out_w):
                for kx in range(kw):
                    x = ox * sw - pw + kx * dw
                    if 0 <= x < in_w:
                        count[y * in_w + x] += 1
    return count


def input_fanout(layer) -> np.ndarray:
    """Synapses leaving each input element of ``layer`` (C-order flat, int64).

    conv2d: (out_channels / groups) x covering windows (dilated taps); avgpool and maxpool:
    covering windows (one channel); linear: out_features for every input; add: 1 for every
    element of every operand (its inputs concatenated in ``inputs`` order); flatten: 0.
    """
    if layer.kind in ("conv2d", "avgpool", "maxpool"):
        c, h, w = layer.input_shape
        _, oh, ow = layer.output_shape
        per_pixel = conv_positions_fanout(h, w, oh, ow, *layer.kernel, *layer.stride, *layer.padding,
                                          *layer.dilation_hw)
        per_channel = layer.output_shape[0] // layer.groups if layer.kind == "conv2d" else 1
        return np.tile(per_pixel * per_channel, c)
    if layer.kind == "linear":
        return np.full(layer.n_inputs, layer.output_shape[0], dtype=np.int64)
    if layer.kind == "add":
        return np.ones(layer.n_inputs, dtype=np.int64)
    return np.zeros(layer.n_inputs, dtype=np.int64)


@njit(cache=True)
def spike_event_counts(packed, n_inputs, fanout):
    """Spikes and synaptic events per time step from packed spikes (little bit order).

    packed: uint8 [T, nbytes]; bit b of byte j is input element j*8 + b.
    fanout: int64 [n_inputs], synapses leaving each input element.
    Returns (spikes int64 [T], synaptic_events int64 [T]); each spike counts its fan-out once.
    """
    T, nbytes = packed.shape
    spikes = np.zeros(T, dtype=np.int64)
    events = np.zeros(T, dtype=np.int64)
    for t in range(T):
        s = 0
        e = 0
        for j in range(nbytes):
            byte = packed[t, j]
            if byte == 0:
                continue
            for b in range(8):
                if (byte >> b) & 1:
                    i = j * 8 + b
                    if i < n_inputs:
                        s += 1
                        e += fanout[i]
        spikes[t] = s
        events[t] = e
    return spikes, events


@njit(cache=True)
def popcount_rows(packed):
    """Set bits per row of a packed uint8 [T, nbytes] array (spikes per time step).

    Padding bits past the last element are zero by construction of numpy.packbits.
    """
    T, nbytes = packed.shape
    out = np.zeros(T, dtype=np.int64)
    for t in range(T):
        s = 0
        for j in range(nbytes):
            byte = np.int64(packed[t, j])
            while byte:
                s += byte & 1
                byte >>= 1
        out[t] = s
    return out


@njit(cache=True)
def ann_input_counts(levels, fanout):
    """Non-zero inputs and the MACs they cause with zero-skipping.

    levels: integer [n_inputs] activation levels (any non-negative integer dtype, flat).
    Returns (nonzero_inputs, macs_skipping_zeros, sum_of_levels) as int64.
    """
    nnz = 0
    macs = 0
    total = 0
    for i in range(levels.shape[0]):
        v = levels[i]
        if v != 0:
            nnz += 1
            macs += fanout[i]
            total += v
    return nnz, macs, total
