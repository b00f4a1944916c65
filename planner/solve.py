"""From tasks and a catalog to a :class:`planner.plan.Plan`: formulate, solve, explain.

    plan = make_plan(load_tasks("tasks.yaml"), load_catalog(), goal="minimize_cost",
                     limits=Limits(budget_usd=10))

An infeasible problem raises :class:`InfeasibleError` whose message says, in the user's
terms (task ids, limits, dollars, seconds), what excludes what and the least budget or
deadline that would make a plan exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import solvers
from planner.catalog import Catalog, load_catalog
from planner.errors import InfeasibleError, InputError, RouteplanError
from planner.formulation import Formulation, formulate
from planner.goals import goal_spec
from planner.plan import (
    Assignment,
    BindingLimit,
    Fallback,
    Limits,
    Plan,
    QueuedTask,
    SolverInfo,
    Totals,
)
from planner.tasks import Task, load_tasks

N_FALLBACKS = 3
_BIND_TOL = 1e-6
#: Relative optimality gap a plan is solved to by default: 0.01 % of the objective is below
#: any price or quality estimate's precision, and it lets `auto` keep `fast`'s proven plan
#: instead of spending its refinement time on an exact MIP.
DEFAULT_REL_GAP = 1e-4


def make_plan(tasks: Sequence[Task] | str | Path, catalog: Catalog | str | Path | None = None,
              goal: str = "minimize_cost", limits: Limits | None = None, solver: str = "auto",
              time_limit_s: float | None = None, models: Sequence[str] | None = None,
              hint: Sequence[int] | None = None, rel_gap: float = DEFAULT_REL_GAP,
              cascades: bool = True) -> Plan:
    """Plan ``tasks`` on ``catalog`` for ``goal`` under ``limits``.

    tasks: Task objects or a task file; catalog: a Catalog, a catalog file, or None (default);
    solver: a backend name (auto, highs, cpsat, cbc, fast); models: restrict the catalog;
    hint: a starting assignment (offering index per task, -1 = queued) for backends that use one;
    rel_gap: stop once the plan is proven within this relative gap of the optimum;
    cascades: plan the catalog's cascades as columns too (``--no-cascades``: False).
    """
    tasks_file = None
    if isinstance(tasks, str | Path):
        tasks_file = str(tasks)
        tasks = load_tasks(tasks)
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    limits = limits or Limits()
    if time_limit_s is not None and not (math.isfinite(time_limit_s) and time_limit_s > 0):
        raise InputError(f"--time-limit: expected a number of seconds > 0, got {time_limit_s!r}")
    if not (math.isfinite(rel_gap) and 0 <= rel_gap < 1):
        raise InputError(f"--gap: expected a relative gap in [0, 1), got {rel_gap!r}")
    judges = judge_offerings(tasks, catalog)  # before solving: a judge not in the catalog is bad input
    f = formulate(tasks, catalog, goal=goal, limits=limits, models=models, cascades=cascades)
    sol = _solve(f, solver, time_limit_s, hint, rel_gap)
    if not sol.status.has_plan:
        if sol.status is solvers.Status.INFEASIBLE:
            works = None
            scale = sol.diagnosis.min_capacity_scale if sol.diagnosis is not None else None
            if limits.deadline_s is not None and scale is None:
                works = deadline_that_works(tasks, catalog, goal, limits, models)
            raise InfeasibleError(describe_infeasible(f, sol.diagnosis, works), sol.diagnosis)
        if sol.status is solvers.Status.TIME_LIMIT_NO_PLAN:
            raise RouteplanError(f"solver {sol.backend} hit the time limit before finding any plan; "
                                 f"raise --time-limit or use --solver fast")
        raise RouteplanError(f"solver {sol.backend} failed: {sol.message or sol.status.value}")
    return attach_judges(build_plan(f, sol, catalog_name=catalog.name, tasks_file=tasks_file), judges)


def judge_offerings(tasks: Sequence[Task], catalog: Catalog) -> dict[str, Any]:
    """The catalog offering of every judge model the tasks' checks name (judge name -> offering)."""
    out: dict[str, Any] = {}
    for t in tasks:
        check = t.check
        if check is not None and check.kind == "judge" and check.model not in out:
            try:
                out[check.model] = catalog.resolve(check.model)
            except InputError as exc:
                raise InputError(f"task {t.id}: check.model: {exc}") from None
    return out


def attach_judges(plan: Plan, judges: dict[str, Any]) -> Plan:
    """Judge checks name their offering by its id, and the plan snapshots it so ``run`` can
    reserve, price and call the judge like any other model."""
    if not judges:
        return plan
    have = {m.name for m in plan.models}
    extra = [o.snapshot() for o in {o.name: o for o in judges.values()}.values() if o.name not in have]
    entries: list[Assignment | QueuedTask] = [*plan.assignments, *plan.queued]
    for a in entries:
        if a.check is not None and a.check.kind == "judge":
            a.check = a.check.model_copy(update={"model": judges[a.check.model].name})
    plan.models = [*plan.models, *extra]
    return plan


def _solve(f: Formulation, solver: str, time_limit_s: float | None,
           hint: Sequence[int] | None, rel_gap: float = DEFAULT_REL_GAP) -> solvers.Solution:
    name = solver
    opts: dict[str, Any] = {"time_limit_s": time_limit_s, "rel_gap": rel_gap}
    if hint is not None and solvers.get(name).supports(solvers.Feature.HINT):
        opts["hint"] = np.asarray(hint, dtype=np.int64)
    try:
        return solvers.solve(f.problem, backend=name, **opts)
    except (solvers.UnknownBackend, solvers.BackendUnavailable, solvers.UnsupportedError) as exc:
        raise InputError(f"--solver: {exc}") from None


# ---------------------------------------------------------------------- infeasibility
#: The longest deadline ``deadline_that_works`` tries: a week, past any provider's batch window.
MAX_SEARCH_DEADLINE_S = 7 * 86400.0


def deadline_that_works(tasks: Sequence[Task], catalog: Catalog, goal: str, limits: Limits,
                        models: Sequence[str] | None, solves: int = 12) -> tuple[float, float] | None:
    """(a deadline that admits a plan, the longest one tried that did not), or None.

    For batches where no exact diagnosis proved the least deadline (the large ones, solved by
    ``fast``): check that a week admits a plan, then bisect geometrically. The problem is
    formulated once at that longest deadline; every shorter one is derived from it (a
    shorter deadline only excludes slow pairs and scales the capacities down).
    """
    from planner.formulation import problem_at_deadline

    assert limits.deadline_s is not None
    lo, hi = limits.deadline_s, max(limits.deadline_s, MAX_SEARCH_DEADLINE_S)
    f_max = formulate(tasks, catalog, goal=goal, limits=limits.model_copy(update={"deadline_s": hi}),
                      models=models)

    def has_plan(deadline_s: float) -> bool:
        problem, _ = problem_at_deadline(f_max, deadline_s)
        if problem is None:
            return False
        try:
            sol = solvers.solve(problem, backend="fast", time_limit_s=3.0, rel_gap=1e-2)
        except solvers.SolverError:
            return False
        return sol.status.has_plan

    if not has_plan(hi):
        return None
    for _ in range(solves):  # geometric bisection: deadlines span orders of magnitude
        mid = math.sqrt(lo * hi)
        if has_plan(mid):
            hi = mid
        else:
            lo = mid
        if hi / lo < 1.1:
            break
    return hi, lo


def describe_infeasible(f: Formulation, diag: solvers.Diagnosis | None,
                        works: tuple[float, float] | None = None) -> str:
    """The solver's diagnosis in the user's words: which limit, and what would fix it.

    works: from :func:`deadline_that_works`, when no least deadline was proven."""
    lim = f.limits
    p = f.problem
    parts: list[str] = []
    rows = np.where(f.feasible, f.cost_usd, np.inf)
    if diag is not None and diag.tasks_without_model:
        shown = ", ".join(repr(f.tasks[i].id) for i in diag.tasks_without_model[:5])
        parts.append(f"tasks {shown} have no feasible model")
    if lim.budget_usd is not None:
        least = diag.min_budget if diag is not None and diag.min_budget is not None else None
        cheapest = float(rows.min(axis=1).sum())
        if least is not None and least > lim.budget_usd * (1 + 1e-9):
            parts.append(f"budget ${lim.budget_usd:g} is too small: the least budget that meets the other "
                         f"limits is ${least:.4f}")
        elif cheapest > lim.budget_usd * (1 + 1e-9):
            parts.append(f"budget ${lim.budget_usd:g} is too small: serving every task on its cheapest "
                         f"allowed model costs ${cheapest:.4f}")
    if lim.avg_quality is not None:
        best = float(np.where(f.feasible, f.quality, -np.inf).max(axis=1).mean())
        if best < lim.avg_quality:
            parts.append(f"--avg-quality {lim.avg_quality:g} is unreachable: the best mean quality is {best:.3f}")
    if diag is not None and diag.min_capacity_scale is not None and diag.min_capacity_scale > 1 + 1e-9 \
            and lim.deadline_s is not None:
        parts.append(f"deadline {lim.deadline_s:g} s is too short for the models' concurrency and rate "
                     f"limits: at least {lim.deadline_s * diag.min_capacity_scale:.1f} s is needed")
    if diag is not None and diag.min_share_scale is not None and diag.min_share_scale > 1 + 1e-9:
        parts.append(f"share caps are too tight: they must grow {diag.min_share_scale:.2f}x")
    if not parts and lim.deadline_s is not None and works is not None:
        parts.append(f"deadline {lim.deadline_s:g} s is too short for the models' concurrency and rate "
                     f"limits: --deadline {math.ceil(works[0])} admits a plan ({works[1]:.0f} s did not, "
                     f"in a quick search with the fast backend)")
    if not parts and lim.deadline_s is not None:  # no least deadline was proven (e.g. fast's dual)
        parts.append(f"no plan fits in the deadline {lim.deadline_s:g} s with the other limits: the "
                     "models' concurrency and rate limits cannot take the batch in that time; try a longer "
                     "deadline (`routeplan sweep --deadline START:STOP:COUNT` shows which work)")
    if not parts and diag is not None and diag.notes:
        parts.append(str(diag))
    if not parts:
        parts.append("the limits together admit no plan (budget, average quality, deadline and share "
                     "caps interact); relax one of them")
    fix = "" if p.allow_queue else "; or pass --allow-queue to queue what does not fit"
    return f"no plan meets every limit for {len(f.tasks)} tasks: " + "; ".join(parts) + fix


# ---------------------------------------------------------------------- the plan
def _rank_matrix(f: Formulation) -> np.ndarray:
    """Lower is better, shape (n, k), for ranking fallbacks by the goal."""
    figure = goal_spec(f.goal).figure  # an unknown goal is an InputError, never another goal
    if figure == "cost":
        return f.cost_usd
    if figure == "quality":
        return -f.quality
    if figure == "latency":
        return f.latency_s
    return np.asarray(f.problem.balanced_score)


def _plain(x: Any) -> Any:
    """JSON-safe copy of solver stats (numpy scalars/arrays, enums, nested dicts)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist() if x.size <= 50 else f"array{x.shape}"
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, str | int | float | bool):
        return x
    return str(getattr(x, "value", x))


def build_plan(f: Formulation, sol: solvers.Solution, *, catalog_name: str = "default",
               tasks_file: str | None = None) -> Plan:
    """Turn a solution into the plan: assignments with fallbacks, totals, binding limits, queue."""
    a = np.asarray(sol.assignment)
    offs = f.offerings
    n = f.cost_usd.shape[0]
    served = np.flatnonzero(a >= 0)
    aj = a[served]

    from planner.prefix_cache import plan_groups

    groups = None if f.prefix is None else plan_groups(f.prefix, f.tasks, offs, f.cost_usd, a)
    task_cost = f.cost_usd[np.arange(n), a.clip(0)] + (0.0 if groups is None else groups.extra_usd)
    binding = binding_limits(f, a, sol)
    entries = plan_entries(f, a, task_cost=task_cost, groups=groups, binding=binding)

    cost = task_cost[served]
    lat = f.latency_s[served, aj]
    qual = f.quality[served, aj]
    totals = Totals(
        n_tasks=n, n_assigned=int(served.size), n_queued=int(n - served.size),
        projected_cost_usd=float(cost.sum()),
        projected_worst_case_cost_usd=float(f.worst_cost_usd[served, aj].sum() + (
            0.0 if groups is None else groups.extra_usd[served].sum())),
        makespan_s=float(f.problem.makespan(a)) if served.size else 0.0,
        mean_latency_s=float(lat.mean()) if served.size else 0.0,
        mean_quality=float(qual.mean()) if served.size else 0.0,
    )
    info = SolverInfo(name=sol.backend, status=sol.status.value, objective=_finite(sol.objective),
                      bound=_finite(sol.bound), gap=_finite(sol.gap), wall_time_s=sol.wall_time_s,
                      budget_shadow_price=_finite(sol.budget_shadow_price), stats=_plain(dict(sol.stats)))
    notes = list(f.notes)
    if entries.cascades_used:
        from planner.cascade_plan import plan_notes

        notes += plan_notes(f.cascades, entries.cascades_used)
    return Plan(tasks_file=tasks_file, catalog=catalog_name, goal=f.goal, limits=f.limits,
                models=[offs[j].snapshot() for j in sorted(entries.used)], assignments=entries.assignments,
                queued=entries.queued, totals=totals, solver=info, binding_limits=binding, notes=notes,
                prefix_groups=[] if groups is None else groups.entries)


@dataclass
class PlanEntries:
    """A plan's per-task entries for some tasks: what :func:`build_plan` assembles, and what a
    sharded plan is rebuilt from shard by shard (:mod:`planner.distributed.sharded_plan`)."""

    assignments: list[Assignment]
    queued: list[QueuedTask]
    used: set[int]  # offering columns the entries name (assigned or as fallbacks)
    cascades_used: list[int]


def plan_entries(f: Formulation, a: np.ndarray, *, task_cost: np.ndarray | None = None, groups: Any = None,
                 binding: Sequence[BindingLimit] = ()) -> PlanEntries:
    """Every task of ``f`` as an assignment (with its fallbacks, ranked by the goal) or a
    queued entry (with its reason), for the offering column per task in ``a`` (-1: queued).

    task_cost: each task's projected cost (default: its column's; prefix groups add their
    share); binding: the plan's binding limits, for the queued tasks' reasons."""
    offs = f.offerings
    n, k = f.cost_usd.shape
    k0 = len(offs)  # columns from k0 on are cascades
    served = np.flatnonzero(a >= 0)
    aj = a[served]
    if task_cost is None:
        task_cost = f.cost_usd[np.arange(n), a.clip(0)]

    rank = np.where(f.feasible, _rank_matrix(f), np.inf)
    rank[:, k0:] = np.inf  # a fallback is a single offering
    is_batch = np.array([o.mode == "batch" for o in offs] + [False] * (k - k0))
    rank = np.where(is_batch[None, :] & ~is_batch[a.clip(0)][:, None], np.inf, rank)  # no 24 h detours
    rank[served, aj] = np.inf
    order = np.argsort(rank, axis=1, kind="stable")[:, :N_FALLBACKS]

    used: set[int] = {int(j) for j in aj if j < k0}
    assignments: list[Assignment] = []
    cascade_used: list[int] = []
    for i, j in zip(served.tolist(), aj.tolist(), strict=True):
        t = f.tasks[i]
        spec = None
        if j >= k0:
            from planner.cascade_plan import plan_spec

            col = f.cascades.columns[j - k0]
            spec = plan_spec(f.cascades, j - k0, i, offs, f.worst_cost_usd[i, j])
            used.update((col.first, col.second, *col.verify))
            cascade_used.append(j - k0)
        model = offs[j].name if j < k0 else offs[f.cascades.columns[j - k0].first].name
        fbs = []
        for jj in order[i].tolist():
            if not np.isfinite(rank[i, jj]):
                break
            used.add(jj)
            fbs.append(Fallback(model=offs[jj].name, projected_cost_usd=float(f.cost_usd[i, jj]),
                                projected_latency_s=float(f.latency_s[i, jj]),
                                projected_quality=float(f.quality[i, jj])))
        assignments.append(Assignment(
            task_id=t.id, model=model, type=t.type, messages=t.chat_messages,
            max_tokens=int(f.max_tokens[i, j]), priority=t.priority,
            max_latency_s=min((x for x in (t.max_latency_s, f.limits.max_latency_s) if x is not None), default=None),
            projected_input_tokens=int(round(f.in_tok[i, j])),
            projected_output_tokens=int(round(f.out_tok[i, j])),
            projected_cost_usd=float(task_cost[i]), projected_latency_s=float(f.latency_s[i, j]),
            projected_quality=float(f.quality[i, j]), worst_case_cost_usd=float(f.worst_cost_usd[i, j]),
            fallbacks=fbs, check=t.check, cascade=spec, prefix_group=t.prefix_group,
            **({} if groups is None else _prefix_fields(groups, f, i)),
        ))

    queued = [QueuedTask(task_id=f.tasks[i].id, type=f.tasks[i].type, messages=f.tasks[i].chat_messages,
                         max_tokens=f.tasks[i].max_output_tokens, priority=f.tasks[i].priority,
                         reason=_queue_reason(f, int(i), list(binding)), check=f.tasks[i].check)
              for i in np.flatnonzero(a < 0).tolist()]
    return PlanEntries(assignments, queued, used, cascade_used)


def _prefix_fields(groups: Any, f: Formulation, i: int) -> dict[str, Any]:
    """An assignment's cached-prefix fields: tokens read or written, the cache breakpoint."""
    assert f.prefix is not None
    g = int(f.prefix.group[i])
    return {"projected_cached_tokens": int(groups.cached_tokens[i]),
            "projected_cache_write_tokens": int(groups.write_tokens[i]),
            "prefix_messages": f.prefix.groups[g].messages if g >= 0 else 0}


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def binding_limit(name: str, limit: float, used: float, *, at_least: bool = False) -> BindingLimit:
    slack = (used - limit) if at_least else (limit - used)
    return BindingLimit(name=name, limit=float(limit), used=float(used), slack=float(slack),
                        binding=bool(slack <= _BIND_TOL * max(1.0, abs(limit))))


def binding_limits(f: Formulation, a: np.ndarray, sol: solvers.Solution) -> list[BindingLimit]:
    """Every global limit with its use and slack; per-model rows only when (nearly) full."""
    lim, p = f.limits, f.problem
    served = np.flatnonzero(a >= 0)
    aj = a[served]
    out: list[BindingLimit] = []
    if lim.budget_usd is not None:
        out.append(binding_limit("budget_usd", lim.budget_usd, float(f.cost_usd[served, aj].sum()) + p.charges(a)))
    if lim.avg_quality is not None and served.size:
        out.append(binding_limit("avg_quality", lim.avg_quality, float(f.quality[served, aj].mean()), at_least=True))
    if lim.deadline_s is not None:
        out.append(binding_limit("deadline_s (makespan)", lim.deadline_s, p.makespan(a) if served.size else 0.0))
    for row in p.capacity_rows():
        used = np.bincount(aj, weights=row.load[served, aj], minlength=len(f.offerings))
        for j in np.flatnonzero(np.isfinite(row.limit) & (used >= 0.9 * row.limit) & (used > 0)):
            label = {"capacity": "model-seconds"}.get(row.name, row.name)
            out.append(binding_limit(f"{f.offerings[j].name} {label}", row.limit[j], used[j]))
    if p.share_limits is not None:
        counts = np.bincount(aj, minlength=len(f.offerings))
        for j in np.flatnonzero((p.share_limits < len(f.tasks)) & (counts >= p.share_limits)):
            out.append(binding_limit(f"{f.offerings[j].name} share (tasks)", p.share_limits[j], counts[j]))
    return out


def _queue_reason(f: Formulation, i: int, binding: list[BindingLimit]) -> str:
    if not f.feasible[i].any():
        return "no model can serve it: " + f.explain_task(i).split(": ", 1)[1]
    budget = next((b for b in binding if b.name == "budget_usd"), None)
    cheapest = float(f.cost_usd[i, f.feasible[i]].min())
    if budget is not None and cheapest > budget.slack:
        return (f"deferred by budget_usd: its cheapest allowed model costs ${cheapest:.6f}, more than "
                f"the ${max(budget.slack, 0.0):.6f} left after higher-priority tasks")
    tight = [b.name for b in binding if b.binding]
    if tight:
        return ("deferred: the plan serves higher-priority tasks first within " + ", ".join(tight)
                + "; rerun with more budget or time")
    return "deferred: the limits together leave no room for it"


def plan_tasks_frame(plan: Plan) -> Any:
    """Per-task rows of a plan as a pandas DataFrame (assigned and queued)."""
    import pandas as pd

    from planner.catalog import short_name

    rows = [{"task_id": x.task_id, "type": x.type, "model": x.model, "model_short": short_name(x.model),
             "status": "assigned", "cascade": x.cascade.label if x.cascade is not None else "",
             "projected_input_tokens": x.projected_input_tokens,
             "projected_output_tokens": x.projected_output_tokens,
             "projected_cost_usd": x.projected_cost_usd, "projected_latency_s": x.projected_latency_s,
             "projected_quality": x.projected_quality, "worst_case_cost_usd": x.worst_case_cost_usd,
             "max_tokens": x.max_tokens, "priority": x.priority,
             "fallbacks": ",".join(fb.model for fb in x.fallbacks), "reason": ""}
            for x in plan.assignments]
    if plan.prefix_groups:  # the cached-prefix columns, only for plans that have groups
        for row, x in zip(rows, plan.assignments, strict=True):
            row.update(prefix_group=x.prefix_group or "", projected_cached_tokens=x.projected_cached_tokens,
                       projected_cache_write_tokens=x.projected_cache_write_tokens)
    rows += [{"task_id": q.task_id, "type": q.type, "model": "", "model_short": "", "status": "queued",
              "cascade": "",
              "max_tokens": q.max_tokens, "priority": q.priority, "reason": q.reason} for q in plan.queued]
    return pd.DataFrame(rows)
