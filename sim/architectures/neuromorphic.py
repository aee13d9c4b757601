"""Neuromorphic dataflow: cores on a W x H mesh, address-event routing, time-step barriers.

Each core holds a group of one layer's neurons (neuron memory) and the weights of their
fan-in (synapse memory); sim.architectures.neuromorphic_mapping decides the groups, the
chip configurations (segments) and the placement. An input event becomes address-event
packets to every core holding one of its targets, routed XY hop by hop; each arriving
packet reads the weights stored there and read-modify-writes the target membranes; at the
end of each step every core updates its neurons; a barrier separates steps. The ANN twin
runs on the same mapping with graded (multi-bit) events. Counts come from the real events
(sim.kernels.noc), time from barrier-separated simpy transactions (sim.engine.noc). The
rules are written out in docs/architectures/neuromorphic.md.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.arch.spec import ArchSpec
from sim.architectures.base import RunResult, address_bits
from sim.architectures.neuromorphic_mapping import Mapping, Part, build_mapping, packet_bits
from sim.engine import Dram, Ledger
from sim.engine.noc import BarrierSteps, StepLoad
from sim.errors import ParameterError
from sim.kernels.noc import hop_histogram, route_events, spike_indices
from sim.workload import Workload

NOC, CORE, SYN, NEU, DRAM = "noc", "core", "synapse_memory", "neuron_memory", "dram"


class Neuromorphic:
    """Replays a workload on a neuromorphic mesh in SNN or ANN-twin mode."""

    name = "neuromorphic"

    def __init__(self, spec: ArchSpec, workload: Workload):
        self.spec = spec
        self.wl = workload
        self.d = spec.data
        self.act_bits = self.d.ann_bits(workload.trace.meta.ann_activation_bits)
        self.multicast = spec.mapping["multicast"]
        self.synop_cycles = spec[CORE].synop_cycles
        self.update_cycles = spec[CORE].neuron_update_cycles
        self.has_dram = DRAM in spec.components
        names = [l.name for l in workload.layers]
        producers = []
        for l in workload.layers:
            p = workload.producer(l.name)
            producers.append(None if p is None else names.index(p.name))
        self.producers = producers
        self.map: Mapping = build_mapping(spec, workload.layers, producers)
        self.mesh = self.map.mesh

    # -- events of one sample -------------------------------------------------------------
    def _inputs(self, part: Part, mode: str, sample: int, cache: dict):
        """(ptr, idx, payload_bits) of the events entering ``part`` (one row per step)."""
        tr, l = self.wl.trace, self.wl.layers[part.layer_index]
        prod = self.producers[part.layer_index]
        if prod is None:  # direct encoding: the analog input enters once, as graded events
            key = ("input",)
            if key not in cache:
                x = tr.input(sample).reshape(-1) if tr.has_input else np.ones(l.n_inputs, np.float32)
                idx = np.flatnonzero(x).astype(np.int64)
                cache[key] = (np.array([0, idx.size], dtype=np.int64), idx)
            return (*cache[key], self.d.input_bits)
        pname = self.wl.layers[prod].name
        key = (mode, pname)
        if key not in cache:
            if mode == "snn":
                cache[key] = spike_indices(tr.spikes_packed(pname, sample), l.n_inputs)
            else:
                idx = np.flatnonzero(tr.activations(pname, sample).reshape(-1)).astype(np.int64)
                cache[key] = (np.array([0, idx.size], dtype=np.int64), idx)
        return (*cache[key], 0 if mode == "snn" else self.act_bits)

    def _fired(self, part: Part, mode: str, sample: int, cache: dict, steps: int) -> np.ndarray:
        """Events the part's neurons emit per step (spikes, or non-zero ANN activations)."""
        l = self.wl.layers[part.layer_index]
        if l.output != "spikes":
            return np.zeros(steps, dtype=np.int64)
        key = (mode, l.name)
        if key not in cache:
            if mode == "snn":
                cache[key] = spike_indices(self.wl.trace.spikes_packed(l.name, sample), l.n_neurons)
            else:
                idx = np.flatnonzero(self.wl.trace.activations(l.name, sample).reshape(-1)).astype(np.int64)
                cache[key] = (np.array([0, idx.size], dtype=np.int64), idx)
        ptr, idx = cache[key]
        g = self.map.groups[part.layer_index].gon[idx]
        mine = (g >= part.g0) & (g < part.g1)
        return np.array([np.count_nonzero(mine[ptr[t]:ptr[t + 1]]) for t in range(steps)], dtype=np.int64)

    def _route(self, part: Part, ptr, idx, payload: int):
        l = self.wl.layers[part.layer_index]
        r = self.map.routing[part.layer_index]
        flits = self.mesh.flits(packet_bits(self.mesh, l, payload))
        out = route_events(ptr, idx, r.pattern_of_input, part.src_node, r.ptr, r.group, r.syn,
                           part.group_node, *part.routes, self.mesh.width, self.mesh.n_nodes, flits,
                           self.multicast)
        return flits, out

    # -- counting ---------------------------------------------------------------------------
    def _count_traffic(self, led: Ledger, name: str, flits: int, tr, t: int | None, k: int):
        """Packets and per-direction flit hops of input row k (at step t)."""
        _, packets, ew, ns, _, _, _, _, _ = tr
        fb = self.mesh.flit_bits
        led.add(name, NOC, "packet", packets[k], flits * fb, t)  # a packet's size on the wires
        led.add(name, NOC, "flit_hop_ew", ew[k] * flits, fb, t)
        led.add(name, NOC, "flit_hop_ns", ns[k] * flits, fb, t)

    def _count_part(self, led: Ledger, part: Part, mode: str, T: int, flits: int, tr, fired, analog: bool):
        """Ledger counts of one part on one sample: the arriving events, then the neuron
        updates of every step. Graded events (the analog input, ANN activations) arrive
        once and multiply; spikes arrive every step and only add."""
        d, l = self.d, self.wl.layers[part.layer_index]
        name, N = l.name, int(part.node_neurons.sum())
        mb = d.membrane_bits if mode == "snn" else d.psum_bits
        synops = tr[4]
        graded = analog or mode == "ann"
        for k in range(synops.shape[0]):
            step = k if mode == "snn" else None
            self._count_traffic(led, name, flits, tr, step, k)
            syn_k = int(synops[k])
            led.add(name, SYN, "weight_read", syn_k, d.weight_bits, step)
            if graded:
                acc = "current" if mode == "snn" else "psum"
                led.add(name, CORE, "mac", syn_k, d.weight_bits, step)
                led.add(name, NEU, f"{acc}_read", syn_k, d.psum_bits, step)
                led.add(name, NEU, f"{acc}_write", syn_k, d.psum_bits, step)
            else:
                led.add(name, NEU, "membrane_read", syn_k, mb, step)
                led.add(name, NEU, "membrane_write", syn_k, mb, step)
        for t in range(T):
            step = t if mode == "snn" else None
            if mode == "snn":  # accumulate spikes (or the stored current), reset the fired
                adds = (N if analog else int(synops[t])) + int(fired[t])
                led.add(name, CORE, "add", adds, mb, step)
            if l.output == "spikes":
                led.add(name, NEU, "state_read", N, mb, step)
                led.add(name, CORE, "compare", N, mb, step)
                led.add(name, NEU, "state_write", N, mb, step)
                led.add(name, CORE, "fire", int(fired[t]), 1, step)
            elif t == T - 1:  # the readout's potentials leave the chip
                led.add(name, NEU, "state_read", N, mb, step)

    def _segment(self, led: Ledger, s: int, mode: str, sample: int, cache: dict, clock: dict):
        """Count and time one chip configuration on one sample."""
        d, T = self.d, (self.wl.T if mode == "snn" else 1)
        parts = self.map.segment_parts(s)
        mb = d.membrane_bits if mode == "snn" else d.psum_bits
        loads, timeline = [], []
        for part in parts:
            l = self.wl.layers[part.layer_index]
            name, N = l.name, int(part.node_neurons.sum())
            spiking = l.output == "spikes"
            dram_in = dram_out = 0
            if self.map.n_segments > 1:  # page this part's weights in
                words = int(self.map.groups[part.layer_index].synapse_bits[part.g0:part.g1].sum()) // d.weight_bits
                led.add(name, DRAM, "weight_read", words, d.weight_bits)
                led.add(name, SYN, "weight_write", words, d.weight_bits)
                dram_in += words * d.weight_bits
            ptr, idx, payload = self._inputs(part, mode, sample, cache)
            flits, tr = self._route(part, ptr, idx, payload)
            events, _, _, _, _, longest, core_syn, _, load = tr
            analog = self.producers[part.layer_index] is None
            if self.has_dram and (analog or not part.input_on_chip):
                if analog:
                    led.add(name, DRAM, "input_read", l.n_inputs, d.input_bits)
                    dram_in += l.n_inputs * d.input_bits
                else:
                    act = "spike_read" if mode == "snn" else "activation_read"
                    ebits = address_bits(l.n_inputs) + (0 if mode == "snn" else self.act_bits)
                    led.add(name, DRAM, act, int(events.sum()), ebits)
                    dram_in += int(events.sum()) * ebits
            fired = self._fired(part, mode, sample, cache, T)
            self._count_part(led, part, mode, T, flits, tr, fired, analog)
            K = core_syn.shape[0]  # rows of input events: T for spikes, 1 for graded events
            rows = np.zeros((T, self.mesh.n_nodes), dtype=np.int64)
            link = np.zeros((T, load.shape[1]), dtype=np.int64)
            hops = np.zeros(T, dtype=np.int64)
            rows[:K], link[:K], hops[:K] = core_syn, load, longest
            if part.output_off_chip and self.has_dram:
                if spiking:
                    act = "spike_write" if mode == "snn" else "activation_write"
                    ebits = address_bits(l.n_neurons) + (0 if mode == "snn" else self.act_bits)
                    led.add(name, DRAM, act, int(fired.sum()), ebits)
                    dram_out += int(fired.sum()) * ebits
                else:
                    led.add(name, DRAM, "output_write", N, mb)
                    dram_out += N * mb
            # per-step work of the part's busiest core
            upd = np.zeros(T, dtype=np.int64)
            if spiking:
                upd[:] = part.node_neurons.max() * self.update_cycles
            else:
                upd[-1] = part.node_neurons.max() * self.update_cycles
            work = rows * self.synop_cycles
            busy = (work + part.node_neurons[None, :] * self.update_cycles * (upd > 0)[:, None]).max(axis=1)
            loads.append((name, part.position, work.max(axis=1), upd, busy, link, hops))
            timeline.append((name, dram_in, dram_out))
            clock["link_total"] += link.sum(axis=0)
            clock["core_busy"] += int((work.sum(axis=1) + (part.node_neurons.sum() * self.update_cycles) * (upd > 0)).sum())
            counts = clock["element_events"].setdefault(id(part), np.zeros(l.n_inputs, dtype=np.int64))
            counts += np.bincount(idx, minlength=l.n_inputs)
        self._time(loads, timeline, T, clock)

    def _time(self, loads, timeline, T: int, clock: dict):
        env, dram = clock["env"], clock["dram"]
        for name, dram_in, _ in timeline:  # weights and off-chip inputs before the steps
            if dram_in:
                t0 = env.now
                env.run(until=env.process(dram.transfer(dram_in)))
                clock["layer_cycles"][name] += env.now - t0
        depth = max(pos for _, pos, *_ in loads) + 1
        steps = []
        for g in range(T + depth - 1):
            labels, integ, upd, busy = [], [], [], []
            link = None
            hops = 0
            for name, pos, w, u, b, lk, hp in loads:
                t = g - pos
                if 0 <= t < T:
                    labels.append(name)
                    integ.append(int(w[t]))
                    upd.append(int(u[t]))
                    busy.append(int(b[t]))
                    link = lk[t].copy() if link is None else link + lk[t]
                    hops = max(hops, int(hp[t]))
            steps.append(StepLoad(labels, integ, upd, busy, int(link.max()) if link is not None else 0, hops))
        for st in clock["steps"].run(steps):
            clock["stalls"] += st.stall
            clock["layer_cycles"][st.critical or loads[0][0]] += st.latency
        for name, _, dram_out in timeline:  # off-chip outputs after the steps
            if dram_out:
                t0 = env.now
                env.run(until=env.process(dram.transfer(dram_out)))
                clock["layer_cycles"][name] += env.now - t0

    # -- replay ---------------------------------------------------------------------------
    def run(self, mode: str, samples: int, progress=None) -> RunResult:
        if mode not in ("snn", "ann"):
            raise ParameterError(None, "--mode", f"unknown mode {mode!r}")
        led = Ledger(by_step=(mode == "snn"))
        env = simpy.Environment()
        s = self.spec
        dram = Dram(env, s[DRAM].width_bits, s[DRAM].bandwidth_bits_per_cycle, s[DRAM].latency_cycles) \
            if self.has_dram else Dram(env, 1, 1, 0)
        clock = {"env": env, "dram": dram, "steps": BarrierSteps(env, self.mesh, s[NOC].barrier_cycles),
                 "stalls": 0, "layer_cycles": {l.name: 0 for l in self.wl.layers},
                 "link_total": np.zeros(4 * self.mesh.n_nodes, dtype=np.int64), "core_busy": 0,
                 "element_events": {}}
        work = {l.name: {"spikes_in": 0, "spikes_out": 0, "synaptic_ops": 0, "macs": 0,
                         "neuron_updates": 0} for l in self.wl.layers}
        for i in range(samples):
            cache: dict = {}
            for seg in range(self.map.n_segments):
                self._segment(led, seg, mode, i, cache, clock)
            for l, ev in zip(self.wl.layers, self.wl.sample_events(i)):
                w = work[l.name]
                if mode == "ann":
                    w["macs"] += ev.ann_macs
                    w["neuron_updates"] += l.n_neurons
                else:
                    w["spikes_in"] += int(ev.in_spikes.sum())
                    w["spikes_out"] += int(ev.out_spikes.sum())
                    w["synaptic_ops"] += int(ev.synops.sum())
                    w["macs"] += ev.ann_macs if ev.analog_input else 0
                    w["neuron_updates"] += l.n_neurons * self.wl.T
            if progress:
                progress(1)
        cycles = env.now
        return RunResult(self.name, mode, samples, led, cycles, clock["stalls"], clock["layer_cycles"],
                         self._utilisation(clock, cycles), work, notes=self._notes(),
                         extra={"mapping": self.map.summary(), "noc": self._noc_extra(led, clock),
                                "ann_activation_bits": self.act_bits})

    def _utilisation(self, clock: dict, cycles: int) -> dict:
        if not cycles:
            return {NOC: 0.0, CORE: 0.0, DRAM: 0.0}
        m = self.mesh
        links = m.n_links * cycles  # a 1x1 mesh has no links: its NoC is never busy
        return {NOC: float(clock["link_total"].sum() / m.link_flits_per_cycle / links) if links else 0.0,
                CORE: float(clock["core_busy"] / (m.n_nodes * cycles)),
                DRAM: float(clock["dram"].busy_cycles / cycles) if self.has_dram else 0.0}

    def _noc_extra(self, led: Ledger, clock: dict) -> dict:
        totals = led.totals()
        packets = totals.get(f"{NOC}.packet", 0)
        hops = 0
        hist = np.zeros(self.mesh.width + self.mesh.height - 1, dtype=np.int64)
        for part in self.map.parts:
            counts = clock["element_events"].get(id(part))
            if counts is None:
                continue
            r = self.map.routing[part.layer_index]
            hist += hop_histogram(counts, r.pattern_of_input, part.src_node, r.ptr, r.group, part.group_node,
                                  self.mesh.width, len(hist) - 1)
            pk, ew, ns, _ = part.routes
            hops += int((counts * (ew + ns)).sum())
        return {"mesh": [self.mesh.width, self.mesh.height], "flit_bits": self.mesh.flit_bits,
                "multicast": self.multicast, "k_hop": hops / packets if packets else 0.0,
                "link_flits": clock["link_total"].tolist(), "hop_histogram": hist.tolist()}

    def _notes(self) -> list[str]:
        notes = []
        if self.map.n_segments > 1:
            notes.append(f"the model needs {self.map.n_segments} chip configurations: every sample pages "
                         f"all weights in from DRAM, and events between configurations go through DRAM")
        else:
            notes.append("the model fits the mesh: weights are loaded once at configuration and not "
                         "counted per inference")
        return notes
