#!/usr/bin/env python3
"""Fuzz the CLI: every invocation on any input must end as a valid result or a clean rejection.

    .venv/bin/python benchmarks/fuzz.py --cases 2000 [--seed S] [--timeout SEC] [--jobs J]
        [--kinds traces,specs,tables,args,reports,sweeps] [--out DIR] [--runner subprocess|fork]
    .venv/bin/python benchmarks/fuzz.py --seed S --case ID       # regenerate and rerun one case

The contract (issue 13, item 7): each `run_sim.py` invocation ends either as a valid result
(exit 0, every output it names complete) or as a clean rejection (exit 2, exactly one line on
stderr that starts with ``error: `` and names the file or option at fault, no traceback, no
output file or temporary file left behind), within a time limit. Exit 1 is allowed only where
documented (``validate`` disagreeing with the closed form, a sweep with failed points).

Design
------
* **Generator.** Case ``i`` of seed ``S`` draws everything from ``random.Random(f"S:i")``, so a
  case is reproducible alone (``--case i``). A case is one mutated input (kept under
  ``OUT/cases/<id>/``) and one or more *steps*, each a CLI invocation with an *oracle*:
  ``invalid`` (invalid by construction: exit 0 is a failure), ``valid`` (unmutated controls,
  a sweep resuming after a lost point: a rejection is a failure), ``either``, ``same`` (exit 0
  only if the result equals the unmutated input's result, minus file paths: byte-level trace
  damage and benign changes), ``unpriced`` (an energy-table entry deleted: exit 0 only with a
  warning naming it, or a result equal to the unmutated table's).
  Kinds and their mutation classes: see ``MUTATORS`` and the ``gen_*`` functions.
* **Runner.** ``--runner subprocess`` (the default) runs ``python run_sim.py ...`` exactly as a
  user would. ``--runner fork`` imports the package and warms numba's kernels once, then forks
  one child per step that runs ``run_sim.py`` through :mod:`runpy` with the same argv, cwd,
  stdio and exit-status rules as the interpreter (an uncaught exception prints a traceback and
  exits 1); it is ~20x cheaper per case and is what the CI test uses. Every distinct failure's
  first reproducer is re-run as a real subprocess (``confirmed`` in the summary). Each child is
  its own process group (killed whole on timeout), with an address-space limit (``--mem-mb``).
* **Classifier.** Per step, in this order: ``hang`` (timeout), ``traceback`` (a Python
  traceback on stderr), ``bad-exit`` (exit status other than 0/2, or 1 where not documented;
  signals included), ``unclean-reject`` (exit 2 but stderr is not exactly one ``error: `` line
  naming the file/option), ``partial-output`` (a named output missing/incomplete after exit 0,
  or present after a rejection; any new stray/temporary file), ``accepted-invalid``,
  ``silently-wrong`` (exit 0 with a result that differs from the oracle's or fails the sanity
  checks: negative/non-integer counts, non-finite or negative energies), ``rejected-valid``;
  else ``ok`` / ``clean-reject``.
* **Report.** Outcomes per kind and per mutation class, then one row per distinct failure
  signature (outcome, command, mutation target, exception and innermost frame) with its count and
  first reproducer: the exact command line and the kept files. ``OUT/summary.json`` holds it all.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
RUN_SIM = REPO / "run_sim.py"
PY = sys.executable
TINY = REPO / "traces" / "tiny_synth_T4.h5"
DIGITS = REPO / "traces" / "digits_snn_T6.h5"
ARCH_DIR = REPO / "arch_specs"
ENERGY_DIR = ARCH_DIR / "energy"
ARCH_NAMES = ("memory_hierarchy", "neuromorphic", "spatial_dataflow")
TABLE_NAMES = ("paper_v1_45nm", "horowitz_45nm", "loihi")

KINDS = ("traces", "specs", "tables", "args", "reports", "sweeps")
#: Relative frequency of each kind among generated cases.
KIND_WEIGHTS = {"traces": 34, "specs": 16, "tables": 14, "args": 16, "reports": 12, "sweeps": 8}
DEFAULT_KIND_WEIGHTS = dict(KIND_WEIGHTS)

OK_OUTCOMES = ("ok", "clean-reject")
FAILURES = ("hang", "traceback", "bad-exit", "unclean-reject", "partial-output", "accepted-invalid",
            "silently-wrong", "rejected-valid")
OUTCOMES = OK_OUTCOMES + FAILURES


# ==========================================================================================
# Cases
# ==========================================================================================

@dataclass
class Step:
    """One CLI invocation of a case and its oracle."""

    argv: list[str]
    expect: str = "invalid"           # invalid | valid | either | same | unpriced
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (path, json|csv|png|plotdir)
    names: list[str] = field(default_factory=list)  # a rejection must mention one of these
    baseline: str | None = None       # key of the unmutated result, for expect=same/unpriced
    allow_exit1: bool = False         # documented exit 1 (validate, sweep with failed points)
    timeout_mul: float = 1.0
    sweep_dir: str | None = None      # a sweep directory this step may legitimately write in
    check: str | None = None          # extra post-condition on exit 0: sweep | synth
    warn_names: list[str] = field(default_factory=list)  # expect=unpriced: the warning must name one

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv else "?"


@dataclass
class Case:
    id: int
    kind: str
    mclass: str
    target: str                       # what was mutated, without random values (signature)
    detail: str                       # what was mutated, exactly
    dir: Path
    steps: list[Step] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # mutated inputs (kept for reproducers)


class Skip(Exception):
    """A mutator that does not apply to the chosen base input (the case is redrawn)."""


def pick(rng: random.Random, items):
    items = list(items)
    return items[rng.randrange(len(items))]


# ==========================================================================================
# Context: base inputs and the results of the unmutated inputs (the "same" oracle)
# ==========================================================================================

class Context:
    def __init__(self, out: Path, runner: "Runner"):
        self.out = out
        self.base = out / "base"
        self.runner = runner
        self.baselines: dict[str, Any] = {}
        self.traces = {"tiny": TINY, "digits": DIGITS}
        self.notes: list[str] = []
        self.baseline_argv: dict[str, list[str]] = {}

    def prepare(self, kinds: list[str]) -> None:
        global TINY, DIGITS
        if self.base.exists():
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        # Work on copies of the bundled traces: the originals may be rewritten while we run.
        TINY = self.base / TINY.name
        DIGITS = self.base / DIGITS.name
        shutil.copyfile(REPO / "traces" / TINY.name, TINY)
        shutil.copyfile(REPO / "traces" / DIGITS.name, DIGITS)
        self.traces = {"tiny": TINY, "digits": DIGITS}
        for name, bundled in (("resnet", "tiny_resnet_T4.h5"), ("resnet_lif", "tiny_resnet_lif_T4.h5"),
                              ("resnet_current", "tiny_resnet_current_T4.h5")):
            if (REPO / "traces" / bundled).is_file():   # format-3 graphs (residual adds, max-pool, LIF)
                shutil.copyfile(REPO / "traces" / bundled, self.base / bundled)
                self.traces[name] = self.base / bundled
        # Traces written by the current writer (format version 2 when it writes checksums):
        # optional, so that a writer in mid-change does not stop the fuzzer.
        for name, write in (("pad", write_pad_trace), ("tiny2", write_tiny2_trace)):
            path = self.base / f"{name}.h5"
            try:
                write(path)
                self.traces[name] = path
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"base trace {name} not written ({type(exc).__name__}: {exc}); left out")
        jobs: dict[str, list[str]] = {}
        for name, path in self.traces.items():
            jobs[f"inspect:{name}"] = ["inspect", str(path), "--json", str(self.base / f"inspect_{name}.json")]
            jobs[f"replay:{name}"] = ["replay", str(path), "--arch", "all", "--samples", "1", "--quiet",
                                      "--json", str(self.base / f"replay_{name}.json")]
        for table in TABLE_NAMES:
            jobs[f"table:{table}"] = ["replay", str(TINY), "--arch", "all", "--energy", table, "--samples", "1",
                                      "--quiet", "--json", str(self.base / f"table_{table}.json")]
        jobs["report:single"] = ["replay", str(TINY), "--arch", "memory_hierarchy", "--mode", "snn", "--samples",
                                 "1", "--quiet", "--json", str(self.base / "report_single.json")]
        jobs["report:multi"] = ["replay", str(TINY), "--arch", "all", "--samples", "1", "--quiet",
                                "--json", str(self.base / "report_multi.json")]
        for table in TABLE_NAMES:
            jobs[f"reprice:multi:{table}"] = ["reprice", str(self.base / "report_multi.json"), "--energy", table,
                                              "--json", str(self.base / f"reprice_multi_{table}.json")]
        order = [k for k in jobs if not k.startswith("reprice")] + [k for k in jobs if k.startswith("reprice")]
        if "sweeps" in kinds:
            self.sweep_dir = self.base / "sweep"
            jobs["sweep"] = sweep_argv(self.sweep_dir)
            order.append("sweep")
        for key in order:
            res = self.runner.run_one(jobs[key], self.base / f"{key.replace(':', '_')}", timeout=120)
            optional = key.split(":")[-1] in ("pad", "tiny2", "resnet", "resnet_lif", "resnet_current")
            if res.rc != 0 and optional:
                self.notes.append(f"base trace {key.split(':')[-1]} fails its baseline ({_first_line(res.stderr)}); left out")
                self.traces.pop(key.split(":")[-1], None)
                continue
            if res.rc != 0:
                raise SystemExit(f"fuzz: the unmutated input fails ({key}): rc={res.rc}\n"
                                 f"  {shell_line(jobs[key])}\n{res.stderr[-2000:]}")
            if key != "sweep":
                path = Path(jobs[key][jobs[key].index("--json") + 1])
                self.baselines[key] = normalise(json.loads(path.read_text()))
                self.baseline_argv[key] = jobs[key]

    def refresh(self, key: str) -> Any:
        """The unmutated input's result computed again now (the code under test may have
        changed since the baselines were made: other people edit it while we run)."""
        argv = self.baseline_argv[key]
        res = Runner(self.runner.mode, 1, self.runner.timeout, self.runner.mem_mb).run_one(
            argv, self.base / "refresh" / key.replace(":", "_"), timeout=120)
        if res.rc == 0:
            with contextlib.suppress(Exception):
                fresh = normalise(json.loads(Path(argv[argv.index("--json") + 1]).read_text()))
                if first_difference(fresh, self.baselines[key]):   # only then did the code change
                    self.notes.append(f"baseline {key} recomputed during the run (the code changed)")
                self.baselines[key] = fresh
        return self.baselines[key]


def sweep_argv(out_dir: Path) -> list[str]:
    return ["sweep", str(TINY), "--arch", "memory_hierarchy", "--grid", "components.dram.latency_cycles=10,100",
            "--mode", "snn", "--samples", "1", "--workers", "1", "--quiet", "--out", str(out_dir)]


def write_pad_trace(path: Path) -> None:
    """A small trace whose spiking layers have neurons that are not a multiple of 8, so the
    packed spikes carry padding bits (the bundled traces have none)."""
    from sim.trace.schema import LayerSpec
    from sim.trace.synthetic import write_synthetic_trace

    T = 3
    layers = [
        LayerSpec("conv1", "conv2d", (1, 5, 5), (3, 5, 5), (3, 3), (1, 1), (1, 1), act_scale=1 / T, has_bias=True),
        LayerSpec("flatten", "flatten", (3, 5, 5), (75,), output="passthrough"),
        LayerSpec("fc1", "linear", (75,), (10,), act_scale=1 / T, has_bias=True),
        LayerSpec("fc2", "linear", (10,), (3,), output="potential", has_bias=True),
    ]
    write_synthetic_trace(path, layers, (1, 5, 5), model="pad", T=T, n_samples=2, rate=0.3, seed=3)


def write_tiny2_trace(path: Path) -> None:
    """The tiny model re-synthesised by the current writer (the bundled tiny trace may be an
    older format version)."""
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    layers, input_shape = model_layers("tiny", 4)
    write_synthetic_trace(path, layers, input_shape, model="tiny", T=4, n_samples=3, rate=0.2, seed=7)


def reseal(f) -> bool:
    """Recompute a format-2 trace's checksums after a structured mutation, as a buggy (or
    hostile) writer would, so that the reader's semantic checks, not its checksums, are what
    is tested. False when the file carries no checksums (or the integrity module is absent)."""
    try:
        from sim.trace import integrity as I
    except ImportError:
        return False
    if I.META_DIGEST_ATTR not in f.attrs:
        return False
    import h5py

    paths = [k for k in I.ROOT_DATASETS if k in f]
    if "layers" in f and isinstance(f["layers"], h5py.Group):
        for gname in f["layers"]:
            with contextlib.suppress(Exception):
                g = f["layers"][gname]
                paths += [f"layers/{gname}/{k}" for k in I.LAYER_DATASETS if k in g]
    for p in paths:
        with contextlib.suppress(Exception):
            ds = f[p]
            if not isinstance(ds, h5py.Dataset) or I.DIGEST_ATTR not in ds.attrs:
                continue
            key = p.rsplit("/", 1)[-1]
            if key in I.ROW_DATASETS and ds.ndim >= 1:
                rows = [I.row_digest(ds[i]) for i in range(ds.shape[0])]
                ds.attrs[I.DIGEST_ATTR] = np.stack(rows) if rows else np.zeros((0, I.DIGEST_BYTES), np.uint8)
            else:
                ds.attrs[I.DIGEST_ATTR] = I.row_digest(ds[()])
    with contextlib.suppress(Exception):
        f.attrs[I.META_DIGEST_ATTR] = I.meta_digest(I.file_objects(f))
    return True


def normalise(doc: Any) -> Any:
    """A result without the fields that name files (compared across file names)."""
    if isinstance(doc, dict):
        return {k: normalise(v) for k, v in doc.items()
                if k not in ("path",) and not (k == "trace" and isinstance(v, str))}
    if isinstance(doc, list):
        return [normalise(v) for v in doc]
    return doc


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{where or '.'}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{where}.{k}: only in one"
            d = first_difference(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


# ==========================================================================================
# Traces: byte-level and structured (h5py) mutations
# ==========================================================================================

ROOT_ATTRS = {  # name -> type, per docs/trace-format.md
    "format": "enum", "format_version": "int", "model": "str", "dataset": "str", "T": "int",
    "n_samples": "int", "input_shape": "shape", "neuron": "json", "encoding": "enum",
    "ann_activation_bits": "int", "weight_bits": "int", "synthetic": "bool", "recorder": "str",
    "library_versions": "json", "description": "str", "layer_names": "names", "twin_levels": "enum",
    "dynamics": "enum",
}
LAYER_ATTRS = {
    "name": "str", "index": "int", "kind": "enum", "input_shape": "shape", "output_shape": "shape",
    "kernel": "ints", "stride": "ints", "padding": "ints", "groups": "int", "output": "enum",
    "act_scale": "float", "has_bias": "bool", "input_from": "str", "inputs": "json", "dilation": "ints",
    "neuron": "json",
}
OPTIONAL_ROOT = ("description", "dynamics")
FREE_TEXT = ("model", "dataset", "recorder", "description")


def trace_layout(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        layers = []
        for gname in sorted(f["layers"]):
            g = f["layers"][gname]
            layers.append({"group": f"layers/{gname}", "attrs": dict(g.attrs),
                           "datasets": sorted(k for k in g if isinstance(g[k], h5py.Dataset))})
        return {"attrs": dict(f.attrs), "layers": layers,
                "root_datasets": sorted(k for k in f if isinstance(f[k], h5py.Dataset))}


def byte_mutation(rng: random.Random, data: bytearray) -> tuple[str, str, bytes]:
    """(mclass, detail, new bytes). Half the offsets fall in the first 4 KiB (the superblock,
    object headers and attributes), the rest anywhere (mostly compressed chunks)."""
    n = len(data)

    def offset() -> int:
        return rng.randrange(min(n, 4096)) if rng.random() < 0.5 else rng.randrange(n)

    op = pick(rng, ["bitflip", "multiflip", "byteset", "truncate", "zero", "append"])
    d = bytearray(data)
    if op == "bitflip":
        i, b = offset(), rng.randrange(8)
        d[i] ^= 1 << b
        detail = f"flip bit {b} of byte {i}"
    elif op == "multiflip":
        k = rng.randint(2, 32)
        offs = sorted(offset() for _ in range(k))
        for i in offs:
            d[i] ^= 1 << rng.randrange(8)
        detail = f"flip {k} bits at bytes {offs[:6]}{'...' if k > 6 else ''}"
    elif op == "byteset":
        i = offset()
        k = rng.randint(1, 8)
        val = pick(rng, [0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        d[i:i + k] = bytes([val]) * len(d[i:i + k])
        detail = f"set {k} bytes at {i} to {val:#04x}"
    elif op == "truncate":
        i = pick(rng, [rng.randrange(n), rng.randrange(min(n, 4096)), n - rng.randint(1, 64), 0])
        d = d[:i]
        detail = f"truncate to {i} of {n} bytes"
    elif op == "zero":
        i = offset()
        k = rng.randint(16, 4096)
        d[i:i + k] = bytes(len(d[i:i + k]))
        detail = f"zero {k} bytes from {i}"
    else:
        k = rng.randint(1, 4096)
        d += bytes(rng.randrange(256) for _ in range(k))
        detail = f"append {k} garbage bytes"
    return f"bytes-{op}", detail, bytes(d)


def _is_override(name: str) -> bool:
    """True for an energy-table entry that prices one action of a class apart from the class
    rule (``<class>_<action>``), which a table may drop: the class rule then prices it."""
    from sim.arch.components import COMPONENT_CLASSES

    rules = {e for c in COMPONENT_CLASSES.values() for a in c.performs for e in (c.entries(a) or ())}
    overrides = {f"{n}_{a}" for n, c in COMPONENT_CLASSES.items() for a in c.performs}
    return name in overrides and name not in rules


def _same_value(a, b) -> bool:
    """True when an attribute mutation wrote back the value (and type) it found."""
    try:
        return type(a) is type(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    except Exception:  # noqa: BLE001 (incomparable values are different)
        return False


def _typo(rng: random.Random, name: str) -> str:
    for _ in range(20):
        op = rng.randrange(5)
        i = rng.randrange(len(name))
        if op == 0 and len(name) > 2:
            j = min(i + 1, len(name) - 1)
            s = list(name)
            s[i], s[j] = s[j], s[i]
            new = "".join(s)
        elif op == 1 and len(name) > 2:
            new = name[:i] + name[i + 1:]
        elif op == 2:
            new = name[:i] + name[i] + name[i:]
        elif op == 3:
            new = name + "s"
        else:
            new = name[:i] + name[i].upper() + name[i + 1:] if name[i].islower() else name + "_"
        if new != name and re.match(r"^[A-Za-z][A-Za-z0-9_]*$", new):
            return new
    return name + "x"


def structured_trace_mutation(rng: random.Random, path: Path, base: str) -> tuple[str, str, str, str]:
    """Mutate the trace at ``path`` in place with h5py; returns (mclass, target, detail, expect)."""
    import h5py

    lay = trace_layout(path)
    layers = lay["layers"]
    spiking = [l for l in layers if l["attrs"]["output"] == "spikes"]
    weighted = [l for l in layers if "weight" in l["datasets"]]
    T = int(lay["attrs"]["T"])
    n = int(lay["attrs"]["n_samples"])
    ops = ["attr-delete", "attr-rename", "attr-type", "attr-value", "neuron-json", "layer-names",
           "ds-delete", "ds-rename", "ds-dtype", "ds-shape", "ds-values", "link", "extra", "control"]
    if any("inputs" in l["attrs"] for l in layers):   # a format-3 graph
        ops += ["graph-inputs", "graph-inputs"]
    mclass = pick(rng, ops)
    with h5py.File(path, "r+") as f:

        def rewrite(ds_path: str, data, dtype=None, keep_chunks=True):
            old = f[ds_path]
            attrs = dict(old.attrs)
            del f[ds_path]
            kw = {}
            arr = np.asarray(data) if dtype is None else np.asarray(data).astype(dtype)
            if keep_chunks and arr.ndim >= 1 and arr.size and rng.random() < 0.5:
                kw = {"compression": "gzip", "chunks": True}
            new = f.create_dataset(ds_path, data=arr, **kw)
            for k, v in attrs.items():
                new.attrs[k] = v

        def attr_target():
            if rng.random() < 0.4:
                return "", f, pick(rng, [a for a in ROOT_ATTRS if a in f.attrs]), ROOT_ATTRS
            l = pick(rng, layers)
            g = f[l["group"]]   # format 2 layers name input_from, format 3 layers inputs/dilation/neuron
            return l["group"], g, pick(rng, [a for a in LAYER_ATTRS if a in g.attrs]), LAYER_ATTRS

        if mclass == "attr-delete":
            where, obj, key, table = attr_target()
            del obj.attrs[key]
            expect = "either" if (not where and key in OPTIONAL_ROOT) else "invalid"
            return mclass, f"{'layer' if where else 'root'}.{key}", f"delete attribute {where or '/'}:{key}", expect

        if mclass == "attr-rename":
            where, obj, key, table = attr_target()
            new = _typo(rng, key)
            obj.attrs[new] = obj.attrs[key]
            del obj.attrs[key]
            expect = "either" if (not where and key in OPTIONAL_ROOT) else "invalid"
            return mclass, f"{'layer' if where else 'root'}.{key}", f"rename attribute {where or '/'}:{key} -> {new}", expect

        if mclass in ("attr-type", "attr-value"):
            where, obj, key, table = attr_target()
            typ = table[key]
            old = obj.attrs[key]
            value, expect, what = _attr_mutation(rng, mclass, key, typ, old, T, n, bool(where), lay)
            if value is _DELETE:
                del obj.attrs[key]
            else:
                obj.attrs[key] = value
                if _same_value(value, old):  # "set index to 0" where it was 0 changes nothing
                    expect = "either"
            scope = "layer" if where else "root"
            return mclass, f"{scope}.{key}:{what}", f"{where or '/'}:{key} = {_short_repr(value)} (was {_short_repr(old)})", expect

        if mclass == "neuron-json":
            # format 3: the root's default or one layer's own model
            owners = [("", f)] + [(l["group"], f[l["group"]]) for l in layers
                                  if str(l["attrs"].get("neuron", "null")) not in ("null", "b'null'")]
            where, obj = pick(rng, owners)
            good = json.loads(obj.attrs["neuron"])
            choices = {
                "type-unknown": {**good, "type": pick(rng, ["LIF", "Izhikevich", "", "if"])},
                "threshold-nan": None, "threshold-neg": {**good, "threshold": -1.0},
                "threshold-zero": {**good, "threshold": 0.0}, "threshold-str": {**good, "threshold": "0.9999"},
                "reset-unknown": {**good, "reset": "bogus"}, "leak-nan": None,
                "extra-key": {**good, "tau": 2.0}, "missing-key": {k: v for k, v in good.items() if k != "threshold"},
                "null": None, "list": None, "not-json": None, "empty": None,
            }
            which = pick(rng, list(choices))
            text = {"threshold-nan": json.dumps({**good, "threshold": float("nan")}),
                    "leak-nan": json.dumps({**good, "leak": float("nan")}),
                    "null": "null", "list": "[1, 2]", "not-json": "{type: IF", "empty": ""}.get(which)
            if text is None:
                text = json.dumps(choices[which])
            obj.attrs["neuron"] = text
            same = which == "type-unknown" and json.loads(text) == good   # LIF written over LIF
            return mclass, f"neuron:{which}", f"{where or '/'}:neuron = {text!r}", "either" if same else "invalid"

        if mclass == "graph-inputs":
            graph = [l for l in layers if "inputs" in l["attrs"]]
            l = pick(rng, graph)
            names = [x["attrs"]["name"] for x in layers]
            me = l["attrs"]["name"]
            i = names.index(me)
            cur = json.loads(l["attrs"]["inputs"])
            adds = [x for x in graph if x["attrs"]["kind"] == "add"]
            which = pick(rng, ["later", "unknown", "self", "empty", "not-list", "duplicate", "add-one", "add-swap",
                               "rewire"])
            if which in ("duplicate", "add-one", "add-swap") and adds:
                l = pick(rng, adds)
                me, cur = l["attrs"]["name"], json.loads(l["attrs"]["inputs"])
                i = names.index(me)
            expect = "invalid"
            if which == "later" and i + 1 < len(names):
                new = [pick(rng, names[i + 1:])]
            elif which == "self":
                new = [me]
            elif which == "empty":
                new = []
            elif which == "not-list":
                new = cur[0]
            elif which == "duplicate":
                new = [cur[0], cur[0]]
            elif which == "add-one" and len(cur) > 1:
                new = cur[:1]
                expect = "invalid" if l["attrs"]["kind"] == "add" else "either"
            elif which == "add-swap":
                new = list(reversed(cur))   # an add's operand order changes no count of the graph
                expect = "either"
            elif which == "rewire":
                new = [pick(rng, ["input", *names[:i]])]   # valid when the shape matches and nothing dangles
                expect = "either"
            else:
                which, new = "unknown", ["ghost"]
            l_obj = f[l["group"]]
            l_obj.attrs["inputs"] = json.dumps(new)
            if new == cur:
                expect = "either"
            return mclass, f"graph-inputs:{which}", f"{l['group']}:inputs = {json.dumps(new)} (was {cur})", expect

        if mclass == "layer-names":
            names = [x.decode() if isinstance(x, bytes) else str(x) for x in f.attrs["layer_names"]]
            which = pick(rng, ["drop", "swap", "rename", "duplicate", "empty", "extra", "ints"])
            new: Any
            if which == "drop":
                new = names[:-1]
            elif which == "swap":
                new = names[:]
                new[0], new[1] = new[1], new[0]
            elif which == "rename":
                new = names[:]
                i = rng.randrange(len(new))
                new[i] = _typo(rng, new[i])
            elif which == "duplicate":
                new = names[:]
                new[1] = new[0]
            elif which == "extra":
                new = names + ["ghost"]
            elif which == "empty":
                new = []
            else:
                new = np.arange(len(names))
            if isinstance(new, list):
                new = np.array(new, dtype=h5py.string_dtype()) if new else np.array([], dtype=h5py.string_dtype())
            f.attrs["layer_names"] = new
            return mclass, f"layer_names:{which}", f"/:layer_names = {list(np.asarray(new).tolist())}", "invalid"

        if mclass in ("ds-delete", "ds-rename"):
            cands = [("", d) for d in lay["root_datasets"]] + [(l["group"], d) for l in layers for d in l["datasets"]]
            where, d = pick(rng, cands)
            p = f"{where}/{d}" if where else d
            if mclass == "ds-delete":
                del f[p]
                detail = f"delete dataset {p}"
            else:
                new = _typo(rng, d)
                f.move(p, f"{where}/{new}" if where else new)
                detail = f"rename dataset {p} -> {new}"
            # optional: the analog input of a direct-encoded trace?  No: layer 1 needs it.
            # potential / ann_output: optional readouts (either). bias with has_bias=True,
            # weight, spikes, activations, labels: required or inconsistent -> invalid.
            expect = "either" if d in ("potential", "ann_output") else "invalid"
            if d == "weight" and len(weighted) > 1:
                expect = "invalid"  # some layers with weights, one without: inconsistent
            return mclass, f"ds.{d}", detail, expect

        if mclass == "ds-dtype":
            cands = [("", d) for d in lay["root_datasets"]] + [(l["group"], d) for l in layers for d in l["datasets"]]
            where, d = pick(rng, cands)
            p = f"{where}/{d}" if where else d
            data = f[p][()]
            # name -> (dtype, expect): expect "same" where the format allows the dtype (or the
            # conversion is lossless and the reader may reasonably accept it), else invalid.
            table = {
                "spikes": [("uint16", "invalid"), ("int8", "invalid"), ("bool", "invalid"), ("float32", "invalid")],
                "activations": [("uint16", "same"), ("int8", "invalid"), ("float32", "invalid"), ("int64", "invalid"),
                                ("float16", "invalid")],
                "input": [("float16", "invalid"), ("float64", "same"), ("int32", "invalid"), ("uint8", "invalid")],
                "labels": [("int32", "same"), ("float32", "invalid"), ("uint8", "invalid")],
                "weight": [("int16", "same"), ("float32", "invalid"), ("float16", "invalid"), ("uint8", "invalid")],
                "bias": [("float64", "same"), ("float16", "invalid"), ("int32", "invalid")],
                "potential": [("float64", "same"), ("int32", "invalid"), ("float16", "invalid")],
                "ann_output": [("float64", "same"), ("int32", "invalid")],
                "input_spikes": [("uint16", "invalid")],
            }
            dtype, expect = pick(rng, table.get(d, [("float32", "invalid")]))
            if expect == "same" and np.issubdtype(np.dtype(dtype), np.integer) and data.size:
                info = np.iinfo(dtype)
                if data.min() < info.min or data.max() > info.max:
                    expect = "invalid"
            with np.errstate(all="ignore"):
                rewrite(p, data, dtype)
            return mclass, f"ds.{d}:{dtype}", f"{p} as {dtype}", expect

        if mclass == "ds-shape":
            cands = [("", d) for d in lay["root_datasets"]] + [(l["group"], d) for l in layers for d in l["datasets"]]
            where, d = pick(rng, cands)
            p = f"{where}/{d}" if where else d
            data = f[p][()]
            which = pick(rng, ["extra-row", "drop-row", "extra-axis", "flatten", "scalar", "last-axis+1",
                               "transpose", "empty"])
            if which == "extra-row":
                new = np.concatenate([data, data[:1]], axis=0) if data.ndim else np.array([data, data])
            elif which == "drop-row":
                if data.ndim == 0 or data.shape[0] < 2:
                    raise Skip
                new = data[:-1]
            elif which == "extra-axis":
                new = data[..., None]
            elif which == "flatten":
                if data.ndim < 2:
                    raise Skip
                new = data.reshape(data.shape[0], -1)
            elif which == "scalar":
                new = np.asarray(data.reshape(-1)[0])
            elif which == "last-axis+1":
                if data.ndim == 0:
                    raise Skip
                pad = [(0, 0)] * (data.ndim - 1) + [(0, 1)]
                new = np.pad(data, pad)
            elif which == "transpose":
                if data.ndim < 2 or data.shape == data.T.shape:
                    raise Skip
                new = np.ascontiguousarray(data.T)
            else:
                new = data[:0]
            if new.shape == data.shape:
                raise Skip
            rewrite(p, new, keep_chunks=which != "scalar")
            return mclass, f"ds.{d}:{which}", f"{p} shape {list(data.shape)} -> {list(new.shape)}", "invalid"

        if mclass == "ds-values":
            which = pick(rng, ["level-above-T", "level-max", "spike-flip", "spikes-zeroed", "padding-bits",
                               "input-nan", "input-inf", "potential-nan", "weight-out-of-range", "weight-scale",
                               "bitorder", "labels-huge"])
            if which in ("level-above-T", "level-max"):
                l = pick(rng, [x for x in spiking if "activations" in x["datasets"]] or [None])
                if l is None:   # an SNN-only trace stores no levels
                    raise Skip
                p = f"{l['group']}/activations"
                a = f[p][()]
                idx = tuple(rng.randrange(s) for s in a.shape[1:])
                a[(0, *idx)] = T + 1 if which == "level-above-T" else np.iinfo(a.dtype).max
                f[p][...] = a
                return mclass, f"activations:{which}", f"{p}[0,{idx}] = {a[(0, *idx)]} (T={T})", "invalid"
            if which in ("spike-flip", "spikes-zeroed"):
                l = pick(rng, spiking)
                p = f"{l['group']}/spikes"
                s = f[p][()]
                neurons = int(np.prod(l["attrs"]["output_shape"]))
                if which == "spike-flip":
                    j = rng.randrange(neurons)
                    t = rng.randrange(T)
                    s[0, t, j // 8] ^= np.uint8(1 << (j % 8))
                    detail = f"{p}[0,{t}] flip neuron {j} (spike count != level)"
                else:
                    if not s[0].any():
                        raise Skip
                    s[0] = 0
                    detail = f"{p}[0] all zero (levels unchanged)"
                f[p][...] = s
                return mclass, f"spikes:{which}", detail, "invalid"
            if which == "padding-bits":
                cands = [l for l in spiking if int(np.prod(l["attrs"]["output_shape"])) % 8]
                if not cands:
                    raise Skip
                l = pick(rng, cands)
                p = f"{l['group']}/spikes"
                s = f[p][()]
                neurons = int(np.prod(l["attrs"]["output_shape"]))
                s[:, :, -1] |= np.uint8((0xFF << (neurons % 8)) & 0xFF)
                f[p][...] = s
                return mclass, "spikes:padding-bits", f"{p}: padding bits of the last byte set", "same"
            if which in ("input-nan", "input-inf"):
                if "input" not in f:
                    raise Skip
                a = f["input"][()]
                a.reshape(-1)[rng.randrange(a[0].size)] = np.nan if which == "input-nan" else np.inf
                f["input"][...] = a
                return mclass, f"input:{which}", f"input[0] holds a {'NaN' if which == 'input-nan' else 'inf'}", "invalid"
            if which == "potential-nan":
                cands = [l for l in layers if "potential" in l["datasets"]]
                if not cands:
                    raise Skip
                p = f"{cands[0]['group']}/potential"
                a = f[p][()]
                a.reshape(-1)[0] = np.nan
                f[p][...] = a
                return mclass, "potential:nan", f"{p}[0] holds a NaN", "invalid"
            if which == "weight-out-of-range":
                if not weighted:
                    raise Skip
                l = pick(rng, weighted)
                p = f"{l['group']}/weight"
                w = f[p][()].astype(np.int16)
                w.reshape(-1)[0] = 1000
                rewrite(p, w)
                return mclass, "weight:out-of-range", f"{p} int16 holding 1000 with weight_bits={lay['attrs']['weight_bits']}", "invalid"
            if which == "weight-scale":
                if not weighted:
                    raise Skip
                l = pick(rng, weighted)
                p = f"{l['group']}/weight"
                v = pick(rng, [np.nan, np.inf, -0.01, 0.0, "0.01", _DELETE])
                if v is _DELETE:
                    del f[p].attrs["scale"]
                else:
                    f[p].attrs["scale"] = v
                return mclass, f"weight.scale:{_kind_of(v)}", f"{p}.scale = {_short_repr(v)}", "invalid"
            if which == "bitorder":
                l = pick(rng, spiking)
                p = f"{l['group']}/spikes"
                v = pick(rng, ["big", "", 1, _DELETE])
                if v is _DELETE:
                    del f[p].attrs["bitorder"]
                else:
                    f[p].attrs["bitorder"] = v
                return mclass, f"spikes.bitorder:{_kind_of(v)}", f"{p}.bitorder = {_short_repr(v)}", "invalid"
            # labels-huge: a label far out of any class range, -2 (only -1 means unknown)
            a = f["labels"][()]
            a[0] = pick(rng, [-2, 2**40])
            f["labels"][...] = a
            return mclass, "labels:out-of-range", f"labels[0] = {a[0]}", "invalid"

        if mclass == "link":
            which = pick(rng, ["self", "dangling", "other-layer", "layers-to-root", "group-self", "external-missing",
                               "external-nonhdf5", "moved-same"])
            l = pick(rng, spiking)
            g = l["group"]
            if which == "self":
                del f[f"{g}/spikes"]
                f[f"{g}/spikes"] = h5py.SoftLink(f"/{g}/spikes")
                detail = f"/{g}/spikes -> soft link to itself"
            elif which == "dangling":
                if "activations" not in l["datasets"]:
                    raise Skip
                del f[f"{g}/activations"]
                f[f"{g}/activations"] = h5py.SoftLink("/nowhere/activations")
                detail = f"/{g}/activations -> soft link to /nowhere"
            elif which == "other-layer":
                other = pick(rng, [x for x in spiking if x is not l] or [l])
                if other is l:
                    raise Skip
                del f[f"{g}/spikes"]
                f[f"{g}/spikes"] = h5py.SoftLink(f"/{other['group']}/spikes")
                detail = f"/{g}/spikes -> soft link to /{other['group']}/spikes"
                if "activations" not in l["datasets"] and other["attrs"]["output_shape"].tolist() == \
                        l["attrs"]["output_shape"].tolist():
                    # an SNN-only trace has no levels to contradict a copy of another layer's
                    # spikes of the same shape: a valid file (soft links are allowed, see moved-same)
                    return mclass, f"link:{which}", detail, "either"
            elif which == "layers-to-root":
                f.move("layers", "layers_real")
                f["layers"] = h5py.SoftLink("/")
                detail = "/layers -> soft link to / (the real group moved to /layers_real)"
            elif which == "group-self":
                f.move(g, g + "_real")
                f[g] = h5py.SoftLink("/" + g)
                detail = f"/{g} -> soft link to itself"
            elif which == "external-missing":
                del f[f"{g}/spikes"]
                f[f"{g}/spikes"] = h5py.ExternalLink("/nonexistent/file.h5", "/x")
                detail = f"/{g}/spikes -> external link to a missing file"
            elif which == "external-nonhdf5":
                del f[f"{g}/spikes"]
                f[f"{g}/spikes"] = h5py.ExternalLink("/etc/hostname", "/x")
                detail = f"/{g}/spikes -> external link into a non-HDF5 file"
            else:
                if "activations" not in l["datasets"]:   # an SNN-only trace stores none
                    raise Skip
                f.move(f"{g}/activations", "/stash_activations")
                f[f"{g}/activations"] = h5py.SoftLink("/stash_activations")
                return "link", "link:moved-same", f"/{g}/activations moved to /stash_activations and soft-linked back", "same"
            return mclass, f"link:{which}", detail, "invalid"

        if mclass == "extra":
            which = pick(rng, ["root-group", "layer-dataset", "root-attr", "layers-group"])
            if which == "root-group":
                f.create_group("zz_unknown").create_dataset("x", data=np.arange(5))
                return mclass, "extra:root-group", "unknown group /zz_unknown", "same"
            if which == "layer-dataset":
                l = pick(rng, layers)
                f[l["group"]].create_dataset("zz_unknown", data=np.arange(3))
                return mclass, "extra:layer-dataset", f"unknown dataset /{l['group']}/zz_unknown", "same"
            if which == "root-attr":
                f.attrs["zz_unknown"] = 42
                return mclass, "extra:root-attr", "unknown attribute /:zz_unknown", "same"
            grp = f["layers"].create_group(f"{len(layers):03d}_ghost")
            grp.attrs["name"] = "ghost"
            return mclass, "extra:layers-group", f"unknown layer group /layers/{len(layers):03d}_ghost (not in layer_names)", "invalid"

        # control: rewrite one attribute with its own value (no change)
        f.attrs["T"] = f.attrs["T"]
        return "control", "control", "unmutated (attribute T rewritten with its value)", "valid"


_DELETE = object()


def integrity_mutation(rng: random.Random, path: Path) -> tuple[str, str, str, str]:
    """Tamper with a format-2 trace's checksums themselves (nothing else changes)."""
    import h5py

    with h5py.File(path, "r+") as f:
        dsets = []
        f.visititems(lambda name, obj: dsets.append(name) if isinstance(obj, h5py.Dataset) and "sha256" in obj.attrs else None)
        which = pick(rng, ["delete-meta", "flip-meta", "delete-dataset-digest", "flip-dataset-digest",
                           "digest-shape", "downgrade-version"])
        if which == "delete-meta":
            del f.attrs["meta_sha256"]
        elif which == "flip-meta":
            d = np.array(f.attrs["meta_sha256"])
            d[rng.randrange(d.size)] ^= 1
            f.attrs["meta_sha256"] = d
        elif which in ("delete-dataset-digest", "flip-dataset-digest", "digest-shape"):
            if not dsets:
                raise Skip
            p = pick(rng, dsets)
            expect = "invalid"
            if which == "delete-dataset-digest":
                del f[p].attrs["sha256"]
            elif which == "flip-dataset-digest":
                # checksums are verified when a row is read (docs/trace-format.md): a wrong
                # digest of data the command does not read may go unnoticed; a result must then
                # equal the intact file's
                d = np.array(f[p].attrs["sha256"])
                d.reshape(-1)[rng.randrange(d.size)] ^= 1
                f[p].attrs["sha256"] = d
                expect = "same"
            else:
                d = np.array(f[p].attrs["sha256"])
                f[p].attrs["sha256"] = d.reshape(-1)[:-1]
            return "integrity", f"integrity:{which}", f"{p}.sha256: {which}", expect
        else:
            f.attrs["format_version"] = np.int64(1)
            return "integrity", "integrity:downgrade-version", "format_version 3 -> 1, checksums kept", "either"
        return "integrity", f"integrity:{which}", f"/:meta_sha256: {which}", "invalid"


def _kind_of(v) -> str:
    if v is _DELETE:
        return "deleted"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
        return "negative" if v < 0 else ("zero" if v == 0 else "number")
    return type(v).__name__


def _short_repr(v) -> str:
    if v is _DELETE:
        return "<deleted>"
    r = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return r if len(r) < 80 else r[:77] + "..."


def _attr_mutation(rng, mclass, key, typ, old, T, n, in_layer, lay):
    """(new value, expect, label) for an attribute of type ``typ``."""
    if mclass == "attr-type":
        if typ in ("int",):
            opts = [(np.int32(old), "same", "int32"), (np.uint8(old) if 0 <= int(old) < 256 else np.int16(old), "same", "small-int"),
                    (str(int(old)), "invalid", "string"), (float(old) + 0.5, "invalid", "non-integral-float"),
                    (np.array([old, old]), "invalid", "array"), (np.bool_(True), "invalid", "bool"),
                    (np.float64(old), "same", "integral-float")]
        elif typ in ("str", "enum"):
            opts = [(7, "invalid", "int"), (np.bytes_(str(old).encode()), "same" if typ == "enum" else "either", "fixed-bytes"),
                    (np.array([str(old), str(old)], dtype=object), "invalid", "string-array"),
                    (np.void(b"\xff\xfe\x00"), "invalid", "opaque"), (1.5, "invalid", "float")]
        elif typ in ("shape", "ints"):
            arr = np.asarray(old)
            opts = [(arr.astype(np.int32), "same", "int32"), (arr.astype(np.float64) + 0.5, "invalid", "float"),
                    (",".join(map(str, arr.tolist())) or "x", "invalid", "string"), (np.int64(arr.sum() or 1), "invalid", "scalar")]
            if arr.size == 0:
                opts[0] = (np.array([], dtype=np.int32), "same", "int32")
                opts[1] = (np.array([0.5]), "invalid", "float")
        elif typ == "json":
            opts = [(5, "invalid", "int"), (np.bytes_(str(old).encode()), "same", "fixed-bytes")]
            if key == "library_versions":
                opts.append(("[1, 2]", "invalid", "list"))
        elif typ == "bool":
            opts = [(np.int64(int(bool(old))), "invalid", "int"), ("true", "invalid", "string"), (np.float64(1.0), "invalid", "float")]
        elif typ == "float":
            opts = [(np.float32(old), "either", "float32"), (str(float(old)), "invalid", "string"),
                    (np.array([old, old]), "invalid", "array"), (np.bool_(True), "invalid", "bool")]
        else:  # names
            opts = [(np.array([len(x) for x in np.asarray(old).tolist()]), "invalid", "ints"),
                    (",".join(str(x) for x in np.asarray(old).tolist()), "invalid", "joined-string")]
        value, expect, label = pick(rng, opts)
        if key in FREE_TEXT and expect == "same":
            expect = "either"
        if key == "description":
            expect = "either" if expect != "invalid" else "invalid"
        return value, expect, label
    # attr-value: values of the right type that are impossible
    if typ == "int":
        base = int(old)
        opts = [(np.int64(-1), "invalid", "negative"), (np.int64(2**62), "invalid", "huge"), (np.nan, "invalid", "nan"),
                (np.inf, "invalid", "inf"), (np.int64(base + 1), "invalid", "plus-one")]
        if key not in ("weight_bits",):
            opts.append((np.int64(0), "invalid", "zero"))
        if key == "ann_activation_bits":
            opts = [(np.int64(0), "invalid", "zero"), (np.int64(17), "invalid", "above-16"), (np.int64(-1), "invalid", "negative"),
                    (np.nan, "invalid", "nan")]
        if key == "weight_bits":
            opts += [(np.int64(17), "invalid", "above-16"), (np.int64(2), "invalid", "narrower-than-data"),
                     (np.int64(0), "invalid", "zero-with-weights")]
        if key == "groups":
            opts = [(np.int64(0), "invalid", "zero"), (np.int64(-1), "invalid", "negative"), (np.int64(3), "invalid", "not-dividing")]
        return (*pick(rng, opts),)
    if typ == "enum":
        return pick(rng, [("bogus", "invalid", "unknown"), ("", "invalid", "empty"), (str(old).upper(), "invalid", "case")])
    if typ == "str":
        if key in ("name", "input_from"):
            return pick(rng, [("ghost", "invalid", "unknown"), ("", "invalid", "empty")])
        return pick(rng, [("x" * 10000, "either", "long"), ("", "either", "empty"), ("\u00e9\u2603", "either", "unicode")])
    if typ == "float":
        return pick(rng, [(np.nan, "invalid", "nan"), (np.inf, "invalid", "inf"), (-0.25, "invalid", "negative"),
                          (0.0, "invalid", "zero")])
    if typ == "bool":
        return (np.bool_(not bool(old)), "invalid" if key == "has_bias" else "either", "flipped")
    if typ in ("shape", "ints"):
        arr = np.asarray(old)
        if arr.size == 0:
            return (np.array([1, 1]), "invalid", "non-empty-on-flat-layer")
        opts = [(np.array([], dtype=np.int64), "invalid", "empty"), (np.where(np.arange(arr.size) == 0, 0, arr), "invalid", "zero"),
                (np.where(np.arange(arr.size) == 0, -1, arr), "invalid", "negative"), (np.append(arr, 1), "invalid", "extra-dim"),
                (np.where(np.arange(arr.size) == 0, 2**40, arr), "invalid", "huge")]
        if key == "padding":
            opts[1] = (arr + 1, "invalid", "plus-one")
        return pick(rng, opts)
    if typ == "json":
        return ("{", "invalid", "not-json")
    return (np.array(["ghost"] * 2, dtype=object), "invalid", "wrong-names")


def gen_traces(rng: random.Random, case: Case, ctx: Context) -> None:
    base = pick(rng, [t for t in ("tiny", "tiny", "digits", "pad", "tiny2", "tiny2", "resnet", "resnet", "resnet_lif",
                                "resnet_current")
                      if t in ctx.traces])
    src = ctx.traces[base]
    dst = case.dir / f"{base}.h5"
    if rng.random() < 0.45:
        mclass, detail, data = byte_mutation(rng, bytearray(src.read_bytes()))
        dst.write_bytes(data)
        target, expect = mclass, "same"
    else:
        import h5py

        shutil.copyfile(src, dst)
        with h5py.File(dst, "r") as f:
            sealed = "meta_sha256" in f.attrs
        if sealed and rng.random() < 0.12:
            mclass, target, detail, expect = integrity_mutation(rng, dst)
        else:
            mclass, target, detail, expect = structured_trace_mutation(rng, dst, base)
            if sealed and mclass != "control":
                if rng.random() < 0.8:
                    with h5py.File(dst, "r+") as f:
                        reseal(f)
                    detail += " (checksums recomputed)"
                else:
                    detail += " (checksums left stale)"
                    target += ":stale-checksums"
                    expect = "invalid" if expect == "invalid" else "either"
    case.mclass, case.target, case.detail = mclass, target, f"{base}: {detail}"
    case.files.append(str(dst))
    out = case.dir / "out"
    case.steps.append(Step(["inspect", str(dst), "--json", str(out / "inspect.json")], expect=expect,
                           outputs=[(str(out / "inspect.json"), "json")], names=[str(dst)],
                           baseline=f"inspect:{base}"))
    case.steps.append(Step(["replay", str(dst), "--arch", "all", "--samples", "1", "--quiet", "--json",
                            str(out / "replay.json")], expect=expect, outputs=[(str(out / "replay.json"), "json")],
                           names=[str(dst)], baseline=f"replay:{base}", timeout_mul=1.5))


# ==========================================================================================
# Arch specs and energy tables (YAML)
# ==========================================================================================

NONNEG_FIELDS = {"latency_cycles", "router_latency_cycles", "barrier_cycles", "ann_activation_bits", "io_x", "io_y"}
PLACEHOLDER = "__FUZZ_VALUE__"


def leaves(doc, prefix=()):
    """(path, value) of every node below the root, depth first."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((prefix + (k,), v))
            out.extend(leaves(v, prefix + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((prefix + (i,), v))
            out.extend(leaves(v, prefix + (i,)))
    return out


def get_in(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def set_in(doc, path, value):
    get_in(doc, path[:-1])[path[-1]] = value


def dump_yaml(doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=10**6, allow_unicode=True)


def yaml_scalar(v) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.replace("\n...", "")


def field_rule(kind: str, doc: dict, path: tuple) -> str:
    """What a field of an arch spec ('spec') or energy table ('table') must hold:
    pos_int | nonneg_int | pos_num | nonneg_num | bool | choice | str | note | const | class |
    section | list | source | optional_section | capacity | free."""
    last = path[-1]
    if kind == "spec":
        if path == ("schema",):
            return "const"
        if path in (("name",), ("description",)):
            return "str"
        if path == ("architecture",):
            return "choice"
        if path == ("clock_mhz",):
            return "pos_num"
        if len(path) == 1:
            return "section"
        if path[0] == "data":
            return "nonneg_int" if last in NONNEG_FIELDS else "pos_int"
        if path[0] == "components":
            if len(path) == 2:
                return "section"
            if last == "class":
                return "class"
            return "nonneg_int" if last in NONNEG_FIELDS else "pos_int"
        if path[0] == "mapping":
            v = get_in(doc, path)
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, str):
                return "choice"
            return "nonneg_int" if last in NONNEG_FIELDS else "pos_int"
        return "free"
    # energy table
    if path == ("schema",):
        return "const"
    if path in (("name",), ("description",)):
        return "str"
    if path == ("technology_nm",):
        return "pos_num"
    if len(path) == 1:
        return "optional_section" if last == "paper_model" else "section"
    if path[0] == "sources":
        return "str"
    if path[0] in ("entries", "paper_model"):
        if len(path) == 2:
            return "section"
        if last == "energy_pj":
            return "nonneg_num"
        if last == "bits":
            return "pos_int"
        if last == "source":
            return "source"
        if last == "note":
            return "note"
        if last == "value":
            return "num"
        if last == "by_capacity":
            return "list"
        if len(path) >= 4 and path[2] == "by_capacity":
            if len(path) == 4:
                return "section"
            return "pos_int" if last == "capacity_bytes" else "nonneg_num"
    return "free"


def value_mutation(rng: random.Random, rule: str, old) -> tuple[Any, str, str, str | None]:
    """(python value or None, expect, label, raw YAML text or None) for a field of ``rule``."""
    numeric = rule in ("pos_int", "nonneg_int", "pos_num", "nonneg_num", "num")
    opts: list[tuple] = []
    if numeric:
        intlike = rule.endswith("_int")
        opts += [(-1, "invalid", "negative", None),
                 (0, "invalid" if rule in ("pos_int", "pos_num") else "either", "zero", None),
                 (None, "invalid", "nan", ".nan"), (None, "invalid", "inf", ".inf"), (None, "invalid", "-inf", "-.inf"),
                 (10**30, "either", "huge", None), (2**63, "either", "int64-overflow", None),
                 (None, "invalid", "5000-digits", "9" * 5000),
                 (None, "invalid", "octal-literal", pick(rng, ["010", "0777", "0o17", "1:30"]))]
        if intlike:
            opts += [((old if isinstance(old, int) else 1) + 0.5, "invalid", "non-integral", None)]
        else:
            opts += [(1e300, "either", "1e300", None), (1e-300, "either" if rule != "nonneg_num" else "either", "tiny", None)]
        if rule == "num":
            opts = [(None, "invalid", "nan", ".nan"), (None, "invalid", "inf", ".inf"),
                    (None, "invalid", "5000-digits", "9" * 5000)]
        opts += [("64", "invalid", "string-number", None), (True, "invalid", "bool", None), (None, "invalid", "null", "null"),
                 ({"a": 1}, "invalid", "mapping", None), ([1, 2], "invalid", "list", None)]
    elif rule == "bool":
        opts = [(1, "invalid", "int", None), ("true", "invalid", "string", None), (None, "invalid", "null", "null"),
                ([True], "invalid", "list", None)]
    elif rule in ("choice", "class", "const"):
        opts = [("bogus", "invalid", "unknown", None), (str(old).upper(), "invalid" if str(old).upper() != str(old) else "either", "case", None),
                (1, "invalid", "int", None), (None, "invalid", "null", "null"), ([old], "invalid", "list", None)]
    elif rule in ("str", "source"):
        opts = [(5, "invalid", "int", None), (None, "invalid", "null", "null"), ([old], "invalid", "list", None),
                ({"a": 1}, "invalid", "mapping", None)]
        if rule == "source":
            opts.append(("nosuchsource", "invalid", "unknown-source", None))
    elif rule == "note":
        opts = [(5, "invalid", "int", None), (None, "either", "null", "null"), ([old], "invalid", "list", None)]
    elif rule in ("section", "optional_section"):
        opts = [(5, "invalid", "int", None), ("x", "invalid", "string", None), (None, "invalid", "null", "null"),
                ([], "invalid", "empty-list", None), ({}, "invalid" if rule == "section" else "either", "empty-mapping", None)]
    elif rule == "list":
        opts = [([], "invalid", "empty-list", None), (5, "invalid", "int", None),
                (list(reversed(old)) if isinstance(old, list) and len(old) > 1 else [], "invalid", "unsorted", None)]
    else:
        opts = [(5, "either", "int", None)]
    return pick(rng, opts)


def deep_nesting(rng: random.Random) -> str:
    depth = pick(rng, [1000, 5000])
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth
    return "{a: " * depth + "1" + "}" * depth


def alias_bomb() -> str:
    levels = ["&l0 [x,x,x,x,x,x,x,x,x,x]"]
    for i in range(1, 9):
        levels.append(f"&l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    return "[" + ", ".join(levels) + "]"


def yaml_mutation(rng: random.Random, kind: str, text: str) -> tuple[str, str, str, str, list[str]]:
    """(mclass, target, detail, expect, warn_names) and the new text, for a spec or a table."""
    doc = yaml.safe_load(text)
    nodes = leaves(doc)
    ops = ["key-delete", "key-rename", "key-duplicate", "wrong-type", "bad-number", "deep-nesting",
           "alias-bomb", "invalid-yaml", "yaml-tag", "control"]
    if kind == "table":
        ops += ["entry-typo", "entry-typo", "entry-delete", "by-capacity"]
    mclass = pick(rng, ops)
    warn: list[str] = []

    def label(path):
        # a path without the names of entries/components, e.g. entries.*.energy_pj
        parts = []
        for i, p in enumerate(path):
            if i == 1 and path[0] in ("entries", "sources", "paper_model", "components"):
                parts.append("*")
            elif isinstance(p, int):
                parts.append("[]")
            else:
                parts.append(str(p))
        return ".".join(parts)

    def dict_paths():
        return [(p, v) for p, v in nodes if not isinstance(p[-1], int)]

    if mclass == "control":
        return "control", "control", "unmutated", "valid", [], text

    if mclass in ("key-delete", "key-rename"):
        path, _ = pick(rng, dict_paths())
        parent = get_in(doc, path[:-1])
        rule = field_rule(kind, doc, path)
        if mclass == "key-delete":
            del parent[path[-1]]
            expect = "invalid"
            if rule in ("note", "optional_section") or path[-1] == "by_capacity" or path[0] == "paper_model":
                expect = "either"
            if kind == "spec" and path == ("components", "dram") and doc.get("architecture") == "neuromorphic":
                expect = "either"
            if kind == "table" and path[0] == "sources" and len(path) == 2:
                used = {v for p, v in leaves(doc) if p and p[-1] == "source"}
                expect = "invalid" if path[1] in used else "either"
            if kind == "table" and path[0] == "entries" and len(path) == 2:
                expect, warn = ("either" if _is_override(str(path[1])) else "unpriced"), [str(path[1])]
            if kind == "table" and path[0] == "entries" and len(path) == 2 and not parent:
                expect = "invalid"
            detail = f"delete {'.'.join(map(str, path))}"
        else:
            new = _typo(rng, str(path[-1]))
            items = list(parent.items())
            parent.clear()
            for k, v in items:
                parent[new if k == path[-1] else k] = v
            expect = "invalid"  # a misspelled key or entry must not be accepted
            if kind == "table" and path[0] == "sources" and len(path) == 2:
                used = {v for p, v in leaves(doc) if p and p[-1] == "source"}
                expect = "invalid" if path[-1] in used else "either"
            detail = f"rename {'.'.join(map(str, path))} -> {new}"
        return mclass, f"{kind}:{label(path)}", detail, expect, warn, dump_yaml(doc)

    if mclass == "entry-typo":
        path = ("entries", pick(rng, list(doc["entries"])))
        new = _typo(rng, path[1])
        items = list(doc["entries"].items())
        doc["entries"] = {(new if k == path[1] else k): v for k, v in items}
        return mclass, "table:entries.*", f"misspell entry {path[1]} -> {new}", "invalid", [], dump_yaml(doc)

    if mclass == "entry-delete":
        name = pick(rng, list(doc["entries"]))
        del doc["entries"][name]
        # a per-action override (<class>_<action>, docs/arch-spec.md "Pricing") falls back to its
        # class rule: still a valid table, priced differently by design
        expect = "either" if _is_override(name) else "unpriced"
        return mclass, "table:entries.*", f"delete entry {name}", expect, [name], dump_yaml(doc)

    if mclass == "by-capacity":
        cands = [n for n, e in doc["entries"].items() if isinstance(e, dict) and "by_capacity" in e]
        if not cands:
            raise Skip
        name = pick(rng, cands)
        bc = doc["entries"][name]["by_capacity"]
        which = pick(rng, ["unsorted", "duplicate-size", "zero-size", "extra-key", "empty", "negative-energy"])
        if which == "unsorted":
            bc.reverse()
        elif which == "duplicate-size":
            bc.append(dict(bc[-1]))
        elif which == "zero-size":
            bc[0]["capacity_bytes"] = 0
        elif which == "extra-key":
            bc[0]["capacity_kb"] = 1
        elif which == "empty":
            doc["entries"][name]["by_capacity"] = []
        else:
            bc[0]["energy_pj"] = -1
        return mclass, f"table:by_capacity:{which}", f"entries.{name}.by_capacity: {which}", "invalid", [], dump_yaml(doc)

    if mclass == "key-duplicate":
        path, old = pick(rng, [(p, v) for p, v in dict_paths() if not isinstance(v, (dict, list))])
        set_in(doc, path, PLACEHOLDER)
        text2 = dump_yaml(doc)
        m = re.search(rf"^(\s*)(\S+): {PLACEHOLDER}$", text2, re.M)
        if not m:
            raise Skip
        other = pick(rng, [old, 12345 if not isinstance(old, str) else "other"])
        text2 = text2.replace(m.group(0), f"{m.group(1)}{m.group(2)}: {yaml_scalar(old)}\n"
                              f"{m.group(1)}{m.group(2)}: {yaml_scalar(other)}", 1)
        same = "same-value" if other == old else "other-value"
        return mclass, f"{kind}:duplicate:{same}", f"duplicate {'.'.join(map(str, path))} ({same})", "invalid", [], text2

    if mclass in ("wrong-type", "bad-number", "deep-nesting", "alias-bomb", "yaml-tag"):
        if mclass == "bad-number":
            cands = [(p, v) for p, v in nodes if field_rule(kind, doc, p) in
                     ("pos_int", "nonneg_int", "pos_num", "nonneg_num", "num")]
        else:
            cands = [(p, v) for p, v in nodes]
        path, old = pick(rng, cands)
        rule = field_rule(kind, doc, path)
        raw = None
        if mclass in ("wrong-type", "bad-number"):
            value, expect, lab, raw = value_mutation(rng, rule, old)
            if mclass == "wrong-type" and lab in ("negative", "zero", "huge", "int64-overflow", "1e300", "tiny",
                                                    "non-integral", "nan", "inf", "-inf", "5000-digits", "octal-literal"):
                mclass = "bad-number"
            if lab in ("5000-digits", "octal-literal"):
                mclass = lab
        elif mclass == "deep-nesting":
            value, expect, lab, raw = None, "invalid", "deep", deep_nesting(rng)
        elif mclass == "alias-bomb":
            value, expect, lab, raw = None, "invalid", "bomb", alias_bomb()
        else:
            value, expect, lab, raw = None, "invalid", "tag", pick(rng, [
                "!!python/object/apply:os.system ['echo pwned']", "!!binary aGVsbG8=", "!!set {a, b}",
                "!!timestamp 2001-12-14", "!!float '1e400'", "!!str 64", "!!int '0x40'"])
            if raw == "!!int '0x40'" and rule in ("pos_int", "nonneg_int", "pos_num", "nonneg_num", "num"):
                expect = "either"
            if raw == "!!str 64" and rule in ("str", "note"):
                expect = "either"
            lab = raw.split()[0]
        if rule in ("free",) and expect == "invalid":
            expect = "either"
        if raw is None:
            set_in(doc, path, value)
            text2 = dump_yaml(doc)
        else:
            set_in(doc, path, PLACEHOLDER)
            text2 = dump_yaml(doc).replace(PLACEHOLDER, raw, 1)
        if kind == "table" and path[0] == "entries" and len(path) == 2 and expect == "invalid" and lab == "empty-mapping":
            expect = "invalid"
        return mclass, f"{kind}:{label(path)}:{lab}", f"{'.'.join(map(str, path))} = {(raw or _short_repr(value))[:60]}", \
            expect, warn, text2

    # invalid-yaml: text-level damage; the expectation is checked against a parser
    which = pick(rng, ["unclosed-bracket", "unclosed-quote", "tab-indent", "bad-indent", "nul-byte", "latin1",
                       "empty", "top-list", "top-scalar", "two-documents", "comments-only", "bom"])
    lines = text.splitlines()
    i = rng.randrange(1, len(lines))
    if which == "unclosed-bracket":
        lines[i] = lines[i] + " [unclosed"
    elif which == "unclosed-quote":
        lines[i] = lines[i].split(":")[0] + ': "unclosed'
    elif which == "tab-indent":
        lines[i] = "\t" + lines[i]
    elif which == "bad-indent":
        lines[i] = " " + lines[i] if not lines[i].startswith(" ") else lines[i].lstrip()
    elif which == "nul-byte":
        lines[i] = lines[i] + "\x00"
    elif which == "latin1":
        text2 = text.encode()[:-1] + b" \xe9\xff\n"
        return "invalid-yaml", f"{kind}:yaml:{which}", which, "invalid", [], text2.decode("latin-1")
    elif which == "empty":
        lines = []
    elif which == "top-list":
        lines = ["- " + l for l in ["a", "b"]]
    elif which == "top-scalar":
        lines = ["42"]
    elif which == "two-documents":
        lines = lines + ["---"] + lines
    elif which == "comments-only":
        lines = ["# nothing here"]
    else:
        lines[0] = "\ufeff" + lines[0]
    text2 = "\n".join(lines) + ("\n" if lines else "")
    expect = "invalid"
    if which in ("unclosed-bracket", "unclosed-quote", "tab-indent", "bad-indent", "nul-byte", "bom"):
        try:  # damage inside a block scalar (a description) can still be valid YAML
            yaml.safe_load(text2)
            expect = "either"
        except yaml.YAMLError:
            pass
    return "invalid-yaml", f"{kind}:yaml:{which}", which, expect, [], text2


def _write_text_maybe_latin1(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        path.write_bytes(text.encode("latin-1"))


def _write_mutated_yaml(case: "Case", name: str, mclass: str, target: str, detail: str, text: str) -> Path:
    """Write a mutated spec or table as ``<case>/<name>.yaml`` (latin-1 for the encoding
    mutations) and record the mutation on ``case``; returns the file."""
    dst = case.dir / f"{name}.yaml"
    if "latin" in target:
        dst.write_bytes(text.encode("latin-1"))
    else:
        _write_text_maybe_latin1(dst, text)
    case.mclass, case.target, case.detail = mclass, target, f"{name}: {detail}"
    case.files.append(str(dst))
    return dst


def gen_specs(rng: random.Random, case: Case, ctx: Context) -> None:
    name = pick(rng, ARCH_NAMES)
    src = ARCH_DIR / f"{name}.yaml"
    mclass, target, detail, expect, _, text = yaml_mutation(rng, "spec", src.read_text())
    dst = _write_mutated_yaml(case, name, mclass, target, detail, text)
    out = case.dir / "out" / "replay.json"
    mode = pick(rng, ["both", "snn", "ann"])
    case.steps.append(Step(["replay", str(TINY), "--arch", str(dst), "--mode", mode, "--samples", "1", "--quiet",
                            "--json", str(out)], expect=expect, outputs=[(str(out), "json")], names=[str(dst)]))


def gen_tables(rng: random.Random, case: Case, ctx: Context) -> None:
    name = pick(rng, TABLE_NAMES)
    src = ENERGY_DIR / f"{name}.yaml"
    mclass, target, detail, expect, warn, text = yaml_mutation(rng, "table", src.read_text())
    dst = _write_mutated_yaml(case, name, mclass, target, detail, text)
    out = case.dir / "out" / "replay.json"
    case.steps.append(Step(["replay", str(TINY), "--arch", "all", "--energy", str(dst), "--samples", "1", "--quiet",
                            "--json", str(out)], expect=expect, outputs=[(str(out), "json")], names=[str(dst)],
                           baseline=f"table:{name}", warn_names=warn))
    if rng.random() < 0.3:  # the same table through reprice
        out2 = case.dir / "out" / "reprice.json"
        case.steps.append(Step(["reprice", str(ctx.base / "report_multi.json"), "--energy", str(dst), "--json", str(out2)],
                               expect=expect, outputs=[(str(out2), "json")], names=[str(dst)],
                               baseline=f"reprice:multi:{name}", warn_names=warn))


# ==========================================================================================
# Command-line arguments
# ==========================================================================================

def gen_args(rng: random.Random, case: Case, ctx: Context) -> None:
    out = case.dir / "out"
    tiny = str(TINY)
    which = pick(rng, ["samples", "samples", "set", "set", "grid", "T", "output", "output", "output-pair", "names",
                       "synth", "formulas", "workers", "validate", "control"])
    cmd_out = str(out / "r.json")

    def step(argv, expect, names, outputs=(), **kw):
        case.steps.append(Step(argv, expect=expect, names=list(names), outputs=list(outputs), **kw))

    if which == "samples":
        cmd = pick(rng, ["replay", "inspect", "validate"])
        v, expect = pick(rng, [("0", "invalid"), ("-1", "invalid"), (str(10**9), "invalid"), ("9", "invalid"),
                               ("abc", "invalid"), ("1.5", "invalid"), ("", "invalid"), ("1", "valid"), ("8", "valid"),
                               (str(2**64), "invalid")])
        argv = [cmd, tiny, "--samples", v, "--json", cmd_out]
        if cmd in ("replay", "validate"):
            argv += ["--arch", pick(rng, ["memory_hierarchy", "neuromorphic", "spatial_dataflow"]), "--quiet"]
        if cmd == "validate":
            argv += ["--ideal"]
            step(argv, expect, ["--samples"], [(cmd_out, "json")], allow_exit1=True, timeout_mul=2)
        else:
            step(argv, expect, ["--samples"], [(cmd_out, "json")])
        case.mclass, case.target, case.detail = "samples", f"{cmd} --samples {_label_value(v)}", f"--samples {v!r}"
        return
    if which == "set":
        arch = pick(rng, ARCH_NAMES)
        doc = yaml.safe_load((ARCH_DIR / f"{arch}.yaml").read_text())
        # --set names fields: a list-valued field (noc.barrier_cycles as a table) is set whole,
        # so no path runs into a list's items
        paths = [p for p, v in leaves(doc) if not isinstance(v, (dict, list))
                 and not any(isinstance(k, int) for k in p)]
        kind = pick(rng, ["bad-path", "bad-value", "section", "syntax", "valid"])
        if kind == "bad-path":
            path = list(pick(rng, paths))
            path[-1] = _typo(rng, str(path[-1])) if rng.random() < 0.7 else path[-1]
            if rng.random() < 0.3:
                path = ["nosuch"] + path
            text, expect = ".".join(map(str, path)) + "=1", "invalid"
            if tuple(path) in [tuple(p) for p in paths]:
                raise Skip
        elif kind == "bad-value":
            path = pick(rng, [p for p in paths if field_rule("spec", doc, p) not in ("free", "str")])
            rule = field_rule("spec", doc, path)
            value, expect, lab, raw = value_mutation(rng, rule, get_in(doc, path))
            if lab == "5000-digits":
                raw = "9" * 5000
            text = ".".join(map(str, path)) + "=" + (raw if raw is not None else yaml_scalar(value))
        elif kind == "section":
            text, expect = pick(rng, ["components=5", "components.dram=1", "mapping=x", "data={}"]), "invalid"
        elif kind == "syntax":
            text = pick(rng, ["noequals", "=5", ".=5", "..=1", "components..dram.width_bits=64",
                              "mapping.zero_skipping=", "clock_mhz=[1", "clock_mhz=!!python/name:os.system"])
            # an empty path segment ("a..b") may be read as "a.b": unambiguous, either verdict
            expect = "either" if text.startswith("components..") else "invalid"
        else:
            path = pick(rng, [p for p in paths if field_rule("spec", doc, p) in ("bool", "pos_int")])
            v = get_in(doc, path)
            text, expect = ".".join(map(str, path)) + "=" + yaml_scalar(v), "valid"
        argv = ["replay", tiny, "--arch", arch, "--samples", "1", "--quiet", "--set", text, "--json", cmd_out]
        step(argv, expect, ["--set", text.split("=")[0]], [(cmd_out, "json")])
        case.mclass, case.target, case.detail = "set", f"--set {kind}", f"--set {text[:80]!r} on {arch}"
        return
    if which == "grid":
        g = pick(rng, [("foo", "invalid"), ("x=", "invalid"), ("components.dram.latency_cycles=", "invalid"),
                       ("=1,2", "invalid"), ("components.dram.latency_cycles=a,b", "invalid"),
                       ("components.dram.latency_cycles=-1", "invalid"), ("trace.T=0", "invalid"),
                       ("trace.T=1.5", "invalid"), ("trace.rate=2", "invalid"), ("trace.rate=nan", "invalid"),
                       ("trace.rate=-0.5", "invalid"), ("components.dram.nosuch=1", "invalid"),
                       ("components.dram.latency_cycles=.inf", "invalid"), ("mapping.zero_skipping=true", "invalid"),
                       ("components.dram.latency_cycles=" + "9" * 5000, "invalid"),
                       ("components.dram.latency_cycles=1,,2", "either"), ("trace.T=4,4", "either")])
        text, expect = g
        twice = rng.random() < 0.15
        argv = ["sweep", tiny, "--arch", "memory_hierarchy", "--grid", text, "--mode", "snn", "--samples", "1",
                "--workers", "1", "--quiet", "--out", str(out / "sw")]
        if twice:
            key = text.split("=")[0] if "=" in text and text.split("=")[0] else "components.dram.latency_cycles"
            argv[4:4] = ["--grid", f"{key}=10", "--grid", f"{key}=20"]
            expect = "invalid"
        step(argv, expect, ["--grid", text.split("=")[0] or "--grid"], timeout_mul=2, sweep_dir=str(out / "sw"),
             check="sweep", allow_exit1=True)
        case.mclass, case.target, case.detail = "grid", f"--grid {_label_value(text)}{' twice' if twice else ''}", f"--grid {text[:80]!r}"
        return
    if which == "T":
        cmd = pick(rng, ["formulas", "breakeven"])
        v = pick(rng, ["0", "5-2", "a", "1--2", ",", "", " ", "-3", "1-", "2,,4", "1.5", "1-1000000000", str(2**70),
                       "0-4", "3-3", "1-4"])
        # a huge T (or range) is absurd but not invalid by construction: either verdict, but it
        # must end cleanly and in time
        expect = "valid" if v in ("3-3", "1-4") else (
            "either" if v in ("2,,4", "1-", "1-1000000000", str(2**70)) else "invalid")
        if cmd == "breakeven" and expect != "invalid":
            cmd = "formulas"
        argv = [cmd, "--T", v, "--json", cmd_out]
        if cmd == "breakeven":
            argv += ["--model", "tiny", "--quiet"]
        step(argv, expect, ["--T"], [(cmd_out, "json")])
        case.mclass, case.target, case.detail = "T", f"{cmd} --T {_label_value(v)}", f"--T {v!r}"
        return
    if which in ("output", "output-pair"):
        cmd = pick(rng, ["replay", "inspect", "reprice", "formulas"])
        opt = pick(rng, {"replay": ["--json", "--csv", "--plot"], "inspect": ["--json"], "reprice": ["--json"],
                         "formulas": ["--json", "--plot"]}[cmd])
        (out / "adir").mkdir(parents=True, exist_ok=True)
        (out / "afile").write_text("x")
        kind, path, expect = pick(rng, [
            ("proc", "/proc/fuzz/x.json", "invalid"), ("proc-root", "/proc/x.json", "invalid"),
            ("directory", str(out / "adir"), "invalid" if opt != "--plot" else "either"),
            ("missing-dir", str(out / "no" / "such" / "dir" / "x.out"), "either"),
            ("parent-is-file", str(out / "afile" / "x.json"), "invalid"),
            ("long-name", str(out / ("n" * 300 + ".json")), "invalid"),
            ("jpg", str(out / "x.jpg"), "invalid" if opt == "--plot" else "either"),
            ("device-full", str(out / "full"), "invalid"),
            ("empty", "", "invalid"),
        ])
        if kind == "device-full":
            # a character device like /dev/full (writes fail with ENOSPC), made inside the case
            # directory: never point the CLI at the real /dev (an atomic writer replaces it)
            try:
                os.mknod(path, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))
            except OSError:
                raise Skip from None
        if kind == "missing-dir" and opt == "--plot":
            path = path[:-4] + ".png"
        if opt == "--plot" and kind in ("proc", "proc-root", "parent-is-file", "long-name", "device-full"):
            if kind == "device-full":
                raise Skip
            path = path.rsplit(".", 1)[0] + ".png"
        argv = _cmd_argv(cmd, ctx, case)
        outputs = []
        ok_first = None
        if which == "output-pair":  # a good output first, then the bad one: nothing may remain
            if opt != "--json":
                ok_first = str(out / "good.json")
                argv += ["--json", ok_first]
            elif cmd == "replay":
                ok_first = str(out / "good.csv")
                argv += ["--csv", ok_first]
            else:
                which = "output"
        argv += [opt, path]
        if ok_first:
            outputs.append((ok_first, "csv" if ok_first.endswith(".csv") else "json"))
        ptype = {"--json": "json", "--csv": "csv", "--plot": "png"}[opt]
        if opt == "--plot" and kind == "directory":
            ptype = "plotdir"
        if expect != "invalid" or kind in ("jpg", "missing-dir"):
            outputs.append((path, ptype))
        names = [opt] + ([path] if path else [])
        step(argv, expect, names, outputs, timeout_mul=2 if opt == "--plot" else 1)
        case.mclass = which
        case.target = f"{cmd} {opt} {kind}"
        case.detail = f"{cmd} {opt} {path[:80]!r}{' after a good output' if ok_first else ''}"
        return
    if which == "names":
        cmd = pick(rng, ["replay", "sweep", "reprice", "inspect"])
        kind = pick(rng, ["arch-unknown", "arch-all-sweep", "energy-unknown", "energy-dir", "trace-dir",
                          "trace-missing", "trace-devnull", "mode", "arch-yaml-missing"])
        argv = {"replay": ["replay", tiny, "--samples", "1", "--quiet"],
                "sweep": ["sweep", tiny, "--grid", "components.dram.latency_cycles=10", "--samples", "1", "--quiet",
                          "--workers", "1", "--out", str(out / "sw")],
                "reprice": ["reprice", str(ctx.base / "report_multi.json")],
                "inspect": ["inspect", tiny]}[cmd]
        names: list[str] = []
        if kind == "arch-unknown":
            argv += ["--arch", "bogus_arch"]
            names = ["bogus_arch"]
        elif kind == "arch-all-sweep":
            argv += ["--arch", "all"]
            names = ["all", "--arch"]
        elif kind == "arch-yaml-missing":
            argv += ["--arch", str(out / "missing.yaml")]
            names = [str(out / "missing.yaml")]
        elif kind == "energy-unknown":
            argv += ["--energy", "bogus_table"]
            names = ["bogus_table"]
        elif kind == "energy-dir":
            argv += ["--energy", str(ENERGY_DIR) + "/"]
            names = [str(ENERGY_DIR)]
        elif kind in ("trace-dir", "trace-missing", "trace-devnull"):
            bad = {"trace-dir": str(REPO / "traces"), "trace-missing": str(out / "missing.h5"),
                   "trace-devnull": "/dev/null"}[kind]
            argv[1] = bad
            names = [bad]
        else:
            argv += ["--mode", "xyz"]
            names = ["--mode"]
        if cmd == "reprice" and kind in ("arch-unknown", "arch-all-sweep", "arch-yaml-missing", "mode"):
            argv += ["--energy", "paper_v1_45nm"]
        elif cmd == "reprice" and "--energy" not in argv:
            argv += ["--energy", "paper_v1_45nm"]
        if cmd == "inspect" and kind not in ("trace-dir", "trace-missing", "trace-devnull"):
            raise Skip
        if kind == "arch-all-sweep" and cmd != "sweep":
            raise Skip  # --arch all is valid for replay
        expect = "invalid"
        if cmd == "reprice" and kind in ("arch-unknown", "arch-all-sweep", "arch-yaml-missing", "mode"):
            names = []  # argparse: unknown option
        step(argv, expect, names or [argv[1]], timeout_mul=2, sweep_dir=str(out / "sw") if cmd == "sweep" else None)
        case.mclass, case.target, case.detail = "names", f"{cmd} {kind}", " ".join(argv[:2] + argv[-2:])
        return
    if which == "synth":
        v = pick(rng, [("--T", "0"), ("--T", "-1"), ("--T", "abc"), ("--rate", "1.5"), ("--rate", "nan"), ("--rate", "-0.1"),
                       ("--rate", "conv1=0.5"), ("--rate", "bogus=0.1,default=0.1"), ("--rate", "conv1=x,default=0.1"),
                       ("--rate", "conv1"), ("--rate", "=,="), ("--samples", "0"), ("--samples", "-2"), ("--rate", "inf"),
                       ("--model", "nosuch"), ("--T", "3"), ("--rate", "0.2")])
        args = {"--model": "tiny", "--T": "3", "--rate": "0.1", "--samples": "2"}
        args[v[0]] = v[1]
        dest = str(out / "s.h5")
        argv = ["synth"] + [x for kv in args.items() for x in kv] + ["--out", dest]
        expect = "valid" if v in (("--T", "3"), ("--rate", "0.2")) else "invalid"
        step(argv, expect, [v[0]], [(dest, "h5")], check="synth")
        case.mclass, case.target, case.detail = "synth", f"synth {v[0]} {_label_value(v[1])}", f"synth {v[0]} {v[1]!r}"
        return
    if which == "formulas":
        v = pick(rng, [("--sparsity", "-0.1"), ("--sparsity", "1.5"), ("--sparsity", "nan"), ("--sparsity", "abc"),
                       ("--sparsity", "inf"), ("--qnn-rho", "-1"), ("--qnn-rho", "nan"), ("--trace", str(out / "missing.h5")),
                       ("--trace", "/dev/null"), ("--sparsity", "0.5")])
        argv = ["formulas", "--T", "1-4", v[0], v[1], "--json", cmd_out]
        if v[0] == "--qnn-rho":
            argv.insert(3, "--qnn")
        expect = "valid" if v == ("--sparsity", "0.5") else "invalid"
        step(argv, expect, [v[0], v[1]], [(cmd_out, "json")])
        case.mclass, case.target, case.detail = "formulas", f"formulas {v[0]} {_label_value(v[1])}", f"{v[0]} {v[1]!r}"
        return
    if which == "workers":
        v = pick(rng, ["0", "-1", "abc"])
        argv = ["sweep", tiny, "--arch", "memory_hierarchy", "--grid", "components.dram.latency_cycles=10", "--samples", "1",
                "--quiet", "--workers", v, "--out", str(out / "sw")]
        step(argv, "invalid", ["--workers"], sweep_dir=str(out / "sw"))
        case.mclass, case.target, case.detail = "workers", f"sweep --workers {_label_value(v)}", f"--workers {v!r}"
        return
    if which == "validate":
        v = pick(rng, [("--arch", "bogus"), ("--set", "mapping.nosuch=1"), ("--energy", "loihi"), ("--samples", "0")])
        argv = ["validate", tiny, "--samples", "1", "--quiet", "--json", cmd_out]
        if v[0] == "--arch" or v[0] == "--set" or v[0] == "--energy":
            argv += ["--arch", "memory_hierarchy"] if v[0] != "--arch" else []
        argv += [v[0], v[1]] if v[0] != "--samples" else []
        if v[0] == "--samples":
            argv[argv.index("--samples") + 1] = v[1]
        # loihi cannot price memory_hierarchy: validate needs energies (a SpecError, docs/arch-spec.md)
        step(argv, "invalid", [v[0], v[1], "loihi"], [(cmd_out, "json")], allow_exit1=True, timeout_mul=2)
        case.mclass, case.target, case.detail = "validate", f"validate {v[0]} {_label_value(v[1])}", f"{v[0]} {v[1]!r}"
        return
    # control: a plain valid command
    argv = pick(rng, [["replay", tiny, "--arch", "all", "--samples", "1", "--quiet", "--json", cmd_out, "--csv", str(out / "r.csv")],
                      ["inspect", tiny, "--samples", "2", "--json", cmd_out],
                      ["formulas", "--T", "2,4", "--json", cmd_out]])
    outputs = [(cmd_out, "json")] + ([(str(out / "r.csv"), "csv")] if "--csv" in argv else [])
    step(argv, "valid", [], outputs)
    case.mclass, case.target, case.detail = "control", f"control {argv[0]}", " ".join(argv[:2])


def _label_value(v: str) -> str:
    """A signature-friendly label of an option value (huge numbers collapsed)."""
    v = str(v)
    if len(v) > 24:
        return v[:12] + f"...({len(v)} chars)"
    return repr(v)


def _cmd_argv(cmd: str, ctx: Context, case: Case) -> list[str]:
    if cmd == "replay":
        return ["replay", str(TINY), "--arch", "all", "--samples", "1", "--quiet"]
    if cmd == "inspect":
        return ["inspect", str(TINY), "--samples", "1"]
    if cmd == "reprice":
        return ["reprice", str(ctx.base / "report_multi.json"), "--energy", "horowitz_45nm"]
    return ["formulas", "--T", "1-4"]


# ==========================================================================================
# Saved reports (reprice)
# ==========================================================================================

def report_rule(path: tuple) -> str:
    """How reprice uses a field of a report: 'int0' (an integer >= 0 it computes with),
    'int1' (>= 1), 'struct' (a section it walks), 'const', 'mode', 'class', 'cap', 'pass'."""
    p = path
    if p and p[0] == "runs":
        if len(p) <= 2:
            return "struct"
        p = p[2:]
    if not p:
        return "struct"
    head = p[0]
    if head == "schema":
        return "const"
    if head == "samples":
        return "int1"
    if head == "cycles":
        return "int0"
    if head == "mode":
        return "mode"
    if head == "counts" and len(p) == 2:
        return "int0"  # passed through by reprice, but part of the report it writes
    if head == "totals":
        return "pass"  # recomputed from the layers
    if head == "arch":
        if len(p) == 1:
            return "struct"
        if p[1] == "components":
            if len(p) <= 3:
                return "struct"
            return "class" if p[3] == "class" else "cap"
        if p[1] == "name":
            return "str"
        return "pass"
    if head == "layers":
        if len(p) <= 2:
            return "struct"
        if p[2] in ("counts", "bits", "totals"):
            if len(p) == 3:
                return "struct"
            return "int1" if p[2] == "bits" else "int0"
        if p[2] == "name":
            return "str"
        if p[2] == "cycles":
            return "int0"
        return "pass"
    return "pass"


def gen_reports(rng: random.Random, case: Case, ctx: Context) -> None:
    which_doc = pick(rng, ["single", "multi"])
    src = ctx.base / f"report_{which_doc}.json"
    doc = json.loads(src.read_text())
    text = None
    mclass = pick(rng, ["json-type", "json-type", "json-delete", "json-truncate", "json-special", "json-number", "control"])
    nodes = leaves(doc)
    expect = "invalid"
    if mclass == "json-truncate":
        full = src.read_text()
        cut = rng.randrange(len(full) - 1)
        text = full[:cut]
        target, detail = "truncate", f"truncated to {cut} of {len(full)} chars"
    elif mclass == "json-special":
        kind = pick(rng, ["runs-int", "runs-list-int", "runs-empty", "top-list", "null", "int", "string", "empty-object",
                          "empty-file", "deep", "non-utf8", "nan-literal", "huge-int", "runs-null-item"])
        text = {"runs-int": '{"runs": 5}', "runs-list-int": '{"runs": [5]}', "runs-empty": '{"runs": []}',
                "top-list": "[]", "null": "null", "int": "5", "string": '"x"', "empty-object": "{}", "empty-file": "",
                "deep": "[" * 100000 + "]" * 100000, "runs-null-item": '{"runs": [null]}'}.get(kind)
        if kind == "non-utf8":
            text = src.read_text()[:-2] + "\udcff}"
        elif kind in ("nan-literal", "huge-int"):
            paths = [p for p, v in nodes if report_rule(p) == "int0" and isinstance(v, int) and "counts" in p]
            p = pick(rng, paths)
            set_in(doc, p, PLACEHOLDER)
            text = json.dumps(doc).replace(f'"{PLACEHOLDER}"', "NaN" if kind == "nan-literal" else "1" + "0" * 400)
        target, detail = f"special:{kind}", kind
    elif mclass == "control":
        text = json.dumps(doc)
        target, detail, expect = "control", "unmutated", "valid"
    else:
        if mclass == "json-number":
            cands = [(p, v) for p, v in nodes if report_rule(p) in ("int0", "int1") and isinstance(v, int)]
        else:
            cands = [(p, v) for p, v in nodes]
        path, old = pick(rng, cands)
        rule = report_rule(path)
        lab = "?"
        if mclass == "json-delete":
            parent = get_in(doc, path[:-1])
            del parent[path[-1]]
            lab = "deleted"
            expect = "either" if rule == "pass" or (rule == "cap" and old is None) else "invalid"
            if rule in ("int0", "int1") and len(path) >= 2 and path[-2] in ("counts",):
                expect = "either"  # a count that is absent is a count that did not arise
            if len(path) >= 2 and path[-2] == "totals" and "layers" not in path:
                expect = "either"  # the run's totals are recomputed from its layers
            if path[-1] in ("cycles",) and "layers" in path:
                expect = "either"
        else:
            if mclass == "json-number":
                value, lab, expect = pick(rng, [(-1, "negative", "invalid"), (1.5, "float", "invalid"),
                                                (0, "zero", "invalid" if rule == "int1" else "either"),
                                                (2**53 + 1, "big", "either"), (True, "bool", "invalid")])
            else:
                value, lab = pick(rng, [(None, "null"), ("x", "string"), ([1], "list"), ({"a": 1}, "mapping"),
                                        (1.5, "float"), (-3, "negative-int"), (True, "bool"), ({}, "empty-mapping"),
                                        ([], "empty-list")])
                if type(value) is type(old) and value == old:
                    raise Skip
                expect = "invalid"
                if rule == "pass":
                    expect = "either"
                elif rule == "cap":
                    expect = "either" if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0) else "invalid"
                elif rule == "struct" and lab in ("empty-mapping", "empty-list") and type(value) is type(old):
                    expect = "either"  # no layers / no counts: a report of nothing (or a clean error)
                elif rule == "str" and isinstance(value, str):
                    expect = "either"
            set_in(doc, path, value)
        text = json.dumps(doc, indent=1)
        generic = ".".join("[]" if isinstance(x, int) else ("*" if i > 0 and path[i - 1] in ("counts", "bits", "totals", "components") else str(x))
                           for i, x in enumerate(path))
        target, detail = f"{generic}:{lab}", f"{'.'.join(map(str, path))} -> {lab}"
    dst = case.dir / f"report_{which_doc}.json"
    if "\udcff" in (text or ""):
        dst.write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        dst.write_text(text or "")
    # the single report is a memory_hierarchy run, which the Loihi table cannot price (exit 2)
    table = pick(rng, TABLE_NAMES if which_doc == "multi" else TABLE_NAMES[:2])
    out = case.dir / "out" / "repriced.json"
    case.mclass, case.target, case.detail = mclass, f"{which_doc}:{target}", f"{which_doc}: {detail}"
    case.files.append(str(dst))
    # a table that cannot price the report's runs is a clean rejection naming the table
    case.steps.append(Step(["reprice", str(dst), "--energy", table, "--json", str(out)], expect=expect,
                           outputs=[(str(out), "json")], names=[str(dst), f"{table}.yaml"]))


# ==========================================================================================
# Sweep directories (resume and plot-sweep)
# ==========================================================================================

def gen_sweeps(rng: random.Random, case: Case, ctx: Context) -> None:
    d = case.dir / "sweep"
    shutil.copytree(ctx.sweep_dir, d)
    points = sorted((d / "points").glob("*.json"))
    mclass = pick(rng, ["point-delete", "point-truncate", "point-corrupt", "point-extra", "manifest-corrupt",
                        "manifest-delete", "empty-dir", "points-not-dir", "results-corrupt", "control"])
    plot_expect, sweep_expect = "invalid", "either"
    p = pick(rng, points)
    if mclass == "point-delete":
        p.unlink()
        detail, plot_expect, sweep_expect = f"delete points/{p.name}", "either", "valid"
    elif mclass == "point-truncate":
        text = p.read_text()
        cut = rng.randrange(len(text))
        p.write_text(text[:cut])
        detail = f"truncate points/{p.name} to {cut} chars"
    elif mclass == "point-corrupt":
        which = pick(rng, ["garbage", "empty-object", "list", "runs-int", "no-runs", "nan-energy", "wrong-id", "null"])
        doc = json.loads(p.read_text())
        if which == "garbage":
            p.write_bytes(bytes(rng.randrange(256) for _ in range(200)))
        elif which == "empty-object":
            p.write_text("{}")
        elif which == "list":
            p.write_text("[]")
        elif which == "null":
            p.write_text("null")
        elif which == "runs-int":
            doc["runs"] = 5
            p.write_text(json.dumps(doc))
        elif which == "no-runs":
            del doc["runs"]
            p.write_text(json.dumps(doc))
        elif which == "nan-energy":
            doc["runs"][0]["energy_pj"]["total"] = float("nan")
            p.write_text(json.dumps(doc))
        else:
            doc["id"] = "0" * 20
            doc["params"] = {"components.dram.latency_cycles": 7}
            p.write_text(json.dumps(doc))
        detail = f"points/{p.name}: {which}"
        mclass = f"point-corrupt"
        case.target = f"point:{which}"
    elif mclass == "point-extra":
        which = pick(rng, ["garbage-json", "tmp-leftover", "subdir"])
        if which == "garbage-json":
            (d / "points" / "zz_stray.json").write_text("not json")
        elif which == "tmp-leftover":
            (d / "points" / f".{p.name}.123.tmp").write_text(p.read_text()[:50])
        else:
            (d / "points" / "zz_dir.json").mkdir()
        detail, plot_expect = f"points/: {which}", "either"
        case.target = f"point-extra:{which}"
    elif mclass == "manifest-corrupt":
        which = pick(rng, ["truncate", "garbage", "empty-object", "wrong-schema", "unknown-point", "points-int",
                           "no-points", "list"])
        m = d / "sweep.json"
        doc = json.loads(m.read_text())
        if which == "truncate":
            t = m.read_text()
            m.write_text(t[:rng.randrange(len(t))])
        elif which == "garbage":
            m.write_bytes(b"\x00\xff" * 10)
        elif which == "empty-object":
            m.write_text("{}")
        elif which == "list":
            m.write_text("[]")
        elif which == "wrong-schema":
            doc["schema"] = "other/9"
            m.write_text(json.dumps(doc))
        elif which == "unknown-point":  # a point never run: plot-sweep may plot the others, saying so
            doc["points"].append({"id": "f" * 20, "params": {"components.dram.latency_cycles": 5}})
            m.write_text(json.dumps(doc))
            plot_expect = "warn"
        elif which == "points-int":
            doc["points"] = 5
            m.write_text(json.dumps(doc))
        else:
            del doc["points"]
            m.write_text(json.dumps(doc))
        detail = f"sweep.json: {which}"
        case.target = f"manifest:{which}"
    elif mclass == "manifest-delete":
        (d / "sweep.json").unlink()
        detail = "delete sweep.json"
    elif mclass == "empty-dir":
        shutil.rmtree(d)
        d.mkdir()
        detail, sweep_expect = "empty directory", "valid"
    elif mclass == "points-not-dir":
        shutil.rmtree(d / "points")
        (d / "points").write_text("x")
        detail, sweep_expect = "points/ is a file", "invalid"
    elif mclass == "results-corrupt":
        (d / "results.csv").write_text("garbage,\n\x00\n")
        detail, plot_expect = "results.csv garbage", "either"
    else:
        detail, plot_expect, sweep_expect = "unmutated copy", "valid", "valid"
    case.mclass = mclass
    if not case.target:
        case.target = mclass
    case.detail = detail
    case.files.append(str(d))
    warn = ["warning"] if plot_expect == "warn" else []
    if plot_expect == "invalid" and mclass in ("point-truncate", "point-corrupt"):
        # plot-sweep may plot the readable points of a partial sweep, saying which it rejected
        plot_expect, warn = "warn", [p.name]
    case.steps.append(Step(["plot-sweep", str(d)], expect=plot_expect, names=[str(d)], sweep_dir=str(d),
                           timeout_mul=2, warn_names=warn))
    case.steps.append(Step(sweep_argv(d), expect=sweep_expect, names=[str(d)], sweep_dir=str(d), timeout_mul=3,
                           check="sweep", allow_exit1=True))


MUTATORS: dict[str, Callable] = {"traces": gen_traces, "specs": gen_specs, "tables": gen_tables, "args": gen_args,
                                 "reports": gen_reports, "sweeps": gen_sweeps}


def make_case(seed: int, i: int, kinds: list[str], ctx: Context, out: Path) -> Case:
    for attempt in range(20):
        rng = random.Random(f"{seed}:{i}:{attempt}")
        weights = [KIND_WEIGHTS[k] for k in kinds]
        kind = rng.choices(kinds, weights)[0]
        d = out / "cases" / f"{i:05d}"
        if d.exists():
            shutil.rmtree(d)
        (d / "out").mkdir(parents=True)
        case = Case(i, kind, "", "", "", d)
        try:
            MUTATORS[kind](rng, case, ctx)
            return case
        except Skip:
            continue
    raise RuntimeError(f"case {i}: no applicable mutation")


# ==========================================================================================
# Runner: subprocess (faithful) or fork (pre-imported, warm)
# ==========================================================================================

@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool


def _limits(mem_mb: int, cpu_s: int):
    def apply():
        if mem_mb:
            resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


class Runner:
    def __init__(self, mode: str, jobs: int, timeout: float, mem_mb: int):
        self.mode, self.jobs, self.timeout, self.mem_mb = mode, jobs, timeout, mem_mb
        self.active: dict[int, dict] = {}

    # -- warm-up (fork mode) -------------------------------------------------------------
    def warm(self, scratch: Path) -> None:
        if self.mode != "fork":
            return
        import threading

        sys.path.insert(0, str(REPO))
        from sim.cli import main

        scratch.mkdir(parents=True, exist_ok=True)
        runs = [["replay", str(TINY), "--arch", "all", "--samples", "1", "--quiet", "--json", str(scratch / "w.json")],
                ["replay", str(DIGITS), "--arch", "all", "--samples", "1", "--quiet", "--json", str(scratch / "w.json"),
                 "--csv", str(scratch / "w.csv")],
                ["inspect", str(TINY), "--json", str(scratch / "i.json")],
                ["reprice", str(scratch / "w.json"), "--energy", "horowitz_45nm", "--json", str(scratch / "p.json")],
                ["formulas", "--T", "1-4", "--json", str(scratch / "f.json")]]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for argv in runs:
                main(argv)
            import matplotlib
            matplotlib.use("Agg")
            import sim.plots.energy  # noqa: F401
            import sim.plots.sweep  # noqa: F401
        if threading.active_count() != 1:
            print(f"fuzz: {threading.active_count()} threads after warm-up; using --runner subprocess", file=sys.stderr)
            self.mode = "subprocess"

    # -- launching ---------------------------------------------------------------------------
    def launch(self, argv: list[str], log: Path, timeout: float, cwd: Path = REPO) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        out_path, err_path = Path(f"{log}.stdout"), Path(f"{log}.stderr")
        limits = _limits(self.mem_mb, int(timeout) + 10)
        if self.mode == "subprocess":
            with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
                p = subprocess.Popen([PY, str(RUN_SIM), *argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=fo,
                                     stderr=fe, start_new_session=True, preexec_fn=limits)
            key = p.pid
            self.active[key] = {"popen": p, "start": time.monotonic(), "timeout": timeout, "out": out_path,
                                "err": err_path}
            return key
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: behave like `python run_sim.py ARGV`
            code = 70
            try:
                os.setsid()
                limits()
                fo = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                fe = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                fi = os.open(os.devnull, os.O_RDONLY)
                os.dup2(fi, 0)
                os.dup2(fo, 1)
                os.dup2(fe, 2)
                os.chdir(cwd)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                code = _run_as_main(argv)
            finally:
                os._exit(code)
        self.active[pid] = {"pid": pid, "start": time.monotonic(), "timeout": timeout, "out": out_path, "err": err_path}
        return pid

    def poll(self) -> list[tuple[int, Result]]:
        done = []
        now = time.monotonic()
        for key, a in list(self.active.items()):
            rc = None
            if "popen" in a:
                rc = a["popen"].poll()
            else:
                pid, status = os.waitpid(key, os.WNOHANG)
                if pid:
                    rc = os.waitstatus_to_exitcode(status)
            timed_out = False
            if rc is None and now - a["start"] > a["timeout"]:
                _kill_group(key)
                if "popen" in a:
                    rc = a["popen"].wait()
                else:
                    _, status = os.waitpid(key, 0)
                    rc = os.waitstatus_to_exitcode(status)
                timed_out = True
            if rc is None:
                continue
            _kill_group(key)  # stray grandchildren (Dask workers of a crashed sweep)
            del self.active[key]
            done.append((key, Result(None if timed_out else rc, _read(a["out"]), _read(a["err"]),
                                     time.monotonic() - a["start"], timed_out)))
        return done

    def run_one(self, argv: list[str], log: Path, timeout: float | None = None) -> Result:
        key = self.launch(argv, log, timeout or self.timeout)
        while True:
            for k, res in self.poll():
                if k == key:
                    return res
            time.sleep(0.01)


def _run_as_main(argv: list[str]) -> int:
    """Run run_sim.py as ``__main__`` with ``argv``; the interpreter's exit-status rules."""
    import runpy

    sys.argv = [str(RUN_SIM), *argv]
    sys.path[0] = str(REPO)
    try:
        runpy.run_path(str(RUN_SIM), run_name="__main__")
        code = 0
    except SystemExit as exc:
        c = exc.code
        if c is None:
            code = 0
        elif isinstance(c, int):
            code = c & 0xFF
        else:
            print(c, file=sys.stderr)
            code = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120
    return code


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ==========================================================================================
# Classifier
# ==========================================================================================

STRAY_RE = re.compile(r"(\.tmp$|\.partial$|\.part$|~$|^\.)")


LOG_RE = re.compile(r"^step\d+\.std(out|err)$")


def snapshot(d: Path) -> dict[str, int]:
    """Every file under a case directory (but the runner's own logs) and its size."""
    out = {}
    for root, dirs, files in os.walk(d):
        for f in files:
            if root == str(d) and LOG_RE.match(f):
                continue
            p = Path(root) / f
            with contextlib.suppress(OSError):
                out[str(p)] = p.stat().st_size
    return out


def file_complete(path: str, typ: str) -> str | None:
    """None if the output is whole; else what is wrong with it."""
    p = Path(path)
    if typ == "plotdir":
        p = p / "energy_breakdown.png"
        typ = "png"
    if not p.is_file():
        return f"{p} missing"
    data = p.read_bytes()
    if typ == "json":
        try:
            json.loads(data, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except Exception as exc:  # noqa: BLE001
            return f"{p}: not complete JSON ({type(exc).__name__}: {str(exc)[:80]})"
    elif typ == "csv":
        text = data.decode("utf-8", "replace")
        lines = text.splitlines()
        if not lines or not text.endswith("\n"):
            return f"{p}: empty or unterminated CSV"
        import csv as _csv

        widths = {len(r) for r in _csv.reader(lines)}
        if len(widths) != 1:
            return f"{p}: ragged CSV rows {sorted(widths)}"
    elif typ == "png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n") or b"IEND" not in data[-16:]:
            return f"{p}: not a complete PNG"
    elif typ == "h5":
        if not data.startswith(b"\x89HDF\r\n\x1a\n"):
            return f"{p}: not HDF5"
    return None


def sanity(doc: Any) -> str | None:
    """Problems of a report (or document of reports) that no valid input can produce."""
    runs = doc.get("runs") if isinstance(doc, dict) and "runs" in doc else [doc]
    if not isinstance(runs, list):
        return "runs is not a list"
    for r in runs:
        if not isinstance(r, dict) or "counts" not in r:
            continue
        for k, v in list(r.get("counts", {}).items()) + list(r.get("totals", {}).items()):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                return f"count {k} = {v!r}"
        for key in ("cycles", "stall_cycles"):
            v = r.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                return f"{key} = {v!r}"
        e = r.get("energy_pj")
        if e is not None:
            vals = [e.get("total")] + list(e.get("by_component", {}).values()) + list(e.get("by_action", {}).values())
            for v in vals:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                    return f"energy {v!r}"
        for layer in r.get("layers", []):
            for k, v in layer.get("counts", {}).items():
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    return f"layer {layer.get('name')} count {k} = {v!r}"
    return None


def sanity_inspect(doc: Any) -> str | None:
    """Problems of an inspect result that no valid trace can produce."""
    if not isinstance(doc, dict):
        return "not an object"
    for layer in doc.get("layers", []):
        for key in ("spike_rate", "activation_density"):
            v = layer.get(key)
            if v is not None and (not isinstance(v, (int, float)) or not 0 <= v <= 1):
                return f"layer {layer.get('name')}: {key} = {v!r}"
        v = layer.get("spike_count")
        if v is not None and (not isinstance(v, int) or v < 0):
            return f"layer {layer.get('name')}: spike_count = {v!r}"
    return None


def check_sweep_dir(d: Path) -> str | None:
    """After a sweep that exited 0: the manifest and every point it lists are whole."""
    try:
        manifest = json.loads((d / "sweep.json").read_text())
        for entry in manifest["points"]:
            point = json.loads((d / "points" / f"{entry['id']}.json").read_text())
            if not isinstance(point, dict) or point.get("id") != entry["id"] or not (
                    isinstance(point.get("runs"), list) and (point["runs"] or point.get("error"))):
                return f"point {entry['id']} is not a complete result"
            for r in point["runs"]:
                s = sanity(r)
                if s:
                    return f"point {entry['id']}: {s}"
    except Exception as exc:  # noqa: BLE001
        return f"sweep directory not whole after exit 0: {type(exc).__name__}: {str(exc)[:100]}"
    return None


def exception_signature(stderr: str) -> str:
    """'ExcType @ file:function' of the last traceback: its exception and innermost frame in sim/."""
    block = stderr[stderr.rfind("Traceback (most recent call last)"):]
    exc = ""
    for line in block.splitlines()[1:]:
        if line and not line.startswith(" "):
            exc = line.split(":")[0].strip()
            break
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', block)
    inner = [f for f in frames if "/sim/" in f[0]] or frames
    if not inner:
        return exc
    f, _, fn = inner[-1]
    return f"{exc} @ {f.split('/sim/')[-1] if '/sim/' in f else Path(f).name}:{fn}"


def classify(step: Step, res: Result, before: dict[str, int], after: dict[str, int], ctx: Context | None
             ) -> tuple[str, str]:
    """(outcome, reason) of one step."""
    if res.timed_out:
        return "hang", f"no exit within the time limit ({res.seconds:.0f} s)"
    if "Traceback (most recent call last)" in res.stderr:
        return "traceback", exception_signature(res.stderr)
    allowed = {0, 2} | ({1} if step.allow_exit1 else set())
    if res.rc not in allowed:
        sig = f"signal {-res.rc}" if res.rc is not None and res.rc < 0 else f"exit {res.rc}"
        return "bad-exit", f"{sig}: {_first_line(res.stderr)}"
    new_files = [p for p in after if p not in before]
    changed = [p for p in after if p in before and after[p] != before[p]]
    declared = {str(Path(p)) for p, _ in step.outputs}
    plot_dirs = {str(Path(p).parent if t != "plotdir" else Path(p)) for p, t in step.outputs if t in ("png", "plotdir")}

    def stray(paths):
        bad = []
        for p in paths:
            name = Path(p).name
            if step.sweep_dir and p.startswith(step.sweep_dir.rstrip("/") + "/"):
                if STRAY_RE.search(name):
                    bad.append(p)
                continue
            if res.rc == 0 and (p in declared or (p.endswith(".png") and str(Path(p).parent) in plot_dirs)):
                continue
            bad.append(p)
        return bad

    if res.rc != 0:
        lines = res.stderr.rstrip("\n").split("\n") if res.stderr.strip() else []
        if len(lines) != 1 or not lines[0].startswith("error: "):
            why = "argparse usage error" if res.stderr.startswith("usage:") else (
                "no message" if not lines else f"{len(lines)} lines" if len(lines) != 1 else "no 'error: ' prefix")
            return "unclean-reject", f"{why}: {_first_line(res.stderr)}"
        usage = lines[0].startswith("error: run_sim.py")  # argparse: it names the argument at fault
        if step.names and not usage and not any(n and (n in lines[0] or Path(n).name in lines[0])
                                                for n in step.names):
            return "unclean-reject", f"does not name {step.names[0]!r}: {lines[0][:160]}"
        left = [p for p in declared if Path(p).exists() and not Path(p).is_dir() and str(p) not in before]
        bad = stray(new_files) + left
        if bad:
            return "partial-output", f"left behind after exit {res.rc}: {sorted(set(bad))[:3]}"
        if step.expect == "valid" and res.rc == 2:
            return "rejected-valid", lines[0][:200]
        return ("clean-reject" if res.rc == 2 else "ok"), lines[0][:200]
    # exit 0
    if step.expect != "invalid":  # (an accepted invalid input is reported as such below)
        for p, t in step.outputs:
            problem = file_complete(p, t)
            if problem:
                return "partial-output", problem
    bad = stray(new_files)
    if bad:
        return "partial-output", f"stray files after exit 0: {sorted(bad)[:3]}"
    if step.check == "sweep" and step.sweep_dir:
        problem = check_sweep_dir(Path(step.sweep_dir))
        if problem:
            return "silently-wrong", problem
    result_doc = None
    for p, t in step.outputs:
        if t == "json" and Path(p).is_file():
            with contextlib.suppress(Exception):
                result_doc = json.loads(Path(p).read_text())
            break
    if result_doc is not None and step.command in ("replay", "reprice", "inspect"):
        problem = sanity(result_doc) if step.command != "inspect" else sanity_inspect(result_doc)
        if problem:
            return "silently-wrong", f"impossible result: {problem}"
    if step.expect == "warn":  # exit 0 only with a warning that names what was left out
        if any("warning" in line and any(w in line for w in step.warn_names) for line in res.stderr.splitlines()):
            return "ok", "partial result with a warning"
        return "accepted-invalid", "exit 0 without a warning naming " + ", ".join(step.warn_names)
    if step.expect == "invalid":
        return "accepted-invalid", "exit 0"
    if step.expect in ("same", "unpriced") and ctx is not None and step.baseline in ctx.baselines:
        base = ctx.baselines[step.baseline]
        got = normalise(result_doc) if result_doc is not None else None
        diff = first_difference(base, got) if got is not None else "no result"
        if diff and got is not None and step.baseline in ctx.baseline_argv:
            fresh = ctx.refresh(step.baseline)
            diff = first_difference(fresh, got)
        if diff:
            if step.expect == "unpriced" and any(w in res.stderr and "warning" in res.stderr for w in step.warn_names):
                return "ok", "unpriced with a warning"
            return "silently-wrong", f"result differs from the unmutated input's: {diff[:200]}"
    return "ok", ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return "(empty)"


# ==========================================================================================
# Driver
# ==========================================================================================

@dataclass
class StepRecord:
    case: int
    kind: str
    mclass: str
    target: str
    detail: str
    step: int
    command: str
    argv: list[str]
    expect: str
    rc: int | None
    seconds: float
    outcome: str
    reason: str
    files: list[str]
    stderr_tail: str = ""

    def signature(self) -> str:
        if self.outcome == "traceback":
            return f"traceback | {self.command} | {self.reason}"
        if self.outcome in ("accepted-invalid", "silently-wrong", "rejected-valid"):
            return f"{self.outcome} | {self.command} | {self.kind}/{self.target}"
        if self.outcome == "unclean-reject":
            why = self.reason.split(":")[0]
            return f"unclean-reject | {self.command} | {self.kind}/{self.mclass} | {why}"
        if self.outcome == "partial-output":
            return f"partial-output | {self.command} | {self.kind}/{self.target}"
        return f"{self.outcome} | {self.command} | {self.kind}/{self.target}"


def shell_line(argv: list[str]) -> str:
    rel = os.path.relpath(PY, REPO) if PY.startswith(str(REPO)) else PY
    return f"cd {shlex.quote(str(REPO))} && {shlex.quote(rel)} run_sim.py " + " ".join(shlex.quote(a) for a in argv)


def run_fuzz(cases: int, seed: int, timeout: float, jobs: int, kinds: list[str], out: Path, runner_mode: str,
             mem_mb: int = 4096, only_case: int | None = None, keep_all: bool = False, confirm: bool = True,
             quiet: bool = False, max_seconds: float | None = None) -> dict:
    t0 = time.monotonic()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if only_case is None and (out / "cases").exists():
        shutil.rmtree(out / "cases")
    runner = Runner(runner_mode, jobs, timeout, mem_mb)
    runner.warm(out / "warm")
    ctx = Context(out, runner)
    ctx.prepare(kinds)
    if not quiet:
        print(f"fuzz: prepared baselines in {time.monotonic() - t0:.1f} s (runner {runner.mode}, jobs {jobs})",
              file=sys.stderr)
    ids = [only_case] if only_case is not None else list(range(cases))
    pending = list(ids)
    records: list[StepRecord] = []
    gen_errors: list[str] = []
    running: dict[int, tuple[Case, int, dict]] = {}  # key -> (case, step index, snapshot)
    last_report = time.monotonic()

    def start_step(case: Case, idx: int) -> None:
        step = case.steps[idx]
        before = snapshot(case.dir)
        key = runner.launch(step.argv, case.dir / f"step{idx}", timeout * step.timeout_mul)
        running[key] = (case, idx, before)

    finished_cases: list[Case] = []
    while pending or running:
        if max_seconds and pending and time.monotonic() - t0 > max_seconds:
            pending.clear()  # the time budget is spent: finish the running cases and report
        while pending and len(running) < jobs:
            i = pending.pop(0)
            try:
                case = make_case(seed, i, kinds, ctx, out)
            except Exception as exc:  # noqa: BLE001 - a harness bug, not a product failure
                gen_errors.append(f"case {i}: {type(exc).__name__}: {exc}")
                continue
            start_step(case, 0)
        for key, res in runner.poll():
            case, idx, before = running.pop(key)
            step = case.steps[idx]
            after = snapshot(case.dir)
            outcome, reason = classify(step, res, before, after, ctx)
            records.append(StepRecord(case.id, case.kind, case.mclass, case.target, case.detail, idx, step.command,
                                      step.argv, step.expect, res.rc, round(res.seconds, 3), outcome, reason,
                                      case.files, res.stderr[-1500:] if outcome in FAILURES else ""))
            if idx + 1 < len(case.steps):
                start_step(case, idx + 1)
            else:
                finished_cases.append(case)
                failed = any(r.outcome in FAILURES for r in records if r.case == case.id)
                if not failed and not keep_all and only_case is None:
                    shutil.rmtree(case.dir, ignore_errors=True)
        if not quiet and time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            nf = sum(r.outcome in FAILURES for r in records)
            print(f"fuzz: {len(finished_cases)}/{len(ids)} cases, {len(records)} steps, {nf} failing steps, "
                  f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
        time.sleep(0.005)

    summary = summarise(records, gen_errors, seed, len(finished_cases), time.monotonic() - t0, runner.mode, out, kinds)
    summary["notes"] = ctx.notes + [f"base traces: {', '.join(sorted(ctx.traces))}"]
    if confirm and runner.mode == "fork":
        confirm_reproducers(summary, out, timeout)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out / "steps.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps(r.__dict__) + "\n")
    return summary


def summarise(records: list[StepRecord], gen_errors: list[str], seed: int, n_cases: int, seconds: float,
              mode: str, out: Path, kinds: list[str] | None = None) -> dict:
    # the flags that select a case's kind (the kind is drawn from the case's own generator)
    run_flags = f"--kinds {','.join(kinds or KINDS)}"
    if KIND_WEIGHTS != DEFAULT_KIND_WEIGHTS:
        run_flags += " --weights " + ",".join(f"{k}={v:g}" for k, v in KIND_WEIGHTS.items())
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_class: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        by_kind[r.kind][r.outcome] += 1
        by_class[f"{r.kind}/{r.mclass}"][r.outcome] += 1
    sigs: dict[str, dict] = {}
    for r in records:
        if r.outcome not in FAILURES:
            continue
        s = r.signature()
        if s not in sigs:
            sigs[s] = {"signature": s, "outcome": r.outcome, "count": 0, "cases": [], "case": r.case,
                       "command": shell_line(r.argv), "argv": r.argv, "detail": r.detail, "reason": r.reason,
                       "files": r.files, "stderr_tail": r.stderr_tail, "expect": r.expect, "rc": r.rc,
                       "regenerate": f"benchmarks/fuzz.py --seed {seed} --case {r.case} {run_flags} --keep-all"}
        sigs[s]["count"] += 1
        if len(sigs[s]["cases"]) < 10:
            sigs[s]["cases"].append(r.case)
    failures = Counter(r.outcome for r in records if r.outcome in FAILURES)
    return {"seed": seed, "cases": n_cases, "steps": len(records), "seconds": round(seconds, 1), "runner": mode,
            "out": str(out), "outcomes": dict(Counter(r.outcome for r in records)),
            "failures": {k: failures.get(k, 0) for k in FAILURES},
            "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
            "by_class": {k: dict(v) for k, v in sorted(by_class.items())},
            "signatures": sorted(sigs.values(), key=lambda s: (FAILURES.index(s["outcome"]), -s["count"])),
            "generator_errors": gen_errors}


def confirm_reproducers(summary: dict, out: Path, timeout: float) -> None:
    """Re-run each failure signature's first reproducer as a real subprocess and record
    whether it ends the same way (the fork runner is a faster stand-in, not the product)."""
    runner = Runner("subprocess", 1, timeout, 4096)
    for s in summary["signatures"]:
        res = runner.run_one(s["argv"], out / "confirm" / f"c{s['case']}", timeout * 3)
        tb = "Traceback (most recent call last)" in res.stderr
        clean = res.rc == 2 and res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
        s["confirmed_rc"] = None if res.timed_out else res.rc
        s["confirmed"] = {
            "hang": res.timed_out, "traceback": tb, "bad-exit": not tb and res.rc == s["rc"],
            "unclean-reject": res.rc == 2 and not tb and (not clean or "does not name" in s["reason"]),
        }.get(s["outcome"], not tb and res.rc == s["rc"])


def format_summary(summary: dict) -> str:
    lines = []
    cols = list(OUTCOMES)
    w = max([len(k) for k in summary["by_class"]] + [10])

    def table(title, rows):
        lines.append(f"\n{title}")
        lines.append(f"{'':{w}} " + " ".join(f"{c:>8.8}" for c in cols) + "    total")
        tot = Counter()
        for name, counts in rows.items():
            tot.update(counts)
            lines.append(f"{name:{w}} " + " ".join(f"{counts.get(c, 0) or '.':>8}" for c in cols)
                         + f" {sum(counts.values()):8d}")
        lines.append(f"{'total':{w}} " + " ".join(f"{tot.get(c, 0) or '.':>8}" for c in cols) + f" {sum(tot.values()):8d}")

    lines.append(f"fuzz: seed {summary['seed']}, {summary['cases']} cases, {summary['steps']} CLI runs, "
                 f"{summary['seconds']:.0f} s, runner {summary['runner']}; outcome columns: "
                 + ", ".join(f"{c[:8]}={c}" for c in cols if len(c) > 8))
    table("outcomes per kind (CLI runs)", summary["by_kind"])
    table("outcomes per mutation class", summary["by_class"])
    sigs = summary["signatures"]
    lines.append(f"\n{len(sigs)} distinct failure signatures "
                 f"({', '.join(f'{k}: {v}' for k, v in summary['failures'].items() if v) or 'none'})")
    for s in sigs:
        conf = "" if "confirmed" not in s else (" [reproduced by a plain subprocess]" if s["confirmed"] else " [NOT reproduced by a plain subprocess]")
        lines.append(f"\n* {s['signature']}  x{s['count']}{conf}")
        lines.append(f"    case {s['case']}: {s['detail']}  (expected: {s['expect']})")
        lines.append(f"    {s['reason'][:300]}")
        lines.append(f"    $ {s['command'][:600]}")
    for note in summary.get("notes", []):
        lines.append(f"\nnote: {note}")
    if summary["generator_errors"]:
        lines.append(f"\nharness: {len(summary['generator_errors'])} cases could not be generated: "
                     f"{summary['generator_errors'][:3]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per CLI run (sweeps get 2-3x)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--weights", default="", help="override kind weights, e.g. sweeps=2,traces=40")
    ap.add_argument("--out", default=str(REPO / "out" / "fuzz"))
    ap.add_argument("--runner", choices=("subprocess", "fork"), default="subprocess")
    ap.add_argument("--mem-mb", type=int, default=4096, help="address-space limit per CLI run (0: none)")
    ap.add_argument("--case", type=int, default=None, help="regenerate and run only this case id")
    ap.add_argument("--open-timeout", type=float, default=None,
                    help="SIM_TRACE_OPEN_TIMEOUT for the CLI runs (the reader's limit on HDF5 metadata reads; "
                         "keep it below --timeout)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop starting new cases after this many seconds and report those run")
    ap.add_argument("--keep-all", action="store_true", help="keep every case directory, not only failing ones")
    ap.add_argument("--no-confirm", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        ap.error(f"unknown kinds {unknown}; known: {','.join(KINDS)}")
    for item in filter(None, args.weights.split(",")):
        k, _, v = item.partition("=")
        if k not in KIND_WEIGHTS:
            ap.error(f"--weights: unknown kind {k!r}")
        KIND_WEIGHTS[k] = float(v)
    if args.open_timeout is not None:
        os.environ["SIM_TRACE_OPEN_TIMEOUT"] = str(args.open_timeout)
    summary = run_fuzz(args.cases, args.seed, args.timeout, args.jobs, kinds, Path(args.out), args.runner,
                       args.mem_mb, args.case, args.keep_all, not args.no_confirm, args.quiet, args.max_seconds)
    print(format_summary(summary))
    return 1 if any(summary["failures"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
