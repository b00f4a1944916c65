"""The notebooks run clean, offline, in a kernel of this environment.

The default run executes both notebooks with ROUTEPLAN_NOTEBOOK_FAST=1 (the demo batch and a
500-task slice, about 20 s together); the full notebooks (the 10,000-task batch, 500 tasks
in the strategy comparison) run under ``-m slow``. The committed notebooks must have no
outputs and must match what notebooks/build_notebooks.py writes.
"""

from __future__ import annotations

import importlib.util
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.sweep.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
NAMES = ("budget_sweep.ipynb", "strategy_comparison.ipynb", "calibrate_and_evaluate.ipynb")
ROUTERBENCH = ROOT.parent / "shared" / "data" / "routerbench"
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_AI_API_KEY", "MISTRAL_API_KEY")


def execute(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path, *, fast: bool) -> nbformat.NotebookNode:
    monkeypatch.setenv("ROUTEPLAN_NOTEBOOK_FAST", "1" if fast else "0")
    monkeypatch.setenv("ROUTEPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the simulated runs' folders
    for var in KEY_VARS:  # offline: no provider key reaches the kernel
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # "python3" resolves to sys.executable, the interpreter running the tests (the venv's)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type in ("display_data", "execute_result") and kind in o.get("data", {})]


def check_report(nb: nbformat.NotebookNode, n_figures: int) -> None:
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert len(outputs(nb, "image/png")) >= n_figures
    texts = [o["data"]["text/markdown"] for o in outputs(nb, "text/markdown")]
    assert texts and all("nan" not in t.lower().split() for t in texts)


def test_budget_sweep_notebook_quick(monkeypatch, tmp_path):
    nb = execute("budget_sweep.ipynb", monkeypatch, tmp_path, fast=True)
    check_report(nb, n_figures=2)
    md = " ".join(o["data"]["text/markdown"] for o in outputs(nb, "text/markdown"))
    assert "Reading the demo frontier" in md and "Reading the 500-task frontier" in md


def test_strategy_comparison_notebook_quick(monkeypatch, tmp_path):
    nb = execute("strategy_comparison.ipynb", monkeypatch, tmp_path, fast=True)
    check_report(nb, n_figures=3)
    md = " ".join(o["data"]["text/markdown"] for o in outputs(nb, "text/markdown"))
    assert "both simulated" in md


@pytest.mark.skipif(not ROUTERBENCH.is_dir(), reason="../shared/data/routerbench not present")
def test_calibrate_and_evaluate_notebook_quick(monkeypatch, tmp_path):
    nb = execute("calibrate_and_evaluate.ipynb", monkeypatch, tmp_path, fast=True)
    check_report(nb, n_figures=1)
    md = " ".join(o["data"]["text/markdown"] for o in outputs(nb, "text/markdown"))
    assert "Reading the backtest" in md and "routeplan's category-level plans reach an AIQ" in md


@pytest.mark.slow
@pytest.mark.parametrize("name, n_figures", [("budget_sweep.ipynb", 2), ("strategy_comparison.ipynb", 3),
                                             ("calibrate_and_evaluate.ipynb", 1)])
def test_full_notebooks(monkeypatch, tmp_path, name, n_figures):
    if name == "calibrate_and_evaluate.ipynb" and not ROUTERBENCH.is_dir():
        pytest.skip("../shared/data/routerbench not present")
    nb = execute(name, monkeypatch, tmp_path, fast=False)
    check_report(nb, n_figures)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_cleared_and_generated(name, tmp_path, monkeypatch):
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in committed.cells if c.cell_type == "code")
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_notebooks", build)
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "HERE", tmp_path)
    build.main()
    fresh = nbformat.read(tmp_path / name, as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in committed.cells], \
        "run .venv/bin/python notebooks/build_notebooks.py"
