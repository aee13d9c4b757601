"""Closed-form energy models. :mod:`sim.analytic.paper_v1` is the paper's v1 model
(memory_hierarchy and spatial_dataflow); per-architecture closed forms come later.
Nothing here imports the engine or the architectures."""
