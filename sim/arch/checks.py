"""YAML reading and field checks shared by the energy-table and arch-spec loaders.

Each check raises :class:`sim.errors.SpecError` naming the file and the dotted field.
:func:`read_yaml_file` turns every way a file can fail to be a YAML document (a directory,
missing, too large, not text, malformed, nested too deep, a number too long to convert)
into one such error, so no parser exception reaches the user.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from sim.arch.fields import did_you_mean, number_hint, show
from sim.errors import SpecError

# Names used in dotted paths (entries, components) must be identifiers.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: Largest spec or energy-table file read (bytes); the shipped ones are a few KB.
MAX_YAML_BYTES = 1 << 20

_INT_TAG = "tag:yaml.org,2002:int"
# Integers: decimal without a leading zero, 0x hex, 0b binary, ``_`` separators. YAML 1.1
# reads 010 as octal 8 (YAML 1.2 as 10) and 1:30 as 90; here both stay text, so a number
# field rejects them in a line (sim.arch.fields.number_hint) instead of guessing.
_INT_RE = re.compile(r"^[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0|[1-9][0-9_]*)$")


class _StrictLoader(yaml.SafeLoader):
    """Safe loader that rejects duplicate mapping keys instead of keeping the last one, and
    reads integers as in :data:`_INT_RE` (``010`` is text, not octal 8)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping says so with its position
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    base = {"0b": 2, "0x": 16}.get(text[:2], 10)
    digits = text[2:] if base != 10 else text
    if len(digits) > 1000:  # far beyond any bound; int() refuses past 4300 digits anyway
        raise yaml.constructor.ConstructorError(
            None, None, f"integer of {len(digits)} digits is too long", node.start_mark)
    return sign * int(digits, base)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor(_INT_TAG, _construct_int)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver(_INT_TAG, _INT_RE, list("-+0123456789"))


def resolve_bundled(name_or_path, directory: Path) -> Path:
    """A bare name means ``<directory>/<name>.yaml`` (a bundled file); anything with a
    directory part or a ``.yaml``/``.yml`` suffix is a path, and so is a bare name that is
    an existing directory (so that loading it says what it is)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    bundled = directory / f"{text}.yaml"
    if not bundled.is_file() and Path(text).is_dir():
        return Path(text)
    return bundled


#: Most nodes a document may have once its aliases are expanded; the shipped files have ~100.
MAX_YAML_NODES = 100_000


class YamlTooLarge(yaml.YAMLError):
    """A document whose aliases expand past :data:`MAX_YAML_NODES` nodes, or contain itself."""


def strict_yaml_load(text: str) -> Any:
    """Parse YAML safely, rejecting duplicate mapping keys; integers as in :data:`_INT_RE`.
    YamlTooLarge for an alias bomb ("billion laughs") or a self-containing node, which the
    parser builds cheaply by reference but anything that walks the document would expand."""
    doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    if expanded_nodes(doc, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise YamlTooLarge(f"its aliases expand to more than {MAX_YAML_NODES:,} nodes, or a node contains itself")
    return doc


def expanded_nodes(doc: Any, limit: int) -> int:
    """Nodes of ``doc`` with every shared list or mapping counted once per reference (as a
    walk over it meets them), up to ``limit + 1``; a node that contains itself counts as
    ``limit + 1``. Linear in the distinct nodes: each is sized once."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        key = id(node)
        if finished:
            total = 1 + len(node) + sum(size[id(c)] - 1 for c in children if isinstance(c, (list, dict)))
            size[key] = min(total, limit + 1)
            on_path.discard(key)
        elif key in on_path:  # met again inside its own subtree
            return limit + 1
        elif key not in size:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (list, dict)) and id(c) not in size)
    return size.get(id(doc), 1)


def yaml_error_text(exc: BaseException) -> str:
    """One line saying why text is not a YAML document this project reads."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, (ValueError, OverflowError)) and not isinstance(exc, UnicodeDecodeError):
        return f"a number cannot be read ({' '.join(str(exc).split())[:120]})"
    return " ".join(re.sub(r'\s*in "<unicode string>",', ",", str(exc)).split())


#: What the YAML parser raises on text it cannot read into a document.
YAML_ERRORS = (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError, OverflowError)


def read_yaml_file(path: Path, what: str, shipped: list[str], shipped_dir: Path) -> Any:
    """The YAML document in ``path``; SpecError naming the file for a directory, a missing,
    unreadable or oversized file, or text that is not YAML. ``what`` names the kind of file
    ("arch spec"); ``shipped`` lists the bundled names, shown when the file is not one."""
    hint = f" (shipped {what}s: {', '.join(shipped) or 'none'})"
    if path.is_dir():
        raise SpecError(path, None, f"is a directory, expected an {what} YAML file{hint}")
    if not path.is_file():
        raise SpecError(path, None, f"{what} not found{hint if path.parent == shipped_dir else ''}")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SpecError(path, None, f"{size:,} bytes is too large for an {what} "
                                        f"(at most {MAX_YAML_BYTES:,} bytes)")
        text = path.read_text()
    except OSError as exc:
        raise SpecError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, None, f"not valid YAML: not UTF-8 text ({exc.reason})") from None
    try:
        return strict_yaml_load(text)
    except YAML_ERRORS as exc:
        raise SpecError(path, None, f"not valid YAML: {yaml_error_text(exc)}") from None


# --- field checks: each names the dotted field it rejects -------------------------------

def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _check_keys(raw: Any, required, optional, where: str, file) -> None:
    if not isinstance(raw, dict):
        raise SpecError(file, where or None, f"expected a mapping, got {type(raw).__name__}")
    allowed = (*required, *optional)
    for key in raw:
        if key not in allowed:
            raise SpecError(file, _join(where, show_key(key)),
                            f"unknown key{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in raw:
            raise SpecError(file, _join(where, key), "missing required field")


def show_key(key: Any) -> str:
    """A mapping key as it appears in a dotted path (short, whatever its type)."""
    return key if isinstance(key, str) and len(key) <= 60 else show(key)


def _mapping(raw: Any, where: str, file, non_empty: bool = False) -> dict:
    if not isinstance(raw, dict):
        raise SpecError(file, where, f"expected a mapping, got {type(raw).__name__}")
    if non_empty and not raw:
        raise SpecError(file, where, "must not be empty")
    return raw


def _name(key: Any, where: str, file) -> str:
    if not isinstance(key, str) or not _NAME_RE.match(key):
        raise SpecError(file, f"{where}.{show_key(key)}", "names must match [A-Za-z][A-Za-z0-9_]*")
    return key


def _string(raw: Any, where: str, file) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(file, where, f"expected a non-empty string, got {show(raw)}")
    return raw


def _number(raw: Any, where: str, file, minimum: float | None = None, maximum: float | None = None,
            unit: str = "") -> float:
    """A finite number (booleans rejected) in ``[minimum, maximum]``, as a float."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise SpecError(file, where, f"expected a finite number, got {show(raw)}{number_hint(raw)}")
    try:
        x = float(raw)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise SpecError(file, where, f"expected a finite number, got {show(raw)}")
    if minimum is not None and x < minimum:
        raise SpecError(file, where, f"must be >= {minimum:g}{unit}, got {show(raw)}")
    if maximum is not None and abs(x) > maximum:
        raise SpecError(file, where, f"must be at most {maximum:g}{unit} in magnitude "
                                     f"(docs/arch-spec.md, \"Limits\"), got {show(raw)}")
    return x


def _integer(raw: Any, where: str, file, maximum: int) -> int:
    """An integer in ``[1, maximum]`` (booleans rejected)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise SpecError(file, where, f"expected a positive integer, got {show(raw)}{number_hint(raw)}")
    if raw > maximum:
        raise SpecError(file, where, f"must be <= {maximum:,} (docs/arch-spec.md, \"Limits\"), got {show(raw)}")
    return raw


def _source(raw: Any, sources: Mapping[str, str], where: str, file) -> str:
    key = _string(raw, f"{where}.source", file)
    if key not in sources:
        raise SpecError(file, f"{where}.source",
                        f"{show(key)} is not a key of `sources` ({', '.join(sources)})"
                        f"{did_you_mean(key, sources)}")
    return key


def _note(raw: dict, where: str, file) -> str | None:
    if "note" not in raw or raw["note"] is None:
        return None
    return _string(raw["note"], f"{where}.note", file)
