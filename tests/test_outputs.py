"""Outputs are checked before any computation and written all or nothing (docs/outputs.md)."""

from __future__ import annotations

import json
import os
import time

import pytest

from sim.errors import ParameterError
from sim.report.output import Outputs, check_destination, check_directory

from conftest import REPO, run_cli

TINY = REPO / "traces" / "tiny_synth_T4.h5"


def _one_line_exit_2(res, *needles):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _files(d):
    return sorted(p.name for p in d.iterdir())


# --- the rules, unit by unit -----------------------------------------------------------------
def test_a_destination_under_a_missing_directory_is_refused_and_nothing_is_created(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        check_destination("--json", str(tmp_path / "no" / "r.json"))
    assert _files(tmp_path) == []


def test_a_directory_is_not_a_file_destination(tmp_path):
    with pytest.raises(ParameterError, match="is a directory"):
        check_destination("--json", str(tmp_path))


def test_a_plot_must_be_png(tmp_path):
    with pytest.raises(ParameterError, match=r"\.png"):
        check_destination("--plot", str(tmp_path / "x.jpg"), suffix=".png")


def test_an_unwritable_directory_is_refused(tmp_path):
    if os.geteuid() == 0:
        with pytest.raises(ParameterError):
            check_destination("--json", "/proc/x.json")  # not writable even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ParameterError, match="not writable"):
            check_destination("--json", str(ro / "x.json"))


def test_an_output_directory_may_be_new_but_its_parent_must_exist(tmp_path):
    assert check_directory("--out", str(tmp_path / "new")) == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # created only when the outputs are committed
    with pytest.raises(ParameterError, match="does not exist"):
        check_directory("--out", str(tmp_path / "a" / "b"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(ParameterError, match="not a directory"):
        check_directory("--out", str(tmp_path / "f"))


def test_outputs_are_renamed_together_only_when_everything_was_written(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.csv"
    a.write_text("old")
    with pytest.raises(RuntimeError):
        with Outputs() as out:
            out.json(out.file("--json", str(a)), {"x": 1})
            out.csv(out.file("--csv", str(b)), [{"k": 1}])
            raise RuntimeError("late failure")
    assert a.read_text() == "old" and not b.exists()
    assert _files(tmp_path) == ["a.json"]  # no temporaries left
    with Outputs() as out:
        out.json(out.file("--json", str(a)), {"x": 1})
        out.csv(out.file("--csv", str(b)), [{"k": 1}])
    assert json.loads(a.read_text()) == {"x": 1} and b.read_text() == "k\n1\n"
    assert _files(tmp_path) == ["a.json", "b.csv"]


def test_an_interrupt_leaves_no_output_and_no_temporary(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with Outputs() as out:
            d = out.directory("--plot", str(tmp_path / "figs"))
            out.text(out.temp(d / "x.png"), "partial")
            raise KeyboardInterrupt
    assert _files(tmp_path) == []


# --- through the CLI -------------------------------------------------------------------------
@pytest.mark.parametrize("option,value,needle", [
    ("--json", "/proc/x.json", "--json"),
    ("--csv", "{tmp}", "is a directory"),
    ("--plot", "{tmp}/out.jpg", ".png"),
    ("--json", "{tmp}/missing/r.json", "does not exist"),
])
def test_replay_refuses_a_bad_destination_before_reading_the_trace(tmp_path, option, value, needle):
    t0 = time.perf_counter()
    res = run_cli("replay", TINY, "--arch", "all", option, value.format(tmp=tmp_path))
    _one_line_exit_2(res, option, needle)
    assert "E_SNN" not in res.stdout  # nothing was replayed
    assert _files(tmp_path) == []     # out.jpg is not created as a directory either
    assert time.perf_counter() - t0 < 60


def test_several_outputs_are_all_or_nothing(tmp_path):
    (tmp_path / "o").mkdir()
    res = run_cli("replay", TINY, "--arch", "memory_hierarchy", "--samples", "1", "--json", tmp_path / "o" / "r.json",
                  "--csv", tmp_path / "o" / "r.csv", "--plot", "/proc/x.png")
    _one_line_exit_2(res, "--plot")
    assert _files(tmp_path / "o") == []


def test_a_failure_discovered_after_the_replay_writes_nothing(tmp_path):
    # the Loihi table prices no memory_hierarchy action: found only after counting
    res = run_cli("replay", TINY, "--arch", "memory_hierarchy", "--samples", "1", "--energy", "loihi",
                  "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv", "--plot", tmp_path / "figs")
    _one_line_exit_2(res, "loihi")
    assert _files(tmp_path) == []


def test_plot_directory_is_created_and_holds_every_figure(tmp_path):
    res = run_cli("replay", TINY, "--arch", "all", "--samples", "1", "--quiet", "--plot", tmp_path / "figs",
                  "--json", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    figs = _files(tmp_path / "figs")
    assert "energy_breakdown.png" in figs
    assert {"neuromorphic_snn_link_load.png", "neuromorphic_ann_hops.png"} <= set(figs)
    assert not [f for f in figs if f.endswith(".tmp")]
    assert (tmp_path / "figs" / "energy_breakdown.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cmd", [
    ["validate", str(TINY), "--arch", "memory_hierarchy", "--samples", "1"],
    ["formulas", "--T", "4-6"],
    ["breakeven", "--T", "2", "--model", "tiny", "--arch", "neuromorphic"],
])
def test_other_commands_check_their_outputs_first(tmp_path, cmd):
    res = run_cli(*cmd, "--json", tmp_path / "j.json", "--plot", tmp_path / "p.jpg")
    _one_line_exit_2(res, "--plot")
    res = run_cli(*cmd, "--json", tmp_path / "no" / "j.json")
    _one_line_exit_2(res, "--json", "does not exist")
    assert _files(tmp_path) == []


def test_train_checks_its_checkpoint_path_before_training(tmp_path):
    res = run_cli("train", "--model", "digits_cnn", "--dataset", "digits", "--out", tmp_path / "no" / "c.pt")
    _one_line_exit_2(res, "--out", "does not exist")
    res = run_cli("train", "--model", "digits_cnn", "--dataset", "digits", "--out", tmp_path / "c.ckpt")
    _one_line_exit_2(res, "--out", ".pt")
    assert _files(tmp_path) == []


def test_a_name_too_long_is_one_line_before_any_work(tmp_path):
    res = run_cli("replay", TINY, "--json", tmp_path / ("a" * 300 + ".json"))
    _one_line_exit_2(res, "--json", "too long")


@pytest.mark.parametrize("args,needle", [
    (["validate", str(TINY), "--samples", ""], "--samples"),
    (["replay", str(TINY), "--mode", "spiking"], "--mode"),
    (["no-such-command"], "invalid choice"),
    ([], "COMMAND"),
])
def test_usage_errors_are_one_line_too(args, needle):
    _one_line_exit_2(run_cli(*args), needle, "--help")


def test_a_device_is_written_into_never_replaced(tmp_path):
    dev = tmp_path / "null"
    os.mkfifo(dev)  # a special file anyone may make: renaming onto it would replace it
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(open(dev, "rb").read()))
    reader.start()
    res = run_cli("replay", TINY, "--samples", "1", "--quiet", "--json", dev)
    reader.join(timeout=60)
    assert res.returncode == 0, res.stderr
    import stat

    assert stat.S_ISFIFO(os.stat(dev).st_mode)  # still the FIFO, not a regular file
    assert json.loads(got[0])["schema"] == "snn-energy-report/2"
    assert _files(tmp_path) == ["null"]  # no temporary left beside it


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_device_that_refuses_the_bytes_is_one_line_and_nothing_else_is_written(tmp_path):
    res = run_cli("replay", TINY, "--samples", "1", "--quiet", "--json", "/dev/full", "--csv", tmp_path / "r.csv")
    _one_line_exit_2(res, "/dev/full")
    assert _files(tmp_path) == []
    assert not os.path.isfile("/dev/full")
