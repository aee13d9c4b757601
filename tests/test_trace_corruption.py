"""Damaged traces: no command crashes, hangs or counts silently wrong (issue 13, traces).

Each case builds a bad file from a small synthetic trace (h5py edits, byte and bit flips), runs
``run_sim.py inspect`` and ``run_sim.py replay ... --samples 1`` and expects exit status 2, one
line on stderr naming the file and the field, no traceback, no output file. The CLI runs go
through :func:`run_cli_batch`: one interpreter imports the package once and forks one child per
command line, which runs ``run_sim.py`` as ``python run_sim.py`` would (an uncaught exception
prints a traceback and exits 1), so dozens of runs take seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from sim.errors import TraceFormatError
from sim.trace import integrity, open_trace
from sim.trace.shapes import model_layers
from sim.trace.synthetic import write_synthetic_trace

from conftest import REPO, run_cli

T = 4

_DRIVER = r"""
import json, os, runpy, sys, time, traceback
repo = sys.argv[1]
sys.path.insert(0, repo)
spec = json.loads(sys.stdin.read())
import sim.cli, sim.replay  # imported once; every child shares them
sim.cli.build_parser()  # and every command module
if spec["warm"]:  # numba kernels compiled (or loaded) once, before the children fork
    sim.replay.replay_document(spec["warm"], "all", ["snn", "ann"], "paper_v1_45nm", samples=1, progress=False)
run_sim = os.path.join(repo, "run_sim.py")
codes = []
for job in spec["jobs"]:
    pid = os.fork()
    if pid == 0:
        os.environ.update(job["env"])
        os.dup2(os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
        os.dup2(os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
        sys.argv = [run_sim, *job["argv"]]
        code = 0
        try:
            runpy.run_path(run_sim, run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    deadline = time.monotonic() + job["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            codes.append(os.waitstatus_to_exitcode(status))
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            codes.append("timeout")
            break
        time.sleep(0.003)
print(json.dumps(codes))
"""


@dataclass
class Run:
    argv: list
    returncode: int | str
    stdout: str
    stderr: str


def run_cli_batch(argvs, tmp: Path, env=None, timeout: float = 60, warm: Path | None = None) -> list[Run]:
    """``python run_sim.py ARGV`` for each argv (a list of str, or (argv, extra env)); returns
    exit status ("timeout" past ``timeout`` s), stdout and stderr of each."""
    tmp.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, item in enumerate(argvs):
        argv, extra = item if isinstance(item, tuple) else (item, {})
        jobs.append({"argv": [str(a) for a in argv], "env": {**(env or {}), **extra}, "timeout": timeout,
                     "out": str(tmp / f"{i}.out"), "err": str(tmp / f"{i}.err")})
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(REPO)], cwd=REPO, capture_output=True, text=True,
                          input=json.dumps({"jobs": jobs, "warm": str(warm) if warm else None}),
                          timeout=60 + timeout * len(jobs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return [Run(j["argv"], c, Path(j["out"]).read_text(), Path(j["err"]).read_text()) for j, c in zip(jobs, codes)]


def assert_one_line_rejection(run: Run, path, words=(), out: Path | None = None) -> str:
    """Exit 2, exactly one ``error:`` line naming ``path`` and every word, no traceback, no output."""
    where = f"{' '.join(run.argv)}\n--- stderr:\n{run.stderr}"
    assert run.returncode == 2, where
    assert "Traceback" not in run.stderr, where
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), where
    assert str(path) in lines[0], where
    for word in words:
        assert word in lines[0], f"'{word}' not in: {lines[0]}"
    if out is not None:
        assert not out.exists(), f"{out} written by a rejected run"
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temporary left behind"
    return lines[0]


def inspect_and_replay(path: Path, outdir: Path) -> list[list]:
    """The two command lines every bad trace is given (each with a JSON output to check)."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [["inspect", path, "--json", outdir / "inspect.json"],
            ["replay", path, "--samples", "1", "--quiet", "--json", outdir / "replay.json"]]


# -- building bad files ------------------------------------------------------------------------
def write_tiny(path: Path, n: int = 2, **kw) -> Path:
    layers, shape = model_layers("tiny", T)
    write_synthetic_trace(path, layers, shape, model="tiny", T=T, n_samples=n, rate=0.2, seed=7, **kw)
    return path


def reseal(path: Path) -> None:
    """Recompute a format-2 trace's checksums after an edit, as a buggy writer would: what must
    catch the edit is then the reader's semantic check, not its checksums."""
    with h5py.File(path, "r+") as f:
        paths = [k for k in integrity.ROOT_DATASETS if k in f]
        for g in f["layers"]:
            paths += [f"layers/{g}/{k}" for k in integrity.LAYER_DATASETS if k in f["layers"][g]]
        for p in paths:
            ds = f[p]
            if p.rsplit("/", 1)[-1] in integrity.ROW_DATASETS:
                ds.attrs["sha256"] = np.stack([integrity.row_digest(ds[i]) for i in range(ds.shape[0])])
            else:
                ds.attrs["sha256"] = integrity.row_digest(ds[()])
        f.attrs["meta_sha256"] = integrity.meta_digest(integrity.file_objects(f))


def write_v1(src: Path, dst: Path) -> Path:
    """``src`` as a version-1 file (no checksums) in HDF5's earliest file format, as written
    before format 2."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w", libver="earliest") as b:
        for k, v in a.attrs.items():
            if k not in ("meta_sha256", "twin_levels"):
                b.attrs[k] = v
        b.attrs["format_version"] = 1
        for k in a:
            a.copy(a[k], b, name=k)

        def strip(name, obj):
            for attr in ("sha256", "range"):
                if attr in obj.attrs:
                    del obj.attrs[attr]
        b.visititems(strip)
        prev = "input"   # format 3's graph attributes become format 1's chain
        for gname in sorted(b["layers"]):
            g = b["layers"][gname]
            for attr in ("inputs", "dilation", "neuron"):
                del g.attrs[attr]
            g.attrs["input_from"] = prev
            prev = g.attrs["name"]
    return dst


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("good") / "tiny.h5")


def copy_of(good: Path, tmp: Path, name: str) -> Path:
    dst = tmp / f"{name}.h5"
    shutil.copy(good, dst)
    return dst



# -- bad files: HDF5 errors of every type, loops, directories, links, checksums ------------------
def _runtime_error_byte(good, tmp):
    """A byte set in the root group's local heap (a version-1 file): h5py raises RuntimeError."""
    path = write_v1(good, tmp / "heap.h5")
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"HEAP") + 9] = 0xFF   # the heap's data-segment size
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError), h5py.File(path, "r") as f:
        "layers" in f  # noqa: B015 - what used to escape the reader
    return path, ["layers", "corrupt"]


def _self_soft_link(good, tmp):
    path = copy_of(good, tmp, "selflink")
    with h5py.File(path, "r+") as f:
        del f["layers/001_conv2/spikes"]
        f["layers/001_conv2/spikes"] = h5py.SoftLink("/layers/001_conv2/spikes")
    return path, ["layer conv2", "spikes"]


def _external_link(good, tmp):
    path = copy_of(good, tmp, "extlink")
    with h5py.File(path, "r+") as f:
        del f["layers/001_conv2/activations"]
        f["layers/001_conv2/activations"] = h5py.ExternalLink(str(good), "/layers/001_conv2/activations")
    return path, ["layer conv2", "activations", "external link"]


def _hidden_chunk_v1(good, tmp):
    """Version 1 (no checksums): a spikes chunk missing from the chunk index reads as zeros
    (what seven single bit flips in a chunk index did); the reader counts the stored chunks."""
    path = write_v1(good, tmp / "hidden.h5")
    with h5py.File(path, "r+") as f:
        p = "layers/001_conv2/spikes"
        data, attrs, chunks = f[p][()], dict(f[p].attrs), f[p].chunks
        del f[p]
        ds = f.create_dataset(p, shape=data.shape, dtype=data.dtype, chunks=chunks, compression="gzip")
        ds[0] = data[0]   # sample 1's chunk never stored
        for k, v in attrs.items():
            ds.attrs[k] = v
    return path, ["layer conv2", "spikes", "1 of its 2 chunks"]


def _directory(good, tmp):
    path = tmp / "adir.h5"
    path.mkdir()
    return path, ["is a directory, expected an HDF5 trace file"]


def _global_heap_loop(good, tmp):
    """A damaged size field of a global-heap object (the variable-length string 'little'):
    HDF5 2.0 loops forever reading the attributes (1.3 % of random byte mutations did this)."""
    path = copy_of(good, tmp, "loop")
    raw = bytearray(path.read_bytes())
    at = raw.index((6).to_bytes(8, "little") + b"little\0\0")
    raw[at:at + 8] = (1000).to_bytes(8, "little")
    path.write_bytes(bytes(raw))
    return path, ["did not finish", "within 1 s", "SIM_TRACE_OPEN_TIMEOUT"]


def _data_bit_unsealed(good, tmp):
    """One spike of sample 0 flipped in place, checksums left as written."""
    path = copy_of(good, tmp, "databit")
    with h5py.File(path, "r+") as f:
        s = f["layers/000_conv1/spikes"][0]
        s[0, 0] ^= 1
        f["layers/000_conv1/spikes"][0] = s
    return path, ["layer conv1", "spikes", "sample 0", "SHA-256"]


def _attribute_unsealed(good, tmp):
    path = copy_of(good, tmp, "attr")
    with h5py.File(path, "r+") as f:
        f["layers/002_pool1"].attrs["act_scale"] = 0.5
    return path, ["meta_sha256", "corrupt"]


def _data_linked_from_another_layer(good, tmp):
    """fc2's levels replaced by a link to fc1's (same shape): each row still matches the
    checksum that travelled with it, but the attribute digest binds checksums to paths."""
    from sim.trace import LayerSpec

    layers = [LayerSpec("fc1", "linear", (6,), (8,), act_scale=1 / T, has_bias=True),
              LayerSpec("fc2", "linear", (8,), (8,), act_scale=1 / T, has_bias=True),
              LayerSpec("fc3", "linear", (8,), (2,), output="potential", has_bias=True)]
    path = tmp / "fc.h5"
    write_synthetic_trace(path, layers, (6,), model="fc", T=T, n_samples=2, rate=0.3, seed=1)
    with h5py.File(path, "r+") as f:
        del f["layers/001_fc2/activations"]
        f["layers/001_fc2/activations"] = h5py.SoftLink("/layers/000_fc1/activations")
    return path, ["meta_sha256"]


BAD = {b.__name__.strip("_"): b for b in (
    _runtime_error_byte, _self_soft_link, _external_link, _hidden_chunk_v1, _directory, _global_heap_loop,
    _data_bit_unsealed, _attribute_unsealed, _data_linked_from_another_layer)}
ENV = {"global_heap_loop": {"SIM_TRACE_OPEN_TIMEOUT": "1"}}

# synth arguments the reader would reject, and the words of the one line refusing them
SYNTH = {"T-over-max": (["--model", "tiny", "--T", "100000"], ["--T", "65535"]),
         "memory": (["--model", "vgg16", "--T", "65535"], ["--T", "memory budget", "layer conv1"]),
         "samples": (["--model", "tiny", "--T", "4", "--samples", str(2**21)], ["--samples", "limit"]),
         "seed": (["--model", "tiny", "--T", "4", "--seed", "-3"], ["--seed"])}
FLIPS = 12


def _data_regions(path: Path) -> list[tuple[int, int]]:
    """(byte offset, byte count) of every stored chunk and contiguous dataset."""
    regions = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            if obj.chunks:
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    regions.append((info.byte_offset, info.size))
            elif obj.id.get_offset() is not None:
                regions.append((obj.id.get_offset(), obj.id.get_storage_size()))
        f.visititems(visit)
    return regions


def _flipped(good: Path, tmp: Path) -> dict[str, list[tuple[Path, int, int]]]:
    """FLIPS files with one random bit flipped in the stored data, FLIPS anywhere in the file."""
    raw, out = good.read_bytes(), {}
    regions = _data_regions(good)
    for where in ("data", "anywhere"):
        rng, files = random.Random(f"bitflip:{where}"), []
        for i in range(FLIPS):
            if where == "data":
                start, n = rng.choice(regions)
                offset = start + rng.randrange(n)
            else:
                offset = rng.randrange(len(raw))
            bit = rng.randrange(8)
            damaged = bytearray(raw)
            damaged[offset] ^= 1 << bit
            path = tmp / f"flip_{where}_{i}.h5"
            path.write_bytes(bytes(damaged))
            files.append((path, offset, bit))
        out[where] = files
    return out


@pytest.fixture(scope="module")
def cli(tmp_path_factory, good):
    """Every command line of this module, run in one batch: {key: (Run, output file)}."""
    tmp = tmp_path_factory.mktemp("cli")
    jobs, keys = [], []

    def add(key, argv, out, env=None, extra=()):
        keys.append((key, out, *extra))
        jobs.append((argv, env or {}))

    for name, build in BAD.items():
        case = tmp / name
        case.mkdir()
        path, words = build(good, case)
        for cmd, argv in zip(("inspect", "replay"), inspect_and_replay(path, case / "out")):
            add((name, cmd), argv, Path(argv[-1]), ENV.get(name), (path, words))
    (tmp / "synth").mkdir()
    for name, (argv, _) in SYNTH.items():
        add(("synth", name), ["synth", *argv, "--rate", "0.1", "--out", tmp / "synth" / "s.h5"], tmp / "synth" / "s.h5")
    add(("synth", "ok"), ["synth", "--model", "tiny", "--T", "300", "--rate", "0.01", "--samples", "1",
                          "--out", tmp / "s300.h5"], tmp / "s300.h5")
    v1 = write_v1(good, tmp / "v1.h5")
    add(("v1", "inspect"), ["inspect", v1, "--json", tmp / "v1_inspect.json"], tmp / "v1_inspect.json")
    add(("v1", "replay"), ["replay", v1, "--arch", "all", "--quiet", "--json", tmp / "v1.json"], tmp / "v1.json")
    add(("base", "replay"), ["replay", good, "--arch", "all", "--quiet", "--json", tmp / "base.json"], tmp / "base.json")
    add(("base", "inspect"), ["inspect", good, "--json", tmp / "base_inspect.json"], tmp / "base_inspect.json")
    flips = _flipped(good, tmp)
    for where, files in flips.items():
        for i, (path, offset, bit) in enumerate(files):
            for cmd in ("replay", "inspect"):
                out = tmp / f"flip_{where}_{i}_{cmd}.json"
                argv = ["replay", path, "--arch", "all", "--quiet", "--json", out] if cmd == "replay" else \
                    ["inspect", path, "--json", out]
                add(("flip", where, i, cmd), argv, out)
    runs = run_cli_batch(jobs, tmp / "runs", timeout=60, warm=good)
    result = {key: (run, *rest) for (key, *rest), run in zip(keys, runs)}
    result["flips"] = flips
    return result


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("command", ["inspect", "replay"])
def test_a_bad_trace_gives_one_line_naming_file_and_field(cli, name, command):
    run, out, path, words = cli[(name, command)]
    assert_one_line_rejection(run, path, words, out)


def test_bounded_read_kills_a_child_that_never_returns_and_names_the_field(tmp_path):
    from sim.trace import guard

    path = tmp_path / "any.h5"
    path.write_bytes(b"x")

    def loops(p, where):
        where("layer conv9: kind")
        while True:
            pass

    with pytest.raises(TraceFormatError, match=r"layer conv9: kind: the HDF5 library did not finish"):
        guard.bounded(str(path), loops, timeout=0.3)

    def crashes(p, where):
        where("layer_names")
        os.kill(os.getpid(), 11)

    with pytest.raises(TraceFormatError, match=r"layer_names: the HDF5 library failed .*signal 11"):
        guard.bounded(str(path), crashes, timeout=5)


def test_a_file_held_open_for_writing_is_reported_as_locked(good, tmp_path):
    path = copy_of(good, tmp_path, "locked")
    with h5py.File(path, "a"):
        res = run_cli("inspect", path, env={**os.environ, "HDF5_USE_FILE_LOCKING": "TRUE"})
    if res.returncode == 0:
        pytest.skip("HDF5 file locking is disabled on this file system")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "locked by another process" in lines[0], res.stderr


def _counts(path: Path) -> dict:
    """A report or inspect document without the fields that name the file."""
    doc = json.loads(path.read_text())
    for run in [doc, *doc.get("runs", [])]:
        if isinstance(run, dict):
            run.pop("trace", None)
    return doc


@pytest.mark.parametrize("where", ["data", "anywhere"])
def test_single_bit_flips_are_rejected_or_change_nothing(cli, where):
    """One bit flipped at random per file, in the stored data (every chunk and contiguous
    dataset) or anywhere in the file: every replay (all samples, all architectures) and every
    inspect exits 2 with one line, or gives exactly the undamaged file's result — never other
    counts, never a traceback. Replay never reads the weights, so a flip there leaves its
    counts alone; inspect reads every stored value."""
    base = {cmd: _counts(cli[("base", cmd)][1]) for cmd in ("replay", "inspect")}
    rejected = {"replay": 0, "inspect": 0}
    for i, (path, offset, bit) in enumerate(cli["flips"][where]):
        for cmd in ("replay", "inspect"):
            run, out = cli[("flip", where, i, cmd)]
            if run.returncode == 2:
                assert_one_line_rejection(run, path, out=out)
                rejected[cmd] += 1
            else:
                assert run.returncode == 0, f"{cmd}, bit {bit} of byte {offset}: {run.stderr}"
                assert _counts(out) == base[cmd], f"{cmd}: bit {bit} of byte {offset} changed the result"
    if where == "data":   # the stored data is all covered by checksums that inspect reads
        assert rejected["inspect"] >= FLIPS - 2, rejected


# -- writing: refuse before, verify after ----------------------------------------------------------
@pytest.mark.parametrize("case", list(SYNTH))
def test_synth_refuses_what_the_reader_would_reject_before_writing(cli, case):
    run, out = cli[("synth", case)]
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in SYNTH[case][1]), run.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_synth_output_passes_the_readers_full_validation(cli):
    run, out = cli[("synth", "ok")]
    assert run.returncode == 0, run.stderr
    with open_trace(out) as tr:   # 300 levels need 9 bits: uint16 levels
        assert tr.meta.ann_activation_bits == 9 and tr.format_version == 3
        tr.verify()


def test_the_writer_verifies_the_file_and_leaves_nothing_when_the_reader_rejects_it(tmp_path, monkeypatch):
    import sim.trace.reader

    def rejects(self, samples=None, events=True):
        raise TraceFormatError(self.path, "layer conv2: activations", "sample 1: planted violation")

    monkeypatch.setattr(sim.trace.reader.Trace, "verify", rejects)
    path = tmp_path / "t.h5"
    with pytest.raises(TraceFormatError) as err:
        write_tiny(path)
    assert str(err.value).startswith(f"{path}: layer conv2: activations: the written trace fails validation")
    assert list(tmp_path.iterdir()) == []


# -- version 1 stays readable ------------------------------------------------------------------
def test_a_version_1_file_without_checksums_is_read_and_counts_the_same(cli):
    for cmd in ("inspect", "replay"):
        assert cli[("v1", cmd)][0].returncode == 0, cli[("v1", cmd)][0].stderr
    info = json.loads(cli[("v1", "inspect")][1].read_text())
    assert info["format_version"] == 1 and info["checksums"] == "none (format v1 file)"
    assert info["twin_levels"] == "spike_counts"   # written by sim.trace.synthetic
    assert _counts(cli[("v1", "replay")][1]) == _counts(cli[("base", "replay")][1])
