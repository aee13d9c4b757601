"""The converted IF SNN fires exactly T x the ANN twin's Q_T level, neuron by neuron."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sim.record.convert import convert  # noqa: E402
from sim.record.models import build_model  # noqa: E402
from sim.record.recorder import EventHooks  # noqa: E402


def random_trained_like(name: str, T: int, seed: int):
    """A network with random weights and BN statistics, in eval mode (no training needed)."""
    torch.manual_seed(seed)
    model = build_model(name, T)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.4)
    return model.eval()


@pytest.mark.parametrize("name,T,seed", [("digits_cnn", 6, 0), ("digits_cnn", 4, 1), ("tiny", 8, 2),
                                         ("vgg_small", 6, 3)])
def test_snn_spike_counts_equal_T_times_twin_levels_on_random_inputs(name, T, seed):
    torch.set_num_threads(1)
    model = random_trained_like(name, T, seed)
    conv = convert(model)
    x = torch.randn(8, *model.input_shape, generator=torch.Generator().manual_seed(seed))
    with EventHooks(conv.snn) as hs, EventHooks(conv.twin) as ha:
        potential = conv.snn(x)
        logits = conv.twin(x)
    checked = 0
    for spec in conv.specs:
        if spec.output != "spikes":
            continue
        spikes, levels = hs.outputs[spec.name], ha.outputs[spec.name]
        assert spikes.shape == (T, 8, *spec.output_shape) and spikes.dtype == torch.bool
        assert levels.shape == (8, *spec.output_shape)
        assert torch.equal(spikes.sum(0), levels.long()), spec.name
        assert 0 < int(levels.long().sum()) < T * levels.numel()   # neither silent nor saturated
        checked += 1
    assert checked == sum(s.output == "spikes" for s in conv.specs)
    # the readout sums W s_t + b over T: T x the twin's logits
    assert torch.allclose(potential, T * logits, rtol=1e-12, atol=1e-9)


def test_each_layer_after_the_first_consumes_the_previous_layers_spikes():
    model = random_trained_like("digits_cnn", 6, 0)
    conv = convert(model)
    x = torch.randn(3, 1, 8, 8)
    with EventHooks(conv.snn) as hs:
        conv.snn(x)
    assert torch.equal(hs.inputs["conv1"], x)
    assert hs.inputs["conv2"] is hs.outputs["conv1"]
    assert torch.equal(hs.inputs["fc1"], hs.outputs["pool1"].flatten(2))


def test_twin_and_snn_use_the_same_int8_bn_folded_weights():
    model = random_trained_like("digits_cnn", 6, 0)
    conv = convert(model)
    for q in conv.layers:
        if q.weight is None:
            continue
        assert q.weight.dtype == torch.int8 and tuple(q.weight.shape) == q.spec.weight_shape
        for net in (conv.snn, conv.twin):
            assert torch.equal(net.layers[q.spec.name].weight.long(), q.weight.long())


def test_twin_agrees_with_the_float_qann_it_was_converted_from():
    model = random_trained_like("digits_cnn", 6, 0)
    conv = convert(model)
    x = torch.rand(64, 1, 8, 8)
    _, float_levels = model.forward_levels(x)
    with EventHooks(conv.twin) as ha:
        conv.twin(x)
    for name in ("conv1", "conv2"):
        same = (ha.outputs[name].double() == torch.round(float_levels[name].double() * 6)).double().mean()
        assert float(same) > 0.97, name   # int8 weights move a few neurons by one level
