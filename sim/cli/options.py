"""Options shared by several commands, declared once: each ``add_*`` adds one option to a
parser (or argument group) with the same flag, destination, default and help everywhere;
the ``check_*`` helpers validate parsed values with one-line errors (exit 2)."""

from __future__ import annotations

import argparse

from sim.arch.energy import PAPER_V1_TABLE as DEFAULT_ENERGY
from sim.errors import ParameterError


def add_trace(p, nargs: str | None = None) -> None:
    p.add_argument("trace", nargs=nargs, help="trace file (.h5)")


def add_arch(p, default: str = "memory_hierarchy", allow_all: bool = True) -> None:
    what = "a bundled arch spec name or a path to a YAML spec" + (", or 'all'" if allow_all else "")
    p.add_argument("--arch", default=default, help=f"{what} (default {default})")


def add_mode(p) -> None:
    p.add_argument("--mode", choices=("snn", "ann", "both"), default="both",
                   help="replay the SNN, the ANN twin, or both (default; gives E_SNN/E_ANN)")


def modes(args: argparse.Namespace) -> list[str]:
    """``--mode both`` -> ["snn", "ann"]; else the one mode."""
    return ["snn", "ann"] if args.mode == "both" else [args.mode]


def add_map(p, default: str) -> None:
    """``--map spec|best`` and ``--objective energy|cycles|edp`` (sim.replay.mapper)."""
    p.add_argument("--map", choices=("spec", "best"), default=default,
                   help="spec: run the mapping the arch spec names; best: each architecture and mode runs "
                        "the mapping the mapper finds cheapest in its mapping space (loop order, tiling, "
                        "partition, placement, ...; never the hardware) and the report shows the spec's "
                        f"own mapping beside it (default {default}; docs/mapping.md)")
    p.add_argument("--objective", choices=("energy", "cycles", "edp"), default="energy",
                   help="what --map best minimises (default energy: exact closed forms; cycles and edp "
                        "simulate every candidate)")


def add_timing(p) -> None:
    p.add_argument("--timing", choices=("auto", "fast", "simpy"), default="auto",
                   help="how the memory hierarchy's tile pipeline is timed: fast (a compiled twin of the "
                        "simpy model, equal cycle for cycle), simpy (the reference discrete-event model) or "
                        "auto (default: fast)")


def apply_timing(args: argparse.Namespace) -> None:
    from sim.engine.components import set_timing

    set_timing(getattr(args, "timing", "auto"))


def add_energy(p, required: bool = False) -> None:
    if required:
        p.add_argument("--energy", required=True, metavar="TABLE", help="bundled energy table name or path")
    else:
        p.add_argument("--energy", default=DEFAULT_ENERGY, metavar="TABLE",
                       help=f"bundled energy table name or path (default {DEFAULT_ENERGY})")


def add_samples(p, default: int | None = None, what: str = "use the first N samples (default all)") -> None:
    p.add_argument("--samples", type=int, default=default, help=what)


def add_overrides(p) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override an arch-spec field, e.g. --set mapping.zero_skipping=false (repeatable)")


def add_json(p, what: str = "also write the result as JSON ('-' = stdout only)") -> None:
    p.add_argument("--json", metavar="FILE|-", help=what)


def add_plot(p, what: str, metavar: str = "FILE.png") -> None:
    p.add_argument("--plot", metavar=metavar, help=what)


def add_quiet(p, what: str = "no progress bar") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def check_positive(value: int | None, option: str) -> None:
    """ParameterError unless ``value`` is None or >= 1."""
    if value is not None and value < 1:
        raise ParameterError(None, option, f"must be >= 1, got {value}")


def parse_T(text: str) -> list[int]:
    """'1-16' -> 1..16, '2,4,6' -> [2, 4, 6]; sorted, without repeats, each at most the
    largest T a trace may hold (sim.trace.limits.MAX_T). ParameterError if bad."""
    from sim.trace.limits import MAX_T

    values: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ParameterError(None, "--T", f"expected a range like 1-16 or a list like 2,4,6, got {text!r}") from None
        if a < 1 or b < 1:
            raise ParameterError(None, "--T", f"time windows must be >= 1, got {part.strip()!r}")
        if b < a:
            raise ParameterError(None, "--T", f"empty range {part.strip()!r}")
        if b > MAX_T:  # checked before the range is built: 1-1000000000 must not fill memory
            raise ParameterError(None, "--T", f"time windows must be <= {MAX_T}, got {b}")
        values.update(range(a, b + 1))
    return sorted(values)


def plot_destination(outputs, value: str | None, allow_dir: bool = False):
    """Check ``--plot VALUE`` before computing: a ``.png`` file, or (``allow_dir``) a
    directory that is created if its parent exists. Returns (png path or None, directory or
    None); ParameterError for any other name (e.g. ``out.jpg``)."""
    if value is None:
        return None, None
    try:
        return _plot_destination(outputs, value, allow_dir)
    except OSError as exc:  # a name too long, a link loop: one line, before any work
        raise ParameterError(value, "--plot", f"unusable path ({exc.strerror or exc})") from None


def _plot_destination(outputs, value: str, allow_dir: bool):
    from pathlib import Path

    path = Path(value)
    if allow_dir and path.is_dir():
        return None, outputs.directory("--plot", value)
    if path.suffix.lower() == ".png" or not allow_dir:
        return outputs.file("--plot", value, suffix=".png"), None
    if path.suffix.lower() in IMAGE_SUFFIXES:  # out.jpg: a figure in a format we do not write
        raise ParameterError(value, "--plot", "expected a .png file name or a directory")
    return None, outputs.directory("--plot", value)


#: File names that mean "a figure in another format", not a directory to create.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".svg", ".pdf", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".eps", ".ps")
