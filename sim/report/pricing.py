"""Pricing: action counts x energy-table entries = energy (pJ). No simulation here.

Each ``component.action`` costs the energy-table entries that its component class's pricing
rule names (:mod:`sim.arch.components`): a memory's ``*_read`` / ``*_write`` costs
``<class>_read`` / ``<class>_write``; a PE array's ``mac`` costs ``mul`` + ``add``; a NoC's
``packet`` costs ``noc_packet``; and so on. An entry's figure is scaled linearly from its
``bits`` to the action's width. A table may price one action of a class apart from the class
rule with an entry ``<class>_<action>`` (e.g. ``neuron_memory_state_read``), for hardware
whose published figures are per event. A table holds no other entries
(:func:`sim.arch.energy.known_entries`), and its figures, widths and the counts are bounded
(docs/arch-spec.md, "Limits"), so every energy here is a finite float.
"""

from __future__ import annotations

from sim.arch.components import COMPONENT_CLASSES, MEMORY_CLASSES
from sim.arch.energy import EnergyTable
from sim.errors import SpecError

__all__ = ["MEMORY_CLASSES", "action_energy_pj", "entry_names", "missing_entries", "price"]


def entry_names(cls: str, action: str) -> tuple[str, ...]:
    """The energy-table entries one action of a component of class ``cls`` costs."""
    names = COMPONENT_CLASSES[cls].entries(action) if cls in COMPONENT_CLASSES else None
    if names is None:
        raise SpecError(None, f"{cls}.{action}", "no pricing rule for this action")
    return names


def _needed(table: EnergyTable, cls: str, action: str) -> tuple[str, ...]:
    specific = COMPONENT_CLASSES[cls].override_entry(action) if cls in COMPONENT_CLASSES else None
    return (specific,) if specific in table.entries else entry_names(cls, action)


def action_energy_pj(table: EnergyTable, cls: str, action: str, bits: int,
                     capacity_bytes: int | None) -> float:
    """pJ of one ``action`` of ``bits`` bits on a component of class ``cls``."""
    total = 0.0
    for name in _needed(table, cls, action):
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


def missing_entries(counts, components: dict[str, dict], table: EnergyTable) -> dict[str, list[str]]:
    """``{entry: [component.action, ...]}`` of the entries ``table`` lacks to price ``counts``
    (any iterable of ``component.action`` keys); empty when it can price them all."""
    out: dict[str, list[str]] = {}
    for key in counts:
        comp, action = key.split(".", 1)
        cls = components[comp]["class"]
        for name in _needed(table, cls, action):
            if name not in table.entries:
                out.setdefault(name, []).append(key)
    return out
