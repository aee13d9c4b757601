"""The per-layer statistics a closed form needs, measured from a trace with plain numpy or
given as expectations for a spike rate.

These are the only data-dependent inputs of the per-architecture closed forms: input spikes
S, synaptic events E = Σ spikes × fan-out, output spikes F, the ANN twin's non-zero inputs
nnz and the MACs they cause M = Σ fan-out of non-zero inputs. They are computed here
independently of the simulator's counting kernels (``sim.kernels``), from the packed spikes,
the activation levels and the layer geometry, so that a closed form checked against the
simulator checks the kernels too. Nothing here imports the engine, the kernels or the
workload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.trace import LayerSpec, qt_activation_bits
from sim.trace.schema import SPIKE_BITORDER


def compute_layers(layers: list[LayerSpec]) -> list[LayerSpec]:
    """The layers that compute (passthroughs such as flatten dropped), in execution order."""
    return [l for l in layers if l.output != "passthrough"]


def _cover(n_in: int, n_out: int, k: int, stride: int, pad: int) -> np.ndarray:
    """Per input position along one axis, how many output windows cover it: the output
    positions o with 0 <= i + pad - o*stride < k."""
    d = np.arange(n_in)[:, None] + pad - np.arange(n_out)[None, :] * stride
    return ((d >= 0) & (d < k)).sum(axis=1).astype(np.int64)


def input_fanout(layer: LayerSpec) -> np.ndarray:
    """Synapses leaving each input element (C-order flat, int64).

    A window is the product of its two axes, so a conv/pool input pixel's fan-out is
    cover_y × cover_x (padding taps are not inputs), times the output channels that read
    its channel (K / groups for conv, 1 for pooling); a linear input feeds every output."""
    if layer.kind in ("conv2d", "avgpool"):
        c, h, w = layer.input_shape
        k, oh, ow = layer.output_shape
        per_pixel = np.outer(_cover(h, oh, layer.kernel[0], layer.stride[0], layer.padding[0]),
                             _cover(w, ow, layer.kernel[1], layer.stride[1], layer.padding[1]))
        per_channel = k // layer.groups if layer.kind == "conv2d" else 1
        return np.tile(per_pixel.reshape(-1) * per_channel, c)
    if layer.kind == "linear":
        return np.full(layer.n_inputs, layer.output_shape[0], dtype=np.int64)
    return np.zeros(layer.n_inputs, dtype=np.int64)


@dataclass
class LayerEventStats:
    """What one compute layer consumes and produces, summed over ``samples`` samples and T
    steps. Integers when measured from a trace; floats (expectations) for a spike rate.

    spikes_in S, synaptic_events E (each input spike × its fan-out), spikes_out F (0 for a
    layer that does not spike); ann_nonzero_inputs nnz and ann_macs M (Σ fan-out of the
    non-zero inputs: the zero-skipping MACs). ``analog_input``: the layer is driven by the
    analog image (direct encoding), so S = E = 0 and nnz, M count the image's non-zeros.
    ``per_step``: optional S_t, E_t, F_t arrays (summed over samples). ``per_element``
    (measured only): per input element its spikes (``spikes_in``) and the samples in which
    it is non-zero (``nonzero_in``: ANN activation or image pixel); per output neuron its
    spikes (``spikes_out``) and the samples in which its ANN level is non-zero
    (``nonzero_out``); summed over samples and steps. Closed forms whose counts depend on
    which elements fire (the neuromorphic mesh) weight static per-element figures by these.
    """

    name: str
    samples: int
    analog_input: bool
    spikes_in: int | float = 0
    synaptic_events: int | float = 0
    spikes_out: int | float = 0
    ann_nonzero_inputs: int | float = 0
    ann_macs: int | float = 0
    per_step: dict = field(default_factory=dict, repr=False)
    per_element: dict = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "samples": self.samples, "analog_input": self.analog_input,
                "spikes_in": self.spikes_in, "synaptic_events": self.synaptic_events,
                "spikes_out": self.spikes_out, "ann_nonzero_inputs": self.ann_nonzero_inputs,
                "ann_macs": self.ann_macs}


def _unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """Packed spikes uint8 [T, bytes] -> 0/1 int64 [T, n] (padding bits dropped)."""
    return np.unpackbits(packed, axis=1, count=n, bitorder=SPIKE_BITORDER).astype(np.int64)


def trace_event_stats(trace, samples: int | None = None) -> list[LayerEventStats]:
    """Measure S, E, F, nnz and M per compute layer over the first ``samples`` samples.

    A layer whose producer is the input (direct encoding) sees the analog image: nnz and M
    come from its non-zero pixels (all pixels when the trace stores no input). Otherwise S
    and E come from the producer's packed spikes and nnz, M from its ANN-twin levels."""
    n = trace.n_samples if samples is None else samples
    layers = compute_layers(trace.layers)
    fan = {l.name: input_fanout(l) for l in layers}
    prod = {l.name: trace.producer(l.name) for l in layers}
    T = trace.T
    out = {l.name: LayerEventStats(l.name, n, prod[l.name] is None,
                                   per_step={"spikes_in": np.zeros(T, np.int64),
                                             "synaptic_events": np.zeros(T, np.int64),
                                             "spikes_out": np.zeros(T, np.int64)},
                                   per_element={"spikes_in": np.zeros(l.n_inputs, np.int64),
                                                "nonzero_in": np.zeros(l.n_inputs, np.int64),
                                                "spikes_out": np.zeros(l.n_neurons, np.int64),
                                                "nonzero_out": np.zeros(l.n_neurons, np.int64)})
           for l in layers}
    for i in range(n):
        for l in layers:
            st, f, prev = out[l.name], fan[l.name], prod[l.name]
            if prev is None:
                x = trace.input(i).reshape(-1) if trace.has_input else np.ones(l.n_inputs)
            else:
                bits = _unpack(trace.spikes_packed(prev.name, i), l.n_inputs)
                s_t, e_t = bits.sum(axis=1), bits @ f
                st.per_step["spikes_in"] += s_t
                st.per_element["spikes_in"] += bits.sum(axis=0)
                st.per_step["synaptic_events"] += e_t
                st.spikes_in += int(s_t.sum())
                st.synaptic_events += int(e_t.sum())
                x = trace.activations(prev.name, i).reshape(-1)
            nz = x != 0
            st.per_element["nonzero_in"] += nz
            st.ann_nonzero_inputs += int(nz.sum())
            st.ann_macs += int(f[nz].sum())
            if l.output == "spikes":
                fired = _unpack(trace.spikes_packed(l.name, i), l.n_neurons)
                f_t = fired.sum(axis=1)
                st.per_step["spikes_out"] += f_t
                st.per_element["spikes_out"] += fired.sum(axis=0)
                st.per_element["nonzero_out"] += trace.activations(l.name, i).reshape(-1) != 0
                st.spikes_out += int(f_t.sum())
    return [out[l.name] for l in layers]


def binomial_density(rate: float, T: int) -> float:
    """Non-zero fraction of Q_T levels ~ Binomial(T, rate): 1 - (1 - rate)^T (a neuron that
    fires at least once), the density of the synthetic traces."""
    return 1.0 - (1.0 - rate) ** T


def expected_event_stats(layers: list[LayerSpec], T: int, rate: float | dict[str, float],
                         density: float | dict[str, float] | None = None, samples: int = 1,
                         input_density: float = 1.0) -> list[LayerEventStats]:
    """Expected S, E, F, nnz, M (floats) when every spiking layer fires at ``rate`` spikes
    per neuron per step (one value or one per layer name) and its ANN twin's output has
    non-zero fraction ``density`` (default: the Binomial(T, rate) density). The analog
    image has non-zero fraction ``input_density``. Expectations are exact for any spike
    distribution with those means: every statistic is linear in the spike indicators.
    ``per_element`` holds the same expectation for every element (the neuromorphic form)."""
    def of(value, name, default=None):
        if value is None:
            return default
        return value[name] if isinstance(value, dict) else value

    out = []
    prev: LayerSpec | None = None
    for l in compute_layers(layers):
        fan_total = float(input_fanout(l).sum())
        st = LayerEventStats(l.name, samples, prev is None)
        if prev is None:
            rho = input_density
        else:
            r = of(rate, prev.name)
            rho = of(density, prev.name, binomial_density(r, T))
            st.spikes_in = samples * T * r * l.n_inputs
            st.synaptic_events = samples * T * r * fan_total
        st.ann_nonzero_inputs = samples * rho * l.n_inputs
        st.ann_macs = samples * rho * fan_total
        r_in = 0.0 if prev is None else samples * T * of(rate, prev.name)
        st.per_element = {"spikes_in": np.full(l.n_inputs, r_in), "nonzero_in": np.full(l.n_inputs, samples * rho),
                          "spikes_out": np.zeros(l.n_neurons), "nonzero_out": np.zeros(l.n_neurons)}
        if l.output == "spikes":
            r_out = of(rate, l.name)
            st.spikes_out = samples * T * r_out * l.n_neurons
            st.per_element["spikes_out"][:] = samples * T * r_out
            st.per_element["nonzero_out"][:] = samples * of(density, l.name, binomial_density(r_out, T))
        out.append(st)
        prev = l
    return out


def trace_activation_bits(trace) -> int:
    """The Q_T twin's activation width the trace declares (ceil(log2(T + 1)) by default)."""
    return trace.meta.ann_activation_bits or qt_activation_bits(trace.T)
