"""The dataflows. Each maps a workload onto engine components and returns a RunResult."""

from __future__ import annotations

from sim.architectures.base import MODES, RunResult


def architecture_class(name: str):
    """The class that replays an arch spec's ``architecture``."""
    if name == "memory_hierarchy":
        from sim.architectures.memory_hierarchy import MemoryHierarchy
        return MemoryHierarchy
    if name == "neuromorphic":
        from sim.architectures.neuromorphic import Neuromorphic
        return Neuromorphic
    if name == "spatial_dataflow":
        from sim.architectures.spatial_dataflow import SpatialDataflow
        return SpatialDataflow
    raise KeyError(name)


#: Architectures with a bundled spec, in the order `--arch all` runs them.
ALL_ARCHITECTURES = ("memory_hierarchy", "neuromorphic", "spatial_dataflow")

__all__ = ["ALL_ARCHITECTURES", "MODES", "RunResult", "architecture_class"]
