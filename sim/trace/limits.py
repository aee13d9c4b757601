"""What a trace may declare before anything is allocated for it (docs/trace-format.md, "Limits").

A consistent file can still declare a network no replay can hold (a layer of 10^12 neurons, a
T of 10^6): the reader, the writer, ``synth`` and ``record`` refuse it from the declared shapes
alone, with one line naming the layer and the field, instead of failing in an allocation.
Nothing here imports h5py or numpy.
"""

from __future__ import annotations

import math
import os

#: Largest T: the ANN twin's levels 0..T are stored in uint16 (ann_activation_bits <= 16).
MAX_T = 2**16 - 1
#: Most samples in one trace: the per-row checksums take 32 B per sample and dataset, read at
#: open, so a trace's checksum attributes stay under 32 MiB per dataset.
MAX_SAMPLES = 2**20
#: Largest class index a label may hold (labels are class indices, or -1: unknown).
MAX_LABEL = 2**24 - 1
#: Most neurons (elements) in one layer's output or in the input: 2^26 = 67,108,864, about 20x
#: the largest map of an ImageNet VGG16 (64x224x224 = 3.2 M).
MAX_NEURONS_PER_LAYER = 2**26
#: Memory one decoded sample of the whole network may take, and one layer's weights.
MEMORY_BUDGET_BYTES = 4 * 2**30
#: Bytes per neuron per time step of a decoded sample: the spike bit unpacked to a byte (the
#: per-neuron counts) plus an int64 event index (the kernels' CSR of spikes), worst case.
BYTES_PER_NEURON_STEP = 1 + 8
#: Bytes per neuron of a decoded sample independent of T: the level, its per-neuron spike
#: count, an int64 fan-out and an int64 index of a non-zero level.
BYTES_PER_NEURON = 16
#: Seconds the first read of a file's metadata may take (a child process does it, see
#: sim/trace/guard.py); the environment variable ``SIM_TRACE_OPEN_TIMEOUT`` overrides it
#: (seconds; 0 reads in-process, unbounded).
OPEN_TIMEOUT_S = 20.0
OPEN_TIMEOUT_ENV = "SIM_TRACE_OPEN_TIMEOUT"


class LimitExceeded(ValueError):
    """A declared size over a limit: ``field`` (and ``layer``, None for the file) at fault."""

    def __init__(self, field: str, layer: str | None, message: str):
        self.field, self.layer, self.message = field, layer, message
        super().__init__(f"layer {layer}: {field}: {message}" if layer else f"{field}: {message}")


def check_request(T: int, samples: int, input_shape, layers, *, file: str | None = None,
                  T_option: str = "--T", samples_option: str = "--samples") -> None:
    """:func:`check_limits` for a command about to write a trace: ParameterError naming
    ``file`` and the command's option (the sample count's, else T's) instead of LimitExceeded."""
    from sim.errors import ParameterError

    try:
        check_limits(T, samples, input_shape, layers)
    except LimitExceeded as exc:
        option = samples_option if exc.field == "n_samples" else T_option
        where = "" if exc.field in ("T", "n_samples") else \
            f" (layer {exc.layer}: {exc.field})" if exc.layer else f" ({exc.field})"
        raise ParameterError(file, option, f"{exc.message}{where}") from None


def open_timeout() -> float:
    """The metadata timeout in seconds (``SIM_TRACE_OPEN_TIMEOUT``, else :data:`OPEN_TIMEOUT_S`)."""
    text = os.environ.get(OPEN_TIMEOUT_ENV)
    if text is None:
        return OPEN_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        return OPEN_TIMEOUT_S
    return value if math.isfinite(value) and value >= 0 else OPEN_TIMEOUT_S


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def sample_bytes(T: int, neurons: int) -> int:
    """Estimated bytes of one decoded sample of ``neurons`` elements over T steps."""
    return neurons * (T * BYTES_PER_NEURON_STEP + BYTES_PER_NEURON)


def check_limits(T: int, n_samples: int, input_shape, layers) -> None:
    """LimitExceeded unless T, the sample count, every layer's width and one decoded sample
    (input plus every non-passthrough layer) fit the limits above. ``layers``: LayerSpecs."""
    if T > MAX_T:
        raise LimitExceeded("T", None, f"{T} is over the limit of {MAX_T} time steps (levels 0..T must fit "
                            "16 bits; sim.trace.limits.MAX_T)")
    if n_samples > MAX_SAMPLES:
        raise LimitExceeded("n_samples", None, f"{n_samples} is over the limit of {MAX_SAMPLES} samples "
                            "(sim.trace.limits.MAX_SAMPLES)")
    n_in = math.prod(int(x) for x in input_shape)
    if n_in > MAX_NEURONS_PER_LAYER:
        raise LimitExceeded("input_shape", None, f"{n_in} inputs are over the limit of {MAX_NEURONS_PER_LAYER} "
                            "per layer (sim.trace.limits.MAX_NEURONS_PER_LAYER)")
    total, largest = sample_bytes(T, n_in), ("input_shape", None, sample_bytes(T, n_in))
    for layer in layers:
        n = math.prod(int(x) for x in layer.output_shape)
        if n > MAX_NEURONS_PER_LAYER:
            raise LimitExceeded("output_shape", layer.name, f"{n} neurons are over the limit of "
                                f"{MAX_NEURONS_PER_LAYER} per layer (sim.trace.limits.MAX_NEURONS_PER_LAYER)")
        if layer.output == "passthrough":
            continue
        b = sample_bytes(T, n)
        total += b
        if b > largest[2]:
            largest = ("output_shape", layer.name, b)
    if total > MEMORY_BUDGET_BYTES:
        field, layer, b = largest
        raise LimitExceeded(field, layer, f"one decoded sample needs ~{_gib(total)} at T={T} ({_gib(b)} for "
                            f"this layer, the largest), over the memory budget of {_gib(MEMORY_BUDGET_BYTES)} "
                            "(sim.trace.limits.MEMORY_BUDGET_BYTES)")


def check_weight_bytes(layer: str, n_weights: int, itemsize: int) -> None:
    """LimitExceeded if one layer's stored weights, read whole, exceed the memory budget."""
    if n_weights * itemsize > MEMORY_BUDGET_BYTES:
        raise LimitExceeded("weight", layer, f"{n_weights} weights ({_gib(n_weights * itemsize)}) are over the "
                            f"memory budget of {_gib(MEMORY_BUDGET_BYTES)} (sim.trace.limits.MEMORY_BUDGET_BYTES)")
