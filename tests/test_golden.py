"""Golden reports: the JSON of small replays and validations, committed, must be reproduced.

Counts are integers and are compared exactly; energies are floats summed in an order a
refactoring may change, so they agree to 1e-12 relative. The ``runs`` of a document are
matched by (architecture, mode): their order is presentation (the registry's order), not a
count; dictionary key order is ignored likewise. A change that moves a count updates
the golden files (``tests/golden/update.py``) in the same commit and says why.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN_DIR))
from update import GOLDEN, produce  # noqa: E402


def differences(want, got, where="$") -> list[str]:
    """Every place where ``got`` differs from ``want``: ints and strings exactly, floats to
    1e-12 relative, keys and list lengths exactly."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in want if k not in got]
        out += [f"{where}.{k}: unexpected" for k in got if k not in want]
        for k in want:
            if k in got:
                out += differences(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if where.endswith(".runs"):
            want, got = sorted(want, key=_run_key), sorted(got, key=_run_key)
        if len(want) != len(got):
            return [f"{where}: length {len(got)}, expected {len(want)}"]
        return [d for i, (a, b) in enumerate(zip(want, got)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(want, float) or isinstance(got, float):
        if isinstance(want, (int, float)) and isinstance(got, (int, float)) and \
                not isinstance(want, bool) and not isinstance(got, bool) and \
                math.isclose(want, got, rel_tol=1e-12, abs_tol=1e-9):
            return []
        return [f"{where}: {got!r}, expected {want!r}"]
    if type(want) is not type(got) or want != got:
        return [f"{where}: {got!r}, expected {want!r}"]
    return []


def _run_key(run: dict) -> tuple[str, str]:
    arch = run["arch"]["name"] if isinstance(run["arch"], dict) else run["arch"]
    return arch, run["mode"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_report_is_reproduced(name, tmp_path):
    out = tmp_path / f"{name}.json"
    produce(name, out)
    want = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    got = json.loads(out.read_text())
    diffs = differences(want, got)
    assert not diffs, f"{len(diffs)} differences from tests/golden/{name}.json, first: " + "; ".join(diffs[:8])


def test_differences_sees_a_moved_count_and_ignores_float_noise():
    want = {"counts": {"dram.weight_read": 10}, "energy_pj": 1.0}
    assert differences(want, {"counts": {"dram.weight_read": 10}, "energy_pj": 1.0 + 1e-15}) == []
    assert differences(want, {"counts": {"dram.weight_read": 11}, "energy_pj": 1.0})
    assert differences(want, {"counts": {"dram.weight_read": 10}, "energy_pj": 1.001})
    assert differences(want, {"counts": {}, "energy_pj": 1.0})


def test_differences_matches_runs_by_architecture_and_mode_not_by_position():
    a = {"arch": "a", "mode": "snn", "cycles": 1}
    b = {"arch": "b", "mode": "snn", "cycles": 2}
    assert differences({"runs": [a, b]}, {"runs": [b, a]}) == []
    assert differences({"runs": [a, b]}, {"runs": [b, {**a, "cycles": 3}]})
