"""Sample-parallel replay (sim.replay.parallel, docs/parallel.md): the chunks' states merged
equal the serial replay exactly — every report field, for every bundled trace, architecture,
mode and chunking, on mappings with spills, paging and folds too — and a chunk that cannot be
counted (its worker killed every time it runs it, bad input, a trace changed under the run)
fails the whole replay with one line and writes nothing; a worker killed once costs a retry,
not a sample."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

import sim.replay.parallel as parallel
from sim.arch.energy import load_energy_table
from sim.arch.registry import architecture_names
from sim.arch.spec import load_arch_spec
from sim.cli import main
from sim.replay import count_runs, replay_document, start_sessions, trace_info
from sim.replay.parallel import Chunk, ReplayFailed, chunk_bounds, count_chunk, count_states, merge_states
from sim.report import build_report
from sim.trace import open_trace
from sim.workload import Workload

from conftest import REPO, run_cli

TRACES = {"tiny_synth_T4": 8, "tiny_resnet_T4": 4, "digits_snn_T6": 12}  # samples replayed (all, or 12)
TABLE = load_energy_table("paper_v1_45nm")
MODES = ("snn", "ann")
# mappings off the default path: spills and a time-major loop order, paged chip configurations,
# folds that take turns on the chip, per-hop delivery
VARIANTS = {
    "memory_hierarchy_spills": ("memory_hierarchy", ["components.global_buffer.capacity_bytes=512"]),
    "memory_hierarchy_time_major": ("memory_hierarchy", ["mapping.loop_order=time_major",
                                                         "components.global_buffer.capacity_bytes=2048"]),
    "neuromorphic_segments": ("neuromorphic", ["components.noc.width=2", "components.noc.height=2",
                                               "components.neuron_memory.capacity_bytes=96",
                                               "mapping.placement=nearest", "mapping.io_x=1", "mapping.io_y=1"]),
    "spatial_dataflow_folds": ("spatial_dataflow", ["components.pe_array.rows=1", "components.pe_array.cols=4",
                                                    "components.local_memory.capacity_bytes=1024",
                                                    "mapping.on_overflow=fold"]),
    "spatial_dataflow_per_hop": ("spatial_dataflow", ["mapping.per_hop=true"]),
}


def trace_path(name: str) -> str:
    return str(REPO / "traces" / f"{name}.h5")


def reports(tr, runs, results, n) -> list[str]:
    info = trace_info(tr, n)
    return [json.dumps(build_report(r, spec, TABLE, info, partial=True)) for r, (spec, _) in zip(results, runs)]


def serial(tr, runs, n) -> list[str]:
    return reports(tr, runs, [c.result for c in count_runs(tr, runs, n, progress=False)], n)


def chunked(tr, runs, n, bounds) -> list[str]:
    """Each chunk counted by sessions of its own (fresh simulators), the states merged."""
    states = []
    for first, stop in bounds:
        wl = Workload(tr)
        states.append(count_states(wl, start_sessions(wl, runs), first, stop))
    return reports(tr, runs, merge_states(start_sessions(Workload(tr), runs), states), n)


# -- exactness, in this process ------------------------------------------------------------
def test_chunks_cover_every_sample_once_in_order():
    for n in (1, 2, 7, 8, 12, 100, 1000):
        for workers in (1, 2, 3, 16):
            b = chunk_bounds(n, workers)
            assert b[0][0] == 0 and b[-1][1] == n and all(s > f for f, s in b)
            assert all(b[k][1] == b[k + 1][0] for k in range(len(b) - 1))
            assert len(b) == min(n, max(parallel.CHUNKS_PER_WORKER * workers, -(-n // parallel.MAX_CHUNK)))


@pytest.mark.parametrize("name", TRACES)
def test_merged_chunks_equal_the_serial_replay_on_every_architecture_and_mode(name):
    n = TRACES[name]
    with open_trace(trace_path(name)) as tr:
        runs = [(load_arch_spec(a), m) for a in architecture_names("all") for m in MODES]
        expected = serial(tr, runs, n)
        assert all(json.loads(r)["cycles"] > 0 for r in expected)
        for bounds in ([(k, k + 1) for k in range(n)], [(0, 1), (1, 3), (3, n)], chunk_bounds(n, 2)):
            assert chunked(tr, runs, n, bounds) == expected, bounds
        # as on a worker: count_chunk, whose trace and simulators carry over from chunk to chunk
        frozen = tuple(runs)
        ident = parallel.trace_identity(tr.path)
        try:
            states = [count_chunk(Chunk(tr.path, ident, frozen, a, b, "t")) for a, b in chunk_bounds(n, 1)]
        finally:  # this process is no worker: close the trace the chunks kept open
            parallel._WORKER.pop("trace").close()
            parallel._WORKER.clear()
        assert reports(tr, runs, merge_states(start_sessions(Workload(tr), runs), states), n) == expected


def test_a_chunk_decodes_each_of_its_samples_once_for_every_architecture_and_mode(monkeypatch):
    from collections import Counter

    decoded: Counter = Counter()
    sample = Workload.sample

    def counted(self, i):
        decoded[i] += 1
        return sample(self, i)
    monkeypatch.setattr(Workload, "sample", counted)
    with open_trace(trace_path("digits_snn_T6")) as tr:
        runs = [(load_arch_spec(a), m) for a in architecture_names("all") for m in MODES]
        wl = Workload(tr)
        count_states(wl, start_sessions(wl, runs), 3, 7)
    assert decoded == {3: 1, 4: 1, 5: 1, 6: 1}


@pytest.mark.parametrize("variant", VARIANTS)
def test_merged_chunks_equal_the_serial_replay_with_spills_pages_and_folds(variant):
    arch, overrides = VARIANTS[variant]
    with open_trace(trace_path("tiny_synth_T4")) as tr:
        spec = load_arch_spec(arch, overrides)
        runs = [(spec, m) for m in MODES]
        expected = serial(tr, runs, 8)
        first = json.loads(expected[0])
        if variant == "spatial_dataflow_folds":
            assert first["extra"]["folds"] > 1
        if variant == "neuromorphic_segments":
            assert "chip configurations" in first["notes"][0]
        assert chunked(tr, runs, 8, [(0, 1), (1, 2), (2, 5), (5, 8)]) == expected


def test_a_chunk_carries_this_process_settings_to_its_worker(monkeypatch):
    from sim.engine import components

    if not hasattr(components, "set_timing"):
        pytest.skip("the tile pipeline has no timing setting")
    monkeypatch.setattr(components, "TIMING", "simpy")
    settings = parallel.process_settings()
    assert ("timing", "simpy") in settings
    monkeypatch.setattr(components, "TIMING", "auto")  # a worker's default
    parallel.apply_settings(settings)
    assert components.TIMING == "simpy"


# -- the Dask path, with an in-process stand-in for Dask ------------------------------------
def in_process(order=lambda chunks: chunks, before=None, drop=None, fail=None):
    """A stand-in for run_on_dask: runs the chunks here, in ``order`` (outcomes may come back
    in any order); ``before(chunk)`` runs first; ``drop``: a chunk whose outcome never comes
    back; ``fail``: a chunk that comes back failed, as a killed worker's does."""
    def run(todo, fn, key, scheduler, workers, keep_going, record):
        for chunk in order(list(todo)):
            if before:
                before(chunk)
            if chunk.first == drop:
                continue
            if chunk.first == fail:
                record(chunk, {"status": "failed", "error": "KilledWorker: Attempted to run task "
                               f"{key(chunk)!r} on 4 different workers, but all those workers died"})
                continue
            record(chunk, fn(chunk))
    return run


def stand_in(monkeypatch, **how) -> None:
    """Chunks run by :func:`in_process` (``how``) instead of Dask (whose presence the parallel
    path still checks)."""
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(parallel, "run_on_dask", in_process(**how))


def test_validate_with_workers_equals_serial_with_chunks_back_in_any_order(monkeypatch):
    from sim.validation.compare import run_validation

    path = trace_path("digits_snn_T6")
    expected = run_validation(path, "all", samples=12, progress=False)
    stand_in(monkeypatch, order=lambda c: c[::-1])
    assert run_validation(path, "all", samples=12, progress=False, workers=2) == expected


def test_map_best_counts_the_runs_the_mapper_chose_in_this_process(monkeypatch):
    path = trace_path("tiny_synth_T4")
    expected = replay_document(path, "all", list(MODES), "paper_v1_45nm", 8, progress=False, map_policy="best")[0]
    stand_in(monkeypatch, order=lambda c: c[1::2] + c[::2])
    doc = replay_document(path, "all", list(MODES), "paper_v1_45nm", 8, progress=False, map_policy="best",
                          workers=3)[0]
    assert doc == expected


def _replay_cli(capsys, out: Path, *extra) -> tuple[int, list[str]]:
    rc = main(["replay", trace_path("tiny_synth_T4"), "--arch", "all", "--mode", "both", "--map", "spec",
               "--quiet", "--json", str(out), "--csv", str(out.with_suffix(".csv")), *extra])
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("how", ["failed", "never came back"])
def test_a_chunk_without_a_result_fails_the_replay_with_one_line_and_writes_nothing(tmp_path, monkeypatch,
                                                                                   capsys, how):
    stand_in(monkeypatch, **({"fail": 4} if how == "failed" else {"drop": 2}))
    rc, err = _replay_cli(capsys, tmp_path / "r.json", "--workers", "2")
    assert rc == 3 and len(err) == 1 and err[0].startswith("error: "), err
    assert ("samples 4..4 could not be counted (KilledWorker: " in err[0] if how == "failed"
            else "samples 2..2 never came back" in err[0]) and "no result" in err[0]
    assert list(tmp_path.iterdir()) == []  # neither output, nor a temporary


def test_a_trace_changed_under_the_run_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import shutil

    trace = tmp_path / "t.h5"
    shutil.copy(trace_path("tiny_synth_T4"), trace)
    out = tmp_path / "out"
    out.mkdir()

    def touch(chunk):
        if chunk.first == 3:
            os.utime(trace, ns=(1, 1))
    stand_in(monkeypatch, before=touch)
    rc = main(["replay", str(trace), "--arch", "all", "--map", "spec", "--quiet", "--json", str(out / "r.json"),
               "--workers", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: {trace}: changed while the replay ran (size or modification time)"]
    assert list(out.iterdir()) == []


def test_workers_below_one_is_bad_input():
    res = run_cli("replay", trace_path("tiny_synth_T4"), "--workers", "0", "--quiet")
    assert res.returncode == 2 and res.stderr.strip() == "error: --workers: must be >= 1, got 0"


# -- on Dask ---------------------------------------------------------------------------------
def test_replay_with_two_workers_on_a_local_cluster_writes_the_serial_report(tmp_path):
    pytest.importorskip("dask.distributed")
    args = ["replay", trace_path("digits_snn_T6"), "--arch", "all", "--mode", "both", "--map", "spec",
            "--samples", "12", "--quiet"]
    res = run_cli(*args, "--json", tmp_path / "serial.json")
    assert res.returncode == 0, res.stderr
    res = run_cli(*args, "--json", tmp_path / "dask.json", "--workers", "2")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert (tmp_path / "dask.json").read_bytes() == (tmp_path / "serial.json").read_bytes()


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes; a task whose worker dies is retried once (allowed-failures 1)."""
    pytest.importorskip("dask.distributed")
    import logging

    import cloudpickle
    import dask
    from dask.distributed import LocalCluster

    from sim.replay.cluster import _WORKER_START, prepare_local_workers

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the dying counters below
    prepare_local_workers()
    with dask.config.set({**_WORKER_START, "distributed.scheduler.allowed-failures": 1}):
        c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                         silence_logs=logging.CRITICAL)
    yield c.scheduler_address
    c.close()


def _dies_once(marker: str):
    def count(chunk):
        if chunk.first == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies half-way through the run
        return parallel.count_chunk_safely(chunk)
    return count


def _always_dies(chunk):
    if chunk.first == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return parallel.count_chunk_safely(chunk)


def test_a_worker_killed_once_costs_a_retry_and_the_result_is_exact(cluster, tmp_path):
    with open_trace(trace_path("tiny_synth_T4")) as tr:
        runs = [(load_arch_spec(a), m) for a in architecture_names("all") for m in MODES]
        got = parallel.count_runs_parallel(tr, runs, 8, 2, cluster, progress=False,
                                           count=_dies_once(str(tmp_path / "died")))
        assert (tmp_path / "died").exists()
        assert reports(tr, runs, [c.result for c in got], 8) == serial(tr, runs, 8)


def test_a_worker_killed_every_time_fails_the_replay_naming_the_samples(cluster):
    with open_trace(trace_path("tiny_synth_T4")) as tr:
        runs = [(load_arch_spec("memory_hierarchy"), "snn")]
        with pytest.raises(ReplayFailed) as exc:
            parallel.count_runs_parallel(tr, runs, 8, 2, cluster, progress=False, count=_always_dies)
    line = str(exc.value)
    assert "\n" not in line and "samples 3..3 could not be counted (KilledWorker" in line, line
