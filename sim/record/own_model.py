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

import operator
from dataclasses import dataclass

import numpy as np

from sim import __version__
from sim.errors import ParameterError
from sim.record import require_torch
from sim.record.frameworks import (UnsupportedModelError, describe, is_neuron, looks_like_neuron, multi_step,
                                   neuron_model, reset_neuron, spikes_of, step_mode_modules)
from sim.trace.schema import LayerSpec, NeuronModel, TraceMeta
from sim.trace.synthetic import or_pool
from sim.trace.writer import TraceWriter

SUPPORTED = ("supported: nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.MaxPool2d (on spikes), nn.Flatten/torch.flatten, "
             "x + y of spike tensors or of Conv2d/Linear/AvgPool2d currents followed by a neuron, spiking "
             "neurons (snnTorch Leaky; spikingjelly IFNode, LIFNode, ParametricLIFNode; modules with "
             "is_spiking_neuron = True) after a synaptic module, pool or add, and a final Conv2d/Linear "
             "readout (optionally followed by one neuron)")
#: The readout accumulates its synaptic current over T and never fires: an IF membrane without reset.
READOUT_NEURON = NeuronModel(type="IF", reset="none")
#: Weights are stored as int8 per tensor: value = int * scale, scale = max|w| / 127.
WEIGHT_BITS = 8
#: Samples run through the model at once (all of them when fewer).
BATCH = 256


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
        self.values: dict = {}          # fx node -> layer name, "input", _Pending or ("membrane", name)
        self.layers: list[LayerSpec] = []
        self.neuron_nodes: dict = {}    # neuron fx node -> layer name
        self.synapses: dict = {}        # conv/linear layer name -> module (for the weights)
        self.maxpools: dict = {}        # maxpool layer name -> (node, module)
        self.currents: dict = {}        # 'current' layer name -> module (no neuron: summed by an add)
        self.readout: tuple | None = None   # (layer name, module)
        self.final_neuron: object = None    # a neuron after the readout (its spikes are not recorded)
        self.neuron_text: list[str] = []

    def fail(self, node, message: str):
        what = f"module '{node.target}' ({type(self.gm.get_submodule(node.target)).__name__})" \
            if node.op == "call_module" else f"node '{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)})"
        raise UnsupportedModelError(self.source, None, f"{what}: {message}; {SUPPORTED}")

    def shape(self, node) -> tuple[int, ...]:
        meta = node.meta["tensor_meta"]
        if not hasattr(meta, "shape"):   # snnTorch (spk, mem): both have the spikes' shape
            meta = meta[0]
        return tuple(int(s) for s in meta.shape[1:])

    def spike_source(self, node, arg) -> str:
        """The layer name of a spike (or flatten-of-spike) operand."""
        v = self.values.get(arg)
        if isinstance(v, _Pending) and v.kind == "add":
            self.fail(node, "reads the sum of two spike tensors without a neuron after the add (its values are "
                            "not spikes: put a spiking neuron after the add)")
        if not isinstance(v, str) or v == "input":
            self.fail(node, "needs spikes of a neuron layer as input")
        return v

    def data_source(self, node, arg) -> str:
        v = self.values.get(arg)
        if isinstance(v, _Pending) and v.kind == "add":
            self.fail(node, "reads the sum of two spike tensors without a neuron after the add (its values are "
                            "not spikes: put a spiking neuron after the add)")
        if isinstance(v, tuple):
            self.fail(node, "reads a neuron's membrane potential (only its spikes can drive a layer)")
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
                else:
                    self.fail(node, "unsupported module")
            elif node.op == "call_function" and node.target is operator.getitem:
                self.add_getitem(node)
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
                self.values[node] = _Pending(node, "add", None, tuple(self.add_operand(node, a) for a in args))
            else:
                self.fail(node, "unsupported operation")
        return self.layers

    def add_operand(self, node, arg) -> str:
        """An add's operand: spikes of a layer, or a conv/linear/avgpool's current (membrane addition)."""
        v = self.values.get(arg)
        if isinstance(v, _Pending) and v.kind in ("conv2d", "linear", "avgpool"):
            if any(u is not node for u in arg.users):
                self.fail(arg, "its current is summed by an add and also used elsewhere")
            name = _layer_name(v.node)
            self.layers.append(self.spec(v, name, "current", None))
            self.currents[name] = v.module
            if v.kind in ("conv2d", "linear"):
                self.synapses[name] = v.module
            self.values[arg] = name
            return name
        return self.spike_source(node, arg)

    def add_getitem(self, node):
        """``spk, mem = lif(x)`` (snnTorch): [0] is the spike tensor, [1] the membrane."""
        src, index = node.args
        v = self.values.get(src)
        if src not in self.neuron_nodes or index not in (0, 1):
            self.fail(node, "indexing is supported only on a neuron's (spikes, membrane) output")
        self.values[node] = v if index == 0 else ("membrane", v)

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
        in_shape = self.shape(p.node.args[0]) if p.kind != "add" else self.shape(p.node)
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
            self.fail(node, "a neuron module called twice shares its state between layers (one call per "
                            "step: run the time loop outside the model)")
        p = self.values.get(node.args[0]) if node.args else None
        if not isinstance(p, _Pending):
            self.fail(node, "a neuron must follow a Conv2d, Linear, AvgPool2d or an add")
        if len(node.args) > 1 or node.kwargs:
            self.fail(node, "a neuron called with its state as an argument keeps no state of its own "
                            "(use init_hidden=True or call it with the input only)")
        name = _layer_name(p.node)
        self.layers.append(self.spec(p, name, "spikes", neuron_model(mod, str(node.target), self.source)))
        if p.kind in ("conv2d", "linear"):
            self.synapses[name] = p.module
        self.values[node] = name
        self.neuron_nodes[node] = name
        self.neuron_text.append(describe(mod))

    def add_maxpool(self, node, mod):
        if mod.ceil_mode or _pair(mod.dilation) != (1, 1) or mod.return_indices:
            self.fail(node, "only MaxPool2d without ceil_mode, dilation or indices")
        v = self.values.get(node.args[0])
        if isinstance(v, _Pending) and v.kind != "add":
            self.fail(node, "max-pooling a synaptic output before its neuron is not supported (max of currents); "
                            "put the MaxPool2d after the spiking neuron (a spike OR)")
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

    def _returned(self, arg) -> list:
        if isinstance(arg, (tuple, list)):
            return [n for a in arg for n in self._returned(a)]
        if isinstance(arg, dict):
            return [n for a in arg.values() for n in self._returned(a)]
        return [arg] if hasattr(arg, "op") else []

    def finish(self, node):
        returned = self._returned(node.args[0])
        pend = {id(self.values.get(a)): self.values.get(a) for a in returned
                if isinstance(self.values.get(a), _Pending) and self.values.get(a).kind in ("conv2d", "linear")}
        named = {v[1] if isinstance(v, tuple) else v for v in (self.values.get(a) for a in returned)
                 if isinstance(v, (str, tuple)) and v != "input"}
        if len(pend) == 1 and not named:
            p = next(iter(pend.values()))
            name = _layer_name(p.node)
            self.layers.append(self.spec(p, name, "potential", READOUT_NEURON))
            self.synapses[name] = p.module
            self.readout = (name, p.module)
        elif not pend and len(named) == 1:
            self.final_readout(node, next(iter(named)))
        else:
            self.fail(node, "the model must return the output of one final Conv2d/Linear readout, or of one "
                            "neuron after it (its spikes and/or membrane)")
        for n, v in self.values.items():   # a synaptic op nobody re-spikes cannot be expressed
            if isinstance(v, _Pending) and (self.readout is None or v.node is not self.readout_node) \
                    and not any(u.op == "call_module" and is_neuron(self.gm.get_submodule(u.target)) for u in n.users):
                self.fail(n, "its output reaches no neuron")

    @property
    def readout_node(self):
        return next(n for n in self.gm.graph.nodes if n.op == "call_module" and _layer_name(n) == self.readout[0])

    def final_readout(self, node, name: str):
        """The model returns a final neuron's output: its synaptic layer becomes the readout (the
        trace's potential is that layer's current summed over T; the neuron's spikes are the
        classifier's decision, not an input of any layer)."""
        idx = next((i for i, l in enumerate(self.layers) if l.name == name), None)
        layer = self.layers[idx] if idx is not None else None
        if layer is None or layer.kind not in ("conv2d", "linear") or layer.output != "spikes" \
                or any(name in l.inputs for l in self.layers):
            self.fail(node, "the model must return the output of one final Conv2d/Linear readout, or of one "
                            "neuron right after it whose spikes no layer reads")
        nnode = next(n for n, v in self.neuron_nodes.items() if v == name)
        self.final_neuron = self.gm.get_submodule(nnode.target)
        del self.neuron_nodes[nnode]
        self.layers[idx] = LayerSpec(**{**layer.__dict__, "output": "potential", "neuron": READOUT_NEURON})
        self.readout = (name, self.synapses[name])


_SYNAPTIC_CLASSES = ("Conv2d", "Linear", "AvgPool2d", "MaxPool2d", "Flatten")


def discover(model, example, source=None):
    """(fx GraphModule, builder with the trace's layers) of ``model`` on one example step
    (a multi-step spikingjelly model is traced in single-step mode, then restored)."""
    torch = require_torch()
    from torch.fx import Tracer, GraphModule
    from torch.fx.passes.shape_prop import ShapeProp

    leaf_classes = tuple(getattr(torch.nn, c) for c in _SYNAPTIC_CLASSES)

    class _NeuronLeafTracer(Tracer):
        def is_leaf_module(self, m, qualname):
            return is_neuron(m) or looks_like_neuron(m) or isinstance(m, leaf_classes) \
                or super().is_leaf_module(m, qualname)

    modes = [(m, m.step_mode) for m in step_mode_modules(model)]
    try:
        for m, _ in modes:
            m.step_mode = "s"
        try:
            graph = _NeuronLeafTracer().trace(model)
        except Exception as exc:   # fx raises several types (TraceError, TypeError, ...)
            raise UnsupportedModelError(source, None, f"torch.fx cannot trace the model's forward "
                                        f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                                        "the forward must run one time step per call, without Python "
                                        "control flow on tensor values") from None
        gm = GraphModule(model, graph)
        b = _GraphBuilder(gm, source)
        for node in gm.graph.nodes:   # refuse unsupported nodes before running anything
            if node.op == "call_module" and not is_neuron(gm.get_submodule(node.target)):
                mod = gm.get_submodule(node.target)
                if looks_like_neuron(mod):
                    b.fail(node, "unsupported neuron (supported: snnTorch Leaky; spikingjelly IFNode, LIFNode, "
                                 "ParametricLIFNode; a module with is_spiking_neuron = True)")
                if not isinstance(mod, leaf_classes):
                    b.fail(node, "unsupported module" + (" (fold BatchNorm into the preceding conv/linear first)"
                                                          if "BatchNorm" in type(mod).__name__ else ""))
        reset_state(model)
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
        reset_state(model)
        b.build()
    finally:
        for m, mode in modes:
            m.step_mode = mode
    return gm, b


def reset_state(model) -> None:
    """Clear the neuron state: ``model.reset()`` if the model has one, and every neuron's own reset."""
    if callable(getattr(model, "reset", None)) and not is_neuron(model):
        model.reset()
    for m in model.modules():
        if is_neuron(m):
            reset_neuron(m)


def quantise_per_tensor(w: np.ndarray) -> tuple[np.ndarray, float]:
    """(int8 weights, scale): value = int * scale, scale = max|w| / 127 (1.0 for all-zero)."""
    peak = float(np.abs(w).max()) if w.size else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def encode_inputs(x: np.ndarray, T: int, encoding: str, rng: np.random.Generator) -> np.ndarray:
    """Per-step inputs [n, T, ...]: direct (the analog input every step), rate (Bernoulli
    spikes with probability x in [0, 1], drawn per step) or events (x is already [n, T, ...])."""
    if encoding == "events":
        return x
    if encoding == "direct":
        return np.broadcast_to(x[:, None], (x.shape[0], T, *x.shape[1:]))
    return (rng.random((x.shape[0], T, *x.shape[1:])) < x[:, None]).astype(np.float32)


def run_model(model, builder, x_steps, multi: bool = False):
    """Run ``model`` on the per-step batch ``x_steps`` [B, T, ...]: spikes [B, T, *out] per neuron
    layer and maxpool, and the readout's output summed over T [B, *out]."""
    torch = require_torch()
    gm = builder.gm
    T = int(x_steps.shape[1])
    captured: dict[str, list] = {}
    hooks = []

    def keep(name):
        def hook(_m, _inp, out):
            captured.setdefault(name, []).append(spikes_of(out).detach().cpu().numpy())
        return hook

    for node, name in builder.neuron_nodes.items():
        hooks.append(gm.get_submodule(node.target).register_forward_hook(keep(name)))
    for name, (node, mod) in builder.maxpools.items():
        hooks.append(mod.register_forward_hook(keep(name)))
    rname, rmod = builder.readout
    hooks.append(rmod.register_forward_hook(keep(rname)))
    xt = torch.as_tensor(np.ascontiguousarray(x_steps), dtype=torch.float32)
    try:
        reset_state(model)
        with torch.no_grad():
            if multi:
                model(xt.transpose(0, 1).contiguous())
            else:
                for t in range(T):
                    model(xt[:, t])
        reset_state(model)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, steps in captured.items():
        calls = 1 if multi else T
        if len(steps) != calls:
            raise UnsupportedModelError(None, name, f"called {len(steps)} times in {T} steps (expected once a step)")
        out[name] = np.swapaxes(steps[0], 0, 1) if multi else np.stack(steps, axis=1)
    return out


ENCODINGS = ("direct", "rate", "events")


def record_model(model, inputs, T: int, out, *, dataset: str = "custom", labels=None,
                 model_name: str | None = None, source: str | None = None, encoding: str = "direct",
                 seed: int = 0) -> OwnModelResult:
    """Record an SNN-only trace (twin_levels derived) of ``model`` on ``inputs`` [n, ...] for
    ``T`` steps each; ``encoding`` direct (the analog input every step), rate (Bernoulli
    spikes of the intensities in [0, 1], seeded) or events (``inputs`` are already spikes
    [n, T, ...] of 0/1, e.g. a DVS recording binned into T frames); rate and event inputs are
    stored as the trace's input spikes. Returns
    the path, the number of samples and the layers. UnsupportedModelError (one line naming the
    module) for what the format cannot express; nothing is written then."""
    torch = require_torch()
    x_np = np.asarray(inputs, dtype=np.float32)
    if x_np.ndim < 2 or x_np.shape[0] < 1:
        raise ParameterError(source, "inputs", f"expected [n, ...] with n >= 1, got shape {list(x_np.shape)}")
    if int(T) < 1:
        raise ParameterError(source, "T", f"must be >= 1, got {T}")
    if encoding not in ENCODINGS:
        raise ParameterError(source, "encoding", f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    if encoding == "rate" and (x_np.min() < 0 or x_np.max() > 1):
        raise ParameterError(source, "inputs", f"rate encoding needs intensities in [0, 1], got "
                             f"[{x_np.min():g}, {x_np.max():g}]")
    if encoding == "events":
        if x_np.ndim < 3 or x_np.shape[1] != int(T) or not np.isin(x_np, (0.0, 1.0)).all():
            raise ParameterError(source, "inputs", f"event encoding needs 0/1 spikes [n, T={T}, ...], got "
                                 f"shape {list(x_np.shape)}")
    T, n = int(T), int(x_np.shape[0])
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n:
            raise ParameterError(source, "labels", f"{labels.shape[0]} labels for {n} inputs")
    model.eval()
    multi = multi_step(model, source)
    step_shape = x_np.shape[2:] if encoding == "events" else x_np.shape[1:]
    _, b = discover(model, torch.as_tensor(x_np[:1, 0] if encoding == "events" else x_np[:1]), source)
    layers = b.layers
    rng = np.random.default_rng(seed)
    recorded: dict[str, list] = {}
    input_spikes = []
    for lo in range(0, n, BATCH):
        steps = encode_inputs(x_np[lo:lo + BATCH], T, encoding, rng)
        if encoding != "direct":
            input_spikes.append(steps.astype(bool))
        for k, v in run_model(model, b, steps, multi).items():
            recorded.setdefault(k, []).append(v)
    recorded = {k: np.concatenate(v) for k, v in recorded.items()}
    input_spikes = np.concatenate(input_spikes) if input_spikes else None
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
    name = model_name or type(model).__name__
    final = "" if b.final_neuron is None else (f"; the final {type(b.final_neuron).__name__} after the readout is "
                                               "its integrator: the readout potential is its synaptic current summed "
                                               "over T")
    coding = {"direct": "direct encoding", "events": "event input",
              "rate": f"rate encoding (Bernoulli, seed {seed})"}[encoding]
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    for fw in ("snntorch", "spikingjelly"):
        if any(type(m).__module__.startswith(fw) for m in model.modules()):
            import importlib
            versions[fw] = getattr(importlib.import_module(fw), "__version__", "unknown")
    meta = TraceMeta(model=name, dataset=dataset, T=T, n_samples=n,
                     input_shape=tuple(step_shape), neuron=neurons[0] if neurons else NeuronModel(),
                     encoding=encoding, weight_bits=WEIGHT_BITS, recorder=f"sim.record.own_model {__version__}",
                     library_versions=versions,
                     description=(f"{name} recorded {'multi-step' if multi else 'step by step'} with record-model "
                                  f"({coding}, T={T}); spikes from the float model; neurons: "
                                  f"{'; '.join(sorted(set(b.neuron_text)))}{final}; weights stored int8 per tensor "
                                  "(value = int * scale, scale = max|w|/127); SNN-only (derived twin)"),
                     twin_levels="derived", dynamics="causal")
    with TraceWriter(out, meta, layers, with_input=encoding != "events") as w:
        for layer in w.layers:
            if layer.name in b.synapses:
                mod = b.synapses[layer.name]
                q, scale = quantise_per_tensor(mod.weight.detach().cpu().numpy())
                bias = None if mod.bias is None else mod.bias.detach().cpu().numpy()
                w.set_weights(layer.name, q, scale, bias)
        for i in range(n):
            spikes = {l.name: recorded[l.name][i].astype(bool) for l in w.layers if l.output == "spikes"}
            pots = {b.readout[0]: recorded[b.readout[0]][i].sum(axis=0)}
            w.write_sample(i, label=-1 if labels is None else int(labels[i]),
                           input=None if encoding == "events" else x_np[i],
                           input_spikes=None if input_spikes is None else input_spikes[i],
                           spikes=spikes, potentials=pots)
    return OwnModelResult(path=str(out), samples=n, layers=list(w.layers))
