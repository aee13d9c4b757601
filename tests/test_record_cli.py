"""`train` and `record` commands, and that sim / --help / inspect never import torch."""

import json
import subprocess
import sys

import pytest

from conftest import BUNDLED_TINY, REPO, run_cli

HINT = "needs the torch extra: pip install -e '.[torch]'"


def run_python(code: str):
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)


def test_sim_help_and_inspect_do_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "import sim, sim.trace, sim.cli\n"
        "from sim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    assert main(['inspect', {str(BUNDLED_TINY)!r}]) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    res = run_python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [
    ["train", "--model", "digits_cnn", "--dataset", "digits", "--out", "x.pt"],
    ["record", "x.pt", "--samples", "2", "--out", "x.h5"],
])
def test_without_torch_train_and_record_print_the_hint_and_exit_2(argv):
    # sys.modules['torch'] = None makes "import torch" fail as if torch were not installed
    code = f"import sys; sys.modules['torch'] = None\nfrom sim.cli import main\nsys.exit(main({argv!r}))"
    res = run_python(code)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: {HINT}"]


@pytest.mark.torch
def test_train_then_record_on_digits(tmp_path):
    pytest.importorskip("torch")
    ck, trace, js = tmp_path / "d.pt", tmp_path / "d.h5", tmp_path / "d.json"
    res = run_cli("train", "--model", "digits_cnn", "--dataset", "digits", "--epochs", "1", "--lr", "3e-3",
                  "--batch-size", "32", "--threads", "1", "--no-progress", "--out", ck)
    assert res.returncode == 0, res.stderr
    assert "epoch 1:" in res.stderr and "spike rate" in res.stderr and ck.exists()
    res = run_cli("record", ck, "--samples", "10", "--eval-samples", "100", "--threads", "1",
                  "--no-progress", "--out", trace, "--json", js)
    assert res.returncode == 0, res.stderr
    assert "SNN" in res.stdout and "ANN twin" in res.stdout
    out = json.loads(js.read_text())
    assert out["recorded_samples"] == 10 and out["eval_samples"] == 100
    assert 0 <= out["snn_accuracy"] <= 1 and 0 < out["eval_spike_rate"] < 1
    res = run_cli("inspect", trace, "--json", "-")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["model"] == "digits_cnn" and info["samples"] == 10 and not info["synthetic"]


@pytest.mark.torch
def test_record_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = run_cli("record", bad, "--samples", "2", "--out", tmp_path / "x.h5")
    assert res.returncode == 2
    assert str(bad) in res.stderr and "checkpoint" in res.stderr
    assert not (tmp_path / "x.h5").exists()
