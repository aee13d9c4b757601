"""The report's canonical totals: names shared by every architecture, and the hardware totals
derived from ``component.action`` counts. Used by the reports and by the closed forms, so a
predicted total and a counted one are the same function of the counts.
"""

from __future__ import annotations

from sim.arch.components import COMPONENT_CLASSES

#: Totals that belong to the workload (the trace), identical on every architecture.
#: ``adds`` are residual adds and average-pool sums (fixed weights: no weight is read),
#: ``compares`` max-pool compares, counted apart from ``macs`` and ``synaptic_ops``.
WORKLOAD_TOTALS = ("macs", "synaptic_ops", "adds", "compares", "spikes_in", "spikes_out", "neuron_updates")
#: Totals that belong to the hardware: bits per memory level and NoC traffic.
HARDWARE_TOTALS = ("dram_read_bits", "dram_write_bits", "sram_read_bits", "sram_write_bits",
                   "noc_packets", "noc_flit_hops")
CANONICAL_TOTALS = (*WORKLOAD_TOTALS, *HARDWARE_TOTALS)


def hardware_totals(counts: dict, bits: dict, classes: dict[str, str]) -> dict:
    """Bits moved per memory level and NoC traffic, from ``component.action`` counts.

    The component class's ``level`` (:mod:`sim.arch.components`) says where its bits count:
    ``sram_*_bits`` cover every on-chip memory (buffers, register files, core memories);
    ``noc_flit_hops`` sums ``flit_hop_ew`` and ``flit_hop_ns``."""
    t = dict.fromkeys(HARDWARE_TOTALS, 0)
    for key, n in counts.items():
        comp, action = key.split(".", 1)
        level = COMPONENT_CLASSES[classes[comp]].level
        direction = "read" if action.endswith("_read") else "write" if action.endswith("_write") else None
        if level in ("dram", "sram") and direction:
            t[f"{level}_{direction}_bits"] += n * bits[key]
        elif level == "noc" and action == "packet":
            t["noc_packets"] += n
        elif level == "noc" and action.startswith("flit_hop"):
            t["noc_flit_hops"] += n
    return t
