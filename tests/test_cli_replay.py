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


# --- a saved report that reprice cannot price: one line naming the file and the JSON path --------
GOLDEN_REPLAY = BUNDLED_TINY.parents[1] / "tests" / "golden" / "tiny_synth_T4.replay.json"


def _runs_doc() -> dict:
    return json.loads(GOLDEN_REPLAY.read_text())


def _mutated(fn):
    def make():
        doc = _runs_doc()
        fn(doc)
        return doc
    return make


BAD_REPORTS = [
    ("runs not a list", lambda: {"runs": 5}, "runs"),
    ("run not an object", lambda: {"schema": "snn-energy-report/2", "runs": [5]}, "runs[0]"),
    ("no runs", lambda: {"schema": "snn-energy-report/2", "runs": []}, "runs"),
    ("a list, not a report", lambda: [1, 2], "expected a JSON report object"),
    ("layers not a list", _mutated(lambda d: d["runs"][0].update(layers={"a": 1})), "runs[0].layers"),
    ("layer not an object", _mutated(lambda d: d["runs"][0]["layers"].__setitem__(2, "conv")), "runs[0].layers[2]"),
    ("counts not an object", _mutated(lambda d: d["runs"][0]["layers"][2].update(counts=[1])),
     "runs[0].layers[2].counts"),
    ("negative count", _mutated(lambda d: d["runs"][1]["layers"][0]["counts"].update({"pe_array.mac": -1})),
     "runs[1].layers[0].counts['pe_array.mac']"),
    ("fractional count", _mutated(lambda d: d["runs"][1]["layers"][0]["counts"].update({"pe_array.mac": 1.5})),
     "runs[1].layers[0].counts['pe_array.mac']"),
    ("count over int64", _mutated(lambda d: d["runs"][1]["layers"][0]["counts"].update({"pe_array.mac": 2 ** 70})),
     "runs[1].layers[0].counts['pe_array.mac']"),
    ("boolean count", _mutated(lambda d: d["runs"][1]["layers"][0]["counts"].update({"pe_array.mac": True})),
     "runs[1].layers[0].counts['pe_array.mac']"),
    ("zero bits", _mutated(lambda d: d["runs"][0]["layers"][1]["bits"].update({"dram.weight_read": 0})),
     "runs[0].layers[1].bits['dram.weight_read']"),
    ("bits missing", _mutated(lambda d: d["runs"][0]["layers"][1]["bits"].pop("dram.weight_read")),
     "runs[0].layers[1].bits['dram.weight_read']"),
    ("count of an unknown component", _mutated(lambda d: d["runs"][0]["layers"][0]["counts"].update({"tape.read": 1})),
     "runs[0].layers[0].counts['tape.read']"),
    ("action no rule prices", _mutated(lambda d: d["runs"][0]["layers"][0]["counts"].update({"pe_array.teleport": 1})),
     "runs[0].layers[0].counts['pe_array.teleport']"),
    ("unknown component class", _mutated(lambda d: d["runs"][0]["arch"]["components"]["dram"].update({"class": "tape"})),
     "runs[0].arch.components.dram.class"),
    ("class given as an object", _mutated(lambda d: d["runs"][0]["arch"]["components"]["dram"].update({"class": {}})),
     "runs[0].arch.components.dram.class"),
    ("totals missing one", _mutated(lambda d: d["runs"][0]["layers"][3]["totals"].pop("macs")),
     "runs[0].layers[3].totals.macs"),
    ("totals not integers", _mutated(lambda d: d["runs"][0]["layers"][3]["totals"].update(macs="many")),
     "runs[0].layers[3].totals.macs"),
    ("zero samples", _mutated(lambda d: d["runs"][2].update(samples=0)), "runs[2].samples"),
    ("unknown mode", _mutated(lambda d: d["runs"][2].update(mode="qnn")), "runs[2].mode"),
    ("negative total count", _mutated(lambda d: d["runs"][0]["counts"].update({"global_buffer.weight_write": -3})),
     "runs[0].counts['global_buffer.weight_write']"),
    ("boolean run total", _mutated(lambda d: d["runs"][0]["totals"].update(synaptic_ops=True)),
     "runs[0].totals.synaptic_ops"),
    ("negative run total", _mutated(lambda d: d["runs"][3]["totals"].update(macs=-1)), "runs[3].totals.macs"),
    ("a layer deleted", _mutated(lambda d: d["runs"][3]["layers"].pop(3)), "runs[3].counts["),
    ("wrong schema in a run", _mutated(lambda d: d["runs"][4].update(schema="snn-energy-report/9")), "runs[4].schema"),
    ("single report, bad counts", lambda: {**_runs_doc()["runs"][0], "layers": [{"name": "x", "cycles": 1, "counts": 3,
                                                                                   "bits": {}, "totals": {}}]},
     "layers[0].counts"),
]


@pytest.mark.parametrize("rule,make,field", BAD_REPORTS, ids=[b[0] for b in BAD_REPORTS])
def test_reprice_of_a_malformed_report_is_one_line_naming_the_json_path(tmp_path, rule, make, field):
    from test_arch_spec import assert_bad_input

    src, out = tmp_path / "report.json", tmp_path / "out.json"
    src.write_text(json.dumps(make()))
    assert_bad_input("reprice", src, "--energy", "horowitz_45nm", "--json", out, file=src, field=field, out=out)


@pytest.mark.parametrize("text,says", [("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                                       ('{"runs": ' + "9" * 5000 + "}", "too long"),
                                       ("{not json", "not a JSON report"),
                                       ("\xff\xfe", "not a JSON report")])
def test_reprice_of_a_file_that_is_not_json_is_one_line(tmp_path, text, says):
    from test_arch_spec import assert_bad_input

    src, out = tmp_path / "report.json", tmp_path / "out.json"
    src.write_text(text, encoding="latin-1")
    assert_bad_input("reprice", src, "--energy", "horowitz_45nm", "--json", out, file=src, field="", says=says,
                     out=out)
    assert_bad_input("reprice", tmp_path, "--energy", "horowitz_45nm", file=tmp_path, field="",
                     says="is a directory")


def test_every_golden_replay_document_is_a_valid_saved_report():
    from sim.report.document import check_report

    for path in sorted(GOLDEN_REPLAY.parent.glob("*.replay.json")):
        for i, run in enumerate(json.loads(path.read_text())["runs"]):
            check_report(run, str(path), f"runs[{i}].")


def test_reprice_refuses_a_report_whose_memory_lost_its_capacity(tmp_path):
    """A memory is priced by its size (Horowitz by_capacity): without it the price is silently
    another one, so the report is invalid."""
    import json

    from conftest import run_cli

    src = tmp_path / "r.json"
    assert run_cli("replay", "traces/tiny_synth_T4.h5", "--arch", "spatial_dataflow", "--samples", "1",
                   "--quiet", "--json", src).returncode == 0
    doc = json.loads(src.read_text())
    del doc["runs"][0]["arch"]["components"]["local_memory"]["capacity_bytes"]
    src.write_text(json.dumps(doc))
    res = run_cli("reprice", src, "--energy", "horowitz_45nm", "--json", tmp_path / "o.json")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "runs[0].arch.components.local_memory.capacity_bytes" in res.stderr
    assert not (tmp_path / "o.json").exists()
