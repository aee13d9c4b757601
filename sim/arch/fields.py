"""Field kinds of arch specs: each validates one YAML value and names the dotted field it
rejects (:class:`sim.errors.SpecError`). Used by the spec loader and by the architecture
registry's component classes and mapping options."""

from __future__ import annotations

from sim.errors import SpecError


class Kind:
    """A field validator: ``check(value, where, file)`` returns the clean value or raises."""

    def __init__(self, name: str, check):
        self.name, self.check = name, check


def integer(minimum: int) -> Kind:
    def check(v, where, file):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(file, where, f"expected an integer, got {v!r}")
        if v < minimum:
            raise SpecError(file, where, f"must be >= {minimum}, got {v}")
        return v
    return Kind(f"integer >= {minimum}", check)


def positive_number() -> Kind:
    def check(v, where, file):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise SpecError(file, where, f"expected a number > 0, got {v!r}")
        return float(v)
    return Kind("number > 0", check)


def boolean() -> Kind:
    def check(v, where, file):
        if not isinstance(v, bool):
            raise SpecError(file, where, f"expected true or false, got {v!r}")
        return v
    return Kind("boolean", check)


def choice(*options: str) -> Kind:
    def check(v, where, file):
        if v not in options:
            raise SpecError(file, where, f"must be one of {', '.join(options)}; got {v!r}")
        return v
    return Kind(f"one of {', '.join(options)}", check)


POS, NONNEG = integer(1), integer(0)
