"""Arch specs: one invalid spec per rule gives SpecError naming the file and field; CLI exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from sim.arch.fields import MAX_CAPACITY_BYTES, MAX_MESH_SIDE, MAX_WIDTH_BITS
from sim.arch.spec import SPEC_DIR, load_arch_spec, parse_value
from sim.errors import SpecError

from conftest import BUNDLED_TINY, REPO, run_cli


def run_cli_bounded(*args, timeout: float = 120):
    """``conftest.run_cli`` with a deadline, so a hang fails the test instead of stalling it."""
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def assert_bad_input(*args, file, field: str, says: str = "", out: Path | None = None,
                     timeout: float = 120) -> str:
    """Run the CLI on bad input: exit 2, one line on stderr naming ``file`` and ``field`` (and
    ``says``), no traceback, and ``out`` (the --json file) not written. Returns the line."""
    res = run_cli_bounded(*args, timeout=timeout)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and len(lines) == 1, res.stderr[-2000:]
    assert str(file) in lines[0] and field in lines[0] and says in lines[0], lines[0]
    assert out is None or not Path(out).exists()
    return lines[0]


def replay_bad(spec_or_table, *extra, option: str = "--arch", **expect) -> str:
    """``replay`` the tiny trace, one sample, with a bad spec (or ``option="--energy"``)."""
    out = Path(tempfile.mkdtemp()) / "never.json"
    return assert_bad_input("replay", BUNDLED_TINY, "--samples", "1", "--quiet", option, spec_or_table,
                            *extra, "--json", out, out=out, **expect)

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


# --- did you mean: unknown keys and --set paths name the nearest known one --------------------
TYPOS = [
    ("top", lambda d: d.update(clock_mhs=d.pop("clock_mhz")), "clock_mhs", "did you mean 'clock_mhz'"),
    ("data", lambda d: d["data"].update(weight_bit=d["data"].pop("weight_bits")), "data.weight_bit",
     "did you mean 'weight_bits'"),
    ("component", lambda d: d["components"].update(global_bufer=d["components"].pop("global_buffer")),
     "components.global_bufer", "did you mean 'global_buffer'"),
    ("component field", lambda d: d["components"]["global_buffer"].update(
        capacity_byte=d["components"]["global_buffer"].pop("capacity_bytes")),
     "components.global_buffer.capacity_byte", "did you mean 'capacity_bytes'"),
    ("mapping", lambda d: d["mapping"].update(zero_skiping=d["mapping"].pop("zero_skipping")),
     "mapping.zero_skiping", "did you mean 'zero_skipping'"),
    ("class", lambda d: d["components"]["dram"].update({"class": "dramm"}), "components.dram.class",
     "did you mean 'dram'"),
    ("architecture", _set("memory_hierachy", "architecture"), "architecture", "did you mean 'memory_hierarchy'"),
    ("choice", _set("layer_majr", "mapping", "loop_order"), "mapping.loop_order", "did you mean 'layer_major'"),
]


@pytest.mark.parametrize("rule,mutate,field,says", TYPOS, ids=[t[0] for t in TYPOS])
def test_a_misspelt_key_is_one_line_naming_the_nearest_known_key(tmp_path, rule, mutate, field, says):
    path = _write(tmp_path, mutate)
    replay_bad(path, file=path, field=field, says=says)


def test_a_set_path_that_does_not_exist_names_the_nearest_field(tmp_path):
    spec = SPEC_DIR / "memory_hierarchy.yaml"
    replay_bad("memory_hierarchy", "--set", "components.global_buffer.capacity_byte=4", file=spec,
               field="--set components.global_buffer.capacity_byte", says="did you mean 'capacity_bytes'")
    replay_bad("memory_hierarchy", "--set", "mapping.zero_skiping=true", file=spec,
               field="--set mapping.zero_skiping", says="did you mean 'zero_skipping'")


# --- numbers: every field in range, finite, not a boolean ---------------------------------------
HUGE = 10 ** 400  # an integer no float holds
BOUNDS = [
    ("capacity over 2^40", _set(MAX_CAPACITY_BYTES * 2, "components", "global_buffer", "capacity_bytes"),
     "components.global_buffer.capacity_bytes"),
    ("width over 4096 bits", _set(MAX_WIDTH_BITS * 2, "components", "global_buffer", "width_bits"),
     "components.global_buffer.width_bits"),
    ("data width over 4096 bits", _set(MAX_WIDTH_BITS + 8, "data", "psum_bits"), "data.psum_bits"),
    ("PE array side over 1024", _set(MAX_MESH_SIDE * 4, "components", "pe_array", "rows"), "components.pe_array.rows"),
    ("ports", _set(10 ** 6, "components", "global_buffer", "ports"), "components.global_buffer.ports"),
    ("latency", _set(2 ** 40, "components", "dram", "latency_cycles"), "components.dram.latency_cycles"),
    ("bandwidth", _set(2 ** 40, "components", "dram", "bandwidth_bits_per_cycle"),
     "components.dram.bandwidth_bits_per_cycle"),
    ("integer no float holds", _set(HUGE, "components", "register_file", "capacity_bytes"),
     "components.register_file.capacity_bytes"),
    ("boolean size", _set(True, "components", "global_buffer", "capacity_bytes"), "components.global_buffer.capacity_bytes"),
    ("boolean clock", _set(True, "clock_mhz"), "clock_mhz"),
    ("infinite clock", _set(float("inf"), "clock_mhz"), "clock_mhz"),
    ("NaN clock", _set(float("nan"), "clock_mhz"), "clock_mhz"),
    ("clock no float holds", _set(HUGE, "clock_mhz"), "clock_mhz"),
    ("clock over 100 GHz", _set(1e6, "clock_mhz"), "clock_mhz"),
    ("class given as a mapping", _set({"a": 1}, "components", "dram", "class"), "components.dram.class"),
    ("architecture given as a list", _set(["x"], "architecture"), "architecture"),
    ("component given as a list", _set([1, 2], "components", "dram"), "components.dram"),
]


@pytest.mark.parametrize("rule,mutate,field", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_each_out_of_range_number_is_one_line_naming_the_field(tmp_path, rule, mutate, field):
    path = _write(tmp_path, mutate)
    line = replay_bad(path, file=path, field=field)
    assert len(line) < 400  # a huge value is summarised, not printed digit by digit


def test_an_unbounded_mesh_is_refused_before_anything_is_allocated():
    spec = SPEC_DIR / "neuromorphic.yaml"
    t0 = time.monotonic()
    replay_bad("neuromorphic", "--set", "components.noc.height=1048576", file=spec,
               field="components.noc.height", says="1,024", timeout=60)
    replay_bad("neuromorphic", "--set", "components.noc.width=2048", file=spec, field="components.noc.width",
               timeout=60)
    replay_bad("neuromorphic", "--set", "mapping.io_x=5000", file=spec, field="mapping.io_x", timeout=60)
    assert time.monotonic() - t0 < 60  # refused up front, not after building a 16M-node mesh


def test_the_largest_mesh_allowed_validates():
    spec = load_arch_spec("neuromorphic", [f"components.noc.width={MAX_MESH_SIDE}",
                                           f"components.noc.height={MAX_MESH_SIDE}"])
    assert spec["noc"].width * spec["noc"].height == MAX_MESH_SIDE ** 2


# --- YAML that the parser cannot turn into a document -------------------------------------------
def _text(tmp_path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_yaml_nested_a_thousand_deep_is_one_line(tmp_path):
    path = _text(tmp_path, "schema: " + "[" * 1000 + "]" * 1000 + "\n")
    replay_bad(path, file=path, field="", says="nested too deeply")
    path = _text(tmp_path, "".join(f"{'  ' * i}k{i}:\n" for i in range(1000)) + "  " * 1000 + "x: 1\n")
    replay_bad(path, file=path, field="", says="not valid YAML")


def test_an_integer_over_4300_digits_is_one_line(tmp_path):
    text = (SPEC_DIR / "memory_hierarchy.yaml").read_text().replace("clock_mhz: 1000", "clock_mhz: 1" + "0" * 5000)
    path = _text(tmp_path, text)
    line = replay_bad(path, file=path, field="", says="too long")
    assert len(line) < 400


def test_a_leading_zero_integer_is_refused_as_ambiguous_never_read_as_octal(tmp_path):
    assert parse_value("010") == "010" and parse_value("-007") == "-007" and parse_value("1:30") == "1:30"
    assert parse_value("0x10") == 16 and parse_value("1_000") == 1000 and parse_value("0") == 0
    spec = SPEC_DIR / "memory_hierarchy.yaml"
    replay_bad("memory_hierarchy", "--set", "components.dram.latency_cycles=010", file=spec,
               field="components.dram.latency_cycles", says="write 10 for decimal")
    text = spec.read_text().replace("latency_cycles: 100", "latency_cycles: 0100")
    path = _text(tmp_path, text)
    replay_bad(path, file=path, field="components.dram.latency_cycles", says="write 100 for decimal")


# --- a directory where a file is expected --------------------------------------------------------
def test_a_directory_given_as_arch_spec_says_so_and_lists_the_shipped_specs():
    line = assert_bad_input("replay", BUNDLED_TINY, "--samples", "1", "--arch", "arch_specs", file="arch_specs",
                            field="", says="is a directory, expected an arch spec YAML file")
    assert "memory_hierarchy" in line and "not found" not in line


def _alias_bomb(levels: int = 9) -> str:
    """A YAML flow list whose aliases expand to 10^levels items ("billion laughs")."""
    lists = ["&l0 [x,x,x,x,x,x,x,x,x,x]"] + [f"&l{i} [{','.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return f"[{', '.join(lists)}]"


@pytest.mark.parametrize("keys", [("components", "pe_array", "rows"), ("description",), ("mapping", "loop_order"),
                                  ("data", "psum_bits")], ids=".".join)
def test_a_yaml_alias_bomb_is_refused_in_a_line_not_expanded(tmp_path, keys):
    path = _write(tmp_path, _set("BOMB", *keys))
    path.write_text(path.read_text().replace("BOMB", _alias_bomb()))
    replay_bad(path, file=path, field="", says="expand to more than", timeout=60)


def test_a_node_that_contains_itself_is_refused(tmp_path):
    text = (SPEC_DIR / "memory_hierarchy.yaml").read_text().replace("clock_mhz: 1000", "clock_mhz: &c [1, *c]")
    path = _text(tmp_path, text)
    replay_bad(path, file=path, field="", says="contains itself", timeout=60)


def test_an_alias_bomb_in_a_set_value_stays_text_and_is_rejected_by_its_field():
    spec = SPEC_DIR / "neuromorphic.yaml"
    replay_bad("neuromorphic", "--set", f"components.noc.height={_alias_bomb(7)}", file=spec,
               field="components.noc.height", says="expected an integer", timeout=60)
