"""Validation: the simulator's counted events against the per-architecture closed forms.

For each architecture and mode, a trace is replayed (counted) and the closed form is
evaluated with the same spec, the same samples and the trace's real per-layer statistics
(:func:`sim.analytic.layer_stats.trace_event_stats`). Every ledger term (layer ×
``component.action``) is compared with the **ideal** closed form (everything resident, no
spill, one fold, one configuration). The residual ``counted − ideal`` is then attributed to
the named non-ideal terms of the full closed form (``closed_form.NONIDEAL_CAUSES``: buffer
spills, weights re-fetched, folds, placement hops, paging); whatever the named causes leave
over is ``unexplained`` and would be a bug in the simulator or the closed form.

``ideal=True`` forces the closed forms' assumptions onto the simulator's spec
(:func:`ideal_overrides`), so every term must agree exactly (integers, ``==``).

Cycles are not predicted by any closed form: the simulated cycles and stall cycles (NoC,
port and bank contention) are reported as information.
"""

from __future__ import annotations

from sim.arch.energy import PAPER_V1_TABLE as DEFAULT_ENERGY
from sim.arch.registry import CAUSES

SCHEMA = "snn-energy-validation/1"


def ideal_overrides(spec, layers, T: int, trace_bits: int, spike_input: bool = False) -> list[str]:
    """``--set`` overrides that make ``spec`` satisfy its closed form's ideal assumptions for
    these layers (nothing that is already large enough is shrunk); ``spike_input``: the
    trace's input is stored spikes (rate or event encoding)."""
    from sim.arch.registry import arch_kind

    # every layer, passthroughs included: a policy resolves the graph through a flatten
    return arch_kind(spec.architecture).closed_form_module().ideal_overrides(spec, layers, T, trace_bits, spike_input)


# --- comparing one run ------------------------------------------------------------------------
def _rel(residual, predicted) -> float | None:
    """Residual over the prediction; None when the prediction is 0 and the count is not."""
    if residual == 0:
        return 0.0
    return residual / predicted if predicted else None


def _num(x):
    """An exact int for integral values (measured statistics give integer counts), else a float."""
    return int(x) if float(x).is_integer() else float(x)


def compare_run(report: dict, pred, table) -> dict:
    """One (architecture, mode): every term's counted value, ideal prediction, residual, its
    causes and what they leave unexplained; totals; energies (pJ) with energy per cause;
    simulated cycles and stalls."""
    from sim.report.pricing import price
    from sim.report.totals import WORKLOAD_TOTALS, hardware_totals

    comps = report["arch"]["components"]
    classes = {n: c["class"] for n, c in comps.items()}
    rows, ideal_counts, energy_causes = [], {}, {}
    ideal_totals = dict.fromkeys(report["totals"], 0)
    for lr, lp in zip(report["layers"], pred.layers):
        if lr["name"] != lp.name:
            raise ValueError(f"layer order differs: report {lr['name']}, closed form {lp.name}")
        nonideal = lp.nonideal_terms()
        for key in sorted(set(lr["counts"]) | set(lp.ideal_counts)):
            counted = lr["counts"].get(key, 0)
            predicted = _num(lp.ideal_counts.get(key, 0))
            causes = {c: _num(v) for c, v in nonideal.get(key, {}).items()}
            residual = counted - predicted
            unexplained = residual - sum(causes.values())
            rows.append({"layer": lr["name"], "term": key, "counted": counted, "predicted": predicted,
                         "residual": residual, "relative_residual": _rel(residual, predicted),
                         "causes": causes, "unexplained": unexplained})
            ideal_counts[key] = ideal_counts.get(key, 0) + predicted
            bits = lr["bits"].get(key, lp.bits.get(key))
            for c, v in causes.items():
                energy_causes[c] = energy_causes.get(c, 0.0) + price({key: v}, {key: bits}, comps, table)[key]
        for k, v in lp.totals.items():
            if k in WORKLOAD_TOTALS:
                ideal_totals[k] += v
        for k, v in hardware_totals(lp.ideal_counts, lp.bits, classes).items():
            ideal_totals[k] += v
    totals = {k: {"counted": c, "predicted": _num(ideal_totals[k]), "residual": c - _num(ideal_totals[k]),
                  "relative_residual": _rel(c - ideal_totals[k], ideal_totals[k])}
              for k, c in report["totals"].items()}
    e_count, e_ideal = report["energy_pj"]["total"], pred.ideal_energy_pj
    cause_summary: dict = {}
    for r in rows:
        for c, v in r["causes"].items():
            s = cause_summary.setdefault(c, {"terms": 0, "count": 0, "energy_pj": energy_causes.get(c, 0.0),
                                             "what": CAUSES.get(c, "")})
            s["terms"] += 1
            s["count"] += v
    nonzero = [r for r in rows if r["residual"] != 0]
    return {
        "arch": report["arch"]["name"], "architecture": report["arch"]["architecture"],
        "mode": report["mode"], "samples": report["samples"],
        "terms": rows,
        "totals": totals,
        "energy_pj": {"counted": e_count, "predicted": e_ideal, "residual": e_count - e_ideal,
                      "relative_residual": _rel(e_count - e_ideal, e_ideal),
                      "causes": energy_causes,
                      "unexplained": e_count - e_ideal - sum(energy_causes.values())},
        "causes": cause_summary,
        "summary": {"terms": len(rows), "exact": len(rows) - len(nonzero), "with_residual": len(nonzero),
                    "unexplained": sum(1 for r in rows if r["unexplained"] != 0)},
        "cycles": {"total": report["cycles"], "stall_cycles": report["stall_cycles"],
                   "by_layer": {l["name"]: l["cycles"] for l in report["layers"]},
                   "note": "not predicted by the closed forms; stalls are contention (ports, banks, links)"},
    }


def run_validation(trace_path: str, arch: str = "all", ideal: bool = False, samples: int | None = None,
                   energy: str = DEFAULT_ENERGY, overrides: list[str] | None = None,
                   progress: bool = True, paper: bool = True, map_policy: str = "spec",
                   objective: str = "energy", workers: int = 1, scheduler: str | None = None) -> dict:
    """The validation document of one trace (schema :data:`SCHEMA`). ``ok`` is False when a
    term disagrees: with ``ideal``, any non-zero residual; otherwise any unexplained one.
    ``map_policy`` ``best``: each (architecture, mode) is validated on the mapping the mapper
    chooses for it (after the ``ideal`` overrides), reported per run under ``mapping``.
    ``workers`` / ``scheduler``: the replays count on Dask in chunks of samples, every
    (architecture, mode) of a chunk in one pass over its samples (sim.replay.parallel)."""
    from sim.arch.registry import arch_kind, architecture_names
    from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
    from sim.arch.energy import load_energy_table
    from sim.arch.spec import load_arch_spec
    from sim.replay import check_samples, mapped_reports, trace_info
    from sim.trace import open_trace

    overrides = list(overrides or [])
    table = load_energy_table(energy)
    runs, reports, specs, chosen = [], [], {}, []
    with open_trace(trace_path) as tr:
        n = check_samples(tr, samples)
        stats = trace_event_stats(tr, n)
        t_bits = trace_activation_bits(tr)
        for name in architecture_names(arch):
            base = load_arch_spec(name, overrides)
            forced = ideal_overrides(base, tr.layers, tr.T, t_bits, tr.meta.spike_input) if ideal else []
            spec = base.with_overrides(forced)
            specs[spec.name] = {"architecture": spec.architecture, "forced_overrides": forced}
            chosen.append((spec, forced))
        replayed, pairs = mapped_reports(tr, [s for s, _ in chosen], ["snn", "ann"], table, n, map_policy, objective,
                                         progress, workers=workers, scheduler=scheduler, stats=stats)
        info = trace_info(tr, n)
        forced_of = {id(s): f for s, f in chosen}
        for rep, (spec, _), base in zip(replayed, pairs, [s for s, _ in chosen for _ in ("snn", "ann")]):
            forced = forced_of[id(base)]
            cf = arch_kind(spec.architecture).closed_form_module()
            pred = cf.predict(spec, tr.layers, stats, tr.T, rep["mode"], t_bits, table)
            run = compare_run(rep, pred, table)
            run["forced_overrides"] = forced
            if "mapping" in rep:
                run["mapping"] = rep["mapping"]
            bad = run["summary"]["with_residual"] if ideal else run["summary"]["unexplained"]
            run["agree"] = bad == 0
            runs.append(run)
            reports.append(rep)
        doc = {"schema": SCHEMA, "trace": info, "ideal": ideal, "map": map_policy, "energy_table": table.name,
               "overrides": overrides, "archs": specs,
               "rule": ("--ideal: every counted term must equal the ideal closed form exactly" if ideal else
                        "every residual (counted - ideal closed form) must be explained by named causes"),
               "runs": runs, "ratios": _ratios(runs), "ok": all(r["agree"] for r in runs)}
        if paper:
            from sim.validation.paper import V1_TABLE, paper_comparison

            nonideal = ({(r["architecture"], r["mode"]): sum(r["energy_pj"]["causes"].values()) for r in runs}
                        if table.name == V1_TABLE else None)
            doc["paper_v1"] = paper_comparison(tr, stats, reports, nonideal)
    return doc


def _ratios(runs: list[dict]) -> dict:
    """E_SNN/E_ANN per architecture: counted, and predicted by the ideal closed form."""
    e = {(r["arch"], r["mode"]): r["energy_pj"] for r in runs}
    out = {}
    for (a, m), v in e.items():
        if m == "snn" and (a, "ann") in e:
            w = e[(a, "ann")]
            out[a] = {"counted": v["counted"] / w["counted"] if w["counted"] else None,
                      "ideal_closed_form": v["predicted"] / w["predicted"] if w["predicted"] else None}
    return out
