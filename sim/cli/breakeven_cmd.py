"""``run_sim.py breakeven [--T 2,4,6,8] [--arch all]``: the sparsity at which the simulated
E_SNN equals E_ANN on each architecture (synthetic traces swept over the spike rate), printed
beside the closed forms' break-even s*(T) (:mod:`sim.studies.breakeven`)."""

from __future__ import annotations

import argparse
import sys


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
    p.add_argument("--arch", default="all", help="arch spec name or YAML path, or 'all' (default all)")
    p.add_argument("--model", default="vgg16",
                   help="model shape of the synthetic traces (vgg16, vgg11, vgg_small, digits_cnn, tiny; default vgg16)")
    p.add_argument("--samples", type=int, default=1, help="samples per synthetic trace (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic traces (default 0)")
    p.add_argument("--tol", type=float, default=0.002, metavar="RATE",
                   help="stop when the bracket of the rate is narrower than this (default 0.002)")
    p.add_argument("--energy", default="paper_v1_45nm", help="energy table (default paper_v1_45nm)")
    p.add_argument("--json", metavar="FILE|-", help="also write the result as JSON ('-' = stdout only)")
    p.add_argument("--plot", metavar="FILE.png", help="s*(T): simulated, closed form and paper v1")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def _cell(x: dict | None) -> str:
    if not x:
        return "-"
    if x["kind"] == "none":
        return "none"
    if x["kind"] == "always":
        return "always"
    return f"{x['s_star']:.4f}"


def format_text(doc: dict) -> str:
    lines = [f"Break-even sparsity s* (the SNN costs less than its ANN twin when s > s*): synthetic "
             f"{doc['model']} traces, {doc['samples']} sample(s), energy table {doc['energy_table']}",
             "'none': the SNN costs more at every spike rate; 'always': less at every rate; "
             "ANN twin density 1-(1-r)^T as in the traces, except 'cf fixed rho' (the v1 assumption)", ""]
    rho = next((r["closed_form_fixed_rho"]["rho"] for rows in doc["architectures"].values() for r in rows
                if "closed_form_fixed_rho" in r), None)
    fixed = "cf rho=" + (f"{rho:g}" if rho is not None else "-")
    head = (f"{'architecture':<20}{'T':>3}{'simulated':>11}{'closed form':>13}{'sim - cf':>10}"
            f"{fixed:>13}{'paper v1':>10}  bracket (rates)")
    lines += [head, "-" * len(head)]
    for arch, rows in doc["architectures"].items():
        for r in rows:
            s, cf = r["simulated"], r["closed_form"]
            diff = (f"{s['s_star'] - cf['s_star']:+.4f}" if s["s_star"] is not None and cf["s_star"] is not None
                    else "")
            br = s.get("bracket")
            br = f"  [{br['rate_low']:.4f}, {br['rate_high']:.4f}]" if br else ""
            lines.append(f"{arch:<20}{r['T']:>3}{_cell(s):>11}{_cell(cf):>13}{diff:>10}"
                         f"{_cell(r.get('closed_form_fixed_rho')):>13}{_cell(r.get('paper_v1')):>10}{br}")
    notes = [f"{arch} T={r['T']}: {r['closed_form']['note']}" for arch, rows in doc["architectures"].items()
             for r in rows if r["closed_form"].get("note")]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from sim.studies.breakeven import run_breakeven
    from sim.cli.formulas_cmd import parse_T
    from sim.report.output import write_json
    from sim.errors import ParameterError

    if args.plot and not args.plot.lower().endswith(".png"):
        raise ParameterError(None, "--plot", f"expected a .png file name, got {args.plot!r}")
    doc = run_breakeven(parse_T(args.T), args.arch, args.model, args.samples, args.energy, args.seed,
                        args.tol, progress=not args.quiet)
    if args.json != "-":
        sys.stdout.write(format_text(doc))
    if args.json:
        write_json(doc, args.json)
    if args.plot:
        from sim.plots.validation import plot_breakeven
        plot_breakeven(doc, args.plot)
    return 0
