"""Writing traces: one sample at a time, to a temporary file renamed into place on success.

A trace that fails half-way (an exception, a sample never written) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from sim.trace.schema import (
    ENCODINGS,
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYER_KINDS,
    OUTPUT_KINDS,
    SPIKE_BITORDER,
    LayerSpec,
    TraceMeta,
)

#: gzip level 4 measured best for bit-packed spikes (size vs. write time) on this machine.
COMPRESSION = {"compression": "gzip", "compression_opts": 4}


def pack_spikes(spikes: np.ndarray) -> np.ndarray:
    """Pack boolean spikes [T, *shape] into uint8 [T, ceil(prod(shape)/8)] (little bit order)."""
    spikes = np.asarray(spikes)
    flat = spikes.reshape(spikes.shape[0], -1).astype(bool, copy=False)
    return np.packbits(flat, axis=1, bitorder=SPIKE_BITORDER)


def layer_group_name(index: int, name: str) -> str:
    return f"{index:03d}_{name}"


class TraceWriter:
    """Write a trace sample by sample.

    >>> with TraceWriter(path, meta, layers) as w:          # doctest: +SKIP
    ...     w.set_weights("conv1", w_int8, scale=0.01)
    ...     w.write_sample(0, label=3, input=x, spikes={...}, activations={...})
    """

    def __init__(self, path, meta: TraceMeta, layers: list[LayerSpec], *, with_input: bool = True):
        self.path = Path(path)
        self.meta = meta
        self.layers = list(layers)
        self._check_spec()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._f = h5py.File(self._tmp, "w")
        self._written = np.zeros(meta.n_samples, dtype=bool)
        self._groups: dict[str, h5py.Group] = {}
        self._write_header(with_input)

    # -- setup -------------------------------------------------------------------------
    def _check_spec(self) -> None:
        m = self.meta
        if m.T < 1 or m.n_samples < 1:
            raise ValueError("T and n_samples must be >= 1")
        if m.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError("layer names must be unique")
        for layer in self.layers:
            if layer.kind not in LAYER_KINDS or layer.output not in OUTPUT_KINDS:
                raise ValueError(f"layer {layer.name}: bad kind/output {layer.kind}/{layer.output}")

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
        f.attrs["layer_names"] = np.array([l.name for l in self.layers], dtype=h5py.string_dtype())
        n, T = m.n_samples, m.T
        f.create_dataset("labels", data=np.full(n, -1, dtype=np.int64))
        if with_input:
            f.create_dataset("input", shape=(n, *m.input_shape), dtype=np.float32,
                             chunks=(1, *m.input_shape), **COMPRESSION)
            if m.encoding == "rate":
                nbytes = -(-int(np.prod(m.input_shape)) // 8)
                f.create_dataset("input_spikes", shape=(n, T, nbytes), dtype=np.uint8,
                                 chunks=(1, T, nbytes), **COMPRESSION)
        layers = f.create_group("layers")
        prev = "input"
        for i, layer in enumerate(self.layers):
            g = layers.create_group(layer_group_name(i, layer.name))
            for key, value in layer.to_dict().items():
                if isinstance(value, list):
                    value = np.asarray(value, dtype=np.int64)
                g.attrs[key] = value
            g.attrs["index"] = i
            g.attrs["input_from"] = prev
            if layer.output == "spikes":
                nbytes = -(-layer.n_neurons // 8)
                g.create_dataset("spikes", shape=(n, T, nbytes), dtype=np.uint8,
                                 chunks=(1, T, nbytes), **COMPRESSION)
                g["spikes"].attrs["bitorder"] = SPIKE_BITORDER
                level_dtype = np.uint8 if m.ann_activation_bits <= 8 else np.uint16
                g.create_dataset("activations", shape=(n, *layer.output_shape), dtype=level_dtype,
                                 chunks=(1, *layer.output_shape), **COMPRESSION)
            elif layer.output == "potential":
                g.create_dataset("potential", shape=(n, *layer.output_shape), dtype=np.float32)
                g.create_dataset("ann_output", shape=(n, *layer.output_shape), dtype=np.float32)
            self._groups[layer.name] = g
            prev = layer.name

    # -- data --------------------------------------------------------------------------
    def set_weights(self, name: str, weight: np.ndarray, scale: float, bias: np.ndarray | None = None) -> None:
        """Store a layer's quantised integer weights (value = weight * scale) and float bias."""
        g = self._groups[name]
        layer = self.layers[[l.name for l in self.layers].index(name)]
        weight = np.asarray(weight)
        if weight.shape != layer.weight_shape:
            raise ValueError(f"layer {name}: weight shape {weight.shape} != {layer.weight_shape}")
        dtype = np.int8 if self.meta.weight_bits <= 8 else np.int16
        g.create_dataset("weight", data=weight.astype(dtype), **COMPRESSION)
        g["weight"].attrs["scale"] = float(scale)
        if bias is not None:
            g.create_dataset("bias", data=np.asarray(bias, dtype=np.float32))

    def write_sample(self, i: int, *, label: int = -1, input: np.ndarray | None = None,
                     input_spikes: np.ndarray | None = None, spikes: dict | None = None,
                     activations: dict | None = None, potentials: dict | None = None,
                     ann_outputs: dict | None = None) -> None:
        """Write sample ``i``: spikes [T, *out] (bool) and levels [*out] per spiking layer."""
        spikes, activations = spikes or {}, activations or {}
        potentials, ann_outputs = potentials or {}, ann_outputs or {}
        f = self._f
        f["labels"][i] = label
        if input is not None:
            f["input"][i] = np.asarray(input, dtype=np.float32).reshape(self.meta.input_shape)
        if input_spikes is not None:
            f["input_spikes"][i] = pack_spikes(input_spikes)
        for layer in self.layers:
            g = self._groups[layer.name]
            if layer.output == "spikes":
                s = np.asarray(spikes[layer.name])
                if s.shape != (self.meta.T, *layer.output_shape):
                    raise ValueError(f"layer {layer.name}: spikes shape {s.shape}")
                g["spikes"][i] = pack_spikes(s)
                g["activations"][i] = np.asarray(activations[layer.name]).reshape(layer.output_shape)
            elif layer.output == "potential":
                if layer.name in potentials:
                    g["potential"][i] = np.asarray(potentials[layer.name]).reshape(layer.output_shape)
                if layer.name in ann_outputs:
                    g["ann_output"][i] = np.asarray(ann_outputs[layer.name]).reshape(layer.output_shape)
        self._written[i] = True

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> Path:
        """Finish the file and move it into place. Raises if a sample was never written."""
        missing = np.flatnonzero(~self._written)
        if missing.size:
            self.abort()
            raise ValueError(f"{self.path}: samples never written: {missing[:5].tolist()}...")
        self._f.close()
        os.chmod(self._tmp, 0o644)  # mkstemp creates 0600; a trace is a normal shared file
        os.replace(self._tmp, self.path)
        return self.path

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
