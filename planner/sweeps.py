"""What-if sweeps: one batch solved across budgets, deadlines or balanced-goal weights.

Exposed as ``planner.sweep`` (``routeplan sweep``). The module is ``sweeps``, not ``sweep``:
a submodule of that name would replace the function on the package with the module.

    df = planner.sweep("examples/tasks/demo_batch.yaml", goal="maximize_quality",
                       budget=np.linspace(0.001, 0.05, 20))

The batch is formulated once (tokens, costs, latencies, qualities: the expensive part); each
point only changes a limit on the :class:`solvers.Problem`:

- ``budget``: the problem's budget;
- ``deadline``: formulated at the loosest deadline T_max; at T the feasible mask loses the
  pairs slower than T and every capacity (concurrency x T, rpm x T / 60, tpm x T / 60) is
  scaled by T / T_max. That is exactly what :func:`planner.formulation.formulate` would build
  at T (the deadline enters it only there; a test checks the two agree);
- ``weights``: the balanced goal's weights. A plain number q is the quality weight; cost and
  speed share 1 - q in the ratio of the base ``limits.weights`` (default 0.4 : 0.2).

Points are solved in ascending order of the swept value, each hinted with its neighbour's
plan (a plan for a smaller budget or a shorter deadline stays feasible at the next point).
Where the structure allows (the budget axis, a linear goal, the budget as the only coupling
limit) and the solver is ``auto`` or ``fast``, the whole frontier comes from one parametric
pass over the LP-dominance hulls (:func:`solvers.parametric.budget_frontier`); each point's
``bound`` is then its LP bound and ``gap`` the distance to it.

The result has one row per point, sorted by the swept value:

=====================  ==============================================================
column                 meaning
=====================  ==============================================================
``budget_usd`` /       the swept value (one of these three). A weights sweep also has
``deadline_s`` /       ``weight_cost``, ``weight_quality``, ``weight_speed``.
``quality_weight``
status                 solvers.Status value (optimal, feasible, infeasible, error...)
method                 ``parametric`` (one hull pass) or ``solve`` (one solve per point)
backend                the backend that produced the point (``auto->fast``...)
objective, bound, gap  the goal's value, the proven bound, their relative gap
projected_cost_usd     total projected cost of the served tasks
mean_quality           mean projected quality of the served tasks (0-1)
makespan_s             batch makespan under per-model concurrency
mean_latency_s         mean projected latency of the served tasks
served_tasks,          tasks served / queued
queued_tasks
budget_shadow_price    d(objective)/d(budget), objective units per USD (NaN: none)
solve_time_s           wall time of the point (a parametric point: its cut only)
carried_from           the earlier point whose plan this one kept because it was better
                       (see :func:`_carry_forward`); NaN when the point's own plan is used
message                why a point has no plan (empty otherwise)
``n_<offering>``       tasks on each catalog offering, one column per offering (and
                       per cascade, named by its label: ``n_a -> c (agree: a, b)``)
=====================  ==============================================================

``df.attrs`` holds ``axis``, ``goal``, ``models`` (offering names, catalog order),
``n_tasks``, ``method``, ``formulate_s`` and ``wall_time_s`` (the whole sweep, formulation
excluded). :func:`model_mix` turns the ``n_<offering>`` columns into a per-model table.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import solvers
from planner.catalog import Catalog, load_catalog
from planner.errors import InputError
from planner.formulation import Formulation, formulate, problem_at_deadline
from planner.plan import Limits
from planner.solve import DEFAULT_REL_GAP
from planner.tasks import Task, load_tasks

if TYPE_CHECKING:
    import pandas as pd

AXES = ("budget", "deadline", "weights")
AXIS_COLUMN = {"budget": "budget_usd", "deadline": "deadline_s", "weights": "quality_weight"}
#: The goal a sweep uses when none is given: the question each axis usually asks.
DEFAULT_GOAL = {"budget": "maximize_quality", "deadline": "minimize_cost", "weights": "balanced"}
MAX_POINTS = 10_000
PARAMETRIC_SOLVERS = ("auto", "fast")
COUNT_PREFIX = "n_"


@dataclasses.dataclass(frozen=True)
class _Point:
    """One point's problem (None when the point is infeasible before solving) and its label."""

    value: float
    problem: solvers.Problem | None
    message: str = ""
    weights: solvers.Weights | None = None


def sweep(tasks: Sequence[Task] | str | Path, catalog: Catalog | str | Path | None = None, *,
          goal: str | None = None, budget: Sequence[float] | None = None,
          deadline: Sequence[float] | None = None,
          weights: Sequence[float | Mapping[str, float]] | None = None,
          limits: Limits | None = None, solver: str = "auto", time_limit_s: float | None = None,
          models: Sequence[str] | None = None, parametric: bool | None = None,
          rel_gap: float = DEFAULT_REL_GAP, cascades: bool = True) -> pd.DataFrame:
    """Solve the batch at every point of exactly one axis; one DataFrame row per point.

    budget : USD values >= 0. deadline : seconds > 0. weights : quality weights in [0, 1]
    (or dicts with cost/quality/speed). goal : default by axis (:data:`DEFAULT_GOAL`); a
    weights sweep needs ``balanced``. limits : every other limit, fixed across the sweep (it
    must not also set the swept one). time_limit_s : per point. parametric : None = one hull
    pass where the structure allows; True = require it (InputError when it cannot be used);
    False = one solve per point. rel_gap : the relative gap each point is proven to (as in
    ``make_plan``). cascades : the catalog's cascades as columns too (:mod:`planner.cascade_plan`;
    each has its ``n_<label>`` column). See the module docstring for the columns.
    """
    axis, raw = _one_axis(budget=budget, deadline=deadline, weights=weights)
    goal = goal or DEFAULT_GOAL[axis]
    limits = limits or Limits()
    if time_limit_s is not None and not (math.isfinite(time_limit_s) and time_limit_s > 0):
        raise InputError(f"time_limit_s: expected a number of seconds > 0, got {time_limit_s!r}")
    if not (math.isfinite(rel_gap) and 0 <= rel_gap < 1):
        raise InputError(f"--gap: expected a relative gap in [0, 1), got {rel_gap!r}")
    if axis == "weights" and goal != "balanced":
        raise InputError(f"weights sweep: the weights belong to goal balanced, got goal {goal!r}")
    if axis == "budget" and limits.budget_usd is not None:
        raise InputError("budget sweep: limits.budget_usd is the swept axis; leave it unset")
    if axis == "deadline" and limits.deadline_s is not None:
        raise InputError("deadline sweep: limits.deadline_s is the swept axis; leave it unset")
    if axis == "weights":
        pairs = sorted((_weights_of(w, limits.weights) for w in raw), key=lambda p: p[0])
        values = [q for q, _ in pairs]
    else:
        values = sorted(_checked_values(axis, raw))  # type: ignore[arg-type]

    if isinstance(tasks, str | Path):
        tasks = load_tasks(tasks)
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    t0 = time.perf_counter()
    base = limits.model_copy(update={"deadline_s": max(values)}) if axis == "deadline" else limits
    f = formulate(tasks, catalog, goal=goal, limits=base, models=models, cascades=cascades)
    formulate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    use_parametric = _parametric_allowed(axis, f.problem, solver, parametric)
    if use_parametric:
        from solvers.parametric import budget_frontier

        opts = solvers.Options(time_limit_s=time_limit_s, rel_gap=rel_gap)
        sols = budget_frontier(f.problem, values, opts, backend=solver)
        # every point shares the problem: only the budget differs, and the objective ignores it
        solved: list[tuple[_Point, solvers.Solution | None]] = [
            (_Point(v, f.problem), s) for v, s in zip(values, sols, strict=True)]
    else:
        if axis == "weights":
            points = [_Point(q, _with(f.problem, weights=w), weights=w) for q, w in pairs]
        elif axis == "budget":
            points = [_Point(b, _with(f.problem, budget=b)) for b in values]
        else:
            points = [_at_deadline(f, t) for t in values]
        solved = _solve_points(points, solver, time_limit_s, rel_gap)
    if axis != "weights":
        solved = _carry_forward(solved)
    method = "parametric" if use_parametric else "solve"
    rows = [_row(f, pt, sol, method) for pt, sol in solved]
    wall_s = time.perf_counter() - t0
    return _frame(f, axis, rows, {"formulate_s": formulate_s, "wall_time_s": wall_s, "method": method})


# ---------------------------------------------------------------------- the axis
def _one_axis(**axes: Sequence[Any] | None) -> tuple[str, list[Any]]:
    given = [name for name, v in axes.items() if v is not None]
    if len(given) != 1:
        have = ", ".join(given) if given else "none"
        raise InputError(f"sweep: expected exactly one axis of {', '.join(AXES)}, got {have}")
    name = given[0]
    values = axes[name]
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence | np.ndarray):
        raise InputError(f"{name}: expected a list of values, got {type(values).__name__}")
    values = list(values)
    if not values:
        raise InputError(f"{name}: expected at least one value")
    if len(values) > MAX_POINTS:
        raise InputError(f"{name}: expected at most {MAX_POINTS} points, got {len(values)}")
    return name, values


def _checked_values(axis: str, raw: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for v in raw:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{axis}: expected numbers, got {v!r}") from None
        if not math.isfinite(x) or x < 0 or (axis == "deadline" and x == 0):
            want = "seconds > 0" if axis == "deadline" else "USD >= 0"
            raise InputError(f"{axis}: expected {want}, got {v!r}")
        out.append(x)
    return out


def _weights_of(w: float | Mapping[str, float], base: Mapping[str, float]) -> tuple[float, solvers.Weights]:
    """(quality share, Weights) of one point of a weights sweep."""
    if isinstance(w, Mapping):
        extra = set(w) - {"cost", "quality", "speed"}
        vals = {k: w.get(k, 0.0) for k in ("cost", "quality", "speed")}
        if extra or any(not isinstance(x, int | float) or not math.isfinite(x) or x < 0 for x in vals.values()) \
                or sum(vals.values()) <= 0:
            raise InputError(f"weights: expected cost, quality, speed >= 0 (one > 0), got {dict(w)!r}")
        total = sum(vals.values())
        return vals["quality"] / total, solvers.Weights(**vals)
    try:
        q = float(w)
    except (TypeError, ValueError):
        raise InputError(f"weights: expected quality weights in [0, 1], got {w!r}") from None
    if not (0 <= q <= 1):
        raise InputError(f"weights: expected quality weights in [0, 1], got {w!r}")
    c, s = base.get("cost", 0.4), base.get("speed", 0.2)
    if c + s <= 0:
        c, s = 2.0, 1.0  # the default 0.4 : 0.2
    rest = 1.0 - q
    return q, solvers.Weights(cost=rest * c / (c + s), quality=q, speed=rest * s / (c + s))


def _parametric_allowed(axis: str, problem: solvers.Problem, solver: str, parametric: bool | None) -> bool:
    """One hull pass: budget axis, parametric structure, a solver that allows a heuristic plan."""
    if parametric is False:
        return False
    from solvers.parametric import is_parametric

    why = None
    if axis != "budget":
        why = f"the {axis} axis changes more than the budget"
    elif solver not in PARAMETRIC_SOLVERS:
        why = f"--solver {solver} asks for one solve per point (use auto or fast)"
    elif not is_parametric(problem):
        why = ("the goal or limits are not parametric (it needs a linear goal and the budget as the only "
               "coupling limit: no deadline capacities, share caps or average-quality floor)")
    if why is None:
        return True
    if parametric:
        raise InputError(f"parametric sweep: not possible here: {why}")
    return False


# ---------------------------------------------------------------------- the points
def _with(problem: solvers.Problem, **changes: Any) -> solvers.Problem:
    """The problem with other limits. Problem copies its (read-only) arrays; nothing is re-derived
    from the tasks (no token counts, prices or qualities)."""
    return dataclasses.replace(problem, **changes)


def _at_deadline(f: Formulation, deadline_s: float) -> _Point:
    problem, why = problem_at_deadline(f, deadline_s)
    return _Point(deadline_s, problem, why)


def _solve_points(points: list[_Point], solver: str, time_limit_s: float | None,
                  rel_gap: float) -> list[tuple[_Point, solvers.Solution | None]]:
    """Solve each point in order, hinting each with the last plan found."""
    out: list[tuple[_Point, solvers.Solution | None]] = []
    hint: np.ndarray | None = None
    takes_hint = _takes_hint(solver)
    errors: list[str] = []
    for pt in points:
        if pt.problem is None:
            out.append((pt, None))
            continue
        opts: dict[str, Any] = {"time_limit_s": time_limit_s, "rel_gap": rel_gap}
        if hint is not None and takes_hint:
            opts["hint"] = hint
        try:
            sol = solvers.solve(pt.problem, backend=solver, **opts)
        except (solvers.UnknownBackend, solvers.BackendUnavailable) as exc:
            raise InputError(f"--solver: {exc}") from None
        except solvers.SolverError as exc:  # e.g. fast refusing a queue it cannot prove
            errors.append(str(exc))
            out.append((dataclasses.replace(pt, message=str(exc)), None))
            continue
        out.append((pt, sol))
        if sol.status.has_plan:
            hint = sol.assignment
    if len(errors) == len(points):
        raise InputError(f"--solver {solver}: {errors[0]}")
    return out


def _carry_forward(solved: list[tuple[_Point, solvers.Solution | None]]
                   ) -> list[tuple[_Point, solvers.Solution | None]]:
    """Keep the previous point's plan where it beats this point's (budget and deadline axes).

    Points are in ascending order of a limit that only relaxes (more budget; a later deadline
    adds pairs and capacity), so the previous plan is feasible here too; a heuristic or
    time-limited point that came out worse is replaced by it, and the frontier never gets
    worse as the limit relaxes. The point keeps its own bound and shadow price.
    """
    out: list[tuple[_Point, solvers.Solution | None]] = []
    prev: np.ndarray | None = None
    prev_value = math.nan
    for pt, sol in solved:
        if prev is not None and pt.problem is not None and _better(pt.problem, prev, sol):
            sol = _carried(pt.problem, sol, prev, pt.problem.objective_value(prev), prev_value)
        if sol is not None and sol.status.has_plan:
            prev, prev_value = sol.assignment, pt.value
        out.append((pt, sol))
    return out


def _better(p: solvers.Problem, a: np.ndarray, sol: solvers.Solution | None) -> bool:
    """Whether plan ``a`` beats ``sol`` on ``p``: more priority served first (queuing is
    lexicographic), then the goal."""
    if sol is None or not sol.status.has_plan:
        return True
    tol = 1e-9
    mine_w, theirs_w = p.served_weight(sol.assignment), p.served_weight(a)
    if abs(theirs_w - mine_w) > tol * max(1.0, mine_w):
        return theirs_w > mine_w
    mine, theirs = p.objective_value(sol.assignment), p.objective_value(a)
    if abs(theirs - mine) <= tol * max(1.0, abs(mine)):
        return False
    return theirs > mine if solvers.Goal(p.goal).maximize else theirs < mine


def _carried(p: solvers.Problem, sol: solvers.Solution | None, a: np.ndarray, objective: float,
             from_value: float) -> solvers.Solution:
    goal = solvers.Goal(p.goal)
    bound = sol.bound if sol is not None else None
    gap = solvers.relative_gap(objective, bound, goal)
    status = solvers.Status.OPTIMAL if gap is not None and gap <= 1e-6 else solvers.Status.FEASIBLE
    stats = dict(sol.stats) if sol is not None else {}
    stats["carried_from"] = from_value
    return solvers.Solution(
        assignment=a, status=status, goal=goal, backend=sol.backend if sol is not None else "carried",
        objective=objective, bound=bound, wall_time_s=sol.wall_time_s if sol is not None else 0.0,
        budget_shadow_price=sol.budget_shadow_price if sol is not None else None,
        served_weight=p.served_weight(a), stats=stats)


def _takes_hint(solver: str) -> bool:
    try:
        return solvers.get(solver).supports(solvers.Feature.HINT)
    except solvers.UnknownBackend as exc:
        raise InputError(f"--solver: {exc}") from None


def _num(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.nan


def _row(f: Formulation, pt: _Point, sol: solvers.Solution | None, method: str) -> dict[str, Any]:
    """The figures of one point, from the formulation's arrays and the solution's assignment."""
    k = f.cost_usd.shape[1]  # offerings, then cascades
    row: dict[str, Any] = {"value": pt.value, "weights": pt.weights, "method": method}
    if sol is None or not sol.status.has_plan:
        row.update(status=sol.status.value if sol is not None else "infeasible",
                   backend=sol.backend if sol is not None else "", objective=math.nan,
                   bound=_num(sol.bound) if sol is not None else math.nan, gap=math.nan,
                   projected_cost_usd=math.nan, mean_quality=math.nan, makespan_s=math.nan,
                   mean_latency_s=math.nan, served_tasks=0, queued_tasks=len(f.tasks), carried_from=math.nan,
                   budget_shadow_price=math.nan,
                   solve_time_s=sol.wall_time_s if sol is not None else 0.0,
                   message=pt.message or (_why(sol) if sol is not None else ""),
                   counts=np.zeros(k, dtype=np.int64))
        return row
    a = np.asarray(sol.assignment)
    served = np.flatnonzero(a >= 0)
    aj = a[served]
    p = pt.problem if pt.problem is not None else f.problem
    row.update(
        status=sol.status.value, backend=sol.backend, objective=_num(sol.objective), bound=_num(sol.bound),
        gap=_num(sol.gap), projected_cost_usd=float(f.cost_usd[served, aj].sum()),
        mean_quality=float(f.quality[served, aj].mean()) if served.size else math.nan,
        makespan_s=float(p.makespan(a)), mean_latency_s=float(f.latency_s[served, aj].mean()) if served.size
        else math.nan, served_tasks=int(served.size), queued_tasks=int(a.size - served.size),
        carried_from=_num(sol.stats.get("carried_from")),
        budget_shadow_price=_num(sol.budget_shadow_price), solve_time_s=float(sol.wall_time_s),
        message="", counts=np.bincount(aj, minlength=k),
    )
    return row


def _why(sol: solvers.Solution) -> str:
    d = sol.diagnosis
    if d is not None and d.min_budget is not None:
        return f"the least feasible budget is ${d.min_budget:.6g}"
    return (str(d) if d is not None else "") or sol.message or sol.status.value


def _frame(f: Formulation, axis: str, rows: list[dict[str, Any]], info: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    names = [f.column_name(j) for j in range(f.cost_usd.shape[1])]
    col = AXIS_COLUMN[axis]
    records = []
    for r in rows:
        rec: dict[str, Any] = {col: r["value"]}
        if axis == "weights":
            w = r["weights"]
            rec.update(weight_cost=w.cost, weight_quality=w.quality, weight_speed=w.speed)
        rec.update({key: r[key] for key in (
            "status", "method", "backend", "objective", "bound", "gap", "projected_cost_usd", "mean_quality",
            "makespan_s", "mean_latency_s", "served_tasks", "queued_tasks", "budget_shadow_price",
            "solve_time_s", "carried_from", "message")})
        rec.update({COUNT_PREFIX + name: int(c) for name, c in zip(names, r["counts"], strict=True)})
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    df.attrs.update(axis=axis, column=col, goal=f.goal, models=names, n_tasks=len(f.tasks), **info)
    return df


# ---------------------------------------------------------------------- reading a sweep
def model_mix(df: pd.DataFrame, *, share: bool = False, min_share: float = 0.0,
              tidy: bool = False) -> pd.DataFrame:
    """The tasks per model at each point, as a table indexed by the swept value.

    share : fractions of the served tasks instead of counts. min_share : models never above
    it are summed into ``other``. tidy : long form (value, model, tasks) instead of wide.
    Models used at no point are dropped.
    """
    col = df.attrs.get("column") or next(c for c in AXIS_COLUMN.values() if c in df.columns)
    counts = df[[c for c in df.columns if c.startswith(COUNT_PREFIX)]]
    counts.columns = [c[len(COUNT_PREFIX):] for c in counts.columns]
    counts.index = df[col].to_numpy()
    counts.index.name = col
    counts = counts.loc[:, counts.sum(axis=0) > 0]
    served = counts.sum(axis=1).replace(0, np.nan)
    fractions = counts.div(served, axis=0).fillna(0.0)
    if min_share > 0:
        small = [c for c in counts.columns if fractions[c].max() < min_share]
        if small:
            counts = counts.drop(columns=small).assign(other=counts[small].sum(axis=1))
            fractions = counts.div(served, axis=0).fillna(0.0)
    out = fractions if share else counts
    if tidy:
        name = "share" if share else "tasks"
        return out.reset_index().melt(id_vars=col, var_name="model", value_name=name)
    return out
