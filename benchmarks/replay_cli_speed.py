#!/usr/bin/env python3
"""Per-sample time of ``run_sim.py replay TRACE --arch A --mode both`` (in-process CLI).

    python benchmarks/replay_cli_speed.py [--trace FILE] [--arch all] [--samples 8] [--repeat 3]
    python benchmarks/replay_cli_speed.py --synth resnet18 --T 6 --rate 0.1 --arch neuromorphic

``--synth MODEL`` times a synthetic trace of that model shape (``synth --T --rate``, written
to a temporary directory) instead of ``--trace``.

Runs the command on 1 sample (warm: once before timing, to JIT numba) and on N samples,
``repeat`` times each, and prints the best time per additional sample: (t_N - t_1) / (N - 1).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.cli import main as cli  # noqa: E402


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli(args)
    if rc:
        raise SystemExit(f"replay exited {rc}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(REPO / "traces" / "vgg16_fmnist_T6.h5"))
    ap.add_argument("--arch", default="all")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synth", metavar="MODEL", help="time a synthetic trace of this model shape instead")
    ap.add_argument("--T", type=int, default=6, help="--synth: time steps (default 6)")
    ap.add_argument("--rate", default="0.1", help="--synth: spike rate (default 0.1)")
    ap.add_argument("--map", choices=("spec", "best"), default="spec",
                    help="the replay's mapping policy (default spec: the replay alone; best adds the mapper)")
    args = ap.parse_args()
    if args.synth:
        import tempfile

        tmp = tempfile.mkdtemp(prefix="speed-")
        args.trace = os.path.join(tmp, f"{args.synth}_T{args.T}.h5")
        with contextlib.redirect_stderr(io.StringIO()):
            rc = cli(["synth", "--model", args.synth, "--T", str(args.T), "--rate", args.rate,
                      "--samples", str(args.samples), "--seed", "1", "--out", args.trace])
        if rc:
            raise SystemExit(f"synth exited {rc}")
    base = ["replay", args.trace, "--arch", args.arch, "--mode", "both", "--map", args.map, "--quiet",
            "--json", os.devnull]
    timed([*base, "--samples", "1"])  # JIT warm-up
    one = min(timed([*base, "--samples", "1"]) for _ in range(args.repeat))
    many = min(timed([*base, "--samples", str(args.samples)]) for _ in range(args.repeat))
    print(f"trace                    {args.trace}")
    print(f"architecture             {args.arch} (SNN + ANN twin)")
    print(f"1 sample                 {one:.3f} s")
    print(f"{args.samples} samples                {many:.3f} s")
    print(f"seconds per extra sample {(many - one) / (args.samples - 1):.3f} s")


if __name__ == "__main__":
    main()
