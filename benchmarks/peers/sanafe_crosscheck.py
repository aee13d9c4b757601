#!/usr/bin/env python3
"""SANA-FE cross-check: a trace replayed on our neuromorphic model (Loihi energy table, the
spec's own mapping) and on SANA-FE's Loihi model (SANA-FE 2.2.9, in its own Python
environment, which this script only runs as a subprocess: SANA-FE is GPL-3 and ``sim`` never
imports it), with SANA-FE driven to the trace's spike trains on the same core placement; per
layer and per category side by side with relative differences (docs/peers.md, "SANA-FE").

    python benchmarks/peers/sanafe_crosscheck.py --sanafe-python /path/venv/bin/python \
        [--trace traces/digits_snn_T6.h5] [--samples 1] --out DIR

How SANA-FE's network is built from the trace:

- one neuron group per compute layer, one SANA-FE neuron per trace neuron, each pinned to the
  core our mapping policy (sim.mapping.neuromorphic, the spec's partition and placement) puts
  it on: a W x H mesh of tiles with one core each, SANA-FE's Loihi file otherwise unchanged
  (its tile id t sits at x = t // H, y = t % H);
- explicit synapse lists: a padded convolution only its in-bounds taps, an average pool its
  windows, a linear layer every pair; the synapse unit by kind (``--synapse-kinds loihi``:
  conv and pool layers ``loihi_conv_synapse``, linear layers ``loihi_dense_synapse``;
  ``uniform``: all ``loihi_conv_synapse``, one price as ours);
- every neuron a ``leaky_integrate_fire`` soma (``loihi_lif``) forced to the trace's spike
  train (the trace is a window-constant conversion, not a causal run, so its spikes cannot be
  reproduced from the weights step by step): threshold 1, hard reset, leak_decay 0, zero
  weights (``--weights zero``, default: SANA-FE looks up, times and prices a zero-weight
  synapse like any other) and before each step a bias of 2 where the trace fires and 0 where
  it does not (``--weights trace``: the trace's weights, bias +-1e6), with ``force_update``
  in the layer's window, so every neuron is updated every step of its window (Loihi updates
  every compartment). SANA-FE's spike trace is then checked against the trace, neuron by
  neuron and step by step. The first layer has no input synapses (Loihi's direct input is a
  per-neuron bias); the readout never fires.
- ``--schedule aligned`` (default): every layer plays its trace step t at SANA-FE step t (T
  steps; SANA-FE processes a spike's synapses in the step it is sent, so every count falls in
  the T steps). ``pipelined``: a layer at depth j of our pipeline plays step t at step t + j
  (T + L - 1 steps, as our timing model): each neuron is updated only in its layer's window,
  but SANA-FE accesses every neuron every step. Ours runs the same schedule: the script sets
  ``mapping.schedule`` to it (a ``--set mapping.schedule=...`` of yours comes after and wins);
  the spec's other timing fields are SANA-FE's Loihi values already (docs/architectures/neuromorphic.md, "Time").

The figures per layer: synaptic ops (ours: weight reads, i.e. synaptic events and layer-1
MACs; SANA-FE: synapse look-ups), neuron updates, spikes, packets, east-west and north-south
hops, energy by category (synapse, dendrite, soma, network, dram: ours by action, SANA-FE per
core from its per-unit logs, the network per packet from its message trace), and latency per
sample (ours: the report's cycles at the spec's clock; SANA-FE: its simulated time). DIR
receives crosscheck.json, crosscheck.csv, the SANA-FE inputs and results (sanafe/) and our
report (ours/). The table goes to stdout, progress to stderr.

Exit status: 0 once both ran (a measurement: no figure fails it); 2 for bad input or a tool
that failed (one line). Installs nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sim.arch.energy import load_energy_table  # noqa: E402
from sim.arch.spec import load_arch_spec  # noqa: E402
from sim.errors import ParameterError, SimInputError  # noqa: E402
from sim.mapping.neuromorphic import build as build_mapping  # noqa: E402
from sim.report.pricing import price  # noqa: E402
from sim.trace import open_trace  # noqa: E402
from sim.workload import Workload  # noqa: E402

BIG = 1.0e6
CATEGORIES = ("synapse", "dendrite", "soma", "network", "dram")
#: Our actions by SANA-FE energy category (the Loihi table prices the per-synapse membrane
#: read-modify-write and core.add at 0: they sit inside the synaptic op).
ACTION_CATEGORY = {
    "synapse_memory": "synapse", "core.mac": "synapse", "neuron_memory.current_read": "synapse",
    "neuron_memory.current_write": "synapse", "neuron_memory.membrane_read": "dendrite",
    "neuron_memory.membrane_write": "dendrite", "core.add": "dendrite",
    "neuron_memory.state_read": "soma", "neuron_memory.state_write": "soma", "core.compare": "soma",
    "core.fire": "soma", "core.leak": "soma", "noc": "network", "dram": "dram"}


def log(msg: str) -> None:
    print(f"[sanafe-crosscheck] {msg}", file=sys.stderr, flush=True)


def category(action: str) -> str:
    return ACTION_CATEGORY.get(action, ACTION_CATEGORY.get(action.split(".", 1)[0], "other"))


# --------------------------------------------------------------------------------------------
# The SANA-FE side: a worker run by SANA-FE's interpreter (no numpy there; JSON in and out).

WORKER = r'''
import json, sys, time
t0 = time.time()
import sanafe

def log(m):
    print("[sanafe-worker] " + m, file=sys.stderr, flush=True)

cfg = json.load(open(sys.argv[1]))
FIRE, REST = cfg["fire_bias"], cfg["rest_bias"]
arch = sanafe.load_arch(cfg["arch"])
cores = arch.cores()
net = sanafe.Network()
groups = []
for L in cfg["layers"]:
    g = net.create_neuron_group(L["name"], L["n"], model_attributes={
        "threshold": 1.0, "reset_mode": "hard", "reset": 0.0, "leak_decay": 0.0, "bias": 0.0},
        soma_hw_name="loihi_lif", default_synapse_hw_name=L["synapse_hw"], log_spikes=True)
    groups.append(g)
for E in cfg["edges"]:
    src, dst = groups[E["src"]], groups[E["dst"]]
    src.connect_neurons_sparse(dst, {"weight": E["w"]}, list(zip(E["pre"], E["post"])))
for L, g in zip(cfg["layers"], groups):
    for i, tile in enumerate(L["tile"]):
        g[i].map_to_core(cores[tile])
chip = sanafe.SpikingChip(arch)
chip.load(net)
mapped = chip.mapped_neuron_groups
mg = [mapped[L["name"]] for L in cfg["layers"]]
t_build = time.time() - t0
log(f"network built and loaded in {t_build:.1f} s")
tile_layer = {}
for k, L in enumerate(cfg["layers"]):
    for tile in set(L["tile"]):
        tile_layer[tile] = k
S = cfg["steps"]
out = {"build_s": t_build, "samples": []}
for si, sample in enumerate(cfg["samples"]):
    ts = time.time()
    chip.reset()
    cur = [[None] * L["n"] for L in cfg["layers"]]
    steps = []
    for s in range(S):
        sets = 0
        for k, L in enumerate(cfg["layers"]):
            t = s - L["offset"]
            window = 0 <= t < cfg["T"]
            fire = set(sample["spikes"][k][t]) if window else ()
            c = cur[k]
            for i in range(L["n"]):
                want = ((FIRE if i in fire else REST), True) if window else (0.0, False)
                if c[i] != want:
                    mg[k][i].set_attributes(model_attributes={"bias": want[0], "force_update": want[1]})
                    c[i] = want
                    sets += 1
        r = chip.sim(1, spike_trace=True, perf_trace=True, message_trace=True)
        fired = {}
        for a in r["spike_trace"][0]:
            fired.setdefault(a.group_name, []).append(a.neuron_offset)
        msgs = []
        tiles = {}   # tile: [last send, last processed, messages in, sum of processing delays]
        for m in r["message_trace"][0]:
            a = tiles.setdefault(m["src_tile_id"], [0.0, 0.0, 0, 0.0])
            a[0] = max(a[0], m["send_timestamp"])
            if m["placeholder"]:
                continue
            b = tiles.setdefault(m["dest_tile_id"], [0.0, 0.0, 0, 0.0])
            b[1] = max(b[1], m["processed_timestamp"])
            b[2] += 1
            b[3] += m["processing_delay"]
            msgs.append([m["src_tile_id"], m["dest_tile_id"], m["src_x"], m["src_y"], m["dest_x"],
                         m["dest_y"], m["hops"], m["spikes"]])
        pt = r["perf_trace"]
        units = {}
        for key, v in pt.items():
            if key.count(".") >= 3 and (key.endswith(".energy") or key.endswith(".latency")):
                if v[0]:
                    units[key] = v[0]
        steps.append({"energy": r["energy"], "sim_time": r["sim_time"], "spikes": r["spikes"],
                      "updated": r["neurons_updated"], "fired": r["neurons_fired"],
                      "packets_sent": r["packets_sent"], "hops": pt["hops"][0], "fired_ids": fired,
                      "messages": msgs, "units": units, "tiles": tiles, "attribute_sets": sets})
    out["samples"].append({"index": sample["index"], "steps": steps, "wall_s": time.time() - ts})
    log(f"sample {si + 1}/{len(cfg['samples'])}: {S} steps in {time.time() - ts:.1f} s")
out["wall_s"] = time.time() - t0
json.dump(out, open(sys.argv[2], "w"))
'''


def sanafe_examples_dir(python: str) -> Path:
    code = "import os, sanafe; print(os.path.join(os.path.dirname(sanafe.__file__), 'examples'))"
    try:
        p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise ParameterError(python, "--sanafe-python", f"cannot run: {exc}") from None
    if p.returncode:
        raise ParameterError(python, "--sanafe-python",
                             f"cannot import sanafe ({p.stderr.strip().splitlines()[-1:]}): make the environment "
                             f"with python3 -m venv DIR && DIR/bin/pip install sanafe==2.2.9")
    return Path(p.stdout.strip())


def sanafe_arch(loihi_yaml: Path, width: int, height: int, dest: Path) -> dict:
    """SANA-FE's Loihi file on a width x height mesh of one-core tiles (its 8x4 tiles of four
    cores made our W x H routers of one core), its input somas dropped (unused), every unit's
    energy and latency logged per step; energies and latencies unchanged. Returns the units'
    attributes for the report."""
    doc = yaml.safe_load(loihi_yaml.read_text())
    a = doc["architecture"]
    a["attributes"]["width"], a["attributes"]["height"] = width, height
    tile = a["tile"][0]
    tile["name"] = f"loihi_tile[0..{width * height - 1}]"
    core = tile["core"][0]
    core["name"] = "loihi_core[0..0]"
    core["soma"] = [s for s in core["soma"] if s["name"] == "loihi_lif"]
    units = {}
    for kind in ("axon_in", "synapse", "dendrite", "soma", "axon_out"):
        for u in core[kind]:
            u["attributes"]["log_energy"] = True
            u["attributes"]["log_latency"] = True
            units[u["name"]] = {k: v for k, v in u["attributes"].items() if k.startswith(("energy", "latency"))}
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return {"units": units, "tile": {k: v for k, v in tile["attributes"].items()},
            "sync": {k: a["attributes"].get(k) for k in ("sync_model", "latency_sync")}}


# --------------------------------------------------------------------------------------------
# The network from the trace.

def conv_edges(layer, w: np.ndarray, scale: float):
    """Synapses of a padded conv2d (groups 1): every in-bounds tap; C-order neuron indices."""
    cin, ih, iw = layer.input_shape
    cout, oh, ow = layer.output_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding
    dh, dw = layer.dilation or (1, 1)
    if layer.groups != 1:
        raise ParameterError(None, layer.name, "grouped convolutions are not built (groups != 1)")
    pre, post, wt = [], [], []
    co, ci, oy, ox = np.meshgrid(np.arange(cout), np.arange(cin), np.arange(oh), np.arange(ow), indexing="ij")
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
            ok = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
            pre.append(((ci * ih + iy) * iw + ix)[ok])
            post.append(((co * oh + oy) * ow + ox)[ok])
            wt.append((w[co, ci, ky, kx] * scale)[ok])
    return np.concatenate(pre), np.concatenate(post), np.concatenate(wt)


def pool_edges(layer):
    c, ih, iw = layer.input_shape
    _, oh, ow = layer.output_shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ph, pw = layer.padding or (0, 0)
    pre, post = [], []
    ch, oy, ox = np.meshgrid(np.arange(c), np.arange(oh), np.arange(ow), indexing="ij")
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
            ok = (iy >= 0) & (iy < ih) & (ix >= 0) & (ix < iw)
            pre.append(((ch * ih + iy) * iw + ix)[ok])
            post.append(((ch * oh + oy) * ow + ox)[ok])
    pre, post = np.concatenate(pre), np.concatenate(post)
    return pre, post, np.full(len(pre), 1.0 / (kh * kw))


def linear_edges(layer, w: np.ndarray, scale: float):
    o, i = w.shape
    post, pre = np.meshgrid(np.arange(o), np.arange(i), indexing="ij")
    return pre.ravel(), post.ravel(), (w * scale).ravel()


def build_network(args, tr, wl, spec) -> dict:
    mapping = build_mapping(spec, wl.layers, wl.sources)
    if mapping.n_segments != 1:
        raise ParameterError(args.trace, None, f"the model needs {mapping.n_segments} chip configurations; "
                             f"the cross-check builds one resident configuration")
    mesh = mapping.mesh
    layers, edges, depth = [], [], {}
    for p in mapping.parts:
        depth[p.layer_index] = p.position
    max_depth = max(depth.values())
    for i, layer in enumerate(wl.layers):
        if layer.kind not in ("conv2d", "linear", "avgpool") or len(wl.sources[i]) != 1:
            raise ParameterError(args.trace, layer.name, f"layer kind {layer.kind!r} (or several sources) is not "
                                 f"built by this cross-check: conv2d, avgpool and linear chains only")
        if layer.output not in ("spikes", "potential"):
            raise ParameterError(args.trace, layer.name, f"output {layer.output!r} is not built")
        lg = mapping.groups[i]
        (part,) = mapping.layer_parts(i)
        node = part.group_node[lg.gon]                       # our node of every neuron
        x, y = mesh.xy(node)
        tile = (x * mesh.height + y).astype(int)             # SANA-FE's tile at router (x, y)
        hw = "loihi_conv_synapse"
        if layer.kind == "linear" and args.synapse_kinds == "loihi":
            hw = "loihi_dense_synapse"
        offset = depth[i] if args.schedule == "pipelined" else 0
        layers.append({"name": layer.name, "kind": layer.kind, "n": int(layer.n_neurons), "tile": tile.tolist(),
                       "synapse_hw": hw, "offset": offset, "depth": depth[i], "spiking": layer.output == "spikes",
                       "nodes": sorted({int(n) for n in node})})
        src = wl.sources[i][0]
        if src is None:
            continue                                          # layer 1: direct input as a bias
        if layer.kind == "conv2d":
            w, scale = tr.weights(layer.name)
            pre, post, wt = conv_edges(layer, w, scale)
        elif layer.kind == "avgpool":
            pre, post, wt = pool_edges(layer)
        else:
            w, scale = tr.weights(layer.name)
            pre, post, wt = linear_edges(layer, w, scale)
        if args.weights == "zero":
            wt = np.zeros_like(wt)
        edges.append({"src": src, "dst": i, "pre": pre.tolist(), "post": post.tolist(),
                      "w": [float(v) for v in wt]})
    steps = tr.T + (max_depth if args.schedule == "pipelined" else 0)
    samples = []
    for s in range(args.samples):
        per_layer = []
        for layer in wl.layers:
            if layer.output == "spikes":
                sp = tr.spikes(layer.name, s).reshape(tr.T, -1)
                per_layer.append([np.flatnonzero(sp[t]).tolist() for t in range(tr.T)])
            else:
                per_layer.append([[] for _ in range(tr.T)])
        samples.append({"index": s, "spikes": per_layer})
    fire, rest = (2.0, 0.0) if args.weights == "zero" else (BIG, -BIG)
    return {"layers": layers, "edges": edges, "steps": steps, "T": tr.T, "samples": samples,
            "fire_bias": fire, "rest_bias": rest,
            "mesh": [mesh.width, mesh.height], "io_node": int(mapping.io_node)}


# --------------------------------------------------------------------------------------------
# Runs.

def ours_sets(args) -> list[str]:
    """Our spec overrides: SANA-FE's schedule, then the user's ``--set`` (which win)."""
    return [f"mapping.schedule={args.schedule}", *(args.set or [])]


def run_ours(args, out: Path) -> dict:
    cmd = [sys.executable, str(REPO / "run_sim.py"), "replay", str(args.trace), "--arch", args.arch,
           "--energy", args.energy, "--mode", "snn", "--map", "spec", "--samples", str(args.samples),
           "--json", str(out / "report.json"), "--quiet"]
    for s in ours_sets(args):
        cmd += ["--set", s]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.time() - t
    if p.returncode:
        raise ParameterError(None, "run_sim.py replay", (p.stderr.strip().splitlines() or ["failed"])[-1])
    return {"report": json.loads((out / "report.json").read_text()), "wall_s": wall, "cmd": cmd}


def run_sanafe(args, cfg: dict, out: Path) -> dict:
    (out / "worker.py").write_text(WORKER)
    (out / "network.json").write_text(json.dumps(cfg))
    cmd = [args.sanafe_python, str(out / "worker.py"), str(out / "network.json"), str(out / "result.json")]
    t = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []
    for line in p.stderr:
        line = line.rstrip()
        err_lines.append(line)
        if line.startswith("[sanafe-worker]"):
            log(line[len("[sanafe-worker] "):])
    stdout = p.stdout.read()
    p.wait()
    wall = time.time() - t
    (out / "stdout.txt").write_text(stdout)
    (out / "stderr.txt").write_text("\n".join(err_lines) + "\n")
    if p.returncode:
        tail = [l for l in err_lines if l.strip()][-1:] or ["failed"]
        raise ParameterError(args.sanafe_python, "SANA-FE", f"exit {p.returncode}: {tail[0]}")
    res = json.loads((out / "result.json").read_text())
    res["wall_s_outer"] = wall
    return res


# --------------------------------------------------------------------------------------------
# Figures.

def ours_figures(report: dict, table, n_samples: int, clock_mhz: float) -> dict:
    comps = report["arch"]["components"]
    layers = {}
    for L in report["layers"]:
        c = L["counts"]
        e = price(c, L["bits"], comps, table)
        cat = {k: 0.0 for k in CATEGORIES}
        for k, v in e.items():
            cat[category(k)] = cat.get(category(k), 0.0) + v
        layers[L["name"]] = {
            # a synaptic op reads one weight of its synapse kind (conv, dense or sparse)
            "syn_ops": sum(c.get(f"synapse_memory.{a}", 0)
                           for a in ("weight_read", "dense_weight_read", "sparse_weight_read")) / n_samples,
            "updates": max(c.get("core.compare", 0), c.get("neuron_memory.state_read", 0)) / n_samples,
            "spikes": c.get("core.fire", 0) / n_samples,
            "packets": c.get("noc.packet", 0) / n_samples,
            "hops_ew": c.get("noc.flit_hop_ew", 0) / n_samples,
            "hops_ns": c.get("noc.flit_hop_ns", 0) / n_samples,
            **{f"E_{k}": v / n_samples for k, v in cat.items()},
            "E_total": sum(e.values()) / n_samples,
            "latency_us": L["cycles"] / clock_mhz / n_samples,
        }
    return {"layers": layers, "latency_us": report["per_sample"]["cycles"] / clock_mhz,
            "energy_pj": report["per_sample"]["energy_pj"]}


def sanafe_figures(res: dict, cfg: dict, arch_info: dict) -> dict:
    names = [L["name"] for L in cfg["layers"]]
    tile_layer = {t: k for k, L in enumerate(cfg["layers"]) for t in set(L["tile"])}
    unit_kind = {}
    for name, attrs in arch_info["units"].items():
        unit_kind[name] = ("synapse" if "synapse" in name else "dendrite" if "dendrite" in name
                           else "soma" if "lif" in name else "network")
    hop_e = arch_info["tile"]
    n = len(res["samples"])
    acc = {name: {k: 0.0 for k in ("syn_ops", "spikes", "packets", "hops_ew", "hops_ns", "E_synapse", "E_dendrite",
                                   "E_soma", "E_network", "E_dram", "finish_us", "recv_us")} for name in names}
    barrier_us = []
    totals = {"energy": {}, "sim_time_us": 0.0, "spikes": 0, "updated": 0, "fired": 0, "packets": 0, "hops": 0}
    mismatch = {name: 0 for name in names}
    checked = {name: 0 for name in names}
    per_step = []
    for smp in res["samples"]:
        si = smp["index"]
        for s, st in enumerate(smp["steps"]):
            for k, v in st["energy"].items():
                totals["energy"][k] = totals["energy"].get(k, 0.0) + v * 1e12
            totals["sim_time_us"] += st["sim_time"] * 1e6
            for k in ("spikes", "updated", "fired", "hops"):
                totals[k] += st[k]
            totals["packets"] += st["packets_sent"]
            for m in st["messages"]:
                st_, dt, sx, sy, dx, dy, hops, spikes = m
                L = acc[names[tile_layer[dt]]]
                ew, ns = abs(dx - sx), abs(dy - sy)
                L["syn_ops"] += spikes
                L["packets"] += 1
                L["hops_ew"] += ew
                L["hops_ns"] += ns
                L["E_network"] += (arch_info["units"]["loihi_out"]["energy_message_out"] + ew * hop_e["energy_east_hop"]
                                   + ns * hop_e["energy_north_hop"]) * 1e12
            for key, v in st["units"].items():
                # per-unit energy per core (SANA-FE 2.2.9's per-unit ".latency" log repeats the
                # energy, so latency comes from the message trace's timestamps instead)
                tile_name, _core, unit, what = key.rsplit(".", 3)
                tile = int(tile_name.split("[")[1].rstrip("]"))
                if what == "energy" and tile in tile_layer:
                    cat = unit_kind.get(unit, "network")
                    if cat != "network":
                        acc[names[tile_layer[tile]]][f"E_{cat}"] += v * 1e12
            finish = {int(t): max(v[0], v[1]) for t, v in st["tiles"].items()}
            recv = {int(t): v[3] for t, v in st["tiles"].items()}
            for k_name in names:
                tiles = [t for t, kk in tile_layer.items() if names[kk] == k_name]
                acc[k_name]["finish_us"] += max((finish.get(t, 0.0) for t in tiles), default=0.0) * 1e6
                acc[k_name]["recv_us"] += max((recv.get(t, 0.0) for t in tiles), default=0.0) * 1e6
            last = max(finish.values(), default=0.0)
            barrier_us.append((st["sim_time"] - last) * 1e6)
            for k, L in enumerate(cfg["layers"]):
                got = sorted(st["fired_ids"].get(L["name"], []))
                acc[L["name"]]["spikes"] += len(got)
                t = s - L["offset"]
                want = sorted(cfg["samples"][si]["spikes"][k][t]) if 0 <= t < cfg["T"] else []
                checked[L["name"]] += L["n"]
                if got != want:
                    mismatch[L["name"]] += len(set(got) ^ set(want))
            per_step.append({"sample": si, "step": s + 1, "sim_time_us": st["sim_time"] * 1e6,
                             "energy_pj": {k: v * 1e12 for k, v in st["energy"].items()},
                             "updated": st["updated"], "fired": st["fired"], "packets": st["packets_sent"],
                             "synapse_events": st["spikes"],
                             "core_finish_us": {f"{names[tile_layer[int(t)]]}@{t}": max(v[0], v[1]) * 1e6
                                                for t, v in st["tiles"].items() if int(t) in tile_layer},
                             "barrier_us": barrier_us[-1]})
    for name in names:
        for k in acc[name]:
            acc[name][k] /= n
        acc[name]["E_total"] = sum(acc[name][f"E_{c}"] for c in CATEGORIES)
    totals = {k: (v / n if not isinstance(v, dict) else {kk: vv / n for kk, vv in v.items()}) for k, v in totals.items()}
    # the soma's updates per layer: access and update energies are known, so updates = (soma
    # energy - N steps access - spikes x spike energy) / update energy
    lif = arch_info["units"]["loihi_lif"]
    steps = cfg["steps"]
    for L in cfg["layers"]:
        a = acc[L["name"]]
        a["updates"] = round((a["E_soma"] * 1e-12 - L["n"] * steps * lif["energy_access_neuron"]
                              - a["spikes"] * lif["energy_spike_out"]) / lif["energy_update_neuron"], 3)
    return {"layers": acc, "totals": totals, "mismatch": mismatch, "checked_neuron_steps": checked,
            "per_step": per_step, "latency_us": totals["sim_time_us"],
            "energy_pj": totals["energy"].get("total", 0.0),
            "barrier_us_per_step": sorted(set(round(b, 4) for b in barrier_us))}


FIGURES = [("syn_ops", "synaptic ops"), ("updates", "neuron updates"), ("spikes", "spikes"), ("packets", "packets"),
           ("hops_ew", "hops E-W"), ("hops_ns", "hops N-S"), ("E_synapse", "E synapse pJ"),
           ("E_dendrite", "E dendrite pJ"), ("E_soma", "E soma pJ"), ("E_network", "E network pJ"),
           ("E_dram", "E dram pJ"), ("E_total", "E total pJ"), ("latency_us", "latency us")]


def rel(a: float, b: float) -> float | None:
    if b == 0:
        return 0.0 if a == 0 else None
    return (a - b) / b


def compare(ours: dict, theirs: dict, names: list[str]) -> list[dict]:
    rows = []
    for name in names + ["total"]:
        for key, label in FIGURES:
            if name == "total":
                if key == "latency_us":
                    a, b = ours["latency_us"], theirs["latency_us"]
                elif key == "E_total":
                    a, b = ours["energy_pj"], theirs["energy_pj"]
                else:
                    a = sum(ours["layers"][n][key] for n in names)
                    b = sum(theirs["layers"][n][key] for n in names)
            else:
                a = ours["layers"][name][key]
                b = theirs["layers"][name]["finish_us" if key == "latency_us" else key]
            comparable = not (key == "latency_us" and name != "total")
            r = rel(a, b) if comparable else None
            rows.append({"layer": name, "figure": label, "ours": a, "sanafe": b, "rel_diff": r,
                         "equal": comparable and abs(a - b) <= 1e-9 * max(1.0, abs(b)), "comparable": comparable})
    return rows


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.4g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.5g}k"
    return f"{v:.6g}"


def text_table(rows: list[dict], names: list[str]) -> str:
    figs = [label for _, label in FIGURES]
    lines = []
    w = max(len(f) for f in figs) + 2
    head = f"{'figure':<{w}}" + "".join(f"{n:>30}" for n in names + ["total"])
    lines.append(head)
    lines.append(" " * w + "".join(f"{'ours / SANA-FE / diff':>30}" for _ in names + ["total"]))
    lines.append("-" * len(head))
    by = {(r["layer"], r["figure"]): r for r in rows}
    for f in figs:
        cells = []
        for n in names + ["total"]:
            r = by[(n, f)]
            d = ("n/c" if not r["comparable"] else "=" if r["equal"] else
                 "n/a" if r["rel_diff"] is None else f"{100 * r['rel_diff']:+.2f}%")
            cells.append(f"{fmt(r['ours']) + ' / ' + fmt(r['sanafe']) + ' / ' + d:>30}")
        lines.append(f"{f:<{w}}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sanafe-python", required=True, metavar="PATH",
                    help="a Python with sanafe 2.2.9 installed (python3 -m venv DIR && DIR/bin/pip install sanafe==2.2.9)")
    ap.add_argument("--trace", default=str(REPO / "traces" / "digits_snn_T6.h5"), help="trace (.h5)")
    ap.add_argument("--samples", type=int, default=1, help="first N samples (default 1)")
    ap.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    ap.add_argument("--arch", default="neuromorphic", help="our arch spec (default neuromorphic)")
    ap.add_argument("--energy", default="loihi", help="our energy table (default loihi)")
    ap.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                    help="override a field of our arch spec (passed to run_sim.py and our mapping)")
    ap.add_argument("--synapse-kinds", choices=("loihi", "uniform"), default="loihi",
                    help="SANA-FE synapse units: loihi (conv/pool: conv synapse, linear: dense synapse; "
                         "default) or uniform (all conv synapse: one price, as ours)")
    ap.add_argument("--schedule", choices=("aligned", "pipelined"), default="aligned",
                    help="aligned: every layer plays trace step t at SANA-FE step t (T steps; default); "
                         "pipelined: a layer at depth j at step t + j (T + L - 1 steps, our timing model)")
    ap.add_argument("--weights", choices=("zero", "trace"), default="zero",
                    help="synapse weights: zero (default; SANA-FE processes and prices a zero-weight synapse "
                         "like any, and the forced spike trains stay exact in every schedule) or trace (the "
                         "trace's weights; the forcing bias is then +-1e6)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except SimInputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2


def run(args) -> int:
    t_all = time.time()
    if not Path(args.sanafe_python).is_file():
        raise ParameterError(args.sanafe_python, "--sanafe-python", "no such file")
    if args.samples < 1:
        raise ParameterError(None, "--samples", "must be >= 1")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ParameterError(str(out), "--out", f"directory {str(out.parent)!r} does not exist")
    for d in (out, out / "sanafe", out / "ours"):
        d.mkdir(exist_ok=True)
    spec = load_arch_spec(args.arch, ours_sets(args))
    table = load_energy_table(args.energy)
    ex = sanafe_examples_dir(args.sanafe_python)
    t = time.time()
    with open_trace(args.trace) as tr:
        if args.samples > tr.n_samples:
            raise ParameterError(args.trace, "--samples", f"the trace holds {tr.n_samples} samples")
        wl = Workload(tr)
        cfg = build_network(args, tr, wl, spec)
    W, H = cfg["mesh"]
    arch_info = sanafe_arch(ex / "loihi.yaml", W, H, out / "sanafe" / "arch.yaml")
    cfg["arch"] = str(out / "sanafe" / "arch.yaml")
    n_syn = sum(len(e["pre"]) for e in cfg["edges"])
    log(f"network from the trace: {sum(L['n'] for L in cfg['layers'])} neurons, {n_syn} synapses, "
        f"{cfg['steps']} steps per sample ({args.schedule}) in {time.time() - t:.1f} s")
    log("ours: run_sim.py replay ...")
    ours_run = run_ours(args, out / "ours")
    log(f"ours: {ours_run['wall_s']:.1f} s")
    log(f"SANA-FE: {args.sanafe_python} ...")
    res = run_sanafe(args, cfg, out / "sanafe")
    log(f"SANA-FE: {res['wall_s_outer']:.1f} s (build {res['build_s']:.1f} s)")
    names = [L["name"] for L in cfg["layers"]]
    ours = ours_figures(ours_run["report"], table, args.samples, spec.clock_mhz)
    theirs = sanafe_figures(res, cfg, arch_info)
    rows = compare(ours, theirs, names)
    spikes_ok = all(v == 0 for v in theirs["mismatch"].values())
    # the per-layer attribution (per-unit logs, message trace) must add up to SANA-FE's totals
    attribution = {c: {"layers": sum(theirs["layers"][n][f"E_{c}"] for n in names),
                       "sanafe_total": theirs["totals"]["energy"].get(c, 0.0)}
                   for c in ("synapse", "dendrite", "soma", "network")}
    for c, v in attribution.items():
        if abs(v["layers"] - v["sanafe_total"]) > 1e-6 * max(1.0, v["sanafe_total"]):
            log(f"warning: SANA-FE {c} energy attributed to layers {v['layers']:.1f} pJ != its total "
                f"{v['sanafe_total']:.1f} pJ")
    summary = {
        "trace": str(args.trace), "samples": args.samples, "schedule": args.schedule,
        "synapse_kinds": args.synapse_kinds, "weights": args.weights, "arch": args.arch, "energy": args.energy, "set": args.set or [],
        "steps_per_sample": cfg["steps"], "mesh": cfg["mesh"],
        "placement": {L["name"]: {"nodes": L["nodes"], "tiles": sorted(set(L["tile"])), "depth": L["depth"],
                                  "synapse_hw": L["synapse_hw"]} for L in cfg["layers"]},
        "synapses": n_syn,
        "spike_check": {"equal": spikes_ok, "mismatched_neuron_steps": theirs["mismatch"],
                        "checked_neuron_steps": theirs["checked_neuron_steps"]},
        "sanafe_arch": arch_info, "sanafe_totals": theirs["totals"], "attribution_check": attribution,
        "sanafe_barrier_us_per_step": theirs["barrier_us_per_step"],
        "ours_per_sample": {"energy_pj": ours["energy_pj"], "latency_us": ours["latency_us"]},
        "ours_schedule": spec.mapping["schedule"],
        "latency_ours_over_sanafe": ours["latency_us"] / theirs["totals"]["sim_time_us"]
        if theirs["totals"]["sim_time_us"] else None,
        "wall_s": {"ours": round(ours_run["wall_s"], 3), "sanafe": round(res["wall_s_outer"], 3),
                   "sanafe_build": round(res["build_s"], 3), "total": None},
        "rows": rows, "sanafe_per_step": theirs["per_step"],
    }
    summary["wall_s"]["total"] = round(time.time() - t_all, 3)
    (out / "crosscheck.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out / "crosscheck.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"per sample ({args.samples} sample(s) of {args.trace}; SANA-FE {args.schedule}, "
          f"{cfg['steps']} steps, synapse kinds {args.synapse_kinds}); per-layer latency: ours the cycles "
          f"attributed to the layer, SANA-FE the time its last core finishes (summed over steps): n/c, not comparable; "
          f"n/a: one side 0")
    print(text_table(rows, names))
    print(f"spike trains: {'equal, neuron by neuron and step by step' if spikes_ok else 'DIFFER'} "
          f"({sum(theirs['checked_neuron_steps'].values())} neuron-steps checked; mismatches "
          f"{theirs['mismatch']})")
    st = theirs["totals"]
    print(f"SANA-FE totals per sample: energy {st['energy']}, neurons updated {st['updated']}, fired {st['fired']}, "
          f"packets {st['packets']}, hops {st['hops']}, synapse events {st['spikes']}, time {st['sim_time_us']:.3f} us")
    la, lb = ours["latency_us"], st["sim_time_us"]
    print(f"latency per sample: ours {la:.3f} us ({spec.mapping['schedule']}), SANA-FE {lb:.3f} us "
          f"({args.schedule}); ours / SANA-FE = {la / lb:.4f} ({(la - lb) / lb:+.2%})")
    print(f"wall: ours {ours_run['wall_s']:.1f} s, SANA-FE {res['wall_s_outer']:.1f} s, total "
          f"{summary['wall_s']['total']:.1f} s; written {out / 'crosscheck.json'}, {out / 'crosscheck.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
