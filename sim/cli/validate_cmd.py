"""``run_sim.py validate TRACE --arch NAME|all [--ideal]``: counted events against the
per-architecture closed forms, term by term, every residual attributed to a named cause; and
the paper's v1 averages against the counted ratio (:mod:`sim.validation.compare`,
:mod:`sim.validation.paper`). Exit 0 when everything agrees, 1 when a term disagrees, 2 on bad
input."""

from __future__ import annotations

import argparse
import sys

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
    p.add_argument("trace", help="trace file (.h5)")
    p.add_argument("--arch", default="all",
                   help="arch spec name or YAML path, or 'all' (default all)")
    p.add_argument("--ideal", action="store_true",
                   help="force the closed forms' assumptions onto the spec (buffer, chip or mesh large "
                        "enough, no hop cost): every term must then agree exactly")
    p.add_argument("--samples", type=int, default=None, help="use the first N samples (default all)")
    p.add_argument("--energy", default="paper_v1_45nm",
                   help="energy table for the energies (default paper_v1_45nm)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override an arch-spec field, as for replay (repeatable)")
    p.add_argument("--all-terms", action="store_true",
                   help="print every term (default: the terms with a residual, and a count of the rest)")
    p.add_argument("--json", metavar="FILE|-", help="also write the result as JSON ('-' = stdout only)")
    p.add_argument("--plot", metavar="FILE.png", help="counted vs predicted per term, and residual energy by cause")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _si(x) -> str:
    if x is None:
        return "n/a"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3f}{unit}"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _rel(x) -> str:
    return "+inf" if x is None else f"{x:+.2%}" if x else "0"


def format_text(doc: dict, all_terms: bool = False) -> str:
    tr = doc["trace"]
    lines = [f"Validation of {tr['path']} ({tr['model']}, T={tr['T']}, {tr['samples_replayed']} sample(s)), "
             f"energy table {doc['energy_table']}, {'IDEAL spec' if doc['ideal'] else 'spec as given'}",
             f"rule: {doc['rule']}"]
    for name, a in doc["archs"].items():
        if a["forced_overrides"]:
            lines.append(f"  {name}: forced {' '.join('--set ' + o for o in a['forced_overrides'])}")
    head = f"  {'layer':<9}{'term':<38}{'counted':>12}{'predicted':>12}{'residual':>12}{'rel':>9}  causes"
    for run in doc["runs"]:
        s = run["summary"]
        lines += ["", f"{run['architecture']} ({run['arch']}) / {run['mode'].upper()}: {s['terms']} terms, "
                      f"{s['exact']} exact, {s['with_residual']} with a residual, {s['unexplained']} unexplained"
                      f" -> {'AGREE' if run['agree'] else 'DISAGREE'}"]
        shown = [r for r in run["terms"] if all_terms or r["residual"] != 0]
        if shown:
            lines += [head, "  " + "-" * (len(head) - 2)]
            for r in shown:
                causes = ", ".join(f"{c} {_si(v)}" for c, v in r["causes"].items())
                if r["unexplained"]:
                    causes += (", " if causes else "") + f"UNEXPLAINED {_si(r['unexplained'])}"
                lines.append(f"  {r['layer']:<9}{r['term']:<38}{_si(r['counted']):>12}{_si(r['predicted']):>12}"
                             f"{_si(r['residual']):>12}{_rel(r['relative_residual']):>9}  {causes}")
        lines.append(f"  totals: " + "; ".join(
            f"{k} {_si(t['counted'])}" + (f" (pred {_si(t['predicted'])}, {_rel(t['relative_residual'])})"
                                         if t["residual"] else "")
            for k, t in run["totals"].items() if t["counted"] or t["predicted"]))
        e = run["energy_pj"]
        lines.append(f"  energy: counted {_si(e['counted'])} pJ, ideal closed form {_si(e['predicted'])} pJ, "
                     f"residual {_rel(e['relative_residual'])}"
                     + "".join(f"; {c} {_si(v)} pJ" for c, v in e["causes"].items()))
        cy = run["cycles"]
        lines.append(f"  cycles (simulated only): {_si(cy['total'])}, stalls {_si(cy['stall_cycles'])}")
    lines.append("")
    for a, r in doc["ratios"].items():
        lines.append(f"E_SNN/E_ANN on {a}: counted {r['counted']:.4f}, ideal closed form {r['ideal_closed_form']:.4f}")
    if "paper_v1" in doc:
        lines += ["", *format_paper(doc["paper_v1"])]
    lines.append("")
    lines.append("RESULT: " + ("agree" if doc["ok"] else "DISAGREE (see the terms above)"))
    return "\n".join(lines) + "\n"


def format_paper(p: dict) -> list[str]:
    a = p["averages"]
    c = p["paper_constants"]
    lines = [f"Paper v1 averages against counted truth (energy table {p['energy_table']}):",
             f"  trace: s = {a['s_network']:.4f} (network spike rate {a['rate_network']:.4%}), "
             f"spike events per synapse per step {a['rate_per_synapse']:.4%} "
             f"(x{a['factor_nonuniform']:.3f} non-uniform, x{a['factor_borders']:.3f} borders, "
             f"x{a['factor_layer1_direct']:.3f} layer 1 direct)",
             f"  rho: paper {c['rho']:g}, trace {a['rho_per_synapse']:.4f} per synapse ({a['rho_inputs']:.4f} of inputs); "
             f"R: paper {c['R']:g}, trace {a['R']:.1f}; N: paper {c['N']:g}, trace {a['N']:.1f}",
             f"  spikes per time step: {a['spikes_per_step']} (CV {a['spikes_per_step_cv']:.3f}; {p['time_steps_note']})"]
    for arch, r in p["architectures"].items():
        lines.append(f"  {arch}: v1 E_SNN/E_ANN {r['v1_ratio']:.4f}, simulated {r['simulated_ratio']:.4f}, "
                     f"error {r['error']:+.4f} ({_rel(r['relative_error'])})")
        lines.append(f"    {'v1 with the true value of':<58}{'value':>10}{'ratio':>9}{'change':>9}{'of gap':>10}")
        for s in r["substitutions"] + [{"name": "all averages true", "symbol": "", "value": None,
                                         **r["all_true_averages"]}]:
            label = f"{s['symbol']}: {s['name']}" if s["symbol"] else s["name"]
            val = "" if s["value"] is None else f"{s['value']:.4g}"
            share = "n/a" if s["share_of_error"] is None else f"{s['share_of_error']:.1%}"
            lines.append(f"    {label:<58}{val:>10}{s['ratio']:>9.4f}{s['change']:>+9.4f}{share:>10}")
        rem = r["remaining"]
        lines.append(f"    remaining (simulated - all true): {rem['value']:+.4f}"
                     + (f" = {rem['nonideal_terms']:+.4f} named non-ideal terms (simulated ideal ratio "
                        f"{rem['simulated_ideal_ratio']:.4f}) {rem['per_event_costs']:+.4f} per-event costs"
                        if "nonideal_terms" in rem else "") + f": {rem['what']}")
    return lines


def run(args: argparse.Namespace) -> int:
    from sim.report.output import write_json
    from sim.errors import ParameterError
    from sim.validation.compare import run_validation

    if args.samples is not None and args.samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {args.samples}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ParameterError(None, "--plot", f"expected a .png file name, got {args.plot!r}")
    doc = run_validation(args.trace, args.arch, args.ideal, args.samples, args.energy, args.overrides,
                         progress=not args.quiet)
    if args.json != "-":
        sys.stdout.write(format_text(doc, args.all_terms))
    if args.json:
        write_json(doc, args.json)
    if args.plot:
        from sim.plots.validation import plot_validation
        plot_validation(doc, args.plot)
    return 0 if doc["ok"] else EXIT_DISAGREE
