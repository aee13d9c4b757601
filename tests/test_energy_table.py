"""Energy-table loading: the shipped table is valid and cited; every malformed table is
rejected with a SpecError naming the file and the dotted field at fault."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sim.arch.energy import (ENERGY_DIR, EnergyTable, available_energy_tables, load_energy_table,
                             resolve_energy_table)
from sim.errors import SpecError

SHIPPED = ENERGY_DIR / "paper_v1_45nm.yaml"


def good_doc() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def write(tmp_path: Path, doc, name: str = "table.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def test_shipped_table_loads_by_bare_name_with_the_papers_constants():
    table = load_energy_table("paper_v1_45nm")
    assert isinstance(table, EnergyTable)
    assert table.name == "paper_v1_45nm" and table.technology_nm == 45
    assert table.energy_pj("onchip_access") == 20 and table.energy_pj("dram_access") == 2000
    assert table.entries["add"].bits == 8
    assert {"rho", "R", "N", "c_syn_pj"} <= set(table.paper_model)
    assert "paper_v1_45nm" in available_energy_tables()


def test_every_shipped_figure_cites_a_listed_source():
    for name in available_energy_tables():
        table = load_energy_table(name)
        cited = [e.source for e in table.entries.values()] + [m.source for m in table.paper_model.values()]
        assert cited and all(src in table.sources for src in cited), name


def test_bare_names_resolve_under_arch_specs_and_paths_stay_paths(tmp_path):
    assert resolve_energy_table("paper_v1_45nm") == SHIPPED
    assert resolve_energy_table(str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"
    copy_path = write(tmp_path, good_doc(), "copy.yaml")
    assert load_energy_table(copy_path).entries == load_energy_table("paper_v1_45nm").entries


def test_entries_are_an_open_vocabulary(tmp_path):
    doc = good_doc()
    doc["entries"]["noc_hop"] = {"energy_pj": 1.5, "bits": 32, "source": "yan2024v1"}
    assert load_energy_table(write(tmp_path, doc)).energy_pj("noc_hop") == 1.5


def test_asking_for_an_absent_entry_names_it():
    with pytest.raises(SpecError) as exc:
        load_energy_table("paper_v1_45nm").energy_pj("teleport")
    assert exc.value.field == "entries.teleport"


def _set(path: str, value):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


def _delete(path: str):
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]
    return mutate


# One malformed table per rule: (rule, mutation of the good document, field the error names).
BAD_TABLES = [
    ("unknown top-level key", _set("energy_per_op", {}), "energy_per_op"),
    ("missing top-level field", _delete("sources"), "sources"),
    ("wrong schema", _set("schema", "energy-table/9"), "schema"),
    ("empty name", _set("name", ""), "name"),
    ("non-positive technology", _set("technology_nm", 0), "technology_nm"),
    ("empty entries", _set("entries", {}), "entries"),
    ("entries not a mapping", _set("entries", [1, 2]), "entries"),
    ("unknown entry field", _set("entries.add.energy_nj", 3), "entries.add.energy_nj"),
    ("missing entry energy", _delete("entries.add.energy_pj"), "entries.add.energy_pj"),
    ("missing entry bits", _delete("entries.mul.bits"), "entries.mul.bits"),
    ("missing entry source", _delete("entries.mul.source"), "entries.mul.source"),
    ("negative energy", _set("entries.add.energy_pj", -0.03), "entries.add.energy_pj"),
    ("energy not a number", _set("entries.add.energy_pj", "0.03 pJ"), "entries.add.energy_pj"),
    ("energy is a bool", _set("entries.add.energy_pj", True), "entries.add.energy_pj"),
    ("fractional bits", _set("entries.add.bits", 7.5), "entries.add.bits"),
    ("zero bits", _set("entries.add.bits", 0), "entries.add.bits"),
    ("source not in sources", _set("entries.dram_access.source", "folklore"), "entries.dram_access.source"),
    ("entry not a mapping", _set("entries.add", 0.03), "entries.add"),
    ("bad entry name", _set("entries.8bit add", {"energy_pj": 1, "bits": 8, "source": "yan2024v1"}),
     "entries.8bit add"),
    ("empty note", _set("entries.add.note", ""), "entries.add.note"),
    ("sources text missing", _set("sources.horowitz2014", None), "sources.horowitz2014"),
    ("unknown model-constant field", _set("paper_model.rho.unit", "1"), "paper_model.rho.unit"),
    ("missing model-constant value", _delete("paper_model.N.value"), "paper_model.N.value"),
    ("model constant not finite", _set("paper_model.R.value", float("inf")), "paper_model.R.value"),
    ("model-constant source not in sources", _set("paper_model.rho.source", "x"), "paper_model.rho.source"),
]


@pytest.mark.parametrize("rule,mutate,field", BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_malformed_table_is_rejected_naming_the_field(tmp_path, rule, mutate, field):
    doc = copy.deepcopy(good_doc())
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(SpecError) as exc:
        load_energy_table(path)
    assert exc.value.field == field, rule
    assert exc.value.file == str(path)
    assert field in exc.value.one_line() and "\n" not in exc.value.one_line()


def test_missing_file_is_a_spec_error_naming_the_file(tmp_path):
    with pytest.raises(SpecError, match="not found") as exc:
        load_energy_table(tmp_path / "absent.yaml")
    assert exc.value.file == str(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match="paper_v1_45nm"):
        load_energy_table("no_such_table")  # the message lists the shipped tables


@pytest.mark.parametrize("text", ["entries: [unclosed\n", "a: b: c\n", "\x00\x01binary"])
def test_text_that_is_not_yaml_is_a_spec_error(tmp_path, text):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_energy_table(write(tmp_path, text))


def test_a_yaml_document_that_is_not_a_mapping_is_rejected(tmp_path):
    with pytest.raises(SpecError, match="expected a mapping"):
        load_energy_table(write(tmp_path, "- just\n- a list\n"))


def test_duplicate_keys_are_rejected_not_silently_overwritten(tmp_path):
    text = SHIPPED.read_text().replace("entries:", "entries:\n  add: {energy_pj: 9, bits: 8, source: horowitz2014}", 1)
    with pytest.raises(SpecError, match="duplicate key 'add'"):
        load_energy_table(write(tmp_path, text))


# --- a table that cannot price every architecture ---------------------------------------------
def test_replay_all_with_loihi_prices_the_neuromorphic_runs_and_names_what_the_others_lack(tmp_path):
    import json

    from conftest import run_cli

    out = tmp_path / "r.json"
    res = run_cli("replay", "traces/tiny_synth_T4.h5", "--arch", "all", "--energy", "loihi",
                  "--samples", "1", "--quiet", "--json", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    priced = {(r["arch"]["architecture"], r["mode"]) for r in doc["runs"] if r["energy_pj"] is not None}
    assert priced == {("neuromorphic", "snn"), ("neuromorphic", "ann")}
    assert set(doc["ratios"]) == {"neuromorphic"}
    for r in doc["runs"]:
        if r["arch"]["architecture"] == "neuromorphic":
            assert "unpriced" not in r and r["energy_pj"]["total"] > 0
            continue
        assert r["energy_pj"] is None and all(l["energy_pj"] is None for l in r["layers"])
        assert sum(r["counts"].values()) > 0 and r["totals"]["macs"] > 0  # the counts are still there
        missing = r["unpriced"]["missing_entries"]
        assert "sram_read" in missing and all(e not in load_energy_table("loihi").entries for e in missing)
        assert f"cannot price {r['arch']['name']}" in res.stderr
    assert "interconnect_transfer" in res.stderr  # spatial_dataflow's operand network


def test_a_table_that_prices_no_architecture_is_an_error_naming_the_missing_entries(tmp_path):
    from conftest import run_cli

    res = run_cli("replay", "traces/tiny_synth_T4.h5", "--arch", "memory_hierarchy", "--energy", "loihi",
                  "--samples", "1", "--quiet", "--json", str(tmp_path / "r.json"))
    assert res.returncode == 2
    assert "loihi" in res.stderr and "sram_read" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "r.json").exists()


def test_reprice_with_a_partial_table_keeps_the_counts_and_prices_what_it_can(tmp_path):
    import json

    from conftest import run_cli

    src, out = tmp_path / "r.json", tmp_path / "loihi.json"
    assert run_cli("replay", "traces/tiny_synth_T4.h5", "--arch", "all", "--samples", "1", "--quiet",
                   "--json", str(src)).returncode == 0
    res = run_cli("reprice", str(src), "--energy", "loihi", "--json", str(out))
    assert res.returncode == 0, res.stderr
    before, after = json.loads(src.read_text()), json.loads(out.read_text())
    for a, b in zip(before["runs"], after["runs"]):
        assert a["counts"] == b["counts"]
        assert (b["energy_pj"] is not None) == (b["arch"]["architecture"] == "neuromorphic")
