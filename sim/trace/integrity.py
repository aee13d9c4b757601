"""Checksums of a trace (format version 2): one SHA-256 per sample row of every per-sample
dataset, one per whole dataset (labels, weight, bias), and one over every attribute.

Why SHA-256 of the decoded rows rather than HDF5's Fletcher32 filter: a filter checksum is
checked only when a chunk is read, and a bit flip in a chunk index can make HDF5 skip the
chunk and return its fill value (zeros) without reading anything, which no filter sees. A
digest of the values the reader actually got catches that, a damaged chunk, and a filter
that decodes to the wrong bytes alike. The attribute digest covers the variable-length
strings that HDF5 keeps in its global heap, which has no checksum of its own (object headers,
B-trees and chunk indexes do in the v1.10 file format the writer uses).
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Per-dataset attribute holding its checksums: uint8 [n_samples, 32] for per-sample datasets
#: (one SHA-256 per row, verified when that row is read), uint8 [32] for whole datasets.
DIGEST_ATTR = "sha256"
#: Root attribute: SHA-256 over every attribute of the file (:func:`meta_digest`).
META_DIGEST_ATTR = "meta_sha256"
DIGEST_BYTES = 32
#: Datasets stored per sample (row i = sample i) and datasets read whole.
ROW_DATASETS = ("input", "input_spikes", "spikes", "activations", "potential", "ann_output")
WHOLE_DATASETS = ("labels", "weight", "bias")
ROOT_DATASETS = ("labels", "input", "input_spikes")
LAYER_DATASETS = ("spikes", "activations", "potential", "ann_output", "weight", "bias")


def row_digest(a) -> np.ndarray:
    """SHA-256 (uint8 [32]) of an array's values in C order, little-endian."""
    a = np.asarray(a)
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return np.frombuffer(hashlib.sha256(a.reshape(-1).view(np.uint8)).digest(), dtype=np.uint8)


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(8, "little") + b


def _canonical(value) -> bytes:
    """Unambiguous bytes of an attribute value as h5py returns it."""
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    arr = np.asarray(value)
    if arr.dtype.kind == "O":
        return b"o" + repr(arr.shape).encode() + b"".join(_lp(_canonical(x)) for x in arr.reshape(-1).tolist())
    if arr.dtype.kind == "U":
        return b"u" + repr(arr.shape).encode() + b"".join(_lp(x.encode("utf-8", "surrogatepass"))
                                                          for x in arr.reshape(-1).tolist())
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return b"a" + _lp(arr.dtype.str.encode()) + _lp(repr(arr.shape).encode()) + arr.tobytes()


def meta_digest(objects) -> np.ndarray:
    """SHA-256 (uint8 [32]) over ``objects``: (HDF5 path, {attribute: value}) pairs, in path
    order, every attribute but :data:`META_DIGEST_ATTR` in name order. The datasets' own
    checksums are included, which binds each dataset's values to its path: a link that
    points one layer's dataset at another's fails here even though the rows match."""
    h = hashlib.sha256()
    for path, attrs in sorted(objects, key=lambda o: o[0]):
        for name in sorted(attrs):
            if name == META_DIGEST_ATTR:
                continue
            h.update(_lp(path.encode()) + _lp(name.encode()) + _lp(_canonical(attrs[name])))
    return np.frombuffer(h.digest(), dtype=np.uint8)


def file_objects(f) -> list[tuple[str, dict]]:
    """(path, attributes) of the objects a trace's checksums cover, read from an open h5py
    file: the root, every layer group and every dataset the format defines (what the reader
    validates; the writer uses this on its own file)."""
    out = [("/", dict(f.attrs))]
    for key in ROOT_DATASETS:
        if key in f:
            out.append((key, dict(f[key].attrs)))
    if "layers" in f:
        for gname in f["layers"]:
            g = f["layers"][gname]
            out.append((f"layers/{gname}", dict(g.attrs)))
            for key in LAYER_DATASETS:
                if key in g:
                    out.append((f"layers/{gname}/{key}", dict(g[key].attrs)))
    return out
