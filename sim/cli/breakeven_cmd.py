"""``run_sim.py breakeven [--T 2,4,6,8] [--arch all]``: the sparsity at which the simulated
E_SNN equals E_ANN on each architecture (synthetic traces swept over the spike rate), printed
beside the closed forms' break-even s*(T) (:mod:`sim.studies.breakeven`)."""

from __future__ import annotations

import argparse
import sys

from sim.cli import options


def add_parser(sub) -> None:
    p = sub.add_parser(
        "breakeven", help="simulated break-even sparsity beside the closed forms' s*(T)",
        description="For each T, write synthetic traces of a model shape at several spike rates, "
                    "replay the SNN and its ANN twin on each architecture and find the rate where "
                    "the simulated E_SNN = E_ANN (bracketed from the closed form's root, then "
                    "interpolated). Prints the simulated break-even sparsity s* = 1 - rate beside "
                    "the per-architecture closed form's s* and the paper's v1 s*(T). docs/validation.md.")
    p.add_argument("--T", dest="T", default="2,4,6,8", metavar="LIST",
                   help="time windows: a list '2,4,6,8' or a range '1-8' (default 2,4,6,8)")
    options.add_arch(p, default="all")
    p.add_argument("--model", default="vgg16",
                   help="model shape of the synthetic traces (vgg16, vgg11, vgg_small, digits_cnn, tiny; default vgg16)")
    options.add_samples(p, default=1, what="samples per synthetic trace (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic traces (default 0)")
    p.add_argument("--tol", type=float, default=0.002, metavar="RATE",
                   help="stop when the bracket of the rate is narrower than this (default 0.002)")
    options.add_energy(p)
    p.add_argument("--map", choices=("spec", "best"), default="best",
                   help="best (default): at every rate the SNN and its twin each run their cheapest mapping "
                        "(best against best); spec: the specs' own mappings (docs/mapping.md)")
    options.add_json(p)
    options.add_plot(p, "s*(T): simulated, closed form and paper v1")
    options.add_quiet(p, "no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.report.output import Outputs
    from sim.studies.breakeven import format_text, run_breakeven

    Ts = options.parse_T(args.T)
    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        png, _ = options.plot_destination(out, args.plot)
        doc = run_breakeven(Ts, args.arch, args.model, args.samples, args.energy, args.seed,
                            args.tol, progress=not args.quiet, map_policy=args.map)
        if args.json != "-":
            sys.stdout.write(format_text(doc))
        if js:
            out.json(js, doc)
        if png:
            from sim.plots.validation import plot_breakeven
            plot_breakeven(doc, out.temp(png))
    return 0
