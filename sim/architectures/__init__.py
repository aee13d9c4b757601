"""The dataflows. Each maps a workload onto engine components and returns a RunResult; the
architecture registry (:mod:`sim.arch.registry`) names the class of each."""

from __future__ import annotations

from sim.architectures.base import MODES, Architecture, RunResult

__all__ = ["MODES", "Architecture", "RunResult"]
