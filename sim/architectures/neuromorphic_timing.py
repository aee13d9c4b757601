"""The neuromorphic simulator's time: one run's clock and activity (:class:`Clock`), each
part's per-step demands (:class:`PartLoad`), and :func:`advance`, which turns a chip
configuration's loads into DRAM transfers and barrier-separated steps on the simpy engine
(sim.engine.noc.BarrierSteps). docs/architectures/neuromorphic.md, "Time".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine import Dram
from sim.engine.noc import BarrierSteps, StepLoad


@dataclass
class Clock:
    """Simulated time and hardware activity of one run, summed over samples.

    ``link_flits`` (int64 [4 * n_nodes]): flits each directed link carried; ``core_busy``:
    ticks summed over cores; ``element_events[k]`` (int64 [n_inputs]): events of each input
    element of part k; ``layer_cycles``: cycles attributed to each layer; ``stalls``: cycles
    a step waited beyond its busiest core."""

    env: simpy.Environment
    dram: Dram
    steps: BarrierSteps
    layer_cycles: dict[str, int]
    link_flits: np.ndarray
    stalls: int = 0
    core_busy: int = 0
    element_events: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class PartLoad:
    """Per-step demands of one part on the hardware (int64 [T] each, link_flits [T, 4 * n_nodes]):
    its busiest core's integration and update ticks, its busiest core's total, the flits per
    link and the longest path."""

    name: str
    position: int
    integrate: np.ndarray
    update: np.ndarray
    busy: np.ndarray
    link_flits: np.ndarray
    longest: np.ndarray


def advance(loads: list[PartLoad], timeline, T: int, clock: Clock, barrier: int, aligned: bool) -> None:
    """Advance the clock: DRAM transfers in, the barrier steps, DRAM out. Pipelined: a part
    at depth j plays its step t at step t + j (T + depth - 1 steps); aligned: every part
    plays step t at step t (T steps), as SANA-FE does."""
    env, dram = clock.env, clock.dram
    for name, dram_in, _ in timeline:  # weights and off-chip inputs before the steps
        if dram_in:
            t0 = env.now
            env.run(until=env.process(dram.transfer(dram_in)))
            clock.layer_cycles[name] += env.now - t0
    depth = 1 if aligned else max(ld.position for ld in loads) + 1
    steps = []
    for g in range(T + depth - 1):
        labels, integ, upd, busy = [], [], [], []
        link = None
        hops = 0
        for ld in loads:
            t = g if aligned else g - ld.position
            if 0 <= t < T:
                labels.append(ld.name)
                integ.append(int(ld.integrate[t]))
                upd.append(int(ld.update[t]))
                busy.append(int(ld.busy[t]))
                link = ld.link_flits[t].copy() if link is None else link + ld.link_flits[t]
                hops = max(hops, int(ld.longest[t]))
        steps.append(StepLoad(labels, integ, upd, busy, int(link.max()) if link is not None else 0, hops))
    for st in clock.steps.run(steps, barrier):
        clock.stalls += st.stall
        clock.layer_cycles[st.critical or loads[0].name] += st.latency
    for name, _, dram_out in timeline:  # off-chip outputs after the steps
        if dram_out:
            t0 = env.now
            env.run(until=env.process(dram.transfer(dram_out)))
            clock.layer_cycles[name] += env.now - t0
