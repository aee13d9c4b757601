"""The layer graph as the mapping policies and closed forms see it: per compute layer, the
compute layers it reads. One function for every architecture (numpy-free, engine-free)."""

from __future__ import annotations

from sim.trace.schema import NETWORK_INPUT, LayerSpec

#: Per compute layer, the compute layers it reads (indices; None: the network input).
Sources = list[list[int | None]]


def graph_sources(layers: list[LayerSpec]) -> Sources:
    """Per compute layer of ``layers`` (a trace's layers in execution order; passthroughs such
    as flatten may be included or dropped), the indices among the compute layers of the layers
    it consumes, in ``inputs`` order, passthroughs resolved to what they read; None stands for
    the network input. A layer without ``inputs`` reads the one before it (a chain). An input
    the list does not hold is a passthrough the caller dropped: it stands for the compute
    layer before the reader (a flatten in front of a linear layer). The same graph as
    ``Workload.sources``."""
    out: dict[str, list[int | None]] = {}
    index: dict[str, int] = {}
    prev = NETWORK_INPUT
    for l in layers:
        srcs: list[int | None] = []
        for name in l.inputs or (prev,):
            if name == NETWORK_INPUT:
                srcs.append(None)
            elif name in index:
                srcs.append(index[name])
            elif name in out:  # a passthrough: its own sources
                srcs.extend(out[name])
            else:
                srcs.append(len(index) - 1 if index else None)
        out[l.name] = srcs
        if l.output != "passthrough":
            index[l.name] = len(index)
        prev = l.name
    return [out[l.name] for l in layers if l.output != "passthrough"]
