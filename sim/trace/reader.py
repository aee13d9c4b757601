"""Reading traces: validated on open, streamed per layer and per sample, checked as read.

``open_trace(path)`` validates the whole structure (sim/trace/structure.py: metadata,
versions, dtypes, T, shapes that chain, limits, chunk indexes, checksum attributes) in a child
process with a timeout (sim/trace/guard.py), without reading event data; then it hands out one
sample of one layer at a time, so a large trace is never loaded whole and reading it takes
the same memory for ten samples as for ten thousand (no HDF5 chunk cache: a sample's row is
one chunk, read once; see :data:`SAMPLE_CHUNK_CACHE`). Every row read is
checked: its SHA-256 (format 2), padding bits of packed spikes, levels within 0..T, the
declared twin identity (spike count over T == level), finite floats. Every violation and every
HDF5 error raises :class:`TraceFormatError` naming the file, the layer and the field.
"""

from __future__ import annotations

import numpy as np

from sim.errors import TraceFormatError
from sim.trace.guard import bounded, open_h5, short
from sim.trace.integrity import ROW_DATASETS, row_digest
from sim.trace.schema import NETWORK_INPUT, SPIKE_BITORDER, LayerSpec
from sim.trace.structure import Structure, read_structure

#: HDF5 chunk cache of the reader's file, bytes per dataset: none. Each sample's row of a
#: per-sample dataset is one chunk (sim/trace/writer.py) that a replay reads once, so a cache
#: never hits; and HDF5's default 1 MiB cache per dataset made the process grow by about a
#: sample's decoded events per sample read (h5py 3.16 / HDF5 2.0: 200-250 MB over 400 VGG16
#: samples), never given back. A dataset chunked over several samples (another writer) gets
#: a cache of one chunk instead (:meth:`Trace._dataset`): bounded, and each chunk decoded once.
SAMPLE_CHUNK_CACHE = 0


def _with_chunk_cache(f, path: str, chunk_bytes: int):
    """Dataset ``path`` opened with a chunk cache that holds one of its chunks (``chunk_bytes``):
    a dataset chunked over several samples decodes each chunk once as its samples are read in
    order, in bounded memory."""
    import h5py

    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(521, max(1, int(chunk_bytes)), 1.0)
    return h5py.Dataset(h5py.h5d.open(f.id, path.encode(), dapl=dapl))


class Trace:
    """An open, validated trace. Use as a context manager or call :meth:`close`.

    Arrays returned are the caller's to keep and modify."""

    def __init__(self, path, *, open_timeout: float | None = None):
        self.path = str(path)
        s: Structure = bounded(self.path, read_structure, open_timeout)
        self._s = s
        self.format_version = s.format_version
        self.meta = s.meta
        self.layers: list[LayerSpec] = s.layers
        self.has_input = s.has_input
        self._by_name = {l.name: l for l in s.layers}
        self._sources: dict[str, list[LayerSpec | None]] = {}
        for layer in s.layers:   # in execution order: every input is resolved already
            srcs: list[LayerSpec | None] = []
            for src in layer.inputs:
                if src == NETWORK_INPUT:
                    srcs.append(None)
                elif self._by_name[src].output == "passthrough":
                    srcs.extend(self._sources[src])
                else:
                    srcs.append(self._by_name[src])
            self._sources[layer.name] = srcs
        self._ds: dict = {}
        self._packed_cache: dict[str, tuple[int, np.ndarray]] = {}
        self._readouts_checked: set[int] = set()   # samples whose readout rows were checked
        self._readouts = [l.name for l in s.layers if l.output == "potential"]
        self._level_max = min(self.meta.T, 2**self.meta.ann_activation_bits - 1)
        self._f = open_h5(self.path, chunk_cache=SAMPLE_CHUNK_CACHE)

    # -- metadata ----------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self.meta.T

    @property
    def n_samples(self) -> int:
        return self.meta.n_samples

    @property
    def checksums(self) -> str:
        """What protects the stored values, in words (``inspect`` prints it)."""
        if self._s.checksummed:
            return f"sha256 per sample row and per dataset, attributes digest (format v{self.format_version})"
        return f"none (format v{self.format_version} file)"

    def layer(self, name: str) -> LayerSpec:
        return self._by_name[name]

    def sources(self, name: str) -> list[LayerSpec | None]:
        """The computing layers whose outputs layer ``name`` consumes, in its ``inputs`` order,
        passthroughs (flatten) resolved; None stands for the network input."""
        return list(self._sources[name])

    def producer(self, name: str) -> LayerSpec | None:
        """The one layer whose output ``name`` consumes (None: the input); for an add, its first operand."""
        return self._sources[name][0]

    def consumers(self, name: str) -> list[LayerSpec]:
        """The computing layers that consume layer ``name``'s output, in execution order."""
        return [l for l in self.layers if l.output != "passthrough"
                and any(s is not None and s.name == name for s in self._sources[l.name])]

    @property
    def twin(self) -> str:
        """``recorded`` (levels stored) or ``derived`` (spike counts over T: an SNN-only trace)."""
        return self.meta.twin

    # -- checked reads -----------------------------------------------------------------
    def _where(self, key: str, layer: str | None) -> str:
        return f"layer {layer}: {key}" if layer else key

    def _fail(self, key, layer, message):
        raise TraceFormatError(self.path, self._where(key, layer), message)

    def _dataset(self, key: str, layer: str | None):
        path = f"layers/{self._s.groups[layer]}/{key}" if layer else key
        if path not in self._ds:
            try:
                ds = self._f[path]
                if key in ROW_DATASETS and ds.chunks is not None and ds.chunks[0] > 1:
                    chunk_bytes = int(np.prod(ds.chunks)) * ds.dtype.itemsize
                    del ds   # closed: HDF5 shares an open dataset, and with it the first open's cache
                    ds = _with_chunk_cache(self._f, path, chunk_bytes)
                self._ds[path] = ds
            except Exception as exc:  # noqa: BLE001 - any HDF5 error is a damaged file
                self._fail(key, layer, f"cannot open the dataset (truncated or corrupt?): {short(exc)}")
        return path, self._ds[path]

    def _read(self, key: str, layer: str | None, sample: int | None) -> np.ndarray:
        """One sample's row (``sample``) or the whole dataset (None), checked against its SHA-256."""
        path, ds = self._dataset(key, layer)
        if sample is not None:
            sample = int(sample)
            if not 0 <= sample < self.n_samples:
                raise IndexError(f"sample {sample} out of range 0..{self.n_samples - 1}")
        what = "the dataset" if sample is None else f"sample {sample}"
        if sample is not None and sample not in self._readouts_checked:
            # a sample's readout rows are small and no replay reads them: check them with the
            # first row read of that sample, so a damaged one cannot pass unseen
            self._readouts_checked.add(sample)
            for name in self._readouts:
                self.potential(name, sample)
                self.ann_output(name, sample)
        try:
            data = ds[()] if sample is None else ds[sample]
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, RuntimeError, ValueError, ...
            self._fail(key, layer, f"cannot read {what} (truncated or corrupt?): {short(exc)}")
        digests = self._s.digests.get(path)
        if digests is not None:
            want = digests if sample is None else digests[sample]
            if not np.array_equal(row_digest(data), want):
                self._fail(key, layer, f"{what} does not match its SHA-256 checksum: the stored data is corrupt")
        return np.asarray(data)

    def _check_padding(self, packed: np.ndarray, n: int, key: str, layer: str | None, sample: int) -> None:
        if n % 8 and packed.size and (packed[:, -1] & np.uint8((0xFF << (n % 8)) & 0xFF)).any():
            self._fail(key, layer, f"sample {sample}: padding bits past the last of its {n} neurons are set "
                       "(they must be 0)")

    def _check_finite(self, a: np.ndarray, key: str, layer: str | None, what: str) -> np.ndarray:
        if not np.isfinite(a).all():
            bad = a.reshape(-1)[~np.isfinite(a.reshape(-1))][0]
            self._fail(key, layer, f"{what}: holds a non-finite value ({bad}); expected finite floats")
        return a

    def _packed(self, name: str, sample: int) -> np.ndarray:
        """Checked packed spikes of one sample, cached per layer until another sample is read."""
        hit = self._packed_cache.get(name)
        if hit is not None and hit[0] == sample:
            return hit[1]
        packed = self._read("spikes", name, sample)
        self._check_padding(packed, self._by_name[name].n_neurons, "spikes", name, sample)
        self._packed_cache[name] = (int(sample), packed)
        return packed

    def _levels(self, name: str, sample: int) -> np.ndarray:
        levels = self._read("activations", name, sample)
        top = int(levels.max()) if levels.size else 0
        if top > self._level_max:
            self._fail("activations", name, f"sample {sample}: level {top} is outside 0..{self._level_max} "
                       f"(T={self.T}, {self.meta.ann_activation_bits}-bit levels)")
        if self.meta.twin_levels == "spike_counts":
            n = self._by_name[name].n_neurons
            bits = np.unpackbits(self._packed(name, sample), axis=1, count=n, bitorder=SPIKE_BITORDER)
            counts = bits.sum(axis=0, dtype=np.uint16 if self.T < 2**16 else np.uint32)
            flat = levels.reshape(-1)
            if not np.array_equal(counts, flat):
                bad = np.flatnonzero(counts != flat)
                self._fail("activations", name, f"sample {sample}: {bad.size} neuron(s) have a level that differs "
                           f"from their spike count over T (first: neuron {bad[0]}, level {flat[bad[0]]}, "
                           f"{counts[bad[0]]} spikes); the trace declares twin_levels = spike_counts")
        return levels

    # -- access ------------------------------------------------------------------------
    def labels(self) -> np.ndarray:
        labels = self._read("labels", None, None)
        if labels.size and labels.min() < -1:
            self._fail("labels", None, f"holds {labels.min()}; a label is a class index or -1 (unknown)")
        return labels

    def input(self, sample: int) -> np.ndarray:
        """The analog input of one sample, float32 [*input_shape]."""
        if not self.has_input:
            raise TraceFormatError(self.path, "input", "this trace stores no input")
        return self._check_finite(self._read("input", None, sample), "input", None, f"sample {sample}")

    def spikes_packed(self, name: str, sample: int) -> np.ndarray:
        """Packed output spikes of a layer for one sample: uint8 [T, ceil(neurons/8)]."""
        return self._packed(name, sample).copy()

    def spikes(self, name: str, sample: int) -> np.ndarray:
        """Output spikes of a layer for one sample: bool [T, *output_shape]."""
        layer = self.layer(name)
        flat = np.unpackbits(self._packed(name, sample), axis=1, count=layer.n_neurons, bitorder=SPIKE_BITORDER)
        return flat.astype(bool).reshape(self.T, *layer.output_shape)

    def activations(self, name: str, sample: int) -> np.ndarray:
        """ANN-twin activation levels of a layer's output for one sample [*output_shape]: the
        stored levels, or for an SNN-only trace (twin derived) the spike counts over T."""
        if self.meta.twin_levels == "derived":
            layer = self.layer(name)
            return self._counts(self._packed(name, sample), layer.n_neurons).reshape(layer.output_shape)
        return self._levels(name, sample)

    def _counts(self, packed: np.ndarray, n: int) -> np.ndarray:
        bits = np.unpackbits(packed, axis=1, count=n, bitorder=SPIKE_BITORDER)
        return bits.sum(axis=0, dtype=np.uint16 if self.T < 2**16 else np.uint32)

    def input_spikes_packed(self, sample: int) -> np.ndarray:
        """The network's input spikes (rate or event encoding) of one sample: uint8 [T, bytes]."""
        if not self.meta.spike_input:
            raise TraceFormatError(self.path, "input_spikes", f"encoding '{self.meta.encoding}' stores no input spikes")
        packed = self._read("input_spikes", None, sample)
        self._check_padding(packed, int(np.prod(self.meta.input_shape)), "input_spikes", None, sample)
        return packed

    def input_levels(self, sample: int) -> np.ndarray:
        """The twin's input for rate or event encoding: each input element's spike count over T, flat."""
        return self._counts(self.input_spikes_packed(sample), int(np.prod(self.meta.input_shape)))

    def _float_row(self, key: str, name: str, sample: int) -> np.ndarray | None:
        self.layer(name)
        if not self._has(key, name):
            return None
        return self._check_finite(self._read(key, name, sample), key, name, f"sample {sample}")

    def _has(self, key: str, name: str) -> bool:
        try:
            return key in self._f["layers"][self._s.groups[name]]
        except Exception as exc:  # noqa: BLE001
            self._fail(key, name, f"cannot read the layer's group (corrupt?): {short(exc)}")

    def potential(self, name: str, sample: int) -> np.ndarray | None:
        return self._float_row("potential", name, sample)

    def ann_output(self, name: str, sample: int) -> np.ndarray | None:
        return self._float_row("ann_output", name, sample)

    def input_spikes(self, name: str, sample: int) -> np.ndarray | None:
        """Spikes a layer consumes for one sample, bool [T, *input_shape] (an add: [T, operands,
        *input_shape]); None when it reads the analog input or sums a current."""
        layer = self.layer(name)
        n = int(np.prod(layer.input_shape))
        rows = []
        for prev in self.sources(name):
            if prev is not None and prev.output == "current":   # an add of currents: no spikes
                return None
            if prev is None:
                if not self.meta.spike_input:
                    return None
                packed = self.input_spikes_packed(sample)
            else:
                packed = self._packed(prev.name, sample)
            rows.append(np.unpackbits(packed, axis=1, count=n, bitorder=SPIKE_BITORDER).astype(bool))
        if layer.kind == "add":
            return np.stack(rows, axis=1).reshape(self.T, len(rows), *layer.input_shape)
        return rows[0].reshape(self.T, *layer.input_shape)

    def weights(self, name: str) -> tuple[np.ndarray, float] | None:
        """Quantised integer weights and their scale (value = weight * scale), or None."""
        if name not in self._s.weight_scales:
            self.layer(name)
            return None
        w = self._read("weight", name, None)
        bits = self.meta.weight_bits
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if w.size and (w.min() < lo or w.max() > hi):
            self._fail("weight", name, f"holds {w.min() if w.min() < lo else w.max()}, outside the {bits}-bit "
                       f"range {lo}..{hi} (weight_bits)")
        return w, self._s.weight_scales[name]

    def bias(self, name: str) -> np.ndarray | None:
        self.layer(name)
        if not self._has("bias", name):
            return None
        return self._check_finite(self._read("bias", name, None), "bias", name, "the dataset")

    def verify(self, samples: int | None = None, events: bool = True, progress=None) -> None:
        """Read every stored value (of the first ``samples`` samples; labels, weights and biases
        whole) through the checks above; TraceFormatError at the first violation.
        ``events=False`` leaves out the spikes and levels (a caller that streams them anyway).
        ``progress(1)`` is called as each sample is done."""
        n = self.n_samples if samples is None else min(samples, self.n_samples)
        self.labels()
        for layer in self.layers:
            self.weights(layer.name)
            self.bias(layer.name)
        derived = self.meta.twin_levels == "derived"
        for i in range(n):
            if self.has_input:
                self.input(i)
            if self.meta.spike_input:
                self.input_spikes_packed(i)
            for layer in self.layers:
                if layer.output == "spikes" and events:
                    self._packed(layer.name, i) if derived else self._levels(layer.name, i)
                elif layer.output == "potential":
                    self.potential(layer.name, i)
                    self.ann_output(layer.name, i)
            if progress is not None:
                progress(1)

    def close(self) -> None:
        self._packed_cache.clear()
        self._ds.clear()
        try:
            self._f.close()
        except Exception:  # noqa: BLE001 - a damaged file may fail to close; nothing to keep
            pass

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_trace(path, *, open_timeout: float | None = None) -> Trace:
    """Open and validate a trace; raises :class:`TraceFormatError` on any violation.

    ``open_timeout``: seconds the metadata read may take (default
    :func:`sim.trace.limits.open_timeout`; 0: in this process, unbounded)."""
    return Trace(path, open_timeout=open_timeout)
