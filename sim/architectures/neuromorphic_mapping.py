"""Mapping a workload onto neuromorphic cores: partition each layer's neurons into groups
that fit one core's neuron and synapse memories, pack the groups onto the mesh in
segments (chip configurations), place them, and precompute each input element's
destination cores and route figures.

Everything here is static: it depends on the layer geometry and the arch spec, never on
the events, so it is computed once per replay. docs/architectures/neuromorphic.md
explains every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arch.spec import ArchSpec
from sim.architectures.base import address_bits
from sim.engine.noc import Mesh
from sim.errors import ParameterError
from sim.kernels.noc import destination_patterns, element_routes
from sim.trace import LayerSpec

PLACEMENTS = ("row_major", "nearest")


@dataclass
class LayerGroups:
    """A layer's neurons split into groups, one group per core.

    ``gon[n]`` is the group of flat (C-order) neuron n; ``synapse_bits[g]`` the weights
    group g stores (each output channel's kernel once with weight sharing, else one weight
    per synapse)."""

    layer: LayerSpec
    gon: np.ndarray
    synapse_bits: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.synapse_bits)

    def neurons(self) -> np.ndarray:
        return np.bincount(self.gon, minlength=self.n_groups)

    def group_of_neuron(self) -> np.ndarray:
        return self.gon


@dataclass
class Part:
    """The groups ``g0:g1`` of one layer, configured on the mesh in segment ``segment`` at
    position ``position`` of the segment's layer pipeline. ``group_node`` holds the node of
    every group of the layer, -1 for groups outside this part."""

    layer_index: int
    segment: int
    position: int
    g0: int
    g1: int
    group_node: np.ndarray
    input_on_chip: bool = False   # the producer sits whole in the same segment
    output_off_chip: bool = True  # the consumer reads this part's events from DRAM
    src_node: np.ndarray | None = None
    routes: tuple | None = None   # element_routes(...) for this part
    node_neurons: np.ndarray | None = None  # neurons per mesh node


@dataclass
class LayerRouting:
    """Destination patterns of a layer's input elements (see destination_patterns)."""

    pattern_of_input: np.ndarray
    ptr: np.ndarray
    group: np.ndarray
    syn: np.ndarray


@dataclass
class Mapping:
    mesh: Mesh
    io_node: int
    groups: list[LayerGroups]
    routing: list[LayerRouting]
    parts: list[Part]
    n_segments: int
    neurons_per_core: int
    synapse_bits_per_core: int

    def segment_parts(self, s: int) -> list[Part]:
        return [p for p in self.parts if p.segment == s]

    def summary(self) -> dict:
        """Cores used, per-core occupancy and k_hop_static (mean hops over every possible
        packet: each input element once, each of its destination cores once)."""
        layers = {}
        for lg, lr in zip(self.groups, self.routing):
            layers[lg.layer.name] = {"cores": lg.n_groups,
                                     "neurons_per_core": lg.neurons().tolist(),
                                     "synapse_bytes_per_core": (lg.synapse_bits // 8).tolist(),
                                     "neuron_occupancy": (lg.neurons() / self.neurons_per_core).round(4).tolist(),
                                     "synapse_occupancy": (lg.synapse_bits / self.synapse_bits_per_core).round(4).tolist()}
        packets = hops = 0
        for p in self.parts:
            pk, ew, ns, _ = p.routes
            packets += int(pk.sum())
            hops += int(ew.sum() + ns.sum())
        per_segment = [sum(p.g1 - p.g0 for p in self.segment_parts(s)) for s in range(self.n_segments)]
        return {"segments": self.n_segments, "cores_per_segment": per_segment,
                "cores_used": max(per_segment, default=0),
                "core_groups": sum(lg.n_groups for lg in self.groups),
                "k_hop_static": hops / packets if packets else 0.0, "layers": layers}


def conv_view(layer: LayerSpec) -> tuple:
    """Layer geometry as a grouped conv: (in_c, in_h, in_w, out_h, out_w, kernel, stride,
    padding, conv_groups, out_channels_per_group). Linear = 1x1 conv of a 1x1 map; average
    pooling = one output channel per input channel."""
    if layer.kind == "linear":
        return layer.n_inputs, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1, layer.output_shape[0]
    c, h, w = layer.input_shape
    oc, oh, ow = layer.output_shape
    if layer.kind == "avgpool":
        return c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, c, 1
    return c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, layer.groups, oc // layer.groups


def partition(layer: LayerSpec, neurons_per_core: int, synapse_bits_per_core: int, weight_bits: int,
              weight_sharing: bool, order: str, spec_path) -> LayerGroups:
    """Groups that fit one core: at most ``neurons_per_core`` neurons whose weights fit the
    synapse memory.

    channel_major: contiguous runs of the C-order neurons (whole channels first).
    spatial: output channels are split into as few equal blocks as the synapse memory
    needs, and each block into runs of pixel-major (y, x, channel) neurons, so a group is a
    spatial tile of a channel block and a conv input reaches only the tiles around it.
    """
    n, channels = layer.n_neurons, layer.output_shape[0]
    pix = n // channels
    per_unit = layer.fan_in * weight_bits  # one output channel's kernel, or one neuron's fan-in
    if per_unit > synapse_bits_per_core:
        raise ParameterError(spec_path, "components.synapse_memory.capacity_bytes",
                             f"{synapse_bits_per_core // 8} bytes cannot hold the {layer.fan_in} "
                             f"weights of one neuron of layer {layer.name}")
    units = synapse_bits_per_core // per_unit
    cap = neurons_per_core if weight_sharing else min(neurons_per_core, units)
    if order == "spatial":
        n_blocks = -(-channels // units) if weight_sharing else 1
        bounds = np.linspace(0, channels, n_blocks + 1).round().astype(np.int64)
        gon = np.empty(n, dtype=np.int32).reshape(channels, pix)
        bits, g = [], 0
        for c0, c1 in zip(bounds[:-1], bounds[1:]):
            size = (c1 - c0) * pix
            k = -(-size // cap)
            # pixel-major position of each neuron of the block, cut into k near-equal runs
            pos = np.arange(pix)[None, :] * (c1 - c0) + np.arange(c1 - c0)[:, None]
            cuts = np.linspace(0, size, k + 1).round().astype(np.int64)
            block = np.searchsorted(cuts, pos, side="right") - 1
            gon[c0:c1] = g + block
            for j in range(k):
                members = block == j
                chans = int(members.any(axis=1).sum())
                bits.append((chans if weight_sharing else int(members.sum())) * per_unit)
            g += k
        return LayerGroups(layer, gon.reshape(-1), np.array(bits, dtype=np.int64))
    starts, bits = [0], []
    a = 0
    while a < n:
        if weight_sharing:
            b = min(n, a + cap, (a // pix + units) * pix)
            bits.append(((b - 1) // pix - a // pix + 1) * per_unit)
        else:
            b = min(n, a + cap)
            bits.append((b - a) * per_unit)
        starts.append(b)
        a = b
    gon = np.repeat(np.arange(len(bits), dtype=np.int32), np.diff(starts))
    return LayerGroups(layer, gon, np.array(bits, dtype=np.int64))


def layer_routing(lg: LayerGroups) -> LayerRouting:
    in_c, h, w, oh, ow, k, s, p, cg, ocp = conv_view(lg.layer)
    ptr, group, syn = destination_patterns(h, w, oh, ow, k[0], k[1], s[0], s[1], p[0], p[1], cg, ocp,
                                           lg.group_of_neuron(), lg.n_groups)
    in_per_group = in_c // cg
    pattern = (np.arange(in_c, dtype=np.int64) // in_per_group)[:, None] * (h * w) + np.arange(h * w)
    return LayerRouting(pattern.reshape(-1), ptr, group, syn)


def segment_layers(groups: list[LayerGroups], n_cores: int) -> list[list[tuple[int, int, int]]]:
    """Consecutive layers packed into chip configurations: each segment is a list of
    (layer_index, g0, g1). A layer with more groups than cores is split into chunks, each a
    segment of its own."""
    segments: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for i, lg in enumerate(groups):
        g = lg.n_groups
        if g > n_cores:
            if current:
                segments.append(current)
            segments += [[(i, a, min(g, a + n_cores))] for a in range(0, g, n_cores)]
            current, used = [], 0
        elif used + g <= n_cores:
            current.append((i, 0, g))
            used += g
        else:
            segments.append(current)
            current, used = [(i, 0, g)], g
    if current:
        segments.append(current)
    return segments


def place(mesh: Mesh, segment: list[tuple[int, int, int]], placement: str, io_node: int,
          producers: list[int | None]) -> dict[int, np.ndarray]:
    """Nodes of each layer's groups in one segment.

    row_major: groups in layer order take nodes 0, 1, 2, ... (x fastest).
    nearest: each layer takes the free nodes closest (Manhattan) to the centroid of its
    producer's nodes in this segment (the I/O node when its input comes from off-chip), so
    consecutive layers sit next to each other."""
    out: dict[int, np.ndarray] = {}
    if placement == "row_major":
        nxt = 0
        for i, g0, g1 in segment:
            out[i] = np.arange(nxt, nxt + g1 - g0, dtype=np.int32)
            nxt += g1 - g0
        return out
    xs = np.arange(mesh.n_nodes) % mesh.width
    ys = np.arange(mesh.n_nodes) // mesh.width
    free = np.ones(mesh.n_nodes, dtype=bool)
    for i, g0, g1 in segment:
        prod = producers[i]
        anchor = out.get(prod) if prod is not None else None
        if anchor is None:
            anchor = np.array([io_node])
        cx, cy = xs[anchor].mean(), ys[anchor].mean()
        dist = np.abs(xs - cx) + np.abs(ys - cy)
        order = np.lexsort((np.arange(mesh.n_nodes), dist))
        chosen = order[free[order]][: g1 - g0]
        free[chosen] = False
        out[i] = chosen.astype(np.int32)
    return out


def build_mapping(spec: ArchSpec, layers: list[LayerSpec], producers: list[int | None]) -> Mapping:
    """Partition, segment, place and route ``layers`` (compute layers, execution order);
    ``producers[i]`` is the index of the layer whose events layer i consumes (None: input)."""
    noc, m = spec["noc"], spec.mapping
    mesh = Mesh(noc.width, noc.height, noc.flit_bits, noc.link_flits_per_cycle, noc.router_latency_cycles)
    d = spec.data
    state_bits = max(d.membrane_bits, d.psum_bits)
    neurons_per_core = spec["neuron_memory"].capacity_bytes * 8 // state_bits
    if neurons_per_core < 1:
        raise ParameterError(spec.path, "components.neuron_memory.capacity_bytes",
                             f"{spec['neuron_memory'].capacity_bytes} bytes cannot hold one neuron's "
                             f"{state_bits}-bit state")
    if not (m["io_x"] < mesh.width and m["io_y"] < mesh.height):
        raise ParameterError(spec.path, "mapping.io_x", f"I/O port ({m['io_x']}, {m['io_y']}) is "
                             f"outside the {mesh.width}x{mesh.height} mesh")
    io_node = mesh.node(m["io_x"], m["io_y"])
    syn_bits = spec["synapse_memory"].capacity_bytes * 8
    groups = [partition(l, neurons_per_core, syn_bits, d.weight_bits, m["weight_sharing"], m["partition"],
                        spec.path) for l in layers]
    segments = segment_layers(groups, mesh.n_nodes)
    if len(segments) > 1 and "dram" not in spec.components:
        need = sum(g.n_groups for g in groups)
        raise ParameterError(spec.path, "components.dram",
                             f"the model needs {need} cores ({len(segments)} chip configurations) but the "
                             f"{mesh.width}x{mesh.height} mesh has {mesh.n_nodes} and the spec has no dram "
                             f"to page weights from")
    routing = [layer_routing(g) for g in groups]
    parts: list[Part] = []
    where: dict[int, list[Part]] = {}
    for s, seg in enumerate(segments):
        nodes = place(mesh, seg, m["placement"], io_node, producers)
        for pos, (i, g0, g1) in enumerate(seg):
            gn = np.full(groups[i].n_groups, -1, dtype=np.int32)
            gn[g0:g1] = nodes[i]
            part = Part(i, s, pos, g0, g1, gn)
            where.setdefault(i, []).append(part)
            parts.append(part)
    for part in parts:
        i, lg = part.layer_index, groups[part.layer_index]
        prod = producers[i]
        prod_parts = where.get(prod, []) if prod is not None else []
        part.input_on_chip = len(prod_parts) == 1 and prod_parts[0].segment == part.segment
        n_in = lg.layer.n_inputs
        if part.input_on_chip:
            pg = groups[prod]
            part.src_node = prod_parts[0].group_node[pg.group_of_neuron()].astype(np.int64)
            prod_parts[0].output_off_chip = False
        else:
            part.src_node = np.full(n_in, io_node, dtype=np.int64)
        r = routing[i]
        part.routes = element_routes(r.pattern_of_input, part.src_node, r.ptr, r.group, part.group_node,
                                     mesh.width, m["multicast"])
        nn = np.zeros(mesh.n_nodes, dtype=np.int64)
        on = part.group_node >= 0
        np.add.at(nn, part.group_node[on], lg.neurons()[on])
        part.node_neurons = nn
    # a layer read by a consumer in another segment (or by none: the readout) goes off-chip
    consumed_on_chip = {producers[p.layer_index] for p in parts if p.input_on_chip}
    for part in parts:
        part.output_off_chip = part.layer_index not in consumed_on_chip
    return Mapping(mesh, io_node, groups, routing, parts, len(segments), neurons_per_core, syn_bits)


def packet_bits(mesh: Mesh, layer: LayerSpec, payload_bits: int) -> int:
    """Bits of one address event into ``layer``: destination router, the source element's
    address (axon id) and the payload (0 for a spike, the activation for a graded event)."""
    return mesh.address_bits + address_bits(layer.n_inputs) + payload_bits
