"""A trace seen as a workload: per-layer geometry and, per sample, the events each layer
consumes and produces, counted by the numba kernels from the real bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.kernels import ann_input_counts, input_fanout, popcount_rows, spike_event_counts
from sim.trace import LayerSpec, Trace


@dataclass
class LayerEvents:
    """What one compute layer does on one sample.

    SNN: ``in_spikes[t]`` spikes consumed and ``synops[t]`` synaptic events (each spike
    times its fan-out) at step t; ``out_spikes[t]`` spikes fired. With analog (direct)
    input, the layer consumes no spikes: ``analog_input`` is set and the input is dense.
    ANN twin: ``ann_nnz_in`` non-zero input activations and ``ann_macs`` the MACs left when
    zeros are skipped; ``dense_macs`` without skipping.
    """

    in_spikes: np.ndarray
    synops: np.ndarray
    out_spikes: np.ndarray
    ann_nnz_in: int
    ann_macs: int
    dense_macs: int
    analog_input: bool


class Workload:
    """Compute layers of a trace (passthroughs dropped) and their per-sample events."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.T = trace.T
        self.layers: list[LayerSpec] = [l for l in trace.layers if l.output != "passthrough"]
        self._fanout = {l.name: input_fanout(l) for l in self.layers}
        self._producer = {l.name: trace.producer(l.name) for l in self.layers}

    @property
    def n_samples(self) -> int:
        return self.trace.n_samples

    def fanout(self, name: str) -> np.ndarray:
        """Synapses leaving each input element of layer ``name`` (int64, flat)."""
        return self._fanout[name]

    def producer(self, name: str) -> LayerSpec | None:
        return self._producer[name]

    def sample_events(self, sample: int) -> list[LayerEvents]:
        """Events of every compute layer on one sample, in execution order."""
        tr, T = self.trace, self.T
        out: list[LayerEvents] = []
        packed_out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            fan = self._fanout[layer.name]
            prev = self._producer[layer.name]
            if prev is None:  # direct encoding: the analog input drives the layer every step
                x = tr.input(sample).reshape(-1) if tr.has_input else np.ones(layer.n_inputs, np.float32)
                nnz, macs, _ = ann_input_counts(x, fan)
                in_spikes = np.zeros(T, dtype=np.int64)
                synops = np.zeros(T, dtype=np.int64)
                analog = True
            else:
                packed = packed_out.get(prev.name)
                if packed is None:
                    packed = tr.spikes_packed(prev.name, sample)
                in_spikes, synops = spike_event_counts(packed, layer.n_inputs, fan)
                levels = tr.activations(prev.name, sample).reshape(-1)
                nnz, macs, _ = ann_input_counts(levels, fan)
                analog = False
            if layer.output == "spikes":
                packed_out[layer.name] = tr.spikes_packed(layer.name, sample)
                fired = popcount_rows(packed_out[layer.name])
            else:
                fired = np.zeros(T, dtype=np.int64)
            out.append(LayerEvents(in_spikes, synops, fired, int(nnz), int(macs),
                                   int(layer.dense_macs), analog))
        return out
