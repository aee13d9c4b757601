"""Quantisation: the Q_T activation of the ANN twin, BN folding, symmetric int8 weights.

Q_T(x) = floor(clamp(x, 0, 1) * T) / T is the paper's activation. An IF neuron with threshold
theta (just below 1) and reset by subtraction of 1 fires floor(T*x + 1 - theta) times under a
constant drive x (clipped to 0..T), so the twin used here shifts the floor's border by
1 - theta (1e-4 for theta = 0.9999): with ``theta=1`` it is the paper's Q_T exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from sim.trace.schema import NeuronModel

#: The paper's IF threshold, just below 1 (sim.trace.schema.NeuronModel's default).
THRESHOLD = NeuronModel.threshold


def qt_level(x: torch.Tensor, T: int, theta: float = THRESHOLD) -> torch.Tensor:
    """Integer level 0..T of Q_T at threshold ``theta`` (float tensor holding integers)."""
    return torch.clamp(torch.floor(x * T + (1.0 - theta)), 0, T)


def quantise_activation(x: torch.Tensor, T: int, theta: float = THRESHOLD) -> torch.Tensor:
    """Q_T(x) with a straight-through gradient: the gradient of clamp(x, 0, 1)."""
    y = x.clamp(0.0, 1.0)
    return y + (qt_level(y, T, theta) / T - y).detach()


class QuantAct(nn.Module):
    """The ANN twin's activation: Q_T with a straight-through gradient.

    ``last_clamped`` keeps clamp(x, 0, 1) of the latest forward when ``keep`` is set, for the
    L1 activation regulariser (its gradient flows through it).
    """

    def __init__(self, T: int, theta: float = THRESHOLD):
        super().__init__()
        self.T, self.theta = int(T), float(theta)
        self.keep = False
        self.last_clamped: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clamp(0.0, 1.0)
        if self.keep:
            self.last_clamped = y
        return y + (qt_level(y, self.T, self.theta) / self.T - y).detach()

    def extra_repr(self) -> str:
        return f"T={self.T}, theta={self.theta}"


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the preceding conv: returns (weight, bias), float64."""
    w = weight.detach().double()
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().double()
    gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(b)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(b)
    inv_std = 1.0 / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    k = gamma * inv_std
    w = w * k.reshape(-1, *([1] * (w.dim() - 1)))
    b = (b - bn.running_mean.detach().double()) * k + beta
    return w, b


def quantise_weight(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor quantisation: (integer weights, scale) with value = int * scale."""
    qmax = 2 ** (bits - 1) - 1
    wmax = float(weight.detach().abs().max())
    scale = wmax / qmax if wmax > 0 else 1.0
    w_int = torch.clamp(torch.round(weight.detach().double() / scale), -qmax, qmax)
    return w_int.to(torch.int8 if bits <= 8 else torch.int16), scale
