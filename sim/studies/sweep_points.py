"""The files of a sweep directory: point files sealed with a checksum, written atomically,
checked when read; stale temporaries of killed writers found and removed.

A point file (``points/<id>.json``, schema ``snn-energy-sweep-point/2``) holds the point's
parameters, the sha256 of the trace it was computed from, its reports, and ``sha256``: the
hash of the canonical JSON of everything else in the file. A file that does not parse, lacks
a field, fails its checksum, or was computed from another trace is not a finished point.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import io
import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ParameterError

POINT_SCHEMA = "snn-energy-sweep-point/2"
SWEEP_SCHEMA = "snn-energy-sweep/2"
MANIFEST = "sweep.json"
RESULTS = "results.csv"
POINTS_DIR = "points"
TRACES_DIR = "traces"
PLOTS_DIR = "plots"
#: A rejected point file is moved aside to ``points/<id>.json.rejected`` (the latest one kept).
REJECTED_SUFFIX = ".rejected"

# Each field of a point file and of each of its runs, with its type.
_POINT_FIELDS = {"schema": str, "id": str, "params": dict, "trace": str, "trace_sha256": str, "arch": str,
                 "energy_table": str, "runs": list, "ratios": dict, "sha256": str}
_RUN_FIELDS = {"mode": str, "samples": int, "cycles": int, "per_sample": dict, "energy_pj": dict,
               "totals": dict, "counts": dict}


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (identifies a trace or a spec by content, not by name)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def point_checksum(doc: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of ``doc`` without its
    ``sha256`` field; JSON floats round-trip exactly, so a re-read file hashes the same."""
    rest = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal_point(doc: dict) -> dict:
    """``doc`` with its schema and checksum."""
    doc = {**doc, "schema": POINT_SCHEMA}
    return {**doc, "sha256": point_checksum(doc)}


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _shape_problem(doc: Any, pid: str, params: dict | None) -> str | None:
    """What is wrong with the structure of a parsed point file, or None."""
    if not isinstance(doc, dict):
        return f"expected a JSON object, got {type(doc).__name__}"
    if doc.get("schema") != POINT_SCHEMA:
        return f"schema: expected {POINT_SCHEMA!r}, got {doc.get('schema')!r} (written by another version)"
    for key, kind in _POINT_FIELDS.items():
        if not _is(doc.get(key), kind):
            return f"{key}: expected {kind.__name__}, got {type(doc.get(key)).__name__}"
    if doc["id"] != pid:
        return f"id: expected {pid!r}, got {doc['id']!r}"
    if params is not None and doc["params"] != params:
        return f"params: expected {params}, got {doc['params']}"
    if not doc["runs"]:
        return "runs: empty"
    for i, run in enumerate(doc["runs"]):
        for key, kind in _RUN_FIELDS.items():
            if not isinstance(run, dict) or not _is(run.get(key), kind):
                return f"runs[{i}].{key}: expected {kind.__name__}"
        if not _is(run["energy_pj"].get("by_component"), dict):
            return f"runs[{i}].energy_pj.by_component: expected dict"
        if not all(_is(run["per_sample"].get(k), (int, float)) for k in ("energy_pj", "cycles")):
            return f"runs[{i}].per_sample: expected numbers energy_pj and cycles"
    return None


def _load_json(path: Path) -> Any:
    """The parsed file; ValueError (with a one-line reason) when it is not JSON."""
    try:
        return json.loads(Path(path).read_bytes())
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_point(path: Path, pid: str, trace_sha256: str | None,
               params: dict | None = None) -> tuple[dict | None, str | None]:
    """``(document, None)`` for a finished point; ``(None, problem)`` for a file that is
    unreadable, truncated, malformed, damaged (checksum), of other ``params`` or from another
    trace than ``trace_sha256`` (each not checked when None)."""
    try:
        doc = _load_json(path)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, nesting
        return None, f"not valid JSON (truncated?): {(str(exc).splitlines() or [''])[0]}"
    problem = _shape_problem(doc, pid, params)
    if problem:
        return None, problem
    if doc["sha256"] != point_checksum(doc):
        return None, "checksum mismatch: the content was changed or damaged after it was written"
    if trace_sha256 is not None and doc["trace_sha256"] != trace_sha256:
        return None, (f"computed from another trace (sha256 {doc['trace_sha256'][:12]}..., "
                      f"this sweep's trace is {trace_sha256[:12]}...)")
    return doc, None


# -- atomic files ---------------------------------------------------------------------
# A temporary's name carries its writer (host and pid), so a later run can tell the
# temporary of a killed writer from one being written right now.
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "localhost"


def temp_path(dest: Path) -> Path:
    """The hidden temporary next to ``dest`` for this host, process and thread."""
    return dest.with_name(f".{dest.name}.{_HOST}-{os.getpid()}-{threading.get_native_id()}.tmp")


@contextlib.contextmanager
def atomic_file(dest: str | os.PathLike):
    """Yield a temporary path; rename it onto ``dest`` when the block succeeds, remove it when
    it raises. A killed writer leaves at most the temporary, never a partial ``dest``."""
    dest = Path(dest)
    tmp = temp_path(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic_text(dest: str | os.PathLike, text: str) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_text(text)


# The files each folder of a sweep directory holds; only their temporaries are ever removed.
_OUR_FILES = {"": (MANIFEST, RESULTS), POINTS_DIR: ("*.json",), TRACES_DIR: ("*.h5",), PLOTS_DIR: ("*.png",)}
_TEMP_NAMES = (
    re.compile(r"^\.(?P<dest>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)(?:-\d+)?\.tmp$"),  # temp_path
    re.compile(r"^\.(?P<dest>.+)\.(?P<pid>\d+)\.tmp$"),  # sweeps of schema 1 (this host)
    re.compile(r"^\.(?P<dest>.+)\.[A-Za-z0-9_]+\.(?:tmp|partial)$"),  # mkstemp: report and trace writers
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such pid at all)
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(path: Path, patterns: tuple[str, ...], started: float) -> bool:
    """A temporary of ours whose writer on this host is gone; or, when the writer cannot be
    checked (another host, a random name), one last modified before this run started."""
    for regex in _TEMP_NAMES:
        m = regex.match(path.name)
        if m:
            break
    else:
        return False
    if not any(fnmatch.fnmatchcase(m["dest"], p) for p in patterns):
        return False
    groups = m.groupdict()
    if groups.get("pid") and groups.get("host", _HOST) == _HOST:
        return not _alive(int(groups["pid"]))
    try:
        return path.stat().st_mtime < started
    except FileNotFoundError:
        return False


def remove_stale_temporaries(out_dir: Path, started: float) -> int:
    """Remove the temporaries that killed writers left in a sweep directory; returns how many."""
    removed = 0
    for sub, patterns in _OUR_FILES.items():
        folder = out_dir / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") and path.is_file() and _is_stale(path, patterns, started):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


def check_layout(out_dir: Path, option: str = "--out") -> None:
    """ParameterError (one line) when an entry of an existing sweep directory has the wrong
    kind (``points`` a file, ``sweep.json`` a directory, ...): checked before anything runs."""
    for name, want_dir in ((POINTS_DIR, True), (TRACES_DIR, True), (PLOTS_DIR, True), (MANIFEST, False),
                           (RESULTS, False)):
        path = Path(out_dir) / name
        if path.exists() and path.is_dir() != want_dir:
            raise ParameterError(str(path), option, "exists and is not a " + ("directory" if want_dir else "file"))


# -- reading a sweep directory --------------------------------------------------------
@dataclass
class SweepState:
    """What a sweep directory holds: its manifest, the finished points (grid order), the
    manifest's points without a file, and the files rejected as (path, problem)."""

    manifest: dict
    finished: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)


#: A point id as ``point_id`` makes it: hex, so ``points/<id>.json`` stays inside ``points/``.
_POINT_ID = re.compile(r"^[0-9a-f]{1,64}$")


def _manifest_problem(m: Any) -> tuple[str | None, str] | None:
    """(field, what is wrong) with a parsed manifest, or None."""
    if not isinstance(m, dict):
        return None, f"expected a JSON object, got {type(m).__name__}"
    if m.get("schema") != SWEEP_SCHEMA:
        return "schema", f"expected {SWEEP_SCHEMA!r}, got {m.get('schema')!r} (rerun the sweep)"
    for key in ("trace", "arch"):
        if not isinstance(m.get(key), str):
            return key, "expected a string"
    modes = m.get("modes")
    if not isinstance(modes, list) or not modes or not set(modes) <= {"snn", "ann"}:
        return "modes", "expected a list of 'snn' and 'ann'"
    grid = m.get("grid")
    if not isinstance(grid, list) or not all(isinstance(g, list) and len(g) == 2 and isinstance(g[0], str)
                                             and isinstance(g[1], list) for g in grid):
        return "grid", "expected a list of [KEY.PATH, [values]]"
    points = m.get("points")
    if not isinstance(points, list):
        return "points", "expected a list"
    for i, e in enumerate(points):
        if not (isinstance(e, dict) and isinstance(e.get("id"), str) and _POINT_ID.match(e["id"])
                and isinstance(e.get("params"), dict) and isinstance(e.get("trace_sha256", ""), str)):
            return f"points[{i}]", "expected {\"id\": hex, \"params\": {...}, \"trace_sha256\": str}"
        if any(k not in e["params"] for k, _ in grid):
            return f"points[{i}].params", "lacks a swept field of the grid"
    return None


def read_manifest(out_dir: Path) -> dict:
    """``sweep.json`` of a sweep directory; ParameterError (one line) if absent or damaged."""
    path = Path(out_dir) / MANIFEST
    if not Path(out_dir).is_dir():
        raise ParameterError(str(out_dir), None, "no such directory")
    if not path.is_file():
        raise ParameterError(str(out_dir), None, f"not a sweep directory (no {MANIFEST})")
    try:
        manifest = _load_json(path)
    except OSError as exc:
        raise ParameterError(str(path), None, f"unreadable: {exc.strerror}") from None
    except ValueError as exc:
        raise ParameterError(str(path), None, "not valid JSON (truncated?): "
                             f"{(str(exc).splitlines() or [''])[0]}") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise ParameterError(str(path), *problem)
    return manifest


def scan_points(out_dir: Path, manifest: dict) -> SweepState:
    """Check every point file the manifest names (nothing is moved or written)."""
    state = SweepState(manifest)
    for entry in manifest["points"]:
        path = Path(out_dir) / POINTS_DIR / f"{entry['id']}.json"
        if not path.exists():
            state.missing.append(entry)
            continue
        doc, problem = read_point(path, entry["id"], entry.get("trace_sha256"), entry["params"])
        if doc is None:
            state.rejected.append((path, problem))
        else:
            state.finished.append(doc)
    return state


def load_points(out_dir: Path, manifest: dict | None = None) -> list[dict]:
    """The finished points of a sweep directory, in grid order."""
    return scan_points(out_dir, manifest or read_manifest(out_dir)).finished


def summary_row(result: dict) -> list[dict]:
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


def write_summary(out_dir: Path, manifest: dict) -> None:
    """``results.csv``: one row per finished point and mode, in grid order (removed when no
    point is finished, so it never describes another grid)."""
    rows = [row for result in scan_points(out_dir, manifest).finished for row in summary_row(result)]
    dest = Path(out_dir) / RESULTS
    if not rows:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        return
    fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic_text(dest, buf.getvalue())
