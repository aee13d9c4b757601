"""Energy-table loading: the shipped table is valid and cited; every malformed table is
rejected with a SpecError naming the file and the dotted field at fault."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sim.arch.components import COMPONENT_CLASSES
from sim.arch.energy import (ENERGY_DIR, MAX_ENERGY_PJ, EnergyTable, available_energy_tables, known_entries,
                             load_energy_table, resolve_energy_table)
from sim.arch.fields import MAX_CAPACITY_BYTES, MAX_WIDTH_BITS
from sim.errors import SpecError

from test_arch_spec import replay_bad

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


def test_an_entry_may_price_one_action_of_a_class_apart_from_its_class_rule(tmp_path):
    doc = good_doc()
    doc["entries"]["sram_weight_read"] = {"energy_pj": 1.5, "bits": 8, "source": "yan2024v1"}
    assert load_energy_table(write(tmp_path, doc)).energy_pj("sram_weight_read") == 1.5


@pytest.mark.parametrize("name,says", [("sram_weigth_read", "did you mean 'sram_weight_read'?"),
                                       ("teleport", "sram_read"),  # no close name: the rule entries are listed
                                       ("noc_hop", "did you mean 'noc_hop_"),
                                       ("sram_fire", "unknown entry"),  # an action sram never performs
                                       ("tape_read", "unknown entry")])  # no such class
def test_an_entry_no_pricing_rule_asks_for_is_rejected_not_ignored(tmp_path, name, says):
    doc = good_doc()
    doc["entries"][name] = {"energy_pj": 1.5, "bits": 8, "source": "yan2024v1"}
    path = write(tmp_path, doc)
    with pytest.raises(SpecError) as exc:
        load_energy_table(path)
    assert exc.value.field == f"entries.{name}" and exc.value.file == str(path)
    assert says in exc.value.message


def test_a_misspelt_entry_stops_the_replay_with_one_line(tmp_path):
    text = (ENERGY_DIR / "horowitz_45nm.yaml").read_text().replace(
        "  sram_read:", "  sram_weigth_read: {energy_pj: 1, bits: 8, source: horowitz2014}\n  sram_read:", 1)
    path = write(tmp_path, text)
    replay_bad(path, option="--energy", file=path, field="entries.sram_weigth_read",
               says="did you mean 'sram_weight_read'?")


def test_every_entry_a_closed_form_reads_is_a_known_entry():
    from sim.analytic.paper_v1 import _ENTRY_FOR

    assert set(_ENTRY_FOR.values()) <= set(known_entries())
    for name in available_energy_tables():
        assert set(load_energy_table(name).entries) <= set(known_entries()), name


# Mapping variants that between them reach every action each simulator can count.
VARIANTS = {
    "memory_hierarchy": [[], ["mapping.loop_order=time_major", "mapping.zero_skipping=false"],
                         ["mapping.snn_weight_tiling=true", "components.global_buffer.capacity_bytes=1024"],
                         ["components.global_buffer.capacity_bytes=256"]],
    "neuromorphic": [[], ["components.noc.width=1", "components.noc.height=1", "mapping.multicast=true"],
                     ["mapping.weight_sharing=false"]],  # explicit synapses: sparse_weight_read
    "spatial_dataflow": [[], ["mapping.per_hop=true", "mapping.on_overflow=fold", "mapping.delivery=multicast",
                              "components.pe_array.rows=1", "components.pe_array.cols=2"]],
    "systolic_array": [[], ["mapping.dataflow=os", "mapping.layer_io=on_chip", "mapping.skip_zero_rows=true",
                            "components.ofmap_buffer.capacity_bytes=64", "components.filter_buffer.capacity_bytes=64",
                            "components.ifmap_buffer.capacity_bytes=64"]],
}
#: Variants for the bundled trace with membrane/current addition: its currents cross a fold cut
#: through DRAM (spatial_dataflow's dram.current_read).
CURRENT_VARIANTS = {"spatial_dataflow": [["components.local_memory.capacity_bytes=256", "components.pe_array.rows=2",
                                          "components.pe_array.cols=3", "mapping.on_overflow=fold",
                                          "mapping.per_hop=true"]]}


def test_every_action_the_simulators_count_is_declared_by_its_component_class():
    """Replays the bundled traces (the tiny one with mapping variants too) in both modes:
    every counted ``component.action`` is in its class's ``performs``, and every declared
    action is counted somewhere, so the entries a table may hold are exactly those a replay
    can ask for."""
    from sim.arch.spec import load_arch_spec
    from sim.replay import count
    from sim.trace import open_trace

    counted: dict[str, set[str]] = {}
    for trace in sorted((ENERGY_DIR.parents[1] / "traces").glob("*.h5")):
        with open_trace(trace) as tr:
            for arch, variants in VARIANTS.items():
                extra = CURRENT_VARIANTS.get(arch, []) if trace.name == "tiny_resnet_current_T4.h5" else []
                for overrides in (variants if trace.name == "tiny_synth_T4.h5" else [[]]) + extra:
                    spec = load_arch_spec(arch, overrides)
                    for run in count(tr, [spec], ["snn", "ann"], 1, progress=False):
                        for key in run.result.ledger.totals():
                            comp, action = key.split(".", 1)
                            counted.setdefault(spec[comp].cls, set()).add(action)
    for name, cls in COMPONENT_CLASSES.items():
        assert counted.get(name, set()) <= set(cls.performs), (name, counted.get(name, set()) - set(cls.performs))
        assert set(cls.performs) <= counted.get(name, set()), (name, set(cls.performs) - counted.get(name, set()))


@pytest.mark.parametrize("table,conv,dense,sparse", [("loihi", 24.0, 35.5, 33.6), ("paper_v1_45nm", 20, 20, 20),
                                                      ("horowitz_45nm", None, None, None)])
def test_the_loihi_table_prices_each_synapse_kind_and_the_others_one_price(table, conv, dense, sparse):
    """A synaptic event's read by synapse kind (conv: shared kernels, dense: a linear layer's
    matrix, sparse: explicit synapses) costs SANA-FE's Loihi figure per kind; the paper and
    Horowitz tables price every kind as ``synapse_memory_read``."""
    from sim.report.pricing import action_energy_pj

    t = load_energy_table(table)
    one = [action_energy_pj(t, "synapse_memory", a, 8, 4096)
           for a in ("weight_read", "dense_weight_read", "sparse_weight_read")]
    if conv is None:  # one price: the class rule's synapse_memory_read (by capacity here)
        conv = dense = sparse = t.entries["synapse_memory_read"].energy_for(8, 4096)
    assert one == pytest.approx([conv, dense, sparse])
    kinds = {"synapse_memory_dense_weight_read", "synapse_memory_sparse_weight_read"}
    assert (kinds <= set(t.entries)) == (table == "loihi") and (kinds & set(t.entries)) in (kinds, set())


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


# --- numbers: finite, non-negative, bounded; no YAML the parser chokes on ----------------------
def horowitz_doc() -> dict:
    return yaml.safe_load((ENERGY_DIR / "horowitz_45nm.yaml").read_text())


HUGE = 10 ** 400  # an integer no float holds
BAD_NUMBERS = [
    ("energy near the float limit", _set("entries.add.energy_pj", 1e308), "entries.add.energy_pj"),
    ("energy over the bound", _set("entries.add.energy_pj", MAX_ENERGY_PJ * 10), "entries.add.energy_pj"),
    ("energy no float holds", _set("entries.add.energy_pj", HUGE), "entries.add.energy_pj"),
    ("infinite energy", _set("entries.add.energy_pj", float("inf")), "entries.add.energy_pj"),
    ("NaN energy", _set("entries.add.energy_pj", float("nan")), "entries.add.energy_pj"),
    ("bits over 4096", _set("entries.add.bits", MAX_WIDTH_BITS * 2), "entries.add.bits"),
    ("bits no float holds", _set("entries.add.bits", HUGE), "entries.add.bits"),
    ("boolean bits", _set("entries.add.bits", True), "entries.add.bits"),
    ("NaN technology", _set("technology_nm", float("nan")), "technology_nm"),
    ("infinite technology", _set("technology_nm", float("inf")), "technology_nm"),
    ("negative technology", _set("technology_nm", -45), "technology_nm"),
    ("boolean technology", _set("technology_nm", True), "technology_nm"),
    ("huge technology", _set("technology_nm", 1e9), "technology_nm"),
    ("by_capacity size over 2^40", lambda d: d["entries"]["sram_read"]["by_capacity"].append(
        {"capacity_bytes": MAX_CAPACITY_BYTES * 2, "energy_pj": 200}), "entries.sram_read.by_capacity[3].capacity_bytes"),
    ("by_capacity size no float holds", lambda d: d["entries"]["sram_read"]["by_capacity"].append(
        {"capacity_bytes": HUGE, "energy_pj": 200}), "entries.sram_read.by_capacity[3].capacity_bytes"),
    ("by_capacity infinite energy", lambda d: d["entries"]["sram_read"]["by_capacity"][0].update(
        energy_pj=float("inf")), "entries.sram_read.by_capacity[0].energy_pj"),
    ("by_capacity on a compute entry", _set("entries.add.by_capacity", [{"capacity_bytes": 8, "energy_pj": 1}]),
     "entries.add.by_capacity"),
    ("by_capacity on DRAM (no capacity)", _set("entries.dram_read.by_capacity", [{"capacity_bytes": 8, "energy_pj": 1}]),
     "entries.dram_read.by_capacity"),
]


@pytest.mark.parametrize("rule,mutate,field", BAD_NUMBERS, ids=[b[0] for b in BAD_NUMBERS])
def test_each_bad_number_stops_the_replay_with_one_line_naming_the_field(tmp_path, rule, mutate, field):
    doc = horowitz_doc()
    mutate(doc)
    path = write(tmp_path, doc)
    line = replay_bad(path, option="--energy", file=path, field=field)
    assert len(line) < 400  # a huge value is summarised, not printed digit by digit


def test_a_model_constant_out_of_range_is_rejected(tmp_path):
    doc = good_doc()
    doc["paper_model"]["R"]["value"] = 1e300
    path = write(tmp_path, doc)
    with pytest.raises(SpecError) as exc:
        load_energy_table(path)
    assert exc.value.field == "paper_model.R.value"


def test_yaml_the_parser_cannot_read_is_one_line(tmp_path):
    path = write(tmp_path, "entries: " + "[" * 1000 + "]" * 1000 + "\n")
    replay_bad(path, option="--energy", file=path, field="", says="nested too deeply")
    text = SHIPPED.read_text().replace("technology_nm: 45", "technology_nm: 4" + "5" * 5000)
    path = write(tmp_path, text)
    replay_bad(path, option="--energy", file=path, field="", says="too long")


def test_a_directory_given_as_energy_table_says_so_and_lists_the_shipped_tables(tmp_path):
    line = replay_bad("arch_specs/energy", option="--energy", file="arch_specs/energy", field="",
                      says="is a directory, expected an energy table YAML file")
    assert "paper_v1_45nm" in line and "not found" not in line


@pytest.mark.parametrize("path", ["entries.noc_packet.energy_pj", "technology_nm", "sources.horowitz2014"])
def test_a_yaml_alias_bomb_in_a_table_is_refused_in_a_line_not_expanded(tmp_path, path):
    from test_arch_spec import _alias_bomb

    doc = horowitz_doc()
    _set(path, "BOMB")(doc)
    table = write(tmp_path, doc)
    table.write_text(table.read_text().replace("BOMB", _alias_bomb()))
    replay_bad(table, option="--energy", file=table, field="", says="expand to more than", timeout=60)


def test_a_misspelled_paper_model_constant_is_an_error(tmp_path):
    from sim.analytic import paper_v1
    from sim.arch.energy import PAPER_MODEL_CONSTANTS, parse_energy_table

    assert set(paper_v1._CONSTANT_FOR.values()) == set(PAPER_MODEL_CONSTANTS)
    doc = yaml.safe_load((ENERGY_DIR / "paper_v1_45nm.yaml").read_text())
    doc["paper_model"]["RR"] = doc["paper_model"].pop("R")
    with pytest.raises(SpecError) as err:
        parse_energy_table(doc, tmp_path / "t.yaml")
    assert err.value.field == "paper_model.RR" and "'R'" in str(err.value)
