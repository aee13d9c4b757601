"""Component classes: the one table of what a hardware component of each class is.

A row gives a class its spec fields (all required), the level its traffic counts in for the
report's canonical totals (``dram``, ``sram`` for every on-chip memory, ``noc``, or none),
and its pricing rule: which energy-table entries one action costs. Adding a component class
is adding a row here (docs/extending.md); the spec loader, pricing and totals read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.arch.fields import NONNEG, POS, Kind


@dataclass(frozen=True)
class ComponentClass:
    """One class of hardware component.

    ``fields``: its spec fields and their kinds. ``level``: where its read/write bits count
    in the canonical totals (``dram`` / ``sram``), ``noc`` for a mesh (packets and flit hops),
    None for compute. ``memory``: every ``*_read`` / ``*_write`` action costs the entry
    ``<class>_read`` / ``<class>_write``. ``actions``: other actions and the entries each
    costs (their sum), e.g. a MAC is a multiply plus an add. ``suffix_actions``: an action
    ending in one of these suffixes costs the given entries (interconnect transfers)."""

    name: str
    fields: dict[str, Kind]
    level: str | None = None
    memory: bool = False
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    suffix_actions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def entries(self, action: str) -> tuple[str, ...] | None:
        """The energy-table entries one ``action`` costs, or None if no rule prices it."""
        if self.memory and action.endswith(("_read", "_write")):
            return (f"{self.name}_{action.rsplit('_', 1)[1]}",)
        if action in self.actions:
            return self.actions[action]
        for suffix, names in self.suffix_actions.items():
            if action.endswith(suffix):
                return names
        return None


_PE_OPS = {"mac": ("mul", "add"), "add": ("add",), "compare": ("compare",)}

COMPONENT_CLASSES: dict[str, ComponentClass] = {c.name: c for c in (
    ComponentClass("dram", {"width_bits": POS, "bandwidth_bits_per_cycle": POS, "latency_cycles": NONNEG},
                   level="dram", memory=True),
    ComponentClass("sram", {"capacity_bytes": POS, "width_bits": POS, "banks": POS, "ports": POS,
                            "latency_cycles": NONNEG}, level="sram", memory=True),
    ComponentClass("regfile", {"capacity_bytes": POS, "width_bits": POS}, level="sram", memory=True),
    ComponentClass("pe_array", {"rows": POS, "cols": POS, "ops_per_cycle": POS}, actions=_PE_OPS),
    ComponentClass("noc", {"width": POS, "height": POS, "flit_bits": POS, "link_flits_per_cycle": POS,
                           "router_latency_cycles": NONNEG, "barrier_cycles": NONNEG}, level="noc",
                   actions={"packet": ("noc_packet",), "flit_hop_ew": ("noc_hop_ew",),
                            "flit_hop_ns": ("noc_hop_ns",)}),
    # a neuromorphic core's compute; a core's ``fire`` is one spike sent
    ComponentClass("core", {"synop_cycles": POS, "neuron_update_cycles": POS},
                   actions={**_PE_OPS, "fire": ("spike_out",)}),
    ComponentClass("synapse_memory", {"capacity_bytes": POS, "width_bits": POS}, level="sram", memory=True),
    ComponentClass("neuron_memory", {"capacity_bytes": POS, "width_bits": POS}, level="sram", memory=True),
    # spatial_dataflow's operand network: one word moved one hop
    ComponentClass("interconnect", {"width_bits": POS, "words_per_cycle": POS, "latency_cycles": NONNEG},
                   suffix_actions={"_transfer": ("interconnect_transfer",), "hop": ("interconnect_transfer",)}),
)}

#: Classes whose every read and write is a memory access.
MEMORY_CLASSES = tuple(n for n, c in COMPONENT_CLASSES.items() if c.memory)
