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
    from sim.report import format_report, is_priced, unpriced_text
    from sim.report.document import reprice_document
    from sim.report.output import Outputs

    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        doc, runs = reprice_document(_read_report(args.report), load_energy_table(args.energy), args.report)
        for r in runs:
            if not is_priced(r):
                sys.stderr.write(f"warning: {unpriced_text(r)}; its counts are kept without energies\n")
        if args.json != "-":
            for r in runs:
                sys.stdout.write(format_report(r) + "\n")
        if js:
            out.json(js, doc)
    return 0


def _read_report(path: str):
    """The JSON document in ``path``; SpecError naming the file when it is not one."""
    from sim.errors import SpecError

    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise SpecError(path, None, "report file does not exist") from None
    except IsADirectoryError:
        raise SpecError(path, None, "is a directory, expected a report JSON file written by replay --json") from None
    except OSError as exc:
        raise SpecError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except RecursionError:
        raise SpecError(path, None, "not a JSON report: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long to read
        why = "an integer too long to read" if "integer string conversion" in str(exc) else str(exc)
        raise SpecError(path, None, f"not a JSON report: {' '.join(why.split())[:160]}") from None
