"""Why a problem is infeasible, and the least change to one limit that would fix it.

Three kinds of finding, each from the plan of an auxiliary model (so every backend reports
the same figures, computed from the plan with the problem's own arithmetic):

- tasks that no plan can serve: every feasible model of the task is excluded on its own
  by a limit (its cost alone exceeds the budget, its load alone a capacity, a share cap
  of zero);
- the least budget: min cost subject to every other limit;
- the least uniform factor on the capacities (min alpha with load.x <= alpha * limit) and
  on the share caps (min beta), the other limits kept as given.

With queuing allowed nothing is infeasible (queueing every task meets every limit), so a
diagnosis is only ever needed without it. Any backend, exact or not, can call
:func:`diagnose` with a :class:`~solvers.backends._spec.SpecSolver` (or ``None`` for the
structural findings only); :func:`default_spec_solver` picks an installed exact one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from solvers.backends._hard_stop import solve_stage
from solvers.backends._spec import ModelSpec, Objective, SpecSolver
from solvers.options import Options
from solvers.problem import Problem
from solvers.solution import Diagnosis, Status

_SHOWN = 10


def excluding_limits(problem: Problem) -> dict[str, NDArray[np.bool_]]:
    """Per limit, the pairs (shape (n_tasks, n_models)) it excludes on their own."""
    out: dict[str, NDArray[np.bool_]] = {}
    if problem.budget is not None and problem.cost is not None:
        out["budget"] = problem.cost > problem.budget
    for row in problem.capacity_rows():
        out[row.name] = row.load > row.limit[None, :]
    if problem.share_limits is not None:
        out["share_cap"] = np.broadcast_to(problem.share_limits[None, :] == 0, problem.feasible_mask.shape)
    return out


def blocked_tasks(problem: Problem) -> tuple[list[int], list[str]]:
    """Tasks no plan can serve, and one note for each of the first few."""
    mask = problem.feasible_mask
    excluded = excluding_limits(problem)
    usable = mask.copy()
    for ex in excluded.values():
        usable &= ~ex
    blocked = np.flatnonzero(~usable.any(axis=1))
    notes = []
    for i in blocked[:_SHOWN]:
        if not mask[i].any():
            notes.append(f"task {i} has no feasible model at all")
            continue
        causes = [f"{name} (models {', '.join(map(str, np.flatnonzero(ex[i] & mask[i])))})"
                  for name, ex in excluded.items() if (ex[i] & mask[i]).any()]
        notes.append(f"task {i} fits no model: excluded by {'; '.join(causes)}")
    if blocked.size > _SHOWN:
        notes.append(f"... and {blocked.size - _SHOWN} more task(s) that fit no model")
    return [int(i) for i in blocked], notes


def capacity_scale(problem: Problem, assignment: NDArray[np.int64]) -> float:
    """The least alpha with every capacity row used <= alpha * limit by this plan."""
    a = np.asarray(assignment)
    served = np.flatnonzero(a >= 0)
    alpha = 0.0
    for row in problem.capacity_rows():
        used = np.bincount(a[served], weights=row.load[served, a[served]], minlength=problem.n_models)
        finite = np.isfinite(row.limit)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(used > 0, used / row.limit, 0.0)
        alpha = max(alpha, float(ratio[finite].max(initial=0.0)))
    return alpha


def share_scale(problem: Problem, assignment: NDArray[np.int64]) -> float:
    """The least beta with every model's task count <= beta * share_cap * N for this plan."""
    assert problem.share_cap is not None
    a = np.asarray(assignment)
    counts = np.bincount(a[a >= 0], minlength=problem.n_models)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(counts > 0, counts / (problem.share_cap * problem.n_tasks), 0.0)
    return float(ratio.max(initial=0.0))


def _split(time_limit_s: float | None, parts: int) -> float | None:
    return None if time_limit_s is None else max(time_limit_s / max(parts, 1), 0.5)


def diagnose(problem: Problem, solver: SpecSolver | None, time_limit_s: float | None = None) -> Diagnosis:
    """Explain an infeasible ``problem``; ``solver`` answers the auxiliary models."""
    blocked, notes = blocked_tasks(problem)
    min_budget = min_cap = min_share = None
    if solver is None:
        return Diagnosis(tuple(blocked), notes=tuple(notes) or ("no exact backend to analyse the limits",))

    families = [problem.budget is not None, bool(problem.capacity_rows()),
                problem.share_cap is not None, problem.min_avg_quality is not None]
    each = _split(time_limit_s, sum(families))

    def aux(spec: ModelSpec) -> tuple[NDArray[np.int64] | None, str]:
        # large problems: in a child process stopped at the limit, as every stage (_hard_stop)
        res = solve_stage(solver, problem, getattr(solver, "options", Options()), spec, each, None)
        if res.status.has_plan and res.assignment is not None:
            return res.assignment, "" if res.status is Status.OPTIMAL else " (not proven least)"
        if res.status is Status.INFEASIBLE:
            return None, "infeasible"
        return None, f"unknown ({res.status.value})"

    if problem.budget is not None:
        plan, how = aux(ModelSpec(Objective.COST, budget=False))
        if plan is not None:
            min_budget = problem.total_cost(plan)
            if min_budget > problem.budget * (1 + 1e-9):
                notes.append(f"the budget {problem.budget:.6g} is too small: the other limits need "
                             f"at least {min_budget:.6g}{how}")
        elif how == "infeasible":
            notes.append("even without the budget no plan meets the other limits")
    if problem.capacity_rows():
        plan, how = aux(ModelSpec(Objective.CAPACITY_SCALE))
        if plan is not None:
            min_cap = capacity_scale(problem, plan)
            if min_cap > 1 + 1e-9:
                notes.append(f"the capacities are too small: every capacity limit must be multiplied "
                             f"by at least {min_cap:.6g}{how} (e.g. a longer deadline)")
        elif how == "infeasible":
            notes.append("no capacity increase alone makes the problem feasible")
    if problem.share_cap is not None:
        plan, how = aux(ModelSpec(Objective.SHARE_SCALE))
        if plan is not None:
            min_share = share_scale(problem, plan)
            if min_share > 1 + 1e-9:
                notes.append(f"the share caps are too tight: they must be multiplied by at least "
                             f"{min_share:.6g}{how}")
        elif how == "infeasible":
            notes.append("no share-cap increase alone makes the problem feasible")
    if problem.min_avg_quality is not None:
        plan, how = aux(ModelSpec(Objective.QUALITY_SUM, quality_floor=False))
        if plan is not None and (plan >= 0).any():
            assert problem.quality is not None
            served = np.flatnonzero(plan >= 0)
            best = float(problem.quality[served, plan[served]].mean())
            if best < problem.min_avg_quality - 1e-9:
                notes.append(f"the quality floor {problem.min_avg_quality:.6g} is out of reach: the best "
                             f"average quality under the other limits is {best:.6g}{how}")
    return Diagnosis(tuple(blocked), min_budget, min_cap, min_share, tuple(notes))


def default_spec_solver(problem: Problem, options: Options | None = None) -> SpecSolver | None:
    """A spec solver of the first installed exact backend, for backends that have none."""
    import importlib

    from solvers.registry import BACKENDS

    for b in BACKENDS.values():
        if b.exact and b.is_available():
            module = importlib.import_module(b.module)
            make = getattr(module, "spec_solver", None)
            if make is not None:
                opts = options or Options()
                solver: SpecSolver = make(problem, Options(threads=opts.threads))
                return solver
    return None
