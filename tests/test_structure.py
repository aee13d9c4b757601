"""The shape of the package: stages import only downward, one list of architectures, numpy-only
mapping policies and closed forms (docs/extending.md, /shared/design.md "Layout")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from sim.arch.registry import ARCH_KINDS, CAUSES

REPO = Path(__file__).resolve().parents[1]
SIM = REPO / "sim"

#: The stages in the order data flows: a module may import its own stage and earlier ones.
STAGES = ["errors", "trace", "arch", "mapping", "kernels", "workload", "engine", "architectures",
          "report", "analytic", "replay", "validation", "studies", "plots", "record", "cli"]


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # ``sim`` itself (its version) is below everything


def _modules():
    for path in sorted(SIM.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path, ast.parse(path.read_text())


def _imports(tree: ast.AST):
    """``sim`` modules imported anywhere in ``tree`` (function-local too), except under
    ``if TYPE_CHECKING:`` (annotations only)."""
    skip = {id(n) for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "sim" or node.module.startswith("sim.")):
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sim."):
                    yield a.name, node.lineno


def test_every_module_of_the_package_belongs_to_a_known_stage():
    unknown = {_stage(name) for name, _, _ in _modules()} - set(STAGES) - {None}
    assert not unknown, f"modules outside the known stages: {unknown}"


def test_no_import_runs_upward():
    upward = []
    for name, path, tree in _modules():
        here = _stage(name)
        for target, line in _imports(tree):
            there = _stage(target)
            if here and there and STAGES.index(there) > STAGES.index(here):
                upward.append(f"{path.relative_to(REPO)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "\n".join(upward)


def test_the_checker_sees_an_upward_import():
    tree = ast.parse("def f():\n    from sim.cli.options import parse_T\n")
    assert [t for t, _ in _imports(tree)] == ["sim.cli.options"]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sim.cli import x\n")
    assert list(_imports(tree)) == []


def _name_collections(tree: ast.AST, names: set[str]):
    """Literal tuples, lists, sets and dict keys naming two or more of ``names``."""
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
        found = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
        if len(found) >= 2:
            yield node.lineno, sorted(found)


#: Where a literal set of architecture names is the content itself, not a list of architectures.
NAME_LISTS_ALLOWED = {
    "sim/arch/registry.py": "the registry",
    "sim/analytic/paper_v1.py": "the paper's v1 equations exist for its own two architectures",
}


def test_architectures_are_listed_in_one_place_only():
    names = {k.name for k in ARCH_KINDS}
    found = [f"{path.relative_to(REPO)}:{line} lists {which}" for _, path, tree in _modules()
             if str(path.relative_to(REPO)) not in NAME_LISTS_ALLOWED
             for line, which in _name_collections(tree, names)]
    assert not found, "\n".join(found)


def test_causes_are_listed_in_one_place_only():
    found = [f"{path.relative_to(REPO)}:{line} lists {which}" for _, path, tree in _modules()
             if str(path.relative_to(REPO)) != "sim/arch/registry.py"
             for line, which in _name_collections(tree, set(CAUSES))]
    assert not found, "\n".join(found)


def test_mapping_and_analytic_import_no_engine_simpy_or_numba():
    mods = sorted({name for name, _, _ in _modules() if _stage(name) in ("mapping", "analytic")})
    code = (f"import sys\nimport {', '.join(mods)}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'simpy', 'torch') or "
            "m.startswith(('sim.engine', 'sim.architectures', 'sim.kernels', 'sim.workload')))\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert any(m.startswith("sim.mapping.") for m in mods)
