"""Run a step's plan through the executor under what is left of the pipeline's budget.

The executor's budget guard reserves each call's worst case before sending it, so a step can
never spend more than the pipeline has left; what it cannot cover is queued. The step's
ledger, plan and executor report stay in its folder; the per-task figures come back from the
ledger (the executor's record of what was paid).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.catalog import short_name
from planner.pipeline.budget import StepSpend

if TYPE_CHECKING:
    from planner.pipeline.runner import StepContext
    from planner.plan import Plan

PUSD_PER_USD = 1e12


@dataclass(frozen=True)
class Outcome:
    simulated: bool
    spent_usd: float
    tasks: list[dict[str, Any]]  # one per task of the plan, in plan order


def execute(plan: Plan, ctx: StepContext) -> Outcome:
    """Run ``plan`` (simulated unless ``--live``), record the spend, return per-task figures."""
    from planner.executor.ledger import LEDGER_NAME
    from planner.executor.options import RunOptions
    from planner.executor.run import run_plan

    available_usd = ctx.remaining_usd
    opts = RunOptions(mode="live" if ctx.run.options.live else "simulate",
                      budget_usd=available_usd, seed=ctx.run.options.seed)
    spend = StepSpend(ctx.step_id, available_usd=available_usd,
                      projected_usd=plan.totals.projected_cost_usd)
    try:
        # the pipeline writes one report for every step; `routeplan report DIR` renders a
        # step's own executor report from its ledger when wanted (it costs a chart per step)
        result = run_plan(plan, ctx.out_dir, opts, report=False)
        tasks = _ledger_tasks(ctx.out_dir / LEDGER_NAME, plan)
    except BaseException:
        # whatever the executor paid before failing still counts against the pipeline
        spend.spent_usd = _ledger_spent_usd(ctx.out_dir / LEDGER_NAME)
        ctx.run.budget.record(spend)
        raise
    spend.spent_usd = result.spent_usd
    for t in tasks:
        if t["status"] == "done":
            spend.n_done += 1
            spend.projected_done_usd += t["projected_cost_usd"]
        elif t["status"] == "queued":
            spend.n_queued += 1
            spend.queued.append((t["task_id"], t["reason"]))
        else:
            spend.n_failed += 1
    ctx.run.budget.record(spend)
    return Outcome(result.simulated, result.spent_usd, tasks)


def _ledger_tasks(path: Any, plan: Plan) -> list[dict[str, Any]]:
    """Per task: status, model used, projected and actual cost, tokens, latency, output, and
    the check's score (None: no check, or not graded) with the grader and its reason."""
    quality = {}  # (task, model) -> the plan's projected quality there
    for a in plan.assignments:
        quality[a.task_id, a.model] = a.projected_quality
        for f in a.fallbacks:
            quality[a.task_id, f.model] = f.projected_quality
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT task_id, status, model, planned_model, projected_cost_pusd, cost_pusd, "
            "input_tokens, output_tokens, latency_s, reason, output, score, grader, grade_reason "
            "FROM tasks ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    out = []
    for (task_id, status, model, planned, projected, cost, tin, tout, latency, reason,
         output, score, grader, grade_reason) in rows:
        out.append({
            "task_id": task_id, "status": status, "model": model or planned,
            "model_short": short_name(model or planned) if model or planned else None,
            "projected_cost_usd": (projected or 0) / PUSD_PER_USD,
            "actual_cost_usd": (cost or 0) / PUSD_PER_USD,
            "input_tokens": tin, "output_tokens": tout, "latency_s": latency,
            "quality": quality.get((task_id, model)), "reason": reason, "result": output,
            "score": score, "grader": grader, "grade_reason": grade_reason,
        })
    return out


def _ledger_spent_usd(path: Any) -> float:
    """Spend recorded in a ledger (settled costs plus in-flight reservations); 0 if none."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0.0
    try:
        row = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN state='inflight' THEN reserved_pusd ELSE cost_pusd END), 0) "
            "FROM attempts").fetchone()
        return int(row[0]) / PUSD_PER_USD
    except sqlite3.Error:
        return 0.0
    finally:
        conn.close()
