"""Classical memory hierarchy: DRAM <-> global buffer (SRAM) <-> PE array with register files.

The dataflow, every count and the residency rules are written out in
docs/architectures/memory_hierarchy.md; this module implements exactly that text.
Counts come from the trace's real events (sim.workload); time comes from a simpy tile
pipeline (sim.engine). Nothing here knows an energy price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import simpy

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, address_bits, split_evenly
from sim.engine import Dram, Ledger, PEArray, Sram, TilePipeline
from sim.engine.components import Tile
from sim.errors import ParameterError
from sim.trace import LayerSpec
from sim.workload import LayerEvents, Workload

DRAM, GLB, RF, PE = "dram", "global_buffer", "register_file", "pe_array"


@dataclass(frozen=True)
class LayerPlan:
    """Static mapping of one layer: passes over the PE array and what is resident."""

    channels: int            # output channels (features for linear layers)
    pixels: int              # output pixels per channel (1 for linear layers)
    channel_passes: int      # ceil(channels / PE rows)
    pixel_passes: int        # ceil(pixels / PE cols)
    weights_per_channel: int
    weight_channels_resident: int
    membrane_channels_resident: int
    io_spill_bits: int       # activations/spikes that do not fit beside each other, per pass
    tile_passes: int         # PE-array channel passes over all weight tiles (channel_passes untiled)

    def weights_nonresident(self) -> int:
        return (self.channels - self.weight_channels_resident) * self.weights_per_channel

    def membranes_nonresident(self) -> int:
        return (self.channels - self.membrane_channels_resident) * self.pixels


def layer_shape(layer: LayerSpec) -> tuple[int, int]:
    """(channels, pixels per channel) of a layer's output."""
    if len(layer.output_shape) == 3:
        c, h, w = layer.output_shape
        return c, h * w
    return layer.output_shape[0], 1


class MemoryHierarchy:
    """Replays a workload on the classical hierarchy in SNN or ANN-twin mode."""

    name = "memory_hierarchy"

    def __init__(self, spec: ArchSpec, workload: Workload):
        self.spec = spec
        self.wl = workload
        self.d = spec.data
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.zero_skipping = spec.mapping["zero_skipping"]
        self.loop_order = spec.mapping["loop_order"]
        self.tiling = spec.mapping["snn_weight_tiling"]
        if self.tiling and self.loop_order != "layer_major":
            raise ParameterError(spec.path, "mapping.snn_weight_tiling",
                                 "needs loop_order: layer_major (time_major keeps every layer live)")
        self.rows = spec[PE].rows
        self.cols = spec[PE].cols
        self.capacity_bits = spec[GLB].capacity_bytes * 8

    # -- residency ----------------------------------------------------------------------
    def io_bits(self, layer: LayerSpec, mode: str, first: bool) -> int:
        """Bits of the layer's input and output events held in the buffer during one pass."""
        if mode == "ann":
            in_bits = self.d.input_bits if first else self.act_bits
            return layer.n_inputs * in_bits + layer.n_neurons * self.act_bits
        steps = self.wl.T if self.loop_order == "layer_major" else 1
        return steps * ((0 if first else layer.n_inputs) + layer.n_neurons)

    def plan(self, mode: str) -> dict[str, LayerPlan]:
        """Residency per layer. Buffer space goes to the layer's input/output events first,
        then to weights, then (SNN) to membrane potentials, whole output channels at a time.
        With ``layer_major`` each layer has the buffer to itself; with ``time_major`` all
        layers stay live across time steps and share it, in layer order."""
        layers = self.wl.layers
        wb, mb = self.d.weight_bits, self.d.membrane_bits
        io = {l.name: self.io_bits(l, mode, i == 0) for i, l in enumerate(layers)}
        shared = self.loop_order == "time_major" and mode == "snn"
        free_shared = self.capacity_bits - (max(io.values()) if shared else 0)
        weight_ch: dict[str, int] = {}
        free: dict[str, int] = {}
        for l in layers:
            k, _ = layer_shape(l)
            per = l.n_weights // k * wb
            avail = max(0, free_shared) if shared else max(0, self.capacity_bits - io[l.name])
            n = k if per == 0 else min(k, avail // per)
            weight_ch[l.name] = n
            if shared:
                free_shared -= n * per
            free[l.name] = avail - n * per
        plans = {}
        for l in layers:
            k, pix = layer_shape(l)
            mch = 0
            if mode == "snn":
                avail = max(0, free_shared) if shared else free[l.name]
                mch = min(k, avail // (pix * mb))
                if shared:
                    free_shared -= mch * pix * mb
            spill = max(0, io[l.name] - self.capacity_bits)
            cp = math.ceil(k / self.rows)
            wch, tile_passes = weight_ch[l.name], cp
            if mode == "snn" and self.tiling:
                wch, mch, tile_passes = k, k, self.tile_passes(l, io[l.name])
            plans[l.name] = LayerPlan(k, pix, cp, math.ceil(pix / self.cols),
                                      l.n_weights // k, wch, mch, spill, tile_passes)
        return plans

    def tile_passes(self, l: LayerSpec, io_bits: int) -> int:
        """With ``snn_weight_tiling``: the layer runs in tiles of as many output channels as fit,
        weights and membranes, beside its events; each tile runs all T steps and re-reads the
        step's input spikes once per PE-array channel pass. Returns the passes over all tiles."""
        k, pix = layer_shape(l)
        per = l.n_weights // k * self.d.weight_bits + pix * self.d.membrane_bits
        tile = min(k, max(0, self.capacity_bits - io_bits) // per)
        if tile == 0:
            raise ParameterError(self.spec.path, "components.global_buffer.capacity_bytes",
                                 f"{self.capacity_bits // 8} bytes cannot hold one output channel's weights "
                                 f"and membranes of layer {l.name} beside its events (mapping.snn_weight_tiling)")
        full, rest = divmod(k, tile)
        return full * math.ceil(tile / self.rows) + (math.ceil(rest / self.rows) if rest else 0)

    # -- counting -----------------------------------------------------------------------
    def count_ann(self, led: Ledger, l: LayerSpec, p: LayerPlan, ev: LayerEvents) -> Tile:
        d, name = self.d, l.name
        has_w = l.n_weights > 0
        macs = ev.ann_macs if self.zero_skipping else ev.dense_macs
        in_bits = d.input_bits if ev.analog_input else self.act_bits
        in_reads = (ev.ann_nnz_in if self.zero_skipping else l.n_inputs) * p.channel_passes
        w_dram = (p.weight_channels_resident * p.weights_per_channel
                  + p.weights_nonresident() * p.pixel_passes) if has_w else 0
        w_glb = l.n_weights * p.pixel_passes
        led.add(name, DRAM, "weight_read", w_dram, d.weight_bits)
        led.add(name, GLB, "weight_write", w_dram, d.weight_bits)
        led.add(name, GLB, "weight_read", w_glb, d.weight_bits)
        if ev.analog_input:
            led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
            led.add(name, GLB, "input_write", l.n_inputs, d.input_bits)
        led.add(name, GLB, "input_read", in_reads, in_bits)
        led.add(name, DRAM, "spill_write", p.io_spill_bits, 1)
        led.add(name, DRAM, "spill_read", p.io_spill_bits, 1)
        if has_w:
            led.add(name, PE, "mac", macs, d.weight_bits)
            led.add(name, RF, "weight_read", macs, d.weight_bits)
        else:  # average pooling: a fixed-weight sum, no weights to fetch
            led.add(name, PE, "add", macs, d.psum_bits)
        led.add(name, RF, "input_read", macs, in_bits)
        led.add(name, RF, "psum_read", macs, d.psum_bits)
        led.add(name, RF, "psum_write", macs, d.psum_bits)
        spiking = l.output == "spikes"
        out_bits = self.act_bits if spiking else d.psum_bits
        if spiking:
            led.add(name, PE, "compare", l.n_neurons, d.psum_bits)  # clamp + quantise
        led.add(name, GLB, "output_write", l.n_neurons, out_bits)
        final_out = 0
        if not spiking:  # the readout leaves the chip
            led.add(name, DRAM, "output_write", l.n_neurons, out_bits)
            final_out = l.n_neurons * out_bits
        dram_in = w_dram * d.weight_bits + (l.n_inputs * d.input_bits if ev.analog_input else 0) + p.io_spill_bits
        sram = (w_dram + w_glb) * d.weight_bits + in_reads * in_bits + l.n_neurons * out_bits
        return Tile(name, dram_in, sram, macs + (l.n_neurons if spiking else 0), p.io_spill_bits + final_out)

    def count_snn_step(self, led: Ledger, l: LayerSpec, p: LayerPlan, ev: LayerEvents, t: int) -> Tile:
        d, name, T = self.d, l.name, self.wl.T
        N, E, F, S = l.n_neurons, int(ev.synops[t]), int(ev.out_spikes[t]), int(ev.in_spikes[t])
        has_w = l.n_weights > 0
        spiking = l.output == "spikes"
        mb = d.membrane_bits
        # weights: resident channels come from DRAM once per sample, the rest every step
        w_dram = p.weights_nonresident() + (p.weight_channels_resident * p.weights_per_channel if t == 0 else 0)
        w_dram = w_dram if has_w else 0
        led.add(name, DRAM, "weight_read", w_dram, d.weight_bits, t)
        led.add(name, GLB, "weight_write", w_dram, d.weight_bits, t)
        m_dram = p.membranes_nonresident()
        led.add(name, DRAM, "membrane_read", m_dram, mb, t)
        led.add(name, DRAM, "membrane_write", m_dram, mb, t)
        # layer_major holds all T steps of events (spill split over the steps); time_major one step
        spill = split_evenly(p.io_spill_bits, T)[t] if self.loop_order == "layer_major" else p.io_spill_bits
        led.add(name, DRAM, "spill_write", spill, 1, t)
        led.add(name, DRAM, "spill_read", spill, 1, t)
        ops = 0
        sram = w_dram * d.weight_bits
        dram_in = (w_dram * d.weight_bits + m_dram * mb + spill)
        if ev.analog_input:
            if t == 0:  # the constant input current is computed once, like the ANN's layer 1
                macs = ev.ann_macs if self.zero_skipping else ev.dense_macs
                w_glb = l.n_weights * p.pixel_passes
                in_reads = (ev.ann_nnz_in if self.zero_skipping else l.n_inputs) * p.channel_passes
                led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits, t)
                led.add(name, GLB, "input_write", l.n_inputs, d.input_bits, t)
                led.add(name, GLB, "weight_read", w_glb, d.weight_bits, t)
                led.add(name, GLB, "input_read", in_reads, d.input_bits, t)
                led.add(name, PE, "mac", macs, d.weight_bits, t)
                led.add(name, RF, "weight_read", macs, d.weight_bits, t)
                led.add(name, RF, "input_read", macs, d.input_bits, t)
                led.add(name, RF, "psum_read", macs, d.psum_bits, t)
                led.add(name, RF, "psum_write", macs, d.psum_bits, t)
                dram_in += l.n_inputs * d.input_bits
                sram += w_glb * d.weight_bits + in_reads * d.input_bits + l.n_inputs * d.input_bits
                ops += macs
            # each step every neuron integrates its stored current
            led.add(name, RF, "psum_read", N, d.psum_bits, t)
            led.add(name, RF, "membrane_read", N, mb, t)
            led.add(name, PE, "add", N + F, mb, t)
            led.add(name, RF, "membrane_write", N, mb, t)
            ops += N + F
        else:
            spike_bits = address_bits(l.n_inputs)
            led.add(name, GLB, "spike_read", S * p.tile_passes, spike_bits, t)
            if has_w:
                led.add(name, GLB, "weight_read", E, d.weight_bits, t)
                sram += E * d.weight_bits
            led.add(name, RF, "membrane_read", E + (N if spiking else 0), mb, t)
            led.add(name, PE, "add", E + F, mb, t)
            led.add(name, RF, "membrane_write", E + F, mb, t)
            sram += S * p.tile_passes * spike_bits
            ops += E + F
        if spiking:
            led.add(name, PE, "compare", N, mb, t)
            led.add(name, GLB, "spike_write", F, address_bits(N), t)
            sram += F * address_bits(N)
            ops += N
        # membrane tiles move between buffer and register files once per step
        led.add(name, GLB, "membrane_read", N, mb, t)
        led.add(name, GLB, "membrane_write", N, mb, t)
        sram += 2 * N * mb
        dram_out = m_dram * mb + spill
        if not spiking and t == T - 1:
            led.add(name, DRAM, "output_write", N, mb, t)
            dram_out += N * mb
        return Tile(name, dram_in, sram, ops, dram_out)

    # -- replay -------------------------------------------------------------------------
    def run(self, mode: str, samples: int, progress=None) -> RunResult:
        if mode not in ("snn", "ann"):
            raise ParameterError(None, "--mode", f"unknown mode {mode!r}")
        plans = self.plan(mode)
        for l in self.wl.layers:
            p = plans[l.name]
            if p.weights_per_channel and p.weight_channels_resident == 0 and \
                    p.weights_per_channel * self.d.weight_bits > self.capacity_bits:
                raise ParameterError(self.spec.path, "components.global_buffer.capacity_bytes",
                                     f"{self.capacity_bits // 8} bytes cannot stage one output channel's "
                                     f"weights of layer {l.name} ({p.weights_per_channel} weights)")
        led = Ledger(by_step=(mode == "snn"))
        env = simpy.Environment()
        s = self.spec
        dram = Dram(env, s[DRAM].width_bits, s[DRAM].bandwidth_bits_per_cycle, s[DRAM].latency_cycles)
        glb = Sram(env, s[GLB].width_bits, s[GLB].banks, s[GLB].ports, s[GLB].latency_cycles)
        pe = PEArray(env, s[PE].rows, s[PE].cols, s[PE].ops_per_cycle)
        pipe = TilePipeline(dram, glb, pe)
        layer_cycles = {l.name: 0 for l in self.wl.layers}
        stalls = 0
        work = {l.name: {"spikes_in": 0, "spikes_out": 0, "synaptic_ops": 0, "macs": 0,
                         "neuron_updates": 0} for l in self.wl.layers}
        for i in range(samples):
            events = self.wl.sample_events(i)
            tiles: list[Tile] = []
            if mode == "ann":
                for l, ev in zip(self.wl.layers, events):
                    tiles += self._split(self.count_ann(led, l, plans[l.name], ev), plans[l.name])
                    w = work[l.name]
                    w["macs"] += (ev.ann_macs if self.zero_skipping else ev.dense_macs)
                    w["neuron_updates"] += l.n_neurons
            else:
                order = [(l, ev, t) for l, ev in zip(self.wl.layers, events) for t in range(self.wl.T)]
                if self.loop_order == "time_major":
                    order.sort(key=lambda x: x[2])
                for l, ev, t in order:
                    tiles += self._split(self.count_snn_step(led, l, plans[l.name], ev, t), plans[l.name])
                for l, ev in zip(self.wl.layers, events):
                    w = work[l.name]
                    w["spikes_in"] += int(ev.in_spikes.sum())
                    w["spikes_out"] += int(ev.out_spikes.sum())
                    w["synaptic_ops"] += int(ev.synops.sum())
                    w["macs"] += (ev.ann_macs if self.zero_skipping else ev.dense_macs) if ev.analog_input else 0
                    w["neuron_updates"] += l.n_neurons * self.wl.T
            stats = pipe.run(tiles)
            stalls += stats.stall_cycles
            for name, c in stats.stage_cycles.items():
                layer_cycles[name] += c
            if progress:
                progress(1)
        cycles = env.now
        util = {DRAM: dram.busy_cycles / cycles if cycles else 0.0,
                GLB: glb.busy_cycles / (cycles * glb.capacity) if cycles else 0.0,
                PE: pe.busy_cycles / cycles if cycles else 0.0}
        return RunResult(self.name, mode, samples, led, cycles, stalls, layer_cycles, util, work,
                         extra={"plan": {n: p.__dict__ for n, p in plans.items()},
                                "ann_activation_bits": self.act_bits})

    def _split(self, tile: Tile, p: LayerPlan) -> list[Tile]:
        """One tile per channel pass of the PE array, the work split evenly (exact sums)."""
        n = p.channel_passes
        parts = [split_evenly(v, n) for v in (tile.dram_in_bits, tile.sram_bits, tile.pe_ops, tile.dram_out_bits)]
        return [Tile(tile.stage, *(part[i] for part in parts)) for i in range(n)]
