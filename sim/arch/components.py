"""Component classes: the one table of what a hardware component of each class is.

A row gives a class its spec fields (all required), the level its traffic counts in for the
report's canonical totals (``dram``, ``sram`` for every on-chip memory, ``noc``, or none),
the actions the simulators count on a component of the class, and its pricing rule: which
energy-table entries one action costs. Adding a component class is adding a row here
(docs/extending.md); the spec loader, the energy-table loader, pricing and totals read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.arch.fields import (BANDWIDTH, BARRIER, CAPACITY, CYCLES, MESH_SIDE, POS, POS_CYCLES, WIDTH, Kind)


@dataclass(frozen=True)
class ComponentClass:
    """One class of hardware component.

    ``fields``: its spec fields and their kinds. ``level``: where its read/write bits count
    in the canonical totals (``dram`` / ``sram``), ``noc`` for a mesh (packets and flit hops),
    None for compute. ``performs``: every action a simulator counts on a component of this
    class (``tests/test_energy_table.py`` replays the bundled traces to check it); an
    energy table may price each one apart with an entry ``<class>_<action>``. ``memory``:
    every ``*_read`` / ``*_write`` action costs the entry ``<class>_read`` /
    ``<class>_write``. ``actions``: other actions and the entries each costs (their sum),
    e.g. a MAC is a multiply plus an add. ``suffix_actions``: an action ending in one of
    these suffixes costs the given entries (interconnect transfers)."""

    name: str
    fields: dict[str, Kind]
    performs: tuple[str, ...]
    level: str | None = None
    memory: bool = False
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    suffix_actions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self):
        for action in self.performs:  # a class that performs an action must be able to price it
            if self.entries(action) is None:
                raise ValueError(f"component class {self.name}: no pricing rule for {action!r}")

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

    def rule_entries(self) -> tuple[str, ...]:
        """Every entry the class rule can name (whatever the action)."""
        names = [f"{self.name}_read", f"{self.name}_write"] if self.memory else []
        for group in (*self.actions.values(), *self.suffix_actions.values()):
            names += group
        return tuple(dict.fromkeys(names))

    def override_entry(self, action: str) -> str:
        """The entry that prices ``action`` apart from the class rule, when a table has it."""
        return f"{self.name}_{action}"


#: A LIF neuron's leak multiplies its membrane by the leak factor once per step: a multiply
#: (a table prices it apart, e.g. as a shift, with ``<class>_leak``).
_PE_OPS = {"mac": ("mul", "add"), "add": ("add",), "compare": ("compare",), "leak": ("mul",)}

COMPONENT_CLASSES: dict[str, ComponentClass] = {c.name: c for c in (
    ComponentClass("dram", {"width_bits": WIDTH, "bandwidth_bits_per_cycle": BANDWIDTH, "latency_cycles": CYCLES},
                   level="dram", memory=True,
                   performs=("weight_read", "input_read", "output_write", "spill_read", "spill_write",
                             "membrane_read", "membrane_write", "boundary_read", "boundary_write",
                             "spike_read", "spike_write", "activation_read", "activation_write", "current_read",
                             "current_write")),
    ComponentClass("sram", {"capacity_bytes": CAPACITY, "width_bits": WIDTH, "banks": POS, "ports": POS,
                            "latency_cycles": CYCLES}, level="sram", memory=True,
                   performs=("weight_read", "weight_write", "input_read", "input_write", "output_write",
                             "spike_read", "spike_write", "membrane_read", "membrane_write",
                             "current_read", "current_write", "psum_read")),
    ComponentClass("regfile", {"capacity_bytes": CAPACITY, "width_bits": WIDTH}, level="sram", memory=True,
                   performs=("weight_read", "input_read", "psum_read", "psum_write", "membrane_read",
                             "membrane_write")),
    ComponentClass("pe_array", {"rows": MESH_SIDE, "cols": MESH_SIDE, "ops_per_cycle": POS}, actions=_PE_OPS,
                   performs=("mac", "add", "compare", "leak")),
    ComponentClass("noc", {"width": MESH_SIDE, "height": MESH_SIDE, "flit_bits": WIDTH, "link_flits_per_cycle": POS,
                           "router_latency_cycles": CYCLES,
                           # cycles, or a table [[cores in use, cycles], ...] (largest count <= cores)
                           "barrier_cycles": BARRIER}, level="noc",
                   actions={"packet": ("noc_packet",), "flit_hop_ew": ("noc_hop_ew",),
                            "flit_hop_ns": ("noc_hop_ns",)},
                   performs=("packet", "flit_hop_ew", "flit_hop_ns")),
    # a neuromorphic core's compute; a core's ``fire`` is one spike sent. Its times are in ticks
    # of 1/ticks_per_cycle clock cycle (a step still ends on a clock edge): per synaptic op by
    # synapse kind (conv: shared kernels, also pools' and adds' operand ops; dense; sparse),
    # per arriving packet, per neuron update (docs/architectures/neuromorphic.md, "Time")
    ComponentClass("core", {"ticks_per_cycle": POS_CYCLES, "conv_synop_ticks": POS_CYCLES,
                            "dense_synop_ticks": POS_CYCLES, "sparse_synop_ticks": POS_CYCLES,
                            "packet_in_ticks": CYCLES, "neuron_update_ticks": POS_CYCLES},
                   actions={**_PE_OPS, "fire": ("spike_out",)}, performs=("mac", "add", "compare", "leak", "fire")),
    ComponentClass("synapse_memory", {"capacity_bytes": CAPACITY, "width_bits": WIDTH}, level="sram", memory=True,
                   # a synaptic event's read by synapse kind: conv (shared kernels), dense
                   # (a linear layer's matrix), sparse (every synapse stored explicitly)
                   performs=("weight_read", "dense_weight_read", "sparse_weight_read", "weight_write")),
    ComponentClass("neuron_memory", {"capacity_bytes": CAPACITY, "width_bits": WIDTH}, level="sram", memory=True,
                   performs=("membrane_read", "membrane_write", "current_read", "current_write",
                             "psum_read", "psum_write", "state_read", "state_write")),
    # spatial_dataflow's operand network: one word moved one hop
    ComponentClass("interconnect", {"width_bits": WIDTH, "words_per_cycle": POS, "latency_cycles": CYCLES},
                   suffix_actions={"_transfer": ("interconnect_transfer",), "hop": ("interconnect_transfer",)},
                   performs=("act_transfer", "spike_transfer", "current_transfer", "hop")),
)}

#: Classes whose every read and write is a memory access.
MEMORY_CLASSES = tuple(n for n, c in COMPONENT_CLASSES.items() if c.memory)


def priced_entries() -> dict[str, tuple[str, ...]]:
    """Every energy-table entry some pricing rule can ask for, with the ``class.action``s
    that ask for it: each class rule's entries, and ``<class>_<action>`` for every action
    the class performs (docs/arch-spec.md, "Pricing")."""
    out: dict[str, list[str]] = {}
    for c in COMPONENT_CLASSES.values():
        for name in c.rule_entries():
            out.setdefault(name, [])
        for action in c.performs:
            for name in (*c.entries(action), c.override_entry(action)):
                asker = f"{c.name}.{action}"
                if asker not in out.setdefault(name, []):
                    out[name].append(asker)
    return {name: tuple(askers) for name, askers in out.items()}
