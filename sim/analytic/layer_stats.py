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


def _cover(n_in: int, n_out: int, k: int, stride: int, pad: int, dilation: int = 1) -> np.ndarray:
    """Per input position along one axis, how many output windows cover it: the pairs of an
    output position o and a tap j < k with i + pad - o*stride == j*dilation."""
    d = np.arange(n_in)[:, None] + pad - np.arange(n_out)[None, :] * stride
    return ((d >= 0) & (d % dilation == 0) & (d // dilation < k)).sum(axis=1).astype(np.int64)


def input_fanout(layer: LayerSpec) -> np.ndarray:
    """Synapses leaving each input element (C-order flat, int64).

    A window is the product of its two axes, so a conv/pool input pixel's fan-out is
    cover_y × cover_x (padding taps are not inputs), times the output channels that read
    its channel (K / groups for conv, 1 for pooling); a linear input feeds every output; an
    add's operand element feeds the one output at its position (operands concatenated)."""
    if layer.kind in ("conv2d", "avgpool", "maxpool"):
        c, h, w = layer.input_shape
        k, oh, ow = layer.output_shape
        dy, dx = layer.dilation_hw
        per_pixel = np.outer(_cover(h, oh, layer.kernel[0], layer.stride[0], layer.padding[0], dy),
                             _cover(w, ow, layer.kernel[1], layer.stride[1], layer.padding[1], dx))
        per_channel = k // layer.groups if layer.kind == "conv2d" else 1
        return np.tile(per_pixel.reshape(-1) * per_channel, c)
    if layer.kind == "linear":
        return np.full(layer.n_inputs, layer.output_shape[0], dtype=np.int64)
    if layer.kind == "add":
        return np.ones(layer.n_inputs, dtype=np.int64)
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
    (``nonzero_out``); summed over samples and steps. Per output neuron of a layer with
    neurons, the (sample, step) pairs in which it receives input or fires (``active_snn``;
    a direct-input layer and an add of a current receive every step) and the samples in
    which the twin's neuron receives a non-zero input or outputs one (``active_ann``): the
    neuromorphic mesh's ``neuron_updates: active``. Closed forms whose counts depend on
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
    #: an add's current operands' elements, summed over samples (each read and added every
    #: step in the SNN, once in the twin); 0 for every other layer
    current_inputs: int | float = 0
    per_step: dict = field(default_factory=dict, repr=False)
    per_element: dict = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "samples": self.samples, "analog_input": self.analog_input,
                "spikes_in": self.spikes_in, "synaptic_events": self.synaptic_events,
                "spikes_out": self.spikes_out, "ann_nonzero_inputs": self.ann_nonzero_inputs,
                "ann_macs": self.ann_macs}


def reads_stored_input(st: LayerEventStats, sources: list) -> bool:
    """The layer reads the network's stored input spikes (rate or event encoding): one of its
    ``sources`` (compute-layer indices in ``inputs`` order, None for the network input) is the
    input, and its statistics are not those of the analog input (direct encoding)."""
    return None in sources and not st.analog_input


def stored_input_spikes(st: LayerEventStats, sources: list) -> int | float:
    """The layer's input spikes that are the network's stored input spikes, summed over
    samples and steps: S when every operand is the input, else the per-element spikes of the
    operands that are (operand k = slice k·n:(k+1)·n of the concatenated input); 0 when it
    does not read them (:func:`reads_stored_input`)."""
    if not reads_stored_input(st, sources):
        return 0
    if all(s is None for s in sources):
        return st.spikes_in
    el = st.per_element["spikes_in"]
    n = el.size // len(sources)
    total = sum(el[k * n:(k + 1) * n].sum() for k, s in enumerate(sources) if s is None)
    return int(total) if np.issubdtype(el.dtype, np.integer) else float(total)


def window_or(layer: LayerSpec, x: np.ndarray) -> np.ndarray:
    """Neurons reached by a set of input elements: ``x`` bool [R, n_inputs] -> bool
    [R, n_neurons], neuron o set when a set element has a synapse into o. Conv and pooling:
    the channels of each group ORed, then each output pixel's window gathered through an
    index table of its taps (padding taps to an always-false column); linear: any input;
    add: the operands at the same position."""
    R = x.shape[0]
    if layer.kind == "linear":
        return np.repeat(x.any(axis=1, keepdims=True), layer.n_neurons, axis=1)
    if layer.kind == "add":
        return x.reshape(R, layer.n_operands, -1).any(axis=1)
    c, h, w = layer.input_shape
    k, oh, ow = layer.output_shape
    groups = layer.groups if layer.kind == "conv2d" else c
    dy, dx = layer.dilation_hw

    def taps(n_in, n_out, kk, stride, pad, dil):
        pos = np.arange(n_out)[:, None] * stride - pad + np.arange(kk)[None, :] * dil
        return np.where((pos >= 0) & (pos < n_in), pos, -1)   # [n_out, kk]

    ty = taps(h, oh, layer.kernel[0], layer.stride[0], layer.padding[0], dy)
    tx = taps(w, ow, layer.kernel[1], layer.stride[1], layer.padding[1], dx)
    flat = ty[:, None, :, None] * w + tx[None, :, None, :]                     # [oh, ow, kh, kw]
    flat = np.where((ty[:, None, :, None] < 0) | (tx[None, :, None, :] < 0), h * w, flat)
    g = x.reshape(R, groups, c // groups, h * w).any(axis=2)
    g = np.concatenate([g, np.zeros((R, groups, 1), dtype=bool)], axis=2)
    out = g[:, :, flat.reshape(oh * ow, -1)].any(axis=3)                        # [R, groups, oh*ow]
    return np.repeat(out, k // groups, axis=1).reshape(R, -1)


def _unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """Packed spikes uint8 [T, bytes] -> 0/1 int64 [T, n] (padding bits dropped)."""
    return np.unpackbits(packed, axis=1, count=n, bitorder=SPIKE_BITORDER).astype(np.int64)


def trace_event_stats(trace, samples: int | None = None, progress: bool = False) -> list[LayerEventStats]:
    """Measure S, E, F, nnz and M per compute layer over the first ``samples`` samples.

    One sample at a time, into per-layer sums (memory flat in ``samples``); ``progress``: a
    bar on stderr (samples/s, ETA; hidden when stderr is not a terminal).

    A layer whose producer is the input (direct encoding) sees the analog image: nnz and M
    come from its non-zero pixels (all pixels when the trace stores no input). Otherwise S
    and E come from the producer's packed spikes and nnz, M from its ANN-twin levels."""
    n = trace.n_samples if samples is None else samples
    layers = compute_layers(trace.layers)
    fan = {l.name: input_fanout(l) for l in layers}
    srcs = {l.name: trace.sources(l.name) for l in layers}
    spike_input = trace.meta.spike_input
    analog = {l.name: srcs[l.name] == [None] and not spike_input for l in layers}
    T = trace.T
    out = {l.name: LayerEventStats(l.name, n, analog[l.name],
                                   per_step={"spikes_in": np.zeros(T, np.int64),
                                             "synaptic_events": np.zeros(T, np.int64),
                                             "spikes_out": np.zeros(T, np.int64)},
                                   per_element={"spikes_in": np.zeros(l.n_inputs, np.int64),
                                                "nonzero_in": np.zeros(l.n_inputs, np.int64),
                                                "spikes_out": np.zeros(l.n_neurons, np.int64),
                                                "nonzero_out": np.zeros(l.n_neurons, np.int64),
                                                "active_snn": np.zeros(l.n_neurons, np.int64),
                                                "active_ann": np.zeros(l.n_neurons, np.int64)})
           for l in layers}
    def current(src) -> bool:
        return src is not None and src.output == "current"

    def source_bits(src, i, size):
        if current(src):   # a current operand: no spikes (its elements count in current_inputs)
            return np.zeros((T, size), np.int64)
        packed = trace.input_spikes_packed(i) if src is None else trace.spikes_packed(src.name, i)
        return _unpack(packed, size)

    def source_levels(src, i):
        if current(src):
            return np.zeros(src.n_neurons, np.int64)
        return trace.input_levels(i) if src is None else trace.activations(src.name, i).reshape(-1)

    for l in layers:
        out[l.name].current_inputs = n * sum(s.n_neurons for s in srcs[l.name] if current(s))

    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=n, desc="event stats", unit="sample", file=sys.stderr, leave=False, disable=None)
    for i in range(n):
        for l in layers:
            st, f = out[l.name], fan[l.name]
            dense = analog[l.name] or any(current(s) for s in srcs[l.name])  # input every step
            if analog[l.name]:
                x = trace.input(i).reshape(-1) if trace.has_input else np.ones(l.n_inputs)
                bits = None
            else:   # the operands' spikes and levels, concatenated in ``inputs`` order
                size = l.n_inputs // l.n_operands
                bits = np.concatenate([source_bits(s, i, size) for s in srcs[l.name]], axis=1)
                s_t, e_t = bits.sum(axis=1), bits @ f
                st.per_step["spikes_in"] += s_t
                st.per_element["spikes_in"] += bits.sum(axis=0)
                st.per_step["synaptic_events"] += e_t
                st.spikes_in += int(s_t.sum())
                st.synaptic_events += int(e_t.sum())
                x = np.concatenate([source_levels(s, i) for s in srcs[l.name]])
            nz = x != 0
            st.per_element["nonzero_in"] += nz
            st.ann_nonzero_inputs += int(nz.sum())
            st.ann_macs += int(f[nz].sum())
            if l.has_neurons:   # neuron updates with input or a spike (neuron_updates: active)
                act_snn = np.ones((T, l.n_neurons), bool) if dense else window_or(l, bits.astype(bool))
                act_ann = np.ones((1, l.n_neurons), bool) if dense and not analog[l.name] else window_or(l, nz[None])
                if l.output == "spikes":
                    act_snn |= _unpack(trace.spikes_packed(l.name, i), l.n_neurons).astype(bool)
                    act_ann |= trace.activations(l.name, i).reshape(1, -1) != 0
                st.per_element["active_snn"] += act_snn.sum(axis=0)
                st.per_element["active_ann"] += act_ann[0]
            if l.output == "spikes":
                fired = _unpack(trace.spikes_packed(l.name, i), l.n_neurons)
                f_t = fired.sum(axis=1)
                st.per_step["spikes_out"] += f_t
                st.per_element["spikes_out"] += fired.sum(axis=0)
                st.per_element["nonzero_out"] += trace.activations(l.name, i).reshape(-1) != 0
                st.spikes_out += int(f_t.sum())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return [out[l.name] for l in layers]


def binomial_density(rate: float, T: int) -> float:
    """Non-zero fraction of Q_T levels ~ Binomial(T, rate): 1 - (1 - rate)^T (a neuron that
    fires at least once), the density of the synthetic traces."""
    return 1.0 - (1.0 - rate) ** T


def if_step_probabilities(rate: float, T: int, threshold: float = 0.9999) -> np.ndarray:
    """Per step t, the probability that a synthetic neuron fires: its level L ~ Binomial(T, rate)
    drives an IF neuron (reset by subtraction) with the constant current L/T
    (sim/trace/synthetic.py). float [T]; their mean over t is ``rate``."""
    from math import comb

    p = np.zeros(T)
    for level in range(T + 1):
        pmf = comb(T, level) * rate ** level * (1 - rate) ** (T - level)
        v = 0.0
        for t in range(T):
            v += level / T
            if v >= threshold:
                v -= 1.0
                p[t] += pmf
    return p


def window_sizes(layer: LayerSpec) -> np.ndarray:
    """Per output neuron of a pooling layer, the input elements its window covers (padding
    taps excluded), int64 [n_neurons]."""
    c, h, w = layer.input_shape
    _, oh, ow = layer.output_shape

    def axis(n_in, n_out, k, s, pad):
        pos = np.arange(n_out)[:, None] * s - pad + np.arange(k)[None, :]
        return ((pos >= 0) & (pos < n_in)).sum(axis=1)
    per = np.outer(axis(h, oh, layer.kernel[0], layer.stride[0], layer.padding[0]),
                   axis(w, ow, layer.kernel[1], layer.stride[1], layer.padding[1])).reshape(-1)
    return np.tile(per, c).astype(np.int64)


def expected_event_stats(layers: list[LayerSpec], T: int, rate: float | dict[str, float],
                         density: float | dict[str, float] | None = None, samples: int = 1,
                         input_density: float = 1.0) -> list[LayerEventStats]:
    """Expected S, E, F, nnz, M (floats) when every spiking layer fires at ``rate`` spikes
    per neuron per step (one value or one per layer name) and its ANN twin's output has
    non-zero fraction ``density`` (default: the Binomial(T, rate) density). The analog
    image has non-zero fraction ``input_density``. Without a max-pool, expectations are exact
    for any spike distribution with those means (every statistic is linear in the spike
    indicators) and affine in ``rate``. A max-pool is not drawn: its spikes are the OR of its
    window's (sim/trace/synthetic.py), so its expected spikes and density — and what its
    consumers receive — are those of the OR of independent synthetic neurons: exact for the
    synthetic traces, and not affine in ``rate``. Its input must be a drawn layer. ``per_element`` holds the expectation per element
    (the neuromorphic form). Layers form a graph as in a trace (``inputs``; a chain if empty)."""
    from sim.trace.schema import NeuronModel, with_graph

    def of(value, name, default=None):
        if value is None:
            return default
        return value[name] if isinstance(value, dict) else value

    graph = with_graph(layers, NeuronModel())
    by_name = {l.name: l for l in graph}
    # per computing layer: per-element expected spikes per step and non-zero fraction of its output
    r_el: dict[str, np.ndarray] = {}
    rho_el: dict[str, np.ndarray] = {}

    def resolve(name):
        while name != "input" and by_name[name].output == "passthrough":
            name = by_name[name].inputs[0]
        return None if name == "input" else name

    out = []
    for l in compute_layers(graph):
        fan = input_fanout(l)
        srcs = [resolve(x) for x in l.inputs]
        analog = srcs == [None]
        st = LayerEventStats(l.name, samples, analog)
        if analog:
            r_in = np.zeros(l.n_inputs)
            rho_in = np.full(l.n_inputs, float(input_density))
        else:   # a current operand holds no spikes and no levels: zeros, counted in current_inputs
            cur = [s is not None and by_name[s].output == "current" for s in srcs]
            r_in = np.concatenate([np.zeros(by_name[s].n_neurons) if c else r_el[s] for s, c in zip(srcs, cur)])
            rho_in = np.concatenate([np.zeros(by_name[s].n_neurons) if c else rho_el[s] for s, c in zip(srcs, cur)])
            st.current_inputs = samples * sum(by_name[s].n_neurons for s, c in zip(srcs, cur) if c)
            st.spikes_in = samples * T * float(r_in.sum())
            st.synaptic_events = samples * T * float(r_in @ fan)
        st.ann_nonzero_inputs = samples * float(rho_in.sum())
        st.ann_macs = samples * float(rho_in @ fan)
        st.per_element = {"spikes_in": samples * T * r_in, "nonzero_in": samples * rho_in,
                          "spikes_out": np.zeros(l.n_neurons), "nonzero_out": np.zeros(l.n_neurons)}
        if l.kind == "maxpool":
            r_src = of(rate, srcs[0])
            k = window_sizes(l)
            p_t = if_step_probabilities(r_src, T)
            r_out = (1.0 - (1.0 - p_t[None, :]) ** k[:, None]).mean(axis=1)
            rho_out = 1.0 - (1.0 - of(density, srcs[0], binomial_density(r_src, T))) ** k
        elif l.output == "spikes":
            r_out = np.full(l.n_neurons, float(of(rate, l.name)))
            rho_out = np.full(l.n_neurons, float(of(density, l.name, binomial_density(of(rate, l.name), T))))
        else:
            r_out = rho_out = None
        if r_out is not None:
            r_el[l.name], rho_el[l.name] = r_out, rho_out
            st.spikes_out = samples * T * float(r_out.sum())
            st.per_element["spikes_out"] = samples * T * r_out
            st.per_element["nonzero_out"] = samples * rho_out
        out.append(st)
    return out


def trace_activation_bits(trace) -> int:
    """The Q_T twin's activation width the trace declares (ceil(log2(T + 1)) by default)."""
    return trace.meta.ann_activation_bits or qt_activation_bits(trace.T)
