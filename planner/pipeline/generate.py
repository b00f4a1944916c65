"""The ``llm.generate_text`` action (bare ``action: generate_text``): one prompt on a given
model, planned as a one-task plan pinned to that model and run through the executor.

Planning it (rather than calling the model directly) gives the call its projected tokens,
cost, latency and worst case, so the executor's budget guard can queue it when what is left
of the pipeline's budget cannot cover it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.catalog import short_name
from planner.errors import InputError
from planner.pipeline.shared_budget import StepSpend

if TYPE_CHECKING:
    from planner.pipeline.runner import StepContext
    from planner.pipeline.tools import GenerateTextParams


def generate_text(p: GenerateTextParams, ctx: StepContext) -> dict[str, Any]:
    from planner.pipeline.execute import execute
    from planner.pipeline.routing import realtime_catalog, solve
    from planner.tasks import Task

    base = {"task_type": p.task_type, "run_dir": str(ctx.out_dir), "simulated": ctx.run.simulated}
    if p.model is None:  # its routing step queued it: nothing to send, nothing to spend
        reason = "its routing step queued it, so no model was recommended"
        ctx.run.budget.record(StepSpend(ctx.step_id, available_usd=ctx.remaining_usd, n_queued=1,
                                        queued=[(ctx.step_id, reason)]))
        return {**base, "status": "queued", "model": None, "model_short": None, "result": None, "reason": reason,
                "estimated_cost_usd": None, "actual_cost_usd": 0.0, "latency_s": None,
                "input_tokens": None, "output_tokens": None, "quality": None, "score": None,
                "grader": None, "grade_reason": None}
    catalog = realtime_catalog(ctx)
    if p.model not in catalog.names:
        try:
            catalog.get(p.model)  # raises with the close matches
        except InputError as exc:
            raise InputError(f"step {ctx.step_id}: parameters.model: {exc}") from None
    messages = ([{"role": "system", "content": p.system}] if p.system else []) + \
        [{"role": "user", "content": p.prompt}]
    try:
        task = Task.model_validate({
            "id": ctx.step_id, "type": p.task_type, "messages": messages, "max_tokens": p.max_tokens,
            "expected_output_tokens": p.expected_output_tokens, "max_latency_s": p.max_latency,
            "allow_models": (p.model,), "check": p.check})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InputError(f"step {ctx.step_id}: parameters: {exc}".splitlines()[0]) from None
    plan = solve([task], ctx, goal="minimize_cost", budget_usd=ctx.remaining_usd)
    outcome = execute(plan, ctx)
    t = outcome.tasks[0]
    a = plan.assignments[0] if plan.assignments else None
    return {**base, "status": t["status"], "model": t["model"] or p.model,
            "model_short": short_name(t["model"] or p.model), "result": t["result"],
            "reason": t["reason"] if t["status"] != "done" else None,
            "estimated_cost_usd": a.projected_cost_usd if a else None,
            "actual_cost_usd": t["actual_cost_usd"], "latency_s": t["latency_s"],
            "input_tokens": t["input_tokens"], "output_tokens": t["output_tokens"],
            "quality": t["quality"], "score": t["score"], "grader": t["grader"],
            "grade_reason": t["grade_reason"]}
