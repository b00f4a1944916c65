"""Shared helpers: run the demo pipeline in-process (one litellm import for the session)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from planner.cli import main
from planner.pipeline import PipelineOptions, prepare, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "model_routing_demo.yaml"
PRIORITIES = ("cost", "speed", "quality", "balanced")


def run_demo(out: Path, **inputs: Any) -> dict[str, Any]:
    """Run the demo with ``inputs``; return results.json plus the report text."""
    checked, values = prepare(DEMO, {k: str(v) for k, v in inputs.items()})
    run = run_pipeline(checked, values, PipelineOptions(out_dir=out))
    data = json.loads((out / "results.json").read_text())
    data["report"] = (out / "report.md").read_text()
    data["run"] = run
    return data


def ledger_spend_usd(out: Path) -> float:
    """What every step's executor ledger says was paid (settled attempt costs)."""
    total = 0
    for path in sorted((out / "steps").glob("*/ledger.sqlite")):
        conn = sqlite3.connect(path)
        try:
            total += conn.execute("SELECT COALESCE(SUM(cost_pusd), 0) FROM attempts").fetchone()[0]
        finally:
            conn.close()
    return total / 1e12


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``routeplan ARGV`` in-process: (exit status, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The demo at each priority with a $5 budget."""
    base = tmp_path_factory.mktemp("demo")
    return {p: run_demo(base / p, priority=p, task_budget=5) for p in PRIORITIES}
