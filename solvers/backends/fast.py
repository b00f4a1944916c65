"""The ``fast`` backend: convex-hull greedy or Lagrangian with repair, always with a bound.

Every goal but the makespan is a linear objective over one-model-per-task choices, so
the problem is written once in maximisation form (value = +/- the objective matrix) and
solved by the cheapest method that still proves a bound:

1. one global limit (a budget, or the quality floor as sum (q - Q) x >= 0) and no
   per-model limit: the multiple-choice knapsack, whose LP relaxation the hull greedy
   solves exactly (:mod:`solvers.mckp`); its multiplier is the budget's shadow price;
2. the per-task best model, when it breaks no limit: optimal, bound = objective;
3. anything else (capacities, share caps, several limits): Lagrangian relaxation with
   repair and improvement (:mod:`solvers.lagrangian`). When no plan is found within fast's
   own search limit (or the time limit) the status is ``time_limit_no_plan``, with the
   bound, and the message names the exact backends (``auto`` then runs one).

Group fixed charges (:mod:`solvers.groups`) go through :mod:`solvers.group_search`: the
problem without them by the methods above, then group consolidation, with a proven bound.

Queuing is lexicographic (serve the most priority weight, then the goal). ``fast`` serves
every task that has a feasible model and queues the others; when it cannot prove that
serving all of them is possible it refuses and names the exact backends, as it does for
the makespan goal.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers import registry
from solvers.errors import ProblemError, UnsupportedError
from solvers.lagrangian import Coupled, GlobalRow, ModelRow, solve_coupled
from solvers.mckp import Knapsack
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Diagnosis, Solution, Status, relative_gap

NAME = "fast"
EXACT = "highs or cpsat"


def solve(problem: Problem, options: Options) -> Solution:
    """Solve ``problem``; see the module docstring for the method and its limits."""
    start = time.perf_counter()
    if options.native:
        raise ProblemError(f"native.{sorted(options.native)[0]}: backend 'fast' takes no native options")
    registry.check_supported(registry.get(NAME), problem)  # its declared features (no makespan)
    goal = Goal(problem.goal)
    if problem.has_group_charges:
        from solvers.group_search import solve_grouped

        return solve_grouped(problem, options, solve)
    sign = 1.0 if goal.maximize else -1.0
    n = problem.n_tasks
    mask = reduced_mask(problem)
    servable = mask.any(axis=1)
    if not servable.all() and not problem.allow_queue:
        return _infeasible(problem, start, _no_model_diagnosis(problem, mask))
    sub = np.flatnonzero(servable)
    if sub.size == 0:  # nothing can be served: queuing every task is the only (optimal) plan
        empty = np.full(n, -1, dtype=np.int64)
        value = problem.objective_value(empty)
        return Solution(empty, Status.OPTIMAL, goal, NAME, objective=value, bound=value,
                        served_weight=0.0, wall_time_s=time.perf_counter() - start,
                        message="no task has a feasible model")
    whole = sub.size == n

    def rows(a: NDArray[Any]) -> NDArray[Any]:
        return a if whole else a[sub]

    form = coupled_form(problem, rows, rows(mask), sign)
    stats: dict[str, Any] = {"queued_without_model": int(n - sub.size)}

    # 1. one global limit, no per-model limit: the knapsack LP on the hulls (when the limit
    # is slack this is the per-task best model, with the bound equal to its value)
    if len(form.global_rows) == 1 and not form.model_rows:
        row = form.global_rows[0]
        t = time.perf_counter()
        ks = Knapsack(row.coef, form.value, form.mask)
        stats["hull_s"] = time.perf_counter() - t
        point = ks.solve(row.limit, rel_gap=options.rel_gap)
        stats.update(method="hull-greedy", increments=int(ks.eff.size), increments_taken=point.increments_taken,
                     hull_vertices_mean=float(ks.hulls.size.mean()), fill_moves=point.fill_moves,
                     lp_multiplier=point.multiplier, solve_s=time.perf_counter() - start)
        if not point.feasible:
            return _refuse_or_infeasible(problem, start, _single_row_diagnosis(problem, row, ks.base_weight))
        price = sign * point.multiplier if row.name == "budget" else None
        return _finish(problem, sub, point.assignment, sign * point.lp_bound, price, start, stats, options)

    # 2. the per-task best model, when it breaks no limit
    best = np.argmax(np.where(form.mask, form.value, -np.inf), axis=1)
    if form.is_feasible(best):
        stats["method"] = "argmax"
        price = 0.0 if problem.budget is not None else None
        return _finish(problem, sub, best, None, price, start, stats, options)

    # 3. Lagrangian relaxation with repair
    mu0 = None
    if len(form.global_rows) == 1:
        row = form.global_rows[0]
        ks = Knapsack(row.coef, form.value, form.mask)
        point = ks.solve(row.limit, fill=False)
        if not point.feasible:
            # proven infeasible by this row alone; the least budget that would do depends on
            # the other limits too, so no min_budget is claimed
            diag = _single_row_diagnosis(problem, row, ks.base_weight)
            diag = Diagnosis(notes=tuple(n + " (before the other limits)" for n in diag.notes))
            return _refuse_or_infeasible(problem, start, diag)
        mu0 = np.array([point.multiplier])
    remaining = None
    if options.time_limit_s is not None:
        remaining = max(options.time_limit_s - (time.perf_counter() - start), 1e-3)
    res = solve_coupled(form, rel_gap=options.rel_gap, time_limit_s=remaining, mu0=mu0)
    stats.update(method="lagrangian", **res.stats)
    if res.infeasible:
        diag = Diagnosis(notes=("the LP relaxation is infeasible: no plan meets every limit "
                                f"(Lagrangian bound {sign * res.bound:.6g} is past every plan's value)",))
        return _refuse_or_infeasible(problem, start, diag)
    if res.assignment is None:
        limit = ("the time limit" if res.stats.get("stopped") == "time_limit"
                 else f"its own search limit ({res.stats.get('search_s', 0.0):.2g} s)")
        msg = (f"fast found no plan meeting every limit within {limit}; the problem may still be "
               f"feasible (the bound does not prove otherwise): use {EXACT}")
        if problem.allow_queue:
            raise UnsupportedError(msg)
        return Solution(np.full(n, -1, np.int64), Status.TIME_LIMIT_NO_PLAN, goal, NAME, bound=sign * res.bound,
                        wall_time_s=time.perf_counter() - start, message=msg, stats=stats)
    names = [r.name for r in form.global_rows]
    price = None
    if problem.budget is not None:
        price = sign * float(res.mu[names.index("budget")]) if "budget" in names else 0.0
    return _finish(problem, sub, res.assignment, sign * res.bound, price, start, stats, options)


# ---------------------------------------------------------------------- building the form
def reduced_mask(problem: Problem, share_limits: NDArray[np.int64] | None = None) -> NDArray[np.bool_]:
    """Feasible pairs minus those no capacity could ever take (load above the model's limit).

    share_limits: the share caps' task counts when ``problem`` is a shard of a larger batch
    (they count the whole batch's tasks); by default the problem's own."""
    share_limits = problem.share_limits if share_limits is None else share_limits
    mask = problem.feasible_mask
    cut = None
    for row in problem.capacity_rows():
        over = row.load > row.limit[None, :] * (1 + 1e-12)
        cut = over if cut is None else cut | over
    if share_limits is not None and (share_limits < 1).any():
        zero = np.broadcast_to(share_limits[None, :] < 1, mask.shape)
        cut = zero if cut is None else cut | zero
    return mask if cut is None else mask & ~cut


def coupled_form(problem: Problem, rows: Any, mask: NDArray[np.bool_], sign: float,
             share_limits: NDArray[np.int64] | None = None, n_served: int | None = None) -> Coupled:
    """The problem in maximisation form; share_limits and n_served (the servable tasks) are
    the whole batch's when ``problem`` is a shard of it."""
    # read-only views where possible: a copy of an n x k matrix costs ~0.1 s at 1M x 20
    value = rows(problem.objective_matrix) if sign > 0 else -rows(problem.objective_matrix)
    globals_: list[GlobalRow] = []
    if problem.budget is not None:
        globals_.append(GlobalRow("budget", rows(problem.cost), float(problem.budget)))
    if problem.min_avg_quality is not None:
        globals_.append(GlobalRow("min_avg_quality", problem.min_avg_quality - rows(problem.quality), 0.0))
    models: list[ModelRow] = []
    for row in problem.capacity_rows():
        if np.isfinite(row.limit).any():
            models.append(ModelRow(row.name, rows(row.load), np.asarray(row.limit, float)))
    share_limits = problem.share_limits if share_limits is None else share_limits
    n_served = mask.shape[0] if n_served is None else n_served
    if share_limits is not None:
        lim = share_limits.astype(float)
        if (lim < n_served).any():
            models.append(ModelRow("share_cap", None, np.where(lim < n_served, lim, np.inf)))
    return Coupled(value, mask, tuple(globals_), tuple(models))


# ---------------------------------------------------------------------- results
def _finish(problem: Problem, sub: NDArray[np.int64], a_sub: NDArray[np.int64], bound: float | None,
            price: float | None, start: float, stats: dict[str, Any], options: Options) -> Solution:
    goal = Goal(problem.goal)
    assignment = np.full(problem.n_tasks, -1, dtype=np.int64)
    assignment[sub] = a_sub
    objective = problem.objective_value(assignment)
    if bound is None:
        bound = objective
    gap = relative_gap(objective, bound, goal)
    if gap is not None and gap > options.rel_gap:
        bound = _integral_bound(problem, sub, bound, goal)
        gap = relative_gap(objective, bound, goal)
    status = Status.OPTIMAL if gap is not None and gap <= options.rel_gap else Status.FEASIBLE
    return Solution(
        assignment=assignment, status=status, goal=goal, backend=NAME, objective=objective,
        bound=bound, wall_time_s=time.perf_counter() - start, budget_shadow_price=price,
        served_weight=problem.served_weight(assignment), stats=stats,
    )


def _integral_bound(problem: Problem, sub: NDArray[np.int64], bound: float, goal: Goal) -> float:
    """With integer objective coefficients the optimum is an integer: round the bound inward."""
    c = problem.objective_matrix[sub]
    c = c[problem.feasible_mask[sub]]
    if c.size == 0 or not np.array_equal(c, np.round(c)):
        return bound
    slack = 1e-9 * max(1.0, abs(bound))  # float error of the bound must not round it past the optimum
    return float(np.floor(bound + slack)) if goal.maximize else float(np.ceil(bound - slack))


def _infeasible(problem: Problem, start: float, diagnosis: Diagnosis) -> Solution:
    return Solution(np.full(problem.n_tasks, -1, np.int64), Status.INFEASIBLE, Goal(problem.goal), NAME,
                    wall_time_s=time.perf_counter() - start, diagnosis=diagnosis, message=str(diagnosis))


def _refuse_or_infeasible(problem: Problem, start: float, diagnosis: Diagnosis) -> Solution:
    """Without queuing: proven infeasible. With it: the lexicographic queue needs an exact backend."""
    if problem.allow_queue:
        raise UnsupportedError(
            "backend 'fast' cannot serve every task within the limits and does not prove which "
            f"to queue; use {EXACT} ({diagnosis})"
        )
    return _infeasible(problem, start, diagnosis)


def _no_model_diagnosis(problem: Problem, mask: NDArray[np.bool_]) -> Diagnosis:
    empty = np.flatnonzero(~mask.any(axis=1))
    shown = ", ".join(str(i) for i in empty[:10]) + (" ..." if empty.size > 10 else "")
    return Diagnosis(tasks_without_model=tuple(int(i) for i in empty),
                     notes=(f"task {shown} fits no model's capacity or share cap ({empty.size} task(s))",))


def _single_row_diagnosis(problem: Problem, row: GlobalRow, lightest: float) -> Diagnosis:
    if row.name == "budget":
        return Diagnosis(min_budget=lightest,
                         notes=(f"the cheapest plan costs {lightest:.6g} > budget {row.limit:.6g}",))
    assert problem.quality is not None and problem.min_avg_quality is not None
    best = np.where(problem.feasible_mask, problem.quality, -np.inf).max(axis=1)
    best = best[np.isfinite(best)]
    return Diagnosis(notes=(f"the best reachable mean quality is {best.mean():.6g} "
                            f"< min_avg_quality {problem.min_avg_quality:.6g}",))
