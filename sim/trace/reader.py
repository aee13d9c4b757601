"""Reading traces: validated on open, streamed per layer and per sample.

``open_trace(path)`` checks the whole structure (metadata, versions, dtypes, T, shapes that
chain from layer to layer) without reading event data, then hands out one sample of one
layer at a time, so a large trace is never loaded whole. Every violation raises
:class:`TraceFormatError` naming the file, the layer and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np

from sim.errors import TraceFormatError
from sim.trace.schema import (
    ENCODINGS,
    FORMAT_NAME,
    LAYER_KINDS,
    OUTPUT_KINDS,
    SPIKE_BITORDER,
    SUPPORTED_VERSIONS,
    LayerSpec,
    NeuronModel,
    TraceMeta,
)

_REQUIRED_ROOT = {
    "format": str, "format_version": int, "model": str, "dataset": str, "T": int,
    "n_samples": int, "input_shape": "shape", "neuron": "json", "encoding": str,
    "ann_activation_bits": int, "weight_bits": int, "synthetic": bool, "recorder": str,
    "library_versions": "json", "layer_names": "names",
}
_REQUIRED_LAYER = {
    "name": str, "kind": str, "input_shape": "shape", "output_shape": "shape",
    "kernel": "ints", "stride": "ints", "padding": "ints", "groups": int, "output": str,
    "act_scale": float, "has_bias": bool, "index": int, "input_from": str,
}


def _as_str(v):
    return v.decode() if isinstance(v, bytes) else v


class _Checker:
    """Collects the file name and raises one precise error."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, field: str, message: str, layer: str | None = None):
        where = f"layer {layer}: {field}" if layer else field
        raise TraceFormatError(self.path, where, message)

    def attr(self, attrs, key: str, kind, layer: str | None = None):
        if key not in attrs:
            self.fail(key, "required attribute is missing", layer)
        v = attrs[key]
        try:
            if kind is str:
                v = _as_str(v)
                if not isinstance(v, str):
                    raise TypeError
                return v
            if kind is int:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                    raise TypeError
                return int(v)
            if kind is float:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                    raise TypeError
                return float(v)
            if kind is bool:
                if not isinstance(v, (bool, np.bool_)):
                    raise TypeError
                return bool(v)
            if kind in ("shape", "ints"):
                arr = np.asarray(v)
                if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                    raise TypeError
                if kind == "shape" and (arr.size == 0 or (arr <= 0).any()):
                    self.fail(key, f"must be a non-empty list of positive integers, got {arr.tolist()}", layer)
                return tuple(int(x) for x in arr)
            if kind == "json":
                return json.loads(_as_str(v))
            if kind == "names":
                return [_as_str(x) for x in np.asarray(v).tolist()]
        except (TypeError, ValueError):
            self.fail(key, f"has the wrong type ({type(v).__name__}); expected {getattr(kind, '__name__', kind)}", layer)
        raise AssertionError(kind)


class Trace:
    """An open, validated trace. Use as a context manager or call :meth:`close`."""

    def __init__(self, path):
        self.path = str(path)
        self._check = _Checker(self.path)
        if not Path(path).exists():
            raise TraceFormatError(self.path, None, "file does not exist")
        try:
            self._f = h5py.File(path, "r")
        except OSError as exc:
            raise TraceFormatError(self.path, None, f"not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from None
        try:
            self._validate()
        except TraceFormatError:
            self._f.close()
            raise
        except (OSError, KeyError, ValueError) as exc:
            self._f.close()
            raise TraceFormatError(self.path, None, f"unreadable HDF5 structure (truncated?): {_short(exc)}") from None

    # -- validation --------------------------------------------------------------------
    def _validate(self) -> None:
        f, c = self._f, self._check
        a = {k: c.attr(f.attrs, k, kind) for k, kind in _REQUIRED_ROOT.items()}
        if a["format"] != FORMAT_NAME:
            c.fail("format", f"expected '{FORMAT_NAME}', got '{a['format']}'")
        if a["format_version"] not in SUPPORTED_VERSIONS:
            c.fail("format_version", f"version {a['format_version']} is not supported (supported: {SUPPORTED_VERSIONS})")
        self.format_version = a["format_version"]
        if a["T"] < 1:
            c.fail("T", f"must be >= 1, got {a['T']}")
        if a["n_samples"] < 1:
            c.fail("n_samples", f"must be >= 1, got {a['n_samples']}")
        if a["encoding"] not in ENCODINGS:
            c.fail("encoding", f"must be one of {ENCODINGS}, got '{a['encoding']}'")
        if not 1 <= a["ann_activation_bits"] <= 16:
            c.fail("ann_activation_bits", f"must be in 1..16, got {a['ann_activation_bits']}")
        if not 0 <= a["weight_bits"] <= 16:
            c.fail("weight_bits", f"must be in 0..16, got {a['weight_bits']}")
        neuron = a["neuron"]
        try:
            neuron = NeuronModel(**neuron)
        except TypeError:
            c.fail("neuron", f"expected keys {list(NeuronModel().to_dict())}, got {list(neuron)}")
        T, n = a["T"], a["n_samples"]
        self.meta = TraceMeta(
            model=a["model"], dataset=a["dataset"], T=T, n_samples=n, input_shape=a["input_shape"],
            neuron=neuron, encoding=a["encoding"], ann_activation_bits=a["ann_activation_bits"],
            weight_bits=a["weight_bits"], synthetic=a["synthetic"], recorder=a["recorder"],
            library_versions=a["library_versions"], description=_as_str(f.attrs.get("description", "")),
        )
        self._check_dataset(f, "labels", (n,), (np.integer,), None)
        self.has_input = "input" in f
        if self.has_input:
            self._check_dataset(f, "input", (n, *self.meta.input_shape), (np.floating,), None)
        if self.meta.encoding == "rate" and self.has_input:
            nbytes = -(-math.prod(self.meta.input_shape) // 8)
            self._check_dataset(f, "input_spikes", (n, T, nbytes), (np.uint8,), None)

        if "layers" not in f or not isinstance(f["layers"], h5py.Group):
            c.fail("layers", "required group is missing")
        names = a["layer_names"]
        if not names:
            c.fail("layer_names", "a trace needs at least one layer")
        groups = sorted(f["layers"].keys())
        if len(groups) != len(names):
            c.fail("layer_names", f"lists {len(names)} layers but group 'layers' holds {len(groups)}")
        self.layers: list[LayerSpec] = []
        self._gnames: dict[str, str] = {}
        prev_name, prev_shape = "input", self.meta.input_shape
        for i, (name, gname) in enumerate(zip(names, groups)):
            if gname != f"{i:03d}_{name}":
                c.fail("layer_names", f"layer {i} is '{name}' but the group is '{gname}'")
            layer = self._validate_layer(f["layers"][gname], name, i, prev_name, prev_shape)
            self.layers.append(layer)
            self._gnames[name] = gname
            prev_name, prev_shape = name, layer.output_shape

    def _validate_layer(self, g, name, i, prev_name, prev_shape) -> LayerSpec:
        c = self._check
        a = {k: c.attr(g.attrs, k, kind, name) for k, kind in _REQUIRED_LAYER.items()}
        if a["name"] != name:
            c.fail("name", f"group says '{a['name']}', layer_names says '{name}'", name)
        if a["index"] != i:
            c.fail("index", f"expected {i}, got {a['index']}", name)
        if a["kind"] not in LAYER_KINDS:
            c.fail("kind", f"unknown kind '{a['kind']}' (known: {', '.join(LAYER_KINDS)})", name)
        if a["output"] not in OUTPUT_KINDS:
            c.fail("output", f"unknown output '{a['output']}' (known: {', '.join(OUTPUT_KINDS)})", name)
        if a["input_from"] != prev_name:
            c.fail("input_from", f"expected '{prev_name}' (execution order), got '{a['input_from']}'", name)
        if a["input_shape"] != tuple(prev_shape):
            c.fail("input_shape", f"{list(a['input_shape'])} does not match the previous layer's "
                   f"output_shape {list(prev_shape)} ('{prev_name}')", name)
        kind = a["kind"]
        if kind in ("conv2d", "avgpool"):
            if len(a["input_shape"]) != 3:
                c.fail("input_shape", f"a {kind} layer needs (C, H, W), got {list(a['input_shape'])}", name)
            for key in ("kernel", "stride", "padding"):
                if len(a[key]) != 2 or any(x < (0 if key == "padding" else 1) for x in a[key]):
                    c.fail(key, f"needs two {'non-negative' if key == 'padding' else 'positive'} integers, got {list(a[key])}", name)
            if a["groups"] < 1 or a["input_shape"][0] % a["groups"] or a["output_shape"][0] % a["groups"]:
                c.fail("groups", f"{a['groups']} does not divide the channels", name)
        elif kind == "linear" and len(a["input_shape"]) != 1:
            c.fail("input_shape", f"a linear layer needs a flat input, got {list(a['input_shape'])}", name)
        layer = LayerSpec(name=name, kind=kind, input_shape=a["input_shape"], output_shape=a["output_shape"],
                          kernel=a["kernel"], stride=a["stride"], padding=a["padding"], groups=a["groups"],
                          output=a["output"], act_scale=a["act_scale"], has_bias=a["has_bias"])
        expected = layer.expected_output_shape()
        if expected != layer.output_shape:
            c.fail("output_shape", f"{list(layer.output_shape)} but the geometry implies {list(expected)}", name)
        if kind == "flatten" and layer.output != "passthrough":
            c.fail("output", "a flatten layer must be 'passthrough'", name)
        n, T = self.meta.n_samples, self.meta.T
        if layer.output == "spikes":
            nbytes = -(-layer.n_neurons // 8)
            ds = self._check_dataset(g, "spikes", None, (np.uint8,), name)
            if ds.ndim != 3:
                c.fail("spikes", f"expected 3 dimensions [samples, T, bytes], got shape {list(ds.shape)}", name)
            if ds.shape[1] != T:
                c.fail("spikes", f"has T={ds.shape[1]} time steps but the file's T is {T}", name)
            if ds.shape != (n, T, nbytes):
                c.fail("spikes", f"shape {list(ds.shape)}, expected {[n, T, nbytes]}", name)
            if _as_str(ds.attrs.get("bitorder", "")) != SPIKE_BITORDER:
                c.fail("spikes.bitorder", f"expected '{SPIKE_BITORDER}'", name)
            self._check_dataset(g, "activations", (n, *layer.output_shape), (np.uint8, np.uint16), name)
        elif layer.output == "potential":
            for key in ("potential", "ann_output"):
                if key in g:
                    self._check_dataset(g, key, (n, *layer.output_shape), (np.floating,), name)
        if "weight" in g:
            self._check_dataset(g, "weight", layer.weight_shape or None, (np.integer,), name)
            if "scale" not in g["weight"].attrs:
                c.fail("weight.scale", "required attribute is missing", name)
        return layer

    def _check_dataset(self, g, key, shape, dtypes, layer):
        c = self._check
        if key not in g or not isinstance(g[key], h5py.Dataset):
            c.fail(key, "required dataset is missing", layer)
        ds = g[key]
        if not any(np.issubdtype(ds.dtype, t) for t in dtypes):
            c.fail(key, f"dtype {ds.dtype} not allowed (expected {', '.join(np.dtype(t).name if t not in (np.integer, np.floating) else t.__name__ for t in dtypes)})", layer)
        if shape is not None and tuple(ds.shape) != tuple(shape):
            c.fail(key, f"shape {list(ds.shape)}, expected {list(shape)}", layer)
        return ds

    # -- access ------------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self.meta.T

    @property
    def n_samples(self) -> int:
        return self.meta.n_samples

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def _group(self, name: str) -> h5py.Group:
        return self._f["layers"][self._gnames[name]]

    def _read(self, g, key, index, layer=None):
        try:
            return g[key][index]
        except (OSError, ValueError, KeyError) as exc:
            raise TraceFormatError(self.path, f"layer {layer}: {key}" if layer else key,
                                   f"cannot read data (truncated or corrupt?): {_short(exc)}") from None

    def labels(self) -> np.ndarray:
        return self._read(self._f, "labels", slice(None))

    def input(self, sample: int) -> np.ndarray:
        """The analog input of one sample, float32 [*input_shape]."""
        if not self.has_input:
            raise TraceFormatError(self.path, "input", "this trace stores no input")
        return self._read(self._f, "input", sample)

    def spikes_packed(self, name: str, sample: int) -> np.ndarray:
        """Packed output spikes of a layer for one sample: uint8 [T, ceil(neurons/8)]."""
        return self._read(self._group(name), "spikes", sample, name)

    def spikes(self, name: str, sample: int) -> np.ndarray:
        """Output spikes of a layer for one sample: bool [T, *output_shape]."""
        layer = self.layer(name)
        packed = self.spikes_packed(name, sample)
        flat = np.unpackbits(packed, axis=1, count=layer.n_neurons, bitorder=SPIKE_BITORDER)
        return flat.astype(bool).reshape(self.T, *layer.output_shape)

    def activations(self, name: str, sample: int) -> np.ndarray:
        """ANN-twin activation levels of a layer's output for one sample [*output_shape]."""
        return self._read(self._group(name), "activations", sample, name)

    def potential(self, name: str, sample: int) -> np.ndarray | None:
        g = self._group(name)
        return self._read(g, "potential", sample, name) if "potential" in g else None

    def ann_output(self, name: str, sample: int) -> np.ndarray | None:
        g = self._group(name)
        return self._read(g, "ann_output", sample, name) if "ann_output" in g else None

    def producer(self, name: str) -> LayerSpec | None:
        """The layer whose output events ``name`` consumes, skipping passthroughs (None: the input)."""
        idx = [l.name for l in self.layers].index(name)
        for prev in reversed(self.layers[:idx]):
            if prev.output != "passthrough":
                return prev
        return None

    def input_spikes(self, name: str, sample: int) -> np.ndarray | None:
        """Spikes a layer consumes for one sample, bool [T, *input_shape]; None for analog input."""
        prev = self.producer(name)
        layer = self.layer(name)
        if prev is None:
            if self.meta.encoding != "rate" or not self.has_input:
                return None
            packed = self._read(self._f, "input_spikes", sample)
        elif prev.output == "spikes":
            packed = self.spikes_packed(prev.name, sample)
        else:
            return None
        flat = np.unpackbits(packed, axis=1, count=layer.n_inputs, bitorder=SPIKE_BITORDER)
        return flat.astype(bool).reshape(self.T, *layer.input_shape)

    def weights(self, name: str) -> tuple[np.ndarray, float] | None:
        """Quantised integer weights and their scale (value = weight * scale), or None."""
        g = self._group(name)
        if "weight" not in g:
            return None
        return self._read(g, "weight", slice(None), name), float(g["weight"].attrs["scale"])

    def bias(self, name: str) -> np.ndarray | None:
        g = self._group(name)
        return self._read(g, "bias", slice(None), name) if "bias" in g else None

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def open_trace(path) -> Trace:
    """Open and validate a trace; raises :class:`TraceFormatError` on any violation."""
    return Trace(path)
