"""The neuromorphic mapping policy: how a workload's compute layers land on a W x H mesh of
cores. Each layer's neurons are partitioned into groups that fit one core's neuron and
synapse memories, consecutive layers are packed into chip configurations (segments) of at
most W·H groups, and each segment's groups are placed on mesh nodes. On a layer graph each
layer's input elements are its sources' outputs concatenated, each source routed from where
it sits (:func:`build`).

Everything here is static (layer geometry and arch spec, never the events) and is the one
implementation both the simulator (sim.architectures.neuromorphic) and the closed form
(sim.analytic.neuromorphic) use; each adds its own route figures on top (numba kernels and
a numpy enumeration respectively). docs/architectures/neuromorphic.md states every rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sim.arch.spec import ArchSpec
from sim.errors import ParameterError
from sim.mapping.encoding import address_bits
from sim.trace import LayerSpec
from sim.trace.limits import MEMORY_BUDGET_BYTES

#: int64 arrays kept per input element of every part (the part's source nodes, and the
#: simulator's packets, east-west hops, north-south hops, synapses and a scratch row).
ARRAYS_PER_PART_INPUT = 6

@dataclass(frozen=True)
class MeshGeometry:
    """A W x H mesh, one core per router; node ``n`` sits at ``(n % W, n // W)``."""

    width: int
    height: int
    flit_bits: int

    @property
    def n_nodes(self) -> int:
        return self.width * self.height

    def node(self, x, y):
        """Node id of router (x, y) (ints or arrays)."""
        return y * self.width + x

    def xy(self, node):
        """(x, y) of a node id (an int or an array)."""
        return node % self.width, node // self.width

    @property
    def header_bits(self) -> int:
        """Bits of a packet's destination header: the router's x and y, ⌈log2 W⌉ + ⌈log2 H⌉
        (each at least 1)."""
        return address_bits(self.width) + address_bits(self.height)

    def flits(self, packet_bits: int) -> int:
        """Flits of one packet of ``packet_bits`` bits (header included): at least one."""
        return max(1, -(-packet_bits // self.flit_bits))


def mesh_geometry(spec: ArchSpec) -> MeshGeometry:
    """The mesh of ``spec``'s ``noc`` component."""
    noc = spec["noc"]
    return MeshGeometry(noc.width, noc.height, noc.flit_bits)


def neurons_per_core(spec: ArchSpec) -> int:
    """Neurons one core holds: neuron memory bits over the wider state (membrane or psum), so
    the SNN and its ANN twin share one mapping. ParameterError when not even one fits."""
    d = spec.data
    state_bits = max(d.membrane_bits, d.psum_bits)
    n = spec["neuron_memory"].capacity_bytes * 8 // state_bits
    if n < 1:
        raise ParameterError(spec.path, "components.neuron_memory.capacity_bytes",
                             f"{spec['neuron_memory'].capacity_bytes} bytes cannot hold one neuron's "
                             f"{state_bits}-bit state")
    return n


def synapse_bits_per_core(spec: ArchSpec) -> int:
    """Weight bits one core's synapse memory stores."""
    return spec["synapse_memory"].capacity_bytes * 8


def io_node(spec: ArchSpec, mesh: MeshGeometry) -> int:
    """Node where off-chip input enters (mapping.io_x, io_y); ParameterError off the mesh."""
    m = spec.mapping
    if not (m["io_x"] < mesh.width and m["io_y"] < mesh.height):
        field = "mapping.io_x" if m["io_x"] >= mesh.width else "mapping.io_y"
        raise ParameterError(spec.path, field, f"I/O port ({m['io_x']}, {m['io_y']}) is "
                             f"outside the {mesh.width}x{mesh.height} mesh")
    return mesh.node(m["io_x"], m["io_y"])


@dataclass
class LayerGroups:
    """A layer's neurons split into groups, one group per core.

    ``gon[n]`` (int64) is the group of flat (C-order) neuron n; ``synapse_bits[g]`` (int64)
    the weights group g stores (each output channel's kernel once with weight sharing, else
    one weight per synapse)."""

    layer: LayerSpec
    gon: np.ndarray
    synapse_bits: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.synapse_bits)

    def neurons(self) -> np.ndarray:
        """Neurons per group, int64 [n_groups]."""
        return np.bincount(self.gon, minlength=self.n_groups)

    def neuron_mask(self, g0: int, g1: int) -> np.ndarray:
        """Which neurons belong to groups g0:g1, bool [n_neurons]."""
        return (self.gon >= g0) & (self.gon < g1)


class ConvView(NamedTuple):
    """A layer's geometry as a grouped conv: input channels ``in_c`` of ``in_h`` x ``in_w``,
    output ``out_h`` x ``out_w``, kernel, stride, padding and dilation (pairs), conv groups
    and output channels per group; ``operands``: the input is that many copies of this
    geometry, concatenated (an add's operands), each feeding the same neurons."""

    in_c: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    conv_groups: int
    out_c_per: int
    dilation: tuple[int, int] = (1, 1)
    operands: int = 1


def conv_view(layer: LayerSpec) -> ConvView:
    """Layer geometry as a grouped conv (:class:`ConvView`). Linear = 1x1 conv of a 1x1 map;
    average and max pooling = one output channel per input channel; a residual add = a 1x1
    depthwise "conv" of each operand (element (k, c, y, x) of operand k reaches neuron
    (c, y, x) only)."""
    if layer.kind == "linear":
        return ConvView(layer.n_inputs, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0), 1, layer.output_shape[0])
    if layer.kind == "add":
        shape = layer.input_shape
        c, h, w = shape if len(shape) == 3 else (math.prod(shape), 1, 1)
        return ConvView(c, h, w, h, w, (1, 1), (1, 1), (0, 0), c, 1, (1, 1), layer.n_operands)
    c, h, w = layer.input_shape
    oc, oh, ow = layer.output_shape
    if layer.kind in ("avgpool", "maxpool"):
        return ConvView(c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, c, 1)
    return ConvView(c, h, w, oh, ow, layer.kernel, layer.stride, layer.padding, layer.groups,
                    oc // layer.groups, layer.dilation_hw)


def stores_weights(layer: LayerSpec) -> bool:
    """Whether a core stores synapse weights for the layer: conv2d, linear, and average
    pooling (its fixed 1/k weights, looked up like any synapse); a residual add (each operand
    spike adds 1 to one membrane) and a max pool (a spike OR) have none."""
    return layer.kind in ("conv2d", "linear", "avgpool")


def partition(layer: LayerSpec, neurons_per_core: int, synapse_bits_per_core: int, weight_bits: int,
              weight_sharing: bool, order: str, spec_path) -> LayerGroups:
    """Groups that fit one core: at most ``neurons_per_core`` neurons whose weights fit the
    synapse memory. ParameterError when one neuron's fan-in alone does not fit.

    channel_major: contiguous runs of the C-order neurons (whole channels first), cut at the
    neuron limit and where the channels' kernels fill the synapse memory.
    spatial: output channels are split into as few equal blocks as the synapse memory
    needs, and each block into near-equal runs of pixel-major (y, x, channel) neurons, so a
    group is a spatial tile of a channel block and a conv input reaches only the tiles
    around it.
    """
    n, channels = layer.n_neurons, layer.output_shape[0]
    pix = n // channels
    # one output channel's kernel, or one neuron's fan-in (none for an add or a max pool)
    per_unit = layer.fan_in * weight_bits if stores_weights(layer) else 0
    if per_unit > synapse_bits_per_core:
        raise ParameterError(spec_path, "components.synapse_memory.capacity_bytes",
                             f"{synapse_bits_per_core // 8} bytes cannot hold the {layer.fan_in} "
                             f"weights of one neuron of layer {layer.name}")
    units = synapse_bits_per_core // per_unit if per_unit else n  # without weights: no limit
    cap = neurons_per_core if weight_sharing else min(neurons_per_core, units)
    if order == "spatial":
        n_blocks = -(-channels // units) if weight_sharing else 1
        bounds = np.linspace(0, channels, n_blocks + 1).round().astype(np.int64)
        gon = np.empty((channels, pix), dtype=np.int64)
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
    gon = np.repeat(np.arange(len(bits), dtype=np.int64), np.diff(starts))
    return LayerGroups(layer, gon, np.array(bits, dtype=np.int64))


def partition_layers(spec: ArchSpec, layers: list[LayerSpec]) -> list[LayerGroups]:
    """:func:`partition` of every layer with ``spec``'s core capacities and mapping options."""
    per_core, syn_bits, m = neurons_per_core(spec), synapse_bits_per_core(spec), spec.mapping
    return [partition(l, per_core, syn_bits, spec.data.weight_bits, m["weight_sharing"], m["partition"],
                      spec.path) for l in layers]


def segments(n_groups: list[int], n_cores: int) -> list[list[tuple[int, int, int]]]:
    """Consecutive layers packed into chip configurations: each segment is a list of
    (layer_index, g0, g1). A layer with more groups than cores is split into chunks, each a
    segment of its own."""
    out: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for i, g in enumerate(n_groups):
        if g > n_cores:
            if current:
                out.append(current)
            out += [[(i, a, min(g, a + n_cores))] for a in range(0, g, n_cores)]
            current, used = [], 0
        elif used + g <= n_cores:
            current.append((i, 0, g))
            used += g
        else:
            out.append(current)
            current, used = [(i, 0, g)], g
    if current:
        out.append(current)
    return out


#: Per compute layer, the layers it consumes: one producer index or None (a chain), or the
#: list of its sources in ``inputs`` order (a graph).
Sources = list[int | None] | list[list[int | None]]


def as_sources(sources: Sources) -> list[list[int | None]]:
    """Per compute layer, its source layers (indices, None for the network input) as a list:
    ``sources[i]`` may be one producer (a chain, as callers before graphs passed it) or the
    list of a layer's sources in ``inputs`` order."""
    return [list(s) if isinstance(s, (list, tuple)) else [s] for s in sources]


def place(mesh: MeshGeometry, segment: list[tuple[int, int, int]], placement: str, io: int,
          producers: Sources) -> dict[int, np.ndarray]:
    """Nodes (int64) of each layer's groups g0:g1 in one segment, keyed by layer index.

    row_major: groups in layer order take nodes 0, 1, 2, ... (x fastest).
    nearest: each layer takes the free nodes closest (Manhattan, ties by node id) to the
    centroid of its sources' nodes in this segment (the I/O node standing for a source whose
    events come from off-chip: the input, another segment), so consecutive layers sit next
    to each other. ``producers``: see :func:`as_sources`."""
    out: dict[int, np.ndarray] = {}
    if placement == "row_major":
        nxt = 0
        for i, g0, g1 in segment:
            out[i] = np.arange(nxt, nxt + g1 - g0, dtype=np.int64)
            nxt += g1 - g0
        return out
    sources = as_sources(producers)
    nodes = np.arange(mesh.n_nodes, dtype=np.int64)
    xs, ys = mesh.xy(nodes)
    free = np.ones(mesh.n_nodes, dtype=bool)
    for i, g0, g1 in segment:
        anchors = [out[j] if j is not None and j in out else np.array([io]) for j in sources[i]]
        anchor = anchors[0] if len(anchors) == 1 else np.concatenate(anchors)
        dist = np.abs(xs - xs[anchor].mean()) + np.abs(ys - ys[anchor].mean())
        order = np.lexsort((nodes, dist))
        chosen = order[free[order]][: g1 - g0]
        free[chosen] = False
        out[i] = chosen
    return out


@dataclass
class Part:
    """The groups ``g0:g1`` of one layer, configured on the mesh in segment ``segment`` at
    position ``position`` of the segment's layer pipeline (one more than its deepest source
    in the segment; 0 without one).

    ``group_node`` (int64 [groups of the layer]): the node of every group, -1 outside this
    part. ``operands_on_chip[k]``: source k (an add's operand k; the one producer otherwise)
    sits whole in the same segment, so ``src_node`` (int64 [n_inputs], the node each input
    element is sent from) is its neuron's node for that operand's elements; otherwise they
    enter at the I/O node (the network input, another segment). ``input_on_chip``: every
    source is on chip. ``output_off_chip``: some consumer reads this part's events from
    off-chip (another segment), or none reads them (the readout), so they leave the chip,
    once whatever the number of such consumers. ``node_neurons`` (int64 [n_nodes]): the
    part's neurons on each node."""

    layer_index: int
    segment: int
    position: int
    g0: int
    g1: int
    group_node: np.ndarray
    input_on_chip: bool
    output_off_chip: bool
    src_node: np.ndarray
    node_neurons: np.ndarray
    operands_on_chip: tuple[bool, ...] = field(default=())


@dataclass
class Mapping:
    """The whole static structure: mesh, I/O node, groups per layer, parts in segment order."""

    mesh: MeshGeometry
    io_node: int
    groups: list[LayerGroups]
    parts: list[Part]
    n_segments: int
    neurons_per_core: int
    synapse_bits_per_core: int

    def segment_parts(self, s: int) -> list[Part]:
        return [p for p in self.parts if p.segment == s]

    def layer_parts(self, i: int) -> list[Part]:
        return [p for p in self.parts if p.layer_index == i]

    def summary(self, k_hop_static: float) -> dict:
        """Segments, cores used, per-core occupancy per layer, and ``k_hop_static`` (mean
        hops over every possible packet, from the route figures the policy does not compute)."""
        layers = {}
        for lg in self.groups:
            neurons = lg.neurons()
            layers[lg.layer.name] = {"cores": lg.n_groups,
                                     "neurons_per_core": neurons.tolist(),
                                     "synapse_bytes_per_core": (lg.synapse_bits // 8).tolist(),
                                     "neuron_occupancy": (neurons / self.neurons_per_core).round(4).tolist(),
                                     "synapse_occupancy": (lg.synapse_bits / self.synapse_bits_per_core).round(4).tolist()}
        per_segment = [sum(p.g1 - p.g0 for p in self.segment_parts(s)) for s in range(self.n_segments)]
        return {"segments": self.n_segments, "cores_per_segment": per_segment,
                "cores_used": max(per_segment, default=0),
                "core_groups": sum(lg.n_groups for lg in self.groups),
                "k_hop_static": k_hop_static, "layers": layers}


def check_mapping_size(spec: ArchSpec, layers: list[LayerSpec], per_core: int, n_nodes: int) -> None:
    """Refuse, before partitioning, a mapping whose per-part tables cannot fit in memory: a
    layer of n neurons needs at least ⌈⌈n / per_core⌉ / n_nodes⌉ chip configurations (parts),
    each holding ``ARRAYS_PER_PART_INPUT`` int64 values per input element. ParameterError
    naming the neuron memory when that lower bound exceeds the memory budget
    (sim.trace.limits.MEMORY_BUDGET_BYTES)."""
    parts = [-(-(-(-l.n_neurons // per_core)) // n_nodes) for l in layers]
    need = sum(p * ARRAYS_PER_PART_INPUT * 8 * l.n_inputs for p, l in zip(parts, layers))
    if need > MEMORY_BUDGET_BYTES:
        raise ParameterError(spec.path, "components.neuron_memory.capacity_bytes",
                             f"{per_core} neuron(s) per core on {n_nodes} core(s) split the model into at "
                             f"least {sum(parts)} chip configurations whose routing tables need over "
                             f"{need / 2**30:.1f} GiB (limit {MEMORY_BUDGET_BYTES / 2**30:.0f} GiB): give the "
                             f"cores more neuron memory or the mesh more cores")


def build(spec: ArchSpec, layers: list[LayerSpec], producers: Sources) -> Mapping:
    """Partition, segment and place ``layers`` (compute layers, execution order);
    ``producers[i]`` names the layers whose events layer i consumes: one index (None: the
    input) for a chain, or the list of its sources in ``inputs`` order for a graph
    (``Workload.sources``, :func:`graph_sources`). ParameterError when a neuron does not fit
    a core, the I/O port is off the mesh, or the model needs several configurations and the
    spec has no dram."""
    sources = as_sources(producers)
    mesh = mesh_geometry(spec)
    per_core = neurons_per_core(spec)
    io = io_node(spec, mesh)
    check_mapping_size(spec, layers, per_core, mesh.n_nodes)
    groups = partition_layers(spec, layers)
    segs = segments([g.n_groups for g in groups], mesh.n_nodes)
    if len(segs) > 1 and "dram" not in spec.components:
        need = sum(g.n_groups for g in groups)
        raise ParameterError(spec.path, "components.dram",
                             f"the model needs {need} cores ({len(segs)} chip configurations) but the "
                             f"{mesh.width}x{mesh.height} mesh has {mesh.n_nodes} and the spec has no dram "
                             f"to page weights from")
    placed: list[tuple[int, int, int, int, int, np.ndarray]] = []
    for s, seg in enumerate(segs):
        nodes = place(mesh, seg, spec.mapping["placement"], io, sources)
        depth: dict[int, int] = {}
        for i, g0, g1 in seg:
            depth[i] = 1 + max((depth[j] for j in sources[i] if j in depth), default=-1)
            gn = np.full(groups[i].n_groups, -1, dtype=np.int64)
            gn[g0:g1] = nodes[i]
            placed.append((i, s, depth[i], g0, g1, gn))
    where: dict[int, list[tuple]] = {}
    for p in placed:
        where.setdefault(p[0], []).append(p)
    parts: list[Part] = []
    for i, s, pos, g0, g1, gn in placed:
        size = layers[i].n_inputs // len(sources[i])
        on_chip, src = [], []
        for j in sources[i]:
            jp = where.get(j, []) if j is not None else []
            on = len(jp) == 1 and jp[0][1] == s
            on_chip.append(on)
            src.append(jp[0][5][groups[j].gon] if on else np.full(size, io, dtype=np.int64))
        nn = np.zeros(mesh.n_nodes, dtype=np.int64)
        on = gn >= 0
        np.add.at(nn, gn[on], groups[i].neurons()[on])
        parts.append(Part(i, s, pos, g0, g1, gn, all(on_chip), True,
                          src[0] if len(src) == 1 else np.concatenate(src), nn, tuple(on_chip)))
    # a layer read by a consumer in another segment (or by none: the readout) goes off-chip
    read_on_chip: dict[int, list[bool]] = {}
    for p in parts:
        for j, on in zip(sources[p.layer_index], p.operands_on_chip):
            if j is not None:
                read_on_chip.setdefault(j, []).append(on)
    for p in parts:
        reads = read_on_chip.get(p.layer_index, [])
        p.output_off_chip = not reads or not all(reads)
    return Mapping(mesh, io, groups, parts, len(segs), per_core, synapse_bits_per_core(spec))
