"""Writing traces: one sample at a time, to a temporary file renamed into place on success.

Each sample's rows go to the file as they are written (one chunk per row), so writing a
trace takes the same memory for ten samples as for ten thousand: what the writer keeps per
sample is its label, its rows' SHA-256 checksums (32 bytes a row) and a written flag.

A trace that fails half-way (an exception, a sample never written) leaves nothing behind.
Format 3 (a layer graph; see sim/trace/schema.py) with format 2's integrity: every dataset gets its SHA-256 checksums and the root a digest of every attribute
(sim/trace/integrity.py); the file uses HDF5's v1.10 format, whose object headers, B-trees
and chunk indexes carry checksums. Before the file is renamed into place the reader's full
validation runs on it (:meth:`sim.trace.reader.Trace.verify`): what the writer reports as
written, the reader accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from sim.errors import TraceFormatError
from sim.trace.integrity import DIGEST_ATTR, DIGEST_BYTES, META_DIGEST_ATTR, file_objects, meta_digest, row_digest
from sim.trace.limits import LimitExceeded, check_limits
from sim.trace.schema import (
    ENCODINGS,
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYER_KINDS,
    NEURON_TYPES,
    OUTPUT_KINDS,
    RESETS,
    SPIKE_BITORDER,
    NETWORK_INPUT,
    TWIN_LEVELS,
    DYNAMICS,
    LayerSpec,
    TraceMeta,
    with_graph,
)

#: gzip level 4 measured best for bit-packed spikes (size vs. write time) on this machine.
COMPRESSION = {"compression": "gzip", "compression_opts": 4}
#: Target size of a weight chunk (bytes), see set_weights.
WEIGHT_CHUNK_BYTES = 2**20
#: HDF5 file format bounds: v1.10 objects (checksummed object headers, B-trees and chunk
#: indexes), readable by HDF5 >= 1.10.
LIBVER = ("v110", "v110")


def pack_spikes(spikes: np.ndarray) -> np.ndarray:
    """Pack boolean spikes [T, *shape] into uint8 [T, ceil(prod(shape)/8)] (little bit order)."""
    spikes = np.asarray(spikes)
    flat = spikes.reshape(spikes.shape[0], -1).astype(bool, copy=False)
    return np.packbits(flat, axis=1, bitorder=SPIKE_BITORDER)


def sample_bar(total: int, desc: str, enabled: bool = True):
    """A progress bar over ``total`` samples on stderr (samples done/total, samples/s, ETA), as
    replay's: None when not ``enabled`` (--quiet), and tqdm hides it when stderr is not a TTY."""
    if not enabled:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=False, disable=None)


def layer_group_name(index: int, name: str) -> str:
    return f"{index:03d}_{name}"


class TraceWriter:
    """Write a trace sample by sample.

    >>> with TraceWriter(path, meta, layers) as w:          # doctest: +SKIP
    ...     w.set_weights("conv1", w_int8, scale=0.01)
    ...     w.write_sample(0, label=3, input=x, spikes={...}, activations={...})
    """

    def __init__(self, path, meta: TraceMeta, layers: list[LayerSpec], *, with_input: bool = True,
                 verify: bool = True, progress: bool = False):
        self.path = Path(path)
        self.meta = meta
        self.layers = list(layers)
        self.verify = verify
        self.progress = progress   # a progress bar for the verification pass (stderr)
        if self.path.is_dir():
            raise TraceFormatError(str(self.path), None, "is a directory, expected a trace file name")
        self._check_spec()
        if not with_input and meta.encoding == "direct":
            self._fail("input", "a direct-encoded trace stores its analog input (with_input=True)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._f = h5py.File(self._tmp, "w", libver=LIBVER)
        self._written = np.zeros(meta.n_samples, dtype=bool)
        self._groups: dict[str, h5py.Group] = {}
        # per-sample datasets: path -> (sha256 per row, row written, every row required)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
        self._labels = np.full(meta.n_samples, -1, dtype=np.int64)
        self._level_dtype = np.uint8 if meta.ann_activation_bits <= 8 else np.uint16
        self._level_max = min(meta.T, 2**meta.ann_activation_bits - 1)
        try:
            self._write_header(with_input)
        except BaseException:
            self.abort()
            raise

    # -- setup -------------------------------------------------------------------------
    def _fail(self, field: str, message: str, layer: str | None = None):
        raise TraceFormatError(str(self.path), f"layer {layer}: {field}" if layer else field, message)

    def _check_spec(self) -> None:
        """What the reader would reject, refused before anything is written (TraceFormatError)."""
        m = self.meta
        for key, value in (("T", m.T), ("n_samples", m.n_samples)):
            if int(value) < 1:
                self._fail(key, f"must be >= 1, got {value}")
        try:
            check_limits(m.T, m.n_samples, m.input_shape, self.layers)
        except LimitExceeded as exc:
            self._fail(exc.field, exc.message, exc.layer)
        if m.encoding not in ENCODINGS:
            self._fail("encoding", f"must be one of {ENCODINGS}, got {m.encoding!r}")
        if not 1 <= m.ann_activation_bits <= 16:
            self._fail("ann_activation_bits", f"must be in 1..16, got {m.ann_activation_bits}")
        if not 0 <= m.weight_bits <= 16:
            self._fail("weight_bits", f"must be in 0..16, got {m.weight_bits}")
        if m.neuron.type not in NEURON_TYPES or m.neuron.reset not in RESETS:
            self._fail("neuron", f"unknown type/reset {m.neuron.type}/{m.neuron.reset}")
        if m.twin_levels not in TWIN_LEVELS:
            self._fail("twin_levels", f"must be one of {TWIN_LEVELS}, got {m.twin_levels!r}")
        if m.dynamics and m.dynamics not in DYNAMICS:
            self._fail("dynamics", f"must be one of {DYNAMICS}, got {m.dynamics!r}")
        names = [layer.name for layer in self.layers]
        if not names or len(set(names)) != len(names):
            self._fail("layer_names", "a trace needs at least one layer, with unique names")
        self.layers = with_graph(self.layers, m.neuron)
        shapes = {NETWORK_INPUT: tuple(m.input_shape)}
        for layer in self.layers:
            if layer.kind not in LAYER_KINDS or layer.output not in OUTPUT_KINDS:
                self._fail("kind", f"bad kind/output {layer.kind}/{layer.output}", layer.name)
            for src in layer.inputs:
                if src not in shapes:
                    self._fail("inputs", f"'{src}' is not the input or an earlier layer", layer.name)
                if tuple(layer.input_shape) != shapes[src]:
                    self._fail("input_shape", f"{list(layer.input_shape)} does not match the output {list(shapes[src])} "
                               f"of '{src}'", layer.name)
            if layer.neuron is not None and (layer.neuron.type not in NEURON_TYPES or layer.neuron.reset not in RESETS):
                self._fail("neuron", f"unknown type/reset {layer.neuron.type}/{layer.neuron.reset}", layer.name)
            shapes[layer.name] = tuple(layer.output_shape)

    def _write_header(self, with_input: bool) -> None:
        f, m = self._f, self.meta
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["model"] = m.model
        f.attrs["dataset"] = m.dataset
        f.attrs["T"] = int(m.T)
        f.attrs["n_samples"] = int(m.n_samples)
        f.attrs["input_shape"] = np.asarray(m.input_shape, dtype=np.int64)
        f.attrs["neuron"] = json.dumps(m.neuron.to_dict())
        f.attrs["encoding"] = m.encoding
        f.attrs["ann_activation_bits"] = int(m.ann_activation_bits)
        f.attrs["weight_bits"] = int(m.weight_bits)
        f.attrs["synthetic"] = bool(m.synthetic)
        f.attrs["recorder"] = m.recorder
        f.attrs["library_versions"] = json.dumps(m.library_versions, sort_keys=True)
        f.attrs["description"] = m.description
        f.attrs["twin_levels"] = m.twin_levels
        if m.dynamics:   # optional: older files and non-converter traces have none
            f.attrs["dynamics"] = m.dynamics
        f.attrs["layer_names"] = np.array([l.name for l in self.layers], dtype=h5py.string_dtype())
        n, T = m.n_samples, m.T
        f.create_dataset("labels", data=self._labels)
        if with_input:
            self._row_dataset(f, "input", "input", (n, *m.input_shape), np.float32, chunks=(1, *m.input_shape))
        if m.spike_input:
            nbytes = -(-int(np.prod(m.input_shape)) // 8)
            self._row_dataset(f, "input_spikes", "input_spikes", (n, T, nbytes), np.uint8, chunks=(1, T, nbytes))
        layers = f.create_group("layers")
        for i, layer in enumerate(self.layers):
            gname = layer_group_name(i, layer.name)
            g = layers.create_group(gname)
            for key, value in layer.to_dict().items():
                if key in ("inputs", "neuron"):
                    value = json.dumps(value)
                elif isinstance(value, list):
                    value = np.asarray(value, dtype=np.int64)
                g.attrs[key] = value
            g.attrs["index"] = i
            path = f"layers/{gname}"
            if layer.output == "spikes":
                nbytes = -(-layer.n_neurons // 8)
                ds = self._row_dataset(g, "spikes", f"{path}/spikes", (n, T, nbytes), np.uint8, chunks=(1, T, nbytes))
                ds.attrs["bitorder"] = SPIKE_BITORDER
                if m.twin_levels != "derived":
                    self._row_dataset(g, "activations", f"{path}/activations", (n, *layer.output_shape),
                                      self._level_dtype, chunks=(1, *layer.output_shape))
            elif layer.output == "potential":
                self._row_dataset(g, "potential", f"{path}/potential", (n, *layer.output_shape), np.float32)
                self._row_dataset(g, "ann_output", f"{path}/ann_output", (n, *layer.output_shape), np.float32)
            self._groups[layer.name] = g

    def _row_dataset(self, g, key: str, path: str, shape, dtype, chunks=None):
        """A per-sample dataset (chunked and compressed when ``chunks`` is given) and its row checksums."""
        opts = {"chunks": chunks, **COMPRESSION} if chunks else {}
        ds = g.create_dataset(key, shape=shape, dtype=dtype, **opts)
        # chunked datasets must have every row written (a missing chunk reads as zeros)
        self._rows[path] = (np.zeros((shape[0], DIGEST_BYTES), dtype=np.uint8), np.zeros(shape[0], dtype=bool),
                            chunks is not None)
        return ds

    def _put(self, g, key: str, i: int, row: np.ndarray) -> None:
        ds = g[key]
        ds[i] = row
        digests, written, _ = self._rows[ds.name.lstrip("/")]
        digests[i] = row_digest(row)
        written[i] = True

    # -- data --------------------------------------------------------------------------
    def set_weights(self, name: str, weight: np.ndarray, scale: float, bias: np.ndarray | None = None) -> None:
        """Store a layer's quantised integer weights (value = weight * scale) and float bias."""
        g = self._groups[name]
        layer = self.layers[[l.name for l in self.layers].index(name)]
        weight = np.asarray(weight)
        if weight.shape != layer.weight_shape:
            raise ValueError(f"layer {name}: weight shape {weight.shape} != {layer.weight_shape}")
        bits = self.meta.weight_bits
        if bits < 1:
            raise ValueError(f"layer {name}: weight_bits is 0 (no weights), cannot store weights")
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        stored = weight.astype(np.int8 if bits <= 8 else np.int16)
        if not np.array_equal(stored, weight) or (stored.size and (stored.min() < lo or stored.max() > hi)):
            raise ValueError(f"layer {name}: weights must be integers in {lo}..{hi} ({bits}-bit)")
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"layer {name}: weight scale must be finite and > 0, got {scale}")
        # chunks of whole output channels (~1 MiB): a weight tensor is read whole, and HDF5's
        # default chunks (a few channels x a few taps) read two times slower
        rows = max(1, min(stored.shape[0], WEIGHT_CHUNK_BYTES // max(1, stored[0].nbytes)))
        ds = g.create_dataset("weight", data=stored, chunks=(rows, *stored.shape[1:]), **COMPRESSION)
        ds.attrs["scale"] = float(scale)
        ds.attrs["range"] = np.array([stored.min(), stored.max()], dtype=np.int64)
        ds.attrs[DIGEST_ATTR] = row_digest(stored)
        if (bias is not None) != layer.has_bias:
            raise ValueError(f"layer {name}: has_bias is {layer.has_bias}, so a bias must "
                             f"{'' if layer.has_bias else 'not '}be given with the weights")
        if bias is not None:
            b = np.asarray(bias, dtype=np.float32)
            if b.shape != (layer.output_shape[0],) or not np.isfinite(b).all():
                raise ValueError(f"layer {name}: bias must be {layer.output_shape[0]} finite floats")
            g.create_dataset("bias", data=b).attrs[DIGEST_ATTR] = row_digest(b)

    def write_sample(self, i: int, *, label: int = -1, input: np.ndarray | None = None,
                     input_spikes: np.ndarray | None = None, spikes: dict | None = None,
                     activations: dict | None = None, potentials: dict | None = None,
                     ann_outputs: dict | None = None) -> None:
        """Write sample ``i``: spikes [T, *out] (bool) and levels [*out] per spiking layer.

        Levels must be integers in 0..T; with ``twin_levels = spike_counts`` each must equal
        its neuron's spike count over T; floats must be finite (ValueError otherwise)."""
        spikes, activations = spikes or {}, activations or {}
        potentials, ann_outputs = potentials or {}, ann_outputs or {}
        f, m = self._f, self.meta
        f["labels"][i] = label
        self._labels[i] = label
        if input is not None:
            x = np.asarray(input, dtype=np.float32).reshape(m.input_shape)
            if not np.isfinite(x).all():
                raise ValueError(f"sample {i}: input holds non-finite values")
            self._put(f, "input", i, x)
        if input_spikes is not None:
            self._put(f, "input_spikes", i, pack_spikes(input_spikes))
        for layer in self.layers:
            g = self._groups[layer.name]
            if layer.output == "spikes":
                s = np.asarray(spikes[layer.name])
                if s.shape != (m.T, *layer.output_shape):
                    raise ValueError(f"layer {layer.name}: spikes shape {s.shape}")
                if m.twin_levels == "derived":
                    if layer.name in activations:
                        raise ValueError(f"layer {layer.name}: an SNN-only trace (twin_levels derived) stores no levels")
                    self._put(g, "spikes", i, pack_spikes(s))
                    continue
                raw = np.asarray(activations[layer.name]).reshape(layer.output_shape)
                levels = raw.astype(self._level_dtype)
                if not np.array_equal(levels, raw) or (levels.size and levels.max() > self._level_max):
                    raise ValueError(f"layer {layer.name}: sample {i}: levels must be integers in 0..{self._level_max}")
                if m.twin_levels == "spike_counts" and not np.array_equal(s.astype(bool).sum(axis=0), levels):
                    raise ValueError(f"layer {layer.name}: sample {i}: levels differ from the spike counts over T "
                                     "(twin_levels = spike_counts)")
                self._put(g, "spikes", i, pack_spikes(s))
                self._put(g, "activations", i, levels)
            elif layer.output == "potential":
                for key, given in (("potential", potentials), ("ann_output", ann_outputs)):
                    if layer.name in given:
                        v = np.asarray(given[layer.name], dtype=np.float32).reshape(layer.output_shape)
                        if not np.isfinite(v).all():
                            raise ValueError(f"layer {layer.name}: sample {i}: {key} holds non-finite values")
                        self._put(g, key, i, v)
        self._written[i] = True

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> Path:
        """Finish the file, verify it with the reader and move it into place. Raises
        ValueError if a sample was never written, TraceFormatError if the reader rejects it."""
        missing = np.flatnonzero(~self._written)
        if missing.size:
            self.abort()
            raise ValueError(f"{self.path}: samples never written: {missing[:5].tolist()}...")
        for path, (_, written, required) in self._rows.items():
            if required and not written.all():
                self.abort()
                raise ValueError(f"{self.path}: {path} of samples {np.flatnonzero(~written)[:5].tolist()} never "
                                 "written (pass it to write_sample, or open the writer with_input=False)")
        try:
            self._finish()
            if self.verify:
                self._verify()
        except BaseException:
            self.abort()
            raise
        os.chmod(self._tmp, 0o644)  # mkstemp creates 0600; a trace is a normal shared file
        os.replace(self._tmp, self.path)
        return self.path

    def _finish(self) -> None:
        f = self._f
        f["labels"].attrs[DIGEST_ATTR] = row_digest(self._labels)
        for path, (digests, written, _) in self._rows.items():
            ds = f[path]
            if not written.all():  # optional rows (a readout's potential) keep the fill value 0
                zero = row_digest(np.zeros(ds.shape[1:], dtype=ds.dtype))
                digests[~written] = zero
            ds.attrs[DIGEST_ATTR] = digests
        f.attrs[META_DIGEST_ATTR] = meta_digest(file_objects(f))
        f.close()

    def _verify(self) -> None:
        from sim.trace.reader import Trace

        bar = sample_bar(self.meta.n_samples, "verify", self.progress)
        try:
            with Trace(self._tmp, open_timeout=0) as tr:
                if bar is None:
                    tr.verify()
                else:
                    tr.verify(progress=bar.update)
        except TraceFormatError as exc:
            raise TraceFormatError(str(self.path), exc.field, f"the written trace fails validation: {exc.message}") from None
        finally:
            if bar is not None:
                bar.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
