"""Record a trace from your own plain-PyTorch spiking model (issue 15, item 1, first slice).

The protocol a model follows (docs/recording.md, "Bring your own model"):

- ``model(x_t)`` takes one time step's input ``x_t`` [B, ...] and keeps its neuron state
  internally; the same analog input is given at every step (direct encoding).
- A neuron module is any ``nn.Module`` whose class sets ``is_spiking_neuron = True`` and which
  has ``threshold`` (float > 0), ``leak`` (the factor the membrane keeps per step, in (0, 1];
  1.0 or absent: IF) and ``reset`` (``"subtract"`` or ``"zero"``; a ``reset_mode`` attribute
  wins when ``reset`` is the state-reset method). It outputs spikes (0/1 tensors).
- State is cleared before each batch by ``model.reset()`` if the model has one, else by each
  neuron module's ``reset_state()`` (or ``reset()`` when that is a method).

The graph is discovered with torch.fx symbolic tracing, not forward hooks: hooks see only
module calls, so a residual ``x + y`` (a Python operator, no module) would be invisible; fx
records it as a node with its two operands, which become the ``add`` layer's ``inputs``.
Neuron modules are fx leaves; the recorded spikes come from forward hooks on them while the
model itself runs step by step.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from sim import __version__
from sim.errors import ParameterError
from sim.record import require_torch
from sim.trace.schema import LayerSpec, NeuronModel, TraceMeta
from sim.trace.synthetic import or_pool
from sim.trace.writer import TraceWriter

SUPPORTED = ("supported: nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten/torch.flatten, "
             "x + y of two spike tensors, spiking neuron modules (is_spiking_neuron = True) after a "
             "synaptic module, pool or add, and a final Conv2d/Linear readout")
#: Weights are stored as int8 per tensor: value = int * scale, scale = max|w| / 127.
WEIGHT_BITS = 8
#: Samples run through the model at once (all of them when fewer).
BATCH = 256


class UnsupportedModelError(ParameterError):
    """The model holds a module, function or arrangement the trace format cannot express."""


@dataclass
class _Pending:
    """A synaptic op (conv2d, linear, avgpool, add) whose neuron has not been seen yet."""

    node: object
    kind: str
    module: object
    inputs: tuple[str, ...]


@dataclass
class OwnModelResult:
    path: str
    samples: int
    layers: list[LayerSpec]


def is_neuron(module) -> bool:
    return bool(getattr(type(module), "is_spiking_neuron", False))


def neuron_model(module, where: str, source) -> NeuronModel:
    """The trace's neuron model of a neuron module (IF when leak is 1.0 or absent)."""
    rule = getattr(module, "reset_mode", getattr(module, "reset", None))
    threshold = float(getattr(module, "threshold", float("nan")))
    leak = float(getattr(module, "leak", 1.0) if getattr(module, "leak", None) is not None else 1.0)
    if not (math.isfinite(threshold) and threshold > 0):
        raise UnsupportedModelError(source, where, f"neuron threshold must be a finite float > 0, got {threshold}")
    if rule not in ("subtract", "zero"):
        raise UnsupportedModelError(source, where, f"neuron reset must be 'subtract' or 'zero', got {rule!r}")
    if not 0 < leak <= 1:
        raise UnsupportedModelError(source, where, f"neuron leak must be in (0, 1], got {leak}")
    if leak == 1.0:
        return NeuronModel(type="IF", threshold=threshold, reset=rule, leak=0.0)
    return NeuronModel(type="LIF", threshold=threshold, reset=rule, leak=leak)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _layer_name(node) -> str:
    return str(node.target if node.op == "call_module" else node.name).replace(".", "_")


class _GraphBuilder:
    """Walks an fx graph and builds the trace's layers (execution order = fx order)."""

    def __init__(self, gm, source):
        torch = require_torch()
        self.nn = torch.nn
        self.torch = torch
        self.gm, self.source = gm, source
        self.values: dict = {}          # fx node -> layer name, "input" or _Pending
        self.layers: list[LayerSpec] = []
        self.neuron_nodes: dict = {}    # neuron fx node -> layer name
        self.maxpools: dict = {}        # maxpool layer name -> module
        self.readout: tuple | None = None   # (layer name, module)

    def fail(self, node, message: str):
        what = f"module '{node.target}' ({type(self.gm.get_submodule(node.target)).__name__})" \
            if node.op == "call_module" else f"node '{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)})"
        raise UnsupportedModelError(self.source, None, f"{what}: {message}; {SUPPORTED}")

    def shape(self, node) -> tuple[int, ...]:
        return tuple(int(s) for s in node.meta["tensor_meta"].shape[1:])

    def spike_source(self, node, arg) -> str:
        """The layer name of a spike (or flatten-of-spike) operand."""
        v = self.values.get(arg)
        if not isinstance(v, str) or v == "input":
            self.fail(node, "needs spikes of a neuron layer as input")
        return v

    def data_source(self, node, arg) -> str:
        v = self.values.get(arg)
        if not isinstance(v, str):
            self.fail(node, "its input is a synaptic output without a neuron")
        return v

    def build(self) -> list[LayerSpec]:
        nn = self.nn
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.values[node] = "input"
            elif node.op == "output":
                self.finish(node)
            elif node.op == "call_module":
                mod = self.gm.get_submodule(node.target)
                if is_neuron(mod):
                    self.add_neuron(node, mod)
                elif isinstance(mod, (nn.Conv2d, nn.Linear, nn.AvgPool2d)):
                    self.add_synapse(node, mod)
                elif isinstance(mod, nn.MaxPool2d):
                    self.add_maxpool(node, mod)
                elif isinstance(mod, nn.Flatten):
                    if mod.start_dim != 1 or mod.end_dim != -1:
                        self.fail(node, "only Flatten(start_dim=1, end_dim=-1) is supported")
                    self.add_flatten(node, node.args[0])
                elif isinstance(mod, nn.BatchNorm2d) or isinstance(mod, nn.BatchNorm1d):
                    self.fail(node, "unsupported (fold BatchNorm into the preceding conv/linear first)")
                else:
                    self.fail(node, "unsupported module")
            elif node.op == "call_function" and node.target is self.torch.flatten:
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
                if start != 1 or end != -1:
                    self.fail(node, "only torch.flatten(x, 1) is supported")
                self.add_flatten(node, node.args[0])
            elif node.op == "call_function" and node.target in (operator.add, self.torch.add):
                args = list(node.args)
                if len(args) != 2 or node.kwargs or not all(hasattr(a, "op") for a in args):
                    self.fail(node, "an add must sum two tensors")
                ins = tuple(self.spike_source(node, a) for a in args)
                self.values[node] = _Pending(node, "add", None, ins)
            else:
                self.fail(node, "unsupported operation")
        return self.layers

    def add_synapse(self, node, mod):
        nn = self.nn
        if isinstance(mod, nn.Conv2d):
            if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
                self.fail(node, "only numeric zero padding is supported")
            kind = "conv2d"
        elif isinstance(mod, nn.Linear):
            kind = "linear"
            if len(self.shape(node.args[0])) != 1:
                self.fail(node, "a Linear must read a flat vector (flatten first)")
        else:
            if mod.ceil_mode or mod.divisor_override is not None or not mod.count_include_pad:
                self.fail(node, "only AvgPool2d without ceil_mode/divisor_override, count_include_pad=True")
            kind = "avgpool"
        self.values[node] = _Pending(node, kind, mod, (self.data_source(node, node.args[0]),))

    def spec(self, p: _Pending, name: str, output: str, neuron) -> LayerSpec:
        node, mod = p.node, p.module
        in_shape = self.shape(p.node.args[0])
        geo = {}
        if p.kind == "conv2d":
            geo = dict(kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), padding=_pair(mod.padding),
                       groups=mod.groups, dilation=_pair(mod.dilation), has_bias=mod.bias is not None)
        elif p.kind == "avgpool":
            geo = dict(kernel=_pair(mod.kernel_size), stride=_pair(mod.stride or mod.kernel_size),
                       padding=_pair(mod.padding))
        elif p.kind == "linear":
            geo = dict(has_bias=mod.bias is not None)
        return LayerSpec(name=name, kind=p.kind, input_shape=in_shape, output_shape=self.shape(node),
                         output=output, act_scale=1.0, inputs=p.inputs, neuron=neuron, **geo)

    def add_neuron(self, node, mod):
        if node in self.neuron_nodes or mod in [self.gm.get_submodule(n.target) for n in self.neuron_nodes]:
            self.fail(node, "a neuron module called twice shares its state between layers")
        p = self.values.get(node.args[0]) if node.args else None
        if not isinstance(p, _Pending):
            self.fail(node, "a neuron must follow a Conv2d, Linear, AvgPool2d or an add")
        name = _layer_name(p.node)
        self.layers.append(self.spec(p, name, "spikes", neuron_model(mod, str(node.target), self.source)))
        self.values[node] = name
        self.neuron_nodes[node] = name

    def add_maxpool(self, node, mod):
        if mod.ceil_mode or _pair(mod.dilation) != (1, 1) or mod.return_indices:
            self.fail(node, "only MaxPool2d without ceil_mode, dilation or indices")
        src = self.spike_source(node, node.args[0])
        name = _layer_name(node)
        self.layers.append(LayerSpec(name=name, kind="maxpool", input_shape=self.shape(node.args[0]),
                                     output_shape=self.shape(node), kernel=_pair(mod.kernel_size),
                                     stride=_pair(mod.stride or mod.kernel_size), padding=_pair(mod.padding),
                                     output="spikes", inputs=(src,)))
        self.values[node] = name
        self.maxpools[name] = (node, mod)

    def add_flatten(self, node, arg):
        src = self.data_source(node, arg)
        name = _layer_name(node)
        self.layers.append(LayerSpec(name=name, kind="flatten", input_shape=self.shape(arg),
                                     output_shape=self.shape(node), output="passthrough", inputs=(src,)))
        self.values[node] = name

    def finish(self, node):
        arg = node.args[0]
        p = self.values.get(arg)
        if not isinstance(p, _Pending) or p.kind not in ("conv2d", "linear"):
            self.fail(node, "the model must return the output of a final Conv2d/Linear readout (no neuron)")
        name = _layer_name(p.node)
        self.layers.append(self.spec(p, name, "potential", None))
        self.readout = (name, p.module)
        for n, v in self.values.items():   # a synaptic op nobody re-spikes cannot be expressed
            if isinstance(v, _Pending) and v is not p and not any(u.op == "call_module" and is_neuron(
                    self.gm.get_submodule(u.target)) for u in n.users):
                self.fail(n, "its output reaches no neuron")


def discover(model, example, source=None):
    """(fx GraphModule, builder with the trace's layers) of ``model`` on one example step."""
    torch = require_torch()
    from torch.fx import Tracer, GraphModule
    from torch.fx.passes.shape_prop import ShapeProp

    class _NeuronLeafTracer(Tracer):
        def is_leaf_module(self, m, qualname):
            return is_neuron(m) or super().is_leaf_module(m, qualname)

    try:
        graph = _NeuronLeafTracer().trace(model)
    except Exception as exc:   # fx raises several types (TraceError, TypeError, ...)
        raise UnsupportedModelError(source, None, f"torch.fx cannot trace the model's forward "
                                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    gm = GraphModule(model, graph)
    b = _GraphBuilder(gm, source)
    for node in gm.graph.nodes:   # refuse unsupported nodes before running anything
        if node.op == "call_module" and not is_neuron(gm.get_submodule(node.target)):
            mod = gm.get_submodule(node.target)
            if not isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.AvgPool2d, torch.nn.MaxPool2d,
                                    torch.nn.Flatten)):
                b.fail(node, "unsupported module" + (" (fold BatchNorm into the preceding conv/linear first)"
                                                      if "BatchNorm" in type(mod).__name__ else ""))
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    reset_state(model)
    b.build()
    return gm, b


def reset_state(model) -> None:
    """Clear the neuron state: ``model.reset()`` if present, else each neuron's reset."""
    if callable(getattr(model, "reset", None)):
        model.reset()
        return
    for m in model.modules():
        if is_neuron(m):
            fn = getattr(m, "reset_state", None) or getattr(m, "reset", None)
            if callable(fn):
                fn()


def quantise_per_tensor(w: np.ndarray) -> tuple[np.ndarray, float]:
    """(int8 weights, scale): value = int * scale, scale = max|w| / 127 (1.0 for all-zero)."""
    peak = float(np.abs(w).max()) if w.size else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def run_model(model, builder, x, T):
    """Run ``model`` T steps on the batch ``x``: spikes bool [B, T, *out] per neuron layer and
    maxpool, and the readout summed over T [B, *out]."""
    torch = require_torch()
    gm = builder.gm
    captured: dict[str, list] = {}
    hooks = []

    def keep(name):
        def hook(_m, _inp, out):
            captured.setdefault(name, []).append(out.detach().cpu().numpy())
        return hook

    for node, name in builder.neuron_nodes.items():
        hooks.append(gm.get_submodule(node.target).register_forward_hook(keep(name)))
    for name, (node, mod) in builder.maxpools.items():
        hooks.append(mod.register_forward_hook(keep(name)))
    rname, rmod = builder.readout
    hooks.append(rmod.register_forward_hook(keep(rname)))
    try:
        reset_state(model)
        with torch.no_grad():
            for _ in range(T):
                model(x)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, steps in captured.items():
        if len(steps) != T:
            raise UnsupportedModelError(None, name, f"called {len(steps)} times in {T} steps (expected once a step)")
        out[name] = np.stack(steps, axis=1)
    return out


def record_model(model, inputs, T: int, out, *, dataset: str = "custom", labels=None,
                 model_name: str | None = None, source: str | None = None) -> OwnModelResult:
    """Record an SNN-only trace (twin_levels derived) of ``model`` on ``inputs`` [n, ...]
    (analog, direct encoding: the same input every step) for ``T`` steps each; returns the path,
    the number of samples and the layers. UnsupportedModelError (one line naming the module)
    for what the format cannot express; nothing is written then."""
    torch = require_torch()
    x_all = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    if x_all.ndim < 2 or x_all.shape[0] < 1:
        raise ParameterError(source, "inputs", f"expected [n, ...] with n >= 1, got shape {list(x_all.shape)}")
    if int(T) < 1:
        raise ParameterError(source, "T", f"must be >= 1, got {T}")
    n = int(x_all.shape[0])
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n:
            raise ParameterError(source, "labels", f"{labels.shape[0]} labels for {n} inputs")
    model.eval()
    _, b = discover(model, x_all[:1], source)
    layers = b.layers
    recorded = {}
    for lo in range(0, n, BATCH):
        part = run_model(model, b, x_all[lo:lo + BATCH], int(T))
        for k, v in part.items():
            recorded.setdefault(k, []).append(v)
    recorded = {k: np.concatenate(v) for k, v in recorded.items()}
    by_name = {l.name: l for l in layers}
    for layer in layers:
        if layer.output != "spikes":
            continue
        s = recorded[layer.name]
        if not np.isin(s, (0.0, 1.0)).all():
            raise UnsupportedModelError(source, layer.name, "the neuron emits values other than 0/1 (not spikes)")
        if layer.kind == "maxpool":
            src = by_name[layer.inputs[0]]
            for i in range(n):
                if not np.array_equal(or_pool(recorded[src.name][i].astype(bool), layer), s[i].astype(bool)):
                    raise UnsupportedModelError(source, layer.name, "the max-pool's output is not the spike OR "
                                                "of its input (max-of-membranes is not supported)")
    neurons = [l.neuron for l in layers if l.neuron is not None]
    meta = TraceMeta(model=model_name or type(model).__name__, dataset=dataset, T=int(T), n_samples=n,
                     input_shape=tuple(x_all.shape[1:]), neuron=neurons[0] if neurons else NeuronModel(),
                     weight_bits=WEIGHT_BITS, recorder=f"sim.record.own_model {__version__}",
                     library_versions={"torch": torch.__version__, "numpy": np.__version__},
                     description=(f"{model_name or type(model).__name__} recorded step by step with record-model "
                                  f"(direct encoding, T={T}); spikes from the float model; weights stored int8 "
                                  "per tensor (value = int * scale, scale = max|w|/127); SNN-only (derived twin)"),
                     twin_levels="derived")
    with TraceWriter(out, meta, layers) as w:
        for layer in w.layers:
            if layer.kind in ("conv2d", "linear"):
                mod = b.gm.get_submodule([n.target for n in b.gm.graph.nodes
                                          if n.op == "call_module" and _layer_name(n) == layer.name][0])
                q, scale = quantise_per_tensor(mod.weight.detach().cpu().numpy())
                bias = None if mod.bias is None else mod.bias.detach().cpu().numpy()
                w.set_weights(layer.name, q, scale, bias)
        for i in range(n):
            spikes = {l.name: recorded[l.name][i].astype(bool) for l in w.layers if l.output == "spikes"}
            pots = {b.readout[0]: recorded[b.readout[0]][i].sum(axis=0)}
            w.write_sample(i, label=-1 if labels is None else int(labels[i]), input=x_all[i].numpy(),
                           spikes=spikes, potentials=pots)
    return OwnModelResult(path=str(out), samples=n, layers=list(w.layers))
