"""The systolic array's mapping policy: every layer as an im2col GEMM folded onto a rows x cols
PE array under a weight-, output- or input-stationary dataflow, with SCALE-Sim's fold order,
fold timing and access counts (docs/architectures/systolic_array.md).

A convolution is the GEMM of its im2col input (P output pixels x F = R·S·C fan-in) and its
filters (F x K); a linear layer is P = 1. The dataflow decides which GEMM dimension runs down
the array's rows (``Sr``), which across its columns (``Sc``) and which streams through time
(``T``), exactly as SCALE-Sim 3 (``topology_utils.calc_spatio_temporal_params``):

======== ============= ============= ===========
dataflow Sr (rows)     Sc (cols)     T (time)
======== ============= ============= ===========
ws       F (fan-in)    K (filters)   P (pixels)
os       P (pixels)    K (filters)   F (fan-in)
is       F (fan-in)    P (pixels)    K (filters)
======== ============= ============= ===========

The array runs ``ceil(Sr/rows) x ceil(Sc/cols)`` folds, column fold outer, row fold inner. A
fold of WS or IS takes ``2·rows + cols + T - 2`` cycles (load the stationary operand, fill,
stream, drain), of OS ``T + rows + cols - 2``. The simulator (:mod:`sim.architectures.systolic_array`)
and the closed form (:mod:`sim.analytic.systolic_array`) both count with this module, so the
policy is written once. numpy and the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ParameterError
from sim.mapping.graph import graph_sources

if TYPE_CHECKING:
    from sim.arch.spec import ArchSpec
    from sim.trace.schema import LayerSpec

IFMAP, FILTER, OFMAP, PE, DRAM = "ifmap_buffer", "filter_buffer", "ofmap_buffer", "pe_array", "dram"
DATAFLOWS = ("ws", "os", "is")
GEMM_KINDS = ("conv2d", "linear")


@dataclass(frozen=True)
class Gemm:
    """One GEMM layer's geometry: ``groups`` independent GEMMs of P x F by F x K (a grouped
    convolution runs its groups one after another, as SCALE-Sim runs a depthwise layer
    channel by channel). ``in_unique``: the padded input elements some window reads (what
    the layer fetches from DRAM once); ``in_padded``: the padded input map's elements."""

    P: int
    F: int
    K: int
    groups: int
    in_unique: int
    in_padded: int

    @property
    def macs(self) -> int:
        return self.P * self.F * self.K * self.groups

    @property
    def weights(self) -> int:
        return self.F * self.K * self.groups


@dataclass(frozen=True)
class _Conv:
    """A conv2d layer's geometry, defaults filled in."""

    c: int
    h: int
    w: int
    k: int
    ho: int
    wo: int
    r: int
    s: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    g: int


def _conv(layer: "LayerSpec") -> _Conv:
    (c, h, w), (k, ho, wo) = layer.input_shape, layer.output_shape
    return _Conv(c, h, w, k, ho, wo, *layer.kernel, *(layer.stride or (1, 1)), *(layer.padding or (0, 0)),
                 *layer.dilation_hw, layer.groups)


def _covered(size: int, out: int, kernel: int, stride: int, dilation: int) -> int:
    """Positions of a padded axis of ``size`` that some window reads."""
    pos = {o * stride + k * dilation for o in range(out) for k in range(kernel)}
    return sum(1 for p in pos if p < size)


def gemm(layer: "LayerSpec") -> Gemm | None:
    """The GEMM of a conv2d or linear layer; None for any other kind (pooling, add, ...)."""
    if layer.kind == "linear":
        return Gemm(1, layer.n_inputs, layer.output_shape[0], 1, layer.n_inputs, layer.n_inputs)
    if layer.kind != "conv2d":
        return None
    v = _conv(layer)
    hp, wp = v.h + 2 * v.ph, v.w + 2 * v.pw
    unique = _covered(hp, v.ho, v.r, v.sh, v.dh) * _covered(wp, v.wo, v.s, v.sw, v.dw) * v.c
    return Gemm(v.ho * v.wo, v.r * v.s * (v.c // v.g), v.k // v.g, v.g, unique, hp * wp * v.c)


@dataclass(frozen=True)
class Folds:
    """A GEMM folded onto the array (all groups). Counts follow SCALE-Sim 3's
    ``systolic_compute_{ws,os,is}``: ``ifmap_reads``, ``filter_reads`` and ``ofmap_writes``
    are its SRAM IFMAP reads, SRAM Filter reads and SRAM OFMAP writes (partial sums
    included: one per row fold in WS and IS), except that OS writes each output once (SCALE-Sim
    also adds rows + cols per fold to its OS count: docs/peers.md). ``psum_reads``: partial
    sums read back to accumulate (every row fold after the first, WS and IS)."""

    dataflow: str
    rows: int
    cols: int
    Sr: int
    Sc: int
    T: int
    row_folds: int
    col_folds: int
    groups: int
    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int
    psum_reads: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds * self.groups

    @property
    def overhead(self) -> int:
        """Cycles of a fold besides its T streamed rows: load, fill and drain."""
        if self.dataflow == "os":
            return self.rows + self.cols - 2
        return 2 * self.rows + self.cols - 2

    @property
    def fold_cycles(self) -> int:
        return self.overhead + self.T

    @property
    def compute_cycles(self) -> int:
        """Cycles of every fold back to back (SCALE-Sim's "Total Cycles" is one less: the
        0-based index of the last cycle)."""
        return self.folds * self.fold_cycles

    @property
    def mapping_efficiency(self) -> float:
        """SCALE-Sim's mapping efficiency: the mean over folds of the PEs mapped / rows·cols."""
        return self.Sr * self.Sc / (self.row_folds * self.col_folds * self.rows * self.cols)

    @property
    def compute_utilisation(self) -> float:
        """SCALE-Sim's compute utilisation: the mean over folds of mapped PEs x T over
        rows·cols x the fold's cycles as it counts them (``2·rows + 2·cols + T - 3`` for WS
        and IS: its filter or ifmap demand rows plus the columns' skew; ``T + rows + cols - 2``
        for OS)."""
        span = self.T + self.rows + self.cols - 2 if self.dataflow == "os" else \
            2 * self.rows + 2 * self.cols + self.T - 3
        return self.Sr * self.Sc * self.T / (self.row_folds * self.col_folds * self.rows * self.cols * span)


def fold(g: Gemm, rows: int, cols: int, dataflow: str) -> Folds:
    """``g`` folded onto a ``rows`` x ``cols`` array under ``dataflow``."""
    P, F, K, G = g.P, g.F, g.K, g.groups
    if dataflow == "ws":
        Sr, Sc, T = F, K, P
    elif dataflow == "os":
        Sr, Sc, T = P, K, F
    elif dataflow == "is":
        Sr, Sc, T = F, P, K
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    rf, cf = math.ceil(Sr / rows), math.ceil(Sc / cols)
    if dataflow == "ws":
        ifr, flr, ofw = cf * P * F, F * K, rf * P * K
    elif dataflow == "os":
        ifr, flr, ofw = cf * P * F, rf * F * K, P * K
    else:
        ifr, flr, ofw = P * F, cf * F * K, rf * P * K
    psum = ofw - P * K
    return Folds(dataflow, rows, cols, Sr, Sc, T, rf, cf, G, ifr * G, flr * G, ofw * G, psum * G)


def vector_cycles(ops: int, cols: int) -> int:
    """Cycles of a layer that is not a GEMM (pooling, a residual add, the neuron updates): its
    ops on the array's ``cols`` output lanes, one op per lane per cycle."""
    return -(-int(ops) // cols)


# -- what stays on chip -----------------------------------------------------------------
@dataclass(frozen=True)
class LayerPlan:
    """The static mapping of one compute layer in one mode.

    ``gemm`` / ``folds``: None for a layer that is not a GEMM. ``ifmap_passes`` /
    ``filter_passes``: how many times the layer's input / weights come from DRAM per pass of
    the layer (1 when the operand's working set fits the live part of its buffer; else the
    sweeps the dataflow makes over it). ``input_from_dram``: the layer reads its input from
    DRAM (``layer_io: dram``, or it reads the network input); ``output_to_dram``: it writes
    its output there. ``weights_per_step`` (SNN): the weights do not fit the filter buffer's
    live part, so they come again every time step; ``membranes_fit`` (SNN): the layer's
    membranes (or a current layer's accumulators) fit the ofmap buffer. ``output_spilled`` /
    ``input_spilled`` (``layer_io: on_chip``): the layer's output does not fit the ifmap and
    ofmap buffers, so it goes to DRAM / the layer reads such an output from DRAM."""

    name: str
    gemm: Gemm | None
    folds: Folds | None
    ifmap_passes: int
    filter_passes: int
    input_from_dram: bool
    output_to_dram: bool
    weights_per_step: bool
    membranes_fit: bool
    input_spilled: bool = False
    output_spilled: bool = False

    def as_report_dict(self) -> dict:
        out = {"ifmap_passes": self.ifmap_passes, "filter_passes": self.filter_passes,
               "input_from_dram": self.input_from_dram, "output_to_dram": self.output_to_dram,
               "weights_per_step": self.weights_per_step, "membranes_fit": self.membranes_fit,
               "input_spilled": self.input_spilled, "output_spilled": self.output_spilled}
        if self.folds is not None:
            f = self.folds
            out.update({"P": self.gemm.P, "F": self.gemm.F, "K": self.gemm.K, "groups": self.gemm.groups,
                        "row_folds": f.row_folds, "col_folds": f.col_folds, "folds": f.folds,
                        "fold_cycles": f.fold_cycles, "compute_cycles": f.compute_cycles,
                        "mapping_efficiency": f.mapping_efficiency,
                        "compute_utilisation": f.compute_utilisation})
        return out


def live_bits(spec: "ArchSpec", buffer: str) -> int:
    """Bits of ``buffer`` that serve the array: half of it with ``double_buffered`` (the other
    half prefetches, SCALE-Sim's 50/50 split), else all of it."""
    bits = spec[buffer].capacity_bytes * 8
    return bits // 2 if spec.mapping["double_buffered"] else bits


def sweeps(f: Folds) -> tuple[int, int]:
    """(input sweeps, weight sweeps): how many times the dataflow reads its whole input and
    its weights. WS reads the input once per column fold and the weights once; OS the input
    once per column fold and each column fold's weights once per row fold; IS the input
    once and the weights once per column fold."""
    if f.dataflow == "ws":
        return f.col_folds, 1
    if f.dataflow == "os":
        return f.col_folds, f.row_folds
    return 1, f.col_folds


def operand_passes(spec: "ArchSpec", g: Gemm, f: Folds, in_bits: int, ideal: bool) -> tuple[int, int]:
    """(ifmap passes, filter passes) from DRAM: 1 where the operand's working set fits the live
    part of its buffer, else the dataflow's sweeps over it (:func:`sweeps`). The working set
    re-read is the whole input (WS, OS), the whole filter (IS) or one column fold's filters
    (OS: F x min(K, cols) weights per group, re-read once per row fold)."""
    if ideal:
        return 1, 1
    wb = spec.data.weight_bits
    in_sweeps, w_sweeps = sweeps(f)
    in_fits = g.in_unique * in_bits <= live_bits(spec, IFMAP)
    if f.dataflow == "os":
        w_set = g.F * min(g.K, f.cols)
    else:
        w_set = g.F * g.K * g.groups
    w_fits = w_set * wb <= live_bits(spec, FILTER)
    return (1 if in_fits else in_sweeps), (1 if w_fits else w_sweeps)


def check_mapping(spec: "ArchSpec") -> None:
    """ParameterError for a mapping the array cannot run: ``skip_zero_rows`` needs a dataflow
    that streams the im2col input (ws or os)."""
    if spec.mapping["skip_zero_rows"] and spec.mapping["dataflow"] == "is":
        raise ParameterError(spec.path, "mapping.skip_zero_rows",
                             "needs dataflow ws or os (input stationary streams the filters, not the input)")


def plan(spec: "ArchSpec", layers: list["LayerSpec"], T: int, mode: str, act_bits: int,
         ideal: bool = False, spike_input: bool = False) -> list[LayerPlan]:
    """One :class:`LayerPlan` per compute layer of ``layers`` (passthroughs dropped), in
    order, for ``mode`` at ``act_bits`` ANN activation bits.

    The input's bits per element: the analog image's ``input_bits`` for the first layer of
    a direct-encoded network, ``act_bits`` in the ANN twin, 1 (a spike map) in the SNN.
    ``layer_io: dram``: every layer reads its input from DRAM and writes its output back, as
    SCALE-Sim runs layers; ``on_chip``: only the network's input comes from DRAM and only the
    readout goes back, except for an output larger than the ifmap or the ofmap buffer
    (:func:`output_bits` per element), which goes to DRAM and is read back by its consumers
    (their whole input from DRAM). ``ideal``: every operand fetched once, weights, membranes
    and activations resident.

    ParameterError: ``skip_zero_rows`` with dataflow ``is``."""
    check_mapping(spec)
    d = spec.data
    rows, cols = spec[PE].rows, spec[PE].cols
    dataflow = spec.mapping["dataflow"]
    on_chip = spec.mapping["layer_io"] == "on_chip"
    comp = [l for l in layers if l.output != "passthrough"]
    sources = graph_sources(layers)
    room = min(spec[IFMAP].capacity_bytes, spec[OFMAP].capacity_bytes) * 8
    spilled = [on_chip and not ideal and l.output != "potential" and
               l.n_neurons * output_bits(spec, l, mode, act_bits) > room for l in comp]
    out = []
    for i, l in enumerate(comp):
        reads_input = None in sources[i]
        in_spilled = any(s is not None and spilled[s] for s in sources[i])
        if mode == "snn":
            in_bits = d.input_bits if (reads_input and not spike_input) else 1
        else:
            in_bits = d.input_bits if (reads_input and not spike_input) else act_bits
        g = gemm(l)
        f = fold(g, rows, cols, dataflow) if g is not None else None
        ip, wp = operand_passes(spec, g, f, in_bits, ideal) if g is not None else (1, 1)
        w_fit = ideal or g is None or g.weights * d.weight_bits <= live_bits(spec, FILTER)
        mem_fit = ideal or l.n_neurons * d.membrane_bits <= spec[OFMAP].capacity_bytes * 8
        out.append(LayerPlan(l.name, g, f, ip, wp, reads_input or in_spilled or not on_chip,
                             l.output == "potential" or spilled[i] or not on_chip, mode == "snn" and not w_fit,
                             mem_fit, in_spilled, spilled[i]))
    return out


def output_bits(spec: "ArchSpec", layer: "LayerSpec", mode: str, act_bits: int) -> int:
    """Bits of one output element as it is handed to the next layer: an activation level (ANN)
    or a spike (SNN, per step); a current (output ``current``) or a readout at ``psum_bits``
    (ANN) or ``membrane_bits`` (SNN)."""
    if layer.output == "spikes":
        return act_bits if mode == "ann" else 1
    return spec.data.psum_bits if mode == "ann" else spec.data.membrane_bits


# -- skip_zero_rows: the streamed input vectors that hold a spike ------------------------
def im2col_nonzero(layer: "LayerSpec", spikes: np.ndarray) -> np.ndarray:
    """Boolean im2col of one time step's input ``spikes`` (flat over the layer's input, C x H x W):
    [groups, P, F] with SCALE-Sim's fan-in order (filter row, filter column, channel; channel
    fastest); a padded tap is False. A linear layer is P = 1."""
    if layer.kind == "linear":
        return spikes.reshape(1, 1, -1).astype(bool)
    v = _conv(layer)
    c, h, w, ho, wo, r, s, g = v.c, v.h, v.w, v.ho, v.wo, v.r, v.s, v.g
    sh, sw, ph, pw, dh, dw = v.sh, v.sw, v.ph, v.pw, v.dh, v.dw
    x = np.zeros((c, h + 2 * ph, w + 2 * pw), dtype=bool)
    x[:, ph:ph + h, pw:pw + w] = spikes.reshape(c, h, w)
    iy = (np.arange(ho) * sh)[:, None] + np.arange(r)[None, :] * dh          # [ho, r]
    ix = (np.arange(wo) * sw)[:, None] + np.arange(s)[None, :] * dw          # [wo, s]
    cols = x[:, iy[:, None, :, None], ix[None, :, None, :]]                  # [c, ho, wo, r, s]
    cols = cols.reshape(g, c // g, ho * wo, r, s).transpose(0, 2, 3, 4, 1)    # [g, P, r, s, c/g]
    return cols.reshape(g, ho * wo, r * s * (c // g))


def streamed_rows(f: Folds, nz: np.ndarray) -> np.ndarray:
    """Per fold, in fold order (group, column fold, row fold), the streamed input vectors that
    hold a spike: WS streams, per row fold, one F-slice of ``rows`` taps per output pixel; OS,
    per row fold of ``rows`` pixels, one fan-in tap across them. ``nz``: :func:`im2col_nonzero`.
    A skipped vector costs no cycle; the others cost one each (T of a dense fold)."""
    G, P, F = nz.shape
    rows = f.rows
    if f.dataflow == "ws":
        pad = f.row_folds * rows - F
        x = np.concatenate([nz, np.zeros((G, P, pad), bool)], axis=2) if pad else nz
        per_rf = x.reshape(G, P, f.row_folds, rows).any(axis=3).sum(axis=1)      # [G, rf]
    elif f.dataflow == "os":
        pad = f.row_folds * rows - P
        x = np.concatenate([nz, np.zeros((G, pad, F), bool)], axis=1) if pad else nz
        per_rf = x.reshape(G, f.row_folds, rows, F).any(axis=2).sum(axis=2)      # [G, rf]
    else:
        raise ValueError("streamed_rows: dataflow is streams no input")
    return np.repeat(per_rf[:, None, :], f.col_folds, axis=1).reshape(-1).astype(np.int64)
