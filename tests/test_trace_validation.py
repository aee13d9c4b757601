"""One malformed file per validation rule: each raises TraceFormatError naming file, layer, field."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from sim.errors import TraceFormatError
from sim.trace import open_trace

from conftest import BUNDLED_TINY, REPO, run_cli
from test_trace_corruption import assert_one_line_rejection, inspect_and_replay, reseal, run_cli_batch, write_tiny

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


BUNDLED = sorted(p.name for p in (REPO / "traces").glob("*.h5"))


def _expected_output(kind, in_shape, attrs, weight_shape):
    """The output shape from the geometry, derived here (not with sim.trace.schema)."""
    if kind == "flatten":
        return (math.prod(in_shape),)
    if kind == "linear":
        return (weight_shape[0],) if weight_shape else tuple(attrs["output_shape"])
    if kind == "add":
        return tuple(in_shape)
    (kh, kw), (sh, sw), (ph, pw) = attrs["kernel"], attrs["stride"], attrs["padding"]
    dy, dx = attrs["dilation"] if "dilation" in attrs and len(attrs["dilation"]) else (1, 1)
    c, h, w = in_shape
    channels = c if kind in ("avgpool", "maxpool") else (weight_shape[0] if weight_shape else int(attrs["output_shape"][0]))
    return (channels, (h + 2 * ph - dy * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dx * (kw - 1) - 1) // sw + 1)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_trace_is_valid(name):
    """Every bundled trace satisfies the format, checked here with plain h5py, numpy and
    hashlib rather than with the reader: the shapes chain (format 3: every input an earlier
    layer of the layer's input shape) and match the geometry, spikes have no padding bits set,
    every neuron's spike count over T equals its level (twin_levels = spike_counts; none stored
    when derived), levels lie in 0..T, floats are finite, weights fit weight_bits, and every
    stored SHA-256 is the digest of its row; then the reader's own full validation agrees."""
    path = REPO / "traces" / name
    with h5py.File(path, "r") as f:
        a = f.attrs
        version = int(a["format_version"])
        assert a["format"] == "snn-energy-trace" and version in (2, 3)
        assert a["twin_levels"] in (("spike_counts", "derived") if version == 3 else ("spike_counts",))
        T, n, wbits = int(a["T"]), int(a["n_samples"]), int(a["weight_bits"])
        shape = tuple(int(x) for x in a["input_shape"])
        shapes = {"input": shape}
        assert f["input"].dtype == np.float32 and np.isfinite(f["input"][()]).all()
        for i, lname in enumerate(x.decode() if isinstance(x, bytes) else x for x in a["layer_names"]):
            g = f["layers"][f"{i:03d}_{lname}"]
            kind, out = g.attrs["kind"], tuple(int(x) for x in g.attrs["output_shape"])
            if version == 3:
                inputs = json.loads(g.attrs["inputs"])
                assert inputs and all(src in shapes for src in inputs), lname   # earlier layers: acyclic
                assert len(inputs) >= 2 if kind == "add" else len(inputs) == 1, lname
                shape = shapes[inputs[0]]
                assert all(shapes[src] == shape for src in inputs), lname
            assert tuple(int(x) for x in g.attrs["input_shape"]) == shape, lname
            wshape = g["weight"].shape if "weight" in g else None
            assert out == _expected_output(kind, shape, g.attrs, wshape), lname
            if wshape:
                w = g["weight"][()]
                assert -(2 ** (wbits - 1)) <= w.min() and w.max() <= 2 ** (wbits - 1) - 1
                assert np.isfinite(g["bias"][()]).all() and np.isfinite(g["weight"].attrs["scale"])
            neurons = math.prod(out)
            if g.attrs["output"] == "spikes":
                packed = g["spikes"][()]
                assert packed.shape == (n, T, -(-neurons // 8)) and packed.dtype == np.uint8
                bits = np.unpackbits(packed, axis=2, bitorder="little")
                assert not bits[:, :, neurons:].any(), f"{lname}: padding bits set"
                if a["twin_levels"] == "derived":
                    assert "activations" not in g, lname
                else:
                    levels = g["activations"][()].reshape(n, neurons)
                    assert levels.max() <= T
                    assert np.array_equal(bits[:, :, :neurons].sum(axis=1), levels), f"{lname}: count != level"
            elif g.attrs["output"] == "potential":
                assert np.isfinite(g["potential"][()]).all() and np.isfinite(g["ann_output"][()]).all()
            shape = shapes[lname] = out

        def digests_match(name_, obj):
            if isinstance(obj, h5py.Dataset):
                stored, data = obj.attrs["sha256"], obj[()]
                rows = [data] if stored.ndim == 1 else list(data)
                got = [hashlib.sha256(np.ascontiguousarray(r).tobytes()).digest() for r in rows]
                assert got == [bytes(d) for d in stored.reshape(len(rows), 32)], name_
        f.visititems(digests_match)
    with open_trace(path) as tr:
        tr.verify()


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


# -- semantic checks, end to end ------------------------------------------------------------------
# Each case edits a small synthetic trace with h5py and then recomputes its checksums (as a buggy
# writer would), so that what rejects it is the semantic check named, not a checksum. inspect and
# replay --samples 1 must both exit 2 with one line naming the file and the field, and write nothing.


def _attr(key, value):
    def edit(f):
        grp, _, name = key.rpartition("/")
        f[grp or "/"].attrs[name] = value
    return edit


def _neuron(**change):
    """Change the neuron model of the first layer (format 3 keeps one per layer)."""
    def edit(f):
        g = f[C1]
        g.attrs["neuron"] = json.dumps({**json.loads(g.attrs["neuron"]), **change})
    return edit


def _row(key, fn, sample=0):
    def edit(f):
        row = f[key][sample]
        fn(row)
        f[key][sample] = row
    return edit


def _retype(key, dtype):
    def edit(f):
        data, attrs = f[key][()], dict(f[key].attrs)
        del f[key]
        f.create_dataset(key, data=data.astype(dtype))
        for k, v in attrs.items():
            f[key].attrs[k] = v
    return edit


def _set_level(row):
    row.reshape(-1)[5] = 5          # T = 4


def _flip_first_spike(row):
    t, byte = np.argwhere(row)[0]   # a step and byte with a spike: count and level now differ
    row[t, byte] = int(row[t, byte]) & (int(row[t, byte]) - 1)   # its lowest spike cleared


def _nan(row):
    row.reshape(-1)[3] = np.nan


def _inf(row):
    row.reshape(-1)[0] = np.inf


def _huge(width, T_=None):
    """fc1 declared ``width`` neurons wide (and T changed), every attribute and dataset shape
    consistent with it; the datasets stay empty (HDF5 stores no chunk), weights dropped."""
    def edit(f):
        T_new = T_ if T_ is not None else int(f.attrs["T"])
        f.attrs["T"] = T_new
        for g in list(f["layers"].values()):
            for key in ("weight", "bias"):
                if key in g:
                    del g[key]
        f["layers/004_fc1"].attrs["output_shape"] = np.array([width])
        f["layers/005_fc2"].attrs["input_shape"] = np.array([width])
        for g in f["layers"].values():
            if g.attrs["output"] != "spikes":
                continue
            neurons = int(np.prod(g.attrs["output_shape"]))
            for key, shape, dtype in (("spikes", (2, T_new, -(-neurons // 8)), np.uint8),
                                      ("activations", (2, *g.attrs["output_shape"]), np.uint8)):
                attrs = dict(g[key].attrs)
                del g[key]
                ds = g.create_dataset(key, shape=shape, dtype=dtype, chunks=(1, *[min(s, 1024) for s in shape[1:]]))
                for k, v in attrs.items():
                    ds.attrs[k] = v
    return edit


def _pad_trace(path):
    """A trace whose fc1 has 10 neurons: its packed spikes carry 6 padding bits per step."""
    from sim.trace import LayerSpec
    from sim.trace.synthetic import write_synthetic_trace

    layers = [LayerSpec("conv1", "conv2d", (1, 5, 5), (3, 5, 5), (3, 3), (1, 1), (1, 1), act_scale=1 / 3, has_bias=True),
              LayerSpec("flatten", "flatten", (3, 5, 5), (75,), output="passthrough"),
              LayerSpec("fc1", "linear", (75,), (10,), act_scale=1 / 3, has_bias=True),
              LayerSpec("fc2", "linear", (10,), (3,), output="potential", has_bias=True)]
    write_synthetic_trace(path, layers, (1, 5, 5), model="pad", T=3, n_samples=2, rate=0.3, seed=3)
    return path


def _set_padding(f):
    row = f["layers/002_fc1/spikes"][0]
    row[:, -1] |= 0b11111100
    f["layers/002_fc1/spikes"][0] = row


C1, C2, P1, FC1, FC2 = "layers/000_conv1", "layers/001_conv2", "layers/002_pool1", "layers/004_fc1", "layers/005_fc2"
# (case, edit, words of the one line); every case runs on the tiny trace unless it is "padding-bits"
SEMANTIC = [
    ("description-not-a-string", _attr("description", np.int64(5)), ["description"]),
    ("neuron-nan", lambda f: f.attrs.__setitem__("neuron", '{"type": "IF", "threshold": NaN, "reset": "subtract", "leak": 0.0}'),
     ["neuron", "finite"]),
    ("neuron-null", _attr("neuron", "null"), ["neuron", "JSON object"]),
    ("neuron-unknown-type", _neuron(type="Izhikevich"), ["neuron", "Izhikevich"]),
    ("lif-with-exact-twin", _neuron(type="LIF", leak=0.1), ["twin_levels", "LIF"]),
    ("input-float16", _retype("input", np.float16), ["input", "float16"]),
    ("input-missing", lambda f: f.__delitem__("input"), ["input", "missing"]),
    ("input-nan", _row("input", _nan), ["input", "sample 0", "non-finite"]),
    ("potential-inf", _row(f"{FC2}/potential", _inf), ["layer fc2", "potential", "non-finite"]),
    ("bias-nan", _row(f"{C1}/bias", _nan, sample=slice(None)), ["layer conv1", "bias", "non-finite"]),
    ("weight-scale-nan", _attr(f"{C1}/weight/scale", np.nan), ["layer conv1", "weight.scale", "finite"]),
    ("act-scale-inf", _attr(f"{P1}/act_scale", np.inf), ["layer pool1", "act_scale", "finite"]),
    ("weights-wider-than-weight-bits", _attr("weight_bits", np.int64(4)), ["layer conv1", "weight.range", "4-bit"]),
    ("weights-of-one-layer-missing", lambda f: (f.__delitem__(f"{C2}/weight"), f.__delitem__(f"{C2}/bias")),
     ["layer conv2", "weight", "missing"]),
    ("has-bias-on-a-pool", _attr(f"{P1}/has_bias", np.bool_(True)), ["layer pool1", "has_bias"]),
    ("labels-below-minus-1", lambda f: f["labels"].__setitem__(0, -5), ["labels", "-5"]),
    ("rate-without-input-spikes", _attr("encoding", "rate"), ["input_spikes", "missing"]),
    ("level-above-T", _row(f"{C2}/activations", _set_level), ["layer conv2", "activations", "outside 0..4"]),
    ("count-differs-from-level", _row(f"{C2}/spikes", _flip_first_spike),
     ["layer conv2", "activations", "spike count", "twin_levels"]),
    ("huge-layer", _huge(2**27), ["layer fc1", "output_shape", "67108864"]),
    ("over-memory-budget", _huge(2**25, T_=32), ["layer fc1", "output_shape", "memory budget"]),
    ("padding-bits", _set_padding, ["layer fc1", "spikes", "padding bits"]),
]


@pytest.fixture(scope="module")
def semantic_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("semantic")
    tiny, pad = write_tiny(tmp / "tiny.h5"), _pad_trace(tmp / "pad.h5")
    jobs, cases = [], {}
    for case, edit, words in SEMANTIC:
        path = tmp / f"{case}.h5"
        shutil.copy(pad if case == "padding-bits" else tiny, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        reseal(path)
        argvs = inspect_and_replay(path, tmp / case)
        cases[case] = (path, words, len(jobs), [Path(a[-1]) for a in argvs])
        jobs += argvs
    runs = run_cli_batch(jobs, tmp / "runs")
    return {case: (path, words, runs[i:i + 2], outs) for case, (path, words, i, outs) in cases.items()}


@pytest.mark.parametrize("case", [c[0] for c in SEMANTIC])
def test_a_semantic_violation_gives_one_line_from_inspect_and_replay(semantic_runs, case):
    path, words, runs, outs = semantic_runs[case]
    for run, out in zip(runs, outs):
        assert_one_line_rejection(run, path, words, out)
