"""Field checks shared by the energy-table and arch-spec loaders.

Each check raises :class:`sim.errors.SpecError` naming the file and the dotted field.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from sim.errors import SpecError

# Names used in dotted paths (entries, components) must be identifiers.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _StrictLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)



def resolve_bundled(name_or_path, directory: Path) -> Path:
    """A bare name means ``<directory>/<name>.yaml`` (a bundled file); anything with a
    directory part or a ``.yaml``/``.yml`` suffix is a path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    return directory / f"{text}.yaml"


def strict_yaml_load(text: str) -> Any:
    """Parse YAML safely, rejecting duplicate mapping keys."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


# --- field checks: each names the dotted field it rejects -------------------------------

def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_keys(raw: Any, required, optional, where: str, file) -> None:
    if not isinstance(raw, dict):
        raise SpecError(file, where or None, f"expected a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in required and key not in optional:
            allowed = ", ".join((*required, *optional))
            raise SpecError(file, _join(where, str(key)), f"unknown key (allowed: {allowed})")
    for key in required:
        if key not in raw:
            raise SpecError(file, _join(where, key), "missing required field")


def _mapping(raw: Any, where: str, file, non_empty: bool = False) -> dict:
    if not isinstance(raw, dict):
        raise SpecError(file, where, f"expected a mapping, got {type(raw).__name__}")
    if non_empty and not raw:
        raise SpecError(file, where, "must not be empty")
    return raw


def _name(key: Any, where: str, file) -> str:
    if not isinstance(key, str) or not _NAME_RE.match(key):
        raise SpecError(file, f"{where}.{key}", "names must match [A-Za-z][A-Za-z0-9_]*")
    return key


def _string(raw: Any, where: str, file) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(file, where, f"expected a non-empty string, got {raw!r}")
    return raw


def _number(raw: Any, where: str, file) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise SpecError(file, where, f"expected a finite number, got {raw!r}")
    return float(raw)


def _source(raw: Any, sources: Mapping[str, str], where: str, file) -> str:
    key = _string(raw, f"{where}.source", file)
    if key not in sources:
        raise SpecError(file, f"{where}.source",
                        f"{key!r} is not a key of `sources` ({', '.join(sources)})")
    return key


def _note(raw: dict, where: str, file) -> str | None:
    if "note" not in raw or raw["note"] is None:
        return None
    return _string(raw["note"], f"{where}.note", file)
