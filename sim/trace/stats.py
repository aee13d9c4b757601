"""Per-layer event statistics of a trace, computed by streaming one sample at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.trace.reader import Trace


@dataclass
class LayerStats:
    """Events a layer produced, summed over the samples read."""

    name: str
    kind: str
    output: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    fan_in: int
    neurons: int
    spike_count: int = 0       # output spikes over samples and time steps
    nonzero_acts: int = 0      # non-zero ANN-twin activations over samples
    level_sum: int = 0         # sum of ANN-twin levels over samples
    samples: int = 0
    T: int = 1
    inputs: tuple[str, ...] = ()
    neuron: dict | None = None

    @property
    def spike_rate(self) -> float | None:
        """Spikes per neuron per time step (None for layers that do not spike)."""
        if self.output != "spikes" or not self.samples:
            return None
        return self.spike_count / (self.neurons * self.T * self.samples)

    @property
    def activation_density(self) -> float | None:
        """Fraction of non-zero ANN-twin activations (None for layers that do not spike)."""
        if self.output != "spikes" or not self.samples:
            return None
        return self.nonzero_acts / (self.neurons * self.samples)

    def to_row(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "output": self.output,
            "input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
            "fan_in": self.fan_in, "neurons": self.neurons, "spike_count": self.spike_count,
            "spike_rate": self.spike_rate, "activation_density": self.activation_density,
            "ann_level_sum": self.level_sum, "inputs": list(self.inputs), "neuron": self.neuron,
        }


def rate_layers(trace: Trace) -> list[str]:
    """Layers counted in the paper's network spike rate.

    The paper counts the outputs of conv layers 2-13 and the re-spiked pooling outputs of
    VGG16: every spiking output except the first layer's (it sees the direct-encoded analog
    input). With rate-encoded input the first layer is counted too.
    """
    names = [l.name for l in trace.layers if l.output == "spikes"]
    if trace.meta.encoding == "direct" and names and names[0] == trace.layers[0].name:
        names = names[1:]
    return names


def layer_stats(trace: Trace, samples: int | None = None) -> list[LayerStats]:
    """Stream the trace and count spikes and non-zero activations per layer."""
    n = trace.n_samples if samples is None else min(samples, trace.n_samples)
    stats = [LayerStats(l.name, l.kind, l.output, l.input_shape, l.output_shape, l.fan_in,
                        l.n_neurons, samples=n, T=trace.T, inputs=l.inputs,
                        neuron=l.neuron.to_dict() if l.neuron is not None else None) for l in trace.layers]
    for st in stats:
        if st.output != "spikes":
            continue
        for i in range(n):
            st.spike_count += int(np.bitwise_count(trace.spikes_packed(st.name, i)).sum())
            acts = trace.activations(st.name, i)
            st.nonzero_acts += int(np.count_nonzero(acts))
            st.level_sum += int(acts.sum(dtype=np.int64))
    return stats


def network_spike_rate(trace: Trace, stats: list[LayerStats], names: list[str] | None = None) -> float | None:
    """Spikes / (neurons x T x samples) over ``names`` (default: the paper's definition)."""
    names = rate_layers(trace) if names is None else names
    chosen = [s for s in stats if s.name in names]
    denom = sum(s.neurons * s.T * s.samples for s in chosen)
    return sum(s.spike_count for s in chosen) / denom if denom else None
