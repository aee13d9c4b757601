"""import-scalesim (issue 18): a SCALE-Sim config and conv topology become an arch spec and a
dense trace, the rows chained into one network wherever the geometry allows (else a new
segment, a trace of its own), whose replay gives SCALE-Sim's per-layer figures (SCALE-Sim
3.0.0's formulas, docs/peers.md "SCALE-Sim"; the expected numbers below are worked out by hand
from them), and bad input is one line naming the file and field, with nothing written."""

from __future__ import annotations

import json

import pytest

from sim.arch.scalesim import read_topology
from sim.arch.scalesim_chain import Link, TopologyRow, layer_names, link, segments
from sim.cli import main

ROWS, COLS = 4, 3   # not square: a swapped rows/cols would show

#: Name, IFMAP H, W, filter R, S, channels, filters, stride. ``b`` and ``c`` have the same
#: GEMM: ``c``'s 8-row input at stride 2 gives SCALE-Sim ceil((8 - 3 + 2) / 2) = 4 output
#: rows (a convolution floors to 3), so its trace input is extended to 9x9, which is ``b``.
TOPOLOGY = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
a, 6, 6, 3, 3, 2, 5, 1,
b, 9, 9, 3, 3, 3, 6, 2,
c, 8, 8, 3, 3, 3, 6, 2,
"""


def _config(dataflow="ws", drop=None, **values):
    keys = {"ArrayHeight": ROWS, "ArrayWidth": COLS, "IfmapSramSzkB": 64, "FilterSramSzkB": 64,
            "OfmapSramSzkB": 64, "Dataflow": dataflow, **values}
    body = "".join(f"{k}: {v}\n" for k, v in keys.items() if k != drop)
    return f"[general]\nrun_name = t\n\n[architecture_presets]\n{body}\n[run_presets]\nInterfaceBandwidth: CALC\n"


def _import(tmp_path, dataflow, topology=TOPOLOGY):
    (tmp_path / "c.cfg").write_text(_config(dataflow))
    (tmp_path / "t.csv").write_text(topology)
    out = tmp_path / "out"
    assert main(["import-scalesim", str(tmp_path / "c.cfg"), str(tmp_path / "t.csv"), "--out", str(out)]) == 0
    return out


def _replay(out, trace):
    rep = out / (trace + ".json")
    assert main(["replay", str(out / trace), "--arch", str(out / "arch.yaml"), "--mode", "ann",
                 "--map", "spec", "--json", str(rep), "--quiet"]) == 0
    doc = json.loads(rep.read_text())
    return {l["name"]: l["counts"] for l in doc["layers"]}, doc["extra"]["plan"]


def _figures(out):
    """Per topology row (by its layer name in its segment's replay): MACs, SRAM ifmap, filter
    and ofmap accesses, compute cycles, mapping efficiency, compute utilisation."""
    manifest = json.loads((out / "manifest.json").read_text())
    got, dram_in = {}, {}
    for seg in manifest["segments"]:
        counts, plans = _replay(out, seg["trace"])
        assert set(counts) - set(seg["rows"]) == {n for n, x in seg["inserted"].items() if x["kind"] != "flatten"}
        for name in seg["rows"]:
            c, plan = counts[name], plans[name]
            got[name] = (c["pe_array.mac"], c["ifmap_buffer.input_read"], c["filter_buffer.weight_read"],
                         c["ofmap_buffer.output_write"], plan["compute_cycles"], round(plan["mapping_efficiency"], 9),
                         round(plan["compute_utilisation"], 9))
            dram_in[name] = c["dram.input_read"]
    return got, manifest, dram_in


def _ws(P, F, K, rows=ROWS, cols=COLS):
    """SCALE-Sim 3's WS figures of a P x F by F x K layer: Sr = F, Sc = K, T = P; a fold
    2·rows + cols + T - 2 cycles; ifmap reads cf·P·F, filter F·K, ofmap writes rf·P·K."""
    rf, cf = -(-F // rows), -(-K // cols)
    eff = F * K / (rf * cf * rows * cols)
    return (P * F * K, cf * P * F, F * K, rf * P * K, rf * cf * (2 * rows + cols + P - 2), round(eff, 9),
            round(eff * P / (2 * rows + 2 * cols + P - 3), 9))


#: VGG-like: ``a`` 10x10x3 -> 8x8x8; ``b`` reads it padded by 1 (10x10x8); ``c`` after a 2x2
#: pool, padded by 1 (6x6); ``fc`` after a 2x2 pool of c's 4x4x5: 2x2x5 = 20 inputs.
VGG_LIKE = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
a, 10, 10, 3, 3, 3, 8, 1,
b, 10, 10, 3, 3, 8, 6, 1,
c, 6, 6, 3, 3, 6, 5, 1,
fc, 1, 1, 1, 1, 20, 4, 1,
"""


def test_vgg_like_rows_chain_into_one_trace_with_scalesims_per_layer_figures(tmp_path, capsys):
    out = _import(tmp_path, "ws", VGG_LIKE)
    printed = capsys.readouterr().out
    assert f"run_sim.py replay {out}/network.h5 --arch {out}/arch.yaml --mode ann --map spec" in printed
    got, manifest, dram_in = _figures(out)
    (seg,) = manifest["segments"]
    assert manifest["schema"] == "scalesim-import/2" and seg["trace"] == "network.h5"
    assert seg["rows"] == ["a", "b", "c", "fc"]
    assert seg["layers"] == ["a", "b", "c_pool", "c", "fc_pool", "fc_flatten", "fc"]
    assert seg["inserted"] == {"c_pool": {"kind": "maxpool", "before": "c", "window": 2},
                               "fc_pool": {"kind": "maxpool", "before": "fc", "window": 2},
                               "fc_flatten": {"kind": "flatten", "before": "fc"}}
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".h5") == ["network.h5"]
    # a: P 64, F 27, K 8 -> 7 x 3 folds of 73 cycles; b: P 64, F 72, K 6; c: P 16, F 54, K 5;
    # fc: P 1, F 20, K 4 (a linear layer: the GEMM of a 1x1 conv on a 1x1 map)
    assert got["a"] == (13824, 5184, 216, 3584, 21 * 73, round(216 / 252, 9), round(216 * 64 / (252 * 75), 9))
    assert got == {"a": _ws(64, 27, 8), "b": _ws(64, 72, 6), "c": _ws(16, 54, 5), "fc": _ws(1, 20, 4)}
    # the array sees SCALE-Sim's padded IFMAP: its DRAM input is every element of it
    assert dram_in == {"a": 300, "b": 800, "c": 216, "fc": 20}
    rows = {e["layer"]: e for e in manifest["layers"]}
    assert [(rows[n]["reads"], rows[n]["pool"], rows[n]["padding"], rows[n]["kind"]) for n in seg["rows"]] == [
        ("input", 1, 0, "conv2d"), ("a", 1, 1, "conv2d"), ("b", 2, 1, "conv2d"), ("c", 2, 0, "linear")]
    assert rows["c"]["trace_input"] == [6, 4, 4] and rows["c"]["padded_input"] == [6, 6, 6]


def test_rows_that_cannot_chain_become_segments_with_the_same_figures(tmp_path, capsys):
    # a -> b: 5 channels out, b reads 3; c's output rounds up (extended input): three traces
    out = _import(tmp_path, "ws")
    printed = capsys.readouterr().out
    _, manifest, _ = _figures(out)
    files = ["000_a.h5", "001_b.h5", "002_c.h5"]
    assert [(s["trace"], s["rows"], s["inserted"]) for s in manifest["segments"]] == [
        (f, [f[4]], {}) for f in files]
    assert manifest["replay"] == [f"run_sim.py replay {out / f} --arch {out / 'arch.yaml'} --mode ann --map spec"
                                  for f in files]
    assert all(cmd in printed for cmd in manifest["replay"])


def test_ws_rows_replay_to_scalesim_per_layer_figures(tmp_path):
    # WS: Sr = F, Sc = K, T = P; a fold 2·rows + cols + T - 2 = 25 cycles; SCALE-Sim's "Total
    # Cycles" is one less than folds x 25. a: P 16, F 18, K 5 -> 5 x 2 folds; b, c: P 16, F 27,
    # K 6 -> 7 x 2 folds. Reads: ifmap cf·P·F, filter F·K, ofmap writes rf·P·K. Mapping
    # efficiency F·K / (folds·rows·cols); compute util x T / (2·rows + 2·cols + T - 3 = 27).
    got, manifest, _ = _figures(_import(tmp_path, "ws"))
    b = (2592, 2 * 16 * 27, 27 * 6, 7 * 16 * 6, 14 * 25, round(162 / 168, 9), round(162 * 16 / (168 * 27), 9))
    assert got == {"a": (1440, 2 * 16 * 18, 18 * 5, 5 * 16 * 5, 10 * 25, 0.75, round(90 * 16 / (120 * 27), 9)),
                   "b": b, "c": b}
    assert [e["extended"] for e in manifest["layers"]] == [False, False, True]
    assert manifest["layers"][2]["trace_input"] == [3, 9, 9] and manifest["layers"][2]["ofmap"] == [4, 4]
    assert [e["segment"] for e in manifest["layers"]] == [0, 1, 2]


def test_os_rows_replay_to_scalesim_per_layer_figures(tmp_path):
    # OS: Sr = P, Sc = K, T = F; a fold T + rows + cols - 2 cycles. a: 4 x 2 folds of 23; b, c:
    # 4 x 2 folds of 32. Reads: ifmap cf·P·F, filter rf·F·K; ofmap writes P·K (SCALE-Sim adds
    # rows + cols per fold to its own). Compute util over T + rows + cols - 2 cycles a fold.
    got, _, _ = _figures(_import(tmp_path, "os"))
    b = (2592, 2 * 16 * 27, 4 * 27 * 6, 16 * 6, 8 * 32, 1.0, round(27 / 32, 9))
    assert got == {"a": (1440, 2 * 16 * 18, 4 * 18 * 5, 16 * 5, 8 * 23, round(80 / 96, 9), round(80 * 18 / (96 * 23), 9)),
                   "b": b, "c": b}


def test_depthwise_row_is_one_grouped_conv_of_scalesims_channel_layers(tmp_path):
    # SCALE-Sim runs a 'DP' row as one layer per channel (1 channel, all the row's filters):
    # here 3 channel layers of P 16, F 9, K 2, each 4 x 1 folds of 9 + 4 + 3 - 2 = 14 cycles (OS).
    # It reads stem's 4x4x3 output padded by 1, so both rows are one trace.
    out = _import(tmp_path, "os",
                  "name,H,W,R,S,C,K,stride,\nstem, 6, 6, 3, 3, 2, 3, 1,\nconvDP1, 6, 6, 3, 3, 3, 2, 1,\n")
    got, manifest, _ = _figures(out)
    dp = manifest["layers"][1]
    assert dp["depthwise"] and (dp["segment"], dp["padding"], dp["trace_input"]) == (0, 1, [3, 4, 4])
    assert got["convDP1"][:5] == (3 * 16 * 9 * 2, 3 * 16 * 9, 3 * 4 * 9 * 2, 3 * 16 * 2, 3 * 4 * 14)


def _row(h, r, c, k=4, stride=1, name="x"):
    return TopologyRow(2, name, h, h, r, r, c, k, stride)


@pytest.mark.parametrize("prev, row, expected", [
    ((4, 4, 4), _row(6, 3, 4), Link(1, 1, False)),     # padded by 1
    ((4, 8, 8), _row(6, 3, 4), Link(2, 1, False)),     # a 2x2 pool, then padded by 1
    ((4, 12, 12), _row(6, 3, 4), Link(3, 1, False)),   # "same" padding before the smaller pool (2, p 0)
    ((4, 6, 6), _row(6, 3, 4), Link(1, 0, False)),     # read as it is
    ((4, 4, 4), _row(6, 3, 5), None),                  # 5 channels read, 4 written
    ((4, 2, 2), _row(4, 1, 4), None),                  # padding 1 >= the 1x1 filter: a window all padding
    ((4, 6, 6), _row(8, 3, 4, stride=2), None),        # padded 6 + 2 fits, but SCALE-Sim's output rounds up
    ((5, 4, 4), _row(1, 1, 20, name="fc"), Link(2, 0, True)),   # 5 x (4/2)² inputs: pool, flatten, linear
    ((5, 3, 3), _row(1, 1, 20, name="fc"), None),
])
def test_a_row_reads_the_previous_output_only_where_the_geometry_fits(prev, row, expected):
    assert link(prev, row) == expected


def test_a_chain_that_would_pass_the_trace_memory_budget_starts_a_new_segment():
    # each 8 x 2896 x 2896 output (67 M neurons) fits a trace; three of them pass the 4 GiB
    # budget of one decoded sample (sim.trace.limits), so c starts a trace of its own
    rows = [TopologyRow(2 + i, n, 2898, 2898, 3, 3, c, 8, 1) for i, (n, c) in enumerate([("a", 1), ("b", 8), ("c", 8)])]
    segs = segments(rows, layer_names(rows))
    assert [s.rows for s in segs] == [["a", "b"], ["c"]] and segs[1].links == {"c": None}
    assert [l.output for s in segs for l in s.layers] == ["spikes", "potential", "potential"]


def test_topology_without_trailing_comma_and_with_sparsity_reads_the_same(tmp_path):
    (tmp_path / "t.csv").write_text("h\nx, 6, 6, 3, 3, 2, 5, 1, 1:1\ny, 6, 6, 3, 3, 2, 5, 1\n\n")
    a, b = read_topology(tmp_path / "t.csv")
    assert (a.ifmap_h, a.num_filters, a.stride, a.line) == (6, 5, 1, 2) and (b.stride, b.line) == (1, 3)


@pytest.mark.parametrize("cfg, topology, where", [
    (_config(drop="ArrayWidth"), TOPOLOGY, "c.cfg: architecture_presets.ArrayWidth: missing required key"),
    (_config(ArrayHeight="3.5"), TOPOLOGY, "c.cfg: architecture_presets.ArrayHeight: expected an integer, got '3.5'"),
    (_config("xs"), TOPOLOGY, "c.cfg: architecture_presets.Dataflow: must be one of ws, os, is"),
    (_config(IfmapSramSzkB=0), TOPOLOGY, "c.cfg: architecture_presets.IfmapSramSzkB: must be >= 1"),
    ("[general]\nrun_name = t\n", TOPOLOGY, "c.cfg: architecture_presets.ArrayHeight: missing required section"),
    (_config(), TOPOLOGY.replace("b, 9, 9, 3, 3, 3,", "b, 9, 9, 3, 3, x,"), "t.csv: line 3.Channels: expected an integer"),
    (_config(), TOPOLOGY.replace("a, 6, 6, 3,", "a, 2, 6, 3,"), "t.csv: line 2.Filter Height: 3 is larger than"),
    (_config(), "h\nm, 64, 32, 16,\n", "t.csv: line 2: expected 8 fields"),
    (_config(), "only a header\n", "t.csv: no layers"),
])
def test_bad_input_is_one_line_naming_file_and_field_and_writes_nothing(tmp_path, capsys, cfg, topology, where):
    (tmp_path / "c.cfg").write_text(cfg)
    (tmp_path / "t.csv").write_text(topology)
    out = tmp_path / "out"
    assert main(["import-scalesim", str(tmp_path / "c.cfg"), str(tmp_path / "t.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and where in err, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.cfg", "t.csv"]
