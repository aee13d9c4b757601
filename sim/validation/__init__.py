"""Compare: the simulator's counted events against the closed forms
(:mod:`~sim.validation.compare`), and the paper's v1 averages against counted truth
(:mod:`~sim.validation.paper`)."""
