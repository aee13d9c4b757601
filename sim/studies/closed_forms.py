"""The per-architecture closed forms evaluated with a trace's real per-layer statistics
(``run_sim.py formulas --trace TRACE``) (spikes, synaptic events, non-zero activations).

For each architecture it predicts three runs on the same hardware: the SNN, the ANN twin as
the spec defines it (shipped: the paper's best-case 8-bit ANN with zero-skipping) and the
QNN twin with ceil(log2(T+1))-bit activations (the later paper versions' baseline).
"""

from __future__ import annotations

ASSUMPTIONS = (
    "counts are summed over the samples evaluated, like a replay's",
    "statistics (S, E, F, nnz, M) are measured from the trace with numpy, not the simulator's kernels",
    "counts do not depend on timing: no contention is assumed and none is needed",
    "residency 'spec': the arch spec's buffer and residency rules (exact); 'ideal': every layer's "
    "weights, membranes and events resident, nothing spilled (the non-ideal terms set to zero)",
    "energy: each count priced with the energy table like the report (sim.report.pricing)",
)


def _spec_arches(arch: str) -> list[str]:
    from sim.arch.registry import architecture_names

    return architecture_names(arch)


def compute(trace_path: str, arch: str, overrides: list[str], energy: str,
            samples: int | None = None, ideal: bool = False) -> dict:
    """The ``closed_form`` JSON section (and the energy table's name) for one trace."""
    from sim.arch.registry import arch_kind
    from sim.analytic.layer_stats import trace_activation_bits, trace_event_stats
    from sim.arch.energy import load_energy_table
    from sim.arch.spec import load_arch_spec
    from sim.errors import ParameterError
    from sim.trace import open_trace, qt_activation_bits

    table = load_energy_table(energy)
    out: dict = {"assumptions": list(ASSUMPTIONS), "residency": "ideal" if ideal else "spec",
                 "architectures": {}}
    with open_trace(trace_path) as tr:
        n = tr.n_samples if samples is None else samples
        if not 1 <= n <= tr.n_samples:
            raise ParameterError(tr.path, "--samples", f"must be in 1..{tr.n_samples}, got {n}")
        m = tr.meta
        out["trace"] = {"path": tr.path, "model": m.model, "dataset": m.dataset, "T": m.T,
                        "samples": n, "synthetic": m.synthetic}
        stats = trace_event_stats(tr, n)
        out["stats"] = [s.as_dict() for s in stats]
        t_bits, qnn_bits = trace_activation_bits(tr), qt_activation_bits(tr.T)
        for name in _spec_arches(arch):
            spec = load_arch_spec(name, overrides)
            cf = arch_kind(spec.architecture).closed_form_module()
            qspec = load_arch_spec(name, [*overrides, f"data.ann_activation_bits={qnn_bits}"])
            runs = {"snn": cf.predict(spec, tr.layers, stats, tr.T, "snn", t_bits, table, ideal),
                    "ann": cf.predict(spec, tr.layers, stats, tr.T, "ann", t_bits, table, ideal),
                    "qnn": cf.predict(qspec, tr.layers, stats, tr.T, "ann", t_bits, table, ideal)}
            e = {k: r.energy_pj for k, r in runs.items()}
            out["architectures"][spec.name] = {
                "architecture": spec.architecture,
                "baselines": {"ann": f"{runs['ann'].ann_activation_bits}-bit activations, "
                                     f"zero_skipping={spec.mapping.get('zero_skipping', True)} (the arch spec)",
                              "qnn": f"{qnn_bits}-bit activations = ceil(log2(T+1)), same hardware"},
                **{k: r.as_dict() for k, r in runs.items()},
                "ratios": {"snn_over_ann": e["snn"] / e["ann"] if e["ann"] else None,
                           "snn_over_qnn": e["snn"] / e["qnn"] if e["qnn"] else None},
            }
    return {"energy_table": table.name, "closed_form": out}


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.3g}"


def _ratio(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_text(doc: dict) -> str:
    cf = doc["closed_form"]
    tr = cf["trace"]
    lines = []
    for name, a in cf["architectures"].items():
        lines.append(f"Closed form {a['architecture']} (spec {name}), trace {tr['model']} T={tr['T']}, "
                     f"{tr['samples']} sample(s), energy table {doc['energy_table']}, "
                     f"residency {cf['residency']} (pJ summed over samples)")
        lines.append(f"  baselines: ANN {a['baselines']['ann']}; QNN {a['baselines']['qnn']}")
        head = (f"{'layer':<9}{'E_SNN':>10}{'E_ANN':>10}{'E_QNN':>10}{'SNN/ANN':>9}{'spikes in':>10}"
                f"{'syn ev':>9}{'spikes out':>11}{'ANN MACs':>10}{'SNN DRAM b':>11}{'ANN DRAM b':>11}")
        lines += [head, "-" * len(head)]
        for s, q, nq, st in zip(a["snn"]["layers"], a["ann"]["layers"], a["qnn"]["layers"], cf["stats"]):
            t, ta = s["totals"], q["totals"]
            r = s["energy_pj"] / q["energy_pj"] if q["energy_pj"] else float("nan")
            lines.append(f"{s['name']:<9}{_si(s['energy_pj']):>10}{_si(q['energy_pj']):>10}"
                         f"{_si(nq['energy_pj']):>10}{r:>9.3f}{_si(st['spikes_in']):>10}"
                         f"{_si(st['synaptic_events']):>9}{_si(st['spikes_out']):>11}{_si(ta['macs']):>10}"
                         f"{_si(t['dram_read_bits'] + t['dram_write_bits']):>11}"
                         f"{_si(ta['dram_read_bits'] + ta['dram_write_bits']):>11}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<9}{_si(a['snn']['energy_pj']):>10}{_si(a['ann']['energy_pj']):>10}"
                     f"{_si(a['qnn']['energy_pj']):>10}   E_SNN/E_ANN {_ratio(a['ratios']['snn_over_ann'])}, "
                     f"E_SNN/E_QNN {_ratio(a['ratios']['snn_over_qnn'])}")
        extra: dict = {}  # (mode, layer, cause) -> [(count key, value)]
        for mode in ("snn", "ann"):
            for l in a[mode]["layers"]:
                for key, causes in l["nonideal_terms"].items():
                    for cause, v in causes.items():
                        extra.setdefault((mode, l["name"], cause), []).append((key, v))
        if extra:
            lines.append("non-ideal terms (zero when everything is resident):")
            lines += [f"  {mode.upper()} {layer} {cause}: " + ", ".join(f"{k} +{_si(v)}" for k, v in kv)
                      for (mode, layer, cause), kv in extra.items()]
            lines.append(f"  ideal energy: SNN {_si(a['snn']['ideal_energy_pj'])} pJ, "
                         f"ANN {_si(a['ann']['ideal_energy_pj'])} pJ")
        lines.append("")
    return "\n".join(lines)
