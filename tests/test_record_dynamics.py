"""`record --dynamics window|causal`: the causal converted SNN equals a step-by-step reference,
window traces are as before, and a causal trace says so, replays and validates exactly."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import torch.nn.functional as F  # noqa: E402

from conftest import run_cli  # noqa: E402
from sim.record.convert import convert  # noqa: E402
from sim.record.data import Split  # noqa: E402
from sim.record.recorder import EventHooks, record_trace  # noqa: E402
from sim.record.train import TrainConfig, save_checkpoint  # noqa: E402
from sim.trace import open_trace  # noqa: E402
from test_record_convert import random_trained_like  # noqa: E402

ONE = 1 << 24


def reference_causal(conv, x):
    """The converted SNN run step by step, written independently of convert.py.

    For t in 0..T-1 and for each layer in order: drive = scale * (W_int . s_t) + b (layer 1:
    the analog input; avgpool: window sum / area), rounded to multiples of 2^-24; the IF
    membrane (int) integrates it, fires at >= theta and subtracts one unit. The readout sums
    its drive over the steps. Returns (spikes per layer [T, B, *out], readout [B, F])."""
    T, th = conv.T, round(conv.theta * ONE)
    membranes, spikes, readout = {}, {q.spec.name: [] for q in conv.layers}, 0.0
    for _ in range(T):
        s, analog = x.double(), True
        for q in conv.layers:
            spec = q.spec
            if spec.kind == "flatten":
                s = s.flatten(1)
                continue
            if spec.kind == "avgpool":
                a = F.avg_pool2d(s, spec.kernel, spec.stride, spec.padding, divisor_override=1)
                z = a / (spec.kernel[0] * spec.kernel[1])
            else:
                w = q.weight.double()
                a = F.conv2d(s, w, None, spec.stride, spec.padding, 1, spec.groups) if spec.kind == "conv2d" \
                    else F.linear(s, w)
                b = q.bias.double().reshape(1, -1, *([1] * (a.dim() - 2)))
                z = a * q.scale + b
            if spec.output == "potential":
                readout = readout + z
                continue
            if analog:   # a constant drive: clipping to [-1, 1] (as the window converter does) changes no spike
                z = z.clamp(-1, 1)
            v = membranes.get(spec.name, 0) + torch.round(z * ONE).long()
            fired = v >= th
            membranes[spec.name] = v - fired.long() * ONE
            spikes[spec.name].append(fired)
            s, analog = fired.double(), False
    return {k: torch.stack(v) for k, v in spikes.items() if v}, readout


@pytest.mark.parametrize("name,T,seed", [("digits_cnn", 6, 0), ("tiny", 4, 2), ("vgg_small", 3, 3)])
def test_causal_spikes_equal_a_step_by_step_reference(name, T, seed):
    torch.set_num_threads(1)
    model = random_trained_like(name, T, seed)
    conv = convert(model, dynamics="causal")
    x = torch.randn(4, *model.input_shape, generator=torch.Generator().manual_seed(seed))
    with EventHooks(conv.snn) as hs:
        potential = conv.snn(x)
    ref, ref_readout = reference_causal(conv, x)
    assert set(ref) == {s.name for s in conv.specs if s.output == "spikes"}
    for layer, spikes in ref.items():
        assert torch.equal(hs.outputs[layer], spikes), layer
        assert 0 < int(spikes.sum()) < spikes.numel(), layer   # neither silent nor saturated
    assert torch.allclose(potential, ref_readout, rtol=1e-12, atol=1e-9)


def test_causal_changes_spike_counts_but_not_the_first_layer_or_the_twin():
    model = random_trained_like("digits_cnn", 6, 0)
    window, causal = convert(model), convert(model, dynamics="causal")
    x = torch.randn(8, *model.input_shape, generator=torch.Generator().manual_seed(1))
    with EventHooks(window.snn) as hw, EventHooks(causal.snn) as hc:
        window.snn(x)
        causal.snn(x)
    assert torch.equal(hw.outputs["conv1"], hc.outputs["conv1"])   # the analog input is constant
    assert not torch.equal(hw.outputs["conv2"].sum(0), hc.outputs["conv2"].sum(0))
    assert torch.equal(window.twin(x), causal.twin(x))


def test_convert_refuses_unknown_dynamics():
    with pytest.raises(ValueError, match="dynamics"):
        convert(random_trained_like("tiny", 4, 0), dynamics="bogus")


@pytest.fixture(scope="module")
def digits_data():
    from sim.record.data import load_digits

    _, te = load_digits()
    return Split(te.x[:6], te.y[:6])


def test_window_trace_holds_the_same_events_as_before(digits_data, tmp_path):
    model = random_trained_like("digits_cnn", 6, 0)
    conv = convert(model)                       # default: window
    out = tmp_path / "w.h5"
    record_trace(conv, digits_data, 6, out, dataset="digits", progress=False)
    with EventHooks(conv.snn) as hs, EventHooks(conv.twin) as ha:
        conv.snn(digits_data.x)
        conv.twin(digits_data.x)
    with open_trace(out) as tr:
        assert tr.meta.dynamics == "window" and tr.meta.twin_levels == "spike_counts"
        for spec in conv.specs:
            if spec.output != "spikes":
                continue
            for b in range(6):
                np.testing.assert_array_equal(tr.spikes(spec.name, b), hs.outputs[spec.name][:, b].numpy())
                np.testing.assert_array_equal(tr.activations(spec.name, b), ha.outputs[spec.name][b].numpy())


@pytest.fixture(scope="module")
def causal_trace(tmp_path_factory, digits_data):
    """A causal trace written through the CLI from a saved (untrained, random-BN) checkpoint."""
    from sim.record.train import History

    d = tmp_path_factory.mktemp("causal")
    ck, out, js = d / "c.pt", d / "c.h5", d / "c.json"
    model = random_trained_like("digits_cnn", 6, 0)
    save_checkpoint(ck, model, TrainConfig("digits_cnn", "digits", T=6, epochs=0), History())
    res = run_cli("record", ck, "--samples", "4", "--eval-samples", "20", "--dynamics", "causal",
                  "--threads", "1", "--no-progress", "--out", out, "--json", js)
    assert res.returncode == 0, res.stderr
    return out, json.loads(js.read_text())


def test_causal_trace_declares_its_dynamics_and_independent_twin_levels(causal_trace):
    out, figures = causal_trace
    assert figures["dynamics"] == "causal"
    with open_trace(out) as tr:
        assert tr.meta.dynamics == "causal" and tr.meta.twin_levels == "independent"
    res = run_cli("inspect", out, "--json", "-")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["dynamics"] == "causal"
    assert "dynamics: causal" in run_cli("inspect", out).stdout


def test_causal_trace_replays_and_validates_ideal_exactly(causal_trace, tmp_path):
    out, _ = causal_trace
    res = run_cli("validate", out, "--arch", "all", "--ideal", "--quiet", "--json", tmp_path / "v.json")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["ok"] is True and all(r["agree"] for r in doc["runs"])


def test_a_bad_dynamics_value_is_a_one_line_usage_error(tmp_path):
    res = run_cli("record", tmp_path / "x.pt", "--samples", "2", "--out", tmp_path / "x.h5", "--dynamics", "async")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dynamics" in lines[0] and "async" in lines[0]
    assert not (tmp_path / "x.h5").exists()


def test_a_trace_with_an_unknown_dynamics_is_rejected_in_one_line_naming_it(causal_trace, tmp_path):
    import shutil

    import h5py

    bad = tmp_path / "bad.h5"
    shutil.copy(causal_trace[0], bad)
    with h5py.File(bad, "a") as f:
        f.attrs["dynamics"] = "async"
    res = run_cli("inspect", bad)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "dynamics" in lines[0] and "async" in lines[0]
