"""Sweeps on Dask: external scheduler == LocalCluster, 1 worker == 2 workers; a sweep that is
killed, damaged, interrupted, or has failing points says so in one line and resumes to exactly
the result of an uninterrupted run, every point once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_TINY, REPO, run_cli

pytest.importorskip("dask.distributed")

TRACE = BUNDLED_TINY  # replaced by a private copy: the bundled file may be rewritten meanwhile


@pytest.fixture(scope="module", autouse=True)
def private_trace(tmp_path_factory) -> Path:
    global TRACE
    TRACE = tmp_path_factory.mktemp("trace") / BUNDLED_TINY.name
    shutil.copy(BUNDLED_TINY, TRACE)
    return TRACE

GRID = ["--grid", "components.global_buffer.capacity_bytes=512,2048", "--grid", "components.pe_array.rows=4,16"]
# 12 small points (one sample each): long enough to be killed part-way, short enough to rerun
LONG_GRID = ["--grid", "components.global_buffer.capacity_bytes=" + ",".join(str(256 * 2 ** i) for i in range(6)),
             "--grid", "components.dram.latency_cycles=10,100"]
# capacity 8 cannot stage one output channel's weights of conv1: that point alone fails
FAILING_GRID = ["--grid", "components.global_buffer.capacity_bytes=8,512,2048"]


def points(out: Path) -> dict[str, dict]:
    """Finished points by id, without fields that legitimately differ between runs."""
    found = {}
    for path in sorted((out / "points").glob("*.json")):
        doc = json.loads(path.read_text())
        found[doc["id"]] = {"params": doc["params"], "runs": doc["runs"], "ratios": doc["ratios"]}
    return found


def sweep(out, *extra):
    res = run_cli("sweep", TRACE, *GRID, "--samples", "2", "--out", out, "--quiet", *extra)
    assert res.returncode == 0, res.stderr
    return points(out)


def lines(res) -> list[str]:
    assert "Traceback" not in res.stderr, res.stderr
    return res.stderr.strip().splitlines()


def one_line(res, status: int, *needles: str) -> str:
    """The single stderr line of a command that exited with ``status``, containing ``needles``."""
    out = lines(res)
    assert res.returncode == status, res.stderr
    assert len(out) == 1 and all(n in out[0] for n in needles), out
    return out[0]


def manifest(out: Path) -> dict:
    return json.loads((out / "sweep.json").read_text())


def sweep_cmd(out: Path, grid: list[str], *extra) -> list[str]:
    return [sys.executable, str(REPO / "run_sim.py"), "sweep", str(TRACE), *grid, "--samples", "1",
            "--out", str(out), "--workers", "1", "--quiet", *extra]


def same_results(out: Path, reference: Path) -> None:
    """``out`` holds exactly the reference's points (each once) and the same results.csv."""
    ids = sorted(p["id"] for p in manifest(out)["points"])
    assert sorted(p.stem for p in (out / "points").glob("*.json")) == ids
    assert points(out) == points(reference)
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, private_trace) -> Path:
    """An uninterrupted run of LONG_GRID."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    res = subprocess.run(sweep_cmd(out, LONG_GRID, "--workers", "2"), cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert lines(res) == [f"sweep {out}: 12 points: 12 computed, 0 skipped (already done), 0 failed"]
    return out


# -- results -------------------------------------------------------------------------------
def test_sweep_with_one_and_two_workers_gives_identical_points(tmp_path):
    one = sweep(tmp_path / "one", "--workers", "1")
    two = sweep(tmp_path / "two", "--workers", "2")
    assert len(one) == 4 and one == two
    # the grid varies what it should: a bigger buffer never costs more DRAM traffic
    by_params = {(p["params"]["components.global_buffer.capacity_bytes"], p["params"]["components.pe_array.rows"]):
                 p["runs"][0]["totals"]["dram_read_bits"] for p in one.values()}
    assert by_params[(2048, 16)] <= by_params[(512, 16)]
    assert (tmp_path / "one" / "results.csv").read_text().count("\n") == 1 + 4 * 2


def test_a_rerun_skips_finished_points_and_says_so(tmp_path, reference):
    out = tmp_path / "s"
    shutil.copytree(reference, out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    res = subprocess.run(sweep_cmd(out, LONG_GRID), cwd=REPO, capture_output=True, text=True)
    assert one_line(res, 0) == f"sweep {out}: 12 points: 0 computed, 12 skipped (already done), 0 failed"
    assert {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")} == stamps
    same_results(out, reference)
    run = manifest(out)["last_run"]
    assert (run["computed"], run["skipped"], run["failed"], run["status"]) == (0, 12, 0, "complete")


def test_a_point_file_carries_its_checksum_and_the_hash_of_its_trace(reference):
    from sim.studies.sweep_points import file_digest, point_checksum

    for path in (reference / "points").glob("*.json"):
        doc = json.loads(path.read_text())
        assert doc["schema"] == "snn-energy-sweep-point/2"
        assert doc["trace_sha256"] == file_digest(TRACE)
        rest = {k: v for k, v in doc.items() if k != "sha256"}
        canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        assert doc["sha256"] == point_checksum(doc) == hashlib.sha256(canonical.encode()).hexdigest()


def _dask_bin() -> str:
    return str(Path(sys.executable).with_name("dask"))


def test_external_scheduler_and_worker_match_the_local_cluster(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([_dask_bin(), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        for _ in range(300):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([_dask_bin(), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO))
        external = sweep(tmp_path / "ext", "--scheduler", address)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    local = sweep(tmp_path / "local", "--workers", "1")
    assert len(external) == 4 and external == local


# -- kills and damage ----------------------------------------------------------------------
def _count(out: Path) -> int:
    return len(list((out / "points").glob("*.json")))


def test_a_sweep_killed_with_sigkill_at_any_moment_resumes_to_the_uninterrupted_result(tmp_path, reference):
    from sim.studies.sweep_points import read_point

    out = tmp_path / "killed"
    # kill the client, its nanny and its workers together: during start-up (the manifest has just
    # been written), while the first points are written, and later in the run
    moments = [lambda: (out / "sweep.json").exists(), lambda: _count(out) >= 1, lambda: _count(out) >= 5,
               lambda: _count(out) >= 9]
    part_way = 0
    for moment in moments:
        proc = subprocess.Popen(sweep_cmd(out, LONG_GRID), cwd=REPO, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and not moment():
            time.sleep(0.002)
        with contextlib.suppress(ProcessLookupError):  # the run may have finished first
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        part_way += _count(out) < 12
        ids = {p["id"]: p["trace_sha256"] for p in manifest(out)["points"]}
        for path in (out / "points").glob("*.json"):  # every file that exists is whole
            assert read_point(path, path.stem, ids[path.stem])[0] is not None
    assert part_way >= 2, "the sweep must be interrupted part-way for this test to mean anything"
    done = _count(out)
    res = subprocess.run(sweep_cmd(out, LONG_GRID), cwd=REPO, capture_output=True, text=True)
    last = lines(res)[-1]
    assert res.returncode == 0 and last.endswith(f"{12 - done} computed, {done} skipped (already done), 0 failed")
    same_results(out, reference)
    assert not [p for p in out.rglob(".*") if p.name.endswith((".tmp", ".partial"))]  # no litter left


def _flip_a_digit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    i = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isdigit())
    data[i] ^= 1  # '0'<->'1', '2'<->'3', ...: still valid JSON, another number
    path.write_bytes(bytes(data))


def test_damaged_point_files_are_named_and_recomputed_to_the_uninterrupted_result(tmp_path, reference):
    from sim.studies.sweep_points import seal_point

    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    files = [out / "points" / f"{p['id']}.json" for p in manifest(out)["points"]]
    truncated, flipped, wrong_sum, other_trace = files[1], files[4], files[7], files[10]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    _flip_a_digit(flipped)
    doc = json.loads(wrong_sum.read_text())
    wrong_sum.write_text(json.dumps({**doc, "sha256": "0" * 64}))
    doc = json.loads(other_trace.read_text())
    other_trace.write_text(json.dumps(seal_point({**doc, "trace_sha256": "ab" * 32})))  # valid, from another trace

    res = run_cli("plot-sweep", out)  # plots the 8 good points, names the first bad file
    one_line(res, 0, "plotted 8 of 12 points", "4 rejected", str(truncated), "not valid JSON", "and 3 more")

    res = subprocess.run(sweep_cmd(out, LONG_GRID), cwd=REPO, capture_output=True, text=True)
    out_lines = lines(res)
    assert res.returncode == 0
    assert out_lines[-1] == f"sweep {out}: 12 points: 4 computed, 8 skipped (already done), 0 failed"
    warnings = out_lines[:-1]
    assert len(warnings) == 4 and all(w.startswith("warning: ") and "recomputing" in w for w in warnings)
    for path, problem in [(truncated, "not valid JSON (truncated?)"), (flipped, "checksum mismatch"),
                          (wrong_sum, "checksum mismatch"), (other_trace, "computed from another trace")]:
        assert any(str(path) in w and problem in w for w in warnings), (path, warnings)
        assert path.with_name(path.name + ".rejected").exists()
    same_results(out, reference)
    assert [r["file"] for r in manifest(out)["last_run"]["rejected"]] == [str(f) for f in
                                                                          (truncated, flipped, wrong_sum, other_trace)]


def test_stale_temporaries_are_removed_at_the_next_run_and_counted(tmp_path, reference):
    from sim.studies.sweep_points import temp_path

    out = tmp_path / "s"
    shutil.copytree(reference, out)
    pid = next((out / "points").glob("*.json")).stem
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = re.match(r"^\..+\.([A-Za-z0-9_]+)-\d+-\d+\.tmp$", temp_path(out / "x.json").name)[1]
    (out / "traces").mkdir()
    stale = [out / "points" / f".{pid}.json.{host}-{dead.pid}-7.tmp",  # its writer is gone
             out / ".results.csv.k3j_x9q2.tmp",  # a random name, older than this run
             out / ".results.csv.otherhost-12-3.tmp",  # written on another host, older than this run
             out / "traces" / ".tiny_T4_rate0.1_n1.h5.ab12cd34.partial"]  # a killed trace writer
    kept = [out / "points" / f".{pid}.json.{host}-{os.getpid()}-7.tmp",  # its writer (this test) lives
            out / ".notes.txt.ab12cd34.tmp"]  # not a file a sweep writes
    for path in stale + kept:
        path.write_text("partial")
        os.utime(path, (time.time() - 60, time.time() - 60))
    res = subprocess.run(sweep_cmd(out, LONG_GRID), cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0
    assert lines(res) == [f"removed 4 stale temporary file(s) of interrupted runs from {out}",
                          f"sweep {out}: 12 points: 0 computed, 12 skipped (already done), 0 failed"]
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert manifest(out)["last_run"]["stale_temporaries_removed"] == 4


def test_a_trace_replaced_while_the_sweep_runs_is_detected_and_never_filed_under_the_old_hash(tmp_path, tiny_trace):
    from sim.studies.sweep_points import file_digest

    trace = tmp_path / "trace.h5"
    shutil.copy(TRACE, trace)
    old, new = file_digest(trace), file_digest(tiny_trace)
    out = tmp_path / "s"
    cmd = [*sweep_cmd(out, LONG_GRID)]
    cmd[3] = str(trace)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and _count(out) < 1:
        time.sleep(0.002)
    os.replace(shutil.copy(tiny_trace, tmp_path / "incoming.h5"), trace)  # atomically, as a user would
    err = proc.communicate(timeout=120)[1]
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if "content changed while the sweep ran" in line]
    assert len(said) == 1 and str(trace) in said[0]
    filed = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert filed and all(d["trace_sha256"] == old for d in filed)  # nothing read from the new file is filed
    assert proc.returncode == (0 if len(filed) == 12 else 1)
    assert said[0].startswith("error: " if len(filed) < 12 else "warning: ")
    # the next run is a sweep of the new trace: every point computed from it
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert lines(res) == [f"sweep {out}: 12 points: 12 computed, 0 skipped (already done), 0 failed"]
    assert {p["trace_sha256"] for p in manifest(out)["points"]} == {new}
    assert all(json.loads((out / "points" / f"{p['id']}.json").read_text())["trace_sha256"] == new
               for p in manifest(out)["points"])


def test_a_worker_files_no_point_from_a_trace_that_is_not_the_sweeps(tmp_path):
    from sim.studies.sweep import PointTask, run_point_safely

    (tmp_path / "points").mkdir()
    task = PointTask(str(tmp_path), "p0", {}, (), str(TRACE), "0" * 64, "memory_hierarchy", ("snn",),
                     "paper_v1_45nm", 1)
    outcome = run_point_safely(task)
    assert outcome["status"] == "failed" and outcome["trace_changed"]
    assert "content changed while the sweep ran" in outcome["error"]
    assert not list((tmp_path / "points").iterdir())


# -- failures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory, private_trace):
    """FAILING_GRID without --keep-going, one worker: the failing point comes first."""
    out = tmp_path_factory.mktemp("failed") / "sweep"
    res = subprocess.run(sweep_cmd(out, FAILING_GRID), cwd=REPO, capture_output=True, text=True)
    return out, res


def test_a_failing_point_exits_1_names_its_error_and_stops_new_points(failed_sweep):
    out, res = failed_sweep
    assert res.returncode == 1
    error, counts = lines(res)
    assert error.startswith("error: 1 point(s) failed; the first, components.global_buffer.capacity_bytes=8: ")
    assert "cannot stage one output channel's weights" in error and "--keep-going" in error
    assert counts == f"sweep {out}: 3 points: 0 computed, 0 skipped (already done), 1 failed, 2 not run"
    assert not list((out / "points").iterdir()) and not (out / "results.csv").exists()
    run = manifest(out)["last_run"]
    assert (run["failed"], run["not_run"], run["status"]) == (1, 2, "failed")
    assert "cannot stage" in run["failures"][0]["error"]


def test_keep_going_finishes_the_other_points_and_a_rerun_retries_the_failed_one(tmp_path):
    out = tmp_path / "s"
    res = subprocess.run(sweep_cmd(out, FAILING_GRID, "--keep-going"), cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 1
    error, counts = lines(res)
    assert "capacity_bytes=8" in error and "cannot stage" in error and "--keep-going" not in error
    assert counts == f"sweep {out}: 3 points: 2 computed, 0 skipped (already done), 1 failed"
    assert _count(out) == 2
    assert (out / "results.csv").read_text().count("\n") == 1 + 2 * 2
    res = subprocess.run(sweep_cmd(out, FAILING_GRID, "--keep-going"), cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 1
    assert lines(res)[-1] == f"sweep {out}: 3 points: 0 computed, 2 skipped (already done), 1 failed"


# -- plot-sweep ----------------------------------------------------------------------------
def test_plot_sweep_of_a_sweep_without_a_finished_point_exits_2_and_writes_nothing(failed_sweep):
    out, _ = failed_sweep
    res = run_cli("plot-sweep", out)
    one_line(res, 2, str(out), "no finished point", "3 not finished")
    assert res.stdout == "" and not (out / "plots").exists()


def test_plot_sweep_names_what_is_not_a_sweep(tmp_path):
    one_line(run_cli("plot-sweep", tmp_path / "nowhere"), 2, "nowhere", "no such directory")
    one_line(run_cli("plot-sweep", tmp_path), 2, str(tmp_path), "not a sweep directory")
    (tmp_path / "sweep.json").write_text('{"schema": "snn-energy-sweep/2", "poi')
    one_line(run_cli("plot-sweep", tmp_path), 2, str(tmp_path / "sweep.json"), "not valid JSON")
    (tmp_path / "sweep.json").write_text(json.dumps({"schema": "snn-energy-sweep/2", "trace": "t.h5", "arch": "a",
                                                     "modes": ["snn"], "grid": [], "points": 5}))
    one_line(run_cli("plot-sweep", tmp_path), 2, str(tmp_path / "sweep.json"), "points", "expected a list")
    assert not (tmp_path / "plots").exists()


def test_list_params_and_plot_of_a_full_and_of_a_partial_sweep(tmp_path, reference):
    res = run_cli("sweep", "--list-params", "--arch", "memory_hierarchy")
    assert res.returncode == 0 and "components.global_buffer.capacity_bytes" in res.stdout
    assert "trace.rate" in res.stdout
    out = tmp_path / "p"
    shutil.copytree(reference, out)
    res = run_cli("plot-sweep", out)
    assert res.returncode == 0 and lines(res) == []
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["pareto.png", "sweep_components_dram_latency_cycles.png",
                    "sweep_components_global_buffer_capacity_bytes.png"]
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    next((out / "points").glob("*.json")).unlink()
    res = run_cli("plot-sweep", out)
    one_line(res, 0, f"{out}: plotted 11 of 12 points; 1 not finished")
    assert len(res.stdout.split()) == 3
    assert not [p for p in (out / "plots").iterdir() if p.name.startswith(".")]


def test_pareto_front_keeps_only_undominated_points():
    from sim.plots.sweep import pareto_front

    pts = [(1, 10), (2, 5), (3, 7), (4, 1), (5, 1), (0.5, 20)]
    assert pareto_front(pts) == [(0.5, 20), (1, 10), (2, 5), (4, 1)]


# -- bad input and interrupts: one line, the right status, nothing written -------------------------
def test_bad_grids_exit_2_before_running(tmp_path):
    out = tmp_path / "bad"
    one_line(run_cli("sweep", TRACE, "--grid", "components.global_buffer.size=1,2", "--out", out), 2,
             "--grid components.global_buffer.size", "not a sweepable field")
    one_line(run_cli("sweep", TRACE, "--grid", "components.global_buffer.capacity_bytes=1024,-1", "--out", out),
             2, "capacity_bytes")
    one_line(run_cli("sweep", TRACE, "--grid", "components.global_buffer.capacity_bytes", "--out", out), 2,
             "--grid", "expected KEY.PATH=V1,V2,...")
    one_line(run_cli("sweep", TRACE, "--grid", "components.global_buffer.capacity_bytes=", "--out", out), 2,
             "--grid components.global_buffer.capacity_bytes", "at least one value")
    one_line(run_cli("sweep", TRACE, "--grid", "components.global_buffer.capacity_bytes=512,512", "--out", out),
             2, "--grid", "given twice")
    assert not out.exists()


def test_an_unusable_out_directory_exits_2_before_running(tmp_path):
    missing_parent = tmp_path / "no" / "such" / "out"
    one_line(run_cli("sweep", TRACE, *GRID, "--out", missing_parent), 2, "--out", "does not exist")
    assert not (tmp_path / "no").exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line(run_cli("sweep", TRACE, *GRID, "--out", a_file), 2, "--out", "not a directory")
    assert a_file.read_text() == "x"
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "points").write_text("x")  # a sweep directory whose points/ is a file
    one_line(run_cli("sweep", TRACE, *GRID, "--out", damaged), 2, str(damaged / "points"), "not a directory")
    assert sorted(p.name for p in damaged.iterdir()) == ["points"]


@pytest.mark.parametrize("moment", ["start-up", "computing"])
def test_ctrl_c_exits_130_with_one_line_and_shuts_the_cluster_down(tmp_path, moment):
    out = tmp_path / "s"
    proc = subprocess.Popen(sweep_cmd(out, LONG_GRID), cwd=REPO, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = (lambda: (out / "sweep.json").exists()) if moment == "start-up" else (lambda: _count(out) >= 1)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.002)
    if moment == "start-up":
        time.sleep(0.3)  # into LocalCluster's start-up
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the client and every worker
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and err.strip().splitlines() == ["interrupted"], err
    assert proc.returncode == 130
    for _ in range(200):  # the cluster is shut down: no process of the group is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("processes of the sweep survived the interrupt")
    assert manifest(out)["last_run"]["status"] == "interrupted"


def test_a_sweep_with_map_best_re_maps_every_point_and_keeps_spec_ids_apart(tmp_path):
    best = sweep(tmp_path / "best", "--workers", "1", "--map", "best")
    spec = sweep(tmp_path / "spec", "--workers", "1")
    assert len(best) == len(spec) == 4 and not set(best) & set(spec)   # the policy is part of a point's id
    assert manifest(tmp_path / "best")["map"] == "best"
    by_params = {json.dumps(p["params"], sort_keys=True): p for p in spec.values()}
    for p in best.values():
        other = by_params[json.dumps(p["params"], sort_keys=True)]
        for run, spec_run in zip(p["runs"], other["runs"]):
            m = run["mapping"]
            assert m["prediction_check"]["exact"] and "mapping" not in spec_run
            # the spec's own mapping, priced by the mapper, is this point's --map spec run
            assert m["spec_mapping_energy_pj"] == pytest.approx(spec_run["energy_pj"]["total"], rel=1e-12)
            assert run["energy_pj"]["total"] <= spec_run["energy_pj"]["total"] * (1 + 1e-12)
