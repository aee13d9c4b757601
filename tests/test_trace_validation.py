"""One malformed file per validation rule: each raises TraceFormatError naming file, layer, field."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from sim.errors import TraceFormatError
from sim.trace import open_trace

from conftest import BUNDLED_TINY, run_cli

LAYERS = "layers"


def _set(path, key, value):
    def mutate(f):
        grp, _, attr = key.rpartition("/")
        f[grp or "/"].attrs[attr] = value
    return mutate


def _del_attr(key):
    def mutate(f):
        grp, _, attr = key.rpartition("/")
        del f[grp or "/"].attrs[attr]
    return mutate


def _replace_dataset(key, fn):
    def mutate(f):
        ds = f[key]
        data, attrs = ds[()], dict(ds.attrs)
        del f[key]
        new = fn(data)
        f.create_dataset(key, data=new)
        for k, v in attrs.items():
            f[key].attrs[k] = v
    return mutate


def _del(key):
    def mutate(f):
        del f[key]
    return mutate


C1 = f"{LAYERS}/000_conv1"
C2 = f"{LAYERS}/001_conv2"
P1 = f"{LAYERS}/002_pool1"
FC1 = f"{LAYERS}/004_fc1"

# (rule id, mutation, words the one-line message must contain)
RULES = [
    ("format-name", _set(None, "format", "something-else"), ["format"]),
    ("format-version", _set(None, "format_version", 99), ["format_version", "99"]),
    ("missing-T", _del_attr("T"), ["T", "missing"]),
    ("T-type", _set(None, "T", "six"), ["T", "type"]),
    ("T-positive", _set(None, "T", 0), ["T", ">= 1"]),
    ("n-samples", _set(None, "n_samples", 0), ["n_samples"]),
    ("encoding", _set(None, "encoding", "phase"), ["encoding"]),
    ("neuron-json", _set(None, "neuron", '{"type": "IF", "tau": 3}'), ["neuron"]),
    ("ann-bits", _set(None, "ann_activation_bits", 0), ["ann_activation_bits"]),
    ("input-shape", _set(None, "input_shape", np.array([2, 0, 8])), ["input_shape"]),
    ("labels-shape", _replace_dataset("labels", lambda d: d[:-1]), ["labels", "shape"]),
    ("labels-dtype", _replace_dataset("labels", lambda d: d.astype(np.float32)), ["labels", "dtype"]),
    ("layer-count", _set(None, "layer_names", np.array(["conv1"], dtype=h5py.string_dtype())), ["layer_names"]),
    ("layer-order", _set(None, "layer_names", np.array(["conv2", "conv1", "pool1", "flatten", "fc1", "fc2"],
                                                       dtype=h5py.string_dtype())), ["layer_names"]),
    ("layer-kind", _set(None, f"{C2}/kind", "conv3d"), ["layer conv2", "kind"]),
    ("layer-output", _set(None, f"{C2}/output", "bursts"), ["layer conv2", "output"]),
    ("layer-missing-attr", _del_attr(f"{P1}/stride"), ["layer pool1", "stride", "missing"]),
    ("input-from", _set(None, f"{C2}/input_from", "pool1"), ["layer conv2", "input_from"]),
    ("shape-chain", _set(None, f"{C2}/input_shape", np.array([5, 8, 8])), ["layer conv2", "input_shape", "previous"]),
    ("geometry", _set(None, f"{P1}/stride", np.array([1, 1])), ["layer pool1", "output_shape", "geometry"]),
    ("groups", _set(None, f"{C2}/groups", 3), ["layer conv2", "groups"]),
    ("spikes-missing", _del(f"{C1}/spikes"), ["layer conv1", "spikes", "missing"]),
    ("spikes-T", _replace_dataset(f"{C2}/spikes", lambda d: d[:, :3]), ["layer conv2", "spikes", "T=3"]),
    ("spikes-dtype", _replace_dataset(f"{C2}/spikes", lambda d: d.astype(np.int32)), ["layer conv2", "spikes", "dtype"]),
    ("spikes-shape", _replace_dataset(f"{C2}/spikes", lambda d: d[:, :, :-1]), ["layer conv2", "spikes", "shape"]),
    ("spikes-bitorder", _set(None, f"{C2}/spikes/bitorder", "big"), ["layer conv2", "bitorder"]),
    ("activations-shape", _replace_dataset(f"{FC1}/activations", lambda d: d[:, :-1]), ["layer fc1", "activations"]),
    ("activations-dtype", _replace_dataset(f"{FC1}/activations", lambda d: d.astype(np.float64)), ["layer fc1", "activations", "dtype"]),
    ("weight-shape", _replace_dataset(f"{C1}/weight", lambda d: d[:-1]), ["layer conv1", "weight", "shape"]),
    ("weight-scale", _del_attr(f"{C1}/weight/scale"), ["layer conv1", "weight.scale"]),
    ("input-shape-data", _replace_dataset("input", lambda d: d[:, :1]), ["input", "shape"]),
]


@pytest.fixture
def trace_copy(tmp_path):
    dst = tmp_path / "bad.h5"
    shutil.copy(BUNDLED_TINY, dst)
    return dst


@pytest.mark.parametrize("rule,mutate,words", RULES, ids=[r[0] for r in RULES])
def test_each_violation_names_file_layer_and_field(trace_copy, rule, mutate, words):
    with h5py.File(trace_copy, "r+") as f:
        mutate(f)
    with pytest.raises(TraceFormatError) as err:
        open_trace(trace_copy)
    msg = str(err.value)
    assert str(trace_copy) in msg
    for word in words:
        assert word in msg, f"{rule}: '{word}' not in '{msg}'"


def test_bundled_trace_is_valid():
    with open_trace(BUNDLED_TINY) as tr:
        assert tr.T == 4 and tr.n_samples == 8


def test_not_hdf5_and_truncated_and_missing(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("this is not HDF5\n")
    data = BUNDLED_TINY.read_bytes()
    for cut in (100, len(data) // 2, len(data) - 1):
        trunc = tmp_path / f"trunc{cut}.h5"
        trunc.write_bytes(data[:cut])
        with pytest.raises(TraceFormatError, match="trunc"):
            open_trace(trunc)
    with pytest.raises(TraceFormatError, match="not a readable HDF5"):
        open_trace(junk)
    with pytest.raises(TraceFormatError, match="does not exist"):
        open_trace(tmp_path / "nope.h5")


def test_corrupt_chunk_is_reported_when_streamed(trace_copy):
    """Damage inside a compressed chunk passes the structural check but fails on read, cleanly."""
    with h5py.File(trace_copy, "r") as f:
        offset = f[C2]["spikes"].id.get_chunk_info(0).byte_offset
    raw = bytearray(trace_copy.read_bytes())
    raw[offset:offset + 16] = b"\xff" * 16
    trace_copy.write_bytes(bytes(raw))
    with open_trace(trace_copy) as tr:
        with pytest.raises(TraceFormatError, match="layer conv2: spikes"):
            tr.spikes("conv2", 0)


@pytest.mark.parametrize("rule,mutate,words", [RULES[18], RULES[22]], ids=["shape-chain", "spikes-T"])
def test_cli_exits_2_with_one_line(trace_copy, rule, mutate, words):
    with h5py.File(trace_copy, "r+") as f:
        mutate(f)
    res = run_cli("inspect", trace_copy)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert all(w in lines[0] for w in words)
    assert res.stdout == ""


def test_cli_exit_2_for_truncated_and_non_hdf5(tmp_path):
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(BUNDLED_TINY.read_bytes()[:5000])
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00" * 1000)
    for path in (trunc, junk):
        res = run_cli("inspect", path)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1 and str(path) in res.stderr
