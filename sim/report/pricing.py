"""Pricing: action counts x energy-table entries = energy (pJ). No simulation here.

Each ``component.action`` maps to table entries by the component's class:
memories (dram, sram, regfile) price ``*_read`` with ``<class>_read`` and ``*_write`` with
``<class>_write``; the PE array prices ``mac`` as ``mul`` + ``add`` and ``add``/``mul``/
``compare`` with the same-named entry; a NoC prices ``hop`` with ``noc_hop``. An entry's
figure is scaled linearly from its ``bits`` to the action's width.

Neuromorphic cores: ``synapse_memory`` and ``neuron_memory`` are memory classes; a core's
``fire`` is ``spike_out``; a NoC's ``packet`` is ``noc_packet`` and its per-direction flit
hops ``flit_hop_ew`` / ``flit_hop_ns`` are ``noc_hop_ew`` / ``noc_hop_ns``. A table may
price one action of a class apart from the class rule with an entry ``<class>_<action>``
(e.g. ``neuron_memory_state_read``), for hardware whose published figures are per event.
"""

from __future__ import annotations

from sim.arch.energy import EnergyTable
from sim.errors import SpecError

MEMORY_CLASSES = ("dram", "sram", "regfile", "synapse_memory", "neuron_memory")
_PE_ACTIONS = {"mac": ("mul", "add"), "add": ("add",), "mul": ("mul",), "compare": ("compare",)}
_NOC_ACTIONS = {"packet": "noc_packet", "flit_hop_ew": "noc_hop_ew", "flit_hop_ns": "noc_hop_ns"}


def entry_names(cls: str, action: str) -> tuple[str, ...]:
    """The energy-table entries one action of a component of class ``cls`` costs."""
    if cls in MEMORY_CLASSES:
        if action.endswith("_read"):
            return (f"{cls}_read",)
        if action.endswith("_write"):
            return (f"{cls}_write",)
    elif cls in ("pe_array", "core") and action in _PE_ACTIONS:
        return _PE_ACTIONS[action]
    elif cls == "noc" and action in ("hop", "flit_hop"):
        return ("noc_hop",)
    elif cls == "noc" and action in _NOC_ACTIONS:
        return (_NOC_ACTIONS[action],)
    elif cls == "interconnect" and action.endswith(("_transfer", "hop")):
        return ("interconnect_transfer",)  # spatial_dataflow: one word moved one hop
    elif cls == "core" and action == "fire":
        return ("spike_out",)
    elif cls == "core" and action.endswith(("_read", "_write")):
        return (f"sram_{action.rsplit('_', 1)[1]}",)
    raise SpecError(None, f"{cls}.{action}", "no pricing rule for this action")


def action_energy_pj(table: EnergyTable, cls: str, action: str, bits: int,
                     capacity_bytes: int | None) -> float:
    """pJ of one ``action`` of ``bits`` bits on a component of class ``cls``."""
    total = 0.0
    specific = f"{cls}_{action}"
    for name in (specific,) if specific in table.entries else entry_names(cls, action):
        entry = table.entries.get(name)
        if entry is None:
            raise SpecError(table.path, f"entries.{name}",
                            f"missing: needed to price {cls}.{action} (energy table {table.name!r})")
        total += entry.energy_for(bits, capacity_bytes)
    return total


def price(counts: dict[str, int], bits: dict[str, int], components: dict[str, dict],
          table: EnergyTable) -> dict[str, float]:
    """Energy (pJ) per ``component.action``: count x energy of one action.

    ``components`` maps a component name to ``{"class": ..., "capacity_bytes": ...}``.
    """
    out = {}
    for key, n in counts.items():
        comp, action = key.split(".", 1)
        spec = components[comp]
        out[key] = n * action_energy_pj(table, spec["class"], action, bits[key], spec.get("capacity_bytes"))
    return out
