"""Hardware described in data: energy tables (:mod:`sim.arch.energy`) and arch specs,
loaded from ``arch_specs/`` and validated (every violation is a :class:`sim.errors.SpecError`)."""
