"""Energy tables: energy per action (pJ), each figure with its cited source.

An energy table is a YAML file under ``arch_specs/energy/`` (format ``energy-table/1``,
described in ``docs/arch-spec.md``). Code never carries energy constants: the simulator
prices its action counts by entry name, and the closed-form models read their constants
from ``paper_model``. Every violation of the format raises :class:`sim.errors.SpecError`
naming the file and the dotted field (``entries.add.energy_pj``), among them an entry that
nothing asks for (:func:`known_entries`): a misspelt entry would otherwise be ignored and
its action priced by the class rule without a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sim.arch.checks import (
    _check_keys,
    _integer,
    _mapping,
    _name,
    _note,
    _number,
    _source,
    _string,
    read_yaml_file,
    resolve_bundled,
)
from sim.arch.components import COMPONENT_CLASSES, priced_entries
from sim.arch.fields import MAX_CAPACITY_BYTES, MAX_WIDTH_BITS, did_you_mean, show
from sim.errors import SpecError

SCHEMA = "energy-table/1"

#: The table of the paper's v1 constants (45 nm): the one the v1 closed form reads, and every
#: command's default.
PAPER_V1_TABLE = "paper_v1_45nm"
ENERGY_DIR = Path(__file__).resolve().parents[2] / "arch_specs" / "energy"

_TOP_REQUIRED = ("schema", "name", "description", "technology_nm", "sources", "entries")
_TOP_OPTIONAL = ("paper_model",)
_ENTRY_REQUIRED = ("energy_pj", "bits", "source")
_ENTRY_OPTIONAL = ("note", "by_capacity")
_CONST_REQUIRED = ("value", "source")
_CONST_OPTIONAL = ("note",)

#: Largest energy of one action (pJ): 1 J, far above any published figure; keeps every
#: count x energy finite.
MAX_ENERGY_PJ = 1e12
#: Largest feature size (nm): the 10 um process of 1971.
MAX_TECHNOLOGY_NM = 10_000
#: The workload averages of the paper's v1 model a table may give (``paper_model``), read by
#: sim.analytic.paper_v1: ANN density rho, weight reuse R, fan-in N, and c_syn (pJ).
PAPER_MODEL_CONSTANTS = ("rho", "R", "N", "c_syn_pj")
#: Largest magnitude of a ``paper_model`` constant.
MAX_MODEL_VALUE = 1e12

#: Entries a closed form reads by name besides those of the pricing rules: the paper's v1
#: model's e_mem and e_DRAM (sim/analytic/paper_v1.py; its e_add and e_mul are ``add``/``mul``).
CLOSED_FORM_ENTRIES = {"onchip_access": ("the paper's v1 closed form (e_mem)",),
                       "dram_access": ("the paper's v1 closed form (e_DRAM)",)}


def known_entries() -> dict[str, tuple[str, ...]]:
    """Every entry name a table may hold, with what asks for it: the pricing rules'
    entries and per-action overrides (:func:`sim.arch.components.priced_entries`), and the
    closed forms' :data:`CLOSED_FORM_ENTRIES`."""
    return {**priced_entries(), **CLOSED_FORM_ENTRIES}


def _capacity_priced(name: str, askers: tuple[str, ...]) -> bool:
    """Whether every component class that asks for entry ``name`` has a capacity, so that a
    ``by_capacity`` list can apply."""
    classes = {a.split(".", 1)[0] for a in askers}
    return bool(classes) and all(c in COMPONENT_CLASSES and "capacity_bytes" in COMPONENT_CLASSES[c].fields
                                 for c in classes)


@dataclass(frozen=True)
class EnergyEntry:
    """Energy of one action: ``energy_pj`` pJ for an operand of ``bits`` bits."""

    energy_pj: float
    bits: int
    source: str
    note: str | None = None
    by_capacity: tuple = ()  # ((capacity_bytes, energy_pj), ...) ascending, for memories

    def energy_for(self, bits: int, capacity_bytes: int | None = None) -> float:
        """pJ of one action on ``bits`` bits, scaled linearly from the entry's width.

        With ``by_capacity``, a memory of ``capacity_bytes`` takes the figure of the
        smallest listed size that holds it (the largest listed size if none does)."""
        pj = self.energy_pj
        if self.by_capacity and capacity_bytes is not None:
            fits = [e for c, e in self.by_capacity if c >= capacity_bytes]
            pj = fits[0] if fits else self.by_capacity[-1][1]
        return pj * bits / self.bits


@dataclass(frozen=True)
class ModelConstant:
    """A workload average or fitted figure used by a closed-form model (unit in its note)."""

    value: float
    source: str
    note: str | None = None


@dataclass(frozen=True)
class EnergyTable:
    """A validated energy table. ``entries`` are priced actions; ``paper_model`` holds the
    workload averages a closed form needs (e.g. the paper's rho, R, N, c_syn)."""

    name: str
    description: str
    technology_nm: float
    sources: Mapping[str, str]
    entries: Mapping[str, EnergyEntry]
    paper_model: Mapping[str, ModelConstant]
    path: str | None = None

    def energy_pj(self, action: str) -> float:
        """Energy of one ``action`` in pJ; SpecError if the table has no such entry."""
        try:
            return self.entries[action].energy_pj
        except KeyError:
            raise SpecError(self.path, f"entries.{action}",
                            f"no such entry in energy table {self.name!r}") from None


def resolve_energy_table(name_or_path: str | Path) -> Path:
    """A bare name (``paper_v1_45nm``) means ``arch_specs/energy/<name>.yaml``; anything
    with a directory part or a ``.yaml``/``.yml`` suffix is a path."""
    return resolve_bundled(name_or_path, ENERGY_DIR)


def available_energy_tables() -> list[str]:
    """Bare names of the energy tables shipped in ``arch_specs/energy/``."""
    return sorted(p.stem for p in ENERGY_DIR.glob("*.yaml"))


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """Load and validate an energy table by bare name or path; SpecError on any violation."""
    path = resolve_energy_table(name_or_path)
    doc = read_yaml_file(path, "energy table", available_energy_tables(), ENERGY_DIR)
    return parse_energy_table(doc, path)


def parse_energy_table(doc: Any, path: str | Path | None = None) -> EnergyTable:
    """Validate an already-parsed YAML document; ``path`` is only used in error messages."""
    file = None if path is None else str(path)
    _check_keys(doc, _TOP_REQUIRED, _TOP_OPTIONAL, "", file)
    if doc["schema"] != SCHEMA:
        raise SpecError(file, "schema", f"expected {SCHEMA!r}, got {show(doc['schema'])}")
    name = _string(doc["name"], "name", file)
    description = _string(doc["description"], "description", file)
    tech = _number(doc["technology_nm"], "technology_nm", file, maximum=MAX_TECHNOLOGY_NM, unit=" nm")
    if tech <= 0:
        raise SpecError(file, "technology_nm", f"must be > 0 nm, got {tech}")

    sources = _mapping(doc["sources"], "sources", file, non_empty=True)
    for key, text in sources.items():
        _name(key, "sources", file)
        _string(text, f"sources.{key}", file)

    known = known_entries()
    entries: dict[str, EnergyEntry] = {}
    for key, raw in _mapping(doc["entries"], "entries", file, non_empty=True).items():
        where = f"entries.{_name(key, 'entries', file)}"
        if key not in known:
            raise SpecError(file, where, _unknown_entry(key, known))
        _check_keys(raw, _ENTRY_REQUIRED, _ENTRY_OPTIONAL, where, file)
        energy = _energy(raw["energy_pj"], f"{where}.energy_pj", file)
        bits = _integer(raw["bits"], f"{where}.bits", file, MAX_WIDTH_BITS)
        if "by_capacity" in raw and not _capacity_priced(key, known[key]):
            raise SpecError(file, f"{where}.by_capacity",
                            f"only for entries that price memories with a capacity; {key} prices "
                            f"{', '.join(known[key])}")
        entries[key] = EnergyEntry(energy, bits, _source(raw["source"], sources, where, file),
                                   _note(raw, where, file), _by_capacity(raw, where, file))

    constants: dict[str, ModelConstant] = {}
    for key, raw in _mapping(doc.get("paper_model", {}), "paper_model", file).items():
        where = f"paper_model.{_name(key, 'paper_model', file)}"
        if key not in PAPER_MODEL_CONSTANTS:  # a misspelled constant must not fall back silently
            raise SpecError(file, where, f"unknown constant of the paper's model{did_you_mean(key, PAPER_MODEL_CONSTANTS)} "
                            f"(known: {', '.join(PAPER_MODEL_CONSTANTS)})")
        _check_keys(raw, _CONST_REQUIRED, _CONST_OPTIONAL, where, file)
        constants[key] = ModelConstant(_number(raw["value"], f"{where}.value", file, maximum=MAX_MODEL_VALUE),
                                       _source(raw["source"], sources, where, file),
                                       _note(raw, where, file))
    return EnergyTable(name, description, tech, dict(sources), entries, constants, file)


def _unknown_entry(key: str, known: Mapping[str, tuple[str, ...]]) -> str:
    """Why ``key`` is not an entry, with the nearest known one."""
    hint = did_you_mean(key, known)
    if not hint:
        rules = sorted({n for c in COMPONENT_CLASSES.values() for n in c.rule_entries()} | set(CLOSED_FORM_ENTRIES))
        hint = f" (entries: {', '.join(rules)}, or <class>_<action> for an action the class performs)"
    return f"unknown entry: no pricing rule or closed form asks for it{hint}"


def _energy(raw: Any, where: str, file) -> float:
    """pJ of one action: finite, in [0, MAX_ENERGY_PJ]."""
    energy = _number(raw, where, file, maximum=MAX_ENERGY_PJ, unit=" pJ")
    if energy < 0:
        raise SpecError(file, where, f"energy must be >= 0 pJ, got {energy}")
    return energy


def _by_capacity(raw: dict, where: str, file) -> tuple:
    """Optional per-size figures: a list of {capacity_bytes, energy_pj}, sizes ascending."""
    if "by_capacity" not in raw:
        return ()
    items = raw["by_capacity"]
    where = f"{where}.by_capacity"
    if not isinstance(items, list) or not items:
        raise SpecError(file, where, "expected a non-empty list of {capacity_bytes, energy_pj}")
    out = []
    for i, item in enumerate(items):
        _check_keys(item, ("capacity_bytes", "energy_pj"), (), f"{where}[{i}]", file)
        cap = _integer(item["capacity_bytes"], f"{where}[{i}].capacity_bytes", file, MAX_CAPACITY_BYTES)
        energy = _energy(item["energy_pj"], f"{where}[{i}].energy_pj", file)
        if out and cap <= out[-1][0]:
            raise SpecError(file, f"{where}[{i}].capacity_bytes", "sizes must be strictly ascending")
        out.append((cap, energy))
    return tuple(out)
