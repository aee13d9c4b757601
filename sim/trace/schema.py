"""The trace format's vocabulary: format version, layer kinds, metadata and layer geometry.

See docs/trace-format.md for the on-disk layout. Nothing here imports torch or h5py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

FORMAT_NAME = "snn-energy-trace"
#: Version 2 adds checksums (sim/trace/integrity.py) and the ``twin_levels`` attribute;
#: version 1 files (no checksums) stay readable.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

#: Synaptic or structural layer kinds a trace may hold.
LAYER_KINDS = ("conv2d", "linear", "avgpool", "flatten")
#: What a layer produces: re-spiked events, a readout potential (no fire), or its input reshaped.
OUTPUT_KINDS = ("spikes", "potential", "passthrough")
ENCODINGS = ("direct", "rate")
#: Neuron models and reset rules a trace may declare (``neuron`` attribute).
NEURON_TYPES = ("IF", "LIF")
RESETS = ("subtract", "zero", "none")
#: What the ANN twin's levels are: ``spike_counts`` declares every neuron's level equal to its
#: spike count over T (the paper's Q_T twin of an IF SNN; the reader checks it per sample),
#: ``independent`` claims no relation.
TWIN_LEVELS = ("spike_counts", "independent")
#: Version-1 files carry no ``twin_levels``; those written by these recorders hold the identity.
V1_EXACT_TWIN_RECORDERS = ("sim.record", "sim.trace.synthetic")
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

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(x) for x in self.input_shape)
        if self.ann_activation_bits == 0:
            self.ann_activation_bits = qt_activation_bits(self.T)


def qt_activation_bits(T: int) -> int:
    """Bits for the Q_T twin's levels 0..T: ceil(log2(T + 1))."""
    return max(1, math.ceil(math.log2(T + 1)))


def conv_output_hw(h: int, w: int, kernel, stride, padding) -> tuple[int, int]:
    """Output height and width of a 2-D convolution or pooling window."""
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return oh, ow


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a trace: geometry and what it produces.

    Shapes are per sample, without the time axis: (C, H, W) for maps, (F,) for vectors.
    ``act_scale`` converts an ANN-twin level to its activation value (1/T for Q_T).
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

    def __post_init__(self) -> None:
        for attr in ("input_shape", "output_shape", "kernel", "stride", "padding"):
            object.__setattr__(self, attr, tuple(int(x) for x in getattr(self, attr)))

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)

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
        if self.kind == "avgpool":
            return self.kernel[0] * self.kernel[1]
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
    def dense_macs(self) -> int:
        """Multiply-accumulates of one dense pass over this layer (one sample, one step)."""
        return self.n_neurons * self.fan_in if self.kind != "flatten" else 0

    def expected_output_shape(self) -> tuple[int, ...]:
        """The output shape the geometry implies (used by validation)."""
        if self.kind in ("conv2d", "avgpool"):
            c, h, w = self.input_shape
            oh, ow = conv_output_hw(h, w, self.kernel, self.stride, self.padding)
            channels = self.output_shape[0] if self.kind == "conv2d" else c
            return (channels, oh, ow)
        if self.kind == "linear":
            return (self.output_shape[0],)
        if self.kind == "flatten":
            return (self.n_inputs,)
        raise ValueError(self.kind)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("input_shape", "output_shape", "kernel", "stride", "padding"):
            d[key] = list(d[key])
        return d
