"""Shared fixtures: small traces written into tmp paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_TINY = REPO / "traces" / "tiny_synth_T4.h5"


def run_cli(*args, cwd=REPO, env=None):
    """Run ``python run_sim.py ARGS`` and return the CompletedProcess (text mode)."""
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, env=env or os.environ.copy())


@pytest.fixture
def tiny_trace(tmp_path) -> Path:
    from sim.trace.shapes import model_layers
    from sim.trace.synthetic import write_synthetic_trace

    layers, input_shape = model_layers("tiny", 4)
    path = tmp_path / "tiny.h5"
    write_synthetic_trace(path, layers, input_shape, model="tiny", T=4, n_samples=3, rate=0.2, seed=7)
    return path
