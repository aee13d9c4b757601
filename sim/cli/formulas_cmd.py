"""``run_sim.py formulas``: the paper's v1 closed form — break-even sparsity s*(T) per
architecture, E_SNN/E_ANN at a given sparsity, and the paper's 69 % inconsistency. With
``--trace``, the per-architecture closed forms instead, evaluated with the trace's real
per-layer statistics (:mod:`sim.studies.closed_forms`)."""

from __future__ import annotations

import argparse
import math
import sys

from sim.cli import options

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
    options.add_energy(p)
    p.add_argument("--qnn", action="store_true",
                   help="also compare with a QNN of ceil(log2(T+1))-bit activations (later paper versions)")
    p.add_argument("--qnn-rho", type=float, default=None, metavar="RHO",
                   help="non-zero fraction of the QNN's activations (default: the table's rho)")
    options.add_json(p)
    options.add_plot(p, "draw the break-even curves s*(T) to a PNG")
    g = p.add_argument_group("per-architecture closed forms (with --trace)")
    g.add_argument("--trace", metavar="TRACE",
                   help="evaluate the per-architecture closed forms with this trace's per-layer counts "
                        "(JSON under 'closed_form'); SNN, the spec's ANN twin and the QNN twin")
    options.add_arch(g)
    options.add_overrides(g)
    options.add_samples(g)
    g.add_argument("--ideal", action="store_true",
                   help="assume every layer's weights, membranes and events fit in the buffer")
    p.set_defaults(func=run)

#: Options of the v1 model that mean nothing with --trace, and options only --trace uses.
V1_ONLY = ("T", "sparsity", "qnn_rho", "plot")
TRACE_ONLY = {"arch": "memory_hierarchy", "overrides": [], "samples": None, "ideal": False}


def _check_fraction(value: float | None, option: str, low_open: bool = False) -> None:
    from sim.errors import ParameterError

    if value is None:
        return
    ok = math.isfinite(value) and (0 < value if low_open else 0 <= value) and value <= 1
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ParameterError(None, option, f"must be in {interval}, got {value}")


def _flag(name: str) -> str:
    return "--" + {"overrides": "set", "qnn_rho": "qnn-rho"}.get(name, name)


def run_trace(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.report.output import Outputs
    from sim.studies import closed_forms as formulas_trace

    for name in V1_ONLY:
        if getattr(args, name) is not None:
            raise ParameterError(None, _flag(name), "is for the paper's v1 model; not used with --trace")
    options.check_positive(args.samples, "--samples")
    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        doc = formulas_trace.compute(args.trace, args.arch, args.overrides, args.energy, args.samples,
                                     args.ideal)
        if args.json != "-":
            sys.stdout.write(formulas_trace.format_text(doc))
        if js:
            out.json(js, doc)
    return 0


def run(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.report.output import Outputs

    if args.trace:
        return run_trace(args)
    for name, default in TRACE_ONLY.items():
        if getattr(args, name) != default:
            raise ParameterError(None, _flag(name), "only used with --trace")
    Ts = options.parse_T("1-16" if args.T is None else args.T)
    _check_fraction(args.sparsity, "--sparsity")
    _check_fraction(args.qnn_rho, "--qnn-rho", low_open=True)
    if args.qnn_rho is not None and not args.qnn:
        raise ParameterError(None, "--qnn-rho", "only meaningful with --qnn")
    from sim.studies.formulas import format_text, paper_v1_table

    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        png, _ = options.plot_destination(out, args.plot)
        res = paper_v1_table(Ts, args.sparsity, args.energy, args.qnn, args.qnn_rho)
        if args.json != "-":
            sys.stdout.write(format_text(res, args.qnn))
        if js:
            out.json(js, res)
        if png:
            from sim.plots.formulas import plot

            plot(res, out.temp(png), args.qnn)
    return 0
