"""Command-line interface: ``python run_sim.py <command> ...``.

Each subcommand lives in its own module under ``sim.cli`` and exposes
``add_parser(subparsers)``, which registers the parser and sets ``func``. Heavy imports
(numba, torch, dask) happen inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sim import __version__
from sim.errors import SimInputError

# Order here is the order in `--help`. Add a command by adding its module name.
COMMAND_MODULES = [
    "sim.cli.inspect_cmd",
    "sim.cli.synth_cmd",
    "sim.cli.replay_cmd",
    "sim.cli.reprice_cmd",
    "sim.cli.train_cmd",
    "sim.cli.record_cmd",
    "sim.cli.record_model_cmd",
    "sim.cli.import_nir_cmd",
    "sim.cli.import_scalesim_cmd",
    "sim.cli.formulas_cmd",
    "sim.cli.sweep_cmd",
    "sim.cli.validate_cmd",
    "sim.cli.breakeven_cmd",
]

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error printed as the one line every bad input gets
    (``error: run_sim.py replay: argument --samples: ...``, exit 2) instead of the usage
    block; ``--help`` still prints the full usage."""

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_sim.py",
        description="Trace-driven energy simulator: SNN vs ANN twin on three architectures.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except SimInputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)
