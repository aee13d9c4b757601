"""The IF neuron and the Q_T twin compute the same function (the identity behind conversion)."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sim.record.neurons import (  # noqa: E402
    ONE, IFNeuron, fixed_threshold, if_response, if_spikes_fixed, qt_level_fixed, to_fixed,
)
from sim.record.quant import QuantAct, fold_bn, qt_level, quantise_activation, quantise_weight  # noqa: E402

THETA = 0.9999


@pytest.mark.parametrize("T", [1, 4, 6, 8, 16])
def test_fixed_point_if_fires_exactly_T_times_the_qt_level_for_any_drive(T):
    g = torch.Generator().manual_seed(T)
    z = torch.cat([
        torch.rand(200_000, generator=g, dtype=torch.float64) * 4 - 1.5,        # far out of range too
        torch.arange(0, T + 1, dtype=torch.float64) / T,                        # exact level borders
        (torch.arange(0, T + 1, dtype=torch.float64) + THETA) / T,              # the threshold border
        (torch.arange(0, T + 1, dtype=torch.float64) + THETA) / T - 2.0 ** -30,
    ])
    zf = to_fixed(z, T)
    spikes = if_spikes_fixed(zf, T, THETA)
    assert spikes.shape == (T, *z.shape)
    assert torch.equal(spikes.sum(0), qt_level_fixed(zf, T, THETA).long())


def test_fixed_point_level_is_the_q_t_of_the_drive_on_the_fixed_point_grid():
    T = 6
    z = torch.rand(100_000, dtype=torch.float64) * 1.4 - 0.2
    zq = to_fixed(z).double() / ONE
    assert torch.equal(qt_level_fixed(to_fixed(z), T, THETA).double(), qt_level(zq, T, THETA))


def test_a_drive_of_exactly_k_over_T_fires_k_times():
    T = 6
    z = torch.arange(0, T + 1, dtype=torch.float64) / T
    assert if_spikes_fixed(to_fixed(z), T).sum(0).tolist() == list(range(T + 1))


def test_float_if_neuron_matches_qt_for_in_range_currents():
    """In float, 'in range' = T*z not within 1e-6 of the firing border k + theta."""
    T = 6
    z = torch.rand(500_000, dtype=torch.float64) * 1.2 - 0.1
    frac = torch.remainder(T * z - THETA, 1.0)
    z = z[(frac > 1e-6) & (frac < 1 - 1e-6)]
    counts = if_response(z, T, THETA).sum(0)
    assert torch.equal(counts.double(), qt_level(z, T, THETA))


def test_if_neuron_has_no_leak_and_resets_by_subtracting_one():
    n = IFNeuron(threshold=THETA)
    out = [float(n(torch.tensor([0.75]))) for _ in range(4)]
    assert out == [0.0, 1.0, 1.0, 1.0]          # v: .75, 1.5->.5, 1.25->.25, 1.0->0
    assert abs(float(n.v) - 0.0) < 1e-12
    with pytest.raises(ValueError):
        fixed_threshold(1.5)


def test_q_t_has_T_plus_one_levels_and_a_straight_through_gradient():
    T = 6
    x = torch.linspace(-0.5, 1.5, 401, requires_grad=True)
    y = quantise_activation(x, T, theta=1.0)
    assert torch.allclose(y * T, torch.round(y * T))
    assert set((y * T).round().long().tolist()) == set(range(T + 1))
    assert torch.equal(y.detach(), torch.floor(x.detach().clamp(0, 1) * T) / T)   # theta=1: the paper's Q_T
    y.sum().backward()
    inside = (x.detach() >= 0) & (x.detach() <= 1)
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[~inside] == 0)


def test_quant_act_keeps_clamped_input_for_the_activation_regulariser():
    act = QuantAct(6)
    act.keep = True
    x = torch.tensor([-1.0, 0.3, 2.0])
    act(x)
    assert act.last_clamped.tolist() == pytest.approx([0.0, 0.3, 1.0])


def test_bn_folding_reproduces_conv_then_batchnorm():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False).double()
    bn = torch.nn.BatchNorm2d(5).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    w, b = fold_bn(conv.weight, None, bn)
    folded = torch.nn.functional.conv2d(x, w, b, padding=1)
    assert torch.allclose(folded, bn(conv(x)), atol=1e-12)


def test_int8_weights_round_to_within_half_a_step():
    w = torch.randn(64, 32, 3, 3, dtype=torch.float64)
    w_int, scale = quantise_weight(w, 8)
    assert w_int.dtype == torch.int8 and int(w_int.abs().max()) == 127
    assert float((w_int.double() * scale - w).abs().max()) <= scale / 2 + 1e-12
