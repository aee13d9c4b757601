"""numba-jitted counting loops. Each has a plain-Python twin in tests/test_kernels.py."""

from sim.kernels.events import (
    ann_input_counts,
    conv_positions_fanout,
    input_fanout,
    popcount_rows,
    spike_event_counts,
)
from sim.kernels.noc import destination_patterns, element_routes, hop_histogram, route_events, spike_indices  # noqa: F401
from sim.kernels.pipeline import tile_pipeline  # noqa: F401  (its reference: the simpy TilePipeline)

__all__ = ["ann_input_counts", "conv_positions_fanout", "input_fanout", "popcount_rows",
           "spike_event_counts"]
