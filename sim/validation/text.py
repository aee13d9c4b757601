"""Terminal text of a validation document (:func:`sim.validation.compare.run_validation`)."""

from __future__ import annotations


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
        lines.append("  totals: " + "; ".join(
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
