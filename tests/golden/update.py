"""Rewrite the golden reports (tests/golden/*.json) from the current code.

Run it only when a change is meant to move a count, and say why in the same commit:

    .venv/bin/python tests/golden/update.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

#: name -> the CLI arguments that make it (the output path is appended as --json).
GOLDEN = {
    # the spec's own mappings (counts of the shipped specs), and the mapper's choice on digits
    "tiny_synth_T4.replay": ["replay", "traces/tiny_synth_T4.h5", "--arch", "all", "--mode", "both", "--map", "spec"],
    "tiny_synth_T4.validate_ideal": ["validate", "traces/tiny_synth_T4.h5", "--arch", "all", "--ideal"],
    "digits_snn_T6.replay": ["replay", "traces/digits_snn_T6.h5", "--arch", "all", "--mode", "both", "--map", "spec"],
    "digits_snn_T6.replay_best": ["replay", "traces/digits_snn_T6.h5", "--arch", "all", "--mode", "both",
                                  "--map", "best"],
    "digits_snn_T6.validate_ideal": ["validate", "traces/digits_snn_T6.h5", "--arch", "all", "--ideal"],
}


def produce(name: str, out: Path) -> None:
    """Run the golden command ``name`` from the repository root, writing its JSON to ``out``."""
    import os

    from sim.cli import main

    cwd = os.getcwd()
    os.chdir(ROOT)  # trace paths in the documents stay relative, as committed
    try:
        rc = main([*GOLDEN[name], "--quiet", "--json", str(out)])
    finally:
        os.chdir(cwd)
    if rc != 0:
        raise SystemExit(f"{name}: exit status {rc}")


if __name__ == "__main__":
    for name in GOLDEN:
        produce(name, ROOT / "tests" / "golden" / f"{name}.json")
        print(f"wrote tests/golden/{name}.json", file=sys.stderr)
