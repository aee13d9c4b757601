#!/usr/bin/env python3
"""NeuroBench 2.3.0 cross-check: our synaptic ops and dense MACs against NeuroBench's
SynapticOperations (Effective_ACs, Effective_MACs, Dense) on the same snnTorch model and inputs.

The model (the built-in snnTorch digits CNN, briefly trained, or FILE.py:FACTORY as for
``run_sim.py record-model``) runs T steps per input with the same analog input every step
(direct encoding). NeuroBench counts on its own forward pass (SNNTorchModel, Benchmark,
SynapticOperations); we record the trace with ``sim.record.own_model.record_model`` and
replay it (memory_hierarchy: the SNN; the ANN twin with ``mapping.zero_skipping=false`` for
the dense MACs; workload totals are the same on every architecture). The JSON on stdout
holds both counts per layer and in total, the terms of the formula that relates them
(docs/peers.md) and whether each equality holds; progress goes to stderr.

    python benchmarks/peers/neurobench_synops.py [--model FILE.py:FACTORY [--checkpoint CKPT]]
        [--inputs digits|X.npy] [--T 4] [--samples N] [--epochs 3] [--nb-batch 256] [--trace OUT.h5]

Exit status: 0 when every equality holds, 1 when one does not, 2 for bad input (one line).
Needs torch, snntorch, scikit-learn (digits) and neurobench 2.3.0 installed with
``pip install --no-deps neurobench==2.3.0`` (its torchaudio/tonic are not needed here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sim.errors import ParameterError, SimInputError  # noqa: E402

#: The connection layers NeuroBench hooks (neurobench.blocks.layer.STATELESS_LAYERS) that
#: the trace format has; NeuroBench hooks no pooling layer.
NB_KINDS = ("conv2d", "linear")
#: NeuroBench sums each call's count in float32: integers are exact up to 2**24.
FLOAT32_EXACT = 2 ** 24


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the model

def digits_cnn(beta: float = 0.9):
    """The built-in snnTorch CNN for 1x8x8 digits: conv(1->8, 3x3, pad 1) -> Leaky ->
    avgpool 2 -> Leaky -> flatten -> linear(128->32) -> Leaky -> linear(32->10) readout.
    The trace format needs a neuron after the pool (a pool without one could only feed an add)."""
    import snntorch as snn
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.lif1 = snn.Leaky(beta=beta, init_hidden=True)
            self.pool = nn.AvgPool2d(2)
            self.lif2 = snn.Leaky(beta=beta, threshold=0.5, init_hidden=True)
            self.flat = nn.Flatten()
            self.fc1 = nn.Linear(8 * 4 * 4, 32)
            self.lif3 = snn.Leaky(beta=beta, init_hidden=True)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = self.lif2(self.pool(self.lif1(self.conv1(x))))
            return self.fc2(self.lif3(self.fc1(self.flat(x))))

    torch.manual_seed(0)
    return DigitsCNN()


def reset_net(net) -> None:
    """Clear the neuron state: the model's ``reset()`` if it has one (as NeuroBench's
    SNNTorchModel does), else snntorch.utils.reset and every snnTorch neuron's reset_mem
    (snntorch.utils.reset sees only direct children), and plain-PyTorch neurons' reset."""
    import snntorch as snn
    from snntorch import utils

    from sim.record.own_model import reset_state

    if callable(getattr(net, "reset", None)):
        net.reset()
        return
    utils.reset(net)
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron) and callable(getattr(m, "reset_mem", None)):
            m.reset_mem()
    reset_state(net)


def train(net, x, y, T: int, epochs: int, seed: int) -> float:
    """Train with snnTorch's surrogate gradient (BPTT over T steps, cross-entropy on the
    readout summed over T); returns the last epoch's training accuracy."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    acc = float("nan")
    net.train()
    for epoch in range(epochs):
        right = 0
        for idx in torch.randperm(len(x), generator=g).split(64):
            reset_net(net)
            out = sum(net(x[idx]) for _ in range(T))
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            right += int((out.argmax(1) == y[idx]).sum())
        acc = right / len(x)
        log(f"train epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, accuracy {acc:.3f}")
    net.eval()
    reset_net(net)
    return acc


# --------------------------------------------------------------------------- NeuroBench's side

def zero_weight_pairs(x, layer) -> int:
    """(non-zero input, zero weight) pairs of one call of a Conv2d/Linear: what NeuroBench's
    effective count skips (its binary copy keeps zero weights at 0) and a fan-out does not."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        xb = (x != 0).double()
        wz = (layer.weight == 0).double()
        if isinstance(layer, torch.nn.Linear):
            return int(F.linear(xb, wz).sum())
        return int(F.conv2d(xb, wz, None, layer.stride, layer.padding, layer.dilation, layer.groups).sum())


def layer_metric_class():
    """A NeuroBench workload metric recording, per hooked layer, what SynapticOperations sums
    over all layers: each call's (input) counted with NeuroBench's own single_layer_MACs,
    effective (AC when the input is all 0/±1, else MAC) and dense (total=True), as it does."""
    from neurobench.metrics.abstract.workload_metric import AccumulatedMetric
    from neurobench.metrics.utils.layers import single_layer_MACs

    class LayerSynapticOperations(AccumulatedMetric):
        def __init__(self):
            super().__init__(requires_hooks=True)
            self.reset()

        def reset(self):
            self.layers = {}
            self.samples = 0

        def __call__(self, model, preds, data):
            for hook in model.connection_hooks:
                rec = self.layers.setdefault(hook.layer, dict(AC=0, MAC=0, dense=0, calls=0, nonzero_in=0,
                                                              zero_weight_pairs=0))
                for x in hook.inputs:
                    if len(x) == 1:
                        x = x[0]
                    hook.hook.remove()   # as SynapticOperations: the binary copy must not carry the hook
                    ops, spiking = single_layer_MACs(x, hook.layer)
                    dense, _ = single_layer_MACs(x, hook.layer, total=True)
                    hook.register_hook()
                    rec["AC" if spiking else "MAC"] += ops
                    rec["dense"] += dense
                    rec["calls"] += 1
                    rec["nonzero_in"] += int((x != 0).sum())
                    rec["zero_weight_pairs"] += zero_weight_pairs(x, hook.layer)
            self.samples += data[0].size(0)
            return self.compute()

        def compute(self):
            return {"layers": len(self.layers), "samples": self.samples}

    return LayerSynapticOperations


def neurobench_counts(net, x, T: int, batch: int) -> dict:
    """Run NeuroBench's Benchmark with SynapticOperations (and the per-layer metric) on ``x``
    [n, ...] repeated over T steps; integer totals, NeuroBench's per-sample results, per layer."""
    import neurobench
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel
    from torch.utils.data import DataLoader, TensorDataset

    class StepTuple(torch.nn.Module):
        """SNNTorchModel unpacks each step's ``net(x_t)`` as (spikes, membrane): a readout that
        returns one tensor is given twice. Its reset() is :func:`reset_net` (NeuroBench calls it)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x_t):
            out = self.inner(x_t)
            return out if isinstance(out, tuple) else (out, out)

        def reset(self):
            reset_net(self.inner)

    seq = x.unsqueeze(1).repeat(1, T, *([1] * (x.dim() - 1)))   # [n, T, ...]: direct encoding
    loader = DataLoader(TensorDataset(seq, torch.zeros(len(x), dtype=torch.long)), batch_size=batch, shuffle=False)
    model = SNNTorchModel(StepTuple(net))
    per_layer = layer_metric_class()
    bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, per_layer]])
    results = bench.run(quiet=True)
    metrics = bench.workload_metric_manager.metrics
    official, mine = metrics["SynapticOperations"], metrics[per_layer.__name__]
    names = {m: n.replace(".", "_") for n, m in net.named_modules()}
    layers = {names[m]: rec for m, rec in mine.layers.items()}
    bench.workload_metric_manager.cleanup_hooks(model)
    sums = {k: sum(r[k] for r in layers.values()) for k in ("AC", "MAC", "dense")}
    totals = {"AC": int(official.AC), "MAC": int(official.MAC), "Dense": int(official.total_synops)}
    if (sums["AC"], sums["MAC"], sums["dense"]) != (totals["AC"], totals["MAC"], totals["Dense"]):
        raise RuntimeError(f"per-layer NeuroBench counts {sums} do not add up to SynapticOperations' {totals}")
    return {"version": neurobench.__version__, "samples": int(official.total_samples),
            "per_sample": dict(results["SynapticOperations"]), "totals": totals, "layers": layers}


# --------------------------------------------------------------------------- our side

def our_counts(net, x, T: int, trace: str, model_name: str, labels=None) -> dict:
    """Record the trace, replay it: per layer (kind, input, SNN synaptic ops and MACs, ANN
    dense MACs, spikes in, padding taps of one dense pass) and totals; with ``labels``, the
    accuracy of the trace's readout (the last synaptic layer's output summed over T)."""
    import numpy as np

    from sim.kernels import input_fanout
    from sim.record.own_model import record_model
    from sim.replay import replay
    from sim.trace import open_trace
    from sim.workload import Workload

    log(f"recording {trace} ...")
    record_model(net, x.numpy(), T, trace, model_name=model_name, labels=None if labels is None else labels.numpy())
    log("replaying (memory_hierarchy: SNN; ANN twin with zero_skipping=false) ...")
    with open_trace(trace) as tr:
        (snn,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", progress=False)
        (ann,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm", progress=False,
                        overrides=["mapping.zero_skipping=false"])
        wl = Workload(tr)
        specs = {l.name: (l, analog) for l, analog in zip(wl.layers, wl.analog)}
        readout = [l.name for l in tr.layers if l.output == "potential"][0]
        acc = None if labels is None else float(np.mean(
            [int(np.argmax(tr.potential(readout, i))) == int(labels[i]) for i in range(tr.n_samples)]))
    s_layers = {l["name"]: l["totals"] for l in snn["layers"]}
    a_layers = {l["name"]: l["totals"] for l in ann["layers"]}
    layers = {}
    for name, (spec, analog) in specs.items():
        layers[name] = {
            "kind": spec.kind, "input": "analog" if analog else "spikes",
            "synaptic_ops": s_layers[name]["synaptic_ops"], "snn_macs": s_layers[name]["macs"],
            "ann_dense_macs": a_layers[name]["macs"], "spikes_in": s_layers[name]["spikes_in"],
            "padding_taps_per_pass": int(spec.dense_ops - input_fanout(spec).sum()) if spec.kind == "conv2d" else 0,
        }
    return {"trace": trace, "T": T, "samples": snn["samples"], "readout_accuracy": acc,
            "totals": {"synaptic_ops": snn["totals"]["synaptic_ops"], "snn_macs": snn["totals"]["macs"],
                       "ann_dense_macs": ann["totals"]["macs"]},
            "layers": layers}


# --------------------------------------------------------------------------- the formula

def compare(nb: dict, ours: dict, binary_input: bool) -> dict:
    """Per layer and in total, NeuroBench's counts predicted from ours (docs/peers.md):

    effective (AC or MAC) = synaptic_ops - Z                 (a layer reading spikes)
                          = T x snn_macs - Z                 (the layer reading the analog input)
    dense                 = T x (ann_dense_macs - n x P)     (P: padding taps of one dense pass)
    and 0 for a pool (NeuroBench hooks none; our pool sums are adds, apart). Z: (non-zero input, zero weight) pairs.
    NeuroBench files a layer's count under ACs when its input holds only 0 and +-1, else under
    MACs: spikes are ACs; the analog input is MACs unless ``binary_input`` (every value 0/+-1)."""
    T, n = ours["T"], ours["samples"]
    rows = []
    terms = {"padding_taps": 0, "zero_weight_pairs_spikes": 0, "zero_weight_pairs_analog": 0}
    for name, o in ours["layers"].items():
        row = {"name": name, "kind": o["kind"], "input": o["input"], "ours": o}
        if o["kind"] in NB_KINDS:
            b = nb["layers"].get(name)
            if b is None:
                raise RuntimeError(f"layer {name}: NeuroBench hooked no module of that name ({sorted(nb['layers'])})")
            z = b["zero_weight_pairs"]
            eff = (T * o["snn_macs"] if o["input"] == "analog" else o["synaptic_ops"]) - z
            dense = T * (o["ann_dense_macs"] - n * o["padding_taps_per_pass"])
            cls = "mixed" if b["AC"] and b["MAC"] else "MAC" if b["MAC"] else "AC"
            predicted_cls = "MAC" if o["input"] == "analog" and not binary_input else "AC"
            row["neurobench"] = {"class": cls, "effective": b["AC"] + b["MAC"], "AC": b["AC"], "MAC": b["MAC"],
                                 "dense": b["dense"], "calls": b["calls"], "nonzero_inputs": b["nonzero_in"],
                                 "zero_weight_pairs": z}
            row["predicted"] = {"class": predicted_cls, "effective": eff, "dense": dense}
            row["equal"] = {"effective": eff == b["AC"] + b["MAC"], "dense": dense == b["dense"],
                            "class": cls == predicted_cls or (eff == 0 and b["AC"] + b["MAC"] == 0)}
            if o["input"] == "spikes":
                row["equal"]["spikes_in"] = o["spikes_in"] == b["nonzero_in"]
            terms["zero_weight_pairs_" + o["input"]] += z
            terms["padding_taps"] += n * o["padding_taps_per_pass"]
        else:   # not a connection layer for NeuroBench: uncounted there. Ours: an avgpool's sums are
            # adds, a maxpool's ORs compares, a residual add's adds: never synaptic ops or MACs
            row["neurobench"] = None
            row["predicted"] = {"effective": 0, "dense": 0}
            if o["synaptic_ops"] or o["ann_dense_macs"]:
                raise RuntimeError(f"layer {name} ({o['kind']}): synaptic ops or MACs outside conv/linear")
        rows.append(row)
    tot, o = nb["totals"], ours["totals"]
    analog = T * o["snn_macs"] - terms["zero_weight_pairs_analog"]
    spikes = o["synaptic_ops"] - terms["zero_weight_pairs_spikes"]
    formula = {
        "Effective_ACs": {"neurobench": tot["AC"], "ours_synaptic_ops": o["synaptic_ops"],
                          "minus_zero_weight_pairs": terms["zero_weight_pairs_spikes"],
                          "plus_analog_layer_macs_if_binary_input": analog if binary_input else 0,
                          "predicted": spikes + (analog if binary_input else 0)},
        "Effective_MACs": {"neurobench": tot["MAC"], "binary_input": binary_input, "T": T,
                           "ours_snn_macs": o["snn_macs"], "minus_zero_weight_pairs": terms["zero_weight_pairs_analog"],
                           "predicted": 0 if binary_input else analog},
        "Dense": {"neurobench": tot["Dense"], "T": T, "ours_ann_dense_macs": o["ann_dense_macs"],
                  "minus_padding_taps": terms["padding_taps"],
                  "predicted": T * (o["ann_dense_macs"] - terms["padding_taps"])},
    }
    for v in formula.values():
        v["equal"] = v["predicted"] == v["neurobench"]
    ok = all(v["equal"] for v in formula.values()) and all(all(r.get("equal", {}).values()) for r in rows)
    return {"layers": rows, "formula": formula, "equal": ok}


# --------------------------------------------------------------------------- the command

def load_inputs(spec: str, samples: int | None):
    """(x float32 tensor [n, ...], labels or None, dataset name): the digits test split or a .npy."""
    import numpy as np
    import torch

    if spec == "digits":
        from sim.record.data import load_digits

        _, test = load_digits()
        x, y, name = test.x, test.y, "digits"
    else:
        try:
            arr = np.load(spec, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ParameterError(spec, "--inputs", f"cannot read a .npy array: {' '.join(str(exc).split())}") from None
        if arr.ndim < 2 or arr.shape[0] < 1 or not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise ParameterError(spec, "--inputs", f"expected finite numbers [n, ...], got {arr.dtype} {list(arr.shape)}")
        x, y, name = torch.as_tensor(arr.astype(np.float32)), None, Path(spec).stem
    if samples is not None:
        if not 1 <= samples <= len(x):
            raise ParameterError(spec, "--samples", f"must be in 1..{len(x)}, got {samples}")
        x, y = x[:samples], None if y is None else y[:samples]
    return x, y, name


def binary_batches(x, batch: int) -> bool | None:
    """NeuroBench's AC/MAC test on the analog input, batch by batch as it runs: True when every
    batch holds only 0 and +-1 (it counts the first layer as ACs), False when none does (MACs),
    None when some do (the first layer's count is split; the totals formula then cannot say how)."""
    flags = [bool(((b == 0) | (b == 1) | (b == -1)).all()) for b in x.split(batch)]
    return True if all(flags) else False if not any(flags) else None


def require_packages() -> dict:
    """The versions of torch, snntorch and neurobench; one line saying how to install a missing one."""
    import importlib

    versions = {}
    for name, hint in (("torch", "pip install -e '.[torch]'"), ("snntorch", "pip install -e '.[snn]'"),
                       ("neurobench", "pip install --no-deps neurobench==2.3.0 (docs/peers.md)")):
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError as exc:
            raise ParameterError(None, None, f"needs {name} ({exc}): {hint}") from None
    return versions


def run(args) -> dict:

    versions = require_packages()
    import torch

    if args.T < 1:
        raise ParameterError(None, "--T", f"must be >= 1, got {args.T}")
    if args.checkpoint and not args.model:
        raise ParameterError(args.checkpoint, "--checkpoint", "needs --model FILE.py:FACTORY")
    if args.epochs < 0:
        raise ParameterError(None, "--epochs", f"must be >= 0, got {args.epochs}")
    if args.nb_batch < 1:
        raise ParameterError(None, "--nb-batch", f"must be >= 1, got {args.nb_batch}")
    if args.trace:
        from sim.report.output import check_destination

        check_destination("--trace", args.trace)
    x, y, dataset = load_inputs(args.inputs, args.samples)
    binary = binary_batches(x, args.nb_batch)
    if binary is None:
        raise ParameterError(args.inputs, "--inputs", f"some batches of {args.nb_batch} hold only 0/+-1 values and "
                             "some do not: NeuroBench would count the first layer as ACs in some, MACs in others")
    if args.model is None:
        if tuple(x.shape[1:]) != (1, 8, 8):
            raise ParameterError(args.inputs, "--inputs", f"the built-in digits CNN reads [n, 1, 8, 8], got {list(x.shape)}")
        net, model_name = digits_cnn(), "snntorch_digits_cnn"
        if args.epochs:
            from sim.record.data import load_digits

            tr, _ = load_digits()
            train(net, tr.x, tr.y, args.T, args.epochs, args.seed)
    else:
        from sim.cli.record_model_cmd import _load_checkpoint, _load_factory

        net = _load_factory(args.model)
        if not isinstance(net, torch.nn.Module):
            raise ParameterError(args.model, None, f"the factory returned {type(net).__name__}, not a torch.nn.Module")
        if args.checkpoint:
            _load_checkpoint(net, args.checkpoint)
        model_name = args.model.rpartition(":")[2]
    net.eval()
    with tempfile.TemporaryDirectory() as tmp:   # ours first: a model the trace cannot express stops here
        trace = args.trace or str(Path(tmp) / "neurobench_crosscheck.h5")
        ours = our_counts(net, x, args.T, trace, model_name, y)
    log(f"NeuroBench SynapticOperations on {len(x)} samples x T={args.T} ...")
    nb = neurobench_counts(net, x, args.T, args.nb_batch)
    doc = {"model": model_name, "inputs": dataset, "samples": len(x), "T": args.T, "neurobench_batch": args.nb_batch,
           "versions": versions}
    per_call = min(args.nb_batch, len(x)) * max(
        (o["ann_dense_macs"] // len(x) - o["padding_taps_per_pass"] for o in ours["layers"].values()
         if o["kind"] in NB_KINDS), default=0)
    if per_call > FLOAT32_EXACT:
        log(f"warning: up to {per_call} operations per layer call: NeuroBench sums them in float32, exact only "
            f"up to {FLOAT32_EXACT}; use a smaller --nb-batch")
    if y is not None:
        doc["readout_accuracy"] = ours["readout_accuracy"]
    return {**doc, "neurobench": {k: nb[k] for k in ("version", "samples", "per_sample", "totals")},
            "ours": {"trace": args.trace, "arch": "memory_hierarchy (workload totals: the same on every architecture)",
                     "totals": ours["totals"]},
            **compare(nb, ours, binary)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", metavar="FILE.py:FACTORY", help="your step-by-step model (default: the built-in "
                    "snnTorch digits CNN, trained --epochs on the digits training split)")
    ap.add_argument("--checkpoint", metavar="CKPT", help="a state_dict loaded into --model's network (as record-model)")
    ap.add_argument("--inputs", default="digits", help="'digits' (the test split, 450 images) or a .npy [n, ...]")
    ap.add_argument("--samples", type=int, help="use the first N inputs")
    ap.add_argument("--T", type=int, default=4, help="time steps per input (default 4)")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs of the built-in model (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="training shuffle seed of the built-in model")
    ap.add_argument("--nb-batch", type=int, default=256, help="NeuroBench's batch size (default 256, as record-model; "
                    "it sums each layer call's count in float32, exact up to 2**24)")
    ap.add_argument("--trace", help="keep our trace here (default: a temporary file)")
    args = ap.parse_args(argv)
    try:
        doc = run(args)
    except SimInputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=1))
    log("all equalities hold" if doc["equal"] else "MISMATCH: see 'equal' fields")
    return 0 if doc["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
