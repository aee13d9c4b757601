"""Studies made of many replays or closed-form evaluations: parameter sweeps on Dask
(:mod:`~sim.studies.sweep`) and break-even searches (:mod:`~sim.studies.breakeven`)."""
