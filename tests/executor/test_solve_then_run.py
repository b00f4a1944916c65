"""End to end: ``routeplan solve`` on the demo batch, then ``routeplan run`` on its plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.plan import Plan

from .helpers import check_run
from .test_cli_run import cli, no_keys  # noqa: F401 - fixture

DEMO = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "demo_batch.yaml"


@pytest.mark.skipif(not DEMO.exists(), reason="demo batch not present")
def test_solve_then_run_the_demo_batch(tmp_path, no_keys):  # noqa: F811
    plan_path = tmp_path / "plan.json"
    assert cli(["solve", str(DEMO), "--budget", "0.5", "--out", str(plan_path)]) == 0
    plan = Plan.load(plan_path)
    out = tmp_path / "run"
    assert cli(["run", str(plan_path), "--out", str(out), "--fail-rate", "0.3", "--seed", "5"]) == 0
    report = check_run(out, 0.5)
    assert report["simulated"] is True and report["budget_usd"] == 0.5
    assert {t["task_id"] for t in report["tasks"]} == (
        {a.task_id for a in plan.assignments} | {q.task_id for q in plan.queued})
    assert report["totals"]["projected_cost_usd"] == pytest.approx(plan.totals.projected_cost_usd, rel=1e-6)
    # every planned task ends once: done, failed, or queued by the budget guard (timeouts under
    # --fail-rate count their whole reservation, so how much is left can depend on the order)
    t = report["totals"]
    assert t["n_done"] + t["n_failed"] + t["n_queued"] == len(plan.assignments) + len(plan.queued)
    assert t["n_done"] > 0
    assert json.loads((out / "report.json").read_text()) == report
