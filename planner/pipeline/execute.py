"""Run a step's plan through the executor under what is left of the pipeline's budget.

The executor's budget guard reserves each call's worst case before sending it, so a step can
never spend more than the pipeline has left; what it cannot cover is queued. The step's
ledger, plan and executor report stay in its folder; the per-task figures come back from the
ledger (the executor's record of what was paid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.catalog import short_name
from planner.executor.ledger import LEDGER_NAME, recorded_spend_pusd, task_results
from planner.money import to_usd
from planner.pipeline.shared_budget import StepSpend

if TYPE_CHECKING:
    from planner.pipeline.runner import StepContext
    from planner.plan import Plan


@dataclass(frozen=True)
class Outcome:
    simulated: bool
    spent_usd: float
    tasks: list[dict[str, Any]]  # one per task of the plan, in plan order


def execute(plan: Plan, ctx: StepContext) -> Outcome:
    """Run ``plan`` (simulated unless ``--live``), record the spend, return per-task figures."""
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
        spend.spent_usd = to_usd(recorded_spend_pusd(ctx.out_dir / LEDGER_NAME))
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
    out = []
    for r in task_results(path):
        model = r["model"] or r["planned_model"]
        out.append({
            "task_id": r["task_id"], "status": r["status"], "model": model,
            "model_short": short_name(model) if model else None,
            "projected_cost_usd": to_usd(r["projected_cost_pusd"] or 0),
            "actual_cost_usd": to_usd(r["cost_pusd"] or 0),
            "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
            "latency_s": r["latency_s"], "quality": quality.get((r["task_id"], r["model"])),
            "reason": r["reason"], "result": r["output"],
            "score": r["score"], "grader": r["grader"], "grade_reason": r["grade_reason"],
        })
    return out
