"""Recorded traces: the right geometry, the SNN/twin identity layer by layer, self-consistent weights.

Covers a trace recorded here from a quickly trained digits CNN and the bundled traces in
traces/ (digits_snn_T6.h5, vgg16_fmnist_T6.h5).
"""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import torch.nn.functional as F  # noqa: E402

from sim.trace import open_trace  # noqa: E402
from sim.trace.shapes import model_layers  # noqa: E402
from sim.trace.schema import with_graph  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "traces" / "digits_snn_T6.h5"
VGG16 = REPO / "traces" / "vgg16_fmnist_T6.h5"
ONE = 1 << 24


def twin_levels_from_stored(tr, name, prev_values, analog):
    """The twin's levels of layer ``name`` recomputed from the trace alone (weights + inputs).

    Mirrors the recorder's arithmetic: exact integer accumulation, float64 drive
    (acc * scale) * (1/T) + bias, rounded to multiples of 2^-24, then Q_T at the threshold.
    """
    spec, T = tr.layer(name), tr.T
    x = torch.from_numpy(np.asarray(prev_values, dtype=np.float64))[None]
    per_value = 1.0 if analog else 1.0 / T
    if spec.kind == "avgpool":
        a = F.avg_pool2d(x, spec.kernel, spec.stride, spec.padding, divisor_override=1)
        z = a / (spec.kernel[0] * spec.kernel[1]) * per_value
    else:
        w, scale = tr.weights(name)
        w = torch.from_numpy(w.astype(np.float64))
        a = F.conv2d(x, w, None, spec.stride, spec.padding) if spec.kind == "conv2d" else F.linear(x.flatten(1), w)
        if not analog:
            a = torch.round(a)
        b = torch.from_numpy(tr.bias(name).astype(np.float64))
        z = a * scale * per_value + b.reshape(1, -1, *([1] * (a.dim() - 2)))
    z_fix = torch.round(z.clamp(-1, 1) * ONE).to(torch.int64)
    th = round(tr.meta.neuron.threshold * ONE)
    return (torch.div(T * z_fix - th, ONE, rounding_mode="floor") + 1).clamp(0, T)[0].numpy()


def check_trace(path, model, T, samples_to_recompute=2):
    with open_trace(path) as tr:
        assert tr.layers == with_graph(model_layers(model, T)[0], tr.meta.neuron)
        assert tr.T == T and tr.meta.model == model and not tr.meta.synthetic
        assert tr.meta.recorder.startswith("sim.record")
        assert set(tr.meta.library_versions) >= {"torch", "numpy", "h5py"}
        assert tr.meta.weight_bits == 8 and tr.meta.encoding == "direct"
        for layer in tr.layers:
            if layer.n_weights:
                w, scale = tr.weights(layer.name)
                assert w.dtype == np.int8 and w.shape == layer.weight_shape and scale > 0
        spiking = [l for l in tr.layers if l.output == "spikes"]
        readout = tr.layers[-1]
        correct = 0
        for i in range(tr.n_samples):
            for layer in spiking:
                counts = tr.spikes(layer.name, i).sum(0)
                np.testing.assert_array_equal(counts, tr.activations(layer.name, i), err_msg=f"{layer.name} sample {i}")
            pot, ann = tr.potential(readout.name, i), tr.ann_output(readout.name, i)
            np.testing.assert_allclose(pot, T * ann, rtol=1e-5, atol=1e-4)
            correct += int(np.argmax(pot) == tr.labels()[i])
        # the stored weights reproduce the stored levels: the trace is self-consistent
        for i in range(min(samples_to_recompute, tr.n_samples)):
            prev, analog = tr.input(i), True
            for layer in tr.layers:
                if layer.kind == "flatten":
                    prev = np.asarray(prev).reshape(-1)
                    continue
                if layer.output != "spikes":
                    break
                got = twin_levels_from_stored(tr, layer.name, prev, analog)
                stored = tr.activations(layer.name, i)
                if analog:   # float conv of the analog input: summation order may differ in the last bit
                    assert np.mean(got == stored) > 0.999, layer.name
                else:
                    np.testing.assert_array_equal(got, stored, err_msg=f"{layer.name} sample {i}")
                prev, analog = stored, False
        return correct / tr.n_samples


@pytest.fixture(scope="module")
def trained_digits():
    from sim.record.data import load_digits
    from sim.record.train import TrainConfig, train

    tr, te = load_digits()
    cfg = TrainConfig("digits_cnn", "digits", T=6, epochs=4, batch_size=32, lr=3e-3, lambda_a=1e-4, threads=1)
    model, history = train(cfg, tr, te, progress=False, log=open("/dev/null", "w"))
    return model, history, te


def test_training_with_the_regularisers_learns_the_digits(trained_digits):
    _, history, _ = trained_digits
    assert len(history.epochs) == 4
    assert history.epochs[-1].test_accuracy > 0.85
    assert 0 < history.epochs[-1].spike_rate < 0.5


def test_recorded_trace_holds_the_snn_twin_identity_layer_by_layer(trained_digits, tmp_path):
    from sim.record.convert import convert
    from sim.record.recorder import record_trace

    model, _, te = trained_digits
    out = tmp_path / "digits.h5"
    res = record_trace(convert(model), te, 20, out, dataset="digits", batch_size=8, progress=False)
    assert res.samples == 20 and out.exists()
    acc = check_trace(out, "digits_cnn", 6)
    assert acc == res.snn_correct / 20


def test_recorded_labels_and_inputs_are_the_test_samples(trained_digits, tmp_path):
    from sim.record.convert import convert
    from sim.record.recorder import record_trace

    model, _, te = trained_digits
    out = tmp_path / "d.h5"
    record_trace(convert(model), te, 5, out, dataset="digits", progress=False)
    with open_trace(out) as tr:
        np.testing.assert_array_equal(tr.labels(), te.y[:5].numpy())
        np.testing.assert_array_equal(tr.input(3), te.x[3].numpy())


@pytest.mark.skipif(not DIGITS.exists(), reason="bundled digits trace not present")
def test_bundled_digits_trace_is_consistent_and_at_least_95_percent_accurate():
    acc = check_trace(DIGITS, "digits_cnn", 6, samples_to_recompute=4)
    assert acc >= 0.95


@pytest.mark.skipif(not VGG16.exists(), reason="bundled VGG16 trace not present")
def test_bundled_vgg16_trace_is_consistent_layer_by_layer():
    torch.set_num_threads(2)
    check_trace(VGG16, "vgg16", 6, samples_to_recompute=1)
    with open_trace(VGG16) as tr:
        assert tr.n_samples >= 8 and tr.meta.dataset == "fashion-mnist"
