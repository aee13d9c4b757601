"""Parameter sweeps on Dask: a Cartesian grid over arch-spec fields (and T / spike rate of
synthetic traces), one replay per point, each result written atomically when it finishes.

A point's file name is a hash of everything that determines its result, so rerunning the
same command skips finished points, and an interrupted sweep (even SIGKILLed, client and
workers) resumes without losing or duplicating a point: a result file either exists whole or
not at all.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.arch.spec import load_arch_spec, parse_override, resolve_arch_spec
from sim.analytic.paper_v1 import PAPER_SPIKE_RATE
from sim.errors import ParameterError

TRACE_KEYS = ("trace.T", "trace.rate")
POINTS_DIR = "points"
TRACES_DIR = "traces"


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
    """``key.path=v1,v2`` items -> [(key, [values])], checked against the spec."""
    known = dict(sweepable_params(arch))
    grid = []
    for item in items:
        key, raw = parse_override(item)
        key = ".".join(key)
        values = [yaml.safe_load(v) for v in str(item.split("=", 1)[1]).split(",") if v.strip()]
        if not values:
            raise ParameterError(None, f"--grid {key}", "needs at least one value")
        if key not in known and key not in TRACE_KEYS:
            raise ParameterError(None, f"--grid {key}", "not a sweepable field "
                                 f"(see `run_sim.py sweep --list-params --arch {arch}`)")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ParameterError(None, f"--grid {key}", f"values must be numbers, got {v!r}")
        if any(k == key for k, _ in grid):
            raise ParameterError(None, f"--grid {key}", "given twice")
        grid.append((key, values))
    if not grid:
        raise ParameterError(None, "--grid", "give at least one --grid key.path=v1,v2,...")
    return grid


def grid_points(grid: list[tuple[str, list]]) -> list[Point]:
    keys = [k for k, _ in grid]
    return [Point(tuple(zip(keys, combo))) for combo in itertools.product(*(v for _, v in grid))]


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (identifies a trace or a spec by content, not by name)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def point_id(context: dict, point: Point) -> str:
    """Stable id of a point: a hash of the sweep context (trace and spec contents, mode,
    samples, energy table) and the point's parameters."""
    text = json.dumps({"context": context, "params": point.as_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def write_atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def synthetic_trace_for(out_dir: Path, base_meta, T: int, rate: float, samples: int) -> Path:
    """The synthetic trace of the base trace's model shape at (T, rate), made once per sweep."""
    from sim.trace.shapes import MODEL_SHAPES, model_layers
    from sim.trace.synthetic import write_synthetic_trace

    if base_meta.model not in MODEL_SHAPES:
        raise ParameterError(None, "--grid trace.*", f"model {base_meta.model!r} has no synthetic shape "
                             f"(known: {', '.join(MODEL_SHAPES)})")
    path = out_dir / TRACES_DIR / f"{base_meta.model}_T{T}_rate{rate:g}_n{samples}.h5"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        layers, shape = model_layers(base_meta.model, int(T))
        write_synthetic_trace(path, layers, shape, model=base_meta.model, T=int(T), n_samples=samples,
                              rate=float(rate), seed=0, with_weights=False)
    return path


def run_point(out_dir: str, pid: str, trace_path: str, arch: str, overrides: list[str], modes: list[str],
              energy: str, samples: int | None, params: dict) -> dict:
    """Replay one point and write ``points/<pid>.json`` atomically. Runs on a Dask worker."""
    from sim.report import ratios
    from sim.replay import replay
    from sim.trace import open_trace

    dest = Path(out_dir) / POINTS_DIR / f"{pid}.json"
    if dest.exists():  # another worker or an earlier run finished it
        return json.loads(dest.read_text())
    with open_trace(trace_path) as tr:
        reports = replay(tr, arch, modes, energy, samples, overrides, progress=False)
    for r in reports:  # keep the point files small: per-layer counts stay, the spec copy goes
        r["arch"].pop("spec", None)
    result = {"id": pid, "params": params, "trace": trace_path, "arch": arch, "energy_table": energy,
              "runs": reports, "ratios": ratios(reports)}
    write_atomic_json(dest, result)
    return result


def summary_row(result: dict) -> dict:
    """One flat CSV row per point and mode."""
    rows = []
    for r in result["runs"]:
        row = {"id": result["id"], **result["params"], "mode": r["mode"],
               "energy_pj_per_sample": r["per_sample"]["energy_pj"],
               "cycles_per_sample": r["per_sample"]["cycles"]}
        row.update({f"energy_{k}_pj": v / r["samples"] for k, v in sorted(r["energy_pj"]["by_component"].items())})
        row.update({k: v for k, v in r["totals"].items()})
        rows.append(row)
    return rows


def sweep_context(trace: str, arch: str, modes: list[str], energy: str, samples: int | None) -> dict:
    from sim.arch.energy import resolve_energy_table

    return {"trace_sha256": file_digest(trace), "arch_sha256": file_digest(resolve_arch_spec(arch)),
            "arch": Path(str(resolve_arch_spec(arch))).stem, "modes": modes,
            "energy_sha256": file_digest(resolve_energy_table(energy)), "samples": samples}


def _run_point_safely(*args) -> dict:
    """run_point, but a point whose parameters are impossible is recorded, not fatal."""
    from sim.errors import SimInputError

    try:
        return run_point(*args)
    except SimInputError as exc:
        out_dir, pid, _, _, _, _, _, _, params = args
        result = {"id": pid, "params": params, "error": exc.one_line(), "runs": [], "ratios": {}}
        write_atomic_json(Path(out_dir) / POINTS_DIR / f"{pid}.json", result)
        return result


def execute_sweep(trace: str, arch: str, grid_items: list[str], modes: list[str], energy: str,
                  samples: int | None, out: str, scheduler: str | None = None, workers: int = 2,
                  progress: bool = True) -> dict:
    """Run (or resume) a sweep; returns the manifest. Finished points are never rerun."""
    import sys

    from sim.arch.energy import load_energy_table
    from sim.trace import open_trace

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
    out_dir = Path(out)
    (out_dir / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    context = sweep_context(trace, arch, modes, energy, samples)
    jobs = []
    for p in points:
        pid = point_id(context, p)
        tp = p.trace_params()
        path = trace
        if tp:
            n = samples or base_meta.n_samples
            path = str(synthetic_trace_for(out_dir, base_meta, tp.get("T", base_meta.T),
                                           tp.get("rate", PAPER_SPIKE_RATE), n))
        jobs.append((pid, p, path))
    manifest = {"schema": "snn-energy-sweep/1", "trace": str(trace), "arch": arch, "modes": modes,
                "energy_table": energy, "samples": samples, "grid": [[k, v] for k, v in grid],
                "context": context, "points": [{"id": pid, "params": p.as_dict()} for pid, p, _ in jobs]}
    write_atomic_json(out_dir / "sweep.json", manifest)
    todo = [(pid, p, path) for pid, p, path in jobs if not (out_dir / POINTS_DIR / f"{pid}.json").exists()]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="sweep", unit="point",
                   file=sys.stderr, disable=None)
    if todo:
        _run_on_dask(todo, str(out_dir.resolve()), arch, modes, energy, samples, scheduler, workers, bar)
    if bar:
        bar.close()
    write_summary(out_dir, manifest)
    return manifest


def _run_on_dask(todo, out_dir, arch, modes, energy, samples, scheduler, workers, bar) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        client = Client(cluster)
    try:
        arch_path = str(resolve_arch_spec(arch).resolve())
        futures = [client.submit(_run_point_safely, out_dir, pid, str(Path(path).resolve()), arch_path,
                                 p.overrides(), modes, energy, samples, p.as_dict(), key=f"sweep-point-{pid}",
                                 pure=False) for pid, p, path in todo]
        for fut in as_completed(futures):
            fut.result()  # re-raise a worker's unexpected error here
            if bar:
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def load_points(out_dir: Path, manifest: dict | None = None) -> list[dict]:
    """The finished points of a sweep directory, in grid order."""
    out_dir = Path(out_dir)
    manifest = manifest or json.loads((out_dir / "sweep.json").read_text())
    results = []
    for entry in manifest["points"]:
        path = out_dir / POINTS_DIR / f"{entry['id']}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
    return results


def write_summary(out_dir: Path, manifest: dict) -> None:
    from sim.report.output import write_csv

    rows = [row for result in load_points(out_dir, manifest) if not result.get("error")
            for row in summary_row(result)]
    if rows:
        write_csv(rows, str(Path(out_dir) / "results.csv"))
