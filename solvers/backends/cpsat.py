"""OR-Tools CP-SAT: every coefficient scaled to an integer with a fixed, documented scale.

CP-SAT works over integers only. Each quantity is multiplied by its scale below and rounded
to the nearest integer (never a scale guessed from the data's decimal places):

==============  ==================  ===========================================
quantity        scale               unit after scaling
==============  ==================  ===========================================
cost, budget    ``COST_SCALE``      nano-USD (1e-9 USD)
quality, floor  ``QUALITY_SCALE``   millionths of the quality scale [0, 1]
latency, T      ``LATENCY_SCALE``   microseconds
load, limit     ``LOAD_SCALE``      millionths of a load unit
alpha, beta     ``FACTOR_SCALE``    millionths (capacity and share-cap factors)
priority        ``WEIGHT_SCALE``    millionths of a priority unit
balanced score  ``SCORE_SCALE``     millionths of a score point
==============  ==================  ===========================================

For the capacity-scale diagnosis the rows become ``sum_i round(1e6 * load / limit) x <= alpha``
(shares of each limit), so no product of two scaled numbers is needed.
Before solving, every row's worst-case sum is checked to fit in int64 (with margin); the
per-family rounding error (the most any plan's scaled sum can differ from the true one) is
reported in ``Solution.stats["rounding"]``. The final plan is re-checked against the limits
in floating point by the staging driver. A FEASIBLE answer is never reported as OPTIMAL.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from solvers.backends._spec import (
    ModelSpec,
    Objective,
    StageResult,
    assignment_from_matrix,
    time_left,
)
from solvers.backends._staging import solve_staged
from solvers.diagnose import diagnose
from solvers.errors import ProblemError, UnsupportedError
from solvers.groups import group_columns
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Solution, Status

COST_SCALE = 10**9
QUALITY_SCALE = 10**6
LATENCY_SCALE = 10**6
LOAD_SCALE = 10**6
FACTOR_SCALE = 10**6
WEIGHT_SCALE = 10**6
SCORE_SCALE = 10**6
#: Concurrency that is not a whole number is written as a ratio over this denominator.
CONCURRENCY_DEN = 1000
#: The largest worst-case sum allowed in one row or objective (int64 with a factor 2 margin).
INT_LIMIT = 2**62

_GOAL_SCALE = {Goal.MINIMIZE_COST: COST_SCALE, Goal.MAXIMIZE_QUALITY: QUALITY_SCALE,
               Goal.MINIMIZE_LATENCY: LATENCY_SCALE, Goal.BALANCED: SCORE_SCALE}

#: (native status, time limit reached) -> (status with a plan, status without one)
STATUS_TABLE: dict[tuple[str, bool], tuple[Status, Status]] = {
    ("OPTIMAL", False): (Status.OPTIMAL, Status.ERROR),
    ("OPTIMAL", True): (Status.OPTIMAL, Status.ERROR),
    ("FEASIBLE", False): (Status.FEASIBLE, Status.ERROR),
    ("FEASIBLE", True): (Status.TIME_LIMIT_FEASIBLE, Status.TIME_LIMIT_NO_PLAN),
    ("INFEASIBLE", False): (Status.INFEASIBLE, Status.INFEASIBLE),
    ("INFEASIBLE", True): (Status.INFEASIBLE, Status.INFEASIBLE),
    ("UNKNOWN", False): (Status.ERROR, Status.ERROR),
    ("UNKNOWN", True): (Status.TIME_LIMIT_NO_PLAN, Status.TIME_LIMIT_NO_PLAN),
    ("MODEL_INVALID", False): (Status.ERROR, Status.ERROR),
    ("MODEL_INVALID", True): (Status.ERROR, Status.ERROR),
}


def _scaled(values: NDArray[np.float64], scale: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Round values * scale to int64; returns the integers and each value's rounding error (original units)."""
    v = np.asarray(values, dtype=np.float64) * scale
    if v.size and np.abs(v).max() >= INT_LIMIT:
        raise UnsupportedError(f"a value of {np.abs(v).max() / scale:.3g} is too large for CP-SAT at scale "
                               f"{scale:g}; use highs")
    r = np.rint(v).astype(np.int64)
    return r, np.abs(r - v) / scale


def _check_fits(name: str, worst: int | float) -> None:
    if worst >= INT_LIMIT:
        raise UnsupportedError(f"CP-SAT: the scaled {name} row can reach {worst:.3g}, beyond int64; use highs")


class CpsatSpecSolver:
    """Scaled integer data of one problem, and one CP-SAT model per :class:`ModelSpec`."""

    name = "cpsat"

    def __init__(self, problem: Problem, options: Options) -> None:
        p = self.p = problem
        self.options = options
        probe = cp_model.CpSolver()
        for key, value in options.native.items():
            try:
                setattr(probe.parameters, key, value)
            except (AttributeError, TypeError, ValueError) as exc:
                raise ProblemError(f"native.{key}: CP-SAT rejects it ({exc})") from None
        ti, mj = np.nonzero(p.feasible_mask)
        self.ti, self.mj = ti.astype(np.int64), mj.astype(np.int64)
        self.rounding: dict[str, float] = {}
        self.ints: dict[str, NDArray[Any]] = {}
        self.cap_limits: list[NDArray[np.int64]] = []

        def pair_ints(name: str, values: NDArray[np.float64], scale: int) -> None:
            ints, err = _scaled(values, scale)
            self.ints[name] = ints
            # the most a plan's sum can move: one pair per task, each off by its task's worst error
            worst = np.zeros(p.n_tasks)
            np.maximum.at(worst, ti, err)
            self.rounding[name] = float(worst.sum())

        if p.cost is not None:
            pair_ints("cost", p.cost[ti, mj], COST_SCALE)
        if p.quality is not None:
            pair_ints("quality", p.quality[ti, mj], QUALITY_SCALE)
        if p.latency is not None:
            pair_ints("latency", p.latency[ti, mj], LATENCY_SCALE)
        pair_ints("goal", p.objective_matrix[ti, mj], _GOAL_SCALE[Goal(p.goal)])
        pair_ints("weight", p.priority_weights[ti], WEIGHT_SCALE)
        # group charges: one bool y per charged (group, model), in nano-USD and in goal units
        self.y = group_columns(p, self.ti, self.mj)
        goal_scale = _GOAL_SCALE[Goal(p.goal)]
        self.y_cost, cost_err = _scaled(self.y.charge, COST_SCALE)
        self.y_goal, goal_err = _scaled(self.y.objective, goal_scale)
        if self.y.size:
            self.rounding["cost"] = self.rounding.get("cost", 0.0) + float(cost_err.sum())
            self.rounding["goal"] = self.rounding["goal"] + float(goal_err.sum())
        for r, row in enumerate(p.capacity_rows()):
            finite = np.isfinite(row.limit)
            pair_ints(f"cap{r}", row.load[ti, mj], LOAD_SCALE)
            self.rounding[row.name] = self.rounding.pop(f"cap{r}")
            self.cap_limits.append(_scaled(np.where(finite, row.limit, 0.0), LOAD_SCALE)[0])
            # for the capacity-scale diagnosis: load as millionths of the pair's model limit
            lim = row.limit[mj]
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(lim > 0, row.load[ti, mj] / np.where(lim > 0, lim, 1.0), 0.0)
            self.ints[f"cap{r}_share"] = _scaled(np.where(np.isfinite(share), share, 0.0), FACTOR_SCALE)[0]
            self.ints[f"cap{r}_blocked"] = (lim == 0) & (row.load[ti, mj] > 0)
        self.budget = None if p.budget is None else int(round(p.budget * COST_SCALE))
        self.q_floor = None if p.min_avg_quality is None else int(round(p.min_avg_quality * QUALITY_SCALE))

    # -------------------------------------------------------------- helpers in scaled arithmetic
    def _served_int(self, plan: NDArray[np.int64]) -> int:
        chosen = plan[self.ti] == self.mj
        return int(self.ints["weight"][chosen].sum())

    def _conc(self) -> list[tuple[int, int, int]]:
        """(model, numerator, denominator) with latency_sum * den <= num * T per finite concurrency."""
        out = []
        for j, c in enumerate(self.p.makespan_concurrency):
            if np.isfinite(c):
                den = 1 if float(c).is_integer() else CONCURRENCY_DEN
                out.append((j, int(round(c * den)), den))
        return out

    def _makespan_int(self, plan: NDArray[np.int64]) -> int:
        chosen = plan[self.ti] == self.mj
        lat = self.ints["latency"]
        t = int(lat[chosen].max(initial=0))
        for j, num, den in self._conc():
            busy = int(lat[chosen & (self.mj == j)].sum()) * den
            t = max(t, -(-busy // num))
        return t

    # -------------------------------------------------------------- model
    def _build(self, spec: ModelSpec, hint: NDArray[np.int64] | None) -> tuple[cp_model.CpModel, list[Any], int]:
        p, ti, mj = self.p, self.ti, self.mj
        m = cp_model.CpModel()
        # x[task, model] for every feasible pair, in the order of (ti, mj)
        x = [m.new_bool_var(f"x[{i},{j}]") for i, j in zip(ti.tolist(), mj.tolist(), strict=True)]
        xa = np.empty(len(x), dtype=object)
        xa[:] = x
        task_groups = np.split(np.arange(ti.size), np.flatnonzero(np.diff(ti)) + 1) if ti.size else []
        by_model = np.argsort(mj, kind="stable")
        model_groups = dict(zip(mj[by_model][np.r_[0, np.flatnonzero(np.diff(mj[by_model])) + 1]].tolist(),
                                np.split(by_model, np.flatnonzero(np.diff(mj[by_model])) + 1), strict=True)) \
            if ti.size else {}

        # y[g, j] for every charged (group, model): on whenever a task of g runs on j
        ya = np.empty(self.y.size, dtype=object)
        ya[:] = [m.new_bool_var(f"y[{g},{j}]") for g, j in zip(self.y.g.tolist(), self.y.j.tolist(), strict=True)]
        for pair in np.flatnonzero(self.y.of_pair >= 0).tolist():
            m.add_implication(x[pair], ya[self.y.of_pair[pair]])

        def wsum(idx: NDArray[np.int64], coef: NDArray[np.int64], name: str,
                 charges: NDArray[np.int64] | None = None) -> cp_model.LinearExpr:
            """sum coef * x over idx, plus charges * y when given (money rows and objectives)."""
            worst = int(np.abs(coef[idx]).sum()) + (0 if charges is None else int(np.abs(charges).sum()))
            _check_fits(name, worst)
            if charges is None or not ya.size:
                return cp_model.LinearExpr.weighted_sum(list(xa[idx]), coef[idx].tolist())
            return cp_model.LinearExpr.weighted_sum(list(xa[idx]) + list(ya), coef[idx].tolist() + charges.tolist())

        # every task on exactly one model (at most one when queuing is allowed)
        for g in task_groups:
            if p.allow_queue:
                m.add_at_most_one(xa[g].tolist())
            else:
                m.add_exactly_one(xa[g].tolist())
        everything = np.arange(ti.size)
        # budget, in nano-USD
        if spec.budget and self.budget is not None:
            m.add(wsum(everything, self.ints["cost"], "budget", self.y_cost) <= self.budget)
        # quality floor: sum (quality - floor) x >= 0, in millionths
        if spec.quality_floor and self.q_floor is not None:
            m.add(wsum(everything, self.ints["quality"] - self.q_floor, "quality floor") >= 0)
        # capacities in millionths of a load unit (as shares of each limit when alpha is minimised)
        alpha = beta = t_var = None
        if spec.objective is Objective.CAPACITY_SCALE:
            alpha = m.new_int_var(0, INT_LIMIT // 4, "capacity_scale")
        for r, row in enumerate(p.capacity_rows()):
            for j, g in model_groups.items():
                if not np.isfinite(row.limit[j]):
                    continue
                if alpha is None:
                    m.add(wsum(g, self.ints[f"cap{r}"], row.name) <= int(self.cap_limits[r][j]))
                    continue
                m.add(wsum(g, self.ints[f"cap{r}_share"], row.name) <= alpha)
                for v in xa[g][self.ints[f"cap{r}_blocked"][g]]:
                    m.add(v == 0)  # a zero limit stays zero whatever the factor
        # share caps: at most floor(share * N) tasks per model (beta in millionths when minimised)
        if p.share_limits is not None:
            assert p.share_cap is not None
            if spec.objective is Objective.SHARE_SCALE:
                beta = m.new_int_var(0, INT_LIMIT // 4, "share_scale")
            for j, g in model_groups.items():
                if beta is None:
                    m.add(sum(xa[g].tolist()) <= int(p.share_limits[j]))
                elif p.share_cap[j] == 0:
                    m.add(sum(xa[g].tolist()) == 0)
                else:
                    per_task = int(round(FACTOR_SCALE / float(p.share_cap[j] * p.n_tasks)))
                    m.add(per_task * sum(xa[g].tolist()) <= beta)
        # makespan T in microseconds: covers every task's latency and each model's busy time
        latency_goal = Goal(p.goal) is Goal.MINIMIZE_LATENCY
        if latency_goal and spec.objective in (Objective.GOAL, Objective.TOTAL_LATENCY):
            lat = self.ints["latency"]
            upper = (self._makespan_int(spec.makespan_at_most) if spec.makespan_at_most is not None
                     else int(lat.sum()) + 1)
            _check_fits("makespan", upper * max([num for _, num, _ in self._conc()] + [1]))
            t_var = m.new_int_var(0, upper, "makespan")
            for g in task_groups:
                m.add(wsum(g, lat, "makespan") <= t_var)
            for j, num, den in self._conc():
                if j in model_groups:
                    m.add(wsum(model_groups[j], lat * den, "makespan") <= num * t_var)
        # lexicographic: serve at least the weight the queuing stage reached
        if spec.served_at_least is not None:
            m.add(wsum(everything, self.ints["weight"], "served weight") >= self._served_int(spec.served_at_least))

        scale = self._objective(m, spec, xa, alpha, beta, t_var, wsum)
        if hint is not None:
            for v, on in zip(x, (hint[ti] == mj).tolist(), strict=True):
                m.add_hint(v, on)
            if ya.size:
                assert p.group_charges is not None
                for v, on in zip(ya.tolist(), self.y.values(hint, p.n_models, p.group_charges).tolist(), strict=True):
                    m.add_hint(v, bool(on))
        return m, x, scale

    def _objective(self, m: cp_model.CpModel, spec: ModelSpec, xa: NDArray[Any], alpha: Any, beta: Any,
                   t_var: Any, wsum: Any) -> int:
        """Set the objective; returns its scale (objective value / scale = problem units)."""
        everything = np.arange(xa.size)
        obj = spec.objective
        expr: Any
        if obj is Objective.SERVED:
            expr, scale = wsum(everything, self.ints["weight"], "served weight"), WEIGHT_SCALE
        elif obj is Objective.GOAL and t_var is not None:
            expr, scale = t_var, LATENCY_SCALE
        elif obj is Objective.GOAL:
            expr, scale = wsum(everything, self.ints["goal"], "objective", self.y_goal), _GOAL_SCALE[Goal(self.p.goal)]
        elif obj is Objective.TOTAL_LATENCY:
            expr, scale = wsum(everything, self.ints["latency"], "total latency"), LATENCY_SCALE
        elif obj is Objective.COST:
            expr, scale = wsum(everything, self.ints["cost"], "cost", self.y_cost), COST_SCALE
        elif obj is Objective.QUALITY_SUM:
            expr, scale = wsum(everything, self.ints["quality"], "quality"), QUALITY_SCALE
        elif obj is Objective.CAPACITY_SCALE:
            expr, scale = alpha, FACTOR_SCALE
        else:
            expr, scale = beta, FACTOR_SCALE
        if spec.maximize(self.p):
            m.maximize(expr)
        else:
            m.minimize(expr)
        return scale

    # -------------------------------------------------------------- solve
    def solve_spec(self, spec: ModelSpec, time_limit_s: float | None,
                   hint: NDArray[np.int64] | None) -> StageResult:
        start = time.perf_counter()
        model, x, scale = self._build(spec, hint)
        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.relative_gap_limit = self.options.rel_gap
        prm.log_search_progress = bool(self.options.verbose)
        if time_limit_s is not None:  # the model's build counts against the limit
            time_limit_s = time_left(time_limit_s, start)
            prm.max_time_in_seconds = float(time_limit_s)  # type: ignore[arg-type]
        if self.options.threads is not None:
            prm.num_workers = int(self.options.threads)
        for key, value in self.options.native.items():
            setattr(prm, key, value)
        native = solver.solve(model)
        name = solver.status_name(native)
        # With a limit set, UNKNOWN and FEASIBLE mean CP-SAT stopped before proving anything: the
        # clock. Its own wall_time can read short of the limit on a loaded machine (seen: 0.45 s
        # of 0.5 s), so the elapsed time alone misreads a timed-out search as an error.
        hit = time_limit_s is not None and (solver.wall_time >= 0.95 * time_limit_s
                                            or name in ("UNKNOWN", "FEASIBLE"))
        has_plan = native in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        with_plan, without = STATUS_TABLE.get((name, hit), (Status.ERROR, Status.ERROR))
        status = with_plan if has_plan else without
        stats = {"native_status": name, "branches": solver.num_branches, "conflicts": solver.num_conflicts}
        wall = time.perf_counter() - start
        if not status.has_plan:
            msg = f"CP-SAT ended {name}: {model.validate()}" if status is Status.ERROR else ""
            return StageResult(status, wall_time_s=wall, message=msg, stats=stats)
        values = np.array(solver.response_proto.solution, dtype=np.int64)[[v.index for v in x]]
        plan = assignment_from_matrix(self.ti, self.mj, values.astype(float), self.p.n_tasks)
        # widen the bound by the objective's rounding so it stays valid for the unscaled problem
        slack = self._objective_rounding(spec)
        bound = solver.best_objective_bound / scale + (slack if spec.maximize(self.p) else -slack)
        return StageResult(status, plan, solver.objective_value / scale, bound, None, wall, stats=stats)

    def _objective_rounding(self, spec: ModelSpec) -> float:
        """The most the scaled objective can differ from the true one over any plan."""
        obj = spec.objective
        if obj is Objective.GOAL and Goal(self.p.goal) is Goal.MINIMIZE_LATENCY:
            return self.rounding["latency"]
        key = {Objective.GOAL: "goal", Objective.TOTAL_LATENCY: "latency", Objective.COST: "cost",
               Objective.QUALITY_SUM: "quality", Objective.SERVED: "weight"}.get(obj)
        return self.rounding.get(key, 0.0) if key else 1.0 / FACTOR_SCALE


def spec_solver(problem: Problem, options: Options) -> CpsatSpecSolver:
    return CpsatSpecSolver(problem, options)


def solve(problem: Problem, options: Options) -> Solution:
    """Solve ``problem`` with CP-SAT; see :mod:`solvers.backends._staging` for the stages."""
    solver = CpsatSpecSolver(problem, options)
    scales = {"cost": COST_SCALE, "quality": QUALITY_SCALE, "latency": LATENCY_SCALE,
              "load": LOAD_SCALE, "factor": FACTOR_SCALE, "priority": WEIGHT_SCALE, "score": SCORE_SCALE}
    return solve_staged(problem, options, solver, diagnose,
                        {"scale": scales, "rounding": dict(solver.rounding)})
