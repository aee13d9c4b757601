"""SCALE-Sim topology rows chained into traces (:mod:`sim.arch.scalesim`,
``run_sim.py import-scalesim``; docs/peers.md, "SCALE-Sim").

A row reads the previous row's output when its channels match and its padded input is that
output, pooled by an integer factor q and padded by p on every side (p smaller than the
filter; "same" padding preferred): it becomes a conv2d with padding p, behind a q x q max-pool
when q > 1. A fully connected row (a 1x1 filter on a 1x1 map) reads the previous output
flattened. Any other row starts a new segment (a new trace), as does a row whose output
SCALE-Sim rounds up (its input is extended) or a chain that would pass the trace limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sim.trace.limits import LimitExceeded, check_limits
from sim.trace.schema import NETWORK_INPUT, LayerSpec

#: A depthwise row: SCALE-Sim (topology_utils.load_arrays_conv) runs a row whose name
#: contains this text as one layer per input channel, each with one channel and all the
#: row's filters; here it is one conv with groups = channels.
DEPTHWISE_MARK = "DP"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TopologyRow:
    """One row of a SCALE-Sim conv topology: its input is already padded, one stride for
    both axes, its output rounds up (:attr:`ofmap_h`)."""

    line: int
    name: str
    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    num_filters: int
    stride: int

    @property
    def depthwise(self) -> bool:
        return DEPTHWISE_MARK in self.name

    @property
    def ofmap_h(self) -> int:
        return -(-(self.ifmap_h - self.filt_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        return -(-(self.ifmap_w - self.filt_w + self.stride) // self.stride)

    @property
    def input_hw(self) -> tuple[int, int]:
        """The trace's input height and width: the row's, extended where SCALE-Sim's output
        rounds up, so that a flooring convolution has SCALE-Sim's output size."""
        return ((self.ofmap_h - 1) * self.stride + self.filt_h,
                (self.ofmap_w - 1) * self.stride + self.filt_w)

    @property
    def extended(self) -> bool:
        return self.input_hw != (self.ifmap_h, self.ifmap_w)

    @property
    def macs(self) -> int:
        """SCALE-Sim's MACs of the row (all its channel layers for a depthwise row)."""
        return self.ofmap_h * self.ofmap_w * self.filt_h * self.filt_w * self.channels * self.num_filters

    @property
    def fully_connected(self) -> bool:
        """A fully connected layer written as a 1x1 filter on a 1x1 map."""
        return not self.depthwise and (self.ifmap_h, self.ifmap_w, self.filt_h, self.filt_w) == (1, 1, 1, 1)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """SCALE-Sim's output map (a depthwise row: its channel layers' outputs side by side)."""
        return (self.num_filters * (self.channels if self.depthwise else 1), self.ofmap_h, self.ofmap_w)

    def layer(self, name: str, input_hw: tuple[int, int] | None = None, padding: int = 0,
              output: str = "potential") -> LayerSpec:
        """The row as a conv2d (its groups and outputs per channel for a depthwise row) on an
        ``input_hw`` map padded by ``padding`` (None: the row's own input, padding 0)."""
        groups = self.channels if self.depthwise else 1
        h, w = self.input_hw if input_hw is None else input_hw
        return LayerSpec(name, "conv2d", (self.channels, h, w), self.output_shape,
                         (self.filt_h, self.filt_w), (self.stride, self.stride), (padding, padding),
                         groups=groups, output=output)


# -- the chain ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    """How a row reads the previous row's output: after a ``pool`` x ``pool`` max-pool of
    stride ``pool`` (1: none), as a conv2d padded by ``padding`` or (``flatten``) as a linear
    layer on the flattened map."""

    pool: int
    padding: int
    flatten: bool


def link(prev: tuple[int, int, int], row: TopologyRow) -> Link | None:
    """How ``row`` reads an output of shape ``prev`` (K, E, F); None where it cannot. A conv
    row: Channels K and IFMAP E/q + 2p by F/q + 2p, q dividing E and F, 0 <= p < its filter (no
    window wholly in the padding), no round-up extension; of several (q, p), the one with
    "same" padding p = (filter - 1) // 2 (a CNN's usual layer), else the smallest q. A fully
    connected row: Channels K·(E/q)·(F/q)."""
    k, e, f = prev
    if row.extended:
        return None
    found = []
    for q in (q for q in range(1, min(e, f) + 1) if e % q == f % q == 0):
        h, w = e // q, f // q
        if row.fully_connected:
            if row.channels == k * h * w:
                return Link(q, 0, True)
        elif row.channels == k and row.ifmap_h - h == row.ifmap_w - w:
            pad2, filt = row.ifmap_h - h, min(row.filt_h, row.filt_w)
            if pad2 >= 0 and pad2 % 2 == 0 and pad2 // 2 < filt:
                found.append((pad2 // 2 != (filt - 1) // 2, q, pad2 // 2))
    return Link(*min(found)[1:], False) if found else None


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def layer_names(rows: list[TopologyRow]) -> list[str]:
    """A trace layer name per row: the row's name with characters other than letters,
    digits, ``_ . -`` replaced by ``_``, made unique (and never the network input's name)."""
    taken = {NETWORK_INPUT}
    return [_unique(_UNSAFE.sub("_", row.name).strip("._") or "layer", taken) for row in rows]


@dataclass
class Segment:
    """Consecutive rows chained into one trace: its layers in order (the rows' and the
    inserted pools and flattens), the rows' layer names, how each reads its input (None: the
    network input) and the inserted layers (name -> kind, the row they feed, pool window)."""

    layers: list[LayerSpec]
    rows: list[str]
    links: dict[str, Link | None]
    inserted: dict[str, dict]


def _fits(layers: list[LayerSpec]) -> bool:
    try:
        check_limits(1, 1, layers[0].input_shape, layers)
    except LimitExceeded:
        return False
    return True


def segments(rows: list[TopologyRow], names: list[str]) -> list[Segment]:
    """The rows chained by :func:`link`, a new segment wherever a row cannot read the
    previous row's output (or the chain would pass the trace limits, sim.trace.limits).
    Each segment's last layer is a readout (output ``potential``), the others spike."""
    taken = set(names) | {NETWORK_INPUT}
    out: list[Segment] = []
    prev = None
    for row, name in zip(rows, names):
        lk = link(prev, row) if prev is not None else None
        added, inserted = [], {}
        if lk is not None:
            k, e, f = prev
            if lk.pool > 1:
                e, f = e // lk.pool, f // lk.pool
                pool = _unique(f"{name}_pool", taken)
                window = (lk.pool, lk.pool)
                added.append(LayerSpec(pool, "maxpool", prev, (k, e, f), window, window, (0, 0)))
                inserted[pool] = {"kind": "maxpool", "before": name, "window": lk.pool}
            if lk.flatten:
                flat = _unique(f"{name}_flatten", taken)
                added.append(LayerSpec(flat, "flatten", (k, e, f), (k * e * f,), output="passthrough"))
                inserted[flat] = {"kind": "flatten", "before": name}
                added.append(LayerSpec(name, "linear", (k * e * f,), (row.num_filters,)))
            else:
                added.append(row.layer(name, (e, f), lk.padding, output="spikes"))
            if not _fits(out[-1].layers + added):
                taken -= set(inserted)
                lk = None
        if lk is None:
            out.append(Segment([], [], {}, {}))
            added, inserted = [row.layer(name, output="spikes")], {}
        seg = out[-1]
        seg.layers += added
        seg.inserted.update(inserted)
        seg.rows.append(name)
        seg.links[name] = lk
        prev = row.output_shape
    for seg in out:
        seg.layers[-1] = replace(seg.layers[-1], output="potential")
    return out
