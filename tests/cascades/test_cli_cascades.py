"""Cascades end to end through the CLI: `routeplan solve` plans them from a catalog's cascade
entries, `routeplan run` (simulated) runs them; the verifier accepts near the projected rate,
quality lands near the projection, and the report shows it."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cascades.conftest import MODELS
from tests.cascades.plans import check_cascade_run

N_TASKS = 300
CATALOG = {"extends": "default", "cascades": {
    "extractors": {"qa": "choice"},
    "candidates": [{"category": "qa", "first": "gpt-4.1-nano", "witnesses": ["gpt-4o-mini"], "second": "gpt-4.1",
                    "p_accept": 0.65, "quality_accept": 0.96, "quality_reject": 0.86, "n": 500}]}}


@pytest.fixture
def qa_files(tmp_path):
    letters = "ABCD"
    tasks = [{"id": f"q{i:03d}", "type": "qa", "input_tokens": 40, "expected_output_tokens": 20, "max_tokens": 120,
              "prompt": f"Question {i}?\nA) one\nB) two\nC) three\nD) four",
              "check": {"kind": "choice", "answer": letters[i % 4]}} for i in range(N_TASKS)]
    (tmp_path / "tasks.yaml").write_text(yaml.safe_dump({"tasks": tasks}, sort_keys=False))
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(CATALOG, sort_keys=False))
    return tmp_path / "tasks.yaml", tmp_path / "catalog.yaml"


def test_solve_then_run_accepts_near_the_projected_rate(qa_files, tmp_path, run_cli):
    tasks, cat = qa_files
    plan_path = tmp_path / "plan.json"
    code, stdout, err = run_cli("solve", tasks, "--catalog", cat, "--models", MODELS, "--goal", "maximize_quality",
                                "-o", plan_path)
    assert code == 0, err
    plan = json.loads(plan_path.read_text())
    on_cascade = [a for a in plan["assignments"] if a.get("cascade")]
    assert len(on_cascade) == N_TASKS  # the cascade is the best quality for every task
    label = on_cascade[0]["cascade"]["label"]
    assert label == "gpt-4.1-nano -> gpt-4.1 (agree: gpt-4.1-nano, gpt-4o-mini)"

    budget = plan["totals"]["projected_worst_case_cost_usd"] * 2
    code, stdout, err = run_cli("run", plan_path, "--out", tmp_path / "run", "--seed", "7", "--budget", budget,
                                "--concurrency", "32")
    assert code == 0, err
    assert f"cascade {label}: accepted " in stdout and "projected 65.0 %" in stdout
    facts = check_cascade_run(tmp_path / "run", budget)  # ended once, stages answered once, cost = its calls
    assert set(facts["statuses"].values()) == {"done"}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["simulated"] is True
    (c,) = report["cascades"]
    assert c["cascade"] == label and c["tasks"] == c["decided"] == c["done"] == N_TASKS
    assert c["projected_accept_rate"] == pytest.approx(0.65)
    # binomial: 300 draws at 0.65 have a standard deviation of 0.028; 3 of them
    assert c["actual_accept_rate"] == pytest.approx(0.65, abs=0.085)
    assert c["projected_quality"] == pytest.approx(0.65 * 0.96 + 0.35 * 0.86)
    assert c["graded"] == N_TASKS and c["measured_quality"] == pytest.approx(c["projected_quality"], abs=0.06)
    # every task paid stage one and the witness; escalations only for the rejected ones
    assert c["answer_cost_usd"] > 0 and c["verifier_cost_usd"] > 0 and c["escalation_cost_usd"] > 0
    assert c["cost_usd"] == pytest.approx(c["answer_cost_usd"] + c["verifier_cost_usd"] + c["escalation_cost_usd"])
    served = {t["task_id"]: t["model"] for t in report["tasks"]}
    escalated = [t for t, m in served.items() if m.endswith("gpt-4.1")]
    assert len(escalated) == N_TASKS - c["accepted"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Cascades" in md and label in md
    assert report["totals"]["fallbacks_used"] == 0  # escalating is the plan, not a fallback
    code, again, err = run_cli("report", tmp_path / "run")  # the same line from the ledger alone
    assert code == 0 and f"cascade {label}: accepted {c['accepted']}/{N_TASKS}" in again
