"""Large traces: read and written sample by sample in flat memory, with progress on stderr.

Memory itself is measured by benchmarks/test_set_speed.py (peak RSS of whole runs); here the
mechanisms are checked: the reader's file has no HDF5 chunk cache (HDF5's default 1 MiB per
dataset grew the process by about a sample's events per sample read), a dataset chunked over
several samples gets a cache of one chunk and reads the same values and counts, and synth,
record and the verification pass show samples/s bars on stderr (hidden off a terminal and
under --quiet).
"""

from __future__ import annotations

import io
import sys

import h5py
import numpy as np
import pytest

from sim.trace import open_trace
from sim.trace.integrity import ROW_DATASETS


def _synth(path, n=6, model="tiny", T=4, **kw):
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    layers, input_shape = model_layers(model, T)
    write_synthetic_trace(path, layers, input_shape, model=model, T=T, n_samples=n, rate=0.2, seed=3, **kw)
    return path


def _row_datasets(f) -> list[str]:
    out = []
    f.visititems(lambda name, o: out.append(name) if isinstance(o, h5py.Dataset)
                 and name.rsplit("/", 1)[-1] in ROW_DATASETS else None)
    return out


def test_reader_keeps_no_chunk_cache(tmp_path):
    path = _synth(tmp_path / "t.h5")
    with open_trace(path) as tr:
        assert tr._f.id.get_access_plist().get_cache()[2] == 0   # rdcc_nbytes: no chunk cache
        for i in range(tr.n_samples):                            # one chunk per sample row: never re-read
            for layer in tr.layers:
                if layer.output == "spikes":
                    tr.spikes(layer.name, i)
                    tr.activations(layer.name, i)
        for path_, ds in tr._ds.items():
            if ds.chunks is not None and path_.rsplit("/", 1)[-1] in ROW_DATASETS:
                assert ds.chunks[0] == 1


def _rechunk(src, dst, rows: int) -> None:
    """A copy of trace ``src`` whose per-sample datasets are chunked ``rows`` samples a chunk
    (another writer's choice; the checksums cover values and attributes, not the layout)."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w", libver=("v110", "v110")) as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                grp = g.require_group(name)
                for k, v in obj.attrs.items():
                    grp.attrs[k] = v
                return
            if name.rsplit("/", 1)[-1] in ROW_DATASETS and obj.chunks is not None:
                ds = g.create_dataset(name, data=obj[()], chunks=(rows, *obj.shape[1:]), compression="gzip")
            else:
                ds = g.create_dataset(name, data=obj[()], chunks=obj.chunks,
                                      compression=obj.compression, compression_opts=obj.compression_opts)
            for k, v in obj.attrs.items():
                ds.attrs[k] = v
        f.visititems(copy)


def test_multi_sample_chunks_get_one_chunk_of_cache_and_read_the_same(tmp_path):
    from sim.arch.energy import PAPER_V1_TABLE, load_energy_table
    from sim.arch.spec import load_arch_spec
    from sim.replay import replay_specs

    src = _synth(tmp_path / "t.h5", n=7)
    dst = tmp_path / "rechunked.h5"
    _rechunk(src, dst, rows=3)
    with h5py.File(dst, "r") as f:
        assert all(f[n].chunks[0] == 3 for n in _row_datasets(f) if f[n].chunks)
    with open_trace(src) as a, open_trace(dst) as b:
        a.verify()
        b.verify()
        for i in range(a.n_samples):
            for layer in a.layers:
                if layer.output == "spikes":
                    assert np.array_equal(a.spikes_packed(layer.name, i), b.spikes_packed(layer.name, i))
                    assert np.array_equal(a.activations(layer.name, i), b.activations(layer.name, i))
        chunked = [ds for p, ds in b._ds.items() if ds.chunks is not None and ds.chunks[0] == 3]
        assert chunked
        for ds in chunked:   # the cache holds one chunk, decoded once for its three samples
            nbytes = int(np.prod(ds.chunks)) * ds.dtype.itemsize
            assert ds.id.get_access_plist().get_chunk_cache()[1] == nbytes
        table = load_energy_table(PAPER_V1_TABLE)
        specs = [load_arch_spec(n) for n in ("memory_hierarchy", "neuromorphic", "spatial_dataflow")]
        want = replay_specs(a, specs, ["snn", "ann"], table, progress=False)
        got = replay_specs(b, specs, ["snn", "ann"], table, progress=False)
    for r, s in zip(want, got):
        assert (r["counts"], r["cycles"]) == (s["counts"], s["cycles"])


def test_event_stats_progress_changes_nothing(tmp_path):
    from sim.analytic.layer_stats import trace_event_stats

    path = _synth(tmp_path / "t.h5", n=4)
    with open_trace(path) as tr:
        a, b = trace_event_stats(tr), trace_event_stats(tr, progress=True)
    assert [x.as_dict() for x in a] == [x.as_dict() for x in b]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_synth_bars_show_samples_per_second_on_a_terminal(tmp_path, monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    _synth(tmp_path / "a.h5", n=3, progress=True)
    text = err.getvalue()
    assert "synth" in text and "verify" in text and "sample/s" in text and "/3" in text
    from sim.trace.writer import sample_bar

    bar = sample_bar(3, "x")
    assert not bar.disable and bar.unit == "sample"
    bar.close()
    err.truncate(0)
    err.seek(0)
    _synth(tmp_path / "b.h5", n=3, progress=False)
    assert err.getvalue() == ""


def test_bars_are_hidden_off_a_terminal(tmp_path, monkeypatch):
    from sim.trace.writer import sample_bar

    err = io.StringIO()   # not a TTY: tqdm stays silent
    monkeypatch.setattr(sys, "stderr", err)
    _synth(tmp_path / "a.h5", n=3, progress=True)
    assert err.getvalue() == ""
    assert sample_bar(3, "x", enabled=False) is None
    bar = sample_bar(3, "x")
    assert bar.disable
    bar.close()


def test_synth_and_record_take_quiet():
    from sim.cli import build_parser

    p = build_parser()
    assert p.parse_args(["synth", "--model", "tiny", "--T", "4", "--rate", "0.1", "--out", "x.h5",
                         "--quiet"]).quiet
    args = p.parse_args(["record", "ck.pt", "--samples", "2", "--out", "x.h5", "--quiet"])
    assert args.no_progress
    assert p.parse_args(["record", "ck.pt", "--samples", "2", "--out", "x.h5", "--no-progress"]).no_progress


def test_synth_cli_writes_the_same_file_quiet_or_not(tmp_path):
    from sim.cli import main

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert main(["synth", "--model", "tiny", "--T", "4", "--rate", "0.2", "--samples", "3", "--out", str(a)]) == 0
    assert main(["synth", "--model", "tiny", "--T", "4", "--rate", "0.2", "--samples", "3", "--out", str(b),
                 "--quiet"]) == 0
    with open_trace(a) as x, open_trace(b) as y:
        for i in range(3):
            for layer in x.layers:
                if layer.output == "spikes":
                    assert np.array_equal(x.spikes_packed(layer.name, i), y.spikes_packed(layer.name, i))


@pytest.mark.parametrize("n", [1, 5])
def test_writer_keeps_per_sample_checksums_only(tmp_path, n):
    """What the writer holds per sample: a label, a written flag, 32 bytes of SHA-256 per row."""
    from sim.trace.shapes import model_layers
    from sim.trace.schema import TraceMeta
    from sim.trace.writer import TraceWriter

    layers, input_shape = model_layers("tiny", 4)
    meta = TraceMeta(model="tiny", dataset="x", T=4, n_samples=n, input_shape=input_shape)
    w = TraceWriter(tmp_path / "w.h5", meta, layers)
    try:
        held = sum(d.nbytes + wr.nbytes for d, wr, _ in w._rows.values()) + w._labels.nbytes + w._written.nbytes
        rows = len(w._rows)
        assert held == n * (rows * 33 + 8 + 1)
    finally:
        w.abort()
