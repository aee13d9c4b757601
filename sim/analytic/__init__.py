"""Closed-form energy models. Nothing here imports the engine, the architectures, the
kernels or the workload (a test checks it).

- :mod:`sim.analytic.paper_v1`: the paper's v1 model (the architectures whose registry row
  says ``paper_v1``), per synapse, with network-wide averages.
- Per-architecture closed forms (the module each registry row names), which predict every
  count of a replay from layer geometry, T, the arch spec and per-layer statistics
  (:mod:`sim.analytic.layer_stats`). Each follows the
  :class:`sim.analytic.closed_form.ClosedForm` protocol: ``predict(...) -> Prediction`` and
  ``ideal_overrides(...)``.
"""
