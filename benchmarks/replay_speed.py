#!/usr/bin/env python3
"""Replay speed of memory_hierarchy on VGG16 at T = 6: synaptic events/s, s/sample, peak memory.

Uses the bundled VGG16 trace when present, else writes a synthetic VGG16 trace at the
paper's 7.57 % spike rate. The first sample warms up numba's JIT and caches; the figure
that matters is the time per additional sample, SNN and ANN twin together.

    python benchmarks/replay_speed.py [--trace FILE] [--samples N] [--arch memory_hierarchy]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sim.replay import replay  # noqa: E402
from sim.trace import open_trace  # noqa: E402
from sim.trace.shapes import model_layers  # noqa: E402
from sim.trace.synthetic import write_synthetic_trace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=None)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--arch", default="memory_hierarchy")
    args = ap.parse_args()
    trace = args.trace
    bundled = REPO / "traces" / "vgg16_fmnist_T6.h5"
    tmp = None
    if trace is None and bundled.exists():
        trace = str(bundled)
    if trace is None:
        tmp = tempfile.TemporaryDirectory()
        trace = str(Path(tmp.name) / "vgg16_synth.h5")
        layers, shape = model_layers("vgg16", 6)
        write_synthetic_trace(trace, layers, shape, model="vgg16", T=6, n_samples=args.samples,
                              rate=0.0757, seed=0, with_weights=False)
    with open_trace(trace) as tr:
        n = min(args.samples, tr.n_samples)
        t0 = time.perf_counter()
        replay(tr, args.arch, ["snn", "ann"], "paper_v1_45nm", samples=1, progress=False)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        snn, ann = replay(tr, args.arch, ["snn", "ann"], "paper_v1_45nm", samples=n, progress=False)
        total = time.perf_counter() - t0
    per_sample = total / n
    events = snn["totals"]["synaptic_ops"] + ann["totals"]["macs"]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"trace                 {trace}")
    print(f"architecture          {args.arch}")
    print(f"samples               {n}")
    print(f"first sample (warm-up) {warm:.2f} s")
    print(f"seconds per sample    {per_sample:.3f} s (SNN + ANN twin)")
    print(f"synaptic events/s     {snn['totals']['synaptic_ops'] / total:.3g} (SNN synaptic ops only)")
    print(f"events/s              {events / total:.3g} (SNN synaptic ops + ANN MACs)")
    print(f"peak memory           {peak_mib:.0f} MiB")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
