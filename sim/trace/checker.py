"""Reading a trace's attributes one field at a time: each read names the field first (so a
hang or an HDF5 error can be reported against it), each value is checked for its type, and
every failure is one :class:`TraceFormatError` naming the file, the layer and the field."""

from __future__ import annotations

import json
import math

import numpy as np

from sim.errors import TraceFormatError


def as_str(v):
    """A string attribute as str (h5py gives fixed-length strings as bytes)."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def article(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _no_constant(name):
    raise ValueError(f"{name} is not a finite number")


class Checker:
    """The file name and the field being read; raises one precise error."""

    def __init__(self, path: str, where):
        self.path, self._where = path, where
        self.field: str | None = None
        self.layer: str | None = None

    def at(self, field: str | None, layer: str | None = None) -> None:
        self.field, self.layer = field, layer
        self._where(self.label(field, layer) or "")

    @staticmethod
    def label(field, layer):
        return f"layer {layer}: {field}" if layer else field

    def fail(self, field, message: str, layer: str | None = None):
        raise TraceFormatError(self.path, self.label(field, layer), message)

    def attrs(self, obj, prefix: str, layer: str | None) -> dict:
        """Every attribute of ``obj``, each read once; ``prefix`` names a dataset's ("spikes.")."""
        self.at(f"{prefix}attributes" if prefix else "attributes", layer)
        names = list(obj.attrs.keys())
        out = {}
        for name in names:
            self.at(f"{prefix}{name}", layer)
            out[name] = obj.attrs[name]
        return out

    def attr(self, attrs: dict, key: str, kind, layer: str | None = None, prefix: str = ""):
        field = f"{prefix}{key}"
        if key not in attrs:
            self.fail(field, "required attribute is missing", layer)
        v = attrs[key]
        self.at(field, layer)
        try:
            if kind is str:
                v = as_str(v)
                if not isinstance(v, str):
                    raise TypeError
                return v
            if kind is int:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                    raise TypeError
                return int(v)
            if kind is float:
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise TypeError
                if not math.isfinite(float(v)):
                    self.fail(field, f"must be a finite number, got {float(v)}", layer)
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
                    self.fail(field, f"must be a non-empty list of positive integers, got {arr.tolist()}", layer)
                return tuple(int(x) for x in arr)
            if kind == "json":
                text = as_str(v)
                if not isinstance(text, str):
                    raise TypeError
                return json.loads(text, parse_constant=_no_constant)
            if kind == "names":
                arr = np.asarray(v)
                if arr.ndim != 1:
                    raise TypeError
                names = [as_str(x) for x in arr.tolist()]
                if not all(isinstance(x, str) for x in names):
                    raise TypeError
                return names
        except (TypeError, ValueError) as exc:
            if kind == "json" and isinstance(exc, ValueError):
                self.fail(field, f"is not valid JSON of finite numbers ({exc})", layer)
            self.fail(field, f"has the wrong type ({type(v).__name__}); expected "
                      f"{ {'shape': 'a list of integers', 'ints': 'a list of integers', 'names': 'a list of strings', 'json': 'a JSON string'}.get(kind, getattr(kind, '__name__', kind))}", layer)
        raise AssertionError(kind)

    def member(self, g, key: str, layer: str | None, what: str = "dataset"):
        """``g[key]``, refusing a missing member and an external link (a trace is one file)."""
        import h5py

        self.at(key, layer)
        link = g.get(key, getlink=True)
        if link is None:
            self.fail(key, f"required {what} is missing", layer)
        if isinstance(link, h5py.ExternalLink):
            self.fail(key, "is an external link; a trace is one self-contained file", layer)
        return g[key]

    def dataset(self, g, key: str, layer: str | None):
        import h5py

        ds = self.member(g, key, layer)
        if not isinstance(ds, h5py.Dataset):
            self.fail(key, f"expected a dataset, found a {type(ds).__name__}", layer)
        return ds
