"""The memory hierarchy's mapping policy: per layer, the passes over the PE array and what
lives in the global buffer (docs/architectures/memory_hierarchy.md, "Residency").

The simulator (:mod:`sim.architectures.memory_hierarchy`) counts with this plan and the
closed form (:mod:`sim.analytic.memory_hierarchy`) takes it as an input, so the policy is
written once. Stdlib only: nothing here imports simpy, numba, the engine, the kernels, the
architectures, the closed forms or the workload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.errors import ParameterError

if TYPE_CHECKING:
    from sim.arch.spec import ArchSpec
    from sim.trace.schema import LayerSpec

GLB, PE = "global_buffer", "pe_array"
MODES = ("snn", "ann")


@dataclass(frozen=True)
class LayerResidency:
    """The static mapping of one layer, per sample: passes over the PE array and the whole
    output channels whose weights and (SNN) membranes stay in the global buffer."""

    channels: int            # K: output channels (features for linear layers)
    pixels: int              # P: output pixels per channel (1 for linear layers)
    channel_passes: int      # cp = ceil(K / PE rows)
    pixel_passes: int        # pp = ceil(P / PE cols)
    weights_per_channel: int
    weight_channels_resident: int    # k_w
    membrane_channels_resident: int  # k_m (0 in ANN mode)
    io_spill_bits: int       # event bits per pass that do not fit beside each other
    tile_passes: int         # channel passes over all weight tiles (snn_weight_tiling); cp untiled

    def weights_nonresident(self) -> int:
        """Weights of the channels that are not resident (fetched again each time needed)."""
        return (self.channels - self.weight_channels_resident) * self.weights_per_channel

    def membranes_nonresident(self) -> int:
        """Membrane potentials of the channels that are not resident (to DRAM and back per step)."""
        return (self.channels - self.membrane_channels_resident) * self.pixels

    def as_report_dict(self) -> dict[str, int]:
        """The simulator report's ``extra["plan"][layer]`` entry (long names)."""
        return {"channels": self.channels, "pixels": self.pixels, "channel_passes": self.channel_passes,
                "pixel_passes": self.pixel_passes, "weights_per_channel": self.weights_per_channel,
                "weight_channels_resident": self.weight_channels_resident,
                "membrane_channels_resident": self.membrane_channels_resident,
                "io_spill_bits": self.io_spill_bits, "tile_passes": self.tile_passes}

    def as_residency_dict(self) -> dict[str, int]:
        """The closed form's per-layer ``residency`` entry (the symbols of docs/formulas.md)."""
        return {"K": self.channels, "P": self.pixels, "cp": self.channel_passes, "pp": self.pixel_passes,
                "weights_per_channel": self.weights_per_channel, "k_w": self.weight_channels_resident,
                "k_m": self.membrane_channels_resident, "spill_bits": self.io_spill_bits,
                "tile_passes": self.tile_passes}


def compute_layers(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The layers that compute (passthroughs such as flatten dropped), in execution order."""
    return [l for l in layers if l.output != "passthrough"]


def channels_pixels(layer: LayerSpec) -> tuple[int, int]:
    """(K output channels or features, P output pixels per channel; 1 for linear layers)."""
    if len(layer.output_shape) == 3:
        k, h, w = layer.output_shape
        return k, h * w
    return layer.output_shape[0], 1


def event_bits(layer: LayerSpec, first: bool, mode: str, T: int, loop_order: str,
               act_bits: int, input_bits: int) -> int:
    """Bits of the layer's input and output events held in the buffer during one pass. ANN:
    the input activations (the image at ``input_bits`` for layer 1) and the outputs at
    ``act_bits``. SNN: one bit per input and output neuron per step held (T steps under
    layer_major, one under time_major); layer 1's analog input is not an event."""
    if mode == "ann":
        return layer.n_inputs * (input_bits if first else act_bits) + layer.n_neurons * act_bits
    steps = T if loop_order == "layer_major" else 1
    return steps * ((0 if first else layer.n_inputs) + layer.n_neurons)


def check_tiling(spec: ArchSpec) -> None:
    """ParameterError unless ``snn_weight_tiling`` runs under ``layer_major`` (either mode)."""
    if spec.mapping["snn_weight_tiling"] and spec.mapping["loop_order"] != "layer_major":
        raise ParameterError(spec.path, "mapping.snn_weight_tiling",
                             "needs loop_order: layer_major (time_major keeps every layer live)")


def _tile_passes(spec: ArchSpec, l: LayerSpec, io_bits: int) -> int:
    """With ``snn_weight_tiling``: the layer runs in tiles of as many output channels as fit,
    weights and membranes, beside its events; each tile runs all T steps and re-reads the
    step's input spikes once per PE-array channel pass. Returns the passes over all tiles."""
    d, cap, rows = spec.data, spec[GLB].capacity_bytes * 8, spec[PE].rows
    k, pix = channels_pixels(l)
    per = l.n_weights // k * d.weight_bits + pix * d.membrane_bits
    tile = min(k, max(0, cap - io_bits) // per)
    if tile == 0:
        raise ParameterError(spec.path, "components.global_buffer.capacity_bytes",
                             f"{cap // 8} bytes cannot hold one output channel's weights "
                             f"and membranes of layer {l.name} beside its events (mapping.snn_weight_tiling)")
    full, rest = divmod(k, tile)
    return full * math.ceil(tile / rows) + (math.ceil(rest / rows) if rest else 0)


def plan(spec: ArchSpec, layers: list[LayerSpec], T: int, mode: str, act_bits: int,
         ideal: bool = False) -> list[LayerResidency]:
    """One :class:`LayerResidency` per compute layer of ``layers`` (passthroughs dropped), in
    order, for ``mode`` ("snn" or "ann") at ``act_bits`` ANN activation bits.

    Buffer space goes to the layer's events first, then to weights, then (SNN) to membrane
    potentials, whole output channels at a time. ``layer_major``: each layer has the buffer to
    itself. ``time_major`` (SNN): all layers stay live across steps and share it: the largest
    layer's events are set aside, then weights in layer order, then membranes in layer order.
    ``snn_weight_tiling`` (SNN): everything resident, in tiles of whole channels.
    ``ideal``: everything resident, nothing spilled, one pass per channel pass.

    ParameterError (even with ``ideal``: the simulator refuses such a spec): tiling without
    layer_major; a tile that cannot hold one channel; a layer of which not one channel's
    weights fit the buffer."""
    check_tiling(spec)
    layers = compute_layers(layers)
    d, cap = spec.data, spec[GLB].capacity_bytes * 8
    rows, cols = spec[PE].rows, spec[PE].cols
    wb, mb = d.weight_bits, d.membrane_bits
    loop = spec.mapping["loop_order"]
    tiling = mode == "snn" and spec.mapping["snn_weight_tiling"]
    io = [event_bits(l, i == 0, mode, T, loop, act_bits, d.input_bits) for i, l in enumerate(layers)]
    shared = loop == "time_major" and mode == "snn"
    pool = cap - (max(io) if shared else 0)
    weight_ch, free = [], []
    for l, e in zip(layers, io):
        k, _ = channels_pixels(l)
        per = l.n_weights // k * wb
        avail = max(0, pool) if shared else max(0, cap - e)
        n = k if per == 0 else min(k, avail // per)
        weight_ch.append(n)
        free.append(avail - n * per)
        if shared:
            pool -= n * per
    out = []
    for l, e, wch, fr in zip(layers, io, weight_ch, free):
        k, pix = channels_pixels(l)
        mch = 0
        if mode == "snn":
            avail = max(0, pool) if shared else fr
            mch = min(k, avail // (pix * mb))
            if shared:
                pool -= mch * pix * mb
        cp = math.ceil(k / rows)
        passes = cp
        if tiling:
            wch, mch, passes = k, k, _tile_passes(spec, l, e)
        out.append(LayerResidency(k, pix, cp, math.ceil(pix / cols), l.n_weights // k, wch, mch,
                                  max(0, e - cap), passes))
    # checked once the whole plan stands, so a tiling error names its layer first
    for l, r in zip(layers, out):
        if r.weights_per_channel and r.weight_channels_resident == 0 and r.weights_per_channel * wb > cap:
            raise ParameterError(spec.path, "components.global_buffer.capacity_bytes",
                                 f"{cap // 8} bytes cannot stage one output channel's "
                                 f"weights of layer {l.name} ({r.weights_per_channel} weights)")
    if ideal:
        out = [LayerResidency(r.channels, r.pixels, r.channel_passes, r.pixel_passes, r.weights_per_channel,
                              r.channels, r.channels if mode == "snn" else 0, 0, r.channel_passes)
               for r in out]
    return out


def resident_bits(spec: ArchSpec, layers: list[LayerSpec], T: int, act_bits: int) -> int:
    """Global-buffer bits with which every compute layer is fully resident in both modes: its
    events, all its weights and (SNN) all its membranes at once; under SNN ``time_major``
    every layer's weights and membranes beside the largest layer's events."""
    layers = compute_layers(layers)
    d, loop = spec.data, spec.mapping["loop_order"]
    need = 0
    for mode in MODES:
        io = [event_bits(l, i == 0, mode, T, loop, act_bits, d.input_bits) for i, l in enumerate(layers)]
        state = []
        for l in layers:
            k, pix = channels_pixels(l)
            state.append(k * (l.n_weights // k) * d.weight_bits + (k * pix * d.membrane_bits if mode == "snn" else 0))
        if mode == "snn" and loop == "time_major":
            need = max(need, max(io) + sum(state))
        else:
            need = max(need, max(e + s for e, s in zip(io, state)))
    return need
