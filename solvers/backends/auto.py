"""The ``auto`` backend: pick a backend by size and structure, and say why.

Rules, in order (recorded in ``Solution.stats["auto"]``):

1. A problem that needs a feature ``fast`` does not declare (the makespan goal,
   minimize_latency: fast proves no bound for it) -> the first available exact backend that
   declares it.
2. Otherwise ``fast`` runs first (it is cheap at any size). If it proves its plan within
   ``options.rel_gap`` (or the problem is proven infeasible), that is the answer.
3. If the problem is small (at most :data:`EXACT_MAX_PAIRS` task-model pairs), or ``fast``
   refused it (queuing it cannot prove, no plan found), an exact backend finishes the job,
   with ``fast``'s plan as the hint where it has one (and, when the caller set no time
   limit, :data:`REFINE_TIME_LIMIT_S` for the refinement: the plan is already in hand).
4. Large problems keep ``fast``'s plan with its proven gap: an exact MIP would take
   minutes there (see the benchmarks).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from solvers import registry
from solvers.errors import ProblemError, SolverError, UnsupportedError
from solvers.options import Options
from solvers.problem import Feature, Goal, Problem
from solvers.solution import Solution, Status

#: Largest N x K for which an exact MIP is tried when fast has not proven its plan.
EXACT_MAX_PAIRS = 50_000
#: Time granted to the exact run when fast already has a plan and the caller set no limit.
REFINE_TIME_LIMIT_S = 30.0


def _exact_choice(problem: Problem) -> str | None:
    """The first installed exact backend that can express the problem."""
    for name in registry.available(exact_only=True):
        info = registry.get(name)
        try:
            registry.check_supported(info, problem)
        except UnsupportedError:
            continue
        return name
    return None


def solve(problem: Problem, options: Options) -> Solution:
    """Choose, solve, and record the choice; ``backend`` reads e.g. ``"auto->highs"``."""
    start = time.perf_counter()
    if options.native:  # they belong to one backend, and auto may pick any: never drop them
        raise ProblemError(f"native.{sorted(options.native)[0]}: backend 'auto' takes no native options; "
                           "name the backend they belong to (highs, cpsat or cbc)")
    pairs = problem.n_tasks * problem.n_models
    record: dict[str, Any] = {"pairs": pairs, "exact_max_pairs": EXACT_MAX_PAIRS}
    exact = _exact_choice(problem)
    record["exact_available"] = exact

    beyond_fast = registry.missing_features(registry.get("fast"), problem)
    if beyond_fast:
        names = ", ".join(sorted(f.value for f in beyond_fast))
        return _run_exact(problem, options, exact, None, start, record,
                          f"fast does not express {names}: exact backend")

    fast_sol: Solution | None = None
    try:
        fast_sol = registry.get("fast").load()(problem, options)
    except UnsupportedError as exc:
        record["fast_refused"] = str(exc)
    if fast_sol is not None:
        record["fast_status"] = fast_sol.status.value
        record["fast_gap"] = None if fast_sol.gap is None else float(fast_sol.gap)
        record["fast_wall_time_s"] = fast_sol.wall_time_s
        proven = fast_sol.status in (Status.OPTIMAL, Status.INFEASIBLE)
        if proven:
            return _tag(fast_sol, "fast", start, record,
                        f"fast proved its answer ({fast_sol.status.value}, gap {_fmt(fast_sol.gap)})")
        if pairs > EXACT_MAX_PAIRS and fast_sol.status.has_plan:
            return _tag(fast_sol, "fast", start, record,
                        f"{pairs} pairs > {EXACT_MAX_PAIRS}: an exact MIP is too slow here; "
                        f"fast's plan has proven gap {_fmt(fast_sol.gap)}")
        reason = (f"{pairs} pairs <= {EXACT_MAX_PAIRS} and fast's gap {_fmt(fast_sol.gap)} > "
                  f"rel_gap {options.rel_gap:g}: exact backend, fast's plan as the hint")
        if not fast_sol.status.has_plan:
            reason = f"fast found no plan ({fast_sol.message or fast_sol.status.value}): exact backend"
    else:
        reason = "fast refused the problem: exact backend"
    hint = fast_sol.assignment if fast_sol is not None and fast_sol.status.has_plan else None
    if hint is not None and options.time_limit_s is None:
        # fast's plan is already in hand: bound the refinement instead of waiting for a proof
        options = replace(options, time_limit_s=REFINE_TIME_LIMIT_S)
        record["refine_time_limit_s"] = REFINE_TIME_LIMIT_S
    sol = _run_exact(problem, options, exact, hint, start, record, reason)
    # never return worse than fast's plan: an exact run stopped by its time limit may be
    if fast_sol is not None and fast_sol.status.has_plan and sol.status.has_plan and sol.objective is not None:
        better = fast_sol.objective is not None and (
            fast_sol.objective > sol.objective if Goal(problem.goal).maximize else fast_sol.objective < sol.objective)
        if better and sol.status is not Status.OPTIMAL:
            record["kept_fast_plan"] = True
            bound = sol.bound if sol.bound is not None else fast_sol.bound
            merged = replace(fast_sol, bound=_tighter(bound, fast_sol.bound, problem))
            return _tag(merged, "fast", start, record, reason + "; the exact run did not beat fast's plan")
    return sol


def _run_exact(problem: Problem, options: Options, exact: str | None, hint: Any, start: float,
               record: dict[str, Any], reason: str) -> Solution:
    if exact is None:
        raise UnsupportedError(f"auto: {reason}, but no exact backend is installed (pip install highspy)")
    opts = options if hint is None else replace(options, hint=hint)
    if hint is not None and not registry.get(exact).supports(Feature.HINT):
        opts = options
    if options.time_limit_s is not None:
        left = max(options.time_limit_s - (time.perf_counter() - start), 1e-3)
        opts = replace(opts, time_limit_s=left)
    try:
        sol = registry.get(exact).load()(problem, opts)
    except (ImportError, SolverError) as exc:
        raise UnsupportedError(f"auto: {reason}, but backend {exact!r} failed to load: {exc}") from exc
    record["hint_from_fast"] = hint is not None
    return _tag(sol, exact, start, record, reason)


def _tag(sol: Solution, chose: str, start: float, record: dict[str, Any], reason: str) -> Solution:
    record.update(chose=chose, reason=reason)
    stats = dict(sol.stats)
    stats["auto"] = record
    return replace(sol, backend=f"auto->{chose}", stats=stats, wall_time_s=time.perf_counter() - start)


def _tighter(a: float | None, b: float | None, problem: Problem) -> float | None:
    """The tighter of two valid bounds (min for maximisation, max for minimisation)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b) if Goal(problem.goal).maximize else max(a, b)


def _fmt(gap: float | None) -> str:
    return "n/a" if gap is None else f"{gap:.2e}"
