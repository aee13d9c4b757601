"""Placement policy of the spatial dataflow (``spatial_dataflow``): which PEs hold each layer.

The one implementation of the Placement section of docs/architectures/spatial_dataflow.md,
used by the simulator (:mod:`sim.architectures.spatial_dataflow`) and the closed form
(:mod:`sim.analytic.spatial_dataflow`):

- a layer's resident state is its weights, plus in SNN mode its membranes (neuron layers,
  and a current layer's N accumulators: a max-pool is stateless) and, for a layer that
  reads the analog input, its constant input current (:func:`state_bits`);
- its group gets the fewest PEs whose local memories hold that state, ⌈state / local memory⌉
  (at least one);
- groups take consecutive PEs in boustrophedon (snake) order over the rows × cols grid, in
  layer order; with ``on_overflow: fold`` a new fold starts, on the whole chip again, where
  the next group does not fit (``error``: a ParameterError);
- with ``pe_allocation: balanced`` each fold's spare PEs go one at a time to the group with
  the most dense operations (MACs, adds, compares: N × fan-in) per PE (ties: the earlier
  layer);
- the network is a layer graph: each layer has one input *edge* per source layer (an add
  has one per operand, in ``inputs`` order; passthroughs such as flatten resolved); an
  edge's hops are max(1, the Manhattan distance between the consumer's centre PE and its
  source's), measured from the input port when the source is the network input or ran in an
  earlier fold (its outputs come back from DRAM: the edge is ``via_dram``); a group's
  ``hops`` are its farthest edge's (a chain's one edge: the producer, or the input port for
  the first group of a fold);
- a layer whose output feeds a consumer in a later fold writes it to DRAM once
  (``writes_out``); every such consumer reads it back over its ``via_dram`` edge.

*Layer 1* is a compute layer that reads the network input (passthroughs dropped): it
consumes the analog input, so in SNN mode it also holds that input's current. On the bundled
chain networks this is the first compute layer.

Only the standard library, :mod:`sim.errors` and the trace vocabulary
(:mod:`sim.trace.schema`) at run time: nothing here imports simpy, numba, the engine, the
kernels, the architectures, the closed forms or the workload.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.errors import ParameterError
from sim.mapping.graph import graph_sources

if TYPE_CHECKING:
    from sim.arch.spec import ArchSpec, DataWidths
    from sim.trace import LayerSpec

#: PE (in snake order) where the chip's input port sits: each fold's input (the image, or a
#: fold boundary read back from DRAM) arrives there, so the first group of a fold pays the hops
#: from it (docs/architectures/spatial_dataflow.md, Placement: "or PE 0 for the chip's input").
#: A named constant rather than a spec field: the spec is embedded in every report.
INPUT_PORT_PE = 0


@dataclass(frozen=True)
class Edge:
    """One input of a layer: the compute layer ``source`` (None: the network input) whose
    outputs it receives, over ``hops`` hops; ``via_dram``: the source ran in an earlier fold,
    so the outputs are read back from DRAM and enter at the input port."""

    source: str | None
    hops: int
    via_dram: bool


@dataclass(frozen=True)
class Group:
    """A layer's PE group: ``pes`` PEs from ``first_pe`` in snake order; ``state_bits`` of
    resident state; ``hops`` from its farthest source's group (or the input port); in fold
    ``fold`` of ``folds``; ``fold_first`` / ``fold_last``: it is the first / last layer of its
    fold; ``edges``: one per source, in ``inputs`` order; ``writes_out``: a consumer runs in a
    later fold, so its outputs go to DRAM."""

    layer: str
    pes: int
    first_pe: int
    state_bits: int
    hops: int
    fold: int
    fold_first: bool
    fold_last: bool
    folds: int
    edges: tuple[Edge, ...] = ()
    writes_out: bool = False


def state_bits(layer: LayerSpec, data: DataWidths, mode: str, first: bool) -> int:
    """Bits ``layer`` keeps resident on its group in ``mode`` ("snn" or "ann"): its weights;
    in SNN mode also its membranes (none for a stateless max-pool; a current layer's N
    accumulators, at membrane bits) and, when it reads the analog input (``first``), its
    input current."""
    bits = layer.n_weights * data.weight_bits
    if mode == "snn" and (layer.has_neurons or layer.output == "current"):
        bits += layer.n_neurons * data.membrane_bits
        if first:
            bits += layer.n_neurons * data.psum_bits
    return bits


def snake_xy(index: int, cols: int) -> tuple[int, int]:
    """(row, col) of PE ``index`` when PEs are numbered boustrophedon over ``cols`` columns."""
    row, col = divmod(index, cols)
    return row, (col if row % 2 == 0 else cols - 1 - col)


def group_pes(spec: ArchSpec, layers: list[LayerSpec], mode: str) -> list[int]:
    """PEs each compute layer's state needs, ⌈state bits / local-memory bits⌉ (at least 1),
    in layer order."""
    cap = spec["local_memory"].capacity_bytes * 8
    srcs = graph_sources(layers)
    layers = _compute(layers)
    return [max(1, math.ceil(state_bits(l, spec.data, mode, s == [None]) / cap)) for l, s in zip(layers, srcs)]


def place(spec: ArchSpec, layers: list[LayerSpec], mode: str, ideal: bool = False) -> list[Group]:
    """The PE group of every compute layer of ``layers`` in ``mode``, in layer order (rules in
    the module docstring). ``ideal``: the model fits the chip in one fold whatever its size
    and every group is one hop from its producer (every group then starts at PE 0: nothing
    in the ideal case depends on where). Raises ParameterError when a layer alone exceeds the
    chip, or the model does with ``on_overflow: error``."""
    srcs = graph_sources(layers)
    layers = _compute(layers)
    rows, cols = spec["pe_array"].rows, spec["pe_array"].cols
    chip, cap = rows * cols, spec["local_memory"].capacity_bytes * 8
    bits = [state_bits(l, spec.data, mode, s == [None]) for l, s in zip(layers, srcs)]
    need = [max(1, math.ceil(b / cap)) for b in bits]
    last = len(layers) - 1
    name = lambda s: None if s is None else layers[s].name  # noqa: E731
    if ideal:
        return [Group(l.name, g, 0, b, 1, 0, i == 0, i == last, 1, tuple(Edge(name(s), 1, False) for s in ss))
                for i, (l, g, b, ss) in enumerate(zip(layers, need, bits, srcs))]
    where = "components.pe_array"
    for l, g in zip(layers, need):
        if g > chip:
            raise ParameterError(spec.path, where,
                                 f"layer {l.name} alone needs {g} PEs of {cap // 8} bytes "
                                 f"to hold its state; the chip has {chip}")
    if sum(need) > chip and spec.mapping["on_overflow"] == "error":
        raise ParameterError(spec.path, where,
                             f"the model does not fit on the chip: its layers need {sum(need)} PEs "
                             f"({cap // 8} bytes each), the chip has {chip} "
                             f"({rows}x{cols}); enlarge pe_array or local_memory, or set "
                             f"mapping.on_overflow=fold")
    folds = _folds(need, chip)
    pes = list(need)
    if spec.mapping["pe_allocation"] == "balanced":
        for fold in folds:
            _balance(pes, fold, [layers[i].dense_ops for i in fold], chip - sum(need[i] for i in fold))
    fold_of = {i: f for f, fold in enumerate(folds) for i in fold}
    later = [any(fold_of[j] > fold_of[i] for j, ss in enumerate(srcs) if i in ss) for i in range(len(layers))]
    port = snake_xy(INPUT_PORT_PE, cols)
    groups: list[Group] = []
    for f, fold in enumerate(folds):
        start, centre = 0, {}
        for i in fold:
            centre[i] = here = snake_xy(start + pes[i] // 2, cols)
            edges = []
            for s in srcs[i]:
                via_dram = s is not None and fold_of[s] < f
                there = port if s is None or via_dram else centre[s]
                edges.append(Edge(name(s), max(1, abs(here[0] - there[0]) + abs(here[1] - there[1])), via_dram))
            groups.append(Group(layers[i].name, pes[i], start, bits[i], max(e.hops for e in edges), f,
                                i == fold[0], i == fold[-1], len(folds), tuple(edges), later[i]))
            start += pes[i]
    return groups


def _compute(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The layers that compute (passthroughs dropped), in execution order."""
    return [l for l in layers if l.output != "passthrough"]


def _folds(need: list[int], chip: int) -> list[list[int]]:
    """Layer indices per fold: groups fill the chip in layer order, a new fold starting where
    the next group does not fit."""
    folds: list[list[int]] = [[]]
    used = 0
    for i, g in enumerate(need):
        if used + g > chip:
            folds.append([])
            used = 0
        folds[-1].append(i)
        used += g
    return folds


def _balance(pes: list[int], fold: list[int], dense_ops: list[int], spare: int) -> None:
    """Hands ``spare`` PEs, one at a time, to the group of ``fold`` with the most dense
    operations (MACs, adds, compares) per PE (ties: the earlier layer), updating ``pes`` in
    place."""
    # a heap keyed (−work per PE, layer index) pops the busiest group, the earlier one on ties
    work = {i: max(1, m) for i, m in zip(fold, dense_ops)}
    heap = [(-work[i] / pes[i], i) for i in fold]
    heapq.heapify(heap)
    for _ in range(spare):
        _, i = heapq.heappop(heap)
        pes[i] += 1
        heapq.heappush(heap, (-work[i] / pes[i], i))
