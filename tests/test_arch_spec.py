"""Arch specs: one invalid spec per rule gives SpecError naming the file and field; CLI exit 2."""

from __future__ import annotations

import json

import pytest
import yaml

from sim.arch.spec import SPEC_DIR, load_arch_spec
from sim.errors import SpecError

from conftest import BUNDLED_TINY, run_cli

BASE = yaml.safe_load((SPEC_DIR / "memory_hierarchy.yaml").read_text())


def _write(tmp_path, mutate):
    doc = json.loads(json.dumps(BASE))
    mutate(doc)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _del(*keys):
    def m(doc):
        node = doc
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return m


def _set(value, *keys):
    def m(doc):
        node = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return m


RULES = [
    ("unknown-top-key", _set(1, "frequency"), "frequency"),
    ("unknown-component-key", _set(3, "components", "global_buffer", "colour"), "components.global_buffer.colour"),
    ("unknown-mapping-key", _set(True, "mapping", "prefetch"), "mapping.prefetch"),
    ("missing-field", _del("components", "dram", "latency_cycles"), "components.dram.latency_cycles"),
    ("missing-component", _del("components", "register_file"), "components.register_file"),
    ("zero-size", _set(0, "components", "global_buffer", "capacity_bytes"), "components.global_buffer.capacity_bytes"),
    ("negative-size", _set(-4, "components", "pe_array", "rows"), "components.pe_array.rows"),
    ("wrong-type", _set("big", "components", "global_buffer", "banks"), "components.global_buffer.banks"),
    ("bad-choice", _set("random", "mapping", "loop_order"), "mapping.loop_order"),
    ("bad-bool", _set("yes please", "mapping", "zero_skipping"), "mapping.zero_skipping"),
    ("narrow-memory", _set(16, "components", "global_buffer", "width_bits"), "components.global_buffer.width_bits"),
    ("partial-words", _set(1001, "components", "global_buffer", "capacity_bytes"), "components.global_buffer.capacity_bytes"),
    ("wrong-class", _set("sram", "components", "dram", "class"), "components.dram"),
    ("unknown-class", _set("tape", "components", "dram", "class"), "components.dram.class"),
    ("unknown-architecture", _set("quantum", "architecture"), "architecture"),
    ("schema", _set("arch-spec/9", "schema"), "schema"),
    ("clock", _set(0, "clock_mhz"), "clock_mhz"),
]


@pytest.mark.parametrize("rule,mutate,field", RULES, ids=[r[0] for r in RULES])
def test_each_invalid_spec_names_file_and_field(tmp_path, rule, mutate, field):
    path = _write(tmp_path, mutate)
    with pytest.raises(SpecError) as err:
        load_arch_spec(path)
    assert str(path) in str(err.value) and field in str(err.value), str(err.value)


def test_overrides_are_validated_and_must_exist():
    spec = load_arch_spec("memory_hierarchy", ["components.global_buffer.capacity_bytes=4096",
                                               "mapping.zero_skipping=false"])
    assert spec["global_buffer"].capacity_bytes == 4096 and spec.mapping["zero_skipping"] is False
    with pytest.raises(SpecError, match="no such field"):
        load_arch_spec("memory_hierarchy", ["components.global_buffer.size=4"])
    with pytest.raises(SpecError, match="capacity_bytes"):
        load_arch_spec("memory_hierarchy", ["components.global_buffer.capacity_bytes=-1"])
    with pytest.raises(SpecError, match="section"):
        load_arch_spec("memory_hierarchy", ["components.dram=3"])


def test_cli_exit_2_for_bad_spec_and_table(tmp_path):
    bad = _write(tmp_path, _set(0, "components", "pe_array", "cols"))
    res = run_cli("replay", BUNDLED_TINY, "--arch", bad, "--quiet")
    assert res.returncode == 2 and "components.pe_array.cols" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli("replay", BUNDLED_TINY, "--set", "mapping.nope=1", "--quiet")
    assert res.returncode == 2 and "mapping.nope" in res.stderr
    res = run_cli("replay", BUNDLED_TINY, "--energy", "no_such_table", "--quiet")
    assert res.returncode == 2 and "not found" in res.stderr
    out = tmp_path / "r.json"
    res = run_cli("replay", BUNDLED_TINY, "--samples", "99", "--json", out)
    assert res.returncode == 2 and "--samples" in res.stderr and not out.exists()
