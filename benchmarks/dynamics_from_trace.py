"""Window vs causal dynamics of a converted network rebuilt from a recorded trace (issue 15, item 4).

The paper's converted SNN is fully described by a recorded trace (format 1-3 of ``sim.record``):
its layers, int8 weights with their scales, float biases, T and the IF threshold. This script
rebuilds it (``sim.record.convert.EquivalentNet``), checks that the ``window`` network reproduces
the trace's stored spikes bit for bit on the stored inputs, then runs both dynamics on the
stored inputs or on a data set's test split and prints accuracy and spike rates (the paper's
definition: every spiking layer but the first) as JSON on stdout; progress on stderr.

    python benchmarks/dynamics_from_trace.py traces/vgg16_fmnist_T6.h5 --dataset fashion-mnist --samples 1000
    python benchmarks/dynamics_from_trace.py traces/digits_snn_T6.h5 --dataset digits

Use it where the training checkpoint is not at hand (the bundled VGG16 trace's checkpoint is
not committed); ``run_sim.py record CKPT --dynamics causal`` is the way when it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.record.convert import EquivalentNet, QuantisedLayer  # noqa: E402
from sim.record.recorder import EventHooks  # noqa: E402
from sim.trace import open_trace  # noqa: E402


def rebuild(path):
    with open_trace(path) as tr:
        layers = []
        for s in tr.layers:
            if s.n_weights:
                w, scale = tr.weights(s.name)
                layers.append(QuantisedLayer(s, torch.from_numpy(np.asarray(w)), float(scale),
                                             torch.from_numpy(np.asarray(tr.bias(s.name)))))
            else:
                layers.append(QuantisedLayer(s))
        x = torch.stack([torch.from_numpy(np.asarray(tr.input(i))) for i in range(tr.n_samples)])
        y = torch.from_numpy(np.asarray(tr.labels()))
        stored = {s.name: np.stack([tr.spikes(s.name, i) for i in range(tr.n_samples)], 1)
                  for s in tr.layers if s.output == "spikes"}
        return layers, x, y, stored, tr.T, tr.meta.neuron.threshold, tr.meta.dataset


def run(layers, T, theta, dynamics, x, y, batch, label):
    net = EquivalentNet(layers, T, theta, "snn", dynamics)
    spiking = [q.spec.name for q in layers if q.spec.output == "spikes"]
    counts = dict.fromkeys(spiking, 0)
    sizes = dict.fromkeys(spiking, 0)
    correct, t0 = 0, time.perf_counter()
    outputs = {}
    for lo in range(0, len(y), batch):
        with torch.no_grad(), EventHooks(net) as h:
            pot = net(x[lo:lo + batch])
        for n in spiking:
            counts[n] += int(h.outputs[n].sum())
            sizes[n] += h.outputs[n].numel()
            if lo == 0:
                outputs[n] = h.outputs[n].numpy()
        correct += int((pot.argmax(1) == y[lo:lo + batch]).sum())
        print(f"\r{label} {dynamics}: {min(lo + batch, len(y))}/{len(y)} samples, "
              f"{time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    paper = sum(counts[n] for n in spiking[1:]) / sum(sizes[n] for n in spiking[1:])
    return {"accuracy": correct / len(y), "samples": len(y), "spike_rate": paper,
            "spike_rate_all_layers": sum(counts.values()) / sum(sizes.values()),
            "layer_rates": {n: counts[n] / sizes[n] for n in spiking}, "layer_spikes": counts,
            "seconds": round(time.perf_counter() - t0, 1)}, outputs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--dataset", help="run on this data set's test split (digits, fashion-mnist); "
                                      "default: the trace's stored inputs")
    ap.add_argument("--samples", type=int, help="the first N test samples (default: all)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    layers, x, y, stored, T, theta, name = rebuild(args.trace)
    # the rebuilt window network must be the recorded one: the stored spikes, bit for bit
    _, outs = run(layers, T, theta, "window", x, y, len(y), "stored inputs")
    same = all(np.array_equal(outs[n], stored[n]) for n in stored)
    if not same:
        print("error: the rebuilt window network does not reproduce the trace's spikes", file=sys.stderr)
        return 1
    source = "the trace's stored inputs"
    if args.dataset:
        from sim.record.data import load_dataset

        test = load_dataset(args.dataset)[1].head(args.samples)
        x, y, source = test.x, test.y, f"{args.dataset} test split"
    report = {"trace": args.trace, "T": T, "theta": theta, "inputs": source,
              "window_reproduces_stored_spikes": same}
    for dyn in ("window", "causal"):
        report[dyn], _ = run(layers, T, theta, dyn, x, y, args.batch, name)
    report["causal_vs_window_spikes"] = {n: report["causal"]["layer_spikes"][n] / max(1, report["window"]["layer_spikes"][n]) - 1
                                         for n in report["window"]["layer_spikes"]}
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
