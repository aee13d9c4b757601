"""Typed errors for bad input. Each names the file and the field at fault.

The CLI turns any :class:`SimInputError` into one line on stderr and exit status 2.
"""

from __future__ import annotations


class SimInputError(Exception):
    """Bad user input: a malformed file, an invalid spec or impossible parameters."""

    def __init__(self, file: str | None, field: str | None, message: str):
        self.file = None if file is None else str(file)
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.field:
            where.append(self.field)
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class TraceFormatError(SimInputError):
    """A trace file is missing, truncated, not HDF5, or violates the trace format."""


class SpecError(SimInputError):
    """An arch spec or energy table is invalid (unknown key, missing field, bad value)."""


class ParameterError(SimInputError):
    """Command-line parameters that cannot be satisfied (e.g. more samples than the trace has)."""
