"""Parameter sweeps on Dask: a Cartesian grid over arch-spec fields (and T / spike rate of
synthetic traces), one replay per point, each result written atomically when it finishes.

A point's file name is a hash of everything that determines its result, so rerunning the
same command skips finished points, and an interrupted sweep (even SIGKILLed, client and
workers) resumes without losing or duplicating a point: a result file either exists whole or
not at all, and a file that is damaged or was computed from another trace is recomputed
(:mod:`sim.studies.sweep_points`). A point that fails is reported, never filed as finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sim.analytic.paper_v1 import PAPER_SPIKE_RATE
from sim.arch.spec import load_arch_spec, parse_value, resolve_arch_spec
from sim.errors import ParameterError, SimInputError
from sim.replay.cluster import prepare_local_workers, run_on_dask
from sim.studies.sweep_points import (MANIFEST, POINTS_DIR, REJECTED_SUFFIX, SWEEP_SCHEMA, TRACES_DIR, file_digest,
                                      check_layout, read_point, remove_stale_temporaries, seal_point,
                                      write_atomic_text, write_summary)

TRACE_KEYS = ("trace.T", "trace.rate")


@dataclass(frozen=True)
class Point:
    """One grid point: arch-spec overrides plus, for synthetic sweeps, the trace's T and rate."""

    params: tuple[tuple[str, Any], ...]

    def overrides(self) -> list[str]:
        return [f"{k}={json.dumps(v)}" for k, v in self.params if k not in TRACE_KEYS]

    def trace_params(self) -> dict:
        return {k.split(".", 1)[1]: v for k, v in self.params if k in TRACE_KEYS}

    def as_dict(self) -> dict:
        return dict(self.params)


def sweepable_params(arch: str) -> list[tuple[str, Any]]:
    """Numeric fields of an arch spec (dotted path, current value), booleans excluded."""
    spec = load_arch_spec(arch)
    out = []

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(value, path)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((path, value))

    walk({k: v for k, v in spec.to_dict().items() if k not in ("schema",)}, "")
    return out


def parse_grid(items: list[str], arch: str) -> list[tuple[str, list]]:
    """``key.path=v1,v2`` items -> [(key, [values])], checked against the spec (values are
    read as ``--set`` values are)."""
    known = dict(sweepable_params(arch))
    grid = []
    for item in items:
        name, sep, raw = item.partition("=")
        key = ".".join(p for p in name.strip().split(".") if p)
        if not sep or not key:
            raise ParameterError(None, "--grid", f"expected KEY.PATH=V1,V2,..., got {item!r}")
        try:
            values = [parse_value(v.strip()) for v in raw.split(",") if v.strip()]
        except SimInputError as exc:
            raise ParameterError(None, f"--grid {key}", exc.message) from None
        if not values:
            raise ParameterError(None, f"--grid {key}", "needs at least one value")
        if key not in known and key not in TRACE_KEYS:
            raise ParameterError(None, f"--grid {key}", "not a sweepable field "
                                 f"(see `run_sim.py sweep --list-params --arch {arch}`)")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ParameterError(None, f"--grid {key}", f"values must be numbers, got {v!r}")
        if len(set(values)) != len(values):
            raise ParameterError(None, f"--grid {key}", f"a value is given twice in {raw!r}")
        if any(k == key for k, _ in grid):
            raise ParameterError(None, f"--grid {key}", "given twice")
        grid.append((key, values))
    if not grid:
        raise ParameterError(None, "--grid", "give at least one --grid key.path=v1,v2,...")
    return grid


def grid_points(grid: list[tuple[str, list]]) -> list[Point]:
    keys = [k for k, _ in grid]
    return [Point(tuple(zip(keys, combo))) for combo in itertools.product(*(v for _, v in grid))]


def point_id(context: dict, point: Point) -> str:
    """Stable id of a point: a hash of the sweep context (trace and spec contents, mode,
    samples, energy table) and the point's parameters."""
    text = json.dumps({"context": context, "params": point.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def synthetic_trace_for(out_dir: Path, base_meta, T: int, rate: float, samples: int) -> Path:
    """The synthetic trace of the base trace's model shape at (T, rate), made once per sweep
    (the trace writer renames it into place whole)."""
    from sim.trace.shapes import MODEL_SHAPES, model_layers
    from sim.trace.synthetic import write_synthetic_trace

    if base_meta.model not in MODEL_SHAPES:
        raise ParameterError(None, "--grid trace.*", f"model {base_meta.model!r} has no synthetic shape "
                             f"(known: {', '.join(MODEL_SHAPES)})")
    path = out_dir / TRACES_DIR / f"{base_meta.model}_T{T}_rate{rate:g}_n{samples}.h5"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        layers, shape = model_layers(base_meta.model, int(T))
        write_synthetic_trace(path, layers, shape, model=base_meta.model, T=int(T), n_samples=samples,
                              rate=float(rate), seed=0, with_weights=False)
    return path


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to compute one point (paths absolute: workers may run
    elsewhere on the same file system)."""

    out_dir: str
    pid: str
    params: dict
    overrides: tuple[str, ...]
    trace_path: str
    trace_sha256: str  # the content the sweep expects to read
    arch_path: str
    modes: tuple[str, ...]
    energy: str
    samples: int | None
    map_policy: str = "spec"
    objective: str = "energy"


def _file_identity(path: str) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def run_point(task: PointTask) -> dict:
    """Replay one point and write ``points/<pid>.json`` atomically. Runs on a Dask worker;
    returns ``{"status": "computed" | "existing" | "failed", "error": ..., "trace_changed": bool}``.

    The trace is hashed here, from the file this worker opens; a trace whose content is not
    the one the sweep started with, or that changes while the point runs (another inode,
    size or modification time afterwards), fails the point instead of filing it."""
    from sim.replay import replay
    from sim.report import ratios
    from sim.trace import open_trace

    dest = Path(task.out_dir) / POINTS_DIR / f"{task.pid}.json"
    if dest.exists() and read_point(dest, task.pid, task.trace_sha256, task.params)[0] is not None:
        return {"status": "existing"}  # another worker or client finished it
    before = _file_identity(task.trace_path)
    sha = file_digest(task.trace_path)
    if sha != task.trace_sha256:
        return _trace_changed(task, f"{sha[:12]}... when this point read it")
    with open_trace(task.trace_path) as tr:
        reports = replay(tr, task.arch_path, list(task.modes), task.energy, task.samples,
                         list(task.overrides), progress=False, map_policy=task.map_policy,
                         objective=task.objective)
    if _file_identity(task.trace_path) != before:
        return _trace_changed(task, "modified while this point read it")
    for r in reports:  # keep the point files small: per-layer counts stay, the spec copy goes
        r["arch"].pop("spec", None)
    doc = seal_point({"id": task.pid, "params": task.params, "trace": task.trace_path, "trace_sha256": sha,
                      "arch": task.arch_path, "energy_table": task.energy, "runs": reports,
                      "ratios": ratios(reports)})
    write_atomic_text(dest, json.dumps(doc, indent=1, sort_keys=True))
    return {"status": "computed"}


def _trace_changed(task: PointTask, now: str) -> dict:
    return {"status": "failed", "trace_changed": True,
            "error": f"{task.trace_path}: content changed while the sweep ran "
                     f"(sha256 {task.trace_sha256[:12]}... when it started, {now})"}


def run_point_safely(task: PointTask) -> dict:
    """:func:`run_point`, with any error of the point returned as its outcome (one line)."""
    try:
        return run_point(task)
    except SimInputError as exc:  # impossible parameters (a buffer too small for a layer, ...)
        return {"status": "failed", "error": exc.one_line()}
    except Exception as exc:  # a bug or a resource problem: reported with the point
        first = (str(exc).splitlines() or [""])[0]
        return {"status": "failed", "error": f"{type(exc).__name__}: {first}"}


def sweep_context(trace: str, arch: str, modes: list[str], energy: str, samples: int | None,
                  map_policy: str = "spec", objective: str = "energy") -> dict:
    from sim.arch.energy import resolve_energy_table

    context = {"trace_sha256": file_digest(trace), "arch_sha256": file_digest(resolve_arch_spec(arch)),
               "arch": Path(str(resolve_arch_spec(arch))).stem, "modes": modes,
               "energy_sha256": file_digest(resolve_energy_table(energy)), "samples": samples}
    if map_policy != "spec":   # (absent for the spec's mapping: the ids of earlier sweeps stay valid)
        context.update(map=map_policy, objective=objective)
    return context


@dataclass
class RunSummary:
    """What one run of a sweep did (recorded as ``last_run`` in the manifest)."""

    started: float
    points: int
    keep_going: bool = False
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    not_run: int = 0
    stale_temporaries_removed: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"file", "problem"}: moved aside, recomputed
    failures: list[dict] = field(default_factory=list)  # {"id", "params", "error", "trace_changed"}
    trace_changed: str | None = None  # the first worker's report of a changed trace
    status: str = "running"

    def to_dict(self) -> dict:
        return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "seconds": round(time.time() - self.started, 3), "status": self.status,
                "keep_going": self.keep_going, "points": self.points,
                "computed": self.computed, "skipped": self.skipped, "failed": self.failed,
                "not_run": self.not_run, "stale_temporaries_removed": self.stale_temporaries_removed,
                "rejected": self.rejected, "failures": self.failures, "trace_changed": self.trace_changed}


def _check_inputs(trace, arch, grid_items, energy, samples, out, workers):
    """Every check that can fail on bad input, before anything is written; returns
    (output directory, grid, points, base trace metadata)."""
    from sim.arch.energy import load_energy_table
    from sim.report.output import check_directory
    from sim.trace import open_trace

    out_dir = check_directory("--out", out)
    check_layout(out_dir)
    grid = parse_grid(grid_items, arch)
    points = grid_points(grid)
    load_energy_table(energy)
    with open_trace(trace) as tr:
        base_meta = tr.meta
        if samples is not None and not 1 <= samples <= tr.n_samples:
            raise ParameterError(trace, "--samples", f"must be in 1..{tr.n_samples}, got {samples}")
    for p in points:  # every point's spec must be valid before anything runs
        load_arch_spec(arch, p.overrides())
        tp = p.trace_params()
        if "T" in tp and (not isinstance(tp["T"], int) or tp["T"] < 1):
            raise ParameterError(None, "--grid trace.T", f"T must be an integer >= 1, got {tp['T']}")
        if "rate" in tp and not 0 <= tp["rate"] <= 1:
            raise ParameterError(None, "--grid trace.rate", f"rates must be in [0, 1], got {tp['rate']}")
    if workers < 1:
        raise ParameterError(None, "--workers", f"must be >= 1, got {workers}")
    return out_dir, grid, points, base_meta


def _tasks(out_dir: Path, trace: str, base_meta, arch: str, points: list[Point], context: dict,
           modes: list[str], energy: str, samples: int | None, map_policy: str = "spec",
           objective: str = "energy") -> tuple[list[PointTask], dict[str, str]]:
    """The task of every point (making the synthetic traces a trace.* grid needs), and the
    sha256 of every trace they read, by absolute path."""
    base = str(Path(trace).resolve())
    arch_path = str(resolve_arch_spec(arch).resolve())
    tasks, digests = [], {base: context["trace_sha256"]}
    for p in points:
        path, tp = base, p.trace_params()
        if tp:
            path = str(synthetic_trace_for(out_dir, base_meta, tp.get("T", base_meta.T),
                                           tp.get("rate", PAPER_SPIKE_RATE), samples or base_meta.n_samples).resolve())
            digests.setdefault(path, file_digest(path))
        tasks.append(PointTask(str(out_dir.resolve()), point_id(context, p), p.as_dict(), tuple(p.overrides()),
                               path, digests[path], arch_path, tuple(modes), energy, samples, map_policy,
                               objective))
    return tasks, digests


def _unfinished(out_dir: Path, tasks: list[PointTask]) -> tuple[list[PointTask], list[tuple[Path, str]]]:
    """The tasks without a finished point file, and the files that fail their checks, with
    their problem (nothing is moved or written)."""
    todo, rejected = [], []
    for t in tasks:
        path = out_dir / POINTS_DIR / f"{t.pid}.json"
        if path.exists():
            doc, problem = read_point(path, t.pid, t.trace_sha256, t.params)
            if doc is not None:
                continue
            rejected.append((path, problem))
        todo.append(t)
    return todo, rejected


def _set_aside(rejected: list[tuple[Path, str]], summary: RunSummary, note) -> None:
    """Move each rejected point file to ``<id>.json.rejected`` and say so through ``note``."""
    for path, problem in rejected:
        aside = path.with_name(path.name + REJECTED_SUFFIX)
        os.replace(path, aside)
        summary.rejected.append({"file": str(path), "problem": problem})
        note(f"warning: {path}: {problem}; moved to {aside.name}, recomputing")


def execute_sweep(trace: str, arch: str, grid_items: list[str], modes: list[str], energy: str,
                  samples: int | None, out: str, scheduler: str | None = None, workers: int = 2,
                  progress: bool = True, keep_going: bool = False,
                  note: Callable[[str], None] | None = None, map_policy: str = "spec",
                  objective: str = "energy") -> dict:
    """Run (or resume) a sweep; returns the manifest, whose ``last_run`` counts the points
    computed, skipped (already done), failed and not run. Finished points are never rerun;
    rejected point files are moved aside and recomputed. Without ``keep_going`` no new point
    starts after the first failure. ``note`` receives one-line warnings as they arise."""
    note = note or (lambda line: None)
    started = time.time()
    out_dir, grid, points, base_meta = _check_inputs(trace, arch, grid_items, energy, samples, out, workers)
    out_dir.mkdir(exist_ok=True)  # --out itself is created, never its parent (checked to exist)
    (out_dir / POINTS_DIR).mkdir(exist_ok=True)
    summary = RunSummary(started, len(points), keep_going)
    summary.stale_temporaries_removed = remove_stale_temporaries(out_dir, started)
    if summary.stale_temporaries_removed:
        note(f"removed {summary.stale_temporaries_removed} stale temporary file(s) of interrupted runs from {out}")
    context = sweep_context(trace, arch, modes, energy, samples, map_policy, objective)
    tasks, digests = _tasks(out_dir, trace, base_meta, arch, points, context, modes, energy, samples,
                            map_policy, objective)
    manifest = {"schema": SWEEP_SCHEMA, "trace": str(trace), "arch": arch, "modes": modes,
                "energy_table": energy, "samples": samples, "map": map_policy, "objective": objective,
                "grid": [[k, v] for k, v in grid],
                "context": context,
                "points": [{"id": t.pid, "params": t.params, "trace_sha256": t.trace_sha256} for t in tasks]}
    todo, rejected = _unfinished(out_dir, tasks)
    summary.skipped = len(tasks) - len(todo)
    if todo and scheduler is None:
        prepare_local_workers()
    _write_manifest(out_dir, manifest, summary)
    bar = None
    outcomes = 0  # points of ``todo`` that came back

    def record(task: PointTask, outcome: dict) -> None:
        nonlocal outcomes
        outcomes += 1
        if outcome["status"] == "computed":
            summary.computed += 1
        elif outcome["status"] == "existing":
            summary.skipped += 1
        else:
            changed = bool(outcome.get("trace_changed"))
            summary.failed += 1
            summary.failures.append({"id": task.pid, "params": task.params, "error": outcome["error"],
                                     "trace_changed": changed})
            if changed and summary.trace_changed is None:
                summary.trace_changed = outcome["error"]
        if bar:
            bar.update(1)

    try:
        _set_aside(rejected, summary, note)
        if progress:
            import sys

            from tqdm import tqdm
            bar = tqdm(total=len(tasks), initial=summary.skipped, desc="sweep", unit="point", file=sys.stderr,
                       disable=None)
        if todo:
            run_on_dask(todo, run_point_safely, lambda t: f"sweep-point-{t.pid}", scheduler, workers,
                        keep_going, record)
    except KeyboardInterrupt:
        summary.status, summary.not_run = "interrupted", len(todo) - outcomes
        _write_manifest(out_dir, manifest, summary)
        raise
    finally:
        if bar:
            bar.close()
    summary.not_run = len(todo) - outcomes
    if summary.trace_changed is None:
        for path, sha in digests.items():  # a change after the last point read it is news too
            now = file_digest(path) if os.path.exists(path) else "(deleted)"
            if now != sha:
                summary.trace_changed = (f"{path}: content changed while the sweep ran "
                                         f"(sha256 {sha[:12]}... when it started, {now[:12]}... at its end)")
                break
    summary.status = "failed" if summary.failed or summary.not_run else "complete"
    write_summary(out_dir, manifest)
    return _write_manifest(out_dir, manifest, summary)


def _write_manifest(out_dir: Path, manifest: dict, summary: RunSummary) -> dict:
    manifest["last_run"] = summary.to_dict()
    write_atomic_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def summary_lines(manifest: dict, out: str) -> list[str]:
    """The one-line messages of a finished run: a changed trace, the failures (count and the
    first error), then the counts. The last line always starts with ``sweep OUT:``."""
    run = manifest["last_run"]
    lines = []
    refused = [f for f in run["failures"] if f["trace_changed"]]
    if refused:
        lines.append(f"error: {run['trace_changed']}; {len(refused)} point(s) read the new content and were not "
                     "filed: rerun the sweep to compute them from it")
    elif run["trace_changed"]:
        lines.append(f"warning: {run['trace_changed']}; every point was computed from the content it had at the "
                     "start: rerun the sweep to compute the new content's points")
    errors = [f for f in run["failures"] if not f["trace_changed"]]
    if errors:
        where = ", ".join(f"{k}={v}" for k, v in errors[0]["params"].items())
        stop = (f"; no new point was started after it ({run['not_run']} not run: --keep-going runs them)"
                if run["not_run"] else "")
        lines.append(f"error: {len(errors)} point(s) failed; the first, {where}: {errors[0]['error']}{stop}")
    counts = f"{run['computed']} computed, {run['skipped']} skipped (already done), {run['failed']} failed"
    counts += f", {run['not_run']} not run" if run["not_run"] else ""
    lines.append(f"sweep {out}: {run['points']} points: {counts}")
    return lines
