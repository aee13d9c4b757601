"""``run_sim.py import-nir GRAPH.nir (--inputs X.npy | --dataset NAME) --T T --out TRACE``: run a NIR graph step by
step with the project's reference dynamics and write an SNN-only trace (needs the ``nir``
package, not torch; docs/nir.md)."""

from __future__ import annotations

import argparse

from sim.cli import inputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import-nir", help="write an SNN-only trace from a NIR graph (needs the nir package, not torch)",
        description="Read GRAPH.nir (Input, Output, Conv2d, Linear, Affine, AvgPool2d, SumPool2d, Flatten, IF, "
                    "LIF, CubaLIF nodes and their edges; several edges into a neuron are a residual add), run it "
                    "T steps on each input (direct encoding: the same analog input every step) with forward-Euler "
                    "dynamics of step --dt, reset to 0 on a spike, and write an SNN-only trace (twin_levels "
                    "derived, int8 weights per tensor). An unsupported node is refused with one line naming it. "
                    "See docs/nir.md.")
    p.add_argument("graph", metavar="GRAPH.nir", help="NIR graph file (nir.write)")
    p.add_argument("--T", type=int, required=True, help="time steps per sample")
    p.add_argument("--out", required=True, help="output trace (.h5)")
    inputs.add_input_options(p, "import")
    p.add_argument("--dt", type=float, default=None,
                   help="time step of the forward-Euler discretisation in seconds (default 1e-4, the dt "
                        "snnTorch's export_to_nir assumes): leak factor 1 - dt/tau, input gain dt*r/tau")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import math

    from sim.errors import ParameterError
    from sim.record.nir_import import DEFAULT_DT, import_nir, require_nir
    from sim.report.output import check_destination

    require_nir()
    if args.T < 1:
        raise ParameterError(None, "--T", f"must be >= 1, got {args.T}")
    dt = DEFAULT_DT if args.dt is None else args.dt
    if not (math.isfinite(dt) and dt > 0):
        raise ParameterError(None, "--dt", f"must be a finite number > 0, got {args.dt}")
    check_destination("--out", args.out)
    x, labels, dataset = inputs.load_inputs(args)
    res = import_nir(args.graph, x, args.T, args.out, dt=dt, labels=labels, dataset=dataset)
    kinds = ", ".join(f"{l.name}:{l.kind}" for l in res.layers)
    print(f"wrote {res.path}: {res.samples} samples, T={args.T}, {len(res.layers)} layers ({kinds})")
    return 0
