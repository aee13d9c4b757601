"""``run_sim.py replay TRACE --arch NAME``: count every access and op, price, report."""

from __future__ import annotations

import argparse
import sys

from sim.cli import options

#: Exit status of a sample-parallel replay that has no result (a chunk could not be counted).
EXIT_FAILED = 3


def add_parallel(p) -> None:
    """``--workers N`` and ``--scheduler ADDRESS``: count the samples in chunks on Dask."""
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="count the samples in chunks on N Dask workers (a LocalCluster), merged exactly "
                        "into the serial result (default 1: no Dask; docs/parallel.md)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="count the chunks on the running Dask scheduler at ADDRESS instead (its workers "
                        "must read the trace at the same path); --workers N then plans chunks for N workers")


def parallel_failed(exc: Exception) -> int:
    """One line on stderr for a sample-parallel run without a result; its exit status."""
    sys.stderr.write(f"error: {exc}\n")
    return EXIT_FAILED


def run_counting(args: argparse.Namespace, body) -> int:
    """What ``replay`` and ``validate`` do around their work: check --samples, --timing and
    the parallel options before anything runs, then ``body(args)``; a sample-parallel run that
    lost a chunk (raised inside ``Outputs``: nothing was written) is one line and exit 3."""
    from sim.replay.parallel import ReplayFailed, check_parallel

    options.check_positive(args.samples, "--samples")
    options.apply_timing(args)
    check_parallel(args.workers, args.scheduler)
    try:
        return body(args)
    except ReplayFailed as exc:
        return parallel_failed(exc)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "replay", help="replay a trace on an architecture and report energy, cycles, counts",
        description="Replay a trace through an architecture's cycle-level model (SNN spikes "
                    "and/or the ANN twin's activations), count every memory access and op, "
                    "price the counts with an energy table and report.")
    options.add_trace(p)
    options.add_arch(p)
    options.add_mode(p)
    options.add_energy(p)
    options.add_samples(p, what="replay the first N samples (default all)")
    options.add_overrides(p)
    options.add_map(p, default="best")
    options.add_timing(p)
    options.add_json(p, "write the report as JSON ('-' = stdout)")
    p.add_argument("--csv", metavar="FILE", help="write one row per layer as CSV")
    options.add_plot(p, metavar="FILE.png|DIR", what="write stacked energy bars per architecture and mode (split by component) to "
                        "FILE.png, or DIR/energy_breakdown.png; NoC figures (per-link load heat map, hop "
                        "histogram) of neuromorphic runs go next to it")
    add_parallel(p)
    options.add_quiet(p, "no progress bar and no table")
    p.set_defaults(func=run)


def mapping_line(report: dict) -> str:
    """One line: the mapper's choice for this run, and the spec's own mapping's figure beside it."""
    m = report["mapping"]
    what = "energy" if m["objective"] == "energy" else m["objective"]
    own = m["spec_mapping_energy_pj"] if m["objective"] == "energy" else m["spec_mapping_cycles"]
    got = m["chosen_energy_pj"] if m["objective"] == "energy" else m["chosen_cycles"]
    if m["objective"] == "edp":
        own = m["spec_mapping_energy_pj"] * m["spec_mapping_cycles"]
        got = m["chosen_energy_pj"] * m["chosen_cycles"]
    check = "closed form = counts" if m["prediction_check"]["exact"] else "closed form DIFFERS from counts"
    if m["evaluated_by"].startswith("not searched"):
        return f"mapping ({report['arch']['name']}, {report['mode']}): the spec's own mapping ({m['evaluated_by']})"
    head = f"mapping ({report['arch']['name']}, {report['mode']}): best {what} of {m['candidates_evaluated']} candidates"
    if not m["changed_from_spec"]:
        return f"{head}: the spec's own mapping; {check}"
    change = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in m["changed_from_spec"].items())
    gain = f"; {100 * (1 - got / own):.1f} % below the spec's mapping" if own else ""
    return f"{head}: {change}{gain}; {check}"


def run(args: argparse.Namespace) -> int:
    return run_counting(args, _run)


def _run(args: argparse.Namespace) -> int:
    from sim.replay import replay_document
    from sim.report import csv_rows, format_report, is_priced, ratios, unpriced_text
    from sim.report.output import Outputs

    with Outputs() as out:
        js = out.file("--json", args.json, stdout=True)
        cs = out.file("--csv", args.csv)
        png, plot_dir = options.plot_destination(out, args.plot, allow_dir=True)
        doc, reports = replay_document(args.trace, args.arch, options.modes(args), args.energy, args.samples,
                                       args.overrides, progress=not args.quiet, map_policy=args.map,
                                       objective=args.objective, workers=args.workers, scheduler=args.scheduler)
        for r in reports:
            if not is_priced(r):
                sys.stderr.write(f"warning: {unpriced_text(r)}; its counts are reported without energies\n")
        if not args.quiet and args.json != "-":
            for r in reports:
                sys.stdout.write(format_report(r) + "\n")
                if "mapping" in r:
                    sys.stdout.write(mapping_line(r) + "\n")
            for arch, r in ratios(reports).items():
                sys.stdout.write(f"E_SNN / E_ANN on {arch}: {r:.3f}\n")
        if js:
            out.json(js, doc)
        if cs:
            out.csv(cs, [row for r in reports for row in csv_rows(r)])
        if png or plot_dir:
            from sim.plots.energy import energy_plot_path, plot_energy_breakdown
            from sim.plots.noc import write_plots

            priced = [r for r in reports if is_priced(r)]
            energy_png = energy_plot_path(png or plot_dir)
            plot_energy_breakdown(priced, out.temp(energy_png), ratios(priced))
            write_plots(reports, energy_png.parent, out.temp)
    return 0
