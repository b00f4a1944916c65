"""The README's main command in a fresh process with no provider keys: it must work offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.pipeline.conftest import DEMO, ROOT

KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_AI_API_KEY", "MISTRAL_API_KEY")


def routeplan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    return subprocess.run([sys.executable, "-m", "planner.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_readme_command_runs_offline_and_prints_the_report(tmp_path):
    demo = ROOT / "examples" / "model_routing_demo.yaml"
    t0 = time.perf_counter()
    proc = routeplan("pipeline", "run", str(demo), "-i", "task_budget=5.00", "-i", "priority=cost",
                     cwd=tmp_path)
    wall_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "# Model Routing Demonstration Results" in proc.stdout
    assert "Simulated run" in proc.stdout
    assert (tmp_path / "run-model_routing_demo" / "report.md").read_text().strip() == proc.stdout.strip()
    assert "simulated run (only --live calls providers): tasks: " in proc.stderr and "spent $" in proc.stderr
    assert wall_s < 120  # seconds on a loaded 2-core machine; about 5 s when idle


def test_rerunning_into_the_same_folder_replaces_a_simulated_run(tmp_path):
    demo = ROOT / "examples" / "model_routing_demo.yaml"
    for _ in range(2):
        proc = routeplan("pipeline", "run", str(demo), "-o", "out", "-i", "task_budget=0.5",
                         cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr


def test_validate_prints_the_order(tmp_path):
    proc = routeplan("pipeline", "validate", str(ROOT / "examples" / "model_routing_demo.yaml"),
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "assess_requirements -> summarize_document" in proc.stdout
    assert "task_budget=10.0, priority=balanced" in proc.stdout


def test_solver_option_reaches_every_routing_step(tmp_path, capsys):
    """`--solver` applies to every routing step, over the steps' own default."""
    from tests.pipeline.conftest import cli

    out = tmp_path / "out"
    code, _, err = cli(["pipeline", "run", str(DEMO), "-i", "task_budget=5", "-o", str(out),
                        "--solver", "cbc"], capsys)
    assert code == 0, err
    routing = ("assess_requirements", "batch_processing")
    for step in routing:
        plan = json.loads((out / "steps" / step / "plan.json").read_text())
        assert plan["solver"]["name"] == "cbc", (step, plan["solver"])
    assert "Routing solver (assess_requirements): cbc" in (out / "report.md").read_text()

