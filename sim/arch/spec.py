"""Arch specs: YAML hardware descriptions loaded into validated, typed objects.

Format ``arch-spec/1`` (docs/arch-spec.md): the architecture it drives, a clock, the bit
widths of the data types, named components of known classes, and mapping options. Unknown
keys (with the nearest known one), missing fields, sizes out of their documented range
(:mod:`sim.arch.fields`) and inconsistent widths raise :class:`sim.errors.SpecError` naming
the file and the dotted field. ``--set key.path=value`` overrides are applied to the document
before validation, so they are validated too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.arch.checks import (YAML_ERRORS, _check_keys, _mapping, _name, _string, read_yaml_file,
                             resolve_bundled, strict_yaml_load, yaml_error_text)
from sim.arch.components import COMPONENT_CLASSES
from sim.arch.fields import CLOCK_MHZ, MAX_WIDTH_BITS, WIDTH, Kind, did_you_mean, integer, show
from sim.arch.registry import ARCHITECTURES
from sim.errors import SpecError

SCHEMA = "arch-spec/1"
SPEC_DIR = Path(__file__).resolve().parents[2] / "arch_specs"

#: Bit widths of the data types (all required).
DATA_FIELDS = {"weight_bits": WIDTH, "membrane_bits": WIDTH, "psum_bits": WIDTH, "input_bits": WIDTH,
               "ann_activation_bits": integer(0, MAX_WIDTH_BITS)}
TOP_FIELDS = ("schema", "name", "architecture", "description", "clock_mhz", "data", "components", "mapping")


@dataclass(frozen=True)
class Component:
    """A named hardware component: its class and its validated fields."""

    name: str
    cls: str
    params: dict

    def __getattr__(self, key):  # spec.components["dram"].latency_cycles
        try:
            return self.__dict__["params"][key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def capacity_bytes(self) -> int | None:
        return self.params.get("capacity_bytes")


@dataclass(frozen=True)
class DataWidths:
    """Bits of each data type. ``ann_activation_bits = 0`` means the trace's Q_T twin width."""

    weight_bits: int
    membrane_bits: int
    psum_bits: int
    input_bits: int
    ann_activation_bits: int

    def ann_bits(self, trace_bits: int) -> int:
        """The ANN twin's activation width: ``ann_activation_bits``, or the trace's Q_T width
        (``trace_bits``, ⌈log2(T+1)⌉) when the spec says 0."""
        return self.ann_activation_bits or trace_bits


@dataclass(frozen=True)
class ArchSpec:
    name: str
    architecture: str
    description: str
    clock_mhz: float
    data: DataWidths
    components: dict[str, Component]
    mapping: dict
    path: str | None = None
    document: dict = field(default_factory=dict, repr=False)  # the validated YAML, for reports

    def __getitem__(self, name: str) -> Component:
        return self.components[name]

    def to_dict(self) -> dict:
        return copy.deepcopy(self.document)

    def with_overrides(self, overrides: list[str]) -> "ArchSpec":
        """This spec with ``key.path=value`` overrides applied to its validated document and
        validated again, without reading its file."""
        if not overrides:
            return self
        return parse_arch_spec(apply_overrides(self.document, overrides, self.path), self.path)


def resolve_arch_spec(name_or_path: str | Path) -> Path:
    """A bare name (``memory_hierarchy``) means ``arch_specs/<name>.yaml``; else a path."""
    return resolve_bundled(name_or_path, SPEC_DIR)


def available_arch_specs() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def parse_value(text: str) -> Any:
    """A ``--set`` value: a YAML scalar read as in the spec files, so ``010`` stays the text
    '010', which a number field refuses as ambiguous (YAML 1.1 would silently read octal 8);
    text that is not YAML stays a string."""
    if not text.strip():
        return text
    try:
        return strict_yaml_load(text)
    except yaml.YAMLError:
        return text
    except YAML_ERRORS as exc:
        raise SpecError(None, "--set", f"cannot read value: {yaml_error_text(exc)}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (['a', 'b', 'c'], value parsed by :func:`parse_value`)."""
    if "=" not in text:
        raise SpecError(None, "--set", f"expected key.path=value, got {show(text)}")
    key, value = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise SpecError(None, "--set", f"empty key in {show(text)}")
    return path, parse_value(value)


def apply_overrides(doc: Any, overrides: list[str], file: str | None) -> dict:
    """Set each ``key.path=value`` in a copy of ``doc``; the path must already exist."""
    try:
        doc = copy.deepcopy(doc)
    except RecursionError:
        raise SpecError(file, None, "not valid YAML: nested too deeply") from None
    for text in overrides:
        path, value = parse_override(text)
        node = doc
        for i, part in enumerate(path):
            if not isinstance(node, dict) or part not in node:
                hint = did_you_mean(part, [k for k in node if isinstance(k, str)]) if isinstance(node, dict) else ""
                raise SpecError(file, f"--set {'.'.join(path[:i + 1])}", f"no such field in the arch spec{hint}")
            if i < len(path) - 1:
                node = node[part]
        if isinstance(node[path[-1]], dict):
            raise SpecError(file, f"--set {'.'.join(path)}", "is a section; set one of its fields")
        node[path[-1]] = value
    return doc


def load_arch_spec(name_or_path: str | Path, overrides: list[str] | None = None) -> ArchSpec:
    """Load, override and validate an arch spec; SpecError on any violation."""
    path = resolve_arch_spec(name_or_path)
    doc = read_yaml_file(path, "arch spec", available_arch_specs(), SPEC_DIR)
    return parse_arch_spec(apply_overrides(doc, overrides or [], str(path)) if overrides else doc, path)


def parse_arch_spec(doc: Any, path: str | Path | None = None) -> ArchSpec:
    file = None if path is None else str(path)
    _check_keys(doc, TOP_FIELDS, (), "", file)
    if doc["schema"] != SCHEMA:
        raise SpecError(file, "schema", f"expected {SCHEMA!r}, got {show(doc['schema'])}")
    arch = doc["architecture"]
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise SpecError(file, "architecture", f"unknown architecture {show(arch)}"
                        f"{did_you_mean(arch, ARCHITECTURES) if isinstance(arch, str) else ''} "
                        f"(known: {', '.join(ARCHITECTURES)})")
    kind = ARCHITECTURES[arch]
    clock = CLOCK_MHZ.check(doc["clock_mhz"], "clock_mhz", file)
    data = DataWidths(**_fields(doc["data"], DATA_FIELDS, "data", file))

    components: dict[str, Component] = {}
    raw_components = _mapping(doc["components"], "components", file, non_empty=True)
    for name, raw in raw_components.items():
        where = f"components.{_name(name, 'components', file)}"
        if name not in kind.components:
            raise SpecError(file, where, f"unknown key{did_you_mean(name, kind.components)} "
                            f"(architecture {arch} uses: {', '.join(kind.components)})")
        if not isinstance(raw, dict):
            raise SpecError(file, where, f"expected a mapping, got {type(raw).__name__}")
        if "class" not in raw:
            raise SpecError(file, f"{where}.class", "missing required field")
        cls = raw["class"]
        if not isinstance(cls, str) or cls not in COMPONENT_CLASSES:
            raise SpecError(file, f"{where}.class", f"unknown class {show(cls)}"
                            f"{did_you_mean(cls, COMPONENT_CLASSES) if isinstance(cls, str) else ''} "
                            f"(known: {', '.join(COMPONENT_CLASSES)})")
        if cls != kind.components[name]:
            raise SpecError(file, f"{where}.class", f"must be {kind.components[name]!r} for architecture {arch}")
        params = _fields({k: v for k, v in raw.items() if k != "class"}, COMPONENT_CLASSES[cls].fields, where, file)
        components[name] = Component(name, cls, params)
    for name, cls in kind.components.items():
        if name not in components and name not in kind.optional_components:
            raise SpecError(file, f"components.{name}", f"missing: architecture {arch} needs a {cls} named {name!r}")
    mapping = _fields(doc["mapping"], kind.mapping, "mapping", file)
    _check_widths(data, components, file)
    return ArchSpec(_string(doc["name"], "name", file), arch, _string(doc["description"], "description", file),
                    clock, data, components, mapping, file, copy.deepcopy(doc))


def _fields(raw: Any, kinds: dict[str, Kind], where: str, file) -> dict:
    """Every field of ``kinds`` (all required, no others), each checked by its kind."""
    _check_keys(raw, tuple(kinds), (), where, file)
    return {key: kind.check(raw[key], f"{where}.{key}", file) for key, kind in kinds.items()}


def _check_widths(data: DataWidths, components: dict[str, Component], file) -> None:
    """Each memory must be at least as wide as the widest word it stores, and whole words."""
    widest = max(data.weight_bits, data.membrane_bits, data.psum_bits, data.input_bits,
                 data.ann_activation_bits)
    for comp in components.values():
        if comp.cls in ("sram", "regfile", "dram") and comp.width_bits < widest:
            raise SpecError(file, f"components.{comp.name}.width_bits",
                            f"{comp.width_bits} bits is narrower than the widest data type ({widest} bits)")
        if comp.cls in ("sram", "regfile") and (comp.capacity_bytes * 8) % comp.width_bits:
            raise SpecError(file, f"components.{comp.name}.capacity_bytes",
                            f"{comp.capacity_bytes} bytes is not a whole number of {comp.width_bits}-bit words")
        if comp.cls == "dram" and comp.bandwidth_bits_per_cycle % 8:
            raise SpecError(file, f"components.{comp.name}.bandwidth_bits_per_cycle",
                            "must be a whole number of bytes per cycle")
