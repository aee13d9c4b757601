"""``breakeven``: on the tiny shape the simulated energies cross where the command says, the
closed-form break-even points are the roots of their own lines, and the CLI prints simulated
and closed-form s* side by side for all three architectures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.studies.breakeven import classify, closed_form_break_even, run_breakeven
from sim.cli import main

ARCHS = ["memory_hierarchy", "spatial_dataflow", "neuromorphic"]


@pytest.fixture(scope="module")
def tiny_doc():
    return run_breakeven([2], "all", model="tiny", samples=2, tol=0.01, progress=False)


def test_the_simulated_energies_change_sign_around_the_break_even_rate(tiny_doc):
    crossings = 0
    for arch in ARCHS:
        (row,) = tiny_doc["architectures"][arch]
        sim = row["simulated"]
        if sim["kind"] != "crossing":
            continue
        crossings += 1
        b = sim["bracket"]
        assert b["rate_low"] <= sim["rate"] <= b["rate_high"]
        assert b["rate_high"] - b["rate_low"] <= 0.01 + 1e-12
        assert b["g_low_pj"] < 0 <= b["g_high_pj"]  # E_SNN - E_ANN changes sign inside
        pts = {p["rate"]: p["e_snn_pj"] - p["e_ann_pj"] for p in sim["evaluated"]}
        assert pts[b["rate_low"]] == b["g_low_pj"] and pts[b["rate_high"]] == b["g_high_pj"]
        assert sim["s_star"] == pytest.approx(1 - sim["rate"])
    assert crossings >= 1


def test_closed_form_break_even_is_the_root_of_its_lines():
    lines = {"snn_fixed_pj": 5.0, "snn_per_rate_pj": 100.0, "ann_fixed_pj": 10.0, "ann_per_density_pj": 40.0}
    T = 4
    be = closed_form_break_even(lines, T)
    r = be["rate"]
    g = 5 + 100 * r - 10 - 40 * (1 - (1 - r) ** T)
    assert abs(g) < 1e-9
    assert be["kind"] == "crossing" and be["s_star"] == pytest.approx(1 - r)


def test_classify_says_none_and_always():
    grid = np.linspace(0, 1, 11)
    assert classify(lambda r: r + 1.0, grid)["kind"] == "none"
    assert classify(lambda r: r - 2.0, grid) == {"kind": "always", "rate": 1.0, "s_star": 0.0}
    assert classify(lambda r: r - 0.5, grid)["rate"] == pytest.approx(0.5)


def test_cli_prints_simulated_and_closed_form_side_by_side_for_all_architectures(tmp_path, capsys):
    out = tmp_path / "be.json"
    assert main(["breakeven", "--model", "tiny", "--T", "2", "--tol", "0.02", "--quiet",
                 "--json", str(out), "--plot", str(tmp_path / "be.png")]) == 0
    text = capsys.readouterr().out
    assert "simulated" in text and "closed form" in text and "paper v1" in text
    for arch in ARCHS:
        assert any(line.startswith(arch) for line in text.splitlines()), arch
    doc = json.loads(out.read_text())
    assert doc["schema"] == "snn-energy-breakeven/1"
    assert set(doc["architectures"]) == set(ARCHS)
    for arch, rows in doc["architectures"].items():
        assert {"simulated", "closed_form"} <= set(rows[0])
        assert ("paper_v1" in rows[0]) == (arch != "neuromorphic")
    assert (tmp_path / "be.png").stat().st_size > 0


@pytest.mark.parametrize("args", [["--model", "nope"], ["--T", "0"], ["--samples", "0"], ["--tol", "2"],
                                  ["--arch", "nope"], ["--plot", "x.pdf"]])
def test_bad_input_exits_2(args, capsys):
    assert main(["breakeven", "--quiet", *args]) == 2
    assert capsys.readouterr().err.startswith("error: ")
