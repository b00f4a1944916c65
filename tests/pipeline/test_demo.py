"""End to end: the demo pipeline at every priority, its routings, report and budget."""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest

from planner.catalog import short_name
from tests.pipeline.conftest import PRIORITIES, ledger_spend_usd, run_demo

LLM_STEPS = ("summarize_document", "generate_code", "analyze_data")
SECTIONS = ("## Configuration", "## Task Routing", "## Batch Translation Optimization",
            "## Budget Tracking", "## ROI")
MIN_QUALITY = 0.45  # the demo's routing floor


def recs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return run["results"]["assess_requirements"]["recommendations"]


def money(text: str, label: str) -> float:
    m = re.search(rf"{re.escape(label)}: \$([0-9,.]+)", text)
    assert m, f"no '{label}' figure in the report"
    return float(m.group(1).replace(",", ""))


@pytest.mark.parametrize("priority", PRIORITIES)
def test_every_step_runs_and_every_task_is_done(demo_runs, priority):
    run = demo_runs[priority]
    assert [s["status"] for s in run["steps"]] == ["done"] * 6
    for step in LLM_STEPS:
        assert run["results"][step]["status"] == "done"
        assert run["results"][step]["result"]
    batch = run["results"]["batch_processing"]
    assert (batch["total_tasks"], batch["n_done"]) == (4, 4)
    assert run["simulated"] is True


@pytest.mark.parametrize("priority", PRIORITIES)
def test_llm_steps_run_on_the_recommended_models(demo_runs, priority):
    run = demo_runs[priority]
    for i, step in enumerate(LLM_STEPS):
        assert run["results"][step]["model"] == recs(run)[i]["model"]


@pytest.mark.parametrize("priority", PRIORITIES)
def test_recommendations_are_ranked_with_figures_and_reason(demo_runs, priority):
    for rec in recs(demo_runs[priority]):
        assert rec["model"] and rec["reason"]
        assert rec["estimated_cost_usd"] > 0 and rec["latency_s"] > 0
        assert MIN_QUALITY <= rec["quality"] <= 1
        assert rec["ranked"][0]["model"] == rec["model"]
        assert len({r["model"] for r in rec["ranked"]}) == len(rec["ranked"]) >= 2


def _per_task(demo_runs, field: str) -> dict[str, list[float]]:
    return {p: [r[field] for r in recs(demo_runs[p])] for p in PRIORITIES}


def test_cost_picks_the_cheapest_models_that_meet_quality(demo_runs):
    cost = _per_task(demo_runs, "estimated_cost_usd")
    for p in PRIORITIES:
        for i in range(3):
            assert cost["cost"][i] <= cost[p][i] + 1e-12, (p, i)
    for rec in recs(demo_runs["cost"]):  # cheaper than each ranked alternative
        assert all(rec["estimated_cost_usd"] <= alt["estimated_cost_usd"] for alt in rec["ranked"])
        assert rec["quality"] >= MIN_QUALITY


def test_quality_picks_the_strongest_models(demo_runs):
    quality = _per_task(demo_runs, "quality")
    for p in PRIORITIES:
        for i in range(3):
            assert quality["quality"][i] >= quality[p][i] - 1e-12, (p, i)
    assert sum(quality["quality"]) > sum(quality["cost"])


def test_speed_picks_the_fastest_models(demo_runs):
    latency = _per_task(demo_runs, "latency_s")
    for p in PRIORITIES:
        for i in range(3):
            assert latency["speed"][i] <= latency[p][i] + 1e-9, (p, i)
    assert sum(latency["speed"]) < sum(latency["quality"])


def test_routings_differ_between_priorities(demo_runs):
    models = {p: tuple(r["model"] for r in recs(demo_runs[p])) for p in PRIORITIES}
    assert len({models["cost"], models["speed"], models["quality"]}) == 3
    goals = {demo_runs[p]["results"]["assess_requirements"]["goal"] for p in PRIORITIES}
    assert goals == {"minimize_cost", "minimize_latency", "maximize_quality", "balanced"}


@pytest.mark.parametrize("priority", PRIORITIES)
def test_report_has_every_section_with_real_figures(demo_runs, priority):
    run = demo_runs[priority]
    report, budget = run["report"], run["budget"]
    positions = [report.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "Simulated run" in report
    assert "- Budget: $5.00" in report and f"- Priority: {priority}" in report
    # Task Routing: each LLM step's model, estimated and actual cost
    for step in LLM_STEPS:
        g = run["results"][step]
        section = report[report.index(f"### {step}"):]
        assert g["model_short"] == short_name(g["model"])  # results.json: the id and the short name
        assert f"Assigned model: {g['model_short']}" in section  # the report: the short name
        assert money(section, "Actual cost") == pytest.approx(g["actual_cost_usd"], abs=1e-6)
        assert money(section, "Estimated cost") == pytest.approx(g["estimated_cost_usd"], abs=1e-6)
    assert "```python" in report[report.index("### generate_code"):]
    # Batch: goal, totals, models, the translations
    batch = run["results"]["batch_processing"]
    assert "Optimization goal: `minimize_cost`" in report and "Total tasks: 4" in report
    assert money(report, "Total cost") == pytest.approx(batch["total_cost_usd"], abs=1e-6)
    assert money(report, "Average per task") == pytest.approx(batch["total_cost_usd"] / 4, abs=1e-6)
    for model in batch["models_used"]:
        assert short_name(model) in report
    for word in ("Hello World", "Good morning", "Thank you", "Goodbye"):
        assert word in report
    # Budget: initial, per step, remaining = initial - spent
    assert money(report, "Initial budget") == 5.0
    assert money(report, "Remaining budget") == pytest.approx(budget["remaining_usd"], abs=1e-4)
    assert budget["remaining_usd"] == pytest.approx(5.0 - budget["spent_usd"], abs=1e-12)
    for step in (*LLM_STEPS, "batch_processing"):
        assert f"| {step} |" in report
    # ROI: mean quality of the tasks that ran, measured by its check where a task has one
    tasks = [run["results"][s] for s in LLM_STEPS] + batch["results"]
    done_q = [t["score"] if t["score"] is not None else t["quality"] for t in tasks]
    graded = {s for s in LLM_STEPS if run["results"][s]["score"] is not None}
    assert graded == {"generate_code"}  # the fibonacci code has python_tests; the others no check
    assert all(t["grader"] == "match" and t["score"] in (0.0, 1.0) for t in batch["results"])
    assert run["results"]["generate_code"]["grader"] == "python_tests"
    assert "measured by their checks for 5 of 7 tasks" in report
    assert "- Check (python_tests): score" in report and "| match score" in report
    m = re.search(r"Mean quality score: ([0-9.]+)", report)
    assert m and float(m.group(1)) == pytest.approx(statistics.fmean(done_q), abs=1e-3)
    assert money(report, "Cost per quality point") == pytest.approx(
        budget["spent_usd"] / sum(done_q), abs=1e-6)
    assert re.search(r"Completion time: [0-9.]+ s wall", report)
    assert "Efficiency rating: Excellent" in report  # all done on a sliver of $5


@pytest.mark.parametrize("priority", PRIORITIES)
def test_spend_in_report_equals_the_ledgers(demo_runs, priority, tmp_path):
    run = demo_runs[priority]
    out = run["run"].options.out_dir
    assert run["budget"]["spent_usd"] == pytest.approx(ledger_spend_usd(out), abs=1e-12)
    steps_spent = sum(s["spent_usd"] for s in run["budget"]["steps"])
    assert steps_spent == pytest.approx(run["budget"]["spent_usd"], abs=1e-12)


@pytest.mark.parametrize("priority", PRIORITIES)
def test_one_cent_budget_is_respected_and_queued_work_is_said(priority, tmp_path):
    run = run_demo(tmp_path, priority=priority, task_budget=0.01)
    spent = run["budget"]["spent_usd"]
    assert spent <= 0.01
    assert ledger_spend_usd(tmp_path) <= 0.01
    for s in run["budget"]["steps"]:  # no step spent more than was left to it
        assert s["spent_usd"] <= s["available_usd"] + 1e-15
    n_queued = sum(s["n_queued"] for s in run["budget"]["steps"])
    if n_queued:
        assert f"**{n_queued} task(s) queued" in run["report"]
        assert "Fair" in run["report"] or "Poor" in run["report"] or "Good" in run["report"]
    else:
        assert "Queued: none" in run["report"]


def test_one_cent_cannot_buy_the_quality_routing(tmp_path):
    """At quality priority the strongest models' worst case exceeds $0.01: work is queued."""
    run = run_demo(tmp_path, priority="quality", task_budget=0.01)
    assert sum(s["n_queued"] for s in run["budget"]["steps"]) >= 1
    assert "task(s) queued: the budget left could not cover them" in run["report"]
    queued = [s for s in LLM_STEPS if run["results"][s]["status"] == "queued"]
    assert queued and all(run["results"][s]["actual_cost_usd"] == 0 for s in queued)


def test_a_tiny_budget_queues_everything_and_spends_nothing_it_lacks(tmp_path):
    run = run_demo(tmp_path, priority="balanced", task_budget=0.00001)
    assert run["budget"]["spent_usd"] <= 0.00001
    assert "queued" in run["report"]
    assert "## ROI" in run["report"]
