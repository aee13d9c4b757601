"""The mesh network-on-chip: geometry, XY routing, packet sizes, and barrier-separated
time steps simulated as simpy transactions.

A W x H mesh of routers, one core per router. Node ``n`` is at ``(n % W, n // W)``; the
directed link ``4 * n + d`` leaves node n towards east (d=0), west (1), south (2), north (3).
Packets are routed dimension-ordered: along x first, then along y. The per-event counting
lives in sim.kernels.noc; this module turns one step's loads (flits per link) into cycles.

A time step is three transactions per core set (the cores of one layer): integrate the
arriving events (synaptic ops, overlapping the network's delivery), wait until the network
has delivered the step's last flit, update the neurons; then a barrier. The network's
delivery time is the busiest link's flits over the link bandwidth plus the router latency
times the longest path, so contention on one link sets the whole step's latency.
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

    ``integrate[k]`` / ``update[k]``: cycles of the busiest core of core set k for its
    synaptic ops / its neuron updates; ``busy[k]`` the largest sum of the two on one core.
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
    latency: int
    network: int
    stall: int
    critical: str | None
    per_label: dict = field(default_factory=dict)


class BarrierSteps:
    """Runs time steps on a simpy environment, one transaction per core set and one for
    the network per step, then a barrier of ``barrier_cycles``."""

    def __init__(self, env: simpy.Environment, mesh: Mesh, barrier_cycles: int):
        self.env = env
        self.mesh = mesh
        self.barrier = barrier_cycles

    def network_cycles(self, link_flits: int, longest_hops: int) -> int:
        if link_flits <= 0:
            return 0
        return math.ceil(link_flits / self.mesh.link_flits_per_cycle) + \
            self.mesh.router_latency_cycles * longest_hops

    def run(self, steps: list[StepLoad]) -> list[StepTimes]:
        """Simulate the steps in order; returns each step's latency and stalls (cycles)."""
        env = self.env
        out: list[StepTimes] = []

        def core_set(integrate, update, delivered, finish, k):
            yield env.timeout(integrate)
            yield delivered
            yield env.timeout(update)
            finish[k] = env.now

        def network(cycles, done):
            yield env.timeout(cycles)
            done.succeed()

        def driver():
            for s in steps:
                t0 = env.now
                delivered = env.event()
                net = self.network_cycles(s.link_flits, s.longest_hops)
                env.process(network(net, delivered))
                finish = [t0] * len(s.labels)
                procs = [env.process(core_set(i, u, delivered, finish, k))
                         for k, (i, u) in enumerate(zip(s.integrate, s.update))]
                yield env.all_of(procs) if procs else delivered
                yield env.timeout(self.barrier)
                latency = env.now - t0
                busiest = max(s.busy, default=0)
                crit = None
                if s.labels:
                    k = max(range(len(s.labels)), key=lambda j: (finish[j], s.busy[j]))
                    crit = s.labels[k]
                out.append(StepTimes(latency, net, latency - busiest, crit,
                                     {lab: f - t0 for lab, f in zip(s.labels, finish)}))

        env.run(until=env.process(driver()))
        return out
