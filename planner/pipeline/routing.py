"""The ``multi-model-routing`` tool: ``route`` and ``optimize_batch``, both a solved plan.

``route`` solves the tasks as one plan under what is left of the pipeline's budget and
returns, per task in the order given, the plan's model first and then its fallbacks ranked
by the goal. ``optimize_batch`` solves its tasks the same way and then runs the plan
through the executor, drawing on the shared budget.

Steps run while the pipeline waits, so the provider batch APIs (results within hours,
``<model>@batch`` offerings) are left out unless a step sets ``allow_batch_api: true``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from planner.catalog import short_name
from planner.errors import InfeasibleError, InputError
from planner.goals import PRIORITY_GOALS, goal_spec

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.pipeline.runner import StepContext
    from planner.pipeline.tools import OptimizeBatchParams, RouteParams
    from planner.plan import Plan
    from planner.tasks import Task



def build_tasks(items: list[Any], default_type: str | None, step_id: str, *,
                prefix: str = "task") -> list[Task]:
    """Tasks from a step's ``tasks``: bare prompts (typed by ``task_type``) or task records."""
    from planner.tasks import tasks_from_records

    records: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        record = {"prompt": item} if isinstance(item, str) else dict(item)
        record.setdefault("id", f"{prefix}_{i + 1}")
        if "type" not in record:
            if default_type is None:
                raise InputError(f"step {step_id}: parameters.tasks[{i}]: no type; give the task "
                                 "a type or the step a task_type")
            record["type"] = default_type
        records.append(record)
    return tasks_from_records(records, source=f"step {step_id}: parameters.tasks")


def realtime_catalog(ctx: StepContext, allow_batch_api: bool = False) -> Catalog:
    """The run's catalog, without the batch-API offerings unless asked for."""
    from dataclasses import replace

    catalog = ctx.run.catalog()
    if allow_batch_api:
        return catalog
    return replace(catalog, offerings=tuple(o for o in catalog.offerings if o.mode == "realtime"))


def solve(tasks: list[Task], ctx: StepContext, *, goal: str, budget_usd: float,
          max_latency_s: float | None = None, min_quality: float | None = None,
          solver: str | None = None, allow_batch_api: bool = False) -> Plan:
    """One plan for ``tasks`` under ``budget_usd``; work the budget cannot cover is queued.

    Raises InfeasibleError when a task has no feasible model whatever the budget (its own
    limits exclude every model), naming the limit and the least change that would help.
    """
    import numpy as np

    from planner.formulation import formulate
    from planner.plan import Limits
    from planner.solve import make_plan

    limits = Limits(budget_usd=budget_usd, max_latency_s=max_latency_s, min_quality=min_quality,
                    allow_queue=True)
    catalog = realtime_catalog(ctx, allow_batch_api)
    # a task no model can serve at any budget is a mistake in the step, not work to queue
    f = formulate(tasks, catalog, goal=goal, limits=limits)
    blocked = np.flatnonzero(~f.feasible.any(axis=1))
    if blocked.size:
        raise InfeasibleError(f"no model can serve {f.explain_task(int(blocked[0]))}"
                              + (f" (and {blocked.size - 1} more tasks)" if blocked.size > 1 else ""))
    # `pipeline run --solver` applies to every routing step; else the step's own, else auto
    plan = make_plan(tasks, catalog, goal=goal, limits=limits,
                     solver=ctx.run.options.solver or solver or "auto")
    plan.save(ctx.out_dir / "plan.json")
    return plan


def step_budget(ctx: StepContext, own_limit_usd: float | None) -> float:
    """What a step may plan with: its own limit, capped by what the pipeline has left."""
    left = ctx.remaining_usd
    return left if own_limit_usd is None else min(own_limit_usd, left)


def route(p: RouteParams, ctx: StepContext) -> dict[str, Any]:
    """Per-task ranked recommendations from one solved plan (nothing is spent)."""
    goal = PRIORITY_GOALS.get(p.routing_strategy, p.routing_strategy)
    c = p.constraints
    tasks = build_tasks(p.tasks, p.task_type, ctx.step_id)
    if c.max_cost_per_task is not None:
        tasks = [t.model_copy(update={"max_cost_usd": c.max_cost_per_task}) for t in tasks]
    plan = solve(tasks, ctx, goal=goal, budget_usd=step_budget(ctx, c.total_budget),
                 max_latency_s=c.max_latency, min_quality=c.min_quality, solver=p.solver)
    by_task = {a.task_id: a for a in plan.assignments}
    queued = {q.task_id: q for q in plan.queued}
    recs: list[dict[str, Any]] = []
    for task in tasks:
        a = by_task.get(task.id)
        if a is None:
            recs.append({"task_id": task.id, "task": task.text, "type": task.type, "model": None,
                         "model_short": None,
                         "estimated_cost_usd": None, "latency_s": None, "quality": None,
                         "queued": True, "reason": f"queued: {queued[task.id].reason}",
                         "ranked": []})
            continue
        ranked = [{"model": a.model, "model_short": short_name(a.model), "estimated_cost_usd": a.projected_cost_usd,
                   "latency_s": a.projected_latency_s, "quality": a.projected_quality}]
        ranked += [{"model": f.model, "model_short": short_name(f.model), "estimated_cost_usd": f.projected_cost_usd,
                    "latency_s": f.projected_latency_s, "quality": f.projected_quality}
                   for f in a.fallbacks]
        recs.append({"task_id": task.id, "task": task.text, "type": task.type, "model": a.model,
                     "model_short": short_name(a.model),
                     "estimated_cost_usd": a.projected_cost_usd,
                     "latency_s": a.projected_latency_s, "quality": a.projected_quality,
                     "queued": False, "reason": _reason(goal, ranked, plan),
                     "ranked": ranked[:p.top_k]})
    return {"strategy": p.routing_strategy, "goal": goal, "recommendations": recs,
            "projected_cost_usd": plan.totals.projected_cost_usd, "n_tasks": len(tasks),
            "n_queued": len(plan.queued), "plan_path": str(ctx.out_dir / "plan.json"),
            "solver": _solver_info(plan)}


def _reason(goal: str, ranked: list[dict[str, Any]], plan: Plan) -> str:
    """Why the plan chose this model, from the figures (not a fixed phrase per goal).

    ``ranked`` is the chosen model then the plan's fallbacks, which the plan ranks by the goal.
    """
    chosen, others = ranked[0], ranked[1:]
    facts = (f"${chosen['estimated_cost_usd']:.6f}, {chosen['latency_s']:.1f} s, "
             f"quality {chosen['quality']:.2f}")
    spec = goal_spec(goal)
    key = {"cost": ("estimated_cost_usd", min), "quality": ("quality", max),
           "latency": ("latency_s", min)}.get(spec.figure)
    if not others:
        why = "the only feasible model"
    elif key is not None:
        field, best = key
        top = best(r[field] for r in ranked)
        if math.isclose(chosen[field], top, rel_tol=1e-9, abs_tol=1e-12):
            why = f"{spec.phrase} of the feasible models"
        else:  # the budget (or another shared limit) moved it off its own best
            why = f"{spec.phrase} the plan's shared limits allow"
    else:
        why = f"{spec.phrase} (weights {_weights(plan)})"
    binding = [b.name for b in plan.binding_limits if b.binding]
    bound = f"; binding: {', '.join(binding)}" if binding else ""
    return f"{why}: {facts}{bound}"


def _weights(plan: Plan) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in plan.limits.weights.items())


def _solver_info(plan: Plan) -> dict[str, Any]:
    s = plan.solver
    return {"name": s.name, "status": s.status, "gap": s.gap, "wall_time_s": s.wall_time_s}


def optimize_batch(p: OptimizeBatchParams, ctx: StepContext) -> dict[str, Any]:
    """Solve the batch as one plan for ``optimization_goal``, then execute it."""
    from planner.pipeline.execute import execute

    c = p.constraints
    tasks = build_tasks(p.tasks, p.task_type, ctx.step_id)
    update: dict[str, Any] = {}
    if c.max_budget_per_task is not None:
        update["max_cost_usd"] = c.max_budget_per_task
    if p.max_tokens is not None:
        update["max_tokens"] = p.max_tokens
    tasks = [t.model_copy(update=update) for t in tasks] if update else tasks
    if p.check is not None:  # the step's check grades every task without its own
        tasks = [t if t.check is not None else t.model_copy(update={"check": p.check}) for t in tasks]
    plan = solve(tasks, ctx, goal=p.optimization_goal, budget_usd=step_budget(ctx, c.total_budget),
                 max_latency_s=c.max_latency, min_quality=c.min_quality, solver=p.solver)
    outcome = execute(plan, ctx)
    results = []
    prompts = {t.id: t.text for t in tasks}
    for t in outcome.tasks:
        results.append({**t, "prompt": prompts[t["task_id"]]})
    done = [t for t in results if t["status"] == "done"]
    spent = sum(t["actual_cost_usd"] or 0.0 for t in results)
    return {"goal": p.optimization_goal, "task_type": p.task_type, "total_tasks": len(tasks),
            "n_done": len(done), "n_queued": sum(t["status"] == "queued" for t in results),
            "n_failed": sum(t["status"] == "failed" for t in results),
            "models_used": sorted({t["model"] for t in done}),
            "projected_cost_usd": plan.totals.projected_cost_usd, "total_cost_usd": spent,
            "average_cost_per_task_usd": spent / len(done) if done else 0.0,
            "results": results, "plan_path": str(ctx.out_dir / "plan.json"),
            "run_dir": str(ctx.out_dir), "simulated": outcome.simulated}
