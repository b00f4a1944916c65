"""The import rules of docs/architecture.md: each layer imports only the layers below it
(imports inside functions count), so the solver library stays standalone and the CLI and
pipelines stay on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

UPPER = ("planner.pipeline", "planner.commands", "planner.cli")
#: layer -> module prefixes it must not import
FORBIDDEN = {
    "solvers": ("planner", "catalogs"),
    "planner.checks": UPPER,
    "planner.executor": UPPER,
    "planner.distributed": UPPER,
    "planner.pipeline": ("planner.commands", "planner.cli"),
    "planner": UPPER,  # the core: every planner module not in a layer above
}


def _layer(module: str) -> str:
    for layer in ("planner.commands", "planner.cli", "planner.pipeline", "planner.distributed", "planner.executor",
                  "planner.checks"):
        if module == layer or module.startswith(layer + "."):
            return layer
    return module.split(".")[0]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in ("solvers", "planner"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    forbidden = FORBIDDEN.get(_layer(module), ())
    bad = sorted(name for name in _imports(path)
                 if any(name == f or name.startswith(f + ".") for f in forbidden))
    assert not bad, f"{module} ({_layer(module)}) imports {bad}: see docs/architecture.md"


def test_only_the_caller_talks_to_litellm_for_calls() -> None:
    """One I/O boundary: only planner/executor/caller.py takes litellm's acompletion (the
    simulator is a custom provider behind it; a docstring may name it)."""

    def takes_acompletion(path: Path) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr in ("acompletion", "completion")
                   and isinstance(n.value, ast.Name) and n.value.id == "litellm"
                   for n in ast.walk(ast.parse(path.read_text())))

    callers = [p for _, p in _modules() if takes_acompletion(p)]
    assert [p.relative_to(ROOT).as_posix() for p in callers] == ["planner/executor/caller.py"]


def test_no_sql_on_the_ledger_outside_the_ledger_module() -> None:
    """The ledger module owns its schema and every query on it."""
    tables = (" FROM tasks", " FROM attempts", " FROM meta", "UPDATE tasks", "UPDATE attempts", "INTO tasks",
              "INTO attempts", "INTO meta")
    offenders = [p.relative_to(ROOT).as_posix() for _, p in _modules()
                 if p.name != "ledger.py" and any(t in p.read_text() for t in tables)]
    assert not offenders, offenders
