"""The mesh network-on-chip: geometry, XY routing, packet sizes, and barrier-separated
time steps simulated as simpy transactions.

A W x H mesh of routers, one core per router. Node ``n`` is at ``(n % W, n // W)``; the
directed link ``4 * n + d`` leaves node n towards east (d=0), west (1), south (2), north (3).
Packets are routed dimension-ordered: along x first, then along y. The per-event counting
lives in sim.kernels.noc; this module turns one step's loads (flits per link) into cycles.

A time step is three transactions per core set (the cores of one layer): integrate the
arriving events (synaptic ops and packet arrivals, overlapping the network's delivery), wait
until the network has delivered the step's last flit, update the neurons; or, with the
update overlapped (SANA-FE's Loihi model), run the core's busiest max(integrate, update) and
wait for the network. Then the step ends on the next clock edge and the barrier follows.
Core times are in ticks (1/ticks_per_cycle of a cycle), so sub-cycle per-event times stay
integers; each step is simulated on its own tick clock and lasts a whole number of cycles.
The network's delivery time is the busiest link's flits over the link bandwidth plus the
router latency times the longest path, so contention on one link sets the whole step's latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy


@dataclass(frozen=True)
class Mesh:
    """Link timing of a W x H mesh: bandwidth (flits per cycle per link), router latency
    (cycles per hop), and the XY routes whose links carry the flits. Packet sizes (flit width,
    header bits) belong to the mapping's geometry (sim.mapping.neuromorphic.MeshGeometry)."""

    width: int
    height: int
    link_flits_per_cycle: int
    router_latency_cycles: int

    @property
    def n_nodes(self) -> int:
        return self.width * self.height

    @property
    def n_links(self) -> int:
        """Directed links that exist (boundary routers have fewer neighbours)."""
        return 2 * (self.width - 1) * self.height + 2 * self.width * (self.height - 1)

    def xy(self, node: int) -> tuple[int, int]:
        return node % self.width, node // self.width

    def node(self, x: int, y: int) -> int:
        return y * self.width + x

    def hops(self, a: int, b: int) -> int:
        """Hops of the XY route from node a to node b (Manhattan distance)."""
        (ax, ay), (bx, by) = self.xy(a), self.xy(b)
        return abs(ax - bx) + abs(ay - by)

    def route(self, a: int, b: int) -> list[int]:
        """Directed link ids of the XY route from node a to node b, in order."""
        (x, y), (bx, by) = self.xy(a), self.xy(b)
        links = []
        while x != bx:
            d = 0 if bx > x else 1
            links.append(4 * self.node(x, y) + d)
            x += 1 if d == 0 else -1
        while y != by:
            d = 2 if by > y else 3
            links.append(4 * self.node(x, y) + d)
            y += 1 if d == 2 else -1
        return links


@dataclass
class StepLoad:
    """What one time step asks of the hardware.

    ``integrate[k]`` / ``update[k]``: ticks of the busiest core of core set k for its
    integration (synaptic ops and arriving packets) / its neuron updates; ``busy[k]`` the
    largest time of one core: integrate + update, or max(integrate, update) when overlapped.
    ``link_flits`` is the busiest link's load; ``longest_hops`` the critical path.
    """

    labels: list[str]
    integrate: list[int]
    update: list[int]
    busy: list[int]
    link_flits: int
    longest_hops: int


@dataclass
class StepTimes:
    """One step in cycles: its latency (work rounded up to a clock edge, plus the barrier),
    the network's delivery, the stall (latency minus the busiest core's work), the core set
    that finished last, and each core set's finish."""

    latency: int
    network: int
    stall: int
    critical: str | None
    per_label: dict = field(default_factory=dict)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class BarrierSteps:
    """Runs time steps on a simpy environment (in cycles): each step is simulated on its own
    simpy clock in ticks, one transaction per core set and one for the network, and the
    step's cycles are its last finish rounded up to a whole cycle, plus ``barrier_cycles``.
    ``overlap``: a core updates its neurons while it integrates (its time is its ``busy``)."""

    def __init__(self, env: simpy.Environment, mesh: Mesh, barrier_cycles: int, ticks_per_cycle: int = 1,
                 overlap: bool = False):
        self.env = env
        self.mesh = mesh
        self.barrier = barrier_cycles
        self.ticks = ticks_per_cycle
        self.overlap = overlap

    def network_cycles(self, link_flits: int, longest_hops: int) -> int:
        if link_flits <= 0:
            return 0
        return math.ceil(link_flits / self.mesh.link_flits_per_cycle) + \
            self.mesh.router_latency_cycles * longest_hops

    def step_ticks(self, s: StepLoad) -> tuple[int, list[int]]:
        """Simulate one step's work on a tick clock: (the last finish, each core set's finish)."""
        env = simpy.Environment()
        delivered = env.event()
        finish = [0] * len(s.labels)

        def core_set(k):
            if self.overlap:
                yield env.all_of([env.timeout(s.busy[k]), delivered])
            else:
                yield env.timeout(s.integrate[k])
                yield delivered
                yield env.timeout(s.update[k])
            finish[k] = env.now

        def network(ticks):
            yield env.timeout(ticks)
            delivered.succeed()

        env.process(network(self.network_cycles(s.link_flits, s.longest_hops) * self.ticks))
        procs = [env.process(core_set(k)) for k in range(len(s.labels))]
        env.run(until=env.all_of(procs) if procs else delivered)
        return env.now, finish

    def run(self, steps: list[StepLoad], barrier: int | None = None) -> list[StepTimes]:
        """Simulate the steps in order, each followed by ``barrier`` cycles (default: the
        constructor's); returns each step's latency and stalls (cycles)."""
        env, R = self.env, self.ticks
        barrier = self.barrier if barrier is None else barrier
        out: list[StepTimes] = []
        for s in steps:
            work, finish = self.step_ticks(s)
            latency = ceil_div(work, R) + barrier
            env.run(until=env.process(_hold(env, latency)))
            busiest = ceil_div(max(s.busy, default=0), R)
            crit = None
            if s.labels:
                k = max(range(len(s.labels)), key=lambda j: (finish[j], s.busy[j]))
                crit = s.labels[k]
            out.append(StepTimes(latency, self.network_cycles(s.link_flits, s.longest_hops), latency - busiest,
                                 crit, {lab: ceil_div(f, R) for lab, f in zip(s.labels, finish)}))
        return out


def _hold(env: simpy.Environment, cycles: int):
    yield env.timeout(cycles)
