#!/usr/bin/env python3
"""A whole test set: replay speed and memory on a VGG16 trace of N samples (issue 17).

    python benchmarks/test_set_speed.py                     # 1,000 samples, cached in /tmp/snn_test_set
    python benchmarks/test_set_speed.py --samples 50 --K 10 # a quick look
    python benchmarks/test_set_speed.py --best --json out/test_set_speed.json

1. The trace: a synthetic VGG16 trace (``synth --model vgg16 --T 6 --rate 0.0757``, the
   paper's 7.57 % spike rate) of ``--samples`` samples, written once under ``--cache`` and
   reused while it opens and matches (model, T, samples, synthetic); its synthesis is timed
   (wall, samples/s, peak RSS) when it is written.
2. Per architecture, alone (in this process, numba warmed up first): the time per extra
   sample of ``replay --arch A --mode both --map spec`` on the first 1 and 1 + K samples,
   (t_{1+K} - t_1) / K, as benchmarks/replay_cli_speed.py does; printed as samples/s.
3. The whole run, ``replay TRACE --arch all --mode both --map spec`` (and with ``--best``
   ``--map best``, which runs the mapper's event-statistics pass first), each in a child
   process: wall time, samples/s and peak RSS. Peak RSS: the child's own (``os.wait4``'s
   ``ru_maxrss``: the largest single process of its tree) and, when psutil is installed, the
   peak of its whole process tree (sampled every 0.1 s; Dask workers are processes).
4. ``--workers 1`` (serial: no Dask) against ``--workers 2`` (a LocalCluster of two worker
   processes): wall times, the speed-up, and whether the two JSON documents are identical
   (reports carry no wall-clock time: equal counts and cycles give equal files). Skipped, with
   a message, when ``run_sim.py replay --help`` has no ``--workers``.

Figures print as a table; ``--json FILE`` writes them too. Nothing here is a test: a speed
figure depends on the machine (the acceptance figures are for the project's 2-core machine).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RUN_SIM = [sys.executable, str(REPO / "run_sim.py")]
MODEL, PAPER_RATE = "vgg16", 0.0757


def run_child(cmd: list[str], sample_tree: bool = True) -> dict:
    """Run ``cmd`` to completion: wall seconds, exit code, the child's peak RSS (MB, from
    wait4: its largest single process) and the sampled peak RSS of its process tree (MB, or
    None without psutil). stdout is discarded; stderr is kept for an error message."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        tree_peak = [0]
        stop = threading.Event()
        sampler = None
        if sample_tree:
            try:
                import psutil
            except ImportError:
                tree_peak = None
            else:
                def sample():
                    try:
                        root = psutil.Process(p.pid)
                    except psutil.Error:
                        return
                    while not stop.is_set():
                        total = 0
                        try:
                            procs = [root, *root.children(recursive=True)]
                        except psutil.Error:
                            break
                        for q in procs:
                            with contextlib.suppress(psutil.Error):
                                total += q.memory_info().rss
                        tree_peak[0] = max(tree_peak[0], total)
                        stop.wait(0.1)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        if sampler is not None:
            sampler.join()
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    return {"command": " ".join(cmd[1:]), "rc": p.returncode, "wall_s": round(wall, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),   # Linux: KiB
            "tree_peak_rss_mb": None if tree_peak is None else round(tree_peak[0] / 2**20, 1),
            "stderr_tail": tail}


def require_ok(res: dict, what: str) -> None:
    if res["rc"] != 0:
        raise SystemExit(f"{what} failed (exit {res['rc']}): {res['command']}\n  " + "\n  ".join(res["stderr_tail"]))


def cached_trace(args) -> tuple[Path, dict | None]:
    """The cached trace (written now when missing or not the one asked for) and, when it was
    written now, its synthesis figures."""
    from sim.errors import TraceFormatError
    from sim.trace import open_trace

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{MODEL}_T{args.T}_rate{args.rate}_seed{args.seed}_n{args.samples}.h5"
    if path.exists():
        try:
            with open_trace(path) as tr:
                m = tr.meta
                if (m.model, m.T, m.n_samples, m.synthetic) == (MODEL, args.T, args.samples, True):
                    return path, None
        except TraceFormatError as exc:
            print(f"cached trace unusable, writing it again: {exc}", file=sys.stderr)
    print(f"writing {path} ({args.samples} samples) ...", file=sys.stderr)
    res = run_child([*RUN_SIM, "synth", "--model", MODEL, "--T", str(args.T), "--rate", str(args.rate),
                     "--samples", str(args.samples), "--seed", str(args.seed), "--quiet", "--out", str(path)])
    require_ok(res, "synth")
    res["samples_per_s"] = round(args.samples / res["wall_s"], 1)
    return path, res


def per_architecture(trace: Path, K: int) -> dict:
    """Seconds per extra sample of each architecture alone (SNN + twin), in this process."""
    from sim.arch.registry import architecture_names
    from sim.cli import main as cli

    def timed(argv: list[str]) -> float:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = cli(argv)
        if rc:
            raise SystemExit(f"replay exited {rc}: {' '.join(argv)}")
        return time.perf_counter() - t0

    out = {}
    for arch in architecture_names("all"):
        base = ["replay", str(trace), "--arch", arch, "--mode", "both", "--map", "spec", "--quiet",
                "--json", os.devnull]
        timed([*base, "--samples", "1"])   # numba JIT and imports
        one = timed([*base, "--samples", "1"])
        many = timed([*base, "--samples", str(1 + K)])
        per = max((many - one) / K, 1e-9)
        out[arch] = {"seconds_per_extra_sample": round(per, 4), "samples_per_s": round(1.0 / per, 1), "K": K}
    return out


def whole_run(trace: Path, samples: int, map_policy: str, workers: int | None, json_out: Path) -> dict:
    cmd = [*RUN_SIM, "replay", str(trace), "--arch", "all", "--mode", "both", "--map", map_policy,
           "--quiet", "--json", str(json_out)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    res = run_child(cmd)
    require_ok(res, "replay")
    res["samples_per_s"] = round(samples / res["wall_s"], 2)
    return res


def differences(a, b, path: str = "") -> list[str]:
    """Paths (``runs[0]/cycles``) where two JSON documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in (differences(a[k], b[k], f"{path}/{k}") if k in a and k in b else [f"{path}/{k}"])]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path.lstrip("/")]


def has_workers_option() -> bool:
    out = subprocess.run([*RUN_SIM, "replay", "--help"], capture_output=True, text=True, cwd=REPO)
    return "--workers" in out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000, help="samples in the trace (default 1000)")
    ap.add_argument("--cache", default="/tmp/snn_test_set", help="where the trace is kept (default /tmp/snn_test_set)")
    ap.add_argument("--T", type=int, default=6, help="time steps (default 6)")
    ap.add_argument("--rate", type=float, default=PAPER_RATE, help=f"spike rate (default {PAPER_RATE}, the paper's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--K", type=int, default=20, help="per architecture: time 1 and 1 + K samples (default 20)")
    ap.add_argument("--best", action="store_true", help="also time the whole run under --map best (mapper first)")
    ap.add_argument("--no-workers", action="store_true", help="skip the --workers 1 vs 2 comparison")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    if args.samples < 2 or args.K < 1:
        raise SystemExit("--samples must be >= 2 and --K >= 1")
    K = min(args.K, args.samples - 1)

    trace, synth = cached_trace(args)
    fig: dict = {"trace": str(trace), "model": MODEL, "T": args.T, "rate": args.rate, "samples": args.samples,
                 "cpus": os.cpu_count(), "synth": synth}
    print(f"per-architecture timing on the first 1 and {1 + K} samples ...", file=sys.stderr)
    fig["per_architecture"] = per_architecture(trace, K)

    with tempfile.TemporaryDirectory(prefix="test-set-speed-") as tmp:
        whole_runs(fig, trace, args, Path(tmp))
    print_table(fig)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


def whole_runs(fig: dict, trace: Path, args, out_dir: Path) -> None:
    """The whole-trace replays (--map spec, optionally --map best, --workers 1 and 2) into ``fig``."""
    workers_ok = not args.no_workers and has_workers_option()
    print(f"whole run, --map spec{', --workers 1' if workers_ok else ''} ...", file=sys.stderr)
    runs = {"spec": whole_run(trace, args.samples, "spec", 1 if workers_ok else None, out_dir / "spec_w1.json")}
    if args.best:
        print("whole run, --map best ...", file=sys.stderr)
        runs["best"] = whole_run(trace, args.samples, "best", None, out_dir / "best.json")
    fig["runs"] = runs
    if args.no_workers:
        fig["workers"] = {"skipped": "--no-workers"}
    elif not workers_ok:
        fig["workers"] = {"skipped": "run_sim.py replay --help has no --workers option"}
        print("skipping 1 vs 2 workers: `run_sim.py replay --help` has no --workers option", file=sys.stderr)
    else:
        print("whole run, --map spec --workers 2 ...", file=sys.stderr)
        w2 = whole_run(trace, args.samples, "spec", 2, out_dir / "spec_w2.json")
        diff = differences(json.loads((out_dir / "spec_w1.json").read_text()),
                           json.loads((out_dir / "spec_w2.json").read_text()))
        fig["workers"] = {"1": runs["spec"], "2": w2, "speedup": round(runs["spec"]["wall_s"] / w2["wall_s"], 2),
                          "identical_reports": not diff, "differing_fields": diff}


def print_table(fig: dict) -> None:
    def mb(v):
        return "-" if v is None else f"{v:,.0f} MB"

    print(f"trace      {fig['trace']}")
    print(f"           {fig['model']}, T = {fig['T']}, rate {fig['rate']}, {fig['samples']} samples; "
          f"{fig['cpus']} CPUs")
    s = fig["synth"]
    if s:
        print(f"synth      {s['wall_s']:.1f} s ({s['samples_per_s']} samples/s), peak RSS {mb(s['peak_rss_mb'])}")
    else:
        print("synth      (reused from the cache)")
    print()
    print(f"{'architecture (SNN + twin)':<28} {'s / extra sample':>16} {'samples/s':>10}")
    for arch, r in fig["per_architecture"].items():
        print(f"{arch:<28} {r['seconds_per_extra_sample']:>16.4f} {r['samples_per_s']:>10.1f}")
    print()
    rows = [(f"--map {k}" + (" --workers 1" if k == "spec" and "1" in fig["workers"] else ""), r)
            for k, r in fig["runs"].items()]
    if "2" in fig["workers"]:
        rows.append(("--map spec --workers 2", fig["workers"]["2"]))
    print(f"{'replay --arch all --mode both':<34} {'wall':>9} {'samples/s':>10} {'peak RSS':>10} {'tree peak':>10}")
    for name, r in rows:
        print(f"{name:<34} {r['wall_s']:>8.1f}s {r['samples_per_s']:>10.2f} {mb(r['peak_rss_mb']):>10} "
              f"{mb(r['tree_peak_rss_mb']):>10}")
    w = fig["workers"]
    if "skipped" in w:
        print(f"\n1 vs 2 workers: skipped ({w['skipped']})")
    else:
        print(f"\n1 vs 2 workers: speed-up {w['speedup']:.2f}x; reports identical (counts and cycles): "
              + ("yes" if w["identical_reports"] else
                 f"NO, {len(w['differing_fields'])} field(s) differ: {', '.join(w['differing_fields'][:6])}"
                 + (" ..." if len(w["differing_fields"]) > 6 else "")))


if __name__ == "__main__":
    main()
