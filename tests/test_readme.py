"""The README's Quick start is exactly two commands, and CI runs exactly those."""

from __future__ import annotations

import re

from conftest import REPO


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_two_commands_and_ci_runs_them():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert cmds[0] in ci and cmds[1] in ci
    assert ci.index(cmds[0]) < ci.index(cmds[1])


def test_quick_start_trace_is_bundled():
    first = quick_start_commands()[0]
    trace = re.search(r"(traces/\S+\.h5)", first).group(1)
    assert (REPO / trace).is_file()
