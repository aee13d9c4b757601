"""Figures (matplotlib, headless Agg backend, PNG): energy breakdowns
(:mod:`~sim.plots.energy`), NoC load (:mod:`~sim.plots.noc`), validation and break-even
(:mod:`~sim.plots.validation`), sweeps (:mod:`~sim.plots.sweep`)."""
