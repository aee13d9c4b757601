"""What every architecture is and returns: the Architecture protocol, the sample-by-sample
Session a replay drives, and the RunResult (exact counts and simulated time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import simpy

from sim.arch.registry import MODES
from sim.engine import Dram, Ledger, PEArray, Sram, TilePipeline

from sim.errors import ParameterError
from sim.workload import new_totals

if TYPE_CHECKING:
    from sim.arch.spec import ArchSpec
    from sim.workload import SampleEvents, Workload

__all__ = ["MODES", "Architecture", "RunResult", "Session", "Simulator", "TileSession", "add_counts", "add_ledger",
           "add_workload", "split_evenly"]


@dataclass
class RunResult:
    """Counts (ledger), cycles and utilisation of one architecture in one mode.

    ``layer_cycles`` attributes every simulated cycle to the layer whose tile finished in it,
    so they sum to ``cycles``. ``utilisation`` maps a component to busy cycles / cycles.
    ``workload`` holds counts that belong to the workload, not the hardware (spikes in and
    out, synaptic events, MACs, neuron updates), per layer.
    """

    architecture: str
    mode: str
    samples: int
    ledger: Ledger
    cycles: int
    stall_cycles: int
    layer_cycles: dict[str, int]
    utilisation: dict[str, float]
    workload: dict[str, dict[str, int]]
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class Session(Protocol):
    """One (architecture, mode) replay in progress: ``add`` counts one decoded sample (samples
    in order 0, 1, 2, ...), ``finish`` returns the result over every sample added.

    A replay split into chunks of consecutive samples (:mod:`sim.replay.parallel`) counts each
    chunk in a session of its own; ``state`` is what a session has counted (exact integers and
    whatever ``finish`` needs, picklable) and ``absorb(state)`` adds a session's state to this
    one as if its samples had been added here, after those already added; ``finish`` then
    returns exactly the result of one session fed every sample."""

    def add(self, events: "SampleEvents") -> None: ...

    def state(self) -> dict: ...

    def absorb(self, state: dict) -> None: ...

    def finish(self) -> RunResult: ...


class Architecture(Protocol):
    """What every simulator class a registry row names provides: built from a validated spec
    and a workload (static mapping checked then: ParameterError for a spec that cannot run
    it); ``start(mode)`` opens a :class:`Session` of mode "snn" or "ann" that a replay feeds
    sample by sample, so one decoded sample serves every architecture and mode; ``run``
    replays the first ``samples`` samples alone (``progress(n)`` as samples finish)."""

    name: str

    def __init__(self, spec: "ArchSpec", workload: "Workload") -> None: ...

    def start(self, mode: str) -> Session: ...

    def run(self, mode: str, samples: int, progress: Callable[[int], None] | None = None) -> RunResult: ...


class Simulator:
    """Base of the simulators: keeps the spec and workload, checks the mode, and runs a
    session over the first samples. Subclasses implement ``_start(mode) -> Session``."""

    name = ""

    def __init__(self, spec: "ArchSpec", workload: "Workload"):
        self.spec, self.wl, self.d = spec, workload, spec.data

    def start(self, mode: str) -> Session:
        if mode not in MODES:
            raise ParameterError(None, "--mode", f"unknown mode {mode!r}")
        return self._start(mode)

    def _start(self, mode: str) -> Session:
        raise NotImplementedError

    def run(self, mode: str, samples: int, progress: Callable[[int], None] | None = None) -> RunResult:
        session = self.start(mode)
        for i in range(samples):
            session.add(self.wl.sample(i))
            if progress:
                progress(1)
        return session.finish()


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one and sum exactly."""
    base, rem = divmod(int(total), parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


# -- absorbing a chunk's state (Session.absorb) -------------------------------------------
def add_ledger(into: Ledger, other: Ledger) -> None:
    """``other``'s counts added to ``into``, key by key in ``other``'s order (a key new to
    ``into`` comes after its keys: the order one ledger fed both runs of samples would have)."""
    for key, n in other.counts.items():
        into.add(*key, n, other.bits[key])


def add_workload(into: dict[str, dict[str, int]], other: dict[str, dict[str, int]]) -> None:
    """Workload totals (``sim.workload.new_totals``) of ``other`` added to ``into``."""
    for layer, totals in other.items():
        mine = into[layer]
        for k, v in totals.items():
            mine[k] += v


def add_counts(into: dict[str, int], other: dict[str, int]) -> None:
    """Per-key integers (cycles per layer) of ``other`` added to ``into``."""
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


class TileSession:
    """What a session that runs each sample's tiles through one tile pipeline
    (sim.engine.TilePipeline: ``self.pipe`` with its ``dram``, ``sram`` and ``pe`` units) keeps
    and how it merges chunks (:class:`Session`): the ledger ``led``, workload totals ``work``,
    ``samples``, ``stalls``, ``absorbed_cycles`` and the per-layer integer dicts named in
    ``COUNTERS`` (``layer_cycles`` and any of the architecture's own). Each sample's tiles run
    from an idle pipeline to an idle pipeline, so a sample's cycles, stalls and busy cycles do
    not depend on the samples before it: a chunk's add to the total."""

    COUNTERS: tuple[str, ...] = ("layer_cycles",)

    def __init__(self, arch: "Simulator", mode: str, sram: tuple[int, int, int, int]):
        """A session of ``arch`` (whose ``plan(mode)`` gives ``plans``) on a pipeline of the
        spec's ``dram`` and ``pe_array`` and an SRAM unit ``sram`` = (width_bits, banks, ports,
        latency_cycles), the one DRAM fills write."""
        self.arch, self.mode = arch, mode
        self.plans = arch.plan(mode)
        self.led = Ledger()
        self.env = env = simpy.Environment()
        d, p = arch.spec["dram"], arch.spec["pe_array"]
        self.dram = Dram(env, d.width_bits, d.bandwidth_bits_per_cycle, d.latency_cycles)
        self.sram = Sram(env, *sram)
        self.pe = PEArray(env, p.rows, p.cols, p.ops_per_cycle)
        self.pipe = TilePipeline(self.dram, self.sram, self.pe)
        for k in self.COUNTERS:
            setattr(self, k, {l.name: 0 for l in arch.wl.layers})
        self.stalls = self.samples = 0
        self.work = new_totals(arch.wl.layers)
        self.absorbed_cycles = 0  # cycles of the samples absorbed from other sessions (absorb)

    def _ran(self, stats) -> None:
        """One sample's pipeline stats taken in."""
        self.stalls += stats.stall_cycles
        for name, c in stats.stage_cycles.items():
            self.layer_cycles[name] += c
        self.samples += 1

    @property
    def cycles(self) -> int:
        return self.env.now + self.absorbed_cycles

    def state(self) -> dict:
        p = self.pipe
        return {"ledger": self.led, "work": self.work, "samples": self.samples, "cycles": self.cycles,
                "stalls": self.stalls, "busy": (p.dram.busy_cycles, p.sram.busy_cycles, p.pe.busy_cycles),
                **{k: getattr(self, k) for k in self.COUNTERS}}

    def absorb(self, state: dict) -> None:
        add_ledger(self.led, state["ledger"])
        add_workload(self.work, state["work"])
        for k in self.COUNTERS:
            add_counts(getattr(self, k), state[k])
        self.samples += state["samples"]
        self.absorbed_cycles += state["cycles"]
        self.stalls += state["stalls"]
        p = self.pipe
        dram, sram, pe = state["busy"]
        p.dram.busy_cycles += dram
        p.sram.busy_cycles += sram
        p.pe.busy_cycles += pe
