"""``run_sim.py formulas``: the paper's v1 closed form — break-even sparsity s*(T) per
architecture, E_SNN/E_ANN at a given sparsity, and the paper's 69 % inconsistency. With
``--trace``, the per-architecture closed forms instead, evaluated with the trace's real
per-layer statistics (:mod:`sim.cli.formulas_trace`)."""

from __future__ import annotations

import argparse
import math
import sys

# The v1 abstract's claim: 69 % of the ANN's energy at 94.18 % sparsity, T = 6. The v1
# model's own numbers (Table 5) give 0.78 there; we show both rather than pick one.
ABSTRACT_CLAIM = {"T": 6, "ratio": 0.69, "sparsity": 0.9418}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "formulas", help="closed-form (paper v1) break-even sparsity and energy ratios",
        description="Evaluate the v1 closed-form model of Yan, Bai & Wong (arXiv:2409.08290) "
                    "for memory_hierarchy and spatial_dataflow: the break-even sparsity s*(T) "
                    "above which the SNN costs less than the 8-bit ANN, and E_SNN/E_ANN at a "
                    "given sparsity. With --trace, evaluate instead the per-architecture closed "
                    "forms (every count per layer, and its energy) with the trace's real "
                    "per-layer spike counts. Formulas and assumptions: docs/formulas.md.")
    p.add_argument("--T", dest="T", default=None, metavar="RANGE",
                   help="time windows: a range '1-16', a list '2,4,6', or both '1-4,8' (default 1-16)")
    p.add_argument("--sparsity", type=float, default=None, metavar="S",
                   help="also give E_SNN/E_ANN at this sparsity (0..1)")
    p.add_argument("--energy", default="paper_v1_45nm", metavar="TABLE",
                   help="energy table: a name under arch_specs/energy/ or a path (default paper_v1_45nm)")
    p.add_argument("--qnn", action="store_true",
                   help="also compare with a QNN of ceil(log2(T+1))-bit activations (later paper versions)")
    p.add_argument("--qnn-rho", type=float, default=None, metavar="RHO",
                   help="non-zero fraction of the QNN's activations (default: the table's rho)")
    p.add_argument("--json", metavar="FILE|-", help="also write the result as JSON ('-' = stdout only)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the break-even curves s*(T) to a PNG")
    g = p.add_argument_group("per-architecture closed forms (with --trace)")
    g.add_argument("--trace", metavar="TRACE",
                   help="evaluate the per-architecture closed forms with this trace's per-layer counts "
                        "(JSON under 'closed_form'); SNN, the spec's ANN twin and the QNN twin")
    g.add_argument("--arch", default="memory_hierarchy",
                   help="arch spec name or YAML path, or 'all' (default memory_hierarchy)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override an arch-spec field, as for replay (repeatable)")
    g.add_argument("--samples", type=int, default=None, help="use the first N samples (default all)")
    g.add_argument("--ideal", action="store_true",
                   help="assume every layer's weights, membranes and events fit in the buffer")
    p.set_defaults(func=run)

#: Options of the v1 model that mean nothing with --trace, and options only --trace uses.
V1_ONLY = ("T", "sparsity", "qnn_rho", "plot")
TRACE_ONLY = {"arch": "memory_hierarchy", "overrides": [], "samples": None, "ideal": False}


def parse_T(text: str) -> list[int]:
    """'1-16' -> 1..16, '2,4,6' -> [2, 4, 6]; sorted, without repeats. ParameterError if bad."""
    from sim.errors import ParameterError

    values: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ParameterError(None, "--T", f"expected a range like 1-16 or a list like 2,4,6, got {text!r}") from None
        if a < 1 or b < 1:
            raise ParameterError(None, "--T", f"time windows must be >= 1, got {part.strip()!r}")
        if b < a:
            raise ParameterError(None, "--T", f"empty range {part.strip()!r}")
        values.update(range(a, b + 1))
    return sorted(values)


def _check_fraction(value: float | None, option: str, low_open: bool = False) -> None:
    from sim.errors import ParameterError

    if value is None:
        return
    ok = math.isfinite(value) and (0 < value if low_open else 0 <= value) and value <= 1
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ParameterError(None, option, f"must be in {interval}, got {value}")


def _rows(arch, c, Ts, sparsity, baseline, qnn_rho) -> dict:
    from sim.analytic import paper_v1 as v1

    out: dict = {"break_even": []}
    for T in Ts:
        be = v1.break_even(arch, c, T, baseline, qnn_rho)
        row = {"T": T}
        if baseline == "qnn":
            row["bits"] = v1.qnn_bits(T)
        row.update({"s_star": be.s_star, "attainable": be.attainable,
                    "e_baseline_pj": be.e_baseline_pj, "e_snn_fixed_pj": be.snn_fixed_pj,
                    "e_snn_per_spike_rate_pj": be.snn_per_rate_pj})
        out["break_even"].append(row)
    if sparsity is not None:
        out["ratio"] = []
        for T in Ts:
            snn = v1.snn_energy(arch, c, sparsity, T)
            base = v1.baseline_energy(arch, c, T, baseline, qnn_rho)
            row = {"T": T, "bits": v1.qnn_bits(T)} if baseline == "qnn" else {"T": T}
            row.update({"sparsity": sparsity, "ratio": snn.total / base.total,
                        "e_snn_pj": snn.as_dict(), "e_baseline_pj": base.as_dict()})
            out["ratio"].append(row)
    return out


def compute(Ts: list[int], sparsity: float | None, table_name: str, qnn: bool = False,
            qnn_rho: float | None = None) -> dict:
    """The formulas result as a JSON-ready dict (energies in pJ per synapse per inference)."""
    from sim.analytic import paper_v1 as v1
    from sim.arch.energy import load_energy_table

    table = load_energy_table(table_name)
    c = v1.V1Constants.from_table(table)
    result: dict = {
        "energy_table": table.name,
        "constants": {"e_add_pj": c.e_add, "e_mul_pj": c.e_mul, "e_mem_pj": c.e_mem,
                      "e_dram_pj": c.e_dram, "rho": c.rho, "R": c.R, "N": c.N,
                      "c_syn_pj": c.c_syn, "datapath_bits": c.datapath_bits},
        "paper_v1": {a: {"e_ann_pj": v1.ann_energy(a, c).as_dict(),
                         **_rows(a, c, Ts, sparsity, "ann8", None)} for a in v1.ARCHITECTURES},
    }
    if qnn:
        result["paper_v1_qnn"] = {a: _rows(a, c, Ts, sparsity, "qnn", qnn_rho) for a in v1.ARCHITECTURES}
        result["qnn_baseline"] = {
            "rho": c.rho if qnn_rho is None else qnn_rho,
            "pricing": "v1 ANN terms with ceil(log2(T+1))-bit activations: the activation access "
                       "and the multiply scale by bits/datapath_bits; weights, partial sums, "
                       "DRAM and the add are unchanged"}
    T0, r0, s0 = ABSTRACT_CLAIM["T"], ABSTRACT_CLAIM["ratio"], ABSTRACT_CLAIM["sparsity"]
    result["abstract_claim"] = {
        **ABSTRACT_CLAIM,
        "model_ratio_at_claimed_sparsity": {a: v1.ratio(a, c, s0, T0) for a in v1.ARCHITECTURES},
        "model_sparsity_for_claimed_ratio": {a: v1.sparsity_for_ratio(a, c, T0, r0) for a in v1.ARCHITECTURES},
    }
    return result


def format_text(res: dict, qnn: bool) -> str:
    archs = list(res["paper_v1"])
    width = max(len(a) for a in archs) + 2
    lines = [f"Paper v1 closed-form model, energy table {res['energy_table']} "
             "(pJ per synapse per inference)"]
    lines += [f"  E_ANN (8-bit, zero-skipping) {a}: {res['paper_v1'][a]['e_ann_pj']['total']:.3f} pJ"
              for a in archs]

    def table(title: str, key: str, value: str, section: str) -> None:
        lines.extend(["", title])
        head = f"{'T':>4}" + ("  bits" if section == "paper_v1_qnn" else "")
        lines.append(head + "".join(f"{a:>{width}}" for a in archs))
        for i, row in enumerate(res[section][archs[0]][key]):
            cells = "".join(_cell(res[section][a][key][i][value], width, value == "s_star")
                            for a in archs)
            lines.append(f"{row['T']:>4}" + (f"{row['bits']:>6}" if "bits" in row else "") + cells)

    table("Break-even sparsity s*(T): the SNN costs less than the ANN when s > s*",
          "break_even", "s_star", "paper_v1")
    if "ratio" in res["paper_v1"][archs[0]]:
        s = res["paper_v1"][archs[0]]["ratio"][0]["sparsity"]
        table(f"E_SNN / E_ANN at s = {s:g}", "ratio", "ratio", "paper_v1")
    if qnn:
        table(f"Break-even sparsity against a QNN with ceil(log2(T+1))-bit activations "
              f"(rho = {res['qnn_baseline']['rho']:g})", "break_even", "s_star", "paper_v1_qnn")
        if "ratio" in res["paper_v1_qnn"][archs[0]]:
            table("E_SNN / E_QNN at the same sparsity", "ratio", "ratio", "paper_v1_qnn")
    if any(r["T"] == ABSTRACT_CLAIM["T"] for r in res["paper_v1"][archs[0]]["break_even"]):
        ac = res["abstract_claim"]
        lines += ["", f"Note (inconsistency in the paper): the v1 abstract quotes {ac['ratio']:.0%} of "
                      f"the ANN's energy at s = {ac['sparsity']:.2%}, T = {ac['T']}; the v1 model gives "
                      + ", ".join(f"{a} {ac['model_ratio_at_claimed_sparsity'][a]:.3f}" for a in archs)
                      + " there, and reaches 0.69 only at s = "
                      + ", ".join(f"{ac['model_sparsity_for_claimed_ratio'][a]:.4f} ({a})" for a in archs)
                      + "."]
    return "\n".join(lines) + "\n"


def _cell(x: float, width: int, is_sparsity: bool) -> str:
    # s* > 1: even a silent SNN costs more than the baseline, so no sparsity breaks even.
    return f"{'never':>{width}}" if is_sparsity and x > 1 else f"{x:>{width}.4f}"


def plot(res: dict, dest: str, qnn: bool) -> None:
    """Break-even curves s*(T), one per architecture (QNN baseline dashed), to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.report.output import atomic_path

    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for section, style, label in (("paper_v1", "-o", "vs 8-bit ANN"), ("paper_v1_qnn", "--s", "vs QNN")):
        if section == "paper_v1_qnn" and not qnn:
            continue
        for i, a in enumerate(res["paper_v1"]):
            rows = [r for r in res[section][a]["break_even"] if r["attainable"]]
            ax.plot([r["T"] for r in rows], [r["s_star"] for r in rows], style, color=f"C{i}",
                    label=f"{a} {label}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if "ratio" in res["paper_v1"][next(iter(res["paper_v1"]))]:
        s = res["paper_v1"][next(iter(res["paper_v1"]))]["ratio"][0]["sparsity"]
        ax.axhline(s, color="grey", linewidth=0.8, linestyle=":", label=f"s = {s:g}")
    ax.set_xlabel("time window T")
    ax.set_ylabel("break-even sparsity s*")
    ax.set_title(f"SNN cheaper above the curve (paper v1, {res['energy_table']})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _flag(name: str) -> str:
    return "--" + {"overrides": "set", "qnn_rho": "qnn-rho"}.get(name, name)


def run_trace(args: argparse.Namespace) -> int:
    from sim.cli import formulas_trace
    from sim.report.output import write_json
    from sim.errors import ParameterError

    for name in V1_ONLY:
        if getattr(args, name) is not None:
            raise ParameterError(None, _flag(name), "is for the paper's v1 model; not used with --trace")
    if args.samples is not None and args.samples < 1:
        raise ParameterError(None, "--samples", f"must be >= 1, got {args.samples}")
    doc = formulas_trace.compute(args.trace, args.arch, args.overrides, args.energy, args.samples,
                                 args.ideal)
    if args.json != "-":
        sys.stdout.write(formulas_trace.format_text(doc))
    if args.json:
        write_json(doc, args.json)
    return 0


def run(args: argparse.Namespace) -> int:
    from sim.report.output import write_json
    from sim.errors import ParameterError

    if args.trace:
        return run_trace(args)
    for name, default in TRACE_ONLY.items():
        if getattr(args, name) != default:
            raise ParameterError(None, _flag(name), "only used with --trace")
    Ts = parse_T(args.T or "1-16")
    _check_fraction(args.sparsity, "--sparsity")
    _check_fraction(args.qnn_rho, "--qnn-rho", low_open=True)
    if args.qnn_rho is not None and not args.qnn:
        raise ParameterError(None, "--qnn-rho", "only meaningful with --qnn")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ParameterError(None, "--plot", f"expected a .png file name, got {args.plot!r}")
    res = compute(Ts, args.sparsity, args.energy, args.qnn, args.qnn_rho)
    if args.json != "-":
        sys.stdout.write(format_text(res, args.qnn))
    if args.json:
        write_json(res, args.json)
    if args.plot:
        plot(res, args.plot, args.qnn)
    return 0
