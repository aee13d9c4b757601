"""Neuromorphic dataflow: cores on a W x H mesh, address-event routing, time-step barriers.

Each core holds a group of one layer's neurons (neuron memory) and the weights of their
fan-in (synapse memory); the mapping policy (sim.mapping.neuromorphic, shared with the
closed form) decides the groups, the chip configurations (segments) and the placement, and
sim.architectures.neuromorphic_mapping adds the destination tables and route figures. An
input event becomes address-event packets to every core holding one of its targets, routed
XY hop by hop; each arriving packet reads the weights stored there and read-modify-writes
the target membranes; at the end of each step every core updates its neurons; a barrier
separates steps. The ANN twin runs on the same mapping with graded (multi-bit) events.
Counts come from the real events (sim.kernels.noc), time from barrier-separated simpy
transactions (sim.engine.noc). The rules are written out in docs/architectures/neuromorphic.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from sim.arch.fields import table_value
from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, Simulator, add_counts, add_ledger, add_workload
from sim.architectures.neuromorphic_mapping import RoutedMapping, Traffic, build_routed, reached, synapse_read
from sim.architectures.neuromorphic_timing import Clock, PartLoad, advance
from sim.engine import Dram, Ledger
from sim.engine.noc import BarrierSteps, Mesh
from sim.kernels.noc import hop_histogram
from sim.mapping.encoding import address_bits
from sim.mapping.neuromorphic import Mapping, Part, stores_weights
from sim.workload import SampleEvents, Workload, add_totals, new_totals

NOC, CORE, SYN, NEU, DRAM = "noc", "core", "synapse_memory", "neuron_memory", "dram"


@dataclass
class NocStats:
    """The NoC summary of a run (``RunResult.extra["noc"]``): mean hops per delivered
    packet, flits per directed link, and delivered (event, core) pairs per path length."""

    mesh: tuple[int, int]
    flit_bits: int
    multicast: bool
    k_hop: float
    link_flits: np.ndarray
    hop_histogram: np.ndarray

    def as_dict(self) -> dict:
        return {"mesh": list(self.mesh), "flit_bits": self.flit_bits, "multicast": self.multicast,
                "k_hop": self.k_hop, "link_flits": self.link_flits.tolist(),
                "hop_histogram": self.hop_histogram.tolist()}


class Neuromorphic(Simulator):
    """Replays a workload on a neuromorphic mesh in SNN or ANN-twin mode."""

    name = "neuromorphic"

    def __init__(self, spec: ArchSpec, workload: Workload):
        super().__init__(spec, workload)
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.multicast = spec.mapping["multicast"]
        self.weight_sharing = spec.mapping["weight_sharing"]
        # chip behaviour (docs/architectures/neuromorphic.md, "Loihi behaviour")
        self.readout_every_step = spec.mapping["readout_every_step"]
        self.bias_input = spec.mapping["direct_input"] == "bias"
        self.active_only = spec.mapping["neuron_updates"] == "active"
        # time (docs/architectures/neuromorphic.md, "Time"): core times in ticks
        core = spec[CORE]
        self.ticks = core.ticks_per_cycle
        self.synop_ticks = {"weight_read": core.conv_synop_ticks, "dense_weight_read": core.dense_synop_ticks,
                            "sparse_weight_read": core.sparse_synop_ticks}
        self.packet_ticks = core.packet_in_ticks
        self.update_ticks = core.neuron_update_ticks
        self.aligned = spec.mapping["schedule"] == "aligned"
        self.overlap = spec.mapping["update_overlap"]
        self.has_dram = DRAM in spec.components
        self.sources = workload.sources  # a layer graph: every source's events reach the layer
        self.producers = workload.producers
        self.routed: RoutedMapping = build_routed(spec, workload.layers, self.sources)
        self.map: Mapping = self.routed.mapping
        noc = spec[NOC]
        self.mesh = Mesh(self.map.mesh.width, self.map.mesh.height, noc.link_flits_per_cycle,
                         noc.router_latency_cycles)
        self._barrier: dict[int, int] = {}

    # -- events of one sample -------------------------------------------------------------
    def _inputs(self, part: Part, mode: str, events: SampleEvents):
        """(ptr, idx, payload_bits) of the events entering ``part`` (one row per step), over
        the layer's input elements: its sources' outputs concatenated (an add's operands)."""
        i = part.layer_index
        if self.wl.analog[i] and self.bias_input:  # a per-neuron bias: no input event enters
            return np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
        if self.wl.analog[i]:  # direct encoding: the analog input enters once, as graded events
            idx = events.nonzero_input(self.wl.layers[i].n_inputs)
            return np.array([0, idx.size], dtype=np.int64), idx, self.d.input_bits
        if mode == "snn":
            return (*events.input_spike_indices(i), 0)
        idx = events.input_nonzero(i)
        return np.array([0, idx.size], dtype=np.int64), idx, self.act_bits

    def _currents(self, i: int) -> np.ndarray | None:
        """Input elements of layer i that are current values (an add's current operands,
        every element), or None when it reads no current."""
        ops = self.wl.current_operands(i)
        if not ops:
            return None
        n = self.wl.operand_size(i)
        return (np.asarray(ops, dtype=np.int64)[:, None] * n + np.arange(n)).reshape(-1)

    @staticmethod
    def _with_currents(ptr: np.ndarray, idx: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``idx[ptr[t]:ptr[t+1]]`` with every current element ``cur`` appended to each:
        a current layer hands all its N values to the add every step (the twin: once)."""
        rows = [np.concatenate([idx[ptr[t]:ptr[t + 1]], cur]) for t in range(len(ptr) - 1)]
        return ptr + np.arange(len(ptr), dtype=np.int64) * cur.size, np.concatenate(rows).astype(np.int64)

    def _fired(self, part: Part, mode: str, events: SampleEvents, steps: int) -> np.ndarray:
        """Events the part's neurons emit per step (spikes, or non-zero ANN activations)."""
        l = self.wl.layers[part.layer_index]
        if l.output != "spikes":
            return np.zeros(steps, dtype=np.int64)
        if mode == "snn":
            ptr, idx = events.spike_indices(l.name, l.n_neurons)
        else:
            idx = events.nonzero_levels(l.name)
            ptr = np.array([0, idx.size], dtype=np.int64)
        lg = self.map.groups[part.layer_index]
        if part.g0 == 0 and part.g1 == lg.n_groups:  # the whole layer
            return np.diff(ptr).astype(np.int64)
        g = lg.gon[idx]
        mine = np.concatenate([[0], np.cumsum((g >= part.g0) & (g < part.g1))])
        return (mine[ptr[1:]] - mine[ptr[:-1]]).astype(np.int64)

    def _updated(self, part: Part, mode: str, events: SampleEvents, steps: int) -> np.ndarray:
        """Neurons of the part whose update is charged at each step (int64 [steps]): all of
        them, or with ``neuron_updates: active`` those that receive input at that step or fire.
        Input: a synaptic event (SNN spike, twin non-zero graded value), an add's current value
        (every step), or a direct-input layer's drive (added every step in the SNN; the twin's
        bias reaches every neuron, its graded events only the neurons they reach)."""
        i, l = part.layer_index, self.wl.layers[part.layer_index]
        N = int(part.node_neurons.sum())
        if not self.active_only or self.wl.current_operands(i) or (
                self.wl.analog[i] and (mode == "snn" or self.bias_input)):
            return np.full(steps, N, dtype=np.int64)
        x = np.zeros((steps, l.n_inputs), dtype=bool)
        if mode == "snn":
            ptr, idx = events.input_spike_indices(i)
            x[np.repeat(np.arange(steps), np.diff(ptr)), idx] = True
        else:
            x[0, events.input_nonzero(i)] = True
        active = reached(l, x)
        if l.output == "spikes":
            if mode == "snn":
                ptr, idx = events.spike_indices(l.name, l.n_neurons)
                active[np.repeat(np.arange(steps), np.diff(ptr)), idx] = True
            else:
                active[0, events.nonzero_levels(l.name)] = True
        mine = self.map.groups[i].neuron_mask(part.g0, part.g1)
        return active[:, mine].sum(axis=1).astype(np.int64)

    def _flits(self, part: Part, payload: int) -> int:
        """Flits of one address event into ``part``'s layer: the destination router, the
        source element's address (axon id) and the payload (0 for a spike, the activation or
        the input for a graded event)."""
        geo, l = self.map.mesh, self.wl.layers[part.layer_index]
        return geo.flits(geo.header_bits + address_bits(l.n_inputs) + payload)

    def _off_chip_events(self, part: Part, idx: np.ndarray) -> int:
        """Events among ``idx`` (the part's input elements) whose operand enters from off-chip."""
        on = part.operands_on_chip
        if not any(on):
            return int(idx.size)
        n = self.wl.operand_size(part.layer_index)
        return int(np.count_nonzero(~np.array(on)[idx // n]))

    def _off_chip_currents(self, part: Part) -> int:
        """Current values per step that enter ``part`` from off-chip (its current operands in
        another configuration), read from DRAM."""
        i = part.layer_index
        on = part.operands_on_chip
        return self.wl.operand_size(i) * sum(1 for k in self.wl.current_operands(i) if not on[k])

    # -- counting ---------------------------------------------------------------------------
    def _count_traffic(self, led: Ledger, name: str, flits: int, tr: Traffic, k: int):
        """Packets and per-direction flit hops of input row k."""
        fb = self.map.mesh.flit_bits
        led.add(name, NOC, "packet", tr.packets[k], flits * fb)  # a packet's size on the wires
        led.add(name, NOC, "flit_hop_ew", tr.hops_ew[k] * flits, fb)
        led.add(name, NOC, "flit_hop_ns", tr.hops_ns[k] * flits, fb)

    def _count_part(self, led: Ledger, part: Part, mode: str, T: int, flits: int, tr: Traffic, fired,
                    analog: bool, updated: np.ndarray):
        """Ledger counts of one part on one sample: the arriving events, then the neuron
        updates of every step. Graded events (the analog input, ANN activations) arrive
        once and multiply (a residual add's only add); spikes arrive every step and only add.
        Each synaptic event reads one weight, counted as the layer's synapse kind
        (:func:`synapse_read`: dense, conv or sparse synapse memory).
        A max pool holds no neurons: each event is one compare per covering window (the
        spike OR; the twin's running max), and it emits its outputs. A current layer
        integrates like a neuron layer but updates no neuron (its values leave as packets);
        an add counts each arriving current value as an operand event (``tr`` holds them).
        ``updated[t]``: the neurons whose update (compare, state write, leak) step t charges;
        every neuron's state is read every step. A direct input given as a bias sends no
        event: each neuron's bias is written once and read and added every step. A readout
        is updated every step with ``readout_every_step`` (never fires; the last step's state
        read is its read-out), else read out once after the last step."""
        d, l = self.d, self.wl.layers[part.layer_index]
        name, N = l.name, int(part.node_neurons.sum())
        snn = mode == "snn"
        mb = d.membrane_bits if snn else d.psum_bits
        synops = tr.synops
        graded = analog or not snn
        weights = stores_weights(l)
        read = synapse_read(l, self.weight_sharing) if weights else None  # the synapse kind
        bias = analog and self.bias_input
        for k in range(0 if bias else synops.shape[0]):
            self._count_traffic(led, name, flits, tr, k)
            syn_k = int(synops[k])
            if l.kind == "maxpool":  # stateless OR, or the twin's running max
                if snn:
                    led.add(name, CORE, "compare", syn_k, 1)
                else:
                    led.add(name, NEU, "psum_read", syn_k, d.psum_bits)
                    led.add(name, CORE, "compare", syn_k, self.act_bits)
                    led.add(name, NEU, "psum_write", syn_k, d.psum_bits)
                continue
            if weights:
                led.add(name, SYN, read, syn_k, d.weight_bits)
            if graded:
                acc = "current" if snn else "psum"
                if weights:
                    led.add(name, CORE, "mac", syn_k, d.weight_bits)
                else:  # a residual add's operand, added into the partial sum
                    led.add(name, CORE, "add", syn_k, d.psum_bits)
                led.add(name, NEU, f"{acc}_read", syn_k, d.psum_bits)
                led.add(name, NEU, f"{acc}_write", syn_k, d.psum_bits)
            else:
                led.add(name, NEU, "membrane_read", syn_k, mb)
                led.add(name, NEU, "membrane_write", syn_k, mb)
        if l.kind == "maxpool":  # emit the spikes (the twin reads each maximum out once)
            if not snn:
                led.add(name, NEU, "state_read", N, d.psum_bits)
            led.add(name, CORE, "fire", int(fired.sum()), 1)
            return
        if bias:  # the drive, computed off-chip, stored once per sample as each neuron's bias
            led.add(name, NEU, "current_write" if snn else "psum_write", N, d.psum_bits)
        leaks = snn and l.neuron is not None and l.neuron.leaks
        updates = l.output == "spikes" or (snn and l.output == "potential" and self.readout_every_step)
        for t in range(T):
            if snn:  # accumulate spikes (or the stored current), reset the fired
                if bias:  # the bias is read every step
                    led.add(name, NEU, "current_read", N, d.psum_bits)
                adds = (N if analog else int(synops[t])) + int(fired[t])
                led.add(name, CORE, "add", adds, mb)
                if leaks:  # LIF: the membrane decays, inside the step's neuron update
                    led.add(name, CORE, "leak", int(updated[t]), mb)
            if updates:
                led.add(name, NEU, "state_read", N, mb)
                led.add(name, CORE, "compare", int(updated[t]), mb)
                led.add(name, NEU, "state_write", int(updated[t]), mb)
                if l.output == "spikes":
                    led.add(name, CORE, "fire", int(fired[t]), 1)
            if l.output == "potential" and t == T - 1 and not updates:  # read out once, at the end
                led.add(name, NEU, "state_read", N, mb)

    def _segment(self, led: Ledger, s: int, mode: str, events: SampleEvents, clock: Clock):
        """Count and time one chip configuration on one sample."""
        d, T = self.d, (self.wl.T if mode == "snn" else 1)
        mb = d.membrane_bits if mode == "snn" else d.psum_bits
        n_nodes = self.map.mesh.n_nodes
        loads, timeline = [], []
        for k, part in enumerate(self.map.parts):
            if part.segment != s:
                continue
            l = self.wl.layers[part.layer_index]
            name, N = l.name, int(part.node_neurons.sum())
            spiking = l.output == "spikes"
            dram_in = dram_out = 0
            if self.map.n_segments > 1:  # page this part's weights in
                words = int(self.map.groups[part.layer_index].synapse_bits[part.g0:part.g1].sum()) // d.weight_bits
                led.add(name, DRAM, "weight_read", words, d.weight_bits)
                led.add(name, SYN, "weight_write", words, d.weight_bits)
                dram_in += words * d.weight_bits
            ptr, idx, payload = self._inputs(part, mode, events)
            cur = self._currents(part.layer_index)
            events_ptr, events_idx = (ptr, idx) if cur is None else self._with_currents(ptr, idx, cur)
            # an add that sums a current receives graded packets: one format, the widest payload
            flits = self._flits(part, payload if cur is None else max(payload, mb))
            tr = self.routed.traffic(k, events_ptr, events_idx, flits)
            analog = self.wl.analog[part.layer_index]
            if self.has_dram and (analog or not part.input_on_chip):
                if analog and self.bias_input:  # the part's biases, one per neuron
                    led.add(name, DRAM, "input_read", N, d.psum_bits)
                    dram_in += N * d.psum_bits
                elif analog:
                    led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
                    dram_in += l.n_inputs * d.input_bits
                else:  # the events of the operands that come from off-chip
                    act = "spike_read" if mode == "snn" else "activation_read"
                    ebits = address_bits(l.n_inputs) + (0 if mode == "snn" else self.act_bits)
                    off = self._off_chip_events(part, idx)
                    led.add(name, DRAM, act, off, ebits)
                    dram_in += off * ebits
                    values = self._off_chip_currents(part) * T  # current values, every step
                    if values:
                        led.add(name, DRAM, "input_read", values, mb)
                        dram_in += values * mb
            fired = self._fired(part, mode, events, T)
            updated = self._updated(part, mode, events, T) if l.has_neurons else None
            self._count_part(led, part, mode, T, flits, tr, fired, analog, updated)
            K = tr.core_synops.shape[0]  # rows of input events: T for spikes, 1 for graded events
            rows = np.zeros((T, n_nodes), dtype=np.int64)
            link = np.zeros((T, tr.link_flits.shape[1]), dtype=np.int64)
            hops = np.zeros(T, dtype=np.int64)
            rows[:K], link[:K], hops[:K] = tr.core_synops, tr.link_flits, tr.longest
            arrive = np.zeros((T, n_nodes), dtype=np.int64)
            if self.packet_ticks and K:
                arrive[:K] = self.routed.arrivals(k, events_ptr, events_idx)
            if part.output_off_chip and self.has_dram:
                if spiking:
                    act = "spike_write" if mode == "snn" else "activation_write"
                    ebits = address_bits(l.n_neurons) + (0 if mode == "snn" else self.act_bits)
                    led.add(name, DRAM, act, int(fired.sum()), ebits)
                    dram_out += int(fired.sum()) * ebits
                else:  # a readout's potentials once; a current's values every step
                    values = N * (T if l.output == "current" else 1)
                    led.add(name, DRAM, "output_write", values, mb)
                    dram_out += values * mb
            # per-step work of the part's busiest core, in ticks: each synaptic op at its
            # synapse kind's time (pools' and adds' operand ops at the conv time), each
            # arriving packet, each neuron update
            upd = np.zeros(T, dtype=np.int64)  # a max pool updates no neurons
            if l.has_neurons and (spiking or (mode == "snn" and self.readout_every_step)):
                upd[:] = part.node_neurons.max() * self.update_ticks
            elif l.has_neurons:
                upd[-1] = part.node_neurons.max() * self.update_ticks
            syn = self.synop_ticks[synapse_read(l, self.weight_sharing)] if stores_weights(l) \
                else self.synop_ticks["weight_read"]
            work = rows * syn + arrive * self.packet_ticks
            core_upd = part.node_neurons[None, :] * self.update_ticks * (upd > 0)[:, None]
            busy = (np.maximum(work, core_upd) if self.overlap else work + core_upd).max(axis=1)
            loads.append(PartLoad(name, part.position, work.max(axis=1), upd, busy, link, hops))
            timeline.append((name, dram_in, dram_out))
            clock.link_flits += link.sum(axis=0)
            clock.core_busy += int((work.sum(axis=1) + (N * self.update_ticks) * (upd > 0)).sum())
            counts = clock.element_events.setdefault(k, np.zeros(l.n_inputs, dtype=np.int64))
            counts += np.bincount(events_idx, minlength=l.n_inputs)
        advance(loads, timeline, T, clock, self.barrier_cycles(s), self.aligned)

    def barrier_cycles(self, s: int) -> int:
        """The barrier of configuration s: ``noc.barrier_cycles``, or its table's row for the
        cores the configuration uses (SANA-FE's ``sync_model: table``)."""
        if s not in self._barrier:
            nodes = np.unique(np.concatenate([p.group_node for p in self.map.segment_parts(s)]))
            self._barrier[s] = table_value(self.spec[NOC].barrier_cycles, int((nodes >= 0).sum()))
        return self._barrier[s]

    # -- replay ---------------------------------------------------------------------------
    def _start(self, mode: str) -> "_Session":
        return _Session(self, mode)

    def _utilisation(self, clock: Clock, cycles: int) -> dict:
        if not cycles:
            return {NOC: 0.0, CORE: 0.0, DRAM: 0.0}
        m = self.mesh
        links = m.n_links * cycles  # a 1x1 mesh has no links: its NoC is never busy
        return {NOC: float(clock.link_flits.sum() / m.link_flits_per_cycle / links) if links else 0.0,
                CORE: float(clock.core_busy / self.ticks / (m.n_nodes * cycles)),
                DRAM: float(clock.dram.busy_cycles / cycles) if self.has_dram else 0.0}

    def _noc_stats(self, led: Ledger, clock: Clock) -> NocStats:
        """k_hop over the replayed packets, and the delivered (event, core) pairs per path length."""
        packets = led.totals().get(f"{NOC}.packet", 0)
        geo = self.map.mesh
        hops = 0
        hist = np.zeros(geo.width + geo.height - 1, dtype=np.int64)
        for k, part in enumerate(self.map.parts):
            counts = clock.element_events.get(k)
            if counts is None:
                continue
            r, rt = self.routed.routing[part.layer_index], self.routed.routes[k]
            hist += hop_histogram(counts, r.pattern_of_input, part.src_node, r.ptr, r.group, part.group_node,
                                  geo.width, len(hist) - 1)
            hops += int((counts * (rt.hops_ew + rt.hops_ns)).sum())
        return NocStats((geo.width, geo.height), geo.flit_bits, self.multicast,
                        hops / packets if packets else 0.0, clock.link_flits, hist)

    def _notes(self) -> list[str]:
        notes = []
        if self.map.n_segments > 1:
            notes.append(f"the model needs {self.map.n_segments} chip configurations: every sample pages "
                         f"all weights in from DRAM, and events between configurations go through DRAM")
        else:
            notes.append("the model fits the mesh: weights are loaded once at configuration and not "
                         "counted per inference")
        return notes


class _Session:
    """One replay of a mode: every sample runs each chip configuration in turn on one simpy
    clock (time accumulates over samples)."""

    def __init__(self, arch: Neuromorphic, mode: str):
        self.arch, self.mode = arch, mode
        self.led = Ledger()
        env = simpy.Environment()
        s = arch.spec
        dram = Dram(env, s[DRAM].width_bits, s[DRAM].bandwidth_bits_per_cycle, s[DRAM].latency_cycles) \
            if arch.has_dram else Dram(env, 1, 1, 0)
        self.clock = Clock(env, dram, BarrierSteps(env, arch.mesh, 0, arch.ticks, arch.overlap),
                           {l.name: 0 for l in arch.wl.layers}, np.zeros(4 * arch.mesh.n_nodes, dtype=np.int64))
        self.work = new_totals(arch.wl.layers)
        self.samples = 0
        self.absorbed_cycles = 0  # cycles of the samples absorbed from other sessions (absorb)

    def add(self, events: SampleEvents) -> None:
        a = self.arch
        for seg in range(a.map.n_segments):
            a._segment(self.led, seg, self.mode, events, self.clock)
        # graded events skip zeros by construction: only non-zero activations are sent
        add_totals(self.work, a.wl.layers, events.layers, self.mode, a.wl.T, zero_skipping=True)
        self.samples += 1

    # -- a replay in chunks of samples (sim.architectures.base.Session) ------------------
    # Each sample's DRAM transfers and barrier steps run to completion before the next sample
    # starts (every step ends at its barrier), so a sample's cycles, stalls and busy figures
    # do not depend on the samples before it; the NoC figures are sums over events.
    def state(self) -> dict:
        c = self.clock
        return {"ledger": self.led, "work": self.work, "samples": self.samples,
                "cycles": c.env.now + self.absorbed_cycles, "stalls": c.stalls, "core_busy": c.core_busy,
                "dram_busy": c.dram.busy_cycles, "layer_cycles": c.layer_cycles, "link_flits": c.link_flits,
                "element_events": c.element_events}

    def absorb(self, state: dict) -> None:
        c = self.clock
        add_ledger(self.led, state["ledger"])
        add_workload(self.work, state["work"])
        add_counts(c.layer_cycles, state["layer_cycles"])
        self.samples += state["samples"]
        self.absorbed_cycles += state["cycles"]
        c.stalls += state["stalls"]
        c.core_busy += state["core_busy"]
        c.dram.busy_cycles += state["dram_busy"]
        c.link_flits += state["link_flits"]
        for k, counts in state["element_events"].items():
            if k in c.element_events:
                c.element_events[k] += counts
            else:
                c.element_events[k] = counts.copy()

    def finish(self) -> RunResult:
        a, clock = self.arch, self.clock
        cycles = clock.env.now + self.absorbed_cycles
        return RunResult(a.name, self.mode, self.samples, self.led, cycles, clock.stalls, clock.layer_cycles,
                         a._utilisation(clock, cycles), self.work, notes=a._notes(),
                         extra={"mapping": a.routed.summary(), "noc": a._noc_stats(self.led, clock).as_dict(),
                                "ann_activation_bits": a.act_bits})
