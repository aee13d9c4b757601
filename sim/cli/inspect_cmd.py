"""``run_sim.py inspect TRACE``: metadata and per-layer event statistics of a trace."""

from __future__ import annotations

import argparse
import sys

from sim.cli import options


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect", help="print a trace's metadata and per-layer spike statistics",
        description="Validate a trace and print its metadata and one row per layer "
                    "(kind, shapes, fan-in, spike rate, activation density, spike count), "
                    "plus the network spike rate by the paper's definition.")
    options.add_trace(p)
    options.add_samples(p, what="read only the first N samples (default all)")
    options.add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.report.output import Outputs
    from sim.trace.inspect import format_table, inspect_trace

    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        info = inspect_trace(args.trace, args.samples)
        if args.json != "-":
            sys.stdout.write(format_table(info))
        if js:
            out.json(js, info)
    return 0
