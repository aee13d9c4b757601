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
TOTAL_KEYS = ("spikes_in", "spikes_out", "synaptic_ops", "macs", "adds", "compares", "neuron_updates")
#: Where a layer's synapse operations count: MACs (conv2d, linear, avgpool's fixed-weight
#: sums as in format 1), residual adds, or max-pool compares.
OP_TOTAL = {"conv2d": "macs", "linear": "macs", "avgpool": "adds", "add": "adds", "maxpool": "compares"}


@dataclass
class LayerEvents:
    """What one compute layer does on one sample.

    SNN: ``in_spikes[t]`` spikes consumed and ``synops[t]`` synaptic events (each spike
    times its fan-out; for an add one per operand spike, for a max-pool one OR per covering
    window) at step t; ``out_spikes[t]`` spikes fired. With analog (direct) input, the layer
    consumes no spikes: ``analog_input`` is set and the input is dense.
    ANN twin: ``ann_nnz_in`` non-zero input activations and ``ann_macs`` the synapse
    operations left when zeros are skipped (MACs, or an add's adds, a max-pool's compares:
    ``LayerSpec.op``); ``dense_macs`` the same without skipping (``LayerSpec.dense_ops``).
    An add's input is its operands concatenated in ``inputs`` order. ``network_spikes[t]``:
    the part of ``in_spikes[t]`` that is the network's stored input spikes (rate or event
    encoding; zeros for a layer that does not read them), which must first come on chip.
    """

    in_spikes: np.ndarray
    synops: np.ndarray
    out_spikes: np.ndarray
    ann_nnz_in: int
    ann_macs: int
    dense_macs: int
    analog_input: bool
    network_spikes: np.ndarray | None = None
    #: An add's *current* operands' elements (operands with output ``current``): each read and
    #: added every step in the SNN, once in the twin; dense (N per current operand), and in
    #: none of the fields above (a current has no spikes, no levels; dense_macs excludes them).
    current_in: int = 0


def layer_totals(layer: LayerSpec, ev: LayerEvents, mode: str, T: int, zero_skipping: bool) -> dict[str, int]:
    """The workload totals one layer adds on one sample, the same on every architecture:
    SNN: spikes in and out, synaptic ops (adds for a residual add, compares for a max-pool's
    spike OR), neuron updates (N per step; none for a stateless max-pool), and layer 1's MACs
    when its input is analog; ANN twin: MACs, adds or compares (the non-zero ones with
    ``zero_skipping``, else dense) and one update per neuron."""
    out = dict.fromkeys(TOTAL_KEYS, 0)
    ops = ev.ann_macs if zero_skipping else ev.dense_macs
    where = OP_TOTAL.get(layer.kind)
    neurons = layer.n_neurons if layer.has_neurons else 0
    if mode == "ann":
        if where:
            out[where] = ops + ev.current_in
        out["neuron_updates"] = neurons
        return out
    out["spikes_in"] = int(ev.in_spikes.sum())
    out["spikes_out"] = int(ev.out_spikes.sum())
    if where:
        out["synaptic_ops" if where == "macs" else where] = int(ev.synops.sum()) + ev.current_in * T
    if ev.analog_input:
        out["macs"] += ops
    out["neuron_updates"] = neurons * T
    return out


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


def _concat_csr(parts: list[tuple[np.ndarray, np.ndarray]], n: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-step CSR rows of several operands joined: operand k's indices shifted by k * n."""
    if len(parts) == 1:
        return parts[0]
    ptr = np.zeros(T + 1, dtype=np.int64)
    rows = []
    for t in range(T):
        row = [idx[p[t]:p[t + 1]] + k * n for k, (p, idx) in enumerate(parts)]
        rows.append(np.concatenate(row))
        ptr[t + 1] = ptr[t] + rows[-1].size
    return ptr, (np.concatenate(rows) if rows else np.zeros(0, np.int64)).astype(np.int64)


class SampleEvents:
    """One sample, decoded once for every architecture and mode.

    ``layers[i]``: the :class:`LayerEvents` of compute layer i. The methods return the raw
    events behind them, each read and decoded at most once per sample. The ``input_*``
    methods give what compute layer i consumes, over its input elements (an add's operands
    concatenated): they serve every graph, and equal the producer's for a chain."""

    def __init__(self, workload: "Workload", sample: int):
        self.workload, self.sample = workload, sample
        self._cache: dict = {}
        self.layers: list[LayerEvents] = self._count()

    def _once(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def packed_spikes(self, name: str | None) -> np.ndarray:
        """Packed output spikes of spiking layer ``name`` (None: the network's input spikes):
        uint8 [T, ceil(neurons/8)]."""
        tr = self.workload.trace
        if name is None:
            return self._once(("packed", None), lambda: tr.input_spikes_packed(self.sample))
        return self._once(("packed", name), lambda: tr.spikes_packed(name, self.sample))

    def levels(self, name: str | None) -> np.ndarray:
        """ANN-twin activation levels of layer ``name``'s output, flat (None: the input spikes'
        counts over T, the twin's input under rate or event encoding)."""
        tr = self.workload.trace
        if name is None:
            return self._once(("levels", None), lambda: tr.input_levels(self.sample))
        return self._once(("levels", name), lambda: tr.activations(name, self.sample).reshape(-1))

    def analog_input(self, n_inputs: int) -> np.ndarray:
        """The analog input, flat float32 (ones when the trace stores none)."""
        tr = self.workload.trace
        return self._once(("input",), lambda: tr.input(self.sample).reshape(-1) if tr.has_input
                          else np.ones(n_inputs, np.float32))

    def spike_indices(self, name: str | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``name``'s output spikes as CSR per step: (ptr int64 [T + 1], index int64)."""
        return self._once(("spike_idx", name), lambda: spike_indices(self.packed_spikes(name), n))

    def nonzero_levels(self, name: str | None) -> np.ndarray:
        """Indices (int64) of layer ``name``'s non-zero ANN-twin activations."""
        return self._once(("level_idx", name), lambda: np.flatnonzero(self.levels(name)).astype(np.int64))

    def nonzero_input(self, n_inputs: int) -> np.ndarray:
        """Indices (int64) of the non-zero elements of the analog input."""
        return self._once(("input_idx",), lambda: np.flatnonzero(self.analog_input(n_inputs)).astype(np.int64))

    def _source_name(self, src: int | None) -> str | None:
        return None if src is None else self.workload.layers[src].name

    def input_spike_indices(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The spikes compute layer i consumes, as CSR per step over its input elements (an
        add's current operands hold none: their elements are dense, ``current_in``)."""
        wl = self.workload
        n = wl.operand_size(i)
        empty = (np.zeros(wl.T + 1, np.int64), np.zeros(0, np.int64))
        return self._once(("in_spike_idx", i), lambda: _concat_csr(
            [empty if k in wl.current_operands(i) else self.spike_indices(self._source_name(s), n)
             for k, s in enumerate(wl.sources[i])], n, wl.T))

    def input_nonzero(self, i: int) -> np.ndarray:
        """Indices (int64) of the non-zero twin inputs of compute layer i (the analog input's
        non-zero pixels when it reads it), over its input elements."""
        wl = self.workload
        if wl.analog[i]:
            return self.nonzero_input(wl.layers[i].n_inputs)
        n = wl.operand_size(i)
        if len(wl.sources[i]) == 1:
            return self.nonzero_levels(self._source_name(wl.sources[i][0]))
        return self._once(("in_nz", i), lambda: np.concatenate(
            [self.nonzero_levels(self._source_name(s)) + k * n for k, s in enumerate(wl.sources[i])
             if k not in wl.current_operands(i)] or [np.zeros(0, np.int64)]).astype(np.int64))

    def _count(self) -> list[LayerEvents]:
        wl, T = self.workload, self.workload.T
        out: list[LayerEvents] = []
        for i, layer in enumerate(wl.layers):
            fan = wl.fanout(layer.name)
            network = np.zeros(T, dtype=np.int64)
            current = 0
            if wl.analog[i]:  # direct encoding: the analog input drives the layer every step
                nnz, macs, _ = ann_input_counts(self.analog_input(layer.n_inputs), fan)
                in_spikes = np.zeros(T, dtype=np.int64)
                synops = np.zeros(T, dtype=np.int64)
            else:
                n = wl.operand_size(i)
                in_spikes = np.zeros(T, dtype=np.int64)
                synops = np.zeros(T, dtype=np.int64)
                nnz = macs = 0
                for k, src in enumerate(wl.sources[i]):
                    if src is not None and wl.layers[src].output == "current":
                        current += n   # summed densely: no spikes, no levels
                        continue
                    f = np.ascontiguousarray(fan[k * n:(k + 1) * n])
                    name = self._source_name(src)
                    s_t, e_t = spike_event_counts(self.packed_spikes(name), n, f)
                    in_spikes += s_t
                    if src is None:  # the network's stored input spikes
                        network += s_t
                    synops += e_t
                    a, m, _ = ann_input_counts(self.levels(name), f)
                    nnz += a
                    macs += m
            if layer.output == "spikes":
                fired = popcount_rows(self.packed_spikes(layer.name))
            else:
                fired = np.zeros(T, dtype=np.int64)
            out.append(LayerEvents(in_spikes, synops, fired, int(nnz), int(macs), int(layer.dense_ops) - current,
                                   bool(wl.analog[i]), network, current))
        return out


class Workload:
    """Compute layers of a trace (passthroughs dropped), the graph between them and their
    per-sample events.

    ``sources[i]``: the compute layers (indices, in ``inputs`` order; None for the network
    input) whose outputs compute layer i consumes; ``producers[i]`` the first of them (the
    only one but for an add); ``consumers[i]`` the layers that consume layer i's output;
    ``analog[i]``: layer i reads the analog input (direct encoding)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.T = trace.T
        self.layers: list[LayerSpec] = [l for l in trace.layers if l.output != "passthrough"]
        self._fanout = {l.name: input_fanout(l) for l in self.layers}
        index = {l.name: i for i, l in enumerate(self.layers)}
        self.sources: list[list[int | None]] = [[None if s is None else index[s.name] for s in trace.sources(l.name)]
                                                for l in self.layers]
        #: index of the compute layer whose events layer i consumes (None: the input); an add's first operand
        self.producers: list[int | None] = [s[0] for s in self.sources]
        self.consumers: list[list[int]] = [[j for j, src in enumerate(self.sources) if i in src]
                                           for i in range(len(self.layers))]
        spike_input = trace.meta.spike_input
        self.analog: list[bool] = [s == [None] and not spike_input for s in self.sources]

    @property
    def n_samples(self) -> int:
        return self.trace.n_samples

    @property
    def is_chain(self) -> bool:
        """Every layer reads the one before it (or the input): a format-1/2 network."""
        return all(s == [i - 1 if i else None] for i, s in enumerate(self.sources))

    def current_operands(self, i: int) -> list[int]:
        """Positions (in ``inputs`` order) of compute layer i's operands that are currents."""
        return [k for k, s in enumerate(self.sources[i]) if s is not None and self.layers[s].output == "current"]

    def operand_size(self, i: int) -> int:
        """Elements of one input operand of compute layer i (its whole input but for an add)."""
        layer = self.layers[i]
        return layer.n_inputs // layer.n_operands

    def network_input_elements(self, i: int) -> int:
        """Elements of compute layer i's input that are the network's stored input spikes
        (rate or event encoding): one operand's size per operand that is the input; 0 under
        direct encoding (the analog input is not an event) and for layers that do not read it."""
        if not self.trace.meta.spike_input:
            return 0
        return self.operand_size(i) * self.sources[i].count(None)

    def fanout(self, name: str) -> np.ndarray:
        """Synapses leaving each input element of layer ``name`` (int64, flat)."""
        return self._fanout[name]

    def producer(self, name: str) -> LayerSpec | None:
        return self.trace.producer(name)

    def sample(self, sample: int) -> SampleEvents:
        """Sample ``sample`` decoded: read it once, share it between architectures and modes."""
        return SampleEvents(self, sample)

    def sample_events(self, sample: int) -> list[LayerEvents]:
        """Events of every compute layer on one sample, in execution order."""
        return self.sample(sample).layers
