"""Sweeps on Dask: external scheduler == LocalCluster, 1 worker == 2 workers, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_TINY, REPO, run_cli

pytest.importorskip("dask.distributed")

GRID = ["--grid", "components.global_buffer.capacity_bytes=512,2048", "--grid", "components.pe_array.rows=4,16"]


def points(out: Path) -> dict[str, dict]:
    """Finished points by id, without fields that legitimately differ between runs."""
    found = {}
    for path in sorted((out / "points").glob("*.json")):
        doc = json.loads(path.read_text())
        found[doc["id"]] = {"params": doc["params"], "runs": doc["runs"], "ratios": doc["ratios"]}
    return found


def sweep(out, *extra):
    res = run_cli("sweep", BUNDLED_TINY, *GRID, "--samples", "2", "--out", out, "--quiet", *extra)
    assert res.returncode == 0, res.stderr
    return points(out)


def test_sweep_with_one_and_two_workers_gives_identical_points(tmp_path):
    one = sweep(tmp_path / "one", "--workers", "1")
    two = sweep(tmp_path / "two", "--workers", "2")
    assert len(one) == 4 and one == two
    # the grid varies what it should: a bigger buffer never costs more DRAM traffic
    by_params = {(p["params"]["components.global_buffer.capacity_bytes"], p["params"]["components.pe_array.rows"]):
                 p["runs"][0]["totals"]["dram_read_bits"] for p in one.values()}
    assert by_params[(2048, 16)] <= by_params[(512, 16)]
    assert (tmp_path / "one" / "results.csv").read_text().count("\n") == 1 + 4 * 2


def test_rerun_skips_finished_points(tmp_path):
    out = tmp_path / "s"
    first = sweep(out)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    again = sweep(out)
    assert first == again
    assert {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")} == stamps


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


def test_a_sweep_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "killed"
    grid = ["--grid", "components.global_buffer.capacity_bytes=" + ",".join(str(256 * 2 ** i) for i in range(8)),
            "--grid", "components.dram.latency_cycles=10,100"]
    cmd = [sys.executable, str(REPO / "run_sim.py"), "sweep", str(BUNDLED_TINY), *grid, "--out", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "points").glob("*.json"))) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # client, nanny and worker together
    proc.wait()
    done_at_kill = len(list((out / "points").glob("*.json")))
    assert 2 <= done_at_kill < 16, "the sweep must be interrupted part-way for this test to mean anything"
    for path in (out / "points").glob("*.json"):
        json.loads(path.read_text())  # every file that exists is whole
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    resumed = points(out)
    manifest = json.loads((out / "sweep.json").read_text())
    assert sorted(resumed) == sorted(p["id"] for p in manifest["points"]) and len(resumed) == 16
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 16 * 2
    ids = [r.split(",")[0] for r in rows[1:]]
    assert all(ids.count(i) == 2 for i in set(ids))  # one SNN and one ANN row per point, no duplicates
    # the resumed points equal a clean, uninterrupted run of the same grid
    clean = run_cli("sweep", BUNDLED_TINY, *grid, "--out", tmp_path / "clean", "--workers", "2", "--quiet")
    assert clean.returncode == 0
    assert points(tmp_path / "clean") == resumed


def test_bad_grids_exit_2_before_running(tmp_path):
    out = tmp_path / "bad"
    res = run_cli("sweep", BUNDLED_TINY, "--grid", "components.global_buffer.size=1,2", "--out", out)
    assert res.returncode == 2 and "components.global_buffer.size" in res.stderr
    res = run_cli("sweep", BUNDLED_TINY, "--grid", "components.global_buffer.capacity_bytes=1024,-1", "--out", out)
    assert res.returncode == 2 and "capacity_bytes" in res.stderr
    assert not out.exists()


def test_list_params_and_plot(tmp_path):
    res = run_cli("sweep", "--list-params", "--arch", "memory_hierarchy")
    assert res.returncode == 0 and "components.global_buffer.capacity_bytes" in res.stdout
    assert "trace.rate" in res.stdout
    out = tmp_path / "p"
    sweep(out)
    res = run_cli("plot-sweep", out)
    assert res.returncode == 0, res.stderr
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["pareto.png", "sweep_components_global_buffer_capacity_bytes.png",
                    "sweep_components_pe_array_rows.png"]
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_pareto_front_keeps_only_undominated_points():
    from sim.plots.sweep import pareto_front

    pts = [(1, 10), (2, 5), (3, 7), (4, 1), (5, 1), (0.5, 20)]
    assert pareto_front(pts) == [(0.5, 20), (1, 10), (2, 5), (4, 1)]
