"""SCALE-Sim 3 inputs read as this simulator's: a config (``.cfg``) becomes a ``systolic_array``
arch spec, a conv topology (``.csv``) a synthetic dense trace of its rows chained into one
network wherever the geometry allows (docs/peers.md, "SCALE-Sim"; ``run_sim.py import-scalesim``).

A topology lists layers with their own, already padded, input sizes and no pooling; a trace is
a graph whose every layer reads an earlier layer's output of exactly its input shape. Row i+1
reads row i's output (K channels, E x F) where :func:`sim.arch.scalesim_chain.link` finds a way: a conv2d with padding
p, after a q x q max-pool of stride q where q > 1 (the array then sees exactly the row's
padded IFMAP), or, for a fully connected row (a 1x1 filter on a 1x1 map of K·E·F / q² channels),
a flatten and a linear layer. Where it cannot, the row starts a new segment: a trace of its
own whose first layer reads the network input (the row's IFMAP as given, padding 0). The
array's ANN counts depend on the geometry only, so the values are arbitrary (one sample,
T = 1, no weights stored); ``replay --arch <spec> --mode ann --map spec`` of a segment gives
its rows' counts under the rows' names (the inserted pools are layers of their own).

SCALE-Sim's output size is ``ceil((H - R + stride) / stride)``; a convolution floors. Where
the two differ the row's input is extended to ``(E - 1)·stride + R`` rows (columns), so the
layer has SCALE-Sim's E output rows and every im2col count equals SCALE-Sim's; its DRAM input
then counts the extension too (the returned warnings say so per row). Such a row always
starts a segment.
"""

from __future__ import annotations

import configparser
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sim.arch.checks import strict_yaml_load
from sim.arch.fields import MAX_BANDWIDTH_BITS_PER_CYCLE, MAX_CAPACITY_BYTES, MAX_WIDTH_BITS, MESH_SIDE, integer
from sim.arch.registry import arch_kind
from sim.arch.spec import parse_arch_spec
from sim.errors import SpecError
from sim.trace.limits import LimitExceeded, check_limits
from sim.arch.scalesim_chain import _UNSAFE, TopologyRow, layer_names, segments
from sim.trace.schema import NETWORK_INPUT

ARCHITECTURE = "systolic_array"
#: SCALE-Sim's topology columns after the layer name, in file order.
TOPOLOGY_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                    "Num Filter", "Strides")
SPEC_FILE, MANIFEST_FILE = "arch.yaml", "manifest.json"
MANIFEST_SCHEMA = "scalesim-import/2"
#: The trace of a topology that chains into one segment; several are ``NNN_<first row>.h5``.
NETWORK_FILE = "network.h5"
KIB = 1024
#: SCALE-Sim's words are one byte.
WORD_BITS = 8
#: The bundled spec's DRAM channel, kept where SCALE-Sim computes its own bandwidth (CALC).
DEFAULT_DRAM_BITS_PER_CYCLE = 64
#: The widest data type of the spec (psum_bits 24): a buffer is at least one such word wide.
MIN_BUFFER_WIDTH_BITS = 32
_INT = re.compile(r"^\+?[0-9]+$")


@dataclass(frozen=True)
class ScaleSimConfig:
    """What of a SCALE-Sim config this simulator models. ``bandwidth``: DRAM words (bytes)
    per cycle in SCALE-Sim's USER bandwidth mode, None in CALC mode (SCALE-Sim sizes the
    interface so nothing stalls)."""

    path: str
    run_name: str
    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    dataflow: str
    bandwidth: int | None


# -- the config --------------------------------------------------------------------------
def _read_text(path: Path, what: str) -> str:
    if path.is_dir():
        raise SpecError(path, None, f"is a directory, expected a SCALE-Sim {what}")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(path, None, f"no such file (expected a SCALE-Sim {what})") from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, None, f"not a text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(path, None, f"cannot read ({exc.strerror or exc})") from None


def _int(text: str, file, where: str) -> int:
    if not _INT.match(text.strip()):
        raise SpecError(file, where, f"expected an integer, got {text.strip()!r}")
    return int(text)


def read_config(path: str | Path) -> ScaleSimConfig:
    """The modelled fields of a SCALE-Sim config (configparser, as SCALE-Sim reads it); the
    layout, sparsity and offsets sections and keys are not needed. SpecError naming the
    file and ``section.Key`` for a missing or bad value."""
    path = Path(path)
    text = _read_text(path, "config (.cfg)")
    cp = configparser.ConfigParser()
    try:
        cp.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise SpecError(path, None, f"not a SCALE-Sim config: {' '.join(str(exc).split())}") from None

    def get(section: str, key: str, default: str | None = None) -> str:
        try:
            return cp.get(section, key)
        except (configparser.NoSectionError, configparser.NoOptionError):
            if default is not None:
                return default
            what = "section" if not cp.has_section(section) else "key"
            raise SpecError(path, f"{section}.{key}", f"missing required {what}") from None
        except configparser.Error as exc:
            raise SpecError(path, f"{section}.{key}", " ".join(str(exc).split())) from None

    arch = "architecture_presets"
    sizes = {}
    for key in ("ArrayHeight", "ArrayWidth"):
        where = f"{arch}.{key}"
        sizes[key] = MESH_SIDE.check(_int(get(arch, key), path, where), where, str(path))
    kb = integer(1, MAX_CAPACITY_BYTES // KIB)
    for key in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB"):
        where = f"{arch}.{key}"
        sizes[key] = kb.check(_int(get(arch, key), path, where), where, str(path))
    dataflow = arch_kind(ARCHITECTURE).mapping["dataflow"].check(get(arch, "Dataflow").strip(),
                                                                 f"{arch}.Dataflow", str(path))
    mode = get("run_presets", "InterfaceBandwidth", "CALC").strip()
    if mode not in ("CALC", "USER"):
        raise SpecError(path, "run_presets.InterfaceBandwidth", f"must be CALC or USER, got {mode!r}")
    bandwidth = None
    if mode == "USER":  # a list: SCALE-Sim drains the ofmap at its first value (single_layer_sim.py)
        where = f"{arch}.Bandwidth"
        first = get(arch, "Bandwidth").split(",")[0]
        bandwidth = integer(1, MAX_BANDWIDTH_BITS_PER_CYCLE // WORD_BITS).check(_int(first, path, where), where,
                                                                                str(path))
    run_name = get("general", "run_name", path.stem).strip() or path.stem
    return ScaleSimConfig(str(path), run_name, sizes["ArrayHeight"], sizes["ArrayWidth"],
                          sizes["IfmapSramSzkB"], sizes["FilterSramSzkB"], sizes["OfmapSramSzkB"],
                          dataflow, bandwidth)


# -- the topology ------------------------------------------------------------------------
def read_topology(path: str | Path) -> list[TopologyRow]:
    """The rows of a SCALE-Sim conv topology: a header line, then ``name, IFMAP Height,
    IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,`` per layer (the
    trailing comma SCALE-Sim needs is optional here; a ninth, sparsity column is ignored).
    SpecError naming the file and ``line N.Column``."""
    path = Path(path)
    lines = _read_text(path, "topology (.csv)").splitlines()
    rows: list[TopologyRow] = []
    for n, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        fields = [f.strip() for f in raw.split(",")]
        if fields and fields[-1] == "":
            fields.pop()
        if not 8 <= len(fields) <= 9:
            hint = " (a GEMM M, N, K topology? only conv topologies are read)" if 4 <= len(fields) <= 5 else ""
            raise SpecError(path, f"line {n}", f"expected 8 fields (Layer name, {', '.join(TOPOLOGY_COLUMNS)}) "
                            f"and an optional sparsity, got {len(fields)}{hint}")
        name = fields[0]
        if not name:
            raise SpecError(path, f"line {n}.Layer name", "empty")
        vals = []
        for col, text in zip(TOPOLOGY_COLUMNS, fields[1:8]):
            v = _int(text, path, f"line {n}.{col}")
            if v < 1:
                raise SpecError(path, f"line {n}.{col}", f"must be >= 1, got {v}")
            vals.append(v)
        row = TopologyRow(n, name, *vals)
        for axis, size, filt in (("Height", row.ifmap_h, row.filt_h), ("Width", row.ifmap_w, row.filt_w)):
            if filt > size:  # SCALE-Sim asserts the same (topology_utils.append_topo_arrays)
                raise SpecError(path, f"line {n}.Filter {axis}", f"{filt} is larger than the IFMAP {axis} {size}")
        rows.append(row)
    if not rows:
        raise SpecError(path, None, "no layers (a header line, then one line per layer)")
    return rows


# -- the arch spec -----------------------------------------------------------------------
def _buffer_width(lanes: int) -> int:
    """A buffer's port: one one-byte word per array lane a cycle, rounded up to a power of
    two (so it divides any whole-kB capacity), at least the widest data type."""
    return min(MAX_WIDTH_BITS, max(MIN_BUFFER_WIDTH_BITS, WORD_BITS * 2 ** math.ceil(math.log2(lanes))))


def spec_text(cfg: ScaleSimConfig, topology: str) -> str:
    """The ``systolic_array`` arch spec of ``cfg`` (the structure of
    arch_specs/systolic_array.yaml; sizes from the config, bytes = kB x 1024)."""
    dram_bits = DEFAULT_DRAM_BITS_PER_CYCLE if cfg.bandwidth is None else cfg.bandwidth * WORD_BITS
    dram_note = (f"InterfaceBandwidth USER: Bandwidth {cfg.bandwidth} words a cycle" if cfg.bandwidth
                 else "InterfaceBandwidth CALC: SCALE-Sim sizes the interface; the bundled spec's channel")
    buf = {"ifmap_buffer": ("IfmapSramSzkB", cfg.ifmap_kb, cfg.rows, "one word per array row"),
           "filter_buffer": ("FilterSramSzkB", cfg.filter_kb, cfg.cols, "one word per array column"),
           "ofmap_buffer": ("OfmapSramSzkB", cfg.ofmap_kb, cfg.cols, "one word per array column")}
    comps = "".join(
        f"  {name}:\n    class: sram\n    capacity_bytes: {kb * KIB}   # {key} {kb}\n"
        f"    width_bits: {_buffer_width(lanes)}   # {what} a cycle, a power of two >= 32 bits\n"
        f"    banks: 1\n    ports: 1\n    latency_cycles: 1\n"
        for name, (key, kb, lanes, what) in buf.items())
    return f"""\
# Imported from the SCALE-Sim config {cfg.path}
# (run_name {cfg.run_name}) by run_sim.py import-scalesim, for the topology {topology}.
# The structure of arch_specs/systolic_array.yaml: a {cfg.rows}x{cfg.cols} array, {cfg.dataflow} dataflow,
# three SRAM buffers of the config's sizes, every layer from and to DRAM as SCALE-Sim runs
# layers, one-byte words. Replay each segment's trace with --mode ann --map spec (docs/peers.md).
schema: arch-spec/1
name: scalesim_{_UNSAFE.sub("_", cfg.run_name)}
architecture: {ARCHITECTURE}
description: >-
  SCALE-Sim config {Path(cfg.path).name}: {cfg.rows}x{cfg.cols} {cfg.dataflow} systolic array,
  {cfg.ifmap_kb} / {cfg.filter_kb} / {cfg.ofmap_kb} kB ifmap / filter / ofmap SRAM, layers from and to DRAM.
clock_mhz: 1000
data:
  weight_bits: 8          # SCALE-Sim: one-byte words
  membrane_bits: 16       # SNN membrane potential (not a SCALE-Sim figure)
  psum_bits: 24           # ANN partial sums
  input_bits: 8
  ann_activation_bits: 8
components:
  dram:
    class: dram
    width_bits: 64
    bandwidth_bits_per_cycle: {dram_bits}   # {dram_note}
    latency_cycles: 100
{comps}  pe_array:
    class: pe_array
    rows: {cfg.rows}   # ArrayHeight
    cols: {cfg.cols}   # ArrayWidth
    ops_per_cycle: 1
mapping:
  dataflow: {cfg.dataflow}   # Dataflow
  layer_io: dram
  double_buffered: true
  skip_zero_rows: false
"""


# -- the import --------------------------------------------------------------------------
def extension_note(row: TopologyRow, name: str) -> str:
    h, w = row.input_hw
    return (f"layer {name} (line {row.line}): SCALE-Sim's output is {row.ofmap_h}x{row.ofmap_w} "
            f"(ceil((H - R + stride) / stride)) where a convolution floors; its input is extended from "
            f"{row.ifmap_h}x{row.ifmap_w} to {h}x{w} so the trace has SCALE-Sim's outputs (every count "
            f"equal but the DRAM input reads, which count the extension); it reads the network input, so it "
            f"starts a trace segment")


def _replay_command(trace: Path, spec: Path) -> str:
    return f"run_sim.py replay {trace} --arch {spec} --mode ann --map spec"


def import_scalesim(config_path, topology_path, out_dir, temp: Callable[[Path], Path] | None = None) -> dict:
    """Write ``out_dir``/arch.yaml (the config as a systolic_array spec), the topology's rows
    chained into as few traces as :func:`segments` allows (one: ``network.h5``; several:
    ``NNN_<first row>.h5``) and manifest.json (the segments, their rows and inserted layers,
    the rows and the replay commands). Every input is read and checked before anything is
    written. ``temp(dest)``: the path to write ``dest`` to (an all-or-nothing writer's
    temporary, sim.report.output.Outputs.temp); None writes ``dest`` itself (``out_dir``
    created).

    Returns {"spec": path, "manifest": path, "traces": [path per segment], "replay": [command
    per segment], "warnings": [text]}. SpecError naming the file and field for bad input."""
    from sim.trace.synthetic import write_synthetic_trace   # h5py: only when writing

    cfg = read_config(config_path)
    rows = read_topology(topology_path)
    text = spec_text(cfg, str(topology_path))
    parse_arch_spec(strict_yaml_load(text), config_path)  # a config value out of the spec's range
    names = layer_names(rows)
    for row, name in zip(rows, names):   # each row alone, as it reads the network input
        layer = row.layer(name)
        try:
            check_limits(1, 1, layer.input_shape, [layer])
        except LimitExceeded as exc:
            raise SpecError(topology_path, f"line {row.line}", exc.message) from None
    segs = segments(rows, names)
    out_dir = Path(out_dir)
    if temp is None:
        out_dir.mkdir(exist_ok=True)
    dest = {"spec": out_dir / SPEC_FILE, "manifest": out_dir / MANIFEST_FILE}
    files = [NETWORK_FILE] if len(segs) == 1 else [f"{i:03d}_{seg.rows[0]}.h5" for i, seg in enumerate(segs)]
    commands = [_replay_command(out_dir / f, dest["spec"]) for f in files]

    def target(path: Path) -> Path:
        return temp(path) if temp is not None else path

    target(dest["spec"]).write_text(text)
    for seg, file in zip(segs, files):
        write_synthetic_trace(target(out_dir / file), seg.layers, seg.layers[0].input_shape,
                              model=f"scalesim:{Path(topology_path).stem}:{seg.rows[0]}", T=1, n_samples=1,
                              rate=0.5, seed=0, with_weights=False, dataset="scalesim-dense")
    seg_of = {name: i for i, seg in enumerate(segs) for name in seg.rows}
    by_name = {l.name: l for seg in segs for l in seg.layers}
    warnings, entries = [], []
    for row, name in zip(rows, names):
        seg = segs[seg_of[name]]
        lk, layer = seg.links[name], by_name[name]
        if row.extended:
            warnings.append(extension_note(row, name))
        entries.append({"line": row.line, "name": row.name, "layer": name, "segment": seg_of[name],
                        "trace": files[seg_of[name]], "kind": layer.kind,
                        "reads": NETWORK_INPUT if lk is None else seg.rows[seg.rows.index(name) - 1],
                        "pool": 1 if lk is None else lk.pool, "padding": 0 if lk is None else lk.padding,
                        "ifmap": [row.ifmap_h, row.ifmap_w], "filter": [row.filt_h, row.filt_w],
                        "channels": row.channels, "num_filters": row.num_filters, "stride": row.stride,
                        "depthwise": row.depthwise, "ofmap": [row.ofmap_h, row.ofmap_w],
                        "trace_input": list(layer.input_shape), "padded_input": [row.channels, *row.input_hw],
                        "extended": row.extended, "macs": row.macs})
    manifest = {"schema": MANIFEST_SCHEMA, "config": str(config_path), "topology": str(topology_path),
                "spec": SPEC_FILE, "rows": cfg.rows, "cols": cfg.cols, "dataflow": cfg.dataflow,
                "ifmap_kb": cfg.ifmap_kb, "filter_kb": cfg.filter_kb, "ofmap_kb": cfg.ofmap_kb,
                "segments": [{"trace": file, "rows": seg.rows, "layers": [l.name for l in seg.layers],
                              "inserted": seg.inserted, "replay": cmd}
                             for seg, file, cmd in zip(segs, files, commands)],
                "replay": commands, "layers": entries, "warnings": warnings}
    target(dest["manifest"]).write_text(json.dumps(manifest, indent=2) + "\n")
    return {"spec": str(dest["spec"]), "manifest": str(dest["manifest"]),
            "traces": [str(out_dir / f) for f in files], "replay": commands, "warnings": warnings}
