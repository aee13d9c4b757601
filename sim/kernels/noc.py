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
def _pattern_walk(cg, pix, in_w, out_c_per, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, group_of_neuron,
                  counts, touched, n_touched):
    """Count, per neuron group, the targets of input pixel ``pix`` in conv group ``cg``
    (tap ky of a kernel dilated by dh sits dh * ky pixels down)."""
    y, x = pix // in_w, pix % in_w
    for co in range(out_c_per):
        c = cg * out_c_per + co
        for ky in range(kh):
            ty = y + ph - ky * dh
            if ty < 0 or ty % sh:
                continue
            oy = ty // sh
            if oy >= out_h:
                continue
            for kx in range(kw):
                tx = x + pw - kx * dw
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
def destination_patterns(in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, conv_groups, out_c_per,
                         group_of_neuron, n_groups):
    """Neuron groups reached by each (conv group, input pixel) "pattern", and the synapses
    into each.

    A conv (or a pool, with one output channel per conv group, or linear, as a 1x1 conv of
    a 1x1 map) input element ``(c, y, x)`` uses pattern ``cg * in_h * in_w + y * in_w + x``
    with ``cg`` its conv group: every input channel of a conv group reaches the same output
    neurons. (dh, dw): the conv's dilation (1, 1 otherwise). Returns CSR (ptr int64
    [n_patterns + 1], group int32 [nnz], synapses int64 [nnz]); groups appear in
    first-reached order.
    """
    n_pat = conv_groups * in_h * in_w
    counts = np.zeros(n_groups, dtype=np.int64)
    touched = np.zeros(n_groups, dtype=np.int64)
    ptr = np.zeros(n_pat + 1, dtype=np.int64)
    for p in range(n_pat):
        n = _pattern_walk(p // (in_h * in_w), p % (in_h * in_w), in_w, out_c_per, out_h, out_w,
                          kh, kw, sh, sw, ph, pw, dh, dw, group_of_neuron, counts, touched, 0)
        ptr[p + 1] = ptr[p] + n
        for j in range(n):
            counts[touched[j]] = 0
    group = np.zeros(ptr[n_pat], dtype=np.int32)
    syn = np.zeros(ptr[n_pat], dtype=np.int64)
    for p in range(n_pat):
        n = _pattern_walk(p // (in_h * in_w), p % (in_h * in_w), in_w, out_c_per, out_h, out_w,
                          kh, kw, sh, sw, ph, pw, dh, dw, group_of_neuron, counts, touched, 0)
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
def _link_loads(de, dw, ds, dn, width, height, load):
    """``load[t, 4 * node + direction]`` from the difference arrays of route_events: per row
    y the east and west links (slot y * (width + 1) + x), per column x the south and north
    links (slot x * (height + 1) + y); a link's load is the running sum along its line."""
    for t in range(load.shape[0]):
        for y in range(height):
            e = 0
            w = 0
            for x in range(width):
                e += de[t, y * (width + 1) + x]
                w += dw[t, y * (width + 1) + x]
                load[t, 4 * (y * width + x) + EAST] = e
                load[t, 4 * (y * width + x) + WEST] = w
        for x in range(width):
            so = 0
            no = 0
            for y in range(height):
                so += ds[t, x * (height + 1) + y]
                no += dn[t, x * (height + 1) + y]
                load[t, 4 * (y * width + x) + SOUTH] = so
                load[t, 4 * (y * width + x) + NORTH] = no


@njit(cache=True)
def _tree(de, dw, ds, dn, t, sx, sy, first, last, pat_group, group_node, width, height, flits, up, down):
    """Load one multicast event's XY tree from (sx, sy) to the nodes of groups
    ``pat_group[first:last]`` (difference arrays, as route_events): along the source row to
    the farthest destination east and west, then along each destination column to its
    farthest destination north and south; each link once."""
    east = 0
    west = 0
    for j in range(first, last):
        d = group_node[pat_group[j]]
        if d < 0:
            continue
        x, y = d % width, d // width
        east = max(east, x - sx)
        west = max(west, sx - x)
        up[x] = max(up[x], max(sy - y, 0) + 1)  # north extent + 1: 0 marks a column not reached
        down[x] = max(down[x], y - sy)
    row = sy * (width + 1)
    if east:
        de[t, row + sx] += flits
        de[t, row + sx + east] -= flits
    if west:
        dw[t, row + sx - west + 1] += flits
        dw[t, row + sx + 1] -= flits
    for x in range(sx - west, sx + east + 1):
        if up[x] == 0:
            continue
        col = x * (height + 1)
        if down[x]:
            ds[t, col + sy] += flits
            ds[t, col + sy + down[x]] -= flits
        if up[x] > 1:
            dn[t, col + sy - up[x] + 2] += flits
            dn[t, col + sy + 1] -= flits
        up[x] = 0
        down[x] = 0


@njit(cache=True)
def route_events(ptr, idx, pattern_of_input, src_node, pat_ptr, pat_group, pat_syn, group_node,
                 el_packets, el_ew, el_ns, el_longest, width, n_nodes, flits, multicast):
    """Traffic and core work of the active input elements ``idx[ptr[t]:ptr[t+1]]`` per step.

    Returns per step (int64 [T] each): events, packets, east-west hops, north-south hops,
    synaptic ops, longest path (hops); per step and node: synaptic ops (int64 [T, n_nodes]);
    per step and directed link: flits (int64 [T, 4 * n_nodes]). Hop counts are per packet
    (multiply by flits for flit-hops). Each packet's XY path (unicast), or each event's XY
    tree (multicast, :func:`_tree`), loads its links through difference arrays along rows
    and columns (:func:`_link_loads`), so the work is per (event, destination core), not per
    hop.
    """
    T = ptr.shape[0] - 1
    height = n_nodes // width
    W1, H1 = width + 1, height + 1
    events = np.zeros(T, dtype=np.int64)
    packets = np.zeros(T, dtype=np.int64)
    ew = np.zeros(T, dtype=np.int64)
    ns = np.zeros(T, dtype=np.int64)
    synops = np.zeros(T, dtype=np.int64)
    longest = np.zeros(T, dtype=np.int64)
    core_syn = np.zeros((T, n_nodes), dtype=np.int64)
    de = np.zeros((T, height * W1), dtype=np.int64)
    dw = np.zeros((T, height * W1), dtype=np.int64)
    ds = np.zeros((T, width * H1), dtype=np.int64)
    dn = np.zeros((T, width * H1), dtype=np.int64)
    up = np.zeros(width, dtype=np.int64)
    down = np.zeros(width, dtype=np.int64)
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
                if multicast:
                    continue
                x, y = d % width, d // width
                if x > sx:  # east links leave x = sx .. x-1 of row sy
                    de[t, sy * W1 + sx] += flits
                    de[t, sy * W1 + x] -= flits
                elif x < sx:  # west links leave x+1 .. sx
                    dw[t, sy * W1 + x + 1] += flits
                    dw[t, sy * W1 + sx + 1] -= flits
                if y > sy:  # then south links leave y = sy .. y-1 of column x
                    ds[t, x * H1 + sy] += flits
                    ds[t, x * H1 + y] -= flits
                elif y < sy:  # or north links leave y+1 .. sy
                    dn[t, x * H1 + y + 1] += flits
                    dn[t, x * H1 + sy + 1] -= flits
            if multicast:
                _tree(de, dw, ds, dn, t, sx, sy, pat_ptr[p], pat_ptr[p + 1], pat_group, group_node, width,
                      height, flits, up, down)
    load = np.zeros((T, 4 * n_nodes), dtype=np.int64)
    _link_loads(de, dw, ds, dn, width, height, load)
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
