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
from sim.mapping.graph import graph_sources

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


def keeps_state(layer: LayerSpec) -> bool:
    """SNN: the layer keeps N values that its events update in place: membrane potentials,
    or a current layer's per-step accumulator (output ``current``, no neuron), held and
    moved exactly like membranes. A stateless max-pool keeps none."""
    return layer.has_neurons or layer.output == "current"


def event_bits(layer: LayerSpec, input_operands: int, mode: str, T: int, loop_order: str,
               act_bits: int, input_bits: int, current_operands: int = 0, current_bits: int = 0) -> int:
    """Bits of the layer's input and output events held in the buffer during one pass. ANN:
    the input activations (an operand that is the network input at ``input_bits``, the
    others at ``act_bits``) and the outputs at ``act_bits``. SNN: one bit per input and output
    neuron per step held (T steps under layer_major, one under time_major); the network's
    analog input is not an event. ``input_operands``: how many of the layer's operands are
    the network's *analog* input (1 or True for the first layer of a direct-encoded chain,
    else 0: under rate or event encoding the input is spikes, held like any layer's events,
    and the twin's input levels are activations at ``act_bits``); an add's input is its
    operands concatenated. Currents (output ``current``) are values of ``current_bits`` bits
    (SNN: membrane bits, per step held; ANN: psum bits): a current layer's N outputs and an
    add's ``current_operands`` operands."""
    n = layer.n_inputs // layer.n_operands
    from_layers = layer.n_operands - int(input_operands) - current_operands
    out = layer.n_neurons * (current_bits if layer.output == "current" else (act_bits if mode == "ann" else 1))
    currents = current_operands * n * current_bits
    if mode == "ann":
        return n * (int(input_operands) * input_bits + from_layers * act_bits) + currents + out
    steps = T if loop_order == "layer_major" else 1
    return steps * (from_layers * n + currents + out)


def held_bits(layers: list[LayerSpec], mode: str, T: int, loop_order: str, act_bits: int,
              input_bits: int, spike_input: bool = False, current_bits: int = 0) -> list[int]:
    """Per compute layer, the event bits the buffer must hold during its pass: its own input
    and output events (:func:`event_bits`) and every tensor live across it — produced before
    it and read by a layer after it, but not by it (a residual shortcut across its block).
    A live tensor takes what its consumer would hold of it: an output of N neurons N·ab
    bits (ANN) or one bit per neuron per step held (SNN); the analog input n·ib (ANN), none
    (SNN). ``spike_input``: the network input is stored spikes (rate or event encoding), held
    like a layer's output (n·ab in the twin, n bits per step held in the SNN), by the layers
    that read it too. A current layer's output is N values of ``current_bits`` bits (SNN:
    membrane bits, per step held; ANN: psum bits), held until the add reads them. For a
    chain nothing is live across a layer: the bits are :func:`event_bits`."""
    comp = compute_layers(layers)
    sources = graph_sources(layers)
    steps = T if loop_order == "layer_major" else 1
    last: dict[int | None, int] = {}
    size: dict[int | None, int] = {}
    for j, (l, srcs) in enumerate(zip(comp, sources)):
        for s in srcs:
            last[s] = j
            size[s] = l.n_inputs // l.n_operands

    def current(s: int | None) -> bool:
        return s is not None and comp[s].output == "current"

    def tensor(s: int | None) -> int:
        if current(s):
            return size[s] * current_bits * (1 if mode == "ann" else steps)
        if s is None and not spike_input:
            return size[s] * input_bits if mode == "ann" else 0
        return size[s] * (act_bits if mode == "ann" else steps)

    out = []
    for j, (l, srcs) in enumerate(zip(comp, sources)):
        own = event_bits(l, 0 if spike_input else srcs.count(None), mode, T, loop_order, act_bits, input_bits,
                         sum(map(current, srcs)), current_bits)
        live = sum(tensor(s) for s, end in last.items()
                   if (-1 if s is None else s) < j < end and s not in srcs)
        out.append(own + live)
    return out


def state_bits_per_channel(layer: LayerSpec, mode: str, weight_bits: int, membrane_bits: int) -> tuple[int, int]:
    """(weight bits, membrane bits) of one output channel of ``layer``: SNN membranes only
    for layers that keep state (:func:`keeps_state`: neurons, or a current layer's
    accumulator; a max-pool is stateless), none in ANN mode."""
    k, pix = channels_pixels(layer)
    mem = pix * membrane_bits if mode == "snn" and keeps_state(layer) else 0
    return layer.n_weights // k * weight_bits, mem


def current_bits(spec: ArchSpec, mode: str) -> int:
    """Bits of one current value handed from a current layer to its add: the membrane width
    (SNN: its accumulator) or the psum width (ANN: its pre-activation)."""
    return spec.data.membrane_bits if mode == "snn" else spec.data.psum_bits


def tiled_layers(spec: ArchSpec, layers: list[LayerSpec]) -> set[str]:
    """The layers ``snn_weight_tiling`` tiles: all (``true``), none (``false``) or the ones it
    lists, which must be compute layers of ``layers`` (ParameterError naming the others)."""
    value = spec.mapping["snn_weight_tiling"]
    names = [l.name for l in compute_layers(layers)]
    if value is True:
        return set(names)
    if not value:
        return set()
    unknown = [n for n in value if n not in names]
    if unknown:
        raise ParameterError(spec.path, "mapping.snn_weight_tiling",
                             f"no compute layer named {', '.join(map(repr, unknown))} (layers: {', '.join(names)})")
    return set(value)


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
    k, _ = channels_pixels(l)
    per = sum(state_bits_per_channel(l, "snn", d.weight_bits, d.membrane_bits))
    tile = k if per == 0 else min(k, max(0, cap - io_bits) // per)
    if tile == 0:
        raise ParameterError(spec.path, "components.global_buffer.capacity_bytes",
                             f"{cap // 8} bytes cannot hold one output channel's weights "
                             f"and membranes of layer {l.name} beside its events (mapping.snn_weight_tiling)")
    full, rest = divmod(k, tile)
    return full * math.ceil(tile / rows) + (math.ceil(rest / rows) if rest else 0)


def plan(spec: ArchSpec, layers: list[LayerSpec], T: int, mode: str, act_bits: int,
         ideal: bool = False, spike_input: bool = False) -> list[LayerResidency]:
    """One :class:`LayerResidency` per compute layer of ``layers`` (passthroughs dropped), in
    order, for ``mode`` ("snn" or "ann") at ``act_bits`` ANN activation bits.

    ``layers``: every layer, passthroughs included (the graph's edges run through them).
    Buffer space goes to the layer's events and the tensors live across it
    (:func:`held_bits`) first, then to weights, then (SNN) to membrane potentials, whole
    output channels at a time; a stateless max-pool holds no membrane (k_m = K, 0 bits); a
    current layer's accumulator counts as its membranes.
    ``layer_major``: each layer has the buffer to itself. ``time_major`` (SNN): all layers
    stay live across steps and share it: the largest layer's held event bits are set aside,
    then weights in layer order, then membranes in layer order.
    ``snn_weight_tiling`` (SNN): every layer (``true``) or the listed ones: everything
    resident, in tiles of whole channels.
    ``ideal``: everything resident, nothing spilled, one pass per channel pass.
    ``spike_input``: the trace's input is stored spikes (rate or event encoding), held as
    events by the layers that read it (:func:`held_bits`).

    ParameterError (even with ``ideal``: the simulator refuses such a spec): tiling without
    layer_major; a tile that cannot hold one channel; a layer of which not one channel's
    weights fit the buffer."""
    check_tiling(spec)
    d, cap = spec.data, spec[GLB].capacity_bytes * 8
    rows, cols = spec[PE].rows, spec[PE].cols
    wb, mb = d.weight_bits, d.membrane_bits
    loop = spec.mapping["loop_order"]
    tiled = tiled_layers(spec, layers)   # checked in either mode; only the SNN tiles
    if mode != "snn":
        tiled = set()
    io = held_bits(layers, mode, T, loop, act_bits, d.input_bits, spike_input, current_bits(spec, mode))
    layers = compute_layers(layers)
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
        if mode == "snn" and not keeps_state(l):  # stateless (max-pool): no membrane to hold
            mch = k
        elif mode == "snn":
            avail = max(0, pool) if shared else fr
            mch = min(k, avail // (pix * mb))
            if shared:
                pool -= mch * pix * mb
        cp = math.ceil(k / rows)
        passes = cp
        if l.name in tiled:
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


def resident_bits(spec: ArchSpec, layers: list[LayerSpec], T: int, act_bits: int,
                  spike_input: bool = False) -> int:
    """Global-buffer bits with which every compute layer is fully resident in both modes: its
    events and the tensors live across it (:func:`held_bits`), all its weights and (SNN) all
    its membranes at once; under SNN ``time_major`` every layer's weights and membranes
    beside the largest such event bits. ``spike_input``: as for :func:`plan`."""
    d, loop = spec.data, spec.mapping["loop_order"]
    need = 0
    for mode in MODES:
        io = held_bits(layers, mode, T, loop, act_bits, d.input_bits, spike_input, current_bits(spec, mode))
        state = []
        for l in compute_layers(layers):
            k, _ = channels_pixels(l)
            state.append(k * sum(state_bits_per_channel(l, mode, d.weight_bits, d.membrane_bits)))
        if mode == "snn" and loop == "time_major":
            need = max(need, max(io) + sum(state))
        else:
            need = max(need, max(e + s for e, s in zip(io, state)))
    return need
