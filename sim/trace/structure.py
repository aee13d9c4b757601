"""A trace's structure, read and validated without touching event data (docs/trace-format.md,
"Validation"): every attribute, dataset shape, dtype, checksum attribute and chunk index.

:func:`read_structure` returns a picklable :class:`Structure`, so it can run in the child
process of :func:`sim.trace.guard.bounded`; every HDF5 error, of any type, becomes a
:class:`TraceFormatError` naming the file and the attribute or dataset being read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.errors import TraceFormatError
from sim.trace.checker import Checker, article, as_str
from sim.trace.guard import open_h5, short
from sim.trace.integrity import DIGEST_ATTR, DIGEST_BYTES, META_DIGEST_ATTR, ROW_DATASETS, meta_digest, row_digest
from sim.trace.limits import MAX_LABEL, MAX_T, LimitExceeded, check_limits, check_weight_bytes
from sim.trace.schema import (
    DYNAMICS, ENCODINGS, FORMAT_NAME, LAYER_KINDS, NETWORK_INPUT, NEURON_TYPES, OUTPUT_KINDS, RESETS, SPIKE_BITORDER,
    SUPPORTED_VERSIONS, TWIN_LEVELS, V1_EXACT_TWIN_RECORDERS, LayerSpec, NeuronModel, TraceMeta,
)
from sim.trace.schema import CURRENT_KINDS, NEURON_KINDS

_REQUIRED_ROOT = {
    "format": str, "format_version": int, "model": str, "dataset": str, "T": int,
    "n_samples": int, "input_shape": "shape", "neuron": "json", "encoding": str,
    "ann_activation_bits": int, "weight_bits": int, "synthetic": bool, "recorder": str,
    "library_versions": "json", "layer_names": "names",
}
_REQUIRED_LAYER = {
    "name": str, "kind": str, "input_shape": "shape", "output_shape": "shape",
    "kernel": "ints", "stride": "ints", "padding": "ints", "groups": int, "output": str,
    "act_scale": float, "has_bias": bool, "index": int,
}
#: Format 1 and 2 chain their layers; format 3 names each layer's inputs (a graph).
_CHAIN_LAYER = {"input_from": str}
_GRAPH_LAYER = {"inputs": "json", "dilation": "ints", "neuron": "json"}
_WEIGHTED = ("conv2d", "linear")


@dataclass
class Structure:
    """What validation learnt about a trace; the reader streams data with it."""

    format_version: int
    meta: TraceMeta
    layers: list[LayerSpec]
    groups: dict[str, str]                    # layer name -> group name under layers/
    has_input: bool
    has_input_spikes: bool
    weight_scales: dict[str, float]           # layer name -> scale of its stored weights
    digests: dict[str, np.ndarray] = field(default_factory=dict)  # dataset path -> sha256 attr

    @property
    def checksummed(self) -> bool:
        return self.format_version >= 2


def read_structure(path: str, where=lambda text: None) -> Structure:
    """Open ``path``, validate its structure, close it. ``where(text)`` is told each field
    before it is read (so a hang can be named)."""
    c = Checker(path, where)
    c.at(None)
    f = open_h5(path)
    try:
        return _Validator(f, c).run()
    except TraceFormatError:
        raise
    except LimitExceeded as exc:
        c.fail(exc.field, exc.message, exc.layer)
    except Exception as exc:  # any h5py/HDF5 error (OSError, RuntimeError, KeyError, ...)
        c.fail(c.field, f"cannot read it (corrupt HDF5 metadata?): {short(exc)}", c.layer)
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001 - closing a damaged file may fail too; nothing to save
            pass
    raise AssertionError("unreachable")


class _Validator:
    def __init__(self, f, c: Checker):
        self.f, self.c = f, c
        self.objects: list[tuple[str, dict]] = []   # what the metadata digest covers
        self.digests: dict[str, np.ndarray] = {}
        self.scales: dict[str, float] = {}

    # -- root --------------------------------------------------------------------------
    def run(self) -> Structure:
        f, c = self.f, self.c
        root = c.attrs(f, "", None)
        self.objects.append(("/", root))
        a = {k: c.attr(root, k, kind) for k, kind in _REQUIRED_ROOT.items()}
        if a["format"] != FORMAT_NAME:
            c.fail("format", f"expected '{FORMAT_NAME}', got '{a['format']}'")
        version = a["format_version"]
        if version not in SUPPORTED_VERSIONS:
            c.fail("format_version", f"version {version} is not supported (supported: {SUPPORTED_VERSIONS})")
        self.version = version
        T, n = a["T"], a["n_samples"]
        if T < 1:
            c.fail("T", f"must be >= 1, got {T}")
        if T > MAX_T:
            c.fail("T", f"{T} is over the limit of {MAX_T} time steps (levels 0..T are stored in 16 bits)")
        if n < 1:
            c.fail("n_samples", f"must be >= 1, got {n}")
        if a["encoding"] not in ENCODINGS:
            c.fail("encoding", f"must be one of {ENCODINGS}, got '{a['encoding']}'")
        if a["encoding"] == "events" and version < 3:
            c.fail("encoding", "'events' needs format version 3")
        if not 1 <= a["ann_activation_bits"] <= 16:
            c.fail("ann_activation_bits", f"must be in 1..16, got {a['ann_activation_bits']}")
        if not 0 <= a["weight_bits"] <= 16:
            c.fail("weight_bits", f"must be in 0..16, got {a['weight_bits']}")
        neuron = self._neuron(a["neuron"])
        libs = a["library_versions"]
        if not isinstance(libs, dict) or not all(isinstance(v, str) for v in libs.values()):
            c.fail("library_versions", "expected a JSON object of library name -> version string")
        description = c.attr(root, "description", str) if "description" in root else ""
        if version >= 2:
            twin = c.attr(root, "twin_levels", str)
            if twin not in TWIN_LEVELS:
                c.fail("twin_levels", f"must be one of {TWIN_LEVELS}, got '{twin}'")
            if twin == "derived" and version < 3:
                c.fail("twin_levels", "'derived' (an SNN-only trace) needs format version 3")
        else:
            twin = "spike_counts" if a["recorder"].startswith(V1_EXACT_TWIN_RECORDERS) else "independent"
        dynamics = c.attr(root, "dynamics", str) if "dynamics" in root else ""
        if "dynamics" in root and dynamics not in DYNAMICS:
            c.fail("dynamics", f"must be one of {DYNAMICS}, got '{dynamics}'")
        if dynamics and version < 3:
            c.fail("dynamics", "needs format version 3")
        self.meta = TraceMeta(
            model=a["model"], dataset=a["dataset"], T=T, n_samples=n, input_shape=a["input_shape"],
            neuron=neuron, encoding=a["encoding"], ann_activation_bits=a["ann_activation_bits"],
            weight_bits=a["weight_bits"], synthetic=a["synthetic"], recorder=a["recorder"],
            library_versions=libs, description=description, twin_levels=twin,
            dynamics=dynamics)
        if twin == "spike_counts" and version < 3 and (neuron.type, neuron.reset) != ("IF", "subtract"):
            c.fail("twin_levels", f"spike_counts holds for IF neurons with reset by subtraction, not for "
                   f"{neuron.type} with reset '{neuron.reset}' (neuron)")

        if not hasattr(c.member(f, "layers", None, "group"), "keys"):
            c.fail("layers", "expected a group")
        names = a["layer_names"]
        if not names:
            c.fail("layer_names", "a trace needs at least one layer")
        if len(set(names)) != len(names) or not all(names):
            c.fail("layer_names", f"layer names must be unique and non-empty, got {names}")
        groups = sorted(f["layers"].keys())
        if len(groups) != len(names):
            c.fail("layer_names", f"lists {len(names)} layers but group 'layers' holds {len(groups)}")
        layers, gnames, group_objs = [], {}, []
        prev_name, prev_shape = NETWORK_INPUT, self.meta.input_shape
        if NETWORK_INPUT in names:
            c.fail("layer_names", f"'{NETWORK_INPUT}' names the network's input; a layer cannot use it")
        self.names = names
        self.earlier: dict[str, LayerSpec] = {}
        for i, (name, gname) in enumerate(zip(names, groups)):
            if gname != f"{i:03d}_{name}":
                c.fail("layer_names", f"layer {i} is '{name}' but the group is '{gname}'")
            g = c.member(f["layers"], gname, name, "group")
            if not hasattr(g, "keys"):
                c.fail("group", f"layers/{gname} is not a group", name)
            la = c.attrs(g, "", name)
            self.objects.append((f"layers/{gname}", la))
            layer = self._layer(la, name, i, prev_name, prev_shape)
            self.earlier[name] = layer
            layers.append(layer)
            gnames[name] = gname
            group_objs.append(g)
            prev_name, prev_shape = name, layer.output_shape
        check_limits(T, n, self.meta.input_shape, layers)   # before any dataset is sized
        consumed = {src for l in layers for src in l.inputs}
        if version >= 3:
            for l in layers:
                if l.output != "potential" and l.name not in consumed:
                    c.fail("inputs", "no layer consumes its output (only a readout, output 'potential', "
                           "may end the network)", l.name)
                for src in l.inputs:
                    if src != NETWORK_INPUT and self.earlier[src].output == "current" and l.kind != "add":
                        c.fail("inputs", f"'{src}' outputs a current, which only an add can sum; {article(l.kind)} "
                               "layer reads spikes", l.name)

        self._root_datasets()
        for layer, g in zip(layers, group_objs):
            self._layer_datasets(layer, g, f"layers/{gnames[layer.name]}")
        weighted = [l.name for l in layers if l.kind in _WEIGHTED]
        without = [name for name in weighted if name not in self.scales]
        if self.scales and without:
            c.fail("weight", "required dataset is missing (the other conv/linear layers store their weights)",
                   without[0])
        if version >= 2:
            stored = self._digest_attr(root, META_DIGEST_ATTR, None, "", (DIGEST_BYTES,))
            c.at(META_DIGEST_ATTR)
            if not np.array_equal(stored, meta_digest(self.objects)):
                c.fail(META_DIGEST_ATTR, "the attributes do not match their checksum: the file's metadata is corrupt")
        return Structure(version, self.meta, layers, gnames, "input" in f, "input_spikes" in f,
                         self.scales, self.digests)

    def _neuron(self, neuron, layer: str | None = None) -> NeuronModel:
        c = self.c
        keys = list(NeuronModel().to_dict())
        if not isinstance(neuron, dict) or sorted(neuron) != sorted(keys):
            got = sorted(neuron) if isinstance(neuron, dict) else type(neuron).__name__
            c.fail("neuron", f"expected a JSON object with keys {keys}, got {got}", layer)
        if neuron["type"] not in NEURON_TYPES:
            c.fail("neuron", f"unknown neuron type {neuron['type']!r} (known: {', '.join(NEURON_TYPES)})", layer)
        if neuron["reset"] not in RESETS:
            c.fail("neuron", f"unknown reset {neuron['reset']!r} (known: {', '.join(RESETS)})", layer)
        for key in ("threshold", "leak"):
            v = neuron[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                c.fail("neuron", f"{key} must be a finite number, got {v!r}", layer)
        if neuron["threshold"] <= 0:
            c.fail("neuron", f"threshold must be > 0, got {neuron['threshold']}", layer)
        if neuron["type"] == "IF" and neuron["leak"] != 0:
            c.fail("neuron", f"an IF neuron has no leak, got leak {neuron['leak']}", layer)
        if neuron["type"] == "LIF" and not 0 < neuron["leak"] <= 1:
            c.fail("neuron", f"a LIF neuron's leak (the factor its membrane keeps per step) must be in (0, 1], "
                   f"got {neuron['leak']}", layer)
        return NeuronModel(type=neuron["type"], threshold=float(neuron["threshold"]), reset=neuron["reset"],
                           leak=float(neuron["leak"]))

    # -- layers ------------------------------------------------------------------------
    def _layer(self, la, name, i, prev_name, prev_shape) -> LayerSpec:
        c = self.c
        graph = self.version >= 3
        kinds = {**_REQUIRED_LAYER, **(_GRAPH_LAYER if graph else _CHAIN_LAYER)}
        a = {k: c.attr(la, k, kind, name) for k, kind in kinds.items()}
        if a["name"] != name:
            c.fail("name", f"group says '{a['name']}', layer_names says '{name}'", name)
        if a["index"] != i:
            c.fail("index", f"expected {i}, got {a['index']}", name)
        kind = a["kind"]
        if kind not in LAYER_KINDS or (not graph and kind in ("maxpool", "add")):
            known = LAYER_KINDS if graph else tuple(k for k in LAYER_KINDS if k not in ("maxpool", "add"))
            c.fail("kind", f"unknown kind '{kind}' (known{'' if graph else ' before format 3'}: {', '.join(known)})",
                   name)
        if a["output"] not in OUTPUT_KINDS:
            c.fail("output", f"unknown output '{a['output']}' (known: {', '.join(OUTPUT_KINDS)})", name)
        if graph:
            inputs, in_shape = self._inputs(a["inputs"], kind, name, a["input_shape"])
        else:
            if a["input_from"] != prev_name:
                c.fail("input_from", f"expected '{prev_name}' (execution order), got '{a['input_from']}'", name)
            if a["input_shape"] != tuple(prev_shape):
                c.fail("input_shape", f"{list(a['input_shape'])} does not match the previous layer's "
                       f"output_shape {list(prev_shape)} ('{prev_name}')", name)
            inputs, in_shape = (prev_name,), a["input_shape"]
        if a["act_scale"] <= 0:
            c.fail("act_scale", f"must be > 0, got {a['act_scale']}", name)
        if kind in ("conv2d", "avgpool", "maxpool"):
            if len(in_shape) != 3:
                c.fail("input_shape", f"{article(kind)} layer needs (C, H, W), got {list(in_shape)}", name)
            for key in ("kernel", "stride", "padding"):
                if len(a[key]) != 2 or any(x < (0 if key == "padding" else 1) for x in a[key]):
                    c.fail(key, f"needs two {'non-negative' if key == 'padding' else 'positive'} integers, got {list(a[key])}", name)
            if len(a["output_shape"]) != 3:
                c.fail("output_shape", f"{article(kind)} layer gives (C, H, W), got {list(a['output_shape'])}", name)
            if a["groups"] < 1 or in_shape[0] % a["groups"] or a["output_shape"][0] % a["groups"]:
                c.fail("groups", f"{a['groups']} does not divide the channels", name)
        else:
            for key in ("kernel", "stride", "padding"):
                if a[key]:
                    c.fail(key, f"must be empty for {article(kind)} layer, got {list(a[key])}", name)
            if kind == "linear" and (len(in_shape) != 1 or len(a["output_shape"]) != 1):
                c.fail("input_shape", f"a linear layer maps a flat input to a flat output, got "
                       f"{list(in_shape)} -> {list(a['output_shape'])}", name)
        dilation = ()
        if graph:
            dilation = a["dilation"]
            if kind == "conv2d":
                if len(dilation) != 2 or any(x < 1 for x in dilation):
                    c.fail("dilation", f"needs two positive integers, got {list(dilation)}", name)
            elif dilation:
                c.fail("dilation", f"must be empty for {article(kind)} layer, got {list(dilation)}", name)
        elif kind == "conv2d":
            dilation = (1, 1)
        if kind != "conv2d" and a["groups"] != 1:
            c.fail("groups", f"must be 1 for {article(kind)} layer, got {a['groups']}", name)
        neuron = None
        if kind in NEURON_KINDS and a["output"] == "current":
            if a["neuron"] is not None:
                c.fail("neuron", f"a layer whose output is a current has no neuron: expected null, got "
                       f"{a['neuron']!r}", name)
        elif kind in NEURON_KINDS:
            if graph:
                if a["neuron"] is None:
                    c.fail("neuron", f"{article(kind)} layer has neurons: expected its neuron model, got null", name)
                neuron = self._neuron(a["neuron"], name)
            else:
                neuron = self.meta.neuron
        elif graph and a["neuron"] is not None:
            c.fail("neuron", f"{article(kind)} layer has no neurons: expected null, got {a['neuron']!r}", name)
        if neuron is not None and self.meta.twin_levels == "spike_counts" and a["output"] == "spikes" \
                and (neuron.type, neuron.reset) != ("IF", "subtract"):
            c.fail("neuron", f"twin_levels spike_counts holds for IF neurons with reset by subtraction, not for "
                   f"{neuron.type} with reset '{neuron.reset}' (declare twin_levels independent or derived)", name)
        layer = LayerSpec(name=name, kind=kind, input_shape=in_shape, output_shape=a["output_shape"],
                          kernel=a["kernel"], stride=a["stride"], padding=a["padding"], groups=a["groups"],
                          output=a["output"], act_scale=a["act_scale"], has_bias=a["has_bias"],
                          inputs=inputs, dilation=dilation, neuron=neuron)
        expected = layer.expected_output_shape()
        if expected != layer.output_shape:
            c.fail("output_shape", f"{list(layer.output_shape)} but the geometry implies {list(expected)}", name)
        if kind == "flatten" and layer.output != "passthrough":
            c.fail("output", "a flatten layer must be 'passthrough'", name)
        if kind != "flatten" and layer.output == "passthrough":
            c.fail("output", f"{article(kind)} layer computes; only flatten is 'passthrough'", name)
        if layer.output == "current" and (not graph or kind not in CURRENT_KINDS):
            c.fail("output", f"'current' is for conv2d, linear and avgpool layers of format 3 (a current summed "
                   f"by an add), not {article(kind)} layer" + ("" if graph else f" of format {self.version}"), name)
        if kind == "maxpool" and layer.output != "spikes":
            c.fail("output", "a maxpool layer emits spikes (the OR over its window), got "
                   f"'{layer.output}'", name)
        return layer

    def _inputs(self, raw, kind: str, name: str, in_shape) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Format 3: the layer's ``inputs`` (earlier layers or the network input), checked for
        existence, order (no cycle), the number an add or another kind takes, and shapes."""
        c = self.c
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x for x in raw):
            c.fail("inputs", f"expected a non-empty JSON list of layer names, got {raw!r}", name)
        if len(set(raw)) != len(raw):
            c.fail("inputs", f"names a layer twice: {raw}", name)
        if kind == "add" and len(raw) < 2:
            c.fail("inputs", f"an add sums two or more inputs, got {len(raw)}", name)
        if kind != "add" and len(raw) != 1:
            c.fail("inputs", f"{article(kind)} layer has one input, got {len(raw)}: {raw}", name)
        for src in raw:
            if src == NETWORK_INPUT:
                shape = self.meta.input_shape
                if kind in ("add", "maxpool") and not self.meta.spike_input:
                    c.fail("inputs", f"{article(kind)} layer cannot read the analog input (direct encoding); "
                           "its inputs are spikes", name)
            elif src in self.earlier:
                prev = self.earlier[src]
                if prev.output == "potential":
                    c.fail("inputs", f"'{src}' is a readout (output 'potential'); no layer can consume it", name)
                shape = prev.output_shape
            elif src == name:
                c.fail("inputs", f"names the layer itself: the graph has a cycle ({name} -> {name})", name)
            elif src in self.names:
                c.fail("inputs", f"'{src}' comes later in execution order: the graph has a cycle or the layers "
                       "are not stored in execution order", name)
            else:
                c.fail("inputs", f"missing input layer '{src}' (no such layer; known: "
                       f"{', '.join([NETWORK_INPUT, *self.earlier][:12])})", name)
            if tuple(shape) != tuple(in_shape):
                what = "the add's operands must all have its input_shape" if kind == "add" else "input_shape"
                c.fail("input_shape", f"{list(in_shape)} does not match the output_shape {list(shape)} of input "
                       f"'{src}' ({what})", name)
        return tuple(raw), tuple(in_shape)

    # -- datasets ----------------------------------------------------------------------
    def _dataset(self, g, key, path, layer, shape, dtypes, what, ds=None):
        """Check one dataset's dtype, shape, chunk index and checksum attribute."""
        c = self.c
        ds = c.dataset(g, key, layer) if ds is None else ds
        if ds.dtype not in [np.dtype(t) for t in dtypes]:
            c.fail(key, f"dtype {ds.dtype} not allowed (expected {what})", layer)
        if shape is not None and tuple(ds.shape) != tuple(shape):
            c.fail(key, f"shape {list(ds.shape)}, expected {list(shape)}", layer)
        attrs = c.attrs(ds, f"{key}.", layer)
        self.objects.append((path, attrs))
        if ds.chunks is not None:
            # every chunk written: a damaged chunk index can hide one, and HDF5 then returns
            # zeros for it without an error
            c.at(key, layer)
            expected = math.prod(-(-s // k) for s, k in zip(ds.shape, ds.chunks))
            got = ds.id.get_num_chunks()
            if got != expected:
                c.fail(key, f"{got} of its {expected} chunks are stored (truncated or corrupt chunk index)", layer)
        if self.version >= 2:
            rows = (ds.shape[0], DIGEST_BYTES) if key in ROW_DATASETS else (DIGEST_BYTES,)
            self.digests[path] = self._digest_attr(attrs, DIGEST_ATTR, layer, f"{key}.", rows)
        return ds, attrs

    def _whole(self, ds, key: str, path: str, layer: str | None) -> np.ndarray:
        """A small dataset read whole at open, checked against its SHA-256 (format 2)."""
        self.c.at(key, layer)
        data = np.asarray(ds[()])
        if path in self.digests and not np.array_equal(row_digest(data), self.digests[path]):
            self.c.fail(key, "does not match its SHA-256 checksum: the stored data is corrupt", layer)
        return data

    def _digest_attr(self, attrs, name, layer, prefix, shape):
        c = self.c
        if name not in attrs:
            c.fail(f"{prefix}{name}", "required attribute is missing (format 2 stores a checksum per dataset)", layer)
        v = np.asarray(attrs[name])
        if v.dtype != np.uint8 or v.shape != tuple(shape):
            c.fail(f"{prefix}{name}", f"expected uint8 {list(shape)}, got {v.dtype} {list(v.shape)}", layer)
        return v

    def _root_datasets(self) -> None:
        f, m, c = self.f, self.meta, self.c
        n, T = m.n_samples, m.T
        ds, _ = self._dataset(f, "labels", "labels", None, (n,), (np.int64, np.int32, np.int16, np.int8),
                              "a signed integer type")
        labels = self._whole(ds, "labels", "labels", None)   # n integers: checked at open
        if labels.size and (labels.min() < -1 or labels.max() > MAX_LABEL):
            bad = labels.min() if labels.min() < -1 else labels.max()
            c.fail("labels", f"holds {bad}; a label is a class index 0..{MAX_LABEL} or -1 (unknown)")
        c.at("input")
        if "input" in f:
            self._dataset(f, "input", "input", None, (n, *m.input_shape), (np.float32,), "float32")
        elif m.encoding == "direct" and self.version >= 2:
            c.fail("input", "required dataset is missing (direct encoding: the first layer is driven by it)")
        c.at("input_spikes")
        has_spikes = "input_spikes" in f
        if m.spike_input or has_spikes:
            if not m.spike_input:
                c.fail("input_spikes", f"stored, but encoding is '{m.encoding}' (input spikes go with 'rate' or "
                       "'events')")
            nbytes = -(-math.prod(m.input_shape) // 8)
            self._dataset(f, "input_spikes", "input_spikes", None, (n, T, nbytes), (np.uint8,), "uint8")

    def _layer_datasets(self, layer: LayerSpec, g, path: str) -> None:
        c, m = self.c, self.meta
        n, T, name = m.n_samples, m.T, layer.name
        c.at("datasets", name)
        members = set(g.keys())
        present = {key: key in members for key in ("spikes", "activations", "potential", "ann_output", "weight", "bias")}
        if layer.output == "spikes":
            nbytes = -(-layer.n_neurons // 8)
            ds = c.dataset(g, "spikes", name)
            if ds.ndim != 3:
                c.fail("spikes", f"expected 3 dimensions [samples, T, bytes], got shape {list(ds.shape)}", name)
            if ds.shape[1] != T:
                c.fail("spikes", f"has T={ds.shape[1]} time steps but the file's T is {T}", name)
            _, sa = self._dataset(g, "spikes", f"{path}/spikes", name, (n, T, nbytes), (np.uint8,), "uint8", ds)
            if as_str(sa.get("bitorder", "")) != SPIKE_BITORDER:
                c.fail("spikes.bitorder", f"expected '{SPIKE_BITORDER}'", name)
            if m.twin_levels == "derived":
                if present["activations"]:
                    c.fail("activations", "stored, but twin_levels is 'derived' (an SNN-only trace stores no "
                           "ANN-twin levels)", name)
            else:
                level_types = (np.uint8, np.uint16) if m.ann_activation_bits <= 8 else (np.uint16,)
                self._dataset(g, "activations", f"{path}/activations", name, (n, *layer.output_shape), level_types,
                              "uint8 or uint16" if m.ann_activation_bits <= 8 else
                              f"uint16 for {m.ann_activation_bits}-bit levels")
        elif layer.output == "potential":
            for key in ("potential", "ann_output"):
                if present[key]:
                    self._dataset(g, key, f"{path}/{key}", name, (n, *layer.output_shape), (np.float32,), "float32")
        if present["weight"]:
            if layer.kind not in _WEIGHTED:
                c.fail("weight", f"{article(layer.kind)} layer has no weights", name)
            if m.weight_bits == 0:
                c.fail("weight", "stored, but the file's weight_bits is 0 (no weights)", name)
            c.at("weight", name)
            wtypes = (np.int8,) if m.weight_bits <= 8 else (np.int16,)   # what the writer stores
            check_weight_bytes(name, layer.n_weights, 2)
            _, wa = self._dataset(g, "weight", f"{path}/weight", name, layer.weight_shape, wtypes,
                                  f"int{8 if m.weight_bits <= 8 else 16} for {m.weight_bits}-bit weights")
            scale = c.attr(wa, "scale", float, name, "weight.")
            if scale <= 0:
                c.fail("weight.scale", f"must be > 0, got {scale}", name)
            self.scales[name] = scale
            if self.version >= 2:   # the stored integers' range, so the width is checked without reading them
                lo, hi = -(2 ** (m.weight_bits - 1)), 2 ** (m.weight_bits - 1) - 1
                rng = c.attr(wa, "range", "ints", name, "weight.")
                if len(rng) != 2 or not lo <= rng[0] <= rng[1] <= hi:
                    c.fail("weight.range", f"{list(rng)} is not a range within the {m.weight_bits}-bit weights "
                           f"{lo}..{hi} (weight_bits)", name)
        if layer.has_bias and layer.kind not in _WEIGHTED:
            c.fail("has_bias", f"{article(layer.kind)} layer has no bias", name)
        if present["bias"]:
            if not layer.has_bias:
                c.fail("bias", "stored, but has_bias is false", name)
            if not present["weight"]:
                c.fail("bias", "stored without the layer's weights", name)
            ds, _ = self._dataset(g, "bias", f"{path}/bias", name, (layer.output_shape[0],), (np.float32,), "float32")
            bias = self._whole(ds, "bias", f"{path}/bias", name)   # one float per channel: checked at open
            if not np.isfinite(bias).all():
                c.fail("bias", "holds a non-finite value; expected finite floats", name)
        elif present["weight"] and layer.has_bias:
            c.fail("bias", "required dataset is missing (has_bias is true and the weights are stored)", name)
        allowed = {"spikes": ("spikes", "activations"), "potential": ("potential", "ann_output")}.get(layer.output, ())
        for key in ("spikes", "activations", "potential", "ann_output"):
            if present[key] and key not in allowed:
                c.fail(key, f"unexpected dataset for a layer whose output is '{layer.output}'", name)
