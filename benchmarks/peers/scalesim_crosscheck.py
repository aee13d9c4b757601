#!/usr/bin/env python3
"""SCALE-Sim 3 cross-check: one config and conv topology run through SCALE-Sim (in its own
Python environment, which this script only calls) and through ``run_sim.py import-scalesim`` +
one ``replay --mode ann --map spec`` per segment trace here (one for a topology whose rows
chain); the per-row figures side by side, each row's layer found by name in its segment's
replay (the inserted pools and flattens are not rows and are left out), each difference
explained by a documented rule (docs/peers.md, "SCALE-Sim") and marked PASS or FAIL.

    python benchmarks/peers/scalesim_crosscheck.py --scalesim-python /path/venv/bin/python
        (--case ws_small|os_small|vgg16_ws32 | --config C.cfg --topology T.csv) --out DIR

The figures: MACs, compute cycles, mapping efficiency, compute utilisation, SRAM ifmap reads,
SRAM filter reads, SRAM ofmap writes, DRAM ifmap reads, DRAM filter reads, DRAM ofmap writes.
DIR receives crosscheck.json and crosscheck.csv, SCALE-Sim's inputs and reports (scalesim/)
and our spec, traces and replays (ours/). The table goes to stdout, progress to stderr.

Exit status: 0 when every compared figure agrees under its rule, 1 when one does not, 2 for bad
input or a tool that failed (one line). Installs nothing.
"""

from __future__ import annotations

import argparse
import configparser
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sim.arch.scalesim import read_config, read_topology  # noqa: E402
from sim.errors import ParameterError, SimInputError  # noqa: E402

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def _vgg16_rows() -> list[tuple]:
    """VGG16's 13 convs on CIFAR-10 (3x3, padding 1: SCALE-Sim's inputs are the padded maps,
    34, 18, 10, 6, 4) and its 512 -> 10 classifier as a 1x1 conv; the 2x2 pools between the
    blocks are not rows (SCALE-Sim has no pooling): the import inserts them, one trace."""
    rows, c, i = [], 3, 0
    for block, (hw, k, n) in enumerate([(34, 64, 2), (18, 128, 2), (10, 256, 3), (6, 512, 3), (4, 512, 3)], 1):
        for j in range(1, n + 1):
            rows.append((f"conv{block}_{j}", hw, hw, 3, 3, c, k, 1))
            c, i = k, i + 1
    return rows + [("fc", 1, 1, 1, 1, 512, 10, 1)]


#: Built-in cases: (array rows, cols, ifmap / filter / ofmap kB, dataflow, topology rows).
CASES = {
    # ResNet-like on a 16x8 array: a stem, a 3x3 block, a stride-2 conv, a 1x1 stride-2
    # shortcut on a 32-wide map (SCALE-Sim: 17 outputs where a convolution gives 16, the input
    # extended to 33), a classifier; 16 kB buffers so some inputs fit the live half, some not.
    "ws_small": (16, 8, (16, 16, 16), "ws", [
        ("conv1", 34, 34, 3, 3, 3, 16, 1), ("res1", 34, 34, 3, 3, 16, 16, 1),
        ("down", 33, 33, 3, 3, 16, 32, 2), ("short", 32, 32, 1, 1, 16, 32, 2),
        ("res2", 18, 18, 3, 3, 32, 32, 1), ("fc", 1, 1, 1, 1, 512, 10, 1)]),
    # AlexNet-like (scaled down) on an 8x16 array, strides that divide, with a depthwise row
    # (SCALE-Sim: one layer per channel) and a fully connected layer as a 1x1 conv.
    "os_small": (8, 16, (32, 32, 32), "os", [
        ("conv1", 67, 67, 11, 11, 3, 16, 4), ("conv2", 19, 19, 5, 5, 16, 32, 1),
        ("conv3", 9, 9, 3, 3, 32, 48, 1), ("convDP4", 9, 9, 3, 3, 48, 1, 1),
        ("fc6", 1, 1, 1, 1, 1728, 64, 1)]),
    # VGG16 (CIFAR-10) on SCALE-Sim's configs/scale.cfg array and buffers, weight stationary.
    "vgg16_ws32": (32, 32, (64, 64, 64), "ws", _vgg16_rows()),
}

#: Config keys SCALE-Sim 3.0.0 reads (scale_config.read_conf_file) that the import does not
#: need, with the values of its own configs; added where a config lacks them.
SCALESIM_DEFAULTS = {
    "general": {"run_name": "crosscheck"},
    "architecture_presets": {"IfmapOffset": "0", "FilterOffset": "10000000", "OfmapOffset": "20000000",
                             "Bandwidth": "10", "MemoryBanks": "1", "ReadRequestBuffer": "32",
                             "WriteRequestBuffer": "32"},
    "layout": {"IfmapCustomLayout": "False", "IfmapSRAMBankBandwidth": "10", "IfmapSRAMBankNum": "1",
               "IfmapSRAMBankPort": "2", "FilterCustomLayout": "False", "FilterSRAMBankBandwidth": "10",
               "FilterSRAMBankNum": "1", "FilterSRAMBankPort": "2"},
    "sparsity": {"SparsitySupport": "false", "SparseRep": "ellpack_block", "OptimizedMapping": "false",
                 "BlockSize": "8", "RandomNumberGeneratorSeed": "40"},
    "run_presets": {"InterfaceBandwidth": "CALC", "UseRamulatorTrace": "False"},
}
#: Dense runs only: these are set whatever the config says (a note on stderr when changed).
SCALESIM_FORCED = {("sparsity", "SparsitySupport"): "false", ("layout", "IfmapCustomLayout"): "False",
                   ("layout", "FilterCustomLayout"): "False", ("run_presets", "UseRamulatorTrace"): "False"}

#: Run inside SCALE-Sim's Python: the run, its own per-layer MACs and output sizes, its peak memory.
DRIVER = r"""
import contextlib, io, json, resource, sys, time
from scalesim.scale_sim import scalesim
cfg, topo, layout, top, info = sys.argv[1:6]
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout)
    s.run_scale(top_path=top)
json.dump({"run_name": s.config.get_run_name(), "names": [a[0] for a in s.topo.topo_arrays],
           "hyper": [[int(x) for x in h] for h in s.topo.layers_calculated_hyperparams],
           "seconds": time.perf_counter() - t0,
           "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, open(info, "w"))
"""

FIGURES = ("macs", "compute_cycles", "mapping_efficiency_pct", "compute_util_pct", "sram_ifmap_reads",
           "sram_filter_reads", "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_child(cmd: list[str], stdout_path: Path, timeout: float | None = None) -> tuple[int, float, int, str]:
    """Run ``cmd``: (exit status, wall seconds, peak resident KiB of the child, stderr tail)."""
    t0 = time.perf_counter()
    with open(stdout_path, "w") as out, open(stdout_path.with_suffix(".stderr"), "w") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                p.kill()
                pid, status, usage = os.wait4(p.pid, 0)
                status = -9
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status) if status != -9 else -9
    tail = stdout_path.with_suffix(".stderr").read_text().strip().splitlines()[-3:]
    return p.returncode, time.perf_counter() - t0, usage.ru_maxrss, " | ".join(tail)


# -- inputs ---------------------------------------------------------------------------------------
def write_case(name: str, d: Path) -> tuple[Path, Path]:
    rows, cols, (ikb, fkb, okb), df, layers = CASES[name]
    cfg = (f"[general]\nrun_name = {name}\n\n[architecture_presets]\nArrayHeight: {rows}\nArrayWidth: {cols}\n"
           f"IfmapSramSzkB: {ikb}\nFilterSramSzkB: {fkb}\nOfmapSramSzkB: {okb}\nDataflow: {df}\n\n"
           "[run_presets]\nInterfaceBandwidth: CALC\n")
    (d / f"{name}.cfg").write_text(cfg)
    (d / f"{name}.csv").write_text(HEADER + "".join(", ".join(map(str, r)) + ",\n" for r in layers))
    return d / f"{name}.cfg", d / f"{name}.csv"


def scalesim_inputs(config: Path, topology: Path, d: Path) -> tuple[Path, Path, Path]:
    """The config completed with the keys SCALE-Sim needs, the topology as given, and a
    layout file (one line per row; SCALE-Sim reads it even without a custom layout)."""
    cp = configparser.ConfigParser()
    cp.read_string(config.read_text(), source=str(config))
    for section, keys in SCALESIM_DEFAULTS.items():
        if not cp.has_section(section):
            cp.add_section(section)
        for k, v in keys.items():
            if not cp.has_option(section, k):
                cp.set(section, k, v)
    for (section, k), v in SCALESIM_FORCED.items():
        if cp.get(section, k).strip().lower() != v.lower():
            log(f"note: {config}: {section}.{k} set to {v} for SCALE-Sim (a dense run)")
        cp.set(section, k, v)
    cfg = d / "scalesim.cfg"
    with open(cfg, "w") as fh:
        cp.write(fh)
    layout = d / "layout.csv"
    lines = topology.read_text().splitlines()
    # a layout row repeats the topology row (SCALE-Sim expands a 'DP' row by its 6th field)
    layout.write_text(lines[0] + "\n" + "".join(
        ",".join(f.strip() for f in l.split(",")[:8]) + ",\n" for l in lines[1:] if l.strip()))
    return cfg, topology, layout


# -- the two runs ---------------------------------------------------------------------------------
def run_scalesim(python: str, cfg: Path, topo: Path, layout: Path, d: Path, timeout: float | None) -> dict:
    info = d / "driver.json"
    rc, wall, rss, tail = run_child([python, "-c", DRIVER, str(cfg), str(topo), str(layout), str(d), str(info)],
                                    d / "scalesim.stdout", timeout)
    if rc != 0:
        why = "timed out" if rc == -9 else f"exit {rc}"
        raise ParameterError(python, "--scalesim-python", f"SCALE-Sim failed ({why}): {tail or 'no output'}")
    meta = json.loads(info.read_text())
    rep = d / meta["run_name"]

    def table(name):
        rows = list(csv.reader(io.StringIO((rep / name).read_text())))
        hdr = [h.strip() for h in rows[0]]
        return [dict(zip(hdr, (x.strip() for x in r))) for r in rows[1:] if r]

    return {"compute": table("COMPUTE_REPORT.csv"), "access": table("DETAILED_ACCESS_REPORT.csv"),
            "names": meta["names"], "hyper": meta["hyper"], "wall_s": wall, "run_s": meta["seconds"],
            "peak_rss_mib": rss / 1024}


def run_ours(cfg: Path, topo: Path, d: Path) -> dict:
    """``import-scalesim``, then one replay per segment trace, each its own process: the
    manifest, each segment's replay report, the wall time and the largest peak RSS."""
    py = sys.executable
    t0 = time.perf_counter()
    out = d / "import"
    rc, _, rss, tail = run_child([py, "run_sim.py", "import-scalesim", str(cfg), str(topo), "--out", str(out)],
                                 d / "import.stdout")
    if rc != 0:
        raise ParameterError(str(cfg), "import-scalesim", tail or f"exit {rc}")
    manifest = json.loads((out / "manifest.json").read_text())
    peak, reports = rss, []
    segs = manifest["segments"]
    for i, seg in enumerate(segs):
        log(f"  replay {i + 1}/{len(segs)}: {seg['trace']} ({len(seg['rows'])} rows)")
        stem = Path(seg["trace"]).stem
        js = d / f"{stem}.json"
        rc, _, rss, tail = run_child([py, "run_sim.py", "replay", str(out / seg["trace"]), "--arch",
                                      str(out / manifest["spec"]), "--mode", "ann", "--map", "spec",
                                      "--json", str(js), "--quiet"], d / f"{stem}.stdout")
        if rc != 0:
            raise ParameterError(str(out / seg["trace"]), "replay", tail or f"exit {rc}")
        peak = max(peak, rss)
        reports.append(json.loads(js.read_text()))
    return {"manifest": manifest, "reports": reports, "wall_s": time.perf_counter() - t0, "peak_rss_mib": peak / 1024}


# -- the comparison -------------------------------------------------------------------------------
def covered(size: int, out: int, kernel: int, stride: int) -> int:
    """Positions of an axis of ``size`` that some of ``out`` windows read."""
    return len({o * stride + k for o in range(out) for k in range(kernel)} & set(range(size)))


def live_half(kb: int) -> int:
    """One-byte words of SCALE-Sim's active half of a read buffer of ``kb`` kB: 50 sets of
    floor(bytes / 100) words (memory/read_buffer_estimate_bw.py). A layer whose distinct
    operand addresses are fewer never slides the window, so each is fetched once."""
    return 50 * (kb * 1024 // 100)


def theirs_for(e: dict, ss: dict, start: int) -> tuple[dict, int]:
    """SCALE-Sim's figures of topology row ``e`` (a depthwise row: the sum of its channel
    layers), from report line ``start``; and the next row's first line."""
    n = e["channels"] if e["depthwise"] else 1
    comp, acc, hyp = ss["compute"][start:start + n], ss["access"][start:start + n], ss["hyper"][start:start + n]
    s = lambda rows, key: sum(float(r[key]) for r in rows)  # noqa: E731
    return {"layers": n,
            "macs": sum(h[2] for h in hyp),
            "total_cycles": s(comp, "Total Cycles") - s(comp, "Stall Cycles"),
            "mapping_efficiency_pct": s(comp, "Mapping Efficiency %") / n,
            "compute_util_pct": s(comp, "Compute Util %") / n,
            "sram_ifmap_reads": s(acc, "SRAM IFMAP Reads"), "sram_filter_reads": s(acc, "SRAM Filter Reads"),
            "sram_ofmap_writes": s(acc, "SRAM OFMAP Writes"), "dram_ifmap_reads": s(acc, "DRAM IFMAP Reads"),
            "dram_filter_reads": s(acc, "DRAM Filter Reads"), "dram_ofmap_writes": s(acc, "DRAM OFMAP Writes"),
            }, start + n


def compare_row(e: dict, rep: dict, th: dict, m: dict) -> list[dict]:
    """One cell per figure of row ``e``, whose layer (by name) is in the segment replay
    ``rep``: ours, SCALE-Sim's, what ours should be by the rule, PASS/FAIL (or n/a where no
    rule claims equality)."""
    rows, cols, df = m["rows"], m["cols"], m["dataflow"]
    (layer,) = [x for x in rep["layers"] if x["name"] == e["layer"]]
    c, plan = layer["counts"], rep["extra"]["plan"][layer["name"]]
    n = th["layers"]
    cells = []

    def cell(fig, ours, theirs, expected, rule, exact=True):
        if expected is None:
            status = "n/a"
        elif exact:
            status = "PASS" if ours == expected else "FAIL"
        else:
            status = "PASS" if abs(ours - expected) <= 1e-9 * max(1.0, abs(expected)) else "FAIL"
        cells.append({"layer": e["layer"], "figure": fig, "ours": ours, "scalesim": theirs,
                      "expected": expected, "rule": rule, "status": status})

    cell("macs", c["pe_array.mac"], th["macs"], th["macs"], "equal")
    cell("compute_cycles", plan["compute_cycles"], th["total_cycles"], th["total_cycles"] + n,
         "theirs + 1 (SCALE-Sim prints the last cycle's 0-based index)")
    cell("mapping_efficiency_pct", 100 * plan["mapping_efficiency"], th["mapping_efficiency_pct"],
         th["mapping_efficiency_pct"], "equal", exact=False)
    cell("compute_util_pct", 100 * plan["compute_utilisation"], th["compute_util_pct"], th["compute_util_pct"],
         "equal", exact=False)
    cell("sram_ifmap_reads", c["ifmap_buffer.input_read"], th["sram_ifmap_reads"], th["sram_ifmap_reads"], "equal")
    cell("sram_filter_reads", c["filter_buffer.weight_read"], th["sram_filter_reads"], th["sram_filter_reads"], "equal")
    if df == "os":
        cell("sram_ofmap_writes", c["ofmap_buffer.output_write"], th["sram_ofmap_writes"],
             th["sram_ofmap_writes"] - plan["folds"] * (rows + cols), "theirs - folds x (rows + cols) (OS fold padding)")
    else:
        cell("sram_ofmap_writes", c["ofmap_buffer.output_write"], th["sram_ofmap_writes"], th["sram_ofmap_writes"], "equal")
    # DRAM ifmap (CALC mode): one fetch of each element some window reads, where the distinct
    # elements are fewer than SCALE-Sim's live half; the padded map the array sees is SCALE-Sim's
    # (plus an extension), whether the row reads the network input or a padded earlier layer
    H, W = e["ifmap"]
    R, S = e["filter"]
    E, F = e["ofmap"]
    _, Hx, Wx = e["padded_input"]
    per_layer_c = 1 if e["depthwise"] else e["channels"]
    unique = covered(H, E, R, e["stride"]) * covered(W, F, S, e["stride"])   # per channel, SCALE-Sim's map
    fits = unique * per_layer_c < live_half(m["ifmap_kb"]) and plan["ifmap_passes"] == 1
    ext = e["channels"] * (covered(Hx, E, R, e["stride"]) * covered(Wx, F, S, e["stride"]) - unique)
    rule = "theirs + the extended input's elements" if ext else "equal"
    cell("dram_ifmap_reads", c["dram.input_read"], th["dram_ifmap_reads"],
         th["dram_ifmap_reads"] + ext if fits else None,
         f"{rule} (distinct input elements < the live half)" if fits
         else "not compared: distinct input elements >= the live half (SCALE-Sim re-fetches)")
    # the weights one sweep re-reads: one column fold's (OS), all of them (IS); per SCALE-Sim layer
    w_set = R * S * per_layer_c * (min(e["num_filters"], cols) if df == "os" else e["num_filters"])
    w_fits = plan["filter_passes"] == 1 and w_set < live_half(m["filter_kb"])
    once = df == "ws" or plan["row_folds" if df == "os" else "col_folds"] == 1   # a single sweep
    cell("dram_filter_reads", c["dram.weight_read"], th["dram_filter_reads"],
         th["dram_filter_reads"] if (once or w_fits) else None,
         "equal" if (once or w_fits) else "not compared: the working set does not fit the live half")
    ours = c["dram.output_write"]
    ok = 0 <= th["dram_ofmap_writes"] - ours <= n * (cols - 1)
    cell("dram_ofmap_writes", ours, th["dram_ofmap_writes"], ours if ok else th["dram_ofmap_writes"],
         "theirs - ours in 0..cols - 1 (a partly filled last write line)")
    if m["user_bandwidth"]:   # SCALE-Sim's USER mode runs other buffers (memory/read_buffer.py)
        for x in cells[-3:]:
            x.update(expected=None, status="n/a", rule="not compared: InterfaceBandwidth USER "
                     "(SCALE-Sim's line-based buffers; the rules hold in CALC mode)")
    return cells


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4f}"
    return f"{int(v):,}"


def text_table(cells: list[dict]) -> str:
    head = ("layer", "figure", "ours", "SCALE-Sim", "expected", "status")
    body = [(c["layer"], c["figure"], fmt(c["ours"]), fmt(c["scalesim"]), fmt(c["expected"]), c["status"])
            for c in cells]
    w = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    line = lambda r: "  ".join(x.ljust(w[i]) if i < 2 else x.rjust(w[i]) for i, x in enumerate(r))  # noqa: E731
    return "\n".join([line(head), *map(line, body)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scalesim-python", required=True, metavar="PATH",
                    help="a Python with scalesim 3.0.0 installed (e.g. /opt/scalesim-venv/bin/python)")
    ap.add_argument("--case", choices=sorted(CASES), help="a built-in config and topology")
    ap.add_argument("--config", help="a SCALE-Sim config (.cfg) (with --topology, instead of --case)")
    ap.add_argument("--topology", help="a SCALE-Sim conv topology (.csv)")
    ap.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds SCALE-Sim may run (default no limit)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except SimInputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2


def run(args) -> int:
    if bool(args.case) == bool(args.config or args.topology) or (args.config is None) != (args.topology is None):
        raise ParameterError(None, "--case", "give --case NAME, or --config and --topology")
    if not Path(args.scalesim_python).is_file():
        raise ParameterError(args.scalesim_python, "--scalesim-python", "no such file")
    out = Path(args.out)
    if not args.case:   # bad input: one line before anything is written or run
        cfg, topo = Path(args.config), Path(args.topology)
        read_config(cfg), read_topology(topo)
    if not out.parent.is_dir():
        raise ParameterError(str(out), "--out", f"directory {str(out.parent)!r} does not exist")
    for d in (out, out / "scalesim", out / "ours"):
        d.mkdir(exist_ok=True)
    if args.case:
        cfg, topo = write_case(args.case, out)
    user_bw = read_config(cfg).bandwidth is not None
    ss_cfg, ss_topo, ss_layout = scalesim_inputs(cfg, topo, out / "scalesim")
    log(f"SCALE-Sim: {args.scalesim_python} on {topo.name} ...")
    ss = run_scalesim(args.scalesim_python, ss_cfg, ss_topo, ss_layout, out / "scalesim", args.timeout)
    log(f"SCALE-Sim: {ss['wall_s']:.1f} s, peak {ss['peak_rss_mib']:.0f} MiB; ours: import-scalesim + replay ...")
    ours = run_ours(cfg, topo, out / "ours")
    log(f"ours: {ours['wall_s']:.1f} s, peak {ours['peak_rss_mib']:.0f} MiB")
    m = {**ours["manifest"], "user_bandwidth": user_bw}
    cells, line = [], 0
    for e in m["layers"]:
        th, line = theirs_for(e, ss, line)
        cells += compare_row(e, ours["reports"][e["segment"]], th, m)
    if line != len(ss["compute"]):
        raise ParameterError(str(topo), None, f"SCALE-Sim reported {len(ss['compute'])} layers, the import {line}")
    failed = [c for c in cells if c["status"] == "FAIL"]
    summary = {"case": args.case, "config": str(cfg), "topology": str(topo), "rows": m["rows"], "cols": m["cols"],
               "dataflow": m["dataflow"], "layers": len(m["layers"]),
               "scalesim": {"wall_s": round(ss["wall_s"], 3), "run_s": round(ss["run_s"], 3),
                            "peak_rss_mib": round(ss["peak_rss_mib"], 1)},
               "segments": [{"trace": g["trace"], "rows": g["rows"], "inserted": g["inserted"]}
                            for g in m["segments"]],
               "ours": {"wall_s": round(ours["wall_s"], 3), "processes": 1 + len(m["segments"]),
                        "peak_rss_mib": round(ours["peak_rss_mib"], 1)},
               "compared": sum(c["status"] != "n/a" for c in cells), "not_compared": sum(c["status"] == "n/a" for c in cells),
               "failed": len(failed), "cells": cells}
    (out / "crosscheck.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out / "crosscheck.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cells[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(cells)
    print(text_table(cells))
    nseg = len(m["segments"])
    print(f"{args.case or topo.name}: {m['rows']}x{m['cols']} {m['dataflow']}, {len(m['layers'])} rows in {nseg} "
          f"segment trace{'s' * (nseg != 1)}; {summary['compared']} figures compared, {len(failed)} failed, "
          f"{summary['not_compared']} not compared; SCALE-Sim {ss['wall_s']:.1f} s / {ss['peak_rss_mib']:.0f} MiB, "
          f"ours {ours['wall_s']:.1f} s ({1 + nseg} processes) / {ours['peak_rss_mib']:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
