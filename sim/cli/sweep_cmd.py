"""``run_sim.py sweep``: a resumable parameter sweep on Dask; ``plot-sweep``: its plots."""

from __future__ import annotations

import argparse
import sys

from sim.cli import options


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="sweep arch-spec fields (buffer sizes, ...) over a grid, on Dask, resumable",
        description="Replay a trace at every point of a Cartesian grid of arch-spec fields "
                    "(and trace.T / trace.rate, which make synthetic traces of the trace's model "
                    "shape). Points run on a Dask LocalCluster, or on a running scheduler with "
                    "--scheduler. Each point is written to OUT/points/ when it finishes; rerunning "
                    "the same command skips finished points and recomputes damaged or failed ones. "
                    "Exit status 1 when a point failed (docs/sweeps.md).")
    options.add_trace(p, nargs="?")
    options.add_arch(p, allow_all=False)
    p.add_argument("--grid", action="append", default=[], metavar="KEY.PATH=V1,V2,...",
                   help="a swept field and its values (repeatable: the grid is their product)")
    options.add_mode(p)
    options.add_energy(p)
    options.add_samples(p, what="replay the first N samples (default all)")
    options.add_map(p, default="spec")
    p.add_argument("--out", help="output directory")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask scheduler (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    p.add_argument("--keep-going", action="store_true",
                   help="after a point fails, run the remaining points (default: start no new point "
                        "after the first failure)")
    p.add_argument("--list-params", action="store_true", help="list the sweepable fields of --arch and exit")
    options.add_quiet(p)
    p.set_defaults(func=run)

    q = sub.add_parser("plot-sweep", help="plot a sweep directory (energy by component, cycles, Pareto front)",
                       description="Write PNGs into DIR/plots: energy by component and cycles against "
                                   "each swept field, SNN against ANN twin, and the energy-latency Pareto front. "
                                   "A partial sweep plots its finished points and says how many are missing; "
                                   "a sweep with no finished point is an error (exit 2).")
    q.add_argument("dir", help="a directory written by `sweep`")
    q.set_defaults(func=run_plot)


def run(args: argparse.Namespace) -> int:
    from sim.errors import ParameterError
    from sim.studies.sweep import TRACE_KEYS, execute_sweep, summary_lines, sweepable_params

    if args.list_params:
        for path, value in sweepable_params(args.arch):
            print(f"{path}\t{value}")
        for key in TRACE_KEYS:
            print(f"{key}\t(synthetic traces of the trace's model shape)")
        return 0
    if not args.trace or not args.out:
        raise ParameterError(None, "sweep", "needs TRACE and --out DIR (or --list-params)")
    manifest = execute_sweep(args.trace, args.arch, args.grid, options.modes(args), args.energy, args.samples,
                             args.out, args.scheduler, args.workers, progress=not args.quiet,
                             keep_going=args.keep_going, note=_stderr, map_policy=args.map,
                             objective=args.objective)
    for line in summary_lines(manifest, args.out):
        _stderr(line)
    return 0 if manifest["last_run"]["status"] == "complete" else 1


def run_plot(args: argparse.Namespace) -> int:
    from sim.plots.sweep import plot_sweep

    paths, note = plot_sweep(args.dir)
    for path in paths:
        print(path)
    if note:
        _stderr(note)
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
