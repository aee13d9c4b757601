"""The quantised ANNs (Q_T activations) that the recorder converts, built from sim.trace.shapes.

Torchvision's models do not work with the pinned torch, and the trace geometry must match
:func:`sim.trace.shapes.model_layers` exactly, so each network is built by walking those
:class:`LayerSpec`s: a ``conv2d`` spec becomes Conv2d (no bias) + BatchNorm2d + Q_T, an
``avgpool`` spec AvgPool2d + Q_T (re-spiking), a spiking ``linear`` spec Linear + Q_T, the
``potential`` linear a plain Linear readout, ``flatten`` a Flatten.

Shapes: ``vgg16`` (the paper's 13-conv VGG16 for 32x32x3, Linear(512, 10)), ``vgg11``,
``vgg_small`` (the smaller VGGs), ``digits_cnn`` (sklearn's 8x8 digits), ``tiny`` (tests).
"""

from __future__ import annotations

import torch
from torch import nn

from sim.record.quant import THRESHOLD, QuantAct
from sim.trace.schema import LayerSpec
from sim.trace.shapes import GRAPH_MODELS, MODEL_SHAPES, model_layers

#: The chain shapes this converter trains and records (the graph shapes of sim.trace.shapes,
#: ResNets, are synthetic-only until users' own models are recorded).
MODEL_NAMES = tuple(sorted(m for m in MODEL_SHAPES if m not in GRAPH_MODELS))


class Block(nn.Module):
    """One trace layer: its synaptic op (``op``), optional BN, optional Q_T activation."""

    def __init__(self, spec: LayerSpec, op: nn.Module, bn: nn.Module | None, act: QuantAct | None):
        super().__init__()
        self.spec = spec
        self.op, self.bn, self.act = op, bn, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.op(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x) if self.act is not None else x


def _block(spec: LayerSpec, T: int, theta: float) -> Block:
    if spec.kind == "conv2d":
        op = nn.Conv2d(spec.input_shape[0], spec.output_shape[0], spec.kernel, spec.stride,
                       spec.padding, groups=spec.groups, bias=False)
        return Block(spec, op, nn.BatchNorm2d(spec.output_shape[0]), QuantAct(T, theta))
    if spec.kind == "avgpool":
        return Block(spec, nn.AvgPool2d(spec.kernel, spec.stride, spec.padding), None, QuantAct(T, theta))
    if spec.kind == "flatten":
        return Block(spec, nn.Flatten(), None, None)
    if spec.kind == "linear":
        op = nn.Linear(spec.input_shape[0], spec.output_shape[0], bias=True)
        return Block(spec, op, None, QuantAct(T, theta) if spec.output == "spikes" else None)
    raise ValueError(f"unsupported layer kind {spec.kind!r}")


class QANN(nn.Module):
    """A quantised ANN whose blocks are the trace layers, in order, keyed by layer name."""

    def __init__(self, name: str, T: int, theta: float = THRESHOLD):
        super().__init__()
        specs, input_shape = model_layers(name, T)
        self.name, self.T, self.theta = name, int(T), float(theta)
        self.input_shape = tuple(input_shape)
        self.classes = specs[-1].output_shape[0]
        self.blocks = nn.ModuleDict({s.name: _block(s, T, theta) for s in specs})
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def specs(self) -> list[LayerSpec]:
        return [b.spec for b in self.blocks.values()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x

    def keep_activations(self, on: bool) -> None:
        """Make every Q_T keep its clamped input for the activation regulariser."""
        for block in self.blocks.values():
            if block.act is not None:
                block.act.keep = on
                block.act.last_clamped = None

    def conv_activation_l1(self) -> torch.Tensor:
        """Sum of clamp(x, 0, 1) over the conv layers' outputs, averaged over the batch.

        The paper's L1 activation regulariser (after each conv layer); needs
        :meth:`keep_activations` on during the forward pass.
        """
        total = None
        for block in self.blocks.values():
            if block.spec.kind == "conv2d" and block.act.last_clamped is not None:
                y = block.act.last_clamped
                term = y.sum() / y.shape[0]
                total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    def forward_levels(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and every spiking layer's Q_T output (values level/T), no gradient."""
        outs = {}
        with torch.no_grad():
            for name, block in self.blocks.items():
                x = block(x)
                if block.spec.output == "spikes":
                    outs[name] = x
        return x, outs


def build_model(name: str, T: int, theta: float = THRESHOLD) -> QANN:
    """The Q_T network of a supported shape (see :data:`MODEL_NAMES`)."""
    if name not in MODEL_SHAPES:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    return QANN(name, T, theta)


def traced_specs(model: QANN) -> list[LayerSpec]:
    """LayerSpecs measured from the torch modules by running a zero input through them."""
    specs, x = [], torch.zeros(1, *model.input_shape)
    with torch.no_grad():
        for spec, block in zip(model.specs, model.blocks.values()):
            y = block(x)
            op = block.op
            kernel = stride = padding = ()
            if isinstance(op, (nn.Conv2d, nn.AvgPool2d)):
                pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
                kernel, stride, padding = pair(op.kernel_size), pair(op.stride), pair(op.padding)
            specs.append(LayerSpec(
                name=spec.name, kind=spec.kind, input_shape=tuple(x.shape[1:]), output_shape=tuple(y.shape[1:]),
                kernel=kernel, stride=stride, padding=padding, groups=getattr(op, "groups", 1),
                output="spikes" if block.act is not None else ("passthrough" if spec.kind == "flatten" else "potential"),
                act_scale=1.0 / model.T if block.act is not None else 1.0,
                has_bias=spec.kind in ("conv2d", "linear")))
            x = y
    return specs
