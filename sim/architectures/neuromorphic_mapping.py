"""The simulator's routing step on top of the shared mapping policy
(:mod:`sim.mapping.neuromorphic`): each layer's destination tables and each part's static
route figures, from the numba kernels of :mod:`sim.kernels.noc`, and the per-step traffic
of real events. The closed form enumerates the same routes independently in numpy
(:mod:`sim.analytic.neuromorphic_routes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim.arch.spec import ArchSpec
from sim.kernels.noc import destination_patterns, element_routes, route_events
from sim.mapping.neuromorphic import LayerGroups, Mapping, Part, Sources, build, conv_view
from sim.trace import LayerSpec


@dataclass(frozen=True)
class LayerRouting:
    """Destination tables of a layer's input elements: element i uses pattern
    ``pattern_of_input[i]``, which reaches groups ``group[ptr[p]:ptr[p+1]]`` (int32) with
    ``syn[...]`` synapses into each (see :func:`sim.kernels.noc.destination_patterns`)."""

    pattern_of_input: np.ndarray
    ptr: np.ndarray
    group: np.ndarray
    syn: np.ndarray


def layer_routing(lg: LayerGroups) -> LayerRouting:
    """The destination tables of layer ``lg.layer`` partitioned as ``lg``; an add's operands
    share one table (element (k, c, y, x) of operand k uses the pattern of (c, y, x))."""
    v = conv_view(lg.layer)
    h, w = v.in_h, v.in_w
    ptr, group, syn = destination_patterns(h, w, v.out_h, v.out_w, *v.kernel, *v.stride, *v.padding, *v.dilation,
                                           v.conv_groups, v.out_c_per, lg.gon, lg.n_groups)
    in_per_group = v.in_c // v.conv_groups
    pattern = (np.arange(v.in_c, dtype=np.int64) // in_per_group)[:, None] * (h * w) + np.arange(h * w)
    pattern = pattern.reshape(-1)
    return LayerRouting(np.tile(pattern, v.operands) if v.operands > 1 else pattern, ptr, group, syn)


class ElementRoutes(NamedTuple):
    """Static route figures per input element of one part (int64 [n_inputs] each): packets,
    east-west and north-south hops per event, and the longest path (hops)."""

    packets: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    longest: np.ndarray


class Traffic(NamedTuple):
    """What one part's input events cause, per row of events (a step, or the one row of
    graded events): events, packets, east-west and north-south hops per packet, synaptic
    ops and longest path (int64 [rows] each); synaptic ops per node (int64 [rows, n_nodes]);
    flits per directed link (int64 [rows, 4 * n_nodes])."""

    events: np.ndarray
    packets: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    synops: np.ndarray
    longest: np.ndarray
    core_synops: np.ndarray
    link_flits: np.ndarray


@dataclass
class RoutedMapping:
    """The shared mapping plus the simulator's destination tables (one per layer) and route
    figures (one per part, in ``mapping.parts`` order)."""

    mapping: Mapping
    routing: list[LayerRouting]
    routes: list[ElementRoutes]
    multicast: bool

    def traffic(self, k: int, ptr: np.ndarray, idx: np.ndarray, flits: int) -> Traffic:
        """Traffic of part k's active input elements ``idx[ptr[r]:ptr[r+1]]`` per row r,
        each packet ``flits`` flits long."""
        part = self.mapping.parts[k]
        r, mesh = self.routing[part.layer_index], self.mapping.mesh
        return Traffic(*route_events(ptr, idx, r.pattern_of_input, part.src_node, r.ptr, r.group, r.syn,
                                     part.group_node, *self.routes[k], mesh.width, mesh.n_nodes, flits,
                                     self.multicast))

    def arrivals(self, k: int, ptr: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Packets arriving at each node per row of part k's input events (int64 [rows, n_nodes]):
        one per (event, destination core), unicast or multicast alike (a multicast tree hands
        each of its destination cores the packet once)."""
        pat, node = self._pairs(k)
        part = self.mapping.parts[k]
        n_nodes, n_pat = self.mapping.mesh.n_nodes, self.routing[part.layer_index].ptr.shape[0] - 1
        poi = self.routing[part.layer_index].pattern_of_input
        out = np.zeros((ptr.shape[0] - 1, n_nodes), dtype=np.int64)
        for r in range(ptr.shape[0] - 1):
            per_pattern = np.bincount(poi[idx[ptr[r]:ptr[r + 1]]], minlength=n_pat)
            out[r] = np.bincount(node, weights=per_pattern[pat], minlength=n_nodes).astype(np.int64)
        return out

    def _pairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (pattern, destination node) pairs of part k (cached)."""
        cache = self.__dict__.setdefault("_pair_cache", {})
        if k not in cache:
            part = self.mapping.parts[k]
            r = self.routing[part.layer_index]
            pat = np.repeat(np.arange(r.ptr.shape[0] - 1, dtype=np.int64), np.diff(r.ptr))
            node = part.group_node[r.group]
            keep = node >= 0
            n_nodes = self.mapping.mesh.n_nodes
            key = np.unique(pat[keep] * n_nodes + node[keep])
            cache[k] = (key // n_nodes, key % n_nodes)
        return cache[k]

    def k_hop_static(self) -> float:
        """Mean hops over every possible packet: each input element once, each of its
        destination cores once (0 when no packet can arise)."""
        packets = hops = 0
        for rt in self.routes:
            packets += int(rt.packets.sum())
            hops += int(rt.hops_ew.sum() + rt.hops_ns.sum())
        return hops / packets if packets else 0.0

    def summary(self) -> dict:
        """The mapping's report summary (:meth:`Mapping.summary`) with the static k_hop."""
        return self.mapping.summary(self.k_hop_static())


def _routes(mapping: Mapping, routing: list[LayerRouting], part: Part, multicast: bool) -> ElementRoutes:
    r = routing[part.layer_index]
    return ElementRoutes(*element_routes(r.pattern_of_input, part.src_node, r.ptr, r.group, part.group_node,
                                         mapping.mesh.width, multicast))


def build_routed(spec: ArchSpec, layers: list[LayerSpec], sources: Sources) -> RoutedMapping:
    """:func:`sim.mapping.neuromorphic.build` of a graph (``sources``: ``Workload.sources``,
    or one producer per layer for a chain), then the destination tables and route figures."""
    mapping = build(spec, layers, sources)
    multicast = spec.mapping["multicast"]
    routing = [layer_routing(lg) for lg in mapping.groups]
    routes = [_routes(mapping, routing, p, multicast) for p in mapping.parts]
    return RoutedMapping(mapping, routing, routes, multicast)


def synapse_read(layer: LayerSpec, weight_sharing: bool) -> str:
    """The ``synapse_memory`` action one synaptic event of ``layer`` counts: the synapse kind
    is how the core stores the layer's synapses (SANA-FE's Loihi synapse units). A linear
    layer's weights are a dense matrix (``dense_weight_read``); a conv or average pool stores
    each output channel's kernel once with ``weight_sharing`` (``weight_read``, the conv
    synapse) and every synapse explicitly without it (``sparse_weight_read``). Only for a
    layer that stores weights (:func:`sim.mapping.neuromorphic.stores_weights`)."""
    if layer.kind == "linear":
        return "dense_weight_read"
    return "weight_read" if weight_sharing else "sparse_weight_read"


def reached(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    """Which neurons of ``layer`` an input pattern reaches: ``x`` bool [R, n_inputs] (one row
    per step) -> bool [R, n_neurons], neuron o set in row r when at least one set input
    element has a synapse into o. The layer is seen as a grouped conv (``conv_view``: linear,
    pools and adds too): the inputs are ORed over the operands and the channels of each conv
    group, then over the window's taps, one strided slice per tap. The closed form counts the
    same set from an index table of each window (sim.analytic.layer_stats)."""
    v = conv_view(layer)
    R = x.shape[0]
    g = x.reshape(R, v.operands, v.conv_groups, v.in_c // v.conv_groups, v.in_h, v.in_w).any(axis=(1, 3))
    (kh, kw), (sy, sx), (py, px), (dy, dx) = v.kernel, v.stride, v.padding, v.dilation
    height = max(v.in_h + py, (kh - 1) * dy + sy * (v.out_h - 1) + 1)
    width = max(v.in_w + px, (kw - 1) * dx + sx * (v.out_w - 1) + 1)
    padded = np.zeros((R, v.conv_groups, height, width), dtype=bool)
    padded[:, :, py:py + v.in_h, px:px + v.in_w] = g
    out = np.zeros((R, v.conv_groups, v.out_h, v.out_w), dtype=bool)
    for i in range(kh):
        for j in range(kw):
            out |= padded[:, :, i * dy:i * dy + sy * (v.out_h - 1) + 1:sy, j * dx:j * dx + sx * (v.out_w - 1) + 1:sx]
    return np.repeat(out, v.out_c_per, axis=1).reshape(R, -1)
