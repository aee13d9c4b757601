"""Mapping policies shared by the simulator and the closed forms: how an architecture places a
workload's layers on its hardware (residency, partition, placement, folds). numpy-only:
nothing here imports simpy, numba, the engine, the kernels or the architectures, so a closed
form can take a policy as an input instead of restating it."""
