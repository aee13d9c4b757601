"""The torch networks have exactly the layer geometry of sim.trace.shapes."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sim.record.models import MODEL_NAMES, build_model, traced_specs  # noqa: E402
from sim.trace.shapes import model_layers  # noqa: E402


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torch_model_geometry_equals_the_trace_shapes(name):
    model = build_model(name, 6)
    assert traced_specs(model) == model_layers(name, 6)[0]
    assert model.specs == model_layers(name, 6)[0]


def test_vgg16_is_the_papers_network():
    model = build_model("vgg16", 6)
    specs = model.specs
    convs = [s for s in specs if s.kind == "conv2d"]
    assert len(convs) == 13 and all(s.kernel == (3, 3) for s in convs)
    assert all(model.blocks[s.name].bn is not None for s in convs)
    assert sum(s.kind == "avgpool" for s in specs) == 5
    readout = specs[-1]
    assert (readout.kind, readout.input_shape, readout.output_shape, readout.output) == ("linear", (512,), (10,), "potential")
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_activation_regulariser_sums_clamped_conv_outputs_per_sample():
    torch.manual_seed(0)
    model = build_model("digits_cnn", 6)
    model.keep_activations(True)
    model(torch.rand(4, 1, 8, 8))
    expected = sum(float(model.blocks[n].act.last_clamped.detach().sum()) for n in ("conv1", "conv2")) / 4
    assert model.conv_activation_l1().item() == pytest.approx(expected)
    model.keep_activations(False)
    assert float(model.conv_activation_l1()) == 0.0
