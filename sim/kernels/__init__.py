"""numba-jitted counting loops. Each has a plain-Python twin in tests/test_kernels.py."""

from sim.kernels.events import (
    ann_input_counts,
    conv_positions_fanout,
    input_fanout,
    popcount_rows,
    spike_event_counts,
)

__all__ = ["ann_input_counts", "conv_positions_fanout", "input_fanout", "popcount_rows",
           "spike_event_counts"]
