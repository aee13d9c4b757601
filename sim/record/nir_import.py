"""Import a NIR graph (https://neuroir.org) as an SNN-only trace (issue 15, item 3).

``import_nir(graph_or_path, inputs, T, out)`` reads a NIR graph (the ``nir`` package; it needs
only numpy and h5py — no torch), runs it step by step in numpy with the project's reference
dynamics below, and writes a format-3 trace (``twin_levels = derived``, ``dynamics = causal``,
int8 weights per tensor). docs/nir.md is the user's page; this docstring is the reference.

Supported nodes: ``Input``, ``Output``, ``Conv2d``, ``Linear``, ``Affine``, ``AvgPool2d``,
``SumPool2d``, ``Flatten`` and the spiking neurons ``IF``, ``LIF``, ``CubaLIF``; ``LI``,
``CubaLI`` and ``I`` only as the readout's final neuron (they do not spike). A node with
several incoming edges sums its inputs (NIR's rule): for a neuron that is a residual add.

Reference dynamics (float64 state, direct encoding: the same analog input x every step; every node
runs once per step in topological order, so a layer integrates the spikes its sources emitted
in the same step — as a framework model called once per step runs). Forward Euler with step dt
(default 1e-4 s, the value snnTorch's ``export_to_nir`` assumes); I is the node's input at the
step (the sum over its incoming edges):

- ``LIF``: v <- v + (dt/tau)(v_leak - v) + (dt r/tau) I, computed as v <- a v + g I with the
  leak factor a = 1 - dt/tau and the input gain g = dt r/tau (v_leak must be 0). tau = r = inf
  (snnTorch's export of beta = 1) is a = g = 1: an IF neuron.
- ``IF``: v <- v + r I (NIR's dv/dt = R I has no time constant; r is taken as the per-step
  gain, so r = 1 gives v <- v + I, which is what snnTorch's and Norse's NIR importers run (the
  first asserts r = 1, the second ignores r) and what the SpiNNaker2 converter runs for any r
  (it divides the threshold by r); a literal Euler step dt r I would shrink the input 10^4-fold
  at dt = 1e-4).
- ``CubaLIF``: the synaptic current first, then the membrane with the updated current:
  i <- a_s i + g_s I (a_s = 1 - dt/tau_syn, g_s = dt w_in/tau_syn), v <- a_m v + g_m i
  (a_m = 1 - dt/tau_mem, g_m = dt r/tau_mem); only v is reset. This is snnTorch's
  ``Synaptic`` order, whose export sets g_s = g_m = 1.
- spike z = v > v_threshold (strict, NIR's definition); on a spike v <- v_reset = 0 at once,
  within the same step (NIR's definition; v_reset must be 0, the trace's ``zero`` reset).
- factors of float32 parameters (snnTorch writes float32) are rounded to float32 — a =
  1 - dt/tau then equals snnTorch's float32 beta for 0.5 < beta < 1 — and a gain within
  ``GAIN_SNAP`` (1e-6) of 1 is 1: the exporter means r = tau/dt, and a gain of 1 + 5e-8 would
  fire a neuron whose input lands exactly on the threshold (an average of spikes often does).

Mapping to the trace: a ``Conv2d``/``Linear``/``Affine``/``AvgPool2d``/``SumPool2d`` whose only
consumer is one neuron becomes a layer with output ``spikes`` and that neuron's model — IF when
a = 1, else LIF with leak a; reset ``zero``; threshold v_threshold/g (CubaLIF: /(g_s g_m); a k×k
SumPool, which the trace calls ``avgpool``, also /k²: the membrane in units of the layer's
own output). CubaLIF's second state (its synaptic current) has no place in the trace's
neuron model: the trace says LIF with the membrane's leak. A neuron with several incoming
edges becomes an ``add`` layer whose operands are spiking layers or synaptic nodes that feed
only adds (output ``current``). The last
``Conv2d``/``Linear``/``Affine`` before ``Output`` (possibly through one final neuron, dropped)
is the readout: output ``potential`` = its output summed over T. Per-neuron parameters must
be one value per node (the trace holds one neuron model per layer).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim import __version__
from sim.errors import ParameterError
from sim.record.own_model import READOUT_NEURON, quantise_per_tensor
from sim.trace.schema import LayerSpec, NeuronModel, TraceMeta, conv_output_hw
from sim.trace.writer import TraceWriter

#: dt snnTorch's export_to_nir uses (tau = dt / (1 - beta)); the default here.
DEFAULT_DT = 1e-4
WEIGHT_BITS = 8
#: A derived input gain this close to 1 is 1: the float32 rounding of r and tau in files whose
#: exporter means r = tau/dt (snnTorch's; its own importer tests the gain with np.allclose).
GAIN_SNAP = 1e-6
#: Samples simulated at once.
BATCH = 64
NIR_HINT = "needs the nir package: pip install nir (numpy and h5py only, no torch)"

SYNAPTIC = ("Conv2d", "Linear", "Affine", "AvgPool2d", "SumPool2d")
WEIGHTED = ("Conv2d", "Linear", "Affine")
SPIKING = ("IF", "LIF", "CubaLIF")
NON_SPIKING = ("LI", "CubaLI", "I")
KNOWN = ("Input", "Output", "Flatten") + SYNAPTIC + SPIKING + NON_SPIKING
SUPPORTED = ("supported NIR nodes: Input, Output, Conv2d, Linear, Affine, AvgPool2d, SumPool2d, Flatten, "
             "IF, LIF, CubaLIF (LI, CubaLI, I only as the readout's final neuron); see docs/nir.md")
_TRACE_KIND = {"Conv2d": "conv2d", "Linear": "linear", "Affine": "linear", "AvgPool2d": "avgpool",
               "SumPool2d": "avgpool"}


class UnsupportedGraphError(ParameterError):
    """The NIR graph holds a node or an arrangement the trace format cannot express."""


@dataclass
class NirImportResult:
    path: str
    samples: int
    layers: list[LayerSpec]


@dataclass
class _Neuron:
    """Per-step constants of one neuron node (scalars: one model per node)."""

    type: str               # IF, LIF, CubaLIF
    a: float = 1.0          # membrane leak factor kept per step
    g: float = 1.0          # input gain (of the membrane; CubaLIF: of the synaptic current i)
    a_syn: float = 1.0      # CubaLIF: synaptic current's factor kept per step
    g_mem: float = 1.0      # CubaLIF: gain of i into the membrane
    threshold: float = 1.0
    single: bool = False    # float32 parameters

    def model(self, pool_area: int = 1) -> NeuronModel:
        """The trace's neuron model (threshold in units of the layer's own output). Of float32
        parameters, the shortest decimal that rounds to the same float32 (beta 0.9, not
        0.8999999762), as record-model writes them."""
        thr = self.threshold / (self.g * self.g_mem) / pool_area
        leak = self.a
        if self.single:
            thr, leak = float(str(np.float32(thr))), float(str(np.float32(leak)))
        if self.a == 1.0:
            return NeuronModel(type="IF", threshold=thr, reset="zero", leak=0.0)
        return NeuronModel(type="LIF", threshold=thr, reset="zero", leak=leak)


@dataclass
class _Op:
    """One NIR node in topological order, with what the simulation and the trace need."""

    name: str                       # NIR node name
    type: str                       # NIR class name
    srcs: list[str]                 # incoming nodes (summed)
    shape: tuple[int, ...] = ()     # per-sample output shape
    role: str = ""                  # syn: spikes|current|readout; neuron: owned|add|final; other: ""
    layer: str = ""                 # trace layer holding this node's output ("" none)
    params: dict = field(default_factory=dict)
    neuron: _Neuron | None = None


def require_nir():
    try:
        import nir
    except ImportError:
        raise ParameterError(None, None, NIR_HINT) from None
    return nir


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _type(node) -> str:
    return type(node).__name__


def _pair(v, what: str, fail) -> tuple[int, int]:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.array([np.nan])
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
        fail(f"{what} must be one or two integers, got {v!r}")
    return int(a[0]), int(a[1])


def _declared(types, key) -> tuple[int, ...] | None:
    """A node's declared input/output shape, or None when unset."""
    if not isinstance(types, dict) or types.get(key) is None:
        return None
    a = np.asarray(types[key]).reshape(-1)
    return tuple(int(x) for x in a) if a.size else None


def _unknown_types_in_file(path: Path) -> str | None:
    """The first node of a NIR file whose type the nir package does not know (read with h5py, so
    the refusal names the node rather than nir's AssertionError)."""
    import h5py

    nir = require_nir()
    known = set(getattr(getattr(nir, "ir", nir), "__all_ir", ())) or set(KNOWN)
    try:
        with h5py.File(path, "r") as f:
            nodes = f["node"]["nodes"]
            for name in nodes:
                t = nodes[name]["type"][()]
                t = t.decode() if isinstance(t, bytes) else str(t)
                if t not in known:
                    return (f"node '{name}' has the NIR node type '{t}', which the nir package does not know; "
                            f"{SUPPORTED}")
    except Exception:   # not HDF5 or not laid out as NIR: nir.read reports it
        return None
    return None


def load_graph(graph_or_path, source: str | None = None):
    """(graph, source) from a NIR graph object or a .nir file (ParameterError naming the file)."""
    if not isinstance(graph_or_path, (str, Path)):
        if not hasattr(graph_or_path, "nodes") or not hasattr(graph_or_path, "edges"):
            raise UnsupportedGraphError(source, None, f"expected a NIR graph (nir.NIRGraph) or a .nir file, got "
                                        f"{type(graph_or_path).__name__}")
        return graph_or_path, source
    nir = require_nir()
    path = Path(graph_or_path)
    source = source or str(path)
    if not path.exists():
        raise ParameterError(source, None, "no such file")
    if not path.is_file():
        raise ParameterError(source, None, "is not a file, expected a NIR graph (.nir)")
    unknown = _unknown_types_in_file(path)
    if unknown:
        raise UnsupportedGraphError(source, None, unknown)
    try:
        try:
            graph = nir.read(path, type_check=False)   # our own shape checks follow
        except TypeError:   # nir < 1.0 has no type_check
            graph = nir.read(path)
    except Exception as exc:   # h5py, nir and KeyError alike: one line
        raise ParameterError(source, None, f"cannot read a NIR graph: {_short(exc)}") from None
    if not hasattr(graph, "nodes") or not hasattr(graph, "edges"):
        raise UnsupportedGraphError(source, None, f"the file holds a single {_type(graph)} node, not a NIR graph")
    return graph, source


class _Planner:
    """Checks a NIR graph, orders it, infers shapes and maps it to the trace's layers."""

    def __init__(self, graph, input_shape: tuple[int, ...], dt: float, source):
        self.g, self.source, self.dt = graph, source, float(dt)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.nodes: dict = dict(graph.nodes)
        self.ops: dict[str, _Op] = {}
        self.order: list[str] = []
        self.layers: list[LayerSpec] = []
        self.readout: str | None = None

    # -- refusals -----------------------------------------------------------------------
    def fail(self, name: str | None, message: str, *, hint: bool = False):
        what = f"node '{name}' ({_type(self.nodes[name])})" if name in self.nodes else (
            f"node '{name}'" if name else "the graph")
        raise UnsupportedGraphError(self.source, None, f"{what}: {message}" + (f"; {SUPPORTED}" if hint else ""))

    # -- structure ----------------------------------------------------------------------
    def plan(self) -> "_Planner":
        for name, node in self.nodes.items():
            if _type(node) not in KNOWN:
                self.fail(name, "unsupported NIR node type" + (" (a subgraph, e.g. a recurrent layer)"
                                                              if _type(node) == "NIRGraph" else ""), hint=True)
        self.preds = {n: [] for n in self.nodes}
        self.succs = {n: [] for n in self.nodes}
        seen = set()
        for edge in self.g.edges:
            if not isinstance(edge, (tuple, list)) or len(edge) != 2:
                self.fail(None, f"edge {edge!r} is not a (source, destination) pair")
            s, d = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
            for end in (s, d):
                if end not in self.nodes:
                    self.fail(None, f"edge ({s!r}, {d!r}) names '{end}', which is not a node of the graph "
                              "(edges into subgraph ports are not supported)")
            if (s, d) in seen:
                self.fail(d, f"the edge from '{s}' appears twice")
            seen.add((s, d))
            self.preds[d].append(s)
            self.succs[s].append(d)
        inputs = [n for n, v in self.nodes.items() if _type(v) == "Input"]
        outputs = [n for n, v in self.nodes.items() if _type(v) == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            self.fail(None, f"needs exactly one Input and one Output node, has {len(inputs)} and {len(outputs)}")
        self.input, self.output = inputs[0], outputs[0]
        self._order()
        for step in (self._shape, self._role, self._layer):
            for name in self.order:
                try:
                    step(name)
                except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:   # malformed fields
                    self.fail(name, f"malformed node ({_short(exc)})")
        return self

    def _order(self):
        """Kahn's topological order (ties in the graph's node order); refuse cycles and nodes
        the Input does not reach."""
        left = {n: len(p) for n, p in self.preds.items()}
        for n in self.nodes:
            if left[n] == 0 and n != self.input:
                self.fail(n, "has no incoming edge (every node but the Input must be reached from the Input)")
        if left[self.input]:
            self.fail(self.input, "the Input node has incoming edges")
        ready, rank = [self.input], {n: i for i, n in enumerate(self.nodes)}
        while ready:
            n = ready.pop(0)
            self.order.append(n)
            for d in self.succs[n]:
                left[d] -= 1
                if left[d] == 0:
                    ready.append(d)
                    ready.sort(key=rank.get)
        stuck = [n for n in self.nodes if n not in self.order]
        if stuck:
            self.fail(stuck[0], "lies on a cycle (recurrent connections are not supported)")
        for n in self.order:
            if not self.succs[n] and n != self.output:
                self.fail(n, "its output reaches no node (every node must lead to the Output)")

    # -- shapes -------------------------------------------------------------------------
    def _shape(self, name: str):
        node, t = self.nodes[name], _type(self.nodes[name])
        srcs = self.preds[name]
        op = _Op(name, t, list(srcs))
        self.ops[name] = op
        fail = lambda msg: self.fail(name, msg)   # noqa: E731
        if t == "Input":
            declared = _declared(getattr(node, "input_type", None), "input")
            if declared is not None and declared not in (self.input_shape, (1, *self.input_shape)):
                raise ParameterError(self.source, "inputs", f"the inputs' shape {list(self.input_shape)} per sample "
                                     f"does not match the graph's Input node '{name}' {list(declared)}")
            op.shape = self.input_shape
            return
        shapes = [self.ops[s].shape for s in srcs]
        if len(srcs) > 1:
            if t not in SPIKING:
                fail(f"sums {len(srcs)} incoming edges ({', '.join(srcs)}); only a spiking neuron may have several "
                     "(a residual add)")
            if len(set(shapes)) != 1:
                fail(f"sums inputs of different shapes {[list(s) for s in shapes]}")
        x = shapes[0]
        if t == "Output":
            declared = _declared(getattr(node, "output_type", None), "output")
            if declared is not None and declared not in (x, (1, *x)) and math.prod(declared) != math.prod(x):
                fail(f"declares the shape {list(declared)}, but its input has the shape {list(x)}")
            op.shape = x
        elif t == "Flatten":
            nd = len(x)
            s, e = int(getattr(node, "start_dim", 0)), int(getattr(node, "end_dim", -1))
            s, e = (s + nd if s < 0 else s), (e + nd if e < 0 else e)
            if not (s == 0 and e == nd - 1):
                fail(f"flattens dims {getattr(node, 'start_dim', 0)}..{getattr(node, 'end_dim', -1)} of the shape "
                     f"{list(x)} (NIR's dims exclude the batch dim); only a full flatten to one vector is supported")
            op.shape = (math.prod(x),)
        elif t in ("Linear", "Affine"):
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2:
                fail(f"weight must be [out, in], got the shape {list(w.shape)}")
            if len(x) != 1:
                fail(f"reads the shape {list(x)}; a Linear/Affine must read a flat vector (add a Flatten)")
            if w.shape[1] != x[0]:
                fail(f"weight {list(w.shape)} does not fit its input of {x[0]} values")
            b = None
            if t == "Affine":
                b = np.asarray(node.bias, dtype=np.float64).reshape(-1)
                if b.shape != (w.shape[0],):
                    fail(f"bias has {b.size} values for {w.shape[0]} outputs")
            op.params = dict(weight=w, bias=b)
            op.shape = (w.shape[0],)
        elif t == "Conv2d":
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 4:
                fail(f"weight must be [out, in/groups, kh, kw], got the shape {list(w.shape)}")
            if len(x) != 3:
                fail(f"reads the shape {list(x)}; a Conv2d reads [C, H, W]")
            groups = int(getattr(node, "groups", 1) or 1)
            if groups < 1 or x[0] != w.shape[1] * groups or w.shape[0] % groups:
                fail(f"weight {list(w.shape)} with groups={groups} does not fit its input {list(x)}")
            stride = _pair(getattr(node, "stride", 1), "stride", fail)
            dilation = _pair(getattr(node, "dilation", 1), "dilation", fail)
            kernel = (int(w.shape[2]), int(w.shape[3]))
            pad = getattr(node, "padding", 0)
            if isinstance(pad, bytes):
                pad = pad.decode()
            if isinstance(pad, str):
                span = [d * (k - 1) for d, k in zip(dilation, kernel)]
                if pad == "valid":
                    padding = (0, 0)
                elif pad == "same" and stride == (1, 1) and all(s % 2 == 0 for s in span):
                    padding = (span[0] // 2, span[1] // 2)
                else:
                    fail(f"padding {pad!r} is not supported (give numeric padding; 'same' only with stride 1 "
                         "and a symmetric pad)")
            else:
                padding = _pair(pad, "padding", fail)
            if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
                fail(f"stride {stride}, dilation {dilation} and padding {padding} must be positive (padding >= 0)")
            declared = getattr(node, "input_shape", None)
            if declared is not None and tuple(int(v) for v in np.asarray(declared).reshape(-1)) != tuple(x[1:]):
                fail(f"declares input_shape {list(np.asarray(declared).reshape(-1))}, but its input is {list(x)}")
            oh, ow = conv_output_hw(x[1], x[2], kernel, stride, padding, dilation)
            if oh < 1 or ow < 1:
                fail(f"its output would be empty ({oh}x{ow}) on the input {list(x)}")
            b = np.asarray(node.bias, dtype=np.float64).reshape(-1) if getattr(node, "bias", None) is not None else None
            if b is not None and b.shape != (w.shape[0],):
                fail(f"bias has {b.size} values for {w.shape[0]} output channels")
            op.params = dict(weight=w, bias=b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                             kernel=kernel)
            op.shape = (int(w.shape[0]), oh, ow)
        elif t in ("AvgPool2d", "SumPool2d"):
            if len(x) != 3:
                fail(f"reads the shape {list(x)}; a pool reads [C, H, W]")
            kernel = _pair(node.kernel_size, "kernel_size", fail)
            stride = kernel if getattr(node, "stride", None) is None else _pair(node.stride, "stride", fail)
            padding = _pair(getattr(node, "padding", 0), "padding", fail)
            if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
                fail(f"kernel {kernel}, stride {stride} must be >= 1 and padding {padding} >= 0")
            oh, ow = conv_output_hw(x[1], x[2], kernel, stride, padding)
            if oh < 1 or ow < 1:
                fail(f"its output would be empty ({oh}x{ow}) on the input {list(x)}")
            op.params = dict(kernel=kernel, stride=stride, padding=padding, mean=t == "AvgPool2d")
            op.shape = (x[0], oh, ow)
        else:   # neurons keep the shape of their input
            op.shape = x

    # -- roles --------------------------------------------------------------------------
    def _role(self, name: str):
        op, t = self.ops[name], self.ops[name].type
        if t in SYNAPTIC:
            succ = self.succs[name]
            if len(succ) == 1 and succ[0] == self.output:
                op.role = "readout"
            elif len(succ) == 1 and self.ops[succ[0]].type in SPIKING + NON_SPIKING and self.preds[succ[0]] == [name]:
                nxt = succ[0]
                if self.succs[nxt] == [self.output] or self.ops[nxt].type in NON_SPIKING:
                    if self.succs[nxt] != [self.output]:
                        self.fail(nxt, "a non-spiking neuron may only be the readout's final neuron (before the Output)")
                    op.role, self.ops[nxt].role = "readout", "final"
                else:
                    op.role, self.ops[nxt].role = "spikes", "owned"
            elif succ and all(self.ops[d].type in SPIKING and len(self.preds[d]) > 1 for d in succ):
                op.role = "current"
            else:
                kinds = ", ".join(f"'{d}' ({self.ops[d].type})" for d in succ)
                why = ("its output feeds several nodes" if all(self.ops[d].type in SPIKING for d in succ)
                       else "its output feeds a node with no neuron in between")
                self.fail(name, f"{why} ({kinds}); a synaptic node must feed exactly one neuron, the Output (the "
                          "readout), or only neurons that sum several inputs (residual adds) — the trace's layers "
                          "read spikes (put a neuron after it)")
            if op.role == "readout" and t not in WEIGHTED:
                self.fail(name, "the readout (the last node before the Output) must be a Conv2d, Linear or Affine")
        elif t in SPIKING + NON_SPIKING and not op.role:
            if t in NON_SPIKING:
                self.fail(name, "a non-spiking neuron may only be the readout's final neuron (before the Output)")
            if len(self.preds[name]) > 1:
                op.role = "add"
                if self.output in self.succs[name]:
                    self.fail(name, "an add's spikes cannot be the readout (end the graph with a Conv2d/Linear/Affine)")
            else:
                src = self.preds[name][0]
                self.fail(name, f"reads '{src}' ({self.ops[src].type}) directly; a neuron must follow a Conv2d, "
                          "Linear, Affine, AvgPool2d or SumPool2d (or sum several inputs: a residual add)")
        elif t == "Output":
            src = self.preds[name]
            if len(src) != 1 or self.ops[src[0]].role not in ("readout", "final"):
                self.fail(name, "must read one Conv2d/Linear/Affine, the readout (optionally through one final "
                          "neuron that feeds nothing else)")

    # -- trace layers -------------------------------------------------------------------
    def _neuron(self, name: str, pool_area: int = 1) -> NeuronModel:
        """Per-step constants of a spiking neuron node (refusing what the trace cannot hold)."""
        node, op = self.nodes[name], self.ops[name]
        n_el = math.prod(op.shape)
        dt = self.dt

        def one(fieldname, default=None) -> float:
            v = getattr(node, fieldname, None)
            if v is None:
                if default is None:
                    self.fail(name, f"has no {fieldname}")
                return default
            a = np.asarray(v, dtype=np.float64).reshape(-1)
            if a.size not in (1, n_el):
                self.fail(name, f"{fieldname} holds {a.size} values for {n_el} neurons")
            if np.isnan(a).any():
                self.fail(name, f"{fieldname} holds NaN")
            if not (a == a[0]).all():
                self.fail(name, f"{fieldname} differs between neurons (the trace holds one neuron model per layer)")
            return float(a[0])

        def factors(tau, r, what_tau, what_r) -> tuple[float, float]:
            """(a, g) = (1 - dt/tau, dt r/tau); tau = r = inf (snnTorch's beta = 1) is (1, 1)."""
            if not tau > 0 or not r > 0:
                self.fail(name, f"{what_tau} and {what_r} must be > 0, got {tau} and {r}")
            if math.isinf(tau) or math.isinf(r):
                if not (math.isinf(tau) and math.isinf(r)):
                    self.fail(name, f"{what_tau} = {tau} and {what_r} = {r}: the input gain dt*{what_r}/{what_tau} "
                              "is 0 or infinite (both inf is the non-leaky neuron snnTorch exports for beta = 1)")
                return 1.0, 1.0
            a, g = 1.0 - dt / tau, dt * r / tau
            if single:   # factors of float32 parameters carry float32 precision
                a, g = float(np.float32(a)), float(np.float32(g))
            if abs(g - 1.0) <= GAIN_SNAP:
                g = 1.0
            if not 0 < a <= 1:
                self.fail(name, f"the leak factor 1 - dt/{what_tau} = {a:.6g} is not in (0, 1] (dt = {dt:g}); "
                          f"give --dt smaller than {what_tau}")
            return a, g

        t = op.type
        single = all(np.asarray(getattr(node, f)).dtype.itemsize <= 4
                     for f in ("tau", "r", "tau_syn", "tau_mem", "w_in", "v_threshold")
                     if getattr(node, f, None) is not None and np.asarray(getattr(node, f)).dtype.kind == "f")
        thr = one("v_threshold")
        if not (math.isfinite(thr) and thr > 0):
            self.fail(name, f"v_threshold must be finite and > 0, got {thr}")
        if one("v_reset", 0.0) != 0.0:
            self.fail(name, f"v_reset = {one('v_reset', 0.0)}: only reset to 0 is supported (the trace's 'zero' reset)")
        if t in ("LIF", "CubaLIF") and one("v_leak", 0.0) != 0.0:
            self.fail(name, f"v_leak = {one('v_leak', 0.0)}: only v_leak = 0 is supported (the trace's LIF has no "
                      "resting potential)")
        if t == "IF":
            r = one("r", 1.0)
            if not (math.isfinite(r) and r > 0):
                self.fail(name, f"r must be finite and > 0, got {r}")
            op.neuron = _Neuron("IF", a=1.0, g=r, threshold=thr, single=single)
        elif t == "LIF":
            a, g = factors(one("tau"), one("r", 1.0), "tau", "r")
            op.neuron = _Neuron("LIF", a=a, g=g, threshold=thr, single=single)
        else:
            a_s, g_s = factors(one("tau_syn"), one("w_in", 1.0), "tau_syn", "w_in")
            a_m, g_m = factors(one("tau_mem"), one("r", 1.0), "tau_mem", "r")
            op.neuron = _Neuron("CubaLIF", a=a_m, g=g_s, a_syn=a_s, g_mem=g_m, threshold=thr, single=single)
        return op.neuron.model(pool_area)

    def _source_layer(self, name: str, src: str, *, current_ok: bool) -> str:
        s = self.ops[src]
        if s.type == "Input":
            return "input"
        if s.role == "current" and current_ok:
            return s.layer
        if s.layer and s.role != "current":
            return s.layer
        self.fail(name, f"reads '{src}' ({s.type}), whose output is not spikes")

    def _layer(self, name: str):
        op, t = self.ops[name], self.ops[name].type
        lname = re.sub(r"[^A-Za-z0-9_\-]", "_", name.replace(".", "_"))
        if t in SYNAPTIC:
            src = self._source_layer(name, op.srcs[0], current_ok=False)
            p = op.params
            in_shape = self.ops[op.srcs[0]].shape
            output = {"readout": "potential", "current": "current", "spikes": "spikes"}[op.role]
            neuron = READOUT_NEURON if op.role == "readout" else None
            geo = {}
            if t == "Conv2d":
                geo = dict(kernel=p["kernel"], stride=p["stride"], padding=p["padding"], groups=p["groups"],
                           dilation=p["dilation"], has_bias=p["bias"] is not None and bool(np.any(p["bias"] != 0)))
            elif t in ("Linear", "Affine"):
                geo = dict(has_bias=p["bias"] is not None and bool(np.any(p["bias"] != 0)))
            else:
                geo = dict(kernel=p["kernel"], stride=p["stride"], padding=p["padding"])
            if op.role == "spikes":
                nxt = self.succs[name][0]
                area = 1 if p.get("mean", True) else p["kernel"][0] * p["kernel"][1]
                neuron = self._neuron(nxt, area)
                self.ops[nxt].layer = lname
            self._add(LayerSpec(name=lname, kind=_TRACE_KIND[t], input_shape=in_shape, output_shape=op.shape,
                                output=output, inputs=(src,), neuron=neuron, **geo), name)
            op.layer = lname
            if op.role == "readout":
                self.readout = name
        elif t in SPIKING and op.role == "add":
            srcs = tuple(self._source_layer(name, s, current_ok=True) for s in op.srcs)
            if "input" in srcs:
                self.fail(name, "an add cannot read the analog Input")
            if len(set(srcs)) != len(srcs):
                self.fail(name, "sums the same layer twice")
            self._add(LayerSpec(name=lname, kind="add", input_shape=op.shape, output_shape=op.shape, output="spikes",
                                inputs=srcs, neuron=self._neuron(name)), name)
            op.layer = lname
        elif t == "Flatten":
            src = self._source_layer(name, op.srcs[0], current_ok=False)
            self._add(LayerSpec(name=lname, kind="flatten", input_shape=self.ops[op.srcs[0]].shape,
                                output_shape=op.shape, output="passthrough", inputs=(src,)), name)
            op.layer = lname

    def _add(self, spec: LayerSpec, node: str):
        if spec.name == "input" or any(l.name == spec.name for l in self.layers):
            self.fail(node, f"its trace layer name '{spec.name}' is taken (by the network input or another node); "
                      "rename the node")
        self.layers.append(spec)


# -- numpy kernels ------------------------------------------------------------------------
def _windows(x: np.ndarray, kernel, stride, padding, dilation, out_hw) -> np.ndarray:
    """x [B, C, H, W] -> [B, C, kh, kw, oh, ow]: each output position's input window (zero padded)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = np.empty((*x.shape[:2], kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return cols


def conv2d(x: np.ndarray, w: np.ndarray, b, stride, padding, dilation, groups: int, out_hw) -> np.ndarray:
    """2-D convolution of x [B, C, H, W] with w [O, C/groups, kh, kw] (+ bias b [O])."""
    B = x.shape[0]
    O, cg, kh, kw = w.shape
    og = O // groups
    cols = _windows(x, (kh, kw), stride, padding, dilation, out_hw)
    out = np.empty((B, O, *out_hw), dtype=np.float64)
    for g in range(groups):
        c = cols[:, g * cg:(g + 1) * cg].reshape(B, cg * kh * kw, -1)
        out[:, g * og:(g + 1) * og] = (w[g * og:(g + 1) * og].reshape(og, -1) @ c).reshape(B, og, *out_hw)
    if b is not None:
        out += b[None, :, None, None]
    return out


def pool2d(x: np.ndarray, kernel, stride, padding, mean: bool, out_hw) -> np.ndarray:
    """Sum (or mean, padding taps counted) over each window of x [B, C, H, W]."""
    s = _windows(x, kernel, stride, padding, (1, 1), out_hw).sum(axis=(2, 3))
    return s / (kernel[0] * kernel[1]) if mean else s


def _synapse(op: _Op, x: np.ndarray) -> np.ndarray:
    p = op.params
    if op.type == "Conv2d":
        return conv2d(x, p["weight"], p["bias"], p["stride"], p["padding"], p["dilation"], p["groups"], op.shape[1:])
    if op.type in ("Linear", "Affine"):
        y = x @ p["weight"].T
        return y + p["bias"] if p["bias"] is not None else y
    return pool2d(x, p["kernel"], p["stride"], p["padding"], p["mean"], op.shape[1:])


def simulate(plan: _Planner, x: np.ndarray, T: int):
    """Run the planned graph T steps on the batch x [B, *input_shape] (float64; direct encoding).
    Returns (spikes: trace layer -> bool [B, T, *shape], readout current summed over T [B, *out])."""
    B = x.shape[0]
    spikes, v, i_syn, cache = {}, {}, {}, {}
    readout = None
    for name in plan.order:
        op = plan.ops[name]
        if op.type in SPIKING and op.role in ("owned", "add"):
            spikes[op.layer] = np.zeros((B, T, *op.shape), dtype=bool)
            v[name] = np.zeros((B, *op.shape))
            if op.type == "CubaLIF":
                i_syn[name] = np.zeros((B, *op.shape))
    for t in range(T):
        val = {}
        for name in plan.order:
            op = plan.ops[name]
            if op.type == "Input":
                val[name] = x
            elif op.type in SYNAPTIC:
                src = op.srcs[0]
                if plan.ops[src].type == "Input":   # constant input: the same current every step
                    if name not in cache:
                        cache[name] = _synapse(op, x)
                    val[name] = cache[name]
                else:
                    val[name] = _synapse(op, val[src])
                if op.role == "readout":
                    readout = val[name].copy() if readout is None else readout + val[name]
            elif op.type == "Flatten":
                val[name] = val[op.srcs[0]].reshape(B, -1)
            elif op.type in SPIKING and op.role in ("owned", "add"):
                cur = val[op.srcs[0]]
                for s in op.srcs[1:]:
                    cur = cur + val[s]
                n = op.neuron
                if n.type == "CubaLIF":
                    i_syn[name] = n.a_syn * i_syn[name] + n.g * cur
                    v[name] = n.a * v[name] + n.g_mem * i_syn[name]
                else:
                    v[name] = n.a * v[name] + n.g * cur
                z = v[name] > n.threshold
                v[name][z] = 0.0
                spikes[op.layer][:, t] = z
                val[name] = z.astype(np.float64)
            # Output and the readout's final neuron: nothing to compute
    return spikes, readout


def plan_graph(graph, input_shape, dt: float = DEFAULT_DT, source=None) -> _Planner:
    """The checked, ordered plan of ``graph`` for inputs of ``input_shape`` (per sample)."""
    try:
        ok = math.isfinite(float(dt)) and float(dt) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(source, "dt", f"must be a finite number > 0, got {dt!r}")
    return _Planner(graph, input_shape, float(dt), source).plan()


def complete_types(graph, input_shape, dt: float = DEFAULT_DT):
    """Make an in-memory graph writable by ``nir.write`` (1.0.x) and type-checkable: neuron
    parameters held as 0-d arrays (snnTorch's export) become arrays of the neuron's shape, and
    every node gets the input and output types inferred from ``input_shape`` (per sample; an
    Input that declared a batch dim of 1 loses it).
    Returns the same graph, changed in place."""
    plan = plan_graph(graph, input_shape, dt)
    fields = ("tau", "r", "v_leak", "v_threshold", "v_reset", "tau_syn", "tau_mem", "w_in")
    for name in plan.order:
        op, node = plan.ops[name], plan.nodes[name]
        in_shape = plan.ops[op.srcs[0]].shape if op.srcs else op.shape
        if op.type in SPIKING + NON_SPIKING:
            for f in fields:
                v = getattr(node, f, None)
                if v is not None:
                    a = np.asarray(v)
                    setattr(node, f, np.broadcast_to(a.reshape(-1)[0] if a.size == 1 else a.reshape(op.shape),
                                                     op.shape).astype(a.dtype if a.dtype.kind == "f" else np.float64))
            node.input_type = {"input": np.array(op.shape)}
            node.output_type = {"output": np.array(op.shape)}
        elif op.type == "Flatten":
            node.input_type = {"input": np.array(in_shape)}
            node.output_type = {"output": np.array(op.shape)}
        elif op.type == "Conv2d":
            node.input_shape = tuple(int(s) for s in in_shape[1:])
            node.input_type = {"input": np.array(in_shape)}
            node.output_type = {"output": np.array(op.shape)}
        elif op.type in ("AvgPool2d", "SumPool2d", "Input", "Output"):   # Input/Output: no batch dim
            node.input_type = {"input": np.array(in_shape)}
            node.output_type = {"output": np.array(op.shape)}
    return graph


def import_nir(graph_or_path, inputs, T: int, out, *, dt: float = DEFAULT_DT, labels=None, dataset: str = "custom",
               source: str | None = None, model_name: str | None = None) -> NirImportResult:
    """Run a NIR graph (a ``nir.NIRGraph`` or a .nir file) ``T`` steps on each of ``inputs``
    [n, *input_shape] (analog, direct encoding) with the reference dynamics of this module and
    write an SNN-only trace to ``out``. One-line ParameterError (UnsupportedGraphError for the
    graph) on anything it cannot express; nothing is written then."""
    graph, source = load_graph(graph_or_path, source)
    try:
        x = np.asarray(inputs, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ParameterError(source, "inputs", f"not an array of numbers: {_short(exc)}") from None
    if x.ndim < 2 or x.shape[0] < 1:
        raise ParameterError(source, "inputs", f"expected [n, ...] with n >= 1, got the shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ParameterError(source, "inputs", "holds non-finite values")
    try:
        ok_T = not isinstance(T, bool) and int(T) == T and int(T) >= 1
    except (TypeError, ValueError):
        ok_T = False
    if not ok_T:
        raise ParameterError(source, "T", f"must be an integer >= 1, got {T!r}")
    T, n = int(T), int(x.shape[0])
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n or not np.issubdtype(labels.dtype, np.integer):
            raise ParameterError(source, "labels", f"expected {n} integers, got {labels.dtype} {list(labels.shape)}")
    plan = plan_graph(graph, x.shape[1:], dt, source)
    layers = plan.layers
    neurons = [l.neuron for l in layers if l.neuron is not None]
    nir_version = "unknown"
    try:
        nir_version = require_nir().version
    except (ParameterError, AttributeError):   # an in-memory graph without the package's version
        pass
    name = model_name or (Path(source).stem if source else "nir_graph")
    meta = TraceMeta(model=name, dataset=dataset, T=T, n_samples=n, input_shape=tuple(x.shape[1:]),
                     neuron=neurons[0] if neurons else NeuronModel(), weight_bits=WEIGHT_BITS,
                     recorder=f"sim.record.nir_import {__version__}",
                     library_versions={"nir": str(nir_version), "numpy": np.__version__},
                     description=(f"NIR graph {name} run step by step with import-nir (direct encoding, T={T}, "
                                  f"forward Euler dt={dt:g}, reset to v_reset=0 on a spike; float64); weights stored "
                                  "int8 per tensor (value = int * scale, scale = max|w|/127); SNN-only (derived twin)"),
                     twin_levels="derived", dynamics="causal")
    rname = plan.ops[plan.readout].layer
    with TraceWriter(out, meta, layers) as w:
        for name_, op in plan.ops.items():
            if op.type in WEIGHTED:
                q, scale = quantise_per_tensor(op.params["weight"])
                spec = next(l for l in w.layers if l.name == op.layer)
                w.set_weights(op.layer, q, scale, op.params["bias"] if spec.has_bias else None)
        for lo in range(0, n, BATCH):
            xb = x[lo:lo + BATCH].astype(np.float64)
            spikes, pot = simulate(plan, xb, T)
            if not np.isfinite(pot.astype(np.float32)).all():
                raise ParameterError(source, rname, "the readout's summed output is not finite in float32 (the "
                                     "weights or inputs are too large)")
            for k in range(xb.shape[0]):
                i = lo + k
                w.write_sample(i, label=-1 if labels is None else int(labels[i]), input=x[i],
                               spikes={l: s[k] for l, s in spikes.items()}, potentials={rname: pot[k]})
    return NirImportResult(path=str(out), samples=n, layers=list(w.layers))
