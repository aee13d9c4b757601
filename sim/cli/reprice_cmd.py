"""``run_sim.py reprice REPORT.json --energy TABLE``: re-price saved counts, no simulation."""

from __future__ import annotations

import argparse
import json
import sys

from sim.cli import options


def add_parser(sub) -> None:
    p = sub.add_parser("reprice", help="re-price a saved report with another energy table",
                       description="Price the counts of a saved replay report (one run, or a "
                                   "document with 'runs') with another energy table, without simulating.")
    p.add_argument("report", help="report JSON written by replay --json")
    options.add_energy(p, required=True)
    options.add_json(p, "write the re-priced report ('-' = stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.arch.energy import load_energy_table
    from sim.report.output import write_json
    from sim.report import ratios
    from sim.errors import SpecError
    from sim.report import format_report, is_priced, reprice, require_priced, unpriced_text

    try:
        with open(args.report) as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise SpecError(args.report, None, "report file does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(args.report, None, f"not a JSON report: {exc}") from None
    if not isinstance(doc, dict):
        raise SpecError(args.report, None, "not a JSON report object")
    table = load_energy_table(args.energy)
    if "runs" in doc:
        runs = [reprice(r, table, args.report, partial=True) for r in doc["runs"]]
        out = {**doc, "runs": runs, "ratios": ratios(runs)}
    else:
        runs = [reprice(doc, table, args.report, partial=True)]
        out = runs[0]
    require_priced(runs, table)
    for r in runs:
        if not is_priced(r):
            sys.stderr.write(f"warning: {unpriced_text(r)}; its counts are kept without energies\n")
    if args.json != "-":
        for r in runs:
            sys.stdout.write(format_report(r) + "\n")
    if args.json:
        write_json(out, args.json)
    return 0
