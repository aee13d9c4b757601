"""What every architecture returns from a replay: exact counts and simulated time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from sim.arch.registry import MODES
from sim.engine import Ledger

if TYPE_CHECKING:
    from sim.arch.spec import ArchSpec
    from sim.workload import Workload

__all__ = ["MODES", "Architecture", "RunResult", "address_bits", "split_evenly"]


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


class Architecture(Protocol):
    """What every simulator class a registry row names provides: built from a validated spec
    and a workload (static mapping checked then: ParameterError for a spec that cannot run
    it), ``run`` replays the first ``samples`` samples in ``mode`` ("snn" or "ann") and
    returns exact counts and simulated time; ``progress(n)`` is called as samples finish."""

    name: str

    def __init__(self, spec: "ArchSpec", workload: "Workload") -> None: ...

    def run(self, mode: str, samples: int, progress: Callable[[int], None] | None = None) -> RunResult: ...


def address_bits(n: int) -> int:
    """Bits of an address-event naming one of ``n`` neurons."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one and sum exactly."""
    base, rem = divmod(int(total), parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]
