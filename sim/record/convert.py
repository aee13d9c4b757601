"""Convert a trained Q_T ANN into its layer-by-layer equivalent IF SNN and its exact ANN twin.

Steps: fold each BatchNorm into the preceding conv; quantise every conv/linear weight to
symmetric per-tensor int8 (value = int * scale; bias kept as float32); build two networks over
the *same* quantised parameters:

- the SNN: layer 1 is driven directly by the analog input (direct encoding); every later
  layer's drive per time step is the constant W . (mean over T of its input spikes) + b, i.e.
  scale * (W_int . counts) / T + b, computed from the integer spike counts; an IF neuron
  (:mod:`sim.record.neurons`) turns it into T steps of spikes. Average pooling is a fixed-weight
  sum (1 / kernel area) followed by re-spiking. The readout layer does not fire: its
  potential is summed over T, i.e. scale * (W_int . counts) + T * b.
  With ``dynamics="causal"`` the SNN instead runs step by step, as a causal chip would: at
  step t every layer after the first integrates scale * (W_int . s_t) + b from its input
  spikes of the same step t (a pipeline without delay; layer 1 still gets the analog input at
  every step, avgpool the window sum of s_t / kernel area), so no layer waits for the window.
  The readout is unchanged (the sum over t of W s_t + b is linear in the counts). The spike
  counts then no longer equal T x the twin's levels.
- the ANN twin: the same layers on integer Q_T levels instead of spike counts; each level is
  Q_T of the same drive (:func:`sim.record.neurons.qt_level_fixed`); the readout gives logits.

Integer-input layers accumulate W_int . counts in float32 (float64 when fan_in*T*127 >= 2^24)
and round, so the accumulator is the exact integer; the drive is then formed in float64 and
rounded to the 2^-24 fixed-point grid. Both networks therefore see bit-identical drives and
the SNN's spike count equals T x the twin's Q_T level for every neuron, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sim.record.models import QANN
from sim.record.neurons import if_spikes_fixed, if_spikes_steps, qt_level_fixed, to_fixed, to_fixed_steps
from sim.record.quant import fold_bn, quantise_weight
from sim.arch.registry import MODES
from sim.trace.schema import DYNAMICS, LayerSpec


@dataclass
class QuantisedLayer:
    """A layer's parameters after BN folding and weight quantisation."""

    spec: LayerSpec
    weight: torch.Tensor | None = None   # int8, LayerSpec.weight_shape
    scale: float = 1.0                    # value = weight * scale
    bias: torch.Tensor | None = None      # float32, one per output channel / feature


def quantise_network(model: QANN, weight_bits: int = 8) -> list[QuantisedLayer]:
    """Fold BN and quantise the weights of every conv/linear layer of a trained Q_T ANN."""
    out = []
    for block in model.blocks.values():
        spec = block.spec
        if spec.kind in ("conv2d", "linear"):
            w, b = block.op.weight, block.op.bias
            if block.bn is not None:
                w, b = fold_bn(w, b, block.bn)
            else:
                w = w.detach().double()
                b = torch.zeros(w.shape[0], dtype=torch.float64) if b is None else b.detach().double()
            w_int, scale = quantise_weight(w.reshape(spec.weight_shape), weight_bits)
            out.append(QuantisedLayer(spec, w_int, scale, b.float()))
        else:
            out.append(QuantisedLayer(spec))
    return out


class EquivalentLayer(nn.Module):
    """One layer of the converted SNN (mode ``snn``) or of its ANN twin (mode ``ann``).

    SNN mode maps input spikes bool [T, B, *in] (or the analog input [B, *in] at layer 1) to
    output spikes bool [T, B, *out], or to the readout potential summed over T, float64 [B, F].
    ANN mode maps levels [B, *in] (or the analog input) to levels uint8 [B, *out], or to logits.
    """

    def __init__(self, q: QuantisedLayer, T: int, theta: float, mode: str, analog_input: bool,
                 dynamics: str = "window"):
        super().__init__()
        if mode not in MODES or dynamics not in DYNAMICS:
            raise ValueError(f"{mode}/{dynamics}")
        self.dynamics = dynamics
        self.spec, self.T, self.theta, self.mode = q.spec, int(T), float(theta), mode
        self.analog_input = analog_input
        self.scale = float(q.scale)
        fan_bound = q.spec.fan_in * T * 127
        self.acc_dtype = torch.float64 if (analog_input or fan_bound >= 2 ** 24) else torch.float32
        w = q.weight.to(self.acc_dtype) if q.weight is not None else None
        self.register_buffer("weight", w, persistent=False)
        self.register_buffer("bias", q.bias.double() if q.bias is not None else None, persistent=False)

    def _accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """W_int . x (conv/linear) or the window sum (avgpool), float64; exact for integer x."""
        s = self.spec
        x = x.to(self.acc_dtype)
        if s.kind == "conv2d":
            a = F.conv2d(x, self.weight, None, s.stride, s.padding, 1, s.groups)
        elif s.kind == "linear":
            a = F.linear(x, self.weight)
        elif s.kind == "avgpool":
            a = F.avg_pool2d(x, s.kernel, s.stride, s.padding, divisor_override=1)
        else:
            raise ValueError(s.kind)
        if not self.analog_input:
            a = a.round_()
        return a.double()

    def drive(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step input current (float64) from analog input or integer counts/levels.

        Evaluated as ((acc * scale) * (1/T)) + bias in float64, in place (the order matters for
        bit-exact recomputation from a trace; see tests/test_record_traces.py).
        """
        s, a = self.spec, self._accumulate(x)
        per_value = 1.0 if self.analog_input else 1.0 / self.T   # a count c stands for c / T
        if s.kind == "avgpool":
            return a.div_(s.kernel[0] * s.kernel[1]).mul_(per_value)
        a.mul_(self.scale).mul_(per_value)
        return a.add_(_per_channel(self.bias, a)) if self.bias is not None else a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if s.kind == "flatten":
            return x.flatten(2) if self.mode == "snn" else x.flatten(1)
        if self.mode == "snn" and not self.analog_input:
            if self.dynamics == "causal" and s.output == "spikes":
                return self._causal_spikes(x)
            x = x.sum(0, dtype=torch.int32)       # spike counts over the window
        if s.output == "potential":
            a = self._accumulate(x)
            if self.mode == "snn":
                # sum over t of (W s_t + b), with 1/T absent: counts are sums of spikes
                scale = self.scale if not self.analog_input else self.scale * self.T
                return a * scale + self.T * _per_channel(self.bias, a)
            return self.drive(x)
        z = to_fixed(self.drive(x), self.T)
        if self.mode == "snn":
            return if_spikes_fixed(z, self.T, self.theta)
        return qt_level_fixed(z, self.T, self.theta)

    def _causal_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """Output spikes bool [T, B, *out] when step t is driven by the input spikes s_t alone.

        Each step's drive is scale * (W_int . s_t) + b (avgpool: window sum of s_t / kernel
        area), with W_int . s_t the exact integer; all T steps are accumulated in one batched
        call (a step's drive depends on its own input only) and the membrane then runs over t."""
        s, (T, B) = self.spec, x.shape[:2]
        a = self._accumulate(x.flatten(0, 1))
        a = a.reshape(T, B, *a.shape[1:])
        if s.kind == "avgpool":
            z = a.div_(s.kernel[0] * s.kernel[1])
        else:
            z = a.mul_(self.scale)
            if self.bias is not None:
                z.add_(self.bias.reshape(1, 1, -1, *([1] * (z.dim() - 3))))
        return if_spikes_steps(to_fixed_steps(z), self.theta)

    def extra_repr(self) -> str:
        return (f"{self.spec.name}: {self.spec.kind}, mode={self.mode}, T={self.T}, theta={self.theta}"
                + (f", dynamics={self.dynamics}" if self.mode == "snn" else ""))


def _per_channel(bias: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | float:
    if bias is None:
        return 0.0
    return bias.reshape(1, -1, *([1] * (like.dim() - 2)))


class EquivalentNet(nn.Module):
    """The converted SNN or its ANN twin: :class:`EquivalentLayer`s keyed by layer name."""

    def __init__(self, layers: list[QuantisedLayer], T: int, theta: float, mode: str, dynamics: str = "window"):
        super().__init__()
        self.mode, self.T, self.theta, self.dynamics = mode, int(T), float(theta), dynamics
        self.layers = nn.ModuleDict({
            q.spec.name: EquivalentLayer(q, T, theta, mode, analog_input=(i == 0 or _after_input(layers, i)),
                                         dynamics=dynamics)
            for i, q in enumerate(layers)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Readout: SNN potential summed over T, or ANN-twin logits, float64 [B, classes]."""
        for layer in self.layers.values():
            x = layer(x)
        return x


def _after_input(layers: list[QuantisedLayer], i: int) -> bool:
    # a layer fed only through passthroughs from the input still sees analog values
    return all(q.spec.kind == "flatten" for q in layers[:i])


@dataclass
class Converted:
    """The outcome of :func:`convert`: shared quantised parameters, the SNN and the twin."""

    name: str
    T: int
    theta: float
    weight_bits: int
    layers: list[QuantisedLayer]
    snn: EquivalentNet
    twin: EquivalentNet
    dynamics: str = "window"   # the SNN's: "window" (count == T x level, exact) or "causal"

    @property
    def specs(self) -> list[LayerSpec]:
        return [q.spec for q in self.layers]


@torch.no_grad()
def convert(model: QANN, weight_bits: int = 8, dynamics: str = "window") -> Converted:
    """Fold BN, quantise weights and build the equivalent IF SNN (``window`` or ``causal``
    dynamics) and its ANN twin (the same for both)."""
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    model.eval()
    layers = quantise_network(model, weight_bits)
    return Converted(model.name, model.T, model.theta, weight_bits, layers,
                     EquivalentNet(layers, model.T, model.theta, "snn", dynamics),
                     EquivalentNet(layers, model.T, model.theta, "ann"), dynamics)
