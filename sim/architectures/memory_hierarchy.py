"""Classical memory hierarchy: DRAM <-> global buffer (SRAM) <-> PE array with register files.

The dataflow, every count and the residency rules are written out in
docs/architectures/memory_hierarchy.md; this module implements exactly that text. The
residency plan is the mapping policy of :mod:`sim.mapping.memory_hierarchy`, shared with the
closed form.
Counts come from the trace's real events (sim.workload); time comes from a simpy tile
pipeline (sim.engine). Nothing here knows an energy price.
"""

from __future__ import annotations

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, Simulator, TileSession, split_evenly
from sim.engine import Ledger
from sim.engine.components import Tile
from sim.mapping.encoding import address_bits
from sim.mapping.memory_hierarchy import LayerResidency, check_tiling, keeps_state
from sim.mapping.memory_hierarchy import plan as residency_plan
from sim.trace import LayerSpec
from sim.workload import LayerEvents, SampleEvents, Workload, add_totals

DRAM, GLB, RF, PE = "dram", "global_buffer", "register_file", "pe_array"


class MemoryHierarchy(Simulator):
    """Replays a workload on the classical hierarchy in SNN or ANN-twin mode."""

    name = "memory_hierarchy"

    def __init__(self, spec: ArchSpec, workload: Workload):
        super().__init__(spec, workload)
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.zero_skipping = spec.mapping["zero_skipping"]
        self.loop_order = spec.mapping["loop_order"]
        # per layer name, its input elements that are the network's stored input spikes
        # (rate or event encoding): they come from DRAM into the buffer once per sample
        self.network_inputs = {l.name: workload.network_input_elements(i) for i, l in enumerate(workload.layers)}
        check_tiling(spec)

    def plan(self, mode: str) -> dict[str, LayerResidency]:
        """Residency per layer name: the one policy of :mod:`sim.mapping.memory_hierarchy`."""
        # every layer, passthroughs included: the plan follows the graph's edges through them
        plans = residency_plan(self.spec, self.wl.trace.layers, self.wl.T, mode, self.act_bits,
                               spike_input=self.wl.trace.meta.spike_input)
        return {l.name: p for l, p in zip(self.wl.layers, plans)}

    # -- counting -----------------------------------------------------------------------
    def count_ann(self, led: Ledger, l: LayerSpec, p: LayerResidency, ev: LayerEvents) -> Tile:
        d, name = self.d, l.name
        has_w = l.n_weights > 0
        macs = ev.ann_macs if self.zero_skipping else ev.dense_macs
        in_bits = d.input_bits if ev.analog_input else self.act_bits
        C = ev.current_in  # an add's current operands' values: read and added densely, once
        in_reads = (ev.ann_nnz_in if self.zero_skipping else l.n_inputs - C) * p.channel_passes
        w_dram = (p.weight_channels_resident * p.weights_per_channel
                  + p.weights_nonresident() * p.pixel_passes) if has_w else 0
        w_glb = l.n_weights * p.pixel_passes
        led.add(name, DRAM, "weight_read", w_dram, d.weight_bits)
        led.add(name, GLB, "weight_write", w_dram, d.weight_bits)
        led.add(name, GLB, "weight_read", w_glb, d.weight_bits)
        if ev.analog_input:
            led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
            led.add(name, GLB, "input_write", l.n_inputs, d.input_bits)
        levels = self.network_inputs[name]  # the twin's input levels (rate or event encoding)
        if levels:
            led.add(name, DRAM, "input_read", levels, self.act_bits)
            led.add(name, GLB, "input_write", levels, self.act_bits)
        led.add(name, GLB, "input_read", in_reads, in_bits)
        led.add(name, DRAM, "spill_write", p.io_spill_bits, 1)
        led.add(name, DRAM, "spill_read", p.io_spill_bits, 1)
        # what accumulates: a partial sum, or a max-pool's running max (a level, like its inputs)
        acc_bits = in_bits if l.kind == "maxpool" else d.psum_bits
        if has_w:
            led.add(name, PE, "mac", macs, d.weight_bits)
            led.add(name, RF, "weight_read", macs, d.weight_bits)
        elif l.kind == "maxpool":  # a compare against the running max per (input, window)
            led.add(name, PE, "compare", macs, in_bits)
        else:  # average pooling, a residual add: a fixed-weight sum, no weights to fetch
            led.add(name, PE, "add", macs + C, d.psum_bits)
        if C:  # each current value (a psum) from the buffer, added once
            led.add(name, GLB, "current_read", C, d.psum_bits)
        led.add(name, RF, "input_read", macs, in_bits)
        led.add(name, RF, "psum_read", macs, acc_bits)
        led.add(name, RF, "psum_write", macs, acc_bits)
        spiking = l.output == "spikes"
        quantise = spiking and l.has_neurons  # a max-pool's levels in are its levels out
        out_bits = self.act_bits if spiking else d.psum_bits  # a readout or a current: psums
        if quantise:
            led.add(name, PE, "compare", l.n_neurons, d.psum_bits)  # clamp + quantise
        led.add(name, GLB, "output_write", l.n_neurons, out_bits)
        final_out = 0
        if l.output == "potential":  # the readout leaves the chip
            led.add(name, DRAM, "output_write", l.n_neurons, out_bits)
            final_out = l.n_neurons * out_bits
        dram_in = w_dram * d.weight_bits + (l.n_inputs * d.input_bits if ev.analog_input else 0) + p.io_spill_bits
        sram = (w_dram + w_glb) * d.weight_bits + in_reads * in_bits + l.n_neurons * out_bits
        dram_in += levels * self.act_bits
        sram += levels * self.act_bits + C * d.psum_bits
        return Tile(name, dram_in, sram, macs + C + (l.n_neurons if quantise else 0), p.io_spill_bits + final_out)

    def count_snn_step(self, led: Ledger, l: LayerSpec, p: LayerResidency, ev: LayerEvents, t: int) -> Tile:
        d, name, T = self.d, l.name, self.wl.T
        N, E, F, S = l.n_neurons, int(ev.synops[t]), int(ev.out_spikes[t]), int(ev.in_spikes[t])
        has_w = l.n_weights > 0
        # membranes, or a current layer's accumulator; a max-pool (spike OR) keeps none
        stateful = keeps_state(l)
        spiking = l.output == "spikes"
        current = l.output == "current"  # accumulates like a neuron layer, no neuron update
        C = ev.current_in  # an add's current operands' values, read and added every step
        mb = d.membrane_bits
        # weights: resident channels come from DRAM once per sample, the rest every step
        w_dram = p.weights_nonresident() + (p.weight_channels_resident * p.weights_per_channel if t == 0 else 0)
        w_dram = w_dram if has_w else 0
        led.add(name, DRAM, "weight_read", w_dram, d.weight_bits)
        led.add(name, GLB, "weight_write", w_dram, d.weight_bits)
        m_dram = p.membranes_nonresident() if stateful else 0
        if stateful:
            led.add(name, DRAM, "membrane_read", m_dram, mb)
            led.add(name, DRAM, "membrane_write", m_dram, mb)
        # layer_major holds all T steps of events (spill split over the steps); time_major one step
        spill = split_evenly(p.io_spill_bits, T)[t] if self.loop_order == "layer_major" else p.io_spill_bits
        led.add(name, DRAM, "spill_write", spill, 1)
        led.add(name, DRAM, "spill_read", spill, 1)
        ops = 0
        sram = w_dram * d.weight_bits
        dram_in = (w_dram * d.weight_bits + m_dram * mb + spill)
        if ev.analog_input:
            if t == 0:  # the constant input current is computed once, like the ANN's layer 1
                macs = ev.ann_macs if self.zero_skipping else ev.dense_macs
                w_glb = l.n_weights * p.pixel_passes
                in_reads = (ev.ann_nnz_in if self.zero_skipping else l.n_inputs) * p.channel_passes
                led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
                led.add(name, GLB, "input_write", l.n_inputs, d.input_bits)
                led.add(name, GLB, "weight_read", w_glb, d.weight_bits)
                led.add(name, GLB, "input_read", in_reads, d.input_bits)
                led.add(name, PE, "mac", macs, d.weight_bits)
                led.add(name, RF, "weight_read", macs, d.weight_bits)
                led.add(name, RF, "input_read", macs, d.input_bits)
                led.add(name, RF, "psum_read", macs, d.psum_bits)
                led.add(name, RF, "psum_write", macs, d.psum_bits)
                dram_in += l.n_inputs * d.input_bits
                sram += w_glb * d.weight_bits + in_reads * d.input_bits + l.n_inputs * d.input_bits
                ops += macs
            # each step every neuron integrates its stored current
            led.add(name, RF, "psum_read", N, d.psum_bits)
            led.add(name, RF, "membrane_read", N, mb)
            led.add(name, PE, "add", N + F, mb)
            led.add(name, RF, "membrane_write", N, mb)
            ops += N + F
        else:
            # an address within the operand it comes from (an add reads each operand's events)
            spike_bits = address_bits(l.n_inputs // l.n_operands)
            if self.network_inputs[name]:  # this step's stored input spikes: DRAM -> buffer
                arrive = int(ev.network_spikes[t])
                led.add(name, DRAM, "spike_read", arrive, spike_bits)
                # input_write, not spike_write: that row is the layer's own output, at a(N) bits
                led.add(name, GLB, "input_write", arrive, spike_bits)
                dram_in += arrive * spike_bits
                sram += arrive * spike_bits
            led.add(name, GLB, "spike_read", S * p.tile_passes, spike_bits)
            sram += S * p.tile_passes * spike_bits
            if not stateful:  # max-pool: one 1-bit OR per (input spike, covering window)
                led.add(name, PE, "compare", E, 1)
                ops += E
            else:
                if has_w:
                    led.add(name, GLB, "weight_read", E, d.weight_bits)
                    sram += E * d.weight_bits
                led.add(name, RF, "membrane_read", E + (N if spiking else 0), mb)
                led.add(name, PE, "add", E + F + C, mb)
                led.add(name, RF, "membrane_write", E + F, mb)
                ops += E + F + C
                if C:  # this step's current values from the buffer
                    led.add(name, GLB, "current_read", C, mb)
                    sram += C * mb
        if stateful and l.neuron is not None and l.neuron.leaks:  # LIF: the membrane decays each step
            led.add(name, PE, "leak", N, mb)
            ops += N
        if spiking and stateful:
            led.add(name, PE, "compare", N, mb)
            ops += N
        if spiking:
            led.add(name, GLB, "spike_write", F, address_bits(N))
            sram += F * address_bits(N)
        if current:  # the step's N accumulated values go to the buffer for the add
            led.add(name, GLB, "current_write", N, mb)
            sram += N * mb
        if stateful:  # membrane tiles move between buffer and register files once per step
            led.add(name, GLB, "membrane_read", N, mb)
            led.add(name, GLB, "membrane_write", N, mb)
            sram += 2 * N * mb
        dram_out = m_dram * mb + spill
        if l.output == "potential" and t == T - 1:
            led.add(name, DRAM, "output_write", N, mb)
            dram_out += N * mb
        return Tile(name, dram_in, sram, ops, dram_out)

    # -- replay -------------------------------------------------------------------------
    def _start(self, mode: str) -> "_Session":
        return _Session(self, mode)

    def _split(self, tile: Tile, p: LayerResidency) -> list[Tile]:
        """One tile per channel pass of the PE array: the transfers split evenly (exact sums),
        the PE work fold-aware (:func:`pass_pe_ops`): a pass is charged for every PE of the
        array that its cycles occupy, idle ones included."""
        n = p.channel_passes
        pe = self.spec[PE]
        ops = pass_pe_ops(tile.pe_ops, p.channels, p.pixels, pe.rows, pe.cols)
        parts = [split_evenly(v, n) for v in (tile.dram_in_bits, tile.sram_bits, tile.dram_out_bits)]
        return [Tile(tile.stage, parts[0][i], parts[1][i], ops[i], parts[2][i]) for i in range(n)]


def pass_pe_ops(ops: int, K: int, P: int, rows: int, cols: int) -> list[int]:
    """A layer's ``ops`` PE operations as the PE array's tiles charge them, one entry per
    channel pass (docs/architectures/memory_hierarchy.md, "Time"): fold-aware, in integers.

    The array maps output channels down its ``rows`` (cp = ceil(K/rows) channel passes; pass
    i holds k_i = min(rows, K - i*rows) channels) and output pixels across its ``cols``
    (pp = ceil(P/cols) pixel passes, the last one possibly partial). Pass i gets the ops of
    its channels, ``ops_i`` = floor(ops*k_i/K), plus one for each of the first r passes,
    r = ops - sum_j floor(ops*k_j/K) < cp (so the ops_i sum to ``ops`` exactly; with equal
    k_i this is the even split), spread evenly over the k_i channels times P pixels it really
    maps; it is charged as if all rows*cols PEs worked for the cycles that takes:

        pe_ops_eff_i = ceil(ops_i * rows * pp*cols / (k_i * P))

    so that the PE array's ceil(pe_ops_eff_i / (rows*cols*ops_per_cycle)) cycles are the
    pass's cycles on the PEs it maps. A dense layer (ops = K*P*F) gives ops_i = k_i*P*F and
    pe_ops_eff_i = rows*cols*pp*F: pp*F cycles per channel pass at one op per cycle,
    cp*pp*F in all, however few channels or pixels the passes hold. A layer that fills the
    array (rows divides K, cols divides P) is charged its ops split evenly, as they are."""
    ks = [min(rows, K - i * rows) for i in range(-(-K // rows))]  # channels per channel pass
    share = [ops * k // K for k in ks]
    rest = ops - sum(share)  # < cp: one more op to each of the first ``rest`` passes
    pp_cols = -(-P // cols) * cols  # pixel positions of the pp pixel passes
    return [-(-(o + (1 if i < rest else 0)) * rows * pp_cols // (k * P))
            for i, (o, k) in enumerate(zip(share, ks))]


class _Session(TileSession):
    """One replay of a mode: every sample's tiles are counted into one ledger and run, in
    sample order, through one simpy tile pipeline (time accumulates over samples)."""

    def __init__(self, arch: MemoryHierarchy, mode: str):
        g = arch.spec[GLB]  # the global buffer: the tiles' SRAM
        super().__init__(arch, mode, (g.width_bits, g.banks, g.ports, g.latency_cycles))

    def add(self, sample: SampleEvents) -> None:
        a, led, plans, layers, T = self.arch, self.led, self.plans, self.arch.wl.layers, self.arch.wl.T
        events = sample.layers
        tiles: list[Tile] = []
        if self.mode == "ann":
            for l, ev in zip(layers, events):
                tiles += a._split(a.count_ann(led, l, plans[l.name], ev), plans[l.name])
        else:
            order = [(l, ev, t) for l, ev in zip(layers, events) for t in range(T)]
            if a.loop_order == "time_major":
                order.sort(key=lambda x: x[2])
            for l, ev, t in order:
                tiles += a._split(a.count_snn_step(led, l, plans[l.name], ev, t), plans[l.name])
        add_totals(self.work, layers, events, self.mode, T, a.zero_skipping)
        self._ran(self.pipe.run(tiles))

    def finish(self) -> RunResult:
        cycles = self.cycles
        util = {DRAM: self.dram.busy_cycles / cycles if cycles else 0.0,
                GLB: self.sram.busy_cycles / (cycles * self.sram.capacity) if cycles else 0.0,
                PE: self.pe.busy_cycles / cycles if cycles else 0.0}
        return RunResult(self.arch.name, self.mode, self.samples, self.led, cycles, self.stalls,
                         self.layer_cycles, util, self.work,
                         extra={"plan": {n: p.as_report_dict() for n, p in self.plans.items()},
                                "ann_activation_bits": self.arch.act_bits})
