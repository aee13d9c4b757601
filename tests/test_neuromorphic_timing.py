"""The neuromorphic step-time rule (docs/architectures/neuromorphic.md, "Time"), checked by
brute force on the tiny trace: every synapse enumerated, each core's integration (synaptic
ops at its synapse kind's time plus arriving packets) and update in ticks, the step's end on
a clock edge, the barrier by cores in use, both schedules, with and without the overlap; and
the engine's simpy steps against the closed rule on random loads."""

from __future__ import annotations

import random

import numpy as np
import pytest
import simpy

import brute
from sim.arch.fields import table_value
from sim.arch.spec import load_arch_spec
from sim.architectures.neuromorphic import Neuromorphic
from sim.engine.noc import BarrierSteps, Mesh, StepLoad
from sim.errors import SpecError
from sim.trace import open_trace
from sim.workload import Workload

SMALL = ["components.noc.width=8", "components.noc.height=8", "components.neuron_memory.capacity_bytes=96",
         "components.synapse_memory.capacity_bytes=1024",
         # a network faster than any core's work: 1 cycle whenever a flit moves
         "components.noc.link_flits_per_cycle=4096", "components.noc.router_latency_cycles=0"]


def expected_step_cycles(sim: Neuromorphic, tr, s: int) -> int:
    """The barrier steps' cycles of sample s, by the documented rule, from every synapse."""
    spec = sim.spec
    core = spec["core"]
    R, upd_t, pkt_t = core.ticks_per_cycle, core.neuron_update_ticks, core.packet_in_ticks
    m, T = sim.map, tr.T
    assert m.n_segments == 1
    overlap, aligned = spec.mapping["update_overlap"], \
        spec.mapping["schedule"] == "aligned"
    # per part: per step, (work per node, update per node)
    parts = []
    for part in m.parts:
        layer = sim.wl.layers[part.layer_index]
        lg = m.groups[part.layer_index]
        node_of = {}
        for i, o in brute.synapses(layer):
            g = int(lg.gon[o])
            if part.group_node[g] >= 0:
                node_of.setdefault(i, []).append(int(part.group_node[g]))
        if layer.kind == "linear":
            syn_t = core.dense_synop_ticks
        elif layer.kind in ("conv2d", "avgpool") and not spec.mapping["weight_sharing"]:
            syn_t = core.sparse_synop_ticks
        else:
            syn_t = core.conv_synop_ticks
        prod = sim.producers[part.layer_index]
        if prod is None:
            rows = [[]] * T if spec.mapping["direct_input"] == "bias" else \
                [np.flatnonzero(tr.input(s).reshape(-1)).tolist()] + [[]] * (T - 1)
        else:
            sp = tr.input_spikes(layer.name, s).reshape(T, -1)
            rows = [np.flatnonzero(sp[t]).tolist() for t in range(T)]
        work = np.zeros((T, m.mesh.n_nodes), dtype=np.int64)
        for t, row in enumerate(rows):
            for i in row:
                dests = node_of.get(i, [])
                for d in dests:
                    work[t, d] += syn_t
                for d in set(dests):
                    work[t, d] += pkt_t
        updates = layer.has_neurons and (layer.output == "spikes" or spec.mapping["readout_every_step"])
        upd = np.zeros((T, m.mesh.n_nodes), dtype=np.int64)
        if updates:
            upd[:] = part.node_neurons * upd_t
        elif layer.has_neurons:
            upd[-1] = part.node_neurons * upd_t
        parts.append((part.position, work, upd))
    depth = 1 if aligned else max(p for p, _, _ in parts) + 1
    nodes = {int(n) for part in m.parts for n in part.group_node if n >= 0}
    barrier = table_value(spec["noc"].barrier_cycles, len(nodes))
    total = 0
    for g in range(T + depth - 1):
        active = [(w[t], u[t]) for p, w, u in parts for t in [g if aligned else g - p] if 0 <= t < T]
        net = R if any(w.any() for w, _ in active) else 0  # one cycle when any packet moves
        finish = 0
        for w, u in active:
            if overlap:
                f = max(int(np.maximum(w, u).max()), net)
            else:
                f = max(int(w.max()), net) + int(u.max())
            finish = max(finish, f)
        total += -(-finish // R) + barrier
    return total


@pytest.mark.parametrize("schedule", ["pipelined", "aligned"])
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("extra", [[], ["mapping.direct_input=bias", "mapping.weight_sharing=false",
                                        "components.noc.barrier_cycles=75", "components.core.ticks_per_cycle=7"]])
def test_step_time_rule_by_brute_force(tiny_trace, schedule, overlap, extra):
    spec = load_arch_spec("neuromorphic", SMALL + [f"mapping.schedule={schedule}",
                                                   f"mapping.update_overlap={str(overlap).lower()}"] + extra)
    with open_trace(tiny_trace) as tr:
        sim = Neuromorphic(spec, Workload(tr))
        for s in range(tr.n_samples):
            session = sim.start("snn")
            session.add(sim.wl.sample(s))
            st = session.state()
            assert st["cycles"] - st["dram_busy"] == expected_step_cycles(sim, tr, s)


def test_aligned_runs_T_steps_and_never_takes_longer(tiny_trace):
    times = {}
    for schedule in ("pipelined", "aligned"):
        spec = load_arch_spec("neuromorphic", SMALL + [f"mapping.schedule={schedule}"])
        with open_trace(tiny_trace) as tr:
            times[schedule] = Neuromorphic(spec, Workload(tr)).run("snn", 1).cycles
    assert times["aligned"] < times["pipelined"]


def test_barrier_table_rows():
    table = ((1, 150), (2, 250), (4, 350), (29, 450))
    assert [table_value(table, n) for n in (1, 2, 3, 4, 6, 28, 29, 128)] == [150, 250, 250, 350, 350, 350, 450, 450]
    assert table_value(((4, 10),), 1) == 10 and table_value(75, 1000) == 75


@pytest.mark.parametrize("value", ["[]", "[[0, 5]]", "[[1, 5], [1, 6]]", "[[1, -1]]", "[[1]]", "[1, 2]"])
def test_bad_barrier_tables_are_refused(value):
    with pytest.raises(SpecError):
        load_arch_spec("neuromorphic", [f"components.noc.barrier_cycles={value}"])


@pytest.mark.parametrize("overlap", [True, False])
def test_engine_steps_follow_the_closed_rule(overlap):
    rng = random.Random(3)
    mesh = Mesh(4, 4, 2, 3)
    R = 40
    steps = []
    for _ in range(60):
        k = rng.randint(0, 4)
        integ = [rng.randint(0, 900) for _ in range(k)]
        upd = [rng.choice([0, rng.randint(1, 900)]) for _ in range(k)]
        busy = [max(i, u) if overlap else i + u for i, u in zip(integ, upd)]
        steps.append(StepLoad([f"l{j}" for j in range(k)], integ, upd, busy, rng.choice([0, rng.randint(1, 30)]),
                              rng.randint(0, 6)))
    env = simpy.Environment()
    eng = BarrierSteps(env, mesh, 11, R, overlap)
    got = eng.run(steps)
    total = 0
    for s, st in zip(steps, got):
        net = eng.network_cycles(s.link_flits, s.longest_hops) * R
        ends = [max(b, net) if overlap else max(i, net) + u for i, u, b in zip(s.integrate, s.update, s.busy)]
        want = -(-max(ends, default=net) // R) + 11
        assert st.latency == want
        assert st.stall == want - -(-max(s.busy, default=0) // R)
        total += want
    assert env.now == total
