"""The trace format's vocabulary: format version, layer kinds, metadata and layer geometry.

See docs/trace-format.md for the on-disk layout. Nothing here imports torch or h5py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

FORMAT_NAME = "snn-energy-trace"
#: Version 2 adds checksums (sim/trace/integrity.py) and the ``twin_levels`` attribute;
#: version 3 makes the network a layer graph (``inputs`` per layer), adds the ``maxpool`` and
#: ``add`` kinds, dilation, a neuron model per layer, the ``events`` encoding and SNN-only
#: traces (``twin_levels = derived``). Versions 1 and 2 (chains) stay readable.
FORMAT_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)

#: Synaptic or structural layer kinds a trace may hold.
LAYER_KINDS = ("conv2d", "linear", "avgpool", "maxpool", "add", "flatten")
#: Kinds whose outputs are neurons with a membrane (a neuron model); maxpool (the spike OR
#: over a window) and flatten are stateless.
NEURON_KINDS = ("conv2d", "linear", "avgpool", "add")
#: The name a layer's ``inputs`` use for the network's input.
NETWORK_INPUT = "input"
#: What a layer produces: re-spiked events, a readout potential (no fire), its input reshaped,
#: or (format 3) a ``current``: a conv2d/linear/avgpool without a neuron whose input current
#: of each step is summed by the ``add`` layers it feeds (membrane/current addition).
OUTPUT_KINDS = ("spikes", "potential", "passthrough", "current")
#: Kinds that may output a current.
CURRENT_KINDS = ("conv2d", "linear", "avgpool")
#: ``direct``: the analog input drives the first layers; ``rate`` and ``events``: the stored
#: input spikes (``input_spikes``) are the first layers' events.
ENCODINGS = ("direct", "rate", "events")
#: Neuron models and reset rules a trace may declare (``neuron`` attribute).
NEURON_TYPES = ("IF", "LIF")
RESETS = ("subtract", "zero", "none")
#: What the ANN twin's levels are: ``spike_counts`` declares every neuron's level equal to its
#: spike count over T (the paper's Q_T twin of an IF SNN; the reader checks it per sample),
#: ``independent`` claims no relation; ``derived`` (an SNN-only trace) stores no levels: the
#: twin is the functionally equivalent QNN whose level per neuron is its spike count over T,
#: at ceil(log2(T + 1)) bits.
TWIN_LEVELS = ("spike_counts", "independent", "derived")
#: Version-1 files carry no ``twin_levels``; those written by these recorders hold the identity.
V1_EXACT_TWIN_RECORDERS = ("sim.record", "sim.trace.synthetic")
#: How a converted SNN's layers were driven (optional v3 ``dynamics`` attribute; absent: unknown,
#: ``window`` for files of the paper's recorder): ``window``, the constant current
#: W . mean_t(s_t) + b over the whole window; ``causal``, step by step, W . s_t + b at step t.
DYNAMICS = ("window", "causal")
#: Bit order of the packed spike datasets (numpy.packbits(bitorder=...)).
SPIKE_BITORDER = "little"


@dataclass(frozen=True)
class NeuronModel:
    """Integrate-and-fire neuron of the SNN (the paper: no leak, reset by subtraction)."""

    type: str = "IF"
    threshold: float = 0.9999
    reset: str = "subtract"
    leak: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def leaks(self) -> bool:
        """A LIF neuron pays a leak (multiply by the leak factor) per neuron per step."""
        return self.type == "LIF"


@dataclass
class TraceMeta:
    """File-level metadata of a trace."""

    model: str
    dataset: str
    T: int
    n_samples: int
    input_shape: tuple[int, ...]
    neuron: NeuronModel = field(default_factory=NeuronModel)
    encoding: str = "direct"
    ann_activation_bits: int = 0  # 0 means ceil(log2(T + 1)), the Q_T twin's width
    weight_bits: int = 8
    synthetic: bool = False
    recorder: str = "sim"
    library_versions: dict = field(default_factory=dict)
    description: str = ""
    twin_levels: str = "independent"
    dynamics: str = ""   # "" (not stated), or one of DYNAMICS

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(x) for x in self.input_shape)
        if self.ann_activation_bits == 0:
            self.ann_activation_bits = qt_activation_bits(self.T)

    @property
    def twin(self) -> str:
        """Which ANN twin a replay uses: ``recorded`` (levels stored in the trace) or
        ``derived`` (the QNN of spike counts over T, for an SNN-only trace)."""
        return "derived" if self.twin_levels == "derived" else "recorded"

    @property
    def spike_input(self) -> bool:
        """The first layers consume stored input spikes (rate or event encoding)."""
        return self.encoding in ("rate", "events")


def qt_activation_bits(T: int) -> int:
    """Bits for the Q_T twin's levels 0..T: ceil(log2(T + 1))."""
    return max(1, math.ceil(math.log2(T + 1)))


def conv_output_hw(h: int, w: int, kernel, stride, padding, dilation=(1, 1)) -> tuple[int, int]:
    """Output height and width of a 2-D convolution or pooling window (dilated: a kernel of
    k taps spans dilation * (k - 1) + 1 pixels)."""
    ek = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    oh = (h + 2 * padding[0] - ek[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - ek[1]) // stride[1] + 1
    return oh, ow


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a trace: geometry and what it produces.

    Shapes are per sample, without the time axis: (C, H, W) for maps, (F,) for vectors.
    ``act_scale`` converts an ANN-twin level to its activation value (1/T for Q_T).
    ``inputs`` names the layers (or ``"input"``) whose outputs this layer consumes: one for
    every kind but ``add``, which sums two or more of the same shape (``input_shape``). Left
    empty, the layer reads the previous layer's output (a chain; :func:`with_graph` fills it).
    ``neuron``: the layer's neuron model (neuron kinds only; None: the file's default).
    ``dilation``: conv2d only (empty means 1, 1).
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    groups: int = 1
    output: str = "spikes"
    act_scale: float = 1.0
    has_bias: bool = False
    inputs: tuple[str, ...] = ()
    dilation: tuple[int, ...] = ()
    neuron: NeuronModel | None = None

    def __post_init__(self) -> None:
        for attr in ("input_shape", "output_shape", "kernel", "stride", "padding", "dilation"):
            object.__setattr__(self, attr, tuple(int(x) for x in getattr(self, attr)))
        object.__setattr__(self, "inputs", tuple(str(x) for x in self.inputs))
        if isinstance(self.neuron, dict):
            object.__setattr__(self, "neuron", NeuronModel(**self.neuron))

    @property
    def n_operands(self) -> int:
        """Input tensors the layer consumes (an add's operands; 1 otherwise)."""
        return max(1, len(self.inputs)) if self.kind == "add" else 1

    @property
    def n_inputs(self) -> int:
        """Input elements per sample: the operands' outputs, concatenated in ``inputs`` order."""
        return math.prod(self.input_shape) * self.n_operands

    @property
    def has_neurons(self) -> bool:
        """Its outputs are neurons with a membrane (IF/LIF), not stateless (maxpool, flatten)
        nor a current summed by an add (output ``current``)."""
        return self.kind in NEURON_KINDS and self.output != "current"

    @property
    def op(self) -> str:
        """What one synapse of the layer does in the ANN twin: ``mac`` (conv2d, linear),
        ``add`` (avgpool's fixed-weight sum, a residual add), ``compare`` (maxpool), ``none``."""
        return {"conv2d": "mac", "linear": "mac", "avgpool": "add", "add": "add",
                "maxpool": "compare"}.get(self.kind, "none")

    @property
    def dilation_hw(self) -> tuple[int, int]:
        return tuple(self.dilation) if self.dilation else (1, 1)

    @property
    def n_neurons(self) -> int:
        """Output neurons per sample (elements of the output map)."""
        return math.prod(self.output_shape)

    @property
    def fan_in(self) -> int:
        """Synapses feeding one output neuron (0 for a passthrough)."""
        if self.kind == "conv2d":
            return (self.input_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]
        if self.kind == "linear":
            return self.n_inputs
        if self.kind in ("avgpool", "maxpool"):
            return self.kernel[0] * self.kernel[1]
        if self.kind == "add":
            return self.n_operands
        return 0

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the stored weight tensor (empty for layers without weights)."""
        if self.kind == "conv2d":
            return (self.output_shape[0], self.input_shape[0] // self.groups, *self.kernel)
        if self.kind == "linear":
            return (self.output_shape[0], self.n_inputs)
        return ()

    @property
    def n_weights(self) -> int:
        return math.prod(self.weight_shape) if self.weight_shape else 0

    @property
    def dense_ops(self) -> int:
        """Synapse operations of one dense pass (one sample, one step): fan-in per output,
        padding taps included (a dense array computes them); :attr:`op` says what they are."""
        return self.n_neurons * self.fan_in if self.kind != "flatten" else 0

    @property
    def dense_macs(self) -> int:
        """Multiply-accumulates of one dense pass: conv2d, linear and avgpool's fixed-weight
        sums (as in format 1); a residual add's adds and a max-pool's compares are not MACs."""
        return self.dense_ops if self.kind in ("conv2d", "linear", "avgpool") else 0

    def expected_output_shape(self) -> tuple[int, ...]:
        """The output shape the geometry implies (used by validation)."""
        if self.kind in ("conv2d", "avgpool", "maxpool"):
            c, h, w = self.input_shape
            oh, ow = conv_output_hw(h, w, self.kernel, self.stride, self.padding, self.dilation_hw)
            channels = self.output_shape[0] if self.kind == "conv2d" else c
            return (channels, oh, ow)
        if self.kind == "add":
            return tuple(self.input_shape)
        if self.kind == "linear":
            return (self.output_shape[0],)
        if self.kind == "flatten":
            return (self.n_inputs,)
        raise ValueError(self.kind)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("input_shape", "output_shape", "kernel", "stride", "padding", "dilation", "inputs"):
            d[key] = list(d[key])
        return d


def with_graph(layers: list[LayerSpec], default_neuron: NeuronModel) -> list[LayerSpec]:
    """``layers`` with every graph field filled: a layer without ``inputs`` reads the previous
    layer's output (the network input for the first), a neuron layer without a neuron model
    gets ``default_neuron``, a stateless one none, a conv2d without dilation (1, 1)."""
    from dataclasses import replace

    out, prev = [], NETWORK_INPUT
    for layer in layers:
        changes = {}
        if not layer.inputs:
            changes["inputs"] = (prev,)
        if layer.has_neurons and layer.neuron is None:
            changes["neuron"] = default_neuron
        if not layer.has_neurons and layer.neuron is not None:
            changes["neuron"] = None
        if layer.kind == "conv2d" and not layer.dilation:
            changes["dilation"] = (1, 1)
        out.append(replace(layer, **changes) if changes else layer)
        prev = layer.name
    return out
