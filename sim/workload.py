"""A trace seen as a workload: per-layer geometry and, per sample, the events each layer
consumes and produces, counted by the numba kernels from the real bits.

Each sample is decoded once (:meth:`Workload.sample`) into a :class:`SampleEvents` that every
architecture and mode of a replay reads: the per-layer event counts, and on demand the
packed spikes, activation levels, analog input and their event indices, each read from the
trace at most once. The workload totals of a report (spikes, synaptic ops, MACs, neuron
updates) are defined here once for every architecture (:func:`layer_totals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.kernels import ann_input_counts, input_fanout, popcount_rows, spike_event_counts
from sim.kernels.noc import spike_indices
from sim.trace import LayerSpec, Trace

#: The report's workload totals, per layer (sim.report.totals.WORKLOAD_TOTALS).
TOTAL_KEYS = ("spikes_in", "spikes_out", "synaptic_ops", "macs", "neuron_updates")


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


def layer_totals(layer: LayerSpec, ev: LayerEvents, mode: str, T: int, zero_skipping: bool) -> dict[str, int]:
    """The workload totals one layer adds on one sample, the same on every architecture:
    SNN: spikes in and out, synaptic ops, neuron updates (N per step), and layer 1's MACs
    when its input is analog; ANN twin: MACs (the non-zero ones with ``zero_skipping``, else
    dense) and one update per neuron."""
    macs = ev.ann_macs if zero_skipping else ev.dense_macs
    if mode == "ann":
        return {"spikes_in": 0, "spikes_out": 0, "synaptic_ops": 0, "macs": macs, "neuron_updates": layer.n_neurons}
    return {"spikes_in": int(ev.in_spikes.sum()), "spikes_out": int(ev.out_spikes.sum()),
            "synaptic_ops": int(ev.synops.sum()), "macs": macs if ev.analog_input else 0,
            "neuron_updates": layer.n_neurons * T}


def new_totals(layers: list[LayerSpec]) -> dict[str, dict[str, int]]:
    """Zeroed workload totals per layer name, for :func:`add_totals`."""
    return {l.name: dict.fromkeys(TOTAL_KEYS, 0) for l in layers}


def add_totals(totals: dict[str, dict[str, int]], layers: list[LayerSpec], events: list[LayerEvents], mode: str,
               T: int, zero_skipping: bool) -> None:
    """Add one sample's :func:`layer_totals` of every layer to ``totals``."""
    for l, ev in zip(layers, events):
        t = totals[l.name]
        for k, v in layer_totals(l, ev, mode, T, zero_skipping).items():
            t[k] += v


class SampleEvents:
    """One sample, decoded once for every architecture and mode.

    ``layers[i]``: the :class:`LayerEvents` of compute layer i. The methods return the raw
    events behind them, each read and decoded at most once per sample."""

    def __init__(self, workload: "Workload", sample: int):
        self.workload, self.sample = workload, sample
        self._cache: dict = {}
        self.layers: list[LayerEvents] = self._count()

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def packed_spikes(self, name: str) -> np.ndarray:
        """Packed output spikes of spiking layer ``name``: uint8 [T, ceil(neurons/8)]."""
        return self._once(("packed", name), lambda: self.workload.trace.spikes_packed(name, self.sample))

    def levels(self, name: str) -> np.ndarray:
        """ANN-twin activation levels of layer ``name``'s output, flat."""
        return self._once(("levels", name),
                          lambda: self.workload.trace.activations(name, self.sample).reshape(-1))

    def analog_input(self, n_inputs: int) -> np.ndarray:
        """The analog input, flat float32 (ones when the trace stores none)."""
        tr = self.workload.trace
        return self._once(("input",), lambda: tr.input(self.sample).reshape(-1) if tr.has_input
                          else np.ones(n_inputs, np.float32))

    def spike_indices(self, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``name``'s output spikes as CSR per step: (ptr int64 [T + 1], index int64)."""
        return self._once(("spike_idx", name), lambda: spike_indices(self.packed_spikes(name), n))

    def nonzero_levels(self, name: str) -> np.ndarray:
        """Indices (int64) of layer ``name``'s non-zero ANN-twin activations."""
        return self._once(("level_idx", name), lambda: np.flatnonzero(self.levels(name)).astype(np.int64))

    def nonzero_input(self, n_inputs: int) -> np.ndarray:
        """Indices (int64) of the non-zero elements of the analog input."""
        return self._once(("input_idx",), lambda: np.flatnonzero(self.analog_input(n_inputs)).astype(np.int64))

    def _count(self) -> list[LayerEvents]:
        wl, T = self.workload, self.workload.T
        out: list[LayerEvents] = []
        for layer in wl.layers:
            fan = wl.fanout(layer.name)
            prev = wl.producer(layer.name)
            if prev is None:  # direct encoding: the analog input drives the layer every step
                nnz, macs, _ = ann_input_counts(self.analog_input(layer.n_inputs), fan)
                in_spikes = np.zeros(T, dtype=np.int64)
                synops = np.zeros(T, dtype=np.int64)
                analog = True
            else:
                in_spikes, synops = spike_event_counts(self.packed_spikes(prev.name), layer.n_inputs, fan)
                nnz, macs, _ = ann_input_counts(self.levels(prev.name), fan)
                analog = False
            if layer.output == "spikes":
                fired = popcount_rows(self.packed_spikes(layer.name))
            else:
                fired = np.zeros(T, dtype=np.int64)
            out.append(LayerEvents(in_spikes, synops, fired, int(nnz), int(macs), int(layer.dense_macs), analog))
        return out


class Workload:
    """Compute layers of a trace (passthroughs dropped) and their per-sample events."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.T = trace.T
        self.layers: list[LayerSpec] = [l for l in trace.layers if l.output != "passthrough"]
        self._fanout = {l.name: input_fanout(l) for l in self.layers}
        self._producer = {l.name: trace.producer(l.name) for l in self.layers}
        index = {l.name: i for i, l in enumerate(self.layers)}
        #: index of the compute layer whose events layer i consumes (None: the input)
        self.producers: list[int | None] = [None if self._producer[l.name] is None
                                            else index[self._producer[l.name].name] for l in self.layers]

    @property
    def n_samples(self) -> int:
        return self.trace.n_samples

    def fanout(self, name: str) -> np.ndarray:
        """Synapses leaving each input element of layer ``name`` (int64, flat)."""
        return self._fanout[name]

    def producer(self, name: str) -> LayerSpec | None:
        return self._producer[name]

    def sample(self, sample: int) -> SampleEvents:
        """Sample ``sample`` decoded: read it once, share it between architectures and modes."""
        return SampleEvents(self, sample)

    def sample_events(self, sample: int) -> list[LayerEvents]:
        """Events of every compute layer on one sample, in execution order."""
        return self.sample(sample).layers
