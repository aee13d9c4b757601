#!/usr/bin/env python3
"""Replay speed of the neuromorphic architecture on VGG16 at T = 6: seconds per additional
sample (SNN and ANN twin), synaptic events/s, peak memory, and k_hop of each mapping.

The mapping (partition, placement, destination tables) is built once per replay; the first
sample also warms numba's JIT. The figure that matters is the time of each additional
sample, SNN + ANN twin, measured as (time of n samples - time of 1 sample) / (n - 1).

    python benchmarks/neuromorphic_speed.py [--trace FILE] [--samples N]
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

from sim.arch.spec import load_arch_spec  # noqa: E402
from sim.architectures.neuromorphic import Neuromorphic  # noqa: E402
from sim.trace import open_trace  # noqa: E402
from sim.trace.shapes import model_layers  # noqa: E402
from sim.trace.synthetic import write_synthetic_trace  # noqa: E402
from sim.workload import Workload  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=None, help="VGG16 trace (default: a synthetic one at 7.57 %% spikes)")
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    tmp = None
    trace = args.trace
    if trace is None:
        tmp = tempfile.TemporaryDirectory()
        trace = str(Path(tmp.name) / "vgg16_synth.h5")
        layers, shape = model_layers("vgg16", 6)
        write_synthetic_trace(trace, layers, shape, model="vgg16", T=6, n_samples=args.samples,
                              rate=0.0757, seed=0, with_weights=False)
    with open_trace(trace) as tr:
        n = min(args.samples, tr.n_samples)
        if n < 2:
            sys.exit("need a trace with at least 2 samples")
        wl = Workload(tr)
        spec = load_arch_spec("neuromorphic")
        sim, build = timed(lambda: Neuromorphic(spec, wl))
        first = {m: timed(lambda m=m: sim.run(m, 1))[1] for m in ("snn", "ann")}
        # measured after the warm-up, so JIT and caches are excluded
        one = {m: timed(lambda m=m: sim.run(m, 1))[1] for m in ("snn", "ann")}
        runs = {m: timed(lambda m=m: sim.run(m, n)) for m in ("snn", "ann")}
        per = {m: (runs[m][1] - one[m]) / (n - 1) for m in ("snn", "ann")}
        snn = runs["snn"][0]
        synops = sum(w["synaptic_ops"] for w in snn.workload.values()) / n
        macs = sum(w["macs"] for w in runs["ann"][0].workload.values()) / n
        k_hops = {}
        for part in ("channel_major", "spatial"):
            for place in ("row_major", "nearest"):
                s = load_arch_spec("neuromorphic", [f"mapping.partition={part}", f"mapping.placement={place}"])
                nm = Neuromorphic(s, wl)
                res = nm.run("snn", 1)
                summary = res.extra["mapping"]
                k_hops[(part, place)] = (summary["k_hop_static"], res.extra["noc"]["k_hop"],
                                         summary["core_groups"], summary["segments"])
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"trace                      {trace} ({n} samples, T={tr.T})")
    print(f"mapping build (once)       {build:.2f} s")
    print(f"first sample (JIT warm-up) snn {first['snn']:.2f} s, ann {first['ann']:.2f} s")
    print(f"per additional sample      snn {per['snn']:.3f} s + ann {per['ann']:.3f} s = "
          f"{per['snn'] + per['ann']:.3f} s")
    print(f"SNN synaptic events/s      {synops / per['snn']:.3g} ({synops:.3g} per sample)")
    print(f"ANN MACs/s                 {macs / per['ann']:.3g} ({macs:.3g} per sample)")
    print(f"peak memory (max RSS)      {peak_mib:.0f} MiB")
    print("k_hop (static / replayed SNN), core groups, chip configurations:")
    for (part, place), (ks, kr, groups, segs) in k_hops.items():
        print(f"  {part:<13} {place:<9}  {ks:.3f} / {kr:.3f}   {groups} groups, {segs} configurations")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
