"""The budget frontier: the best plan at every budget of a list, from one pass where possible.

With one budget as the only coupling limit (no capacities, share caps or quality floor)
the problem at every budget is the same multiple-choice knapsack with a different
capacity. The hulls are built and their increments sorted by efficiency *once*; each
budget then cuts the cumulative cost curve (a binary search) and reads off its LP bound,
shadow price and integer plan. Other structures fall back to one solve per budget, each
warm-started (``Options.hint``) from the plan of the previous budget.

    >>> frontier = budget_frontier(problem, [1.0, 2.0, 5.0])   # one Solution per budget
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from solvers.mckp import Knapsack
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Diagnosis, Solution, Status, relative_gap

NAME = "fast-parametric"


def is_parametric(problem: Problem) -> bool:
    """Whether one hull pass gives the frontier: a linear goal and the budget as the only limit."""
    return (
        Goal(problem.goal) is not Goal.MINIMIZE_LATENCY
        and problem.cost is not None
        and problem.min_avg_quality is None
        and not problem.capacity_rows()
        and problem.share_cap is None
        and not problem.has_group_charges  # charges couple a group's tasks: no per-task hulls
    )


def budget_frontier(problem: Problem, budgets: Sequence[float], options: Options | None = None,
                    backend: str = "auto") -> list[Solution]:
    """One :class:`Solution` per budget (same order as ``budgets``); ``problem.budget`` is ignored.

    ``backend`` names the solver of the per-point fallback (used when the structure is not
    parametric, or at a budget below the cheapest plan when queuing is allowed).
    """
    options = options or Options()
    values = [float(b) for b in budgets]
    for b in values:
        if not (np.isfinite(b) and b >= 0):
            raise ValueError(f"budgets: expected finite numbers >= 0, got {b!r}")
    if not values:
        return []
    if not is_parametric(problem):
        return _per_point(problem, values, options, backend)
    return _parametric(problem, values, options, backend)


def _parametric(problem: Problem, budgets: list[float], options: Options, backend: str) -> list[Solution]:
    start = time.perf_counter()
    goal = Goal(problem.goal)
    sign = 1.0 if goal.maximize else -1.0
    mask = problem.feasible_mask
    servable = mask.any(axis=1)
    sub = np.flatnonzero(servable)
    whole = sub.size == problem.n_tasks
    assert problem.cost is not None
    cost = problem.cost if whole else problem.cost[sub]
    value = sign * (problem.objective_matrix if whole else problem.objective_matrix[sub])
    ks = Knapsack(cost, value, mask if whole else mask[sub])
    ks.sort()
    setup_s = time.perf_counter() - start
    out: list[Solution] = []
    for idx, b in enumerate(budgets):
        t = time.perf_counter()
        if not servable.all() and not problem.allow_queue:
            out.append(_infeasible(problem, Diagnosis(notes=("some task has no feasible model",))))
            continue
        if ks.base_weight > b:
            if problem.allow_queue:
                out.append(_per_point(problem, [b], options, backend)[0])
            else:
                out.append(_infeasible(problem, Diagnosis(
                    min_budget=ks.base_weight,
                    notes=(f"the cheapest plan costs {ks.base_weight:.6g} > budget {b:.6g}",))))
            continue
        point = ks.solve(b, rel_gap=options.rel_gap)
        assignment = np.full(problem.n_tasks, -1, dtype=np.int64)
        assignment[sub] = point.assignment
        objective = problem.objective_value(assignment)
        bound = sign * point.lp_bound
        gap = relative_gap(objective, bound, goal)
        status = Status.OPTIMAL if gap is not None and gap <= options.rel_gap else Status.FEASIBLE
        out.append(Solution(
            assignment=assignment, status=status, goal=goal, backend=NAME, objective=objective,
            bound=bound, wall_time_s=time.perf_counter() - t, budget_shadow_price=sign * point.multiplier,
            served_weight=problem.served_weight(assignment),
            stats={"method": "parametric-hull", "budget": b, "point": idx, "setup_s": setup_s,
                   "increments": int(ks.eff.size), "increments_taken": point.increments_taken},
        ))
    return out


def _per_point(problem: Problem, budgets: list[float], options: Options, backend: str) -> list[Solution]:
    """One solve per budget, ascending, each hinted with the previous budget's plan."""
    from solvers.registry import solve  # late: the registry imports the backends lazily

    out: dict[int, Solution] = {}
    hint = None
    for idx in sorted(range(len(budgets)), key=lambda i: budgets[i]):
        p = dataclasses.replace(problem, budget=budgets[idx])
        opts = options if hint is None else dataclasses.replace(options, hint=hint)
        sol = solve(p, backend=backend, options=opts)
        sol.stats.setdefault("budget", budgets[idx])
        sol.stats.setdefault("point", idx)
        out[idx] = sol
        if sol.status.has_plan:
            hint = sol.assignment
    return [out[i] for i in range(len(budgets))]


def _infeasible(problem: Problem, diagnosis: Diagnosis) -> Solution:
    return Solution(np.full(problem.n_tasks, -1, np.int64), Status.INFEASIBLE, Goal(problem.goal), NAME,
                    diagnosis=diagnosis, message=str(diagnosis))
