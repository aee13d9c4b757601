"""Field kinds of arch specs: each validates one YAML value and names the dotted field it
rejects (:class:`sim.errors.SpecError`). Used by the spec loader and by the architecture
registry's component classes and mapping options.

Every number is range-checked against a documented bound (docs/arch-spec.md, "Limits"), so a
spec cannot ask the simulator for more than it can allocate or count exactly: the bounds
keep every product of sizes well inside int64 and every per-node array of the mesh within
a few GB.
"""

from __future__ import annotations

import difflib
import math
import re

from sim.errors import SpecError

#: Bytes of any memory (2^40 = 1 TiB).
MAX_CAPACITY_BYTES = 2 ** 40
#: Bits of a word, a flit, an interconnect word, a data type, an energy entry's operand.
MAX_WIDTH_BITS = 4096
#: Routers along one side of a neuromorphic mesh, and PEs along one side of a PE array. The
#: neuromorphic simulator keeps about ten int64 per mesh node, per time step and per layer part
#: (sim/kernels/noc.py route_events, sim/architectures/neuromorphic.py), and walks each packet
#: hop by hop: at 1024 x 1024 nodes one VGG16 sample at T = 6 takes about 4 GB and 15 s, and
#: each doubling of both sides quadruples the memory. A PE array's side bounds the spatial
#: dataflow's PE allocation loop the same way.
MAX_MESH_SIDE = 1024
#: Banks, ports, operations, flits or words per cycle, transactions in flight.
MAX_PARALLEL = 4096
#: Bits per cycle of a DRAM channel.
MAX_BANDWIDTH_BITS_PER_CYCLE = 2 ** 20
#: Cycles of any latency, barrier or per-operation time.
MAX_CYCLES = 2 ** 20
#: Clock frequency (MHz), i.e. 100 GHz.
MAX_CLOCK_MHZ = 100_000


def show(v) -> str:
    """A short ``repr`` of a value for a message: huge integers (whose ``str`` Python refuses
    past 4300 digits) by their digits, containers by their type and length (a YAML alias
    bomb's ``repr`` would never end), text cut at 60 characters."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"an integer of {int(v.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(v, (list, tuple, dict, set)):
        return f"a {'mapping' if isinstance(v, dict) else 'list'} of {len(v)} item{'s' * (len(v) != 1)}"
    if isinstance(v, str) and len(v) > 60:
        return repr(v[:57]) + "..."
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")


def number_hint(v) -> str:
    """Why text that looks like a number is not read as one: a leading zero is ambiguous
    (YAML 1.1 reads ``010`` as octal 8, YAML 1.2 and most people as 10), so it is refused."""
    if isinstance(v, str) and _LEADING_ZERO.match(v.strip()):
        digits = v.strip().lstrip("+-").replace("_", "").lstrip("0") or "0"
        return f" (a leading zero is ambiguous: octal or decimal? write {v.strip()[0] if v.strip()[0] in '+-' else ''}{digits} for decimal)"
    return ""


def did_you_mean(word, options) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``options`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Kind:
    """A field validator: ``check(value, where, file)`` returns the clean value or raises."""

    def __init__(self, name: str, check):
        self.name, self.check = name, check


def integer(minimum: int, maximum: int) -> Kind:
    """An integer in ``[minimum, maximum]`` (booleans rejected)."""
    def check(v, where, file):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(file, where, f"expected an integer, got {show(v)}{number_hint(v)}")
        if v < minimum:
            raise SpecError(file, where, f"must be >= {minimum}, got {show(v)}")
        if v > maximum:
            raise SpecError(file, where, f"must be <= {maximum:,} (docs/arch-spec.md, \"Limits\"), got {show(v)}")
        return v
    return Kind(f"integer in {minimum}..{maximum}", check)


def positive_number(maximum: float) -> Kind:
    """A finite number in ``(0, maximum]`` (booleans rejected), as a float."""
    def check(v, where, file):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError(file, where, f"expected a number > 0, got {show(v)}{number_hint(v)}")
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x) or not x > 0:
            raise SpecError(file, where, f"expected a finite number > 0, got {show(v)}")
        if x > maximum:
            raise SpecError(file, where, f"must be <= {maximum:,} (docs/arch-spec.md, \"Limits\"), got {show(v)}")
        return x
    return Kind(f"number in (0, {maximum}]", check)


def boolean() -> Kind:
    def check(v, where, file):
        if not isinstance(v, bool):
            raise SpecError(file, where, f"expected true or false, got {show(v)}")
        return v
    return Kind("boolean", check)


def boolean_or_names() -> Kind:
    """``true``, ``false`` or a list of distinct non-empty names (e.g. the layers an option
    applies to; an empty list is ``false``)."""
    def check(v, where, file):
        if isinstance(v, bool):
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise SpecError(file, where, f"expected true, false or a list of layer names, got {show(v)}")
        if len(set(v)) != len(v):
            raise SpecError(file, where, f"names a layer twice: {sorted(x for x in set(v) if v.count(x) > 1)}")
        return list(v) if v else False
    return Kind("true, false or a list of layer names", check)


def choice(*options: str) -> Kind:
    def check(v, where, file):
        if not isinstance(v, str) or v not in options:
            raise SpecError(file, where, f"must be one of {', '.join(options)}; got {show(v)}"
                            f"{did_you_mean(v, options) if isinstance(v, str) else ''}")
        return v
    return Kind(f"one of {', '.join(options)}", check)


#: A count of things (>= 1) and a non-negative one, bounded by MAX_PARALLEL.
POS, NONNEG = integer(1, MAX_PARALLEL), integer(0, MAX_PARALLEL)
CAPACITY = integer(1, MAX_CAPACITY_BYTES)
WIDTH = integer(1, MAX_WIDTH_BITS)
MESH_SIDE = integer(1, MAX_MESH_SIDE)
#: A router coordinate on the mesh (mapping.io_x / io_y).
MESH_COORD = integer(0, MAX_MESH_SIDE - 1)
BANDWIDTH = integer(1, MAX_BANDWIDTH_BITS_PER_CYCLE)
CYCLES, POS_CYCLES = integer(0, MAX_CYCLES), integer(1, MAX_CYCLES)
CLOCK_MHZ = positive_number(MAX_CLOCK_MHZ)


def cycles_or_table(key_max: int) -> Kind:
    """Cycles (an integer in 0..MAX_CYCLES), or a table of 1..64 rows ``[count, cycles]`` with
    distinct counts in ``1..key_max`` (e.g. cores in use; a list, so ``--set`` replaces it
    whole): the value for ``n`` is the row of the largest count <= n (below the first count,
    the first row). Returns an int, or a tuple of (count, cycles) pairs sorted by count."""
    def check(v, where, file):
        if not isinstance(v, list):
            return CYCLES.check(v, where, file)
        if not v or len(v) > 64:
            raise SpecError(file, where, f"expected cycles or a table of 1..64 rows [count, cycles], got {show(v)}")
        rows = []
        for j, row in enumerate(v):
            if not isinstance(row, list) or len(row) != 2:
                raise SpecError(file, f"{where}[{j}]", f"expected a row [count, cycles], got {show(row)}")
            k = row[0]
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= key_max:
                raise SpecError(file, f"{where}[{j}]", f"a count must be an integer in 1..{key_max:,}, got {show(k)}")
            rows.append((k, CYCLES.check(row[1], f"{where}[{j}]", file)))
        counts = [k for k, _ in rows]
        if len(set(counts)) != len(counts):
            raise SpecError(file, where, f"a count appears twice: {sorted(k for k in set(counts) if counts.count(k) > 1)}")
        return tuple(sorted(rows))
    return Kind(f"cycles, or a table of rows [count in 1..{key_max}, cycles]", check)


def table_value(v, n: int) -> int:
    """The value of a :func:`cycles_or_table` field for count ``n``."""
    if isinstance(v, int):
        return v
    below = [c for k, c in v if k <= n]
    return below[-1] if below else v[0][1]


#: A barrier: cycles, or a table by cores in use (noc.barrier_cycles).
BARRIER = cycles_or_table(MAX_MESH_SIDE * MAX_MESH_SIDE)
