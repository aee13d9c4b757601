"""The neuromorphic route figures, enumerated in numpy from docs/architectures/neuromorphic.md:
per input element of each part of the shared mapping (:mod:`sim.mapping.neuromorphic`), the
packets, east-west and north-south hops per event and the synapses it reaches on the part's
cores, which the closed form weights by each element's events.

This is an independent second implementation of the simulator's numba route kernels
(sim.kernels.noc): destinations come from an explicit enumeration of each layer's synapses
per (conv group, input pixel) pattern, and nothing here imports numba, the engine, the
kernels or the architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.mapping.neuromorphic import Mapping, MeshGeometry, Part, conv_view
from sim.trace import LayerSpec


@dataclass
class PartFigures:
    """Per input element of ``part``'s layer (int64 [n_inputs] each): packets, east-west and
    north-south hops per event, and synapses it reaches on this part's cores."""

    part: Part
    packets: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    synapses: np.ndarray


def _pairs(n_in: int, n_out: int, k: int, s: int, p: int, dil: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(input position, output position) pairs along one axis: i + p - o*s = dil*j for a tap
    0 <= j < k."""
    d = np.arange(n_in)[:, None] + p - np.arange(n_out)[None, :] * s
    return np.nonzero((d >= 0) & (d % dil == 0) & (d // dil < k))


def destinations(layer: LayerSpec, gon: np.ndarray, n_groups: int):
    """Per input element: its pattern (conv group × input pixel: every input channel of a conv
    group reaches the same neurons; element (k, c, y, x) of an add's operand k is element
    (c, y, x)'s pattern), and per pattern the groups it reaches with the synapses into each.
    Returns (pattern_of_input, pattern, group, synapses), the last three flat."""
    in_c, h, w, oh, ow, k, s, p, cg, ocp, dil, operands = conv_view(layer)
    yi, yo = _pairs(h, oh, k[0], s[0], p[0], dil[0])
    xi, xo = _pairs(w, ow, k[1], s[1], p[1], dil[1])
    # every (group g, output channel co, y pair, x pair): pattern (g, y, x) -> neuron (c, oy, ox)
    G, CO, Y, X = np.meshgrid(np.arange(cg), np.arange(ocp), np.arange(len(yi)), np.arange(len(xi)),
                              indexing="ij")
    pattern = (G * h + yi[Y]) * w + xi[X]
    neuron = ((G * ocp + CO) * oh + yo[Y]) * ow + xo[X]
    key = pattern.reshape(-1) * n_groups + gon[neuron.reshape(-1)]
    uniq, syn = np.unique(key, return_counts=True)
    per_group = in_c // cg
    pattern_of_input = (np.arange(in_c) // per_group)[:, None] * (h * w) + np.arange(h * w)[None, :]
    return np.tile(pattern_of_input.reshape(-1), operands), uniq // n_groups, uniq % n_groups, syn


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


def part_figures(mapping: Mapping, multicast: bool) -> list[PartFigures]:
    """The route figures of every part of ``mapping``, in ``mapping.parts`` order."""
    dests = [destinations(lg.layer, lg.gon, lg.n_groups) for lg in mapping.groups]
    return [PartFigures(p, *routes(mapping.mesh, p.src_node, *dests[p.layer_index], p.group_node, multicast))
            for p in mapping.parts]
