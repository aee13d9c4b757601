"""``run_sim.py formulas`` end to end: the break-even table, ratios, JSON, plot, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("memory_hierarchy", "spatial_dataflow")


def formulas(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), "formulas", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def full_json() -> dict:
    proc = formulas("--T", "1-16", "--sparsity", "0.9419", "--qnn", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # '-' means JSON only: stdout must parse as a whole


def test_json_gives_break_even_per_architecture_for_every_T(full_json):
    for arch in ARCHS:
        rows = full_json["paper_v1"][arch]["break_even"]
        assert [r["T"] for r in rows] == list(range(1, 17))
        s_star = [r["s_star"] for r in rows]
        assert all(b > a for a, b in zip(s_star, s_star[1:])), "s*(T) must rise with T"
        assert all(0 < s < 1 for s in s_star)
    by_T = {a: {r["T"]: r["s_star"] for r in full_json["paper_v1"][a]["break_even"]} for a in ARCHS}
    assert round(by_T["memory_hierarchy"][6], 4) == 0.9242
    assert round(by_T["spatial_dataflow"][6], 4) == 0.9251


def test_sparsity_adds_the_ratio_and_T6_gives_table5(full_json):
    ratio6 = {a: next(r for r in full_json["paper_v1"][a]["ratio"] if r["T"] == 6) for a in ARCHS}
    assert round(ratio6["memory_hierarchy"]["ratio"], 2) == 0.85
    assert round(ratio6["spatial_dataflow"]["ratio"], 2) == 0.78
    for row in ratio6.values():
        assert row["sparsity"] == 0.9419
        assert row["ratio"] == pytest.approx(row["e_snn_pj"]["total"] / row["e_baseline_pj"]["total"])


def test_ratio_crosses_one_where_the_break_even_table_says(full_json):
    for arch in ARCHS:
        for be, r in zip(full_json["paper_v1"][arch]["break_even"], full_json["paper_v1"][arch]["ratio"]):
            assert (r["ratio"] < 1) == (0.9419 > be["s_star"]), (arch, be["T"])


def test_qnn_section_reports_bits_and_a_stricter_break_even(full_json):
    for arch in ARCHS:
        qnn = full_json["paper_v1_qnn"][arch]["break_even"]
        ann = full_json["paper_v1"][arch]["break_even"]
        assert [r["bits"] for r in qnn][:8] == [1, 2, 2, 3, 3, 3, 3, 4]
        assert all(q["s_star"] > a["s_star"] for q, a in zip(qnn, ann))
    assert full_json["qnn_baseline"]["rho"] == full_json["constants"]["rho"]


def test_abstract_claim_is_reported_next_to_the_models_own_number(full_json):
    claim = full_json["abstract_claim"]
    assert (claim["T"], claim["ratio"], claim["sparsity"]) == (6, 0.69, 0.9418)
    assert round(claim["model_sparsity_for_claimed_ratio"]["spatial_dataflow"], 3) == 0.949
    assert claim["model_ratio_at_claimed_sparsity"]["spatial_dataflow"] > 0.69 + 0.05


def test_without_sparsity_there_is_no_ratio():
    proc = formulas("--T", "2,4,6", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for arch in ARCHS:
        assert "ratio" not in doc["paper_v1"][arch]
        assert [r["T"] for r in doc["paper_v1"][arch]["break_even"]] == [2, 4, 6]
    assert "paper_v1_qnn" not in doc


def test_text_table_json_file_and_plot_together(tmp_path):
    out_json, out_png = tmp_path / "f.json", tmp_path / "be.png"
    proc = formulas("--T", "5-7", "--sparsity", "0.95", "--json", out_json, "--plot", out_png)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:1] == ["6"] and "0.92" in line for line in lines)  # T = 6 row
    assert "94.18%" in proc.stdout and "0.9486" in proc.stdout  # the paper's inconsistency
    assert [r["T"] for r in json.loads(out_json.read_text())["paper_v1"]["spatial_dataflow"]["ratio"]] == [5, 6, 7]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,field", [
    (["--sparsity", "1.5"], "--sparsity"),
    (["--sparsity", "-0.1"], "--sparsity"),
    (["--sparsity", "nan"], "--sparsity"),
    (["--T", "0"], "--T"),
    (["--T", "0-4"], "--T"),
    (["--T", "8-2"], "--T"),
    (["--T", "six"], "--T"),
    (["--qnn", "--qnn-rho", "0"], "--qnn-rho"),
    (["--plot", "curves.pdf"], "--plot"),
])
def test_bad_parameters_exit_2_with_one_line(tmp_path, args, field):
    out = tmp_path / "never.json"
    proc = formulas(*args, "--json", out)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and field in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_bad_energy_table_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    shipped = (REPO / "arch_specs" / "energy" / "paper_v1_45nm.yaml").read_text()
    bad.write_text(shipped.replace("energy_pj: 0.03", "energy_pj: -0.03", 1))
    proc = formulas("--T", "6", "--energy", bad)
    assert proc.returncode == 2
    assert "entries.add.energy_pj" in proc.stderr and proc.stderr.count("\n") == 1


def test_an_empty_T_is_an_error_not_the_default():
    proc = formulas("--T", "")
    assert proc.returncode == 2 and "--T" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
