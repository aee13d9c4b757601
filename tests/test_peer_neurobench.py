"""Peer cross-check (issue 15, item 6): on the same snnTorch model and inputs, NeuroBench 2.3.0's
SynapticOperations and our replay count the same operations, up to the terms docs/peers.md
names, each computed here on its own:

    Effective_ACs  = our SNN synaptic_ops - Z_spikes
    Effective_MACs = T x our SNN macs (the layer reading the analog input) - Z_analog
    Dense          = T x (our dense ANN MACs - n x P)

(An average pool's sums are our ``adds``, never synaptic ops or MACs, and NeuroBench hooks no
pool: neither side counts them as connections.)

Z: (non-zero input, zero weight) pairs, which NeuroBench skips and a fan-out does not; P: the
zero-padding taps of one dense pass, which our dense count includes and NeuroBench's does not.
Skipped without neurobench or snntorch (optional; docs/peers.md says how to install them).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("neurobench")

from conftest import REPO  # noqa: E402
from sim.record.own_model import record_model  # noqa: E402
from sim.replay import replay  # noqa: E402
from sim.trace import open_trace  # noqa: E402

T = 4
N = 6

#: A newcomer's tiny snnTorch CNN (the trace format needs a neuron after the pool).
MODEL_SRC = textwrap.dedent('''
    import snntorch as snn
    import torch
    from torch import nn


    class TinySNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.lif1 = snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True)
            self.pool = nn.AvgPool2d(2)
            self.lif2 = snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True)
            self.flat = nn.Flatten()
            self.fc1 = nn.Linear(4 * 4 * 4, 16)
            self.lif3 = snn.Leaky(beta=0.8, threshold=0.3, init_hidden=True, reset_mechanism="zero")
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            x = self.lif2(self.pool(self.lif1(self.conv1(x))))
            return self.fc2(self.lif3(self.fc1(self.flat(x))))


    def make():
        torch.manual_seed(0)
        return TinySNN()


    def make_pruned():
        """Some weights exactly zero: NeuroBench skips them, a fan-out counts them."""
        m = make()
        with torch.no_grad():
            m.conv1.weight[:, :, 0, :] = 0
            m.fc1.weight[:, ::3] = 0
            m.fc2.weight[::2, :] = 0
        return m
''')


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("peer") / "tiny_snn.py"
    path.write_text(MODEL_SRC)
    return path


def load(path, factory):
    spec = importlib.util.spec_from_file_location("_peer_tiny_snn", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, factory)()


def inputs(binary: bool = False) -> np.ndarray:
    """[N, 1, 8, 8] in [0, 1) with a third of the pixels exactly zero (binary: 0/1 pixels)."""
    rng = np.random.default_rng(3)
    x = rng.random((N, 1, 8, 8)).astype(np.float32)
    x[rng.random(x.shape) < 0.33] = 0
    return (x > 0.5).astype(np.float32) if binary else x


def neurobench_totals(net, x):
    """NeuroBench's own pipeline: SNNTorchModel, Benchmark, SynapticOperations; returns the
    metric's integer accumulators and its per-sample results."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel
    from snntorch import utils
    from torch.utils.data import DataLoader, TensorDataset

    class StepTuple(torch.nn.Module):   # SNNTorchModel unpacks net(x_t) as (spikes, membrane)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x_t):
            out = self.inner(x_t)
            return out, out

        def reset(self):   # what SNNTorchModel does with the net it wraps
            self.inner.reset() if hasattr(self.inner, "reset") else utils.reset(self.inner)

    xt = torch.as_tensor(x)
    seq = xt.unsqueeze(1).repeat(1, T, 1, 1, 1)
    loader = DataLoader(TensorDataset(seq, torch.zeros(N, dtype=torch.long)), batch_size=N)
    bench = Benchmark(SNNTorchModel(StepTuple(net)), loader, [], [], [[], [SynapticOperations]])
    per_sample = bench.run(quiet=True)["SynapticOperations"]
    m = bench.workload_metric_manager.metrics["SynapticOperations"]
    bench.workload_metric_manager.cleanup_hooks(bench.model)
    assert m.total_samples == N
    return {"AC": int(m.AC), "MAC": int(m.MAC), "Dense": int(m.total_synops)}, per_sample


def our_counts(net, x, out):
    """Per layer: SNN totals, dense ANN-twin totals (zero_skipping off), the LayerSpecs."""
    record_model(net, x, T, out)
    with open_trace(out) as tr:
        (snn,) = replay(tr, "memory_hierarchy", ["snn"], "paper_v1_45nm", progress=False)
        (ann,) = replay(tr, "memory_hierarchy", ["ann"], "paper_v1_45nm", progress=False,
                        overrides=["mapping.zero_skipping=false"])
        specs = {l.name: l for l in tr.layers}
    return ({l["name"]: l["totals"] for l in snn["layers"]}, {l["name"]: l["totals"] for l in ann["layers"]},
            snn["totals"], ann["totals"], specs)


def padding_taps(conv) -> int:
    """Kernel taps of one dense pass that fall on zero padding (closed form per output position)."""
    c_out, c_in_g, kh, kw = conv.weight.shape
    h = w = 8   # the inputs' height and width
    (sh, sw), (ph, pw) = conv.stride, conv.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    inside_h = [sum(0 <= o * sh - ph + k < h for k in range(kh)) for o in range(oh)]
    inside_w = [sum(0 <= o * sw - pw + k < w for k in range(kw)) for o in range(ow)]
    return c_out * c_in_g * sum(kh * kw - a * b for a in inside_h for b in inside_w)


def zero_weight_pairs(net, x, trace) -> dict[str, int]:
    """(non-zero input, zero weight) pairs per layer over all samples and steps, from our
    trace's recorded spikes and the analog input (conv1 reads the same input every step)."""
    z = {}
    wz = (net.conv1.weight == 0).double()
    z["conv1"] = T * int(torch.nn.functional.conv2d((torch.as_tensor(x) != 0).double(), wz,
                                                    padding=net.conv1.padding).sum())
    with open_trace(trace) as tr:
        for name in ("fc1", "fc2"):
            zeros_per_input = (getattr(net, name).weight == 0).sum(0).numpy()   # zero weights leaving input j
            z[name] = int(sum((tr.input_spikes(name, i).reshape(T, -1) * zeros_per_input).sum() for i in range(N)))
    return z


@pytest.mark.parametrize("factory, binary", [("make", False), ("make_pruned", False), ("make", True)])
def test_synaptic_ops_equal_neurobench(model_file, tmp_path, factory, binary):
    x = inputs(binary)
    net = load(model_file, factory)
    nb, per_sample = neurobench_totals(net, x)
    snn_l, ann_l, snn_t, ann_t, specs = our_counts(net, x, tmp_path / "tiny.h5")
    assert [specs[n].kind for n in ("conv1", "pool", "fc1", "fc2")] == ["conv2d", "avgpool", "linear", "linear"]
    assert all(snn_l[n]["spikes_in"] > 0 for n in ("pool", "fc1", "fc2")), "a silent layer would prove nothing"
    z = zero_weight_pairs(net, x, tmp_path / "tiny.h5")
    assert (factory == "make_pruned") == (min(z.values()) > 0)
    assert snn_l["conv1"]["synaptic_ops"] == 0 and snn_l["pool"]["synaptic_ops"] == 0 < snn_l["pool"]["adds"]
    assert ann_l["pool"]["macs"] == 0 < ann_l["pool"]["adds"]
    assert snn_t["macs"] == snn_l["conv1"]["macs"] > 0

    # Our synaptic ops (conv/linear only: the pool's sums are adds) less the zero-weight pairs
    # NeuroBench skips.
    spikes = snn_t["synaptic_ops"] - z["fc1"] - z["fc2"]
    # The layer reading the analog input: MACs in both, but NeuroBench computes them every step,
    # we once (the same input every step gives the same current).
    analog = T * snn_t["macs"] - z["conv1"]
    # NeuroBench files a layer under ACs when its input holds only 0/+-1: binary pixels too.
    assert (nb["AC"], nb["MAC"]) == ((spikes + analog, 0) if binary else (spikes, analog))
    # Dense: one dense pass per step there, one per sample here; the padding taps are in our
    # dense count only.
    assert nb["Dense"] == T * (ann_t["macs"] - N * padding_taps(net.conv1))
    assert padding_taps(net.conv1) == 4 * (4 * 5 + 24 * 3)   # 4 channels x (4 corners x 5 + 24 edges x 3)
    # NeuroBench's reported figures are these totals per sample.
    assert per_sample["Effective_ACs"] == pytest.approx(nb["AC"] / N)
    assert per_sample["Effective_MACs"] == pytest.approx(nb["MAC"] / N)
    assert per_sample["Dense"] == pytest.approx(nb["Dense"] / N)


def test_benchmark_script_reports_the_equalities(model_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", inputs())
    spec = importlib.util.spec_from_file_location("_peer_bench", REPO / "benchmarks" / "peers" / "neurobench_synops.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rc = bench.main(["--model", f"{model_file}:make_pruned", "--inputs", str(tmp_path / "x.npy"), "--T", str(T)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["equal"] is True
    f = doc["formula"]
    assert f["Effective_ACs"]["minus_zero_weight_pairs"] > 0 and f["Effective_MACs"]["minus_zero_weight_pairs"] > 0
    assert f["Dense"]["minus_padding_taps"] == N * padding_taps(load(model_file, "make").conv1)
    assert {r["name"]: (r["neurobench"] or {}).get("class") for r in doc["layers"]} == {
        "conv1": "MAC", "pool": None, "fc1": "AC", "fc2": "AC"}
    sys.modules.pop("_peer_bench", None)
