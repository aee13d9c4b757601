"""Counting kernels of the neuromorphic mesh: which cores an input event reaches, and the
packets, hops and per-link flits the real events cause under XY routing.

Cores sit on a W x H mesh; node ``n`` is at ``(x, y) = (n % W, n // W)``. Directed link
``4 * n + d`` leaves node n towards east (d=0, x+1), west (1, x-1), south (2, y+1) or north
(3, y-1). XY routing moves along x first, then along y. All counts are exact int64; each
kernel has a brute-force twin in tests/test_noc_kernels.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EAST, WEST, SOUTH, NORTH = 0, 1, 2, 3


@njit(cache=True)
def _pattern_walk(cg, pix, in_w, out_c_per, out_h, out_w, kh, kw, sh, sw, ph, pw, group_of_neuron,
                  counts, touched, n_touched):
    """Count, per neuron group, the targets of input pixel ``pix`` in conv group ``cg``."""
    y, x = pix // in_w, pix % in_w
    for co in range(out_c_per):
        c = cg * out_c_per + co
        for ky in range(kh):
            ty = y + ph - ky
            if ty < 0 or ty % sh:
                continue
            oy = ty // sh
            if oy >= out_h:
                continue
            for kx in range(kw):
                tx = x + pw - kx
                if tx < 0 or tx % sw:
                    continue
                ox = tx // sw
                if ox >= out_w:
                    continue
                g = group_of_neuron[(c * out_h + oy) * out_w + ox]
                if counts[g] == 0:
                    touched[n_touched] = g
                    n_touched += 1
                counts[g] += 1
    return n_touched


@njit(cache=True)
def destination_patterns(in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw, conv_groups, out_c_per,
                         group_of_neuron, n_groups):
    """Neuron groups reached by each (conv group, input pixel) "pattern", and the synapses
    into each.

    A conv (or average pool, with one output channel per conv group, or linear, as a 1x1
    conv of a 1x1 map) input element ``(c, y, x)`` uses pattern ``cg * in_h * in_w + y *
    in_w + x`` with ``cg`` its conv group: every input channel of a conv group reaches the
    same output neurons. Returns CSR (ptr int64 [n_patterns + 1], group int32 [nnz],
    synapses int64 [nnz]); groups appear in first-reached order.
    """
    n_pat = conv_groups * in_h * in_w
    counts = np.zeros(n_groups, dtype=np.int64)
    touched = np.zeros(n_groups, dtype=np.int64)
    ptr = np.zeros(n_pat + 1, dtype=np.int64)
    for p in range(n_pat):
        n = _pattern_walk(p // (in_h * in_w), p % (in_h * in_w), in_w, out_c_per, out_h, out_w,
                          kh, kw, sh, sw, ph, pw, group_of_neuron, counts, touched, 0)
        ptr[p + 1] = ptr[p] + n
        for j in range(n):
            counts[touched[j]] = 0
    group = np.zeros(ptr[n_pat], dtype=np.int32)
    syn = np.zeros(ptr[n_pat], dtype=np.int64)
    for p in range(n_pat):
        n = _pattern_walk(p // (in_h * in_w), p % (in_h * in_w), in_w, out_c_per, out_h, out_w,
                          kh, kw, sh, sw, ph, pw, group_of_neuron, counts, touched, 0)
        for j in range(n):
            g = touched[j]
            group[ptr[p] + j] = g
            syn[ptr[p] + j] = counts[g]
            counts[g] = 0
    return ptr, group, syn


@njit(cache=True)
def element_routes(pattern_of_input, src_node, pat_ptr, pat_group, group_node, width, multicast):
    """Static route figures of every input element: (packets, east-west hops, north-south
    hops, longest path in hops), each int64 [n_inputs].

    Unicast: one packet per destination core, hops = Manhattan distance. Multicast: one
    packet per event, and the XY tree (union of the XY paths) counts each link once.
    Groups whose node is -1 are not on the mesh now (another segment) and are skipped.
    """
    n = pattern_of_input.shape[0]
    packets = np.zeros(n, dtype=np.int64)
    ew = np.zeros(n, dtype=np.int64)
    ns = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    up = np.zeros(width, dtype=np.int64)
    down = np.zeros(width, dtype=np.int64)
    for i in range(n):
        p = pattern_of_input[i]
        sx, sy = src_node[i] % width, src_node[i] // width
        east = 0
        west = 0
        reached = False
        for j in range(pat_ptr[p], pat_ptr[p + 1]):
            d = group_node[pat_group[j]]
            if d < 0:
                continue
            reached = True
            dx, dy = d % width - sx, d // width - sy
            h = abs(dx) + abs(dy)
            if h > longest[i]:
                longest[i] = h
            if multicast:
                east = max(east, dx)
                west = max(west, -dx)
                c = d % width
                up[c] = max(up[c], -dy)
                down[c] = max(down[c], dy)
            else:
                packets[i] += 1
                ew[i] += abs(dx)
                ns[i] += abs(dy)
        if multicast and reached:
            packets[i] = 1
            ew[i] = east + west
            for c in range(width):
                ns[i] += up[c] + down[c]
                up[c] = 0
                down[c] = 0
    return packets, ew, ns, longest


@njit(cache=True)
def spike_indices(packed, n_inputs):
    """Indices of the set bits of packed spikes (little bit order), per time step.

    packed: uint8 [T, nbytes]. Returns CSR (ptr int64 [T + 1], index int64 [spikes])."""
    T, nbytes = packed.shape
    total = 0
    for t in range(T):
        for j in range(nbytes):
            b = packed[t, j]
            while b:
                total += b & 1
                b >>= 1
    ptr = np.zeros(T + 1, dtype=np.int64)
    idx = np.zeros(total, dtype=np.int64)
    k = 0
    for t in range(T):
        for j in range(nbytes):
            byte = packed[t, j]
            if byte == 0:
                continue
            for b in range(8):
                if (byte >> b) & 1:
                    i = j * 8 + b
                    if i < n_inputs:
                        idx[k] = i
                        k += 1
        ptr[t + 1] = k
    return ptr, idx[:k]


@njit(cache=True)
def _walk(sx, sy, dx, dy, width, flits, load, stamp, mark, t):
    """Add ``flits`` to every link of the XY path (sx, sy) -> (dx, dy) at step t; with
    ``stamp >= 0`` a link already marked with this stamp is not loaded again (multicast)."""
    x, y = sx, sy
    while x != dx:
        d = 0 if dx > x else 1
        link = 4 * (y * width + x) + d
        if stamp < 0 or mark[link] != stamp:
            load[t, link] += flits
            if stamp >= 0:
                mark[link] = stamp
        x += 1 if d == 0 else -1
    while y != dy:
        d = 2 if dy > y else 3
        link = 4 * (y * width + x) + d
        if stamp < 0 or mark[link] != stamp:
            load[t, link] += flits
            if stamp >= 0:
                mark[link] = stamp
        y += 1 if d == 2 else -1


@njit(cache=True)
def route_events(ptr, idx, pattern_of_input, src_node, pat_ptr, pat_group, pat_syn, group_node,
                 el_packets, el_ew, el_ns, el_longest, width, n_nodes, flits, multicast):
    """Traffic and core work of the active input elements ``idx[ptr[t]:ptr[t+1]]`` per step.

    Returns per step (int64 [T] each): events, packets, east-west hops, north-south hops,
    synaptic ops, longest path (hops); per step and node: synaptic ops (int64 [T, n_nodes]);
    per step and directed link: flits (int64 [T, 4 * n_nodes]). Hop counts are per packet
    (multiply by flits for flit-hops).
    """
    T = ptr.shape[0] - 1
    events = np.zeros(T, dtype=np.int64)
    packets = np.zeros(T, dtype=np.int64)
    ew = np.zeros(T, dtype=np.int64)
    ns = np.zeros(T, dtype=np.int64)
    synops = np.zeros(T, dtype=np.int64)
    longest = np.zeros(T, dtype=np.int64)
    core_syn = np.zeros((T, n_nodes), dtype=np.int64)
    load = np.zeros((T, 4 * n_nodes), dtype=np.int64)
    mark = np.full(4 * n_nodes, -1, dtype=np.int64)
    stamp = 0
    for t in range(T):
        for k in range(ptr[t], ptr[t + 1]):
            i = idx[k]
            p = pattern_of_input[i]
            events[t] += 1
            packets[t] += el_packets[i]
            ew[t] += el_ew[i]
            ns[t] += el_ns[i]
            if el_longest[i] > longest[t]:
                longest[t] = el_longest[i]
            sx, sy = src_node[i] % width, src_node[i] // width
            for j in range(pat_ptr[p], pat_ptr[p + 1]):
                d = group_node[pat_group[j]]
                if d < 0:
                    continue
                core_syn[t, d] += pat_syn[j]
                synops[t] += pat_syn[j]
                _walk(sx, sy, d % width, d // width, width, flits, load, stamp if multicast else -1, mark, t)
            stamp += 1
    return events, packets, ew, ns, synops, longest, core_syn, load


@njit(cache=True)
def hop_histogram(event_counts, pattern_of_input, src_node, pat_ptr, pat_group, group_node, width,
                  max_hops):
    """Path lengths of the delivered (event, destination core) pairs: int64 [max_hops + 1],
    entry h = pairs whose XY path has h hops, each input element weighted by its events."""
    hist = np.zeros(max_hops + 1, dtype=np.int64)
    for i in range(event_counts.shape[0]):
        c = event_counts[i]
        if c == 0:
            continue
        p = pattern_of_input[i]
        sx, sy = src_node[i] % width, src_node[i] // width
        for j in range(pat_ptr[p], pat_ptr[p + 1]):
            d = group_node[pat_group[j]]
            if d < 0:
                continue
            hist[abs(d % width - sx) + abs(d // width - sy)] += c
    return hist
