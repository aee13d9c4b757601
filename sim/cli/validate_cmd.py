"""``run_sim.py validate TRACE --arch NAME|all [--ideal]``: counted events against the
per-architecture closed forms, term by term, every residual attributed to a named cause; and
the paper's v1 averages against the counted ratio (:mod:`sim.validation.compare`,
:mod:`sim.validation.paper`). Exit 0 when everything agrees, 1 when a term disagrees, 2 on bad
input, 3 when a sample-parallel run (--workers, --scheduler) has no result."""

from __future__ import annotations

import argparse
import sys

from sim.cli import options
from sim.cli.replay_cmd import add_parallel, run_counting

EXIT_DISAGREE = 1


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate", help="check counted events against the closed forms, term by term",
        description="Replay a trace (SNN and ANN twin) and evaluate the per-architecture closed "
                    "form with the same spec and the trace's real per-layer spike counts. For every "
                    "term (layer x component.action) and total, print the counted value, the ideal "
                    "closed form's value and the residual, and attribute each residual to named "
                    "causes (buffer spills, folds, placement hops, paging). Also compares the paper's "
                    "v1 model (network-wide averages) with the counted E_SNN/E_ANN. Exit status 1 "
                    "when a residual is unexplained (or, with --ideal, non-zero). docs/validation.md.")
    options.add_trace(p)
    options.add_arch(p, default="all")
    p.add_argument("--ideal", action="store_true",
                   help="force the closed forms' assumptions onto the spec (buffer, chip or mesh large "
                        "enough, no hop cost): every term must then agree exactly")
    options.add_samples(p)
    options.add_energy(p)
    options.add_overrides(p)
    options.add_map(p, default="spec")
    options.add_timing(p)
    p.add_argument("--all-terms", action="store_true",
                   help="print every term (default: the terms with a residual, and a count of the rest)")
    options.add_json(p)
    options.add_plot(p, "counted vs predicted per term, and residual energy by cause")
    add_parallel(p)
    options.add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_counting(args, _run)


def _run(args: argparse.Namespace) -> int:
    from sim.report.output import Outputs
    from sim.validation.compare import run_validation
    from sim.validation.text import format_text

    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        png, _ = options.plot_destination(out, args.plot)
        doc = run_validation(args.trace, args.arch, args.ideal, args.samples, args.energy, args.overrides,
                             progress=not args.quiet, map_policy=args.map, objective=args.objective,
                             workers=args.workers, scheduler=args.scheduler)
        if args.json != "-":
            sys.stdout.write(format_text(doc, args.all_terms))
        if js:
            out.json(js, doc)
        if png:
            from sim.plots.validation import plot_validation
            plot_validation(doc, out.temp(png))
    return 0 if doc["ok"] else EXIT_DISAGREE
