"""Closed-form energy models. Nothing here imports the engine, the architectures, the
kernels or the workload (a test checks it).

- :mod:`sim.analytic.paper_v1`: the paper's v1 model (memory_hierarchy, spatial_dataflow),
  per synapse, with network-wide averages.
- Per-architecture closed forms, which predict every count of a replay from layer geometry,
  T, the arch spec and per-layer statistics (:mod:`sim.analytic.layer_stats`):
  :mod:`sim.analytic.memory_hierarchy`, :mod:`sim.analytic.spatial_dataflow`,
  :mod:`sim.analytic.neuromorphic`. Each exposes ``predict(...) -> Prediction``
  (:mod:`sim.analytic.closed_form`).
"""

from __future__ import annotations

import importlib

#: Architecture name -> module holding its closed form.
CLOSED_FORMS = {"memory_hierarchy": "sim.analytic.memory_hierarchy",
                "spatial_dataflow": "sim.analytic.spatial_dataflow",
                "neuromorphic": "sim.analytic.neuromorphic"}


def closed_form_of(architecture: str):
    """The module with ``predict`` for an architecture; KeyError if none is written."""
    return importlib.import_module(CLOSED_FORMS[architecture])
