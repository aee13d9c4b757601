"""The neuromorphic mapping, re-derived in numpy from docs/architectures/neuromorphic.md:
neuron groups per core, chip configurations, placement, and per input element the static
route figures (packets, east-west and north-south hops, synapses on the mesh) that the
closed form weights by each element's events.

Nothing here imports the engine, the architectures or the kernels: destinations come from
an explicit enumeration of each layer's synapses per (conv group, input pixel) pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.analytic.closed_form import address_bits
from sim.errors import ParameterError
from sim.trace import LayerSpec


def _log2_ceil(n: int) -> int:
    return max(1, (n - 1).bit_length())


@dataclass
class MeshGeometry:
    width: int
    height: int
    flit_bits: int

    @property
    def n_nodes(self) -> int:
        return self.width * self.height

    @property
    def header_bits(self) -> int:
        """A destination router's x and y: ⌈log2 W⌉ + ⌈log2 H⌉ bits (each at least 1)."""
        return _log2_ceil(self.width) + _log2_ceil(self.height)

    def flits(self, layer: LayerSpec, payload_bits: int) -> int:
        """Flits of one address event into ``layer``: header, the source element's address
        a(n_in) and the payload, over the flit width (at least one flit)."""
        bits = self.header_bits + address_bits(layer.n_inputs) + payload_bits
        return max(1, -(-bits // self.flit_bits))


@dataclass
class Groups:
    """``gon[n]``: the group (core) of flat neuron n; ``synapse_bits[g]``: weights stored."""

    gon: np.ndarray
    synapse_bits: np.ndarray

    @property
    def n(self) -> int:
        return len(self.synapse_bits)


@dataclass
class PartFigures:
    """Groups g0:g1 of layer ``index`` in configuration ``segment``, and per input element
    of the layer: packets, east-west and north-south hops per event, and synapses it reaches
    on this part's cores. ``neurons``: the part's neurons; ``neuron_mask``: which;
    ``group_node``: the node of each group of the layer (-1: not in this part)."""

    index: int
    segment: int
    g0: int
    g1: int
    input_on_chip: bool
    output_off_chip: bool
    packets: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    synapses: np.ndarray
    neuron_mask: np.ndarray
    group_node: np.ndarray

    @property
    def neurons(self) -> int:
        return int(self.neuron_mask.sum())


def conv_view(layer: LayerSpec) -> tuple:
    """(in_c, h, w, oh, ow, kernel, stride, padding, conv groups, out channels per group):
    linear = 1x1 conv of a 1x1 map, average pool = one output channel per input channel."""
    if layer.kind == "linear":
        return layer.n_inputs, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1, layer.output_shape[0]
    c, h, w = layer.input_shape
    oc, oh, ow = layer.output_shape
    if layer.kind == "avgpool":
        return c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, c, 1
    return c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, layer.groups, oc // layer.groups


def partition(layer: LayerSpec, per_core: int, syn_bits: int, wb: int, sharing: bool, order: str, path) -> Groups:
    """Groups of at most ``per_core`` neurons whose weights fit ``syn_bits``: with weight
    sharing a group stores each output channel's kernel it touches once, else every
    neuron's fan-in. ``channel_major``: contiguous C-order runs, cut at the neuron limit and
    where the channels' kernels fill the synapse memory. ``spatial``: the channels in as few
    equal blocks as the synapse memory needs, each cut into near-equal runs of pixel-major
    neurons."""
    n, K = layer.n_neurons, layer.output_shape[0]
    pix = n // K
    unit = layer.fan_in * wb  # one channel's kernel, or one neuron's fan-in
    if unit > syn_bits:
        raise ParameterError(path, "components.synapse_memory.capacity_bytes",
                             f"{syn_bits // 8} bytes cannot hold the {layer.fan_in} weights of one "
                             f"neuron of layer {layer.name}")
    units = syn_bits // unit
    cap = per_core if sharing else min(per_core, units)
    if order == "spatial":
        bounds = np.linspace(0, K, (-(-K // units) if sharing else 1) + 1).round().astype(np.int64)
        gon = np.empty((K, pix), dtype=np.int64)
        bits, g = [], 0
        for c0, c1 in zip(bounds[:-1], bounds[1:]):
            size, width = (c1 - c0) * pix, c1 - c0
            k = -(-size // cap)
            pos = np.arange(pix)[None, :] * width + np.arange(width)[:, None]  # pixel-major order
            cuts = np.linspace(0, size, k + 1).round().astype(np.int64)
            block = np.searchsorted(cuts, pos, side="right") - 1
            gon[c0:c1] = g + block
            for j in range(k):
                members = block == j
                bits.append((int(members.any(axis=1).sum()) if sharing else int(members.sum())) * unit)
            g += k
        return Groups(gon.reshape(-1), np.array(bits, dtype=np.int64))
    starts, bits, a = [0], [], 0
    while a < n:
        if sharing:
            b = min(n, a + cap, (a // pix + units) * pix)
            bits.append(((b - 1) // pix - a // pix + 1) * unit)
        else:
            b = min(n, a + cap)
            bits.append((b - a) * unit)
        starts.append(b)
        a = b
    return Groups(np.repeat(np.arange(len(bits)), np.diff(starts)), np.array(bits, dtype=np.int64))


def _pairs(n_in: int, n_out: int, k: int, s: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(input position, output position) pairs along one axis: 0 <= i + p - o*s < k."""
    d = np.arange(n_in)[:, None] + p - np.arange(n_out)[None, :] * s
    return np.nonzero((d >= 0) & (d < k))


def destinations(layer: LayerSpec, gon: np.ndarray, n_groups: int):
    """Per input element: its pattern (conv group × input pixel: every input channel of a conv
    group reaches the same neurons), and per pattern the groups it reaches with the synapses
    into each. Returns (pattern_of_input, pattern, group, synapses), the last three flat."""
    in_c, h, w, oh, ow, k, s, p, cg, ocp = conv_view(layer)
    yi, yo = _pairs(h, oh, k[0], s[0], p[0])
    xi, xo = _pairs(w, ow, k[1], s[1], p[1])
    # every (group g, output channel co, y pair, x pair): pattern (g, y, x) -> neuron (c, oy, ox)
    G, CO, Y, X = np.meshgrid(np.arange(cg), np.arange(ocp), np.arange(len(yi)), np.arange(len(xi)),
                              indexing="ij")
    pattern = (G * h + yi[Y]) * w + xi[X]
    neuron = ((G * ocp + CO) * oh + yo[Y]) * ow + xo[X]
    key = pattern.reshape(-1) * n_groups + gon[neuron.reshape(-1)]
    uniq, syn = np.unique(key, return_counts=True)
    per_group = in_c // cg
    pattern_of_input = (np.arange(in_c) // per_group)[:, None] * (h * w) + np.arange(h * w)[None, :]
    return pattern_of_input.reshape(-1), uniq // n_groups, uniq % n_groups, syn


def segments(n_groups: list[int], cores: int) -> list[list[tuple[int, int, int]]]:
    """Chip configurations: consecutive layers packed while their groups fit; a layer with more
    groups than cores split into chunks, one configuration each. Items: (layer, g0, g1)."""
    out, cur, used = [], [], 0
    for i, g in enumerate(n_groups):
        if g > cores:
            if cur:
                out.append(cur)
            out += [[(i, a, min(g, a + cores))] for a in range(0, g, cores)]
            cur, used = [], 0
        elif used + g <= cores:
            cur.append((i, 0, g))
            used += g
        else:
            out.append(cur)
            cur, used = [(i, 0, g)], g
    if cur:
        out.append(cur)
    return out


def place(mesh: MeshGeometry, seg, placement: str, io_node: int, producers) -> dict[int, np.ndarray]:
    """Nodes of each layer's groups in one configuration: ``row_major`` in order from node 0
    (x fastest); ``nearest``: the free nodes closest (Manhattan, ties by node) to the centroid
    of the producer's nodes here, or to the I/O node."""
    out: dict[int, np.ndarray] = {}
    if placement == "row_major":
        nxt = 0
        for i, g0, g1 in seg:
            out[i] = np.arange(nxt, nxt + g1 - g0)
            nxt += g1 - g0
        return out
    nodes = np.arange(mesh.n_nodes)
    xs, ys = nodes % mesh.width, nodes // mesh.width
    free = np.ones(mesh.n_nodes, dtype=bool)
    for i, g0, g1 in seg:
        anchor = out.get(producers[i]) if producers[i] is not None else None
        if anchor is None:
            anchor = np.array([io_node])
        dist = np.abs(xs - xs[anchor].mean()) + np.abs(ys - ys[anchor].mean())
        order = np.lexsort((nodes, dist))
        out[i] = order[free[order]][: g1 - g0]
        free[out[i]] = False
    return out


def routes(mesh: MeshGeometry, src: np.ndarray, pattern_of_input, pat, grp, syn, group_node, multicast: bool):
    """Per input element: (packets, east-west hops, north-south hops, synapses) per event.
    Unicast: a packet per destination core on the mesh, each its Manhattan distance.
    Multicast: one packet per event if any core is reached; its XY tree counts each link once:
    the farthest east plus the farthest west, then per destination column the farthest north
    plus the farthest south."""
    n, W = len(pattern_of_input), mesh.width
    order = np.argsort(pat, kind="stable")
    pat, grp, syn = pat[order], grp[order], syn[order]
    ptr = np.searchsorted(pat, np.arange(pattern_of_input.max() + 2))
    start, stop = ptr[pattern_of_input], ptr[pattern_of_input + 1]
    counts = stop - start
    elem = np.repeat(np.arange(n), counts)
    j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(start, counts)
    d = group_node[grp[j]]
    on = d >= 0
    elem, d, s = elem[on], d[on], syn[j][on]
    dx, dy = d % W - src[elem] % W, d // W - src[elem] // W
    synapses = np.bincount(elem, weights=s, minlength=n).astype(np.int64)
    if not multicast:
        return (np.bincount(elem, minlength=n).astype(np.int64),
                np.bincount(elem, weights=np.abs(dx), minlength=n).astype(np.int64),
                np.bincount(elem, weights=np.abs(dy), minlength=n).astype(np.int64), synapses)
    packets = (np.bincount(elem, minlength=n) > 0).astype(np.int64)
    east, west = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.maximum.at(east, elem, dx)
    np.maximum.at(west, elem, -dx)
    col = elem * W + d % W
    up, down = np.zeros(n * W, np.int64), np.zeros(n * W, np.int64)
    np.maximum.at(up, col, -dy)
    np.maximum.at(down, col, dy)
    return packets, east + west, (up + down).reshape(n, W).sum(axis=1), synapses


def build(spec, layers: list[LayerSpec], producers: list[int | None]):
    """(mesh, groups per layer, parts, number of configurations) for the compute ``layers``;
    ``producers[i]``: index of the layer whose events layer i consumes (None: the input).
    ParameterError where the simulator refuses the spec."""
    noc, m, d = spec["noc"], spec.mapping, spec.data
    mesh = MeshGeometry(noc.width, noc.height, noc.flit_bits)
    state = max(d.membrane_bits, d.psum_bits)
    per_core = spec["neuron_memory"].capacity_bytes * 8 // state
    if per_core < 1:
        raise ParameterError(spec.path, "components.neuron_memory.capacity_bytes",
                             f"cannot hold one neuron's {state}-bit state")
    if not (m["io_x"] < mesh.width and m["io_y"] < mesh.height):
        raise ParameterError(spec.path, "mapping.io_x", "the I/O port is outside the mesh")
    io = m["io_y"] * mesh.width + m["io_x"]
    syn_bits = spec["synapse_memory"].capacity_bytes * 8
    groups = [partition(l, per_core, syn_bits, d.weight_bits, m["weight_sharing"], m["partition"], spec.path)
              for l in layers]
    segs = segments([g.n for g in groups], mesh.n_nodes)
    if len(segs) > 1 and "dram" not in spec.components:
        raise ParameterError(spec.path, "components.dram", f"the model needs {len(segs)} chip "
                             "configurations and the spec has no dram to page weights from")
    dests = [destinations(l, g.gon, g.n) for l, g in zip(layers, groups)]
    raw = []
    for s, seg in enumerate(segs):
        nodes = place(mesh, seg, m["placement"], io, producers)
        for i, g0, g1 in seg:
            gn = np.full(groups[i].n, -1, dtype=np.int64)
            gn[g0:g1] = nodes[i]
            raw.append((i, s, g0, g1, gn))
    parts_of = {}
    for r in raw:
        parts_of.setdefault(r[0], []).append(r)
    on_chip = [len(parts_of.get(producers[i], [])) == 1 and parts_of[producers[i]][0][1] == s
               if producers[i] is not None else False for i, s, *_ in raw]
    consumed = {producers[r[0]] for r, oc in zip(raw, on_chip) if oc}
    parts = []
    for (i, s, g0, g1, gn), oc in zip(raw, on_chip):
        if oc:
            prod = producers[i]
            src = parts_of[prod][0][4][groups[prod].gon]
        else:
            src = np.full(layers[i].n_inputs, io, dtype=np.int64)
        pk, ew, ns, syn = routes(mesh, src, *dests[i], gn, m["multicast"])
        mask = (groups[i].gon >= g0) & (groups[i].gon < g1)
        parts.append(PartFigures(i, s, g0, g1, oc, i not in consumed, pk, ew, ns, syn, mask, gn))
    return mesh, groups, parts, len(segs)
