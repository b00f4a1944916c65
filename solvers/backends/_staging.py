"""Lexicographic staging shared by every backend that can solve a :class:`ModelSpec`.

The objective is a sequence of models, each keeping what the previous one achieved:

1. with queuing allowed: serve the largest total priority weight (skipped when no limit
   can force a queue: then every task with a feasible model is served);
2. the goal, subject to serving at least that weight;
3. for ``minimize_latency``: the least total latency with the makespan kept at its optimum.

Each later model receives the earlier plan as a hint and as the reference of its fix, so
it is feasible by construction. The reported objective is ``Problem.objective_value`` of
the final plan and the bound is the goal stage's, so all backends report the same number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.backends._hard_stop import solve_stage
from solvers.backends._spec import ModelSpec, Objective, SpecSolver, StageResult
from solvers.errors import ProblemError
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Diagnosis, Solution, Status

DiagnoseFn = Callable[[Problem, SpecSolver, "float | None"], Diagnosis]


def stage_objectives(problem: Problem) -> list[Objective]:
    """The objectives solved in order for this problem."""
    stages = [Objective.SERVED] if problem.allow_queue else []
    stages.append(Objective.GOAL)
    if Goal(problem.goal) is Goal.MINIMIZE_LATENCY:
        stages.append(Objective.TOTAL_LATENCY)
    return stages


def can_force_queue(problem: Problem) -> bool:
    """Whether any limit could make serving a task with a feasible model impossible."""
    return (
        problem.budget is not None
        or problem.min_avg_quality is not None
        or bool(problem.capacity_rows())
        or problem.share_cap is not None
    )


def checked_hint(problem: Problem, hint: NDArray[np.int64] | None) -> NDArray[np.int64] | None:
    """The hint with excluded pairs dropped (-1); raises on a wrong shape or index."""
    if hint is None:
        return None
    h = np.asarray(hint, dtype=np.int64)
    if h.shape != (problem.n_tasks,):
        raise ProblemError(f"hint: expected shape ({problem.n_tasks},), got {h.shape}")
    if ((h < -1) | (h >= problem.n_models)).any():
        i = int(np.argmax((h < -1) | (h >= problem.n_models)))
        raise ProblemError(f"hint: task {i} names model {h[i]}, expected -1..{problem.n_models - 1}")
    out = h.copy()
    served = out >= 0
    out[served & ~problem.feasible_mask[np.arange(problem.n_tasks), np.maximum(out, 0)]] = -1
    return out


def _combine(statuses: list[Status]) -> Status:
    if Status.TIME_LIMIT_FEASIBLE in statuses:
        return Status.TIME_LIMIT_FEASIBLE
    if Status.FEASIBLE in statuses:
        return Status.FEASIBLE
    return Status.OPTIMAL


def _no_plan(problem: Problem) -> NDArray[np.int64]:
    return np.full(problem.n_tasks, -1, dtype=np.int64)


def solve_staged(
    problem: Problem,
    options: Options,
    solver: SpecSolver,
    diagnose_fn: DiagnoseFn | None = None,
    extra_stats: dict[str, Any] | None = None,
) -> Solution:
    """Run the stages with ``solver`` inside one overall time limit; build the Solution."""
    start = time.perf_counter()
    deadline = None if options.time_limit_s is None else start + options.time_limit_s
    goal = Goal(problem.goal)
    hint = checked_hint(problem, options.hint)
    stats: dict[str, Any] = dict(extra_stats or {})
    stage_log: list[dict[str, Any]] = []
    stats["stages"] = stage_log

    def finish(status: Status, plan: NDArray[np.int64] | None, **kw: Any) -> Solution:
        if plan is not None and status.has_plan:
            broken = problem.violations(plan)
            if broken:
                status, kw["message"] = Status.ERROR, f"{solver.name} returned a plan that breaks: {broken[0]}"
                plan = None
        if plan is None or not status.has_plan:
            return Solution(_no_plan(problem), status, goal, solver.name,
                            wall_time_s=time.perf_counter() - start, stats=stats, **kw)
        return Solution(plan, status, goal, solver.name, objective=problem.objective_value(plan),
                        served_weight=problem.served_weight(plan),
                        wall_time_s=time.perf_counter() - start, stats=stats, **kw)

    if not problem.feasible_mask.any():
        # nothing can be served (only possible with queuing): some solvers refuse an empty
        # model ("HiGHS ended Empty"), so answer here; queuing everything is optimal
        empty = _no_plan(problem)
        value = problem.objective_value(empty)
        return finish(Status.OPTIMAL, empty, bound=value, message="no task has a feasible model")

    plan: NDArray[np.int64] | None = None
    ref_served: NDArray[np.int64] | None = None
    ref_makespan: NDArray[np.int64] | None = None
    statuses: list[Status] = []
    bound: float | None = None
    budget_dual: float | None = None
    messages: list[str] = []

    for objective in stage_objectives(problem):
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining <= 0 and plan is not None:
            statuses.append(Status.TIME_LIMIT_FEASIBLE)
            messages.append(f"time limit reached before the {objective.value} stage")
            break
        if objective is Objective.SERVED and not can_force_queue(problem):
            # no limit can force a queue: serve every task that has a feasible model
            plan = np.where(problem.feasible_mask.any(axis=1), problem.feasible_mask.argmax(axis=1), -1)
            ref_served, hint = plan, plan if hint is None else hint
            statuses.append(Status.OPTIMAL)
            stage_log.append({"objective": objective.value, "status": "optimal", "skipped": True})
            continue
        spec = ModelSpec(
            objective,
            served_at_least=ref_served,
            makespan_at_most=ref_makespan,
            want_budget_dual=objective is Objective.GOAL and problem.budget is not None,
        )
        res: StageResult = solve_stage(solver, problem, options, spec,
                                       max(remaining, 1e-3) if remaining is not None else None, hint)
        stage_log.append({"objective": objective.value, "status": res.status.value,
                          "wall_time_s": round(res.wall_time_s, 4), "objective_value": res.objective,
                          "bound": res.bound, **res.stats})
        if res.message:
            messages.append(res.message)
        if res.status is Status.INFEASIBLE and plan is None:
            remaining = None if deadline is None else max(deadline - time.perf_counter(), 1.0)
            diagnosis = diagnose_fn(problem, solver, remaining) if diagnose_fn else None
            return finish(Status.INFEASIBLE, None, diagnosis=diagnosis, message="; ".join(messages))
        if not res.status.has_plan or res.assignment is None:
            if plan is None:
                return finish(res.status, None, message="; ".join(messages))
            # a later stage failed: keep the earlier plan, which satisfies every limit
            statuses.append(Status.TIME_LIMIT_FEASIBLE if res.status is Status.TIME_LIMIT_NO_PLAN
                            else Status.FEASIBLE)
            messages.append(f"{objective.value} stage ended {res.status.value}; earlier plan kept")
            break
        plan = hint = res.assignment
        statuses.append(res.status)
        if objective is Objective.SERVED:
            ref_served = plan
        elif objective is Objective.GOAL:
            bound, budget_dual = res.bound, res.budget_dual
            if goal is Goal.MINIMIZE_LATENCY:
                ref_makespan = plan

    return finish(_combine(statuses), plan, bound=bound, budget_shadow_price=budget_dual,
                  message="; ".join(messages))
