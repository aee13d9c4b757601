"""`replay` and `reprice` from the command line: schema, CSV, both modes, re-pricing."""

from __future__ import annotations

import csv
import json

import pytest

from sim.report import CANONICAL_TOTALS

from conftest import BUNDLED_TINY, run_cli


def test_replay_json_follows_the_report_schema(tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    res = run_cli("replay", BUNDLED_TINY, "--mode", "both", "--samples", "2", "--json", out, "--csv", table)
    assert res.returncode == 0, res.stderr
    assert "E_SNN / E_ANN on memory_hierarchy" in res.stdout
    doc = json.loads(out.read_text())
    assert set(doc) == {"schema", "runs", "ratios"}
    snn, ann = doc["runs"]
    assert (snn["mode"], ann["mode"]) == ("snn", "ann")
    for rep in doc["runs"]:
        assert set(CANONICAL_TOTALS) <= set(rep["totals"])
        assert all(isinstance(v, int) for v in rep["counts"].values())
        assert rep["samples"] == 2 and rep["cycles"] > 0
        assert rep["energy_pj"]["total"] == pytest.approx(sum(rep["energy_pj"]["by_component"].values()))
        assert rep["energy_pj"]["total"] == pytest.approx(sum(l["energy_pj"] for l in rep["layers"]))
        assert rep["per_sample"]["energy_pj"] == pytest.approx(rep["energy_pj"]["total"] / 2)
    assert doc["ratios"]["memory_hierarchy"] == pytest.approx(snn["energy_pj"]["total"] / ann["energy_pj"]["total"])
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 * len(snn["layers"])
    assert {r["mode"] for r in rows} == {"snn", "ann"}


def test_reprice_cli_equals_replaying_with_the_other_table(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert run_cli("replay", BUNDLED_TINY, "--mode", "snn", "--json", a, "--quiet").returncode == 0
    assert run_cli("replay", BUNDLED_TINY, "--mode", "snn", "--energy", "horowitz_45nm", "--json", b,
                   "--quiet").returncode == 0
    res = run_cli("reprice", a, "--energy", "horowitz_45nm", "--json", c)
    assert res.returncode == 0, res.stderr
    repriced, direct = json.loads(c.read_text()), json.loads(b.read_text())
    assert repriced["energy_table"] == "horowitz_45nm"
    assert repriced["energy_pj"]["total"] == pytest.approx(direct["energy_pj"]["total"], rel=1e-12)


def test_reprice_rejects_a_non_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    res = run_cli("reprice", bad, "--energy", "horowitz_45nm")
    assert res.returncode == 2 and "schema" in res.stderr
