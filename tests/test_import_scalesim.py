"""import-scalesim (issue 18): a SCALE-Sim config and conv topology become an arch spec and one
dense trace per row whose replay gives SCALE-Sim's per-layer figures (SCALE-Sim 3.0.0's formulas,
docs/peers.md "SCALE-Sim"; the expected numbers below are worked out by hand from them), and bad
input is one line naming the file and field, with nothing written."""

from __future__ import annotations

import json

import pytest

from sim.arch.scalesim import read_topology
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
    (layer,) = doc["layers"]
    return layer["counts"], doc["extra"]["plan"][layer["name"]]


def _figures(out):
    manifest = json.loads((out / "manifest.json").read_text())
    got = {}
    for entry in manifest["layers"]:
        counts, plan = _replay(out, entry["trace"])
        got[entry["layer"]] = (counts["pe_array.mac"], counts["ifmap_buffer.input_read"],
                               counts["filter_buffer.weight_read"], counts["ofmap_buffer.output_write"],
                               plan["compute_cycles"], round(plan["mapping_efficiency"], 9),
                               round(plan["compute_utilisation"], 9))
    return got, manifest


def test_ws_rows_replay_to_scalesim_per_layer_figures(tmp_path):
    # WS: Sr = F, Sc = K, T = P; a fold 2·rows + cols + T - 2 = 25 cycles; SCALE-Sim's "Total
    # Cycles" is one less than folds x 25. a: P 16, F 18, K 5 -> 5 x 2 folds; b, c: P 16, F 27,
    # K 6 -> 7 x 2 folds. Reads: ifmap cf·P·F, filter F·K, ofmap writes rf·P·K. Mapping
    # efficiency F·K / (folds·rows·cols); compute util x T / (2·rows + 2·cols + T - 3 = 27).
    got, manifest = _figures(_import(tmp_path, "ws"))
    b = (2592, 2 * 16 * 27, 27 * 6, 7 * 16 * 6, 14 * 25, round(162 / 168, 9), round(162 * 16 / (168 * 27), 9))
    assert got == {"a": (1440, 2 * 16 * 18, 18 * 5, 5 * 16 * 5, 10 * 25, 0.75, round(90 * 16 / (120 * 27), 9)),
                   "b": b, "c": b}
    assert [e["extended"] for e in manifest["layers"]] == [False, False, True]
    assert manifest["layers"][2]["trace_input"] == [3, 9, 9] and manifest["layers"][2]["ofmap"] == [4, 4]


def test_os_rows_replay_to_scalesim_per_layer_figures(tmp_path):
    # OS: Sr = P, Sc = K, T = F; a fold T + rows + cols - 2 cycles. a: 4 x 2 folds of 23; b, c:
    # 4 x 2 folds of 32. Reads: ifmap cf·P·F, filter rf·F·K; ofmap writes P·K (SCALE-Sim adds
    # rows + cols per fold to its own). Compute util over T + rows + cols - 2 cycles a fold.
    got, _ = _figures(_import(tmp_path, "os"))
    b = (2592, 2 * 16 * 27, 4 * 27 * 6, 16 * 6, 8 * 32, 1.0, round(27 / 32, 9))
    assert got == {"a": (1440, 2 * 16 * 18, 4 * 18 * 5, 16 * 5, 8 * 23, round(80 / 96, 9), round(80 * 18 / (96 * 23), 9)),
                   "b": b, "c": b}


def test_depthwise_row_is_one_grouped_conv_of_scalesims_channel_layers(tmp_path):
    # SCALE-Sim runs a 'DP' row as one layer per channel (1 channel, all the row's filters):
    # here 3 channel layers of P 16, F 9, K 2, each 4 x 1 folds of 9 + 4 + 3 - 2 = 14 cycles (OS).
    out = _import(tmp_path, "os", "name,H,W,R,S,C,K,stride,\nconvDP1, 6, 6, 3, 3, 3, 2, 1,\n")
    got, manifest = _figures(out)
    assert manifest["layers"][0]["depthwise"] and manifest["layers"][0]["trace_input"] == [3, 6, 6]
    assert got["convDP1"][:5] == (3 * 16 * 9 * 2, 3 * 16 * 9, 3 * 4 * 9 * 2, 3 * 16 * 2, 3 * 4 * 14)


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
