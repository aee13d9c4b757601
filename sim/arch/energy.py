"""Energy tables: energy per action (pJ), each figure with its cited source.

An energy table is a YAML file under ``arch_specs/energy/`` (format ``energy-table/1``,
described in ``docs/formulas.md``). Code never carries energy constants: the simulator
prices its action counts by entry name, and the closed-form models read their constants
from ``paper_model``. Every violation of the format raises :class:`sim.errors.SpecError`
naming the file and the dotted field (``entries.add.energy_pj``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from sim.arch.checks import (
    _check_keys,
    _mapping,
    _name,
    _note,
    _number,
    _source,
    _string,
    resolve_bundled,
    strict_yaml_load,
)
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
    if not path.is_file():
        hint = ""
        if path.parent == ENERGY_DIR:
            hint = f" (shipped tables: {', '.join(available_energy_tables()) or 'none'})"
        raise SpecError(path, None, f"energy table not found{hint}")
    try:
        doc = strict_yaml_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_energy_table(doc, path)


def parse_energy_table(doc: Any, path: str | Path | None = None) -> EnergyTable:
    """Validate an already-parsed YAML document; ``path`` is only used in error messages."""
    file = None if path is None else str(path)
    _check_keys(doc, _TOP_REQUIRED, _TOP_OPTIONAL, "", file)
    if doc["schema"] != SCHEMA:
        raise SpecError(file, "schema", f"expected {SCHEMA!r}, got {doc['schema']!r}")
    name = _string(doc["name"], "name", file)
    description = _string(doc["description"], "description", file)
    tech = _number(doc["technology_nm"], "technology_nm", file)
    if tech <= 0:
        raise SpecError(file, "technology_nm", f"must be > 0 nm, got {tech}")

    sources = _mapping(doc["sources"], "sources", file, non_empty=True)
    for key, text in sources.items():
        _name(key, "sources", file)
        _string(text, f"sources.{key}", file)

    entries: dict[str, EnergyEntry] = {}
    for key, raw in _mapping(doc["entries"], "entries", file, non_empty=True).items():
        where = f"entries.{_name(key, 'entries', file)}"
        _check_keys(raw, _ENTRY_REQUIRED, _ENTRY_OPTIONAL, where, file)
        energy = _number(raw["energy_pj"], f"{where}.energy_pj", file)
        if energy < 0:
            raise SpecError(file, f"{where}.energy_pj", f"energy must be >= 0 pJ, got {energy}")
        bits = raw["bits"]
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise SpecError(file, f"{where}.bits", f"expected a positive integer, got {bits!r}")
        entries[key] = EnergyEntry(energy, bits, _source(raw["source"], sources, where, file),
                                   _note(raw, where, file), _by_capacity(raw, where, file))

    constants: dict[str, ModelConstant] = {}
    for key, raw in _mapping(doc.get("paper_model", {}), "paper_model", file).items():
        where = f"paper_model.{_name(key, 'paper_model', file)}"
        _check_keys(raw, _CONST_REQUIRED, _CONST_OPTIONAL, where, file)
        constants[key] = ModelConstant(_number(raw["value"], f"{where}.value", file),
                                       _source(raw["source"], sources, where, file),
                                       _note(raw, where, file))
    return EnergyTable(name, description, tech, dict(sources), entries, constants, file)


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
        cap = item["capacity_bytes"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise SpecError(file, f"{where}[{i}].capacity_bytes", f"expected a positive integer, got {cap!r}")
        energy = _number(item["energy_pj"], f"{where}[{i}].energy_pj", file)
        if energy < 0:
            raise SpecError(file, f"{where}[{i}].energy_pj", f"energy must be >= 0 pJ, got {energy}")
        if out and cap <= out[-1][0]:
            raise SpecError(file, f"{where}[{i}].capacity_bytes", "sizes must be strictly ascending")
        out.append((cap, energy))
    return tuple(out)
