"""The CLI: --help for each command, inspect's JSON, exit codes, no torch on the replay side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.cli import COMMAND_MODULES

from conftest import BUNDLED_TINY, REPO, run_cli


def _commands():
    import importlib
    import argparse

    names = []
    for mod in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(mod).add_parser(sub)
        names += list(sub.choices)
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command):
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout


def test_inspect_json_has_one_row_per_layer():
    res = run_cli("inspect", BUNDLED_TINY, "--json", "-")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["T"] == 4 and info["samples"] == 8 and info["synthetic"] is True
    assert [r["name"] for r in info["layers"]] == ["conv1", "conv2", "pool1", "flatten", "fc1", "fc2"]
    conv2 = info["layers"][1]
    assert conv2["fan_in"] == 4 * 3 * 3 and conv2["output_shape"] == [8, 8, 8]
    assert 0.0 < conv2["spike_rate"] < 1.0
    # the paper's rate leaves out layer 1's output
    assert info["network_spike_rate_layers"] == ["conv2", "pool1", "fc1"]
    rows = {r["name"]: r for r in info["layers"]}
    spikes = sum(rows[n]["spike_count"] for n in info["network_spike_rate_layers"])
    slots = sum(rows[n]["neurons"] for n in info["network_spike_rate_layers"]) * 4 * 8
    assert info["network_spike_rate"] == pytest.approx(spikes / slots)


def test_inspect_table_and_json_file(tmp_path):
    out = tmp_path / "info.json"
    res = run_cli("inspect", BUNDLED_TINY, "--json", out)
    assert res.returncode == 0
    assert "network spike rate" in res.stdout and "conv2" in res.stdout
    assert json.loads(out.read_text())["model"] == "tiny"


def test_bad_parameters_exit_2(tmp_path):
    assert run_cli("inspect", BUNDLED_TINY, "--samples", "99").returncode == 2
    res = run_cli("synth", "--model", "tiny", "--T", "4", "--rate", "1.5", "--out", tmp_path / "x.h5")
    assert res.returncode == 2 and "--rate" in res.stderr
    assert not (tmp_path / "x.h5").exists()
    res = run_cli("synth", "--model", "tiny", "--T", "4", "--rate", "conv9=0.1", "--out", tmp_path / "x.h5")
    assert res.returncode == 2 and "conv9" in res.stderr


def test_synth_per_layer_rates(tmp_path):
    out = tmp_path / "s.h5"
    res = run_cli("synth", "--model", "tiny", "--T", "6", "--rate", "conv1=0.0,default=0.3",
                  "--samples", "6", "--out", out)
    assert res.returncode == 0, res.stderr
    info = json.loads(run_cli("inspect", out, "--json", "-").stdout)
    rows = {r["name"]: r for r in info["layers"]}
    assert rows["conv1"]["spike_count"] == 0
    assert rows["conv2"]["spike_rate"] == pytest.approx(0.3, abs=0.03)


def test_replay_side_never_imports_torch():
    code = ("import sys; from sim.cli import main; main(['inspect', %r]); "
            "import sim.trace, sim.trace.synthetic; "
            "assert 'torch' not in sys.modules, 'torch was imported'" % str(BUNDLED_TINY))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
