"""HiGHS through highspy: the matrix is built with numpy and scipy.sparse, no Python loop per variable.

Columns: x for every feasible pair (tasks ``ti``, models ``mj``, shape (n_pairs,)), then
one y per charged (group, model) (see :mod:`solvers.groups`), then the continuous extras a
spec needs (makespan T, capacity factor alpha, share factor beta). y may stay continuous in
[0, 1]: for any integral x, y = max over the group's x on the model meets every row at least
as well, and a positive charge in the objective drives y there.
Rows are stacked family by family in COO form and passed once with ``passModel``. Queuing
needs no variable of its own: the assignment row becomes ``0 <= sum_j x[i, j] <= 1``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from solvers.backends._spec import (
    ModelSpec,
    Objective,
    StageResult,
    assignment_from_matrix,
    makespan_rhs,
    served_rhs,
    time_left,
)
from solvers.backends._staging import solve_staged
from solvers.diagnose import capacity_scale, diagnose, share_scale
from solvers.errors import ProblemError
from solvers.groups import group_columns
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Solution, Status

INF = highspy.kHighsInf


def _swallow_banner() -> None:
    """HiGHS prints a banner on stdout at its first instance in a process; keep it off CLI output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_swallow_banner()
_MS = highspy.HighsModelStatus

#: native status -> (status when a plan exists, status without one)
STATUS_TABLE: dict[highspy.HighsModelStatus, tuple[Status, Status]] = {
    _MS.kOptimal: (Status.OPTIMAL, Status.ERROR),
    _MS.kInfeasible: (Status.INFEASIBLE, Status.INFEASIBLE),
    _MS.kUnboundedOrInfeasible: (Status.INFEASIBLE, Status.INFEASIBLE),
    _MS.kTimeLimit: (Status.TIME_LIMIT_FEASIBLE, Status.TIME_LIMIT_NO_PLAN),
    _MS.kIterationLimit: (Status.FEASIBLE, Status.ERROR),
    _MS.kSolutionLimit: (Status.FEASIBLE, Status.ERROR),
    _MS.kInterrupt: (Status.FEASIBLE, Status.ERROR),
    _MS.kHighsInterrupt: (Status.FEASIBLE, Status.ERROR),  # type: ignore[attr-defined]
    _MS.kObjectiveBound: (Status.FEASIBLE, Status.ERROR),
    _MS.kObjectiveTarget: (Status.FEASIBLE, Status.ERROR),
    _MS.kMemoryLimit: (Status.FEASIBLE, Status.ERROR),
}


@dataclass
class _Rows:
    """Constraint rows in COO form over the global column index."""

    rows: list[NDArray[np.int64]] = field(default_factory=list)
    cols: list[NDArray[np.int64]] = field(default_factory=list)
    vals: list[NDArray[np.float64]] = field(default_factory=list)
    lower: list[NDArray[np.float64]] = field(default_factory=list)
    upper: list[NDArray[np.float64]] = field(default_factory=list)
    n: int = 0

    def add(self, r: NDArray[np.int64], c: NDArray[np.int64], v: NDArray[np.float64],
            lo: NDArray[np.float64] | float, hi: NDArray[np.float64] | float, count: int) -> int:
        """Add ``count`` rows (local row ids ``r``); returns the first global row id."""
        first = self.n
        self.rows.append(np.asarray(r, dtype=np.int64) + first)
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.asarray(v, dtype=np.float64))
        self.lower.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)))
        self.upper.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (count,)))
        self.n += count
        return first


class HighsSpecSolver:
    """Builds and solves one HiGHS model per :class:`ModelSpec` of a fixed problem."""

    name = "highs"

    def __init__(self, problem: Problem, options: Options) -> None:
        self.p = problem
        self.options = options
        self.ti, self.mj = (a.astype(np.int64) for a in np.nonzero(problem.feasible_mask))
        self.budget_scale = 1.0  # USD per unit of the budget row (set in _build)
        self.y = group_columns(problem, self.ti, self.mj)
        _apply_options(highspy.Highs(), options, None)  # reject unknown native options up front

    # -------------------------------------------------------------- model
    def _build(self, spec: ModelSpec) -> tuple[highspy.HighsLp, int | None, dict[str, int]]:
        p, ti, mj = self.p, self.ti, self.mj
        n_pairs = ti.size
        pair = np.arange(n_pairs)
        goal = Goal(p.goal)
        extra: dict[str, int] = {}
        ny = self.y.size
        ycol = n_pairs + np.arange(ny)
        ncol = n_pairs + ny
        if goal is Goal.MINIMIZE_LATENCY and spec.objective in (Objective.GOAL, Objective.TOTAL_LATENCY):
            extra["T"], ncol = ncol, ncol + 1
        if spec.objective is Objective.CAPACITY_SCALE:
            extra["alpha"], ncol = ncol, ncol + 1
        if spec.objective is Objective.SHARE_SCALE:
            extra["beta"], ncol = ncol, ncol + 1
        rows = _Rows()

        # every task on exactly one model (at most one when queuing is allowed)
        rows.add(ti, pair, np.ones(n_pairs), 0.0 if p.allow_queue else 1.0, 1.0, p.n_tasks)
        # group charges: x[i, j] <= y[g(i), j] for every pair of a charged group
        linked = np.flatnonzero(self.y.of_pair >= 0)
        if linked.size:
            r = np.arange(linked.size)
            rows.add(np.concatenate([r, r]), np.concatenate([linked, ycol[self.y.of_pair[linked]]]),
                     np.concatenate([np.ones(linked.size), -np.ones(linked.size)]), -INF, 0.0, linked.size)
        # budget: total cost of the plan within the budget
        budget_row = None
        if spec.budget and p.budget is not None:
            assert p.cost is not None
            # HiGHS's row tolerances are absolute: a row of micro-dollar costs could overrun the
            # budget by ~1e-6 USD. Scale the row so its largest coefficient is 1 (see budget_scale).
            coef = np.concatenate([p.cost[ti, mj], self.y.charge])
            self.budget_scale = float(coef.max()) if coef.size and coef.max() > 0 else 1.0
            budget_row = rows.add(np.zeros(coef.size, np.int64), np.concatenate([pair, ycol]),
                                  coef / self.budget_scale, -INF, p.budget / self.budget_scale, 1)
        # quality floor: sum (quality - floor) over served tasks >= 0
        if spec.quality_floor and p.min_avg_quality is not None:
            assert p.quality is not None
            rows.add(np.zeros(n_pairs, np.int64), pair, p.quality[ti, mj] - p.min_avg_quality, 0.0, INF, 1)
        # capacities: each model's load within its limit (times alpha when that is the objective)
        for cap in p.capacity_rows():
            finite = np.flatnonzero(np.isfinite(cap.limit))
            local = np.full(p.n_models, -1)
            local[finite] = np.arange(finite.size)
            keep = local[mj] >= 0
            r, c, v = local[mj[keep]], pair[keep], cap.load[ti[keep], mj[keep]]
            if "alpha" in extra:
                r = np.concatenate([r, np.arange(finite.size)])
                c = np.concatenate([c, np.full(finite.size, extra["alpha"])])
                v = np.concatenate([v, -cap.limit[finite]])
                rows.add(r, c, v, -INF, 0.0, finite.size)
            else:
                rows.add(r, c, v, -INF, cap.limit[finite], finite.size)
        # share caps: at most floor(share * N) tasks per model (beta * share * N when scaled)
        if p.share_limits is not None:
            assert p.share_cap is not None
            if "beta" in extra:
                r = np.concatenate([mj, np.arange(p.n_models)])
                c = np.concatenate([pair, np.full(p.n_models, extra["beta"])])
                v = np.concatenate([np.ones(n_pairs), -p.share_cap * p.n_tasks])
                rows.add(r, c, v, -INF, 0.0, p.n_models)
            else:
                rows.add(mj, pair, np.ones(n_pairs), -INF, p.share_limits.astype(float), p.n_models)
        # makespan: T covers every task's latency and every model's latency / concurrency
        if "T" in extra:
            assert p.latency is not None
            lat = p.latency[ti, mj]
            rows.add(np.concatenate([ti, np.arange(p.n_tasks)]),
                     np.concatenate([pair, np.full(p.n_tasks, extra["T"])]),
                     np.concatenate([lat, -np.ones(p.n_tasks)]), -INF, 0.0, p.n_tasks)
            conc = p.makespan_concurrency
            finite = np.flatnonzero(np.isfinite(conc))
            if finite.size:
                local = np.full(p.n_models, -1)
                local[finite] = np.arange(finite.size)
                keep = local[mj] >= 0
                rows.add(np.concatenate([local[mj[keep]], np.arange(finite.size)]),
                         np.concatenate([pair[keep], np.full(finite.size, extra["T"])]),
                         np.concatenate([lat[keep] / conc[mj[keep]], -np.ones(finite.size)]),
                         -INF, 0.0, finite.size)
        # lexicographic fix: serve at least the weight the queuing stage achieved
        if spec.served_at_least is not None:
            w = p.priority_weights[ti]
            rows.add(np.zeros(n_pairs, np.int64), pair, w, served_rhs(p, spec.served_at_least), INF, 1)

        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = ncol, rows.n
        lp.col_cost_ = self._objective(spec, ncol, extra)
        lower, upper = np.zeros(ncol), np.ones(ncol)
        for name in ("alpha", "beta"):
            if name in extra:
                upper[extra[name]] = INF
        if "T" in extra:
            upper[extra["T"]] = (makespan_rhs(p, spec.makespan_at_most)
                                 if spec.makespan_at_most is not None else INF)
        lp.col_lower_, lp.col_upper_ = lower, upper
        lp.row_lower_ = np.concatenate(rows.lower) if rows.n else np.zeros(0)
        lp.row_upper_ = np.concatenate(rows.upper) if rows.n else np.zeros(0)
        a = sp.csc_matrix(
            (np.concatenate(rows.vals), (np.concatenate(rows.rows), np.concatenate(rows.cols))),
            shape=(rows.n, ncol),
        )
        a.sum_duplicates()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, rows.n
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data
        integrality = np.full(ncol, highspy.HighsVarType.kContinuous)
        integrality[:n_pairs] = highspy.HighsVarType.kInteger
        lp.integrality_ = list(integrality)
        lp.sense_ = highspy.ObjSense.kMaximize if spec.maximize(p) else highspy.ObjSense.kMinimize
        return lp, budget_row, extra

    def _objective(self, spec: ModelSpec, ncol: int, extra: dict[str, int]) -> NDArray[np.float64]:
        p, ti, mj = self.p, self.ti, self.mj
        c = np.zeros(ncol)
        n_pairs = ti.size
        obj = spec.objective
        if obj is Objective.SERVED:
            c[:n_pairs] = p.priority_weights[ti]
        elif obj is Objective.GOAL and "T" in extra:
            c[extra["T"]] = 1.0
        elif obj is Objective.GOAL:
            c[:n_pairs] = p.objective_matrix[ti, mj]
            c[n_pairs:n_pairs + self.y.size] = self.y.objective
        elif obj is Objective.TOTAL_LATENCY:
            assert p.latency is not None
            c[:n_pairs] = p.latency[ti, mj]
        elif obj is Objective.COST:
            assert p.cost is not None
            c[:n_pairs] = p.cost[ti, mj]
            c[n_pairs:n_pairs + self.y.size] = self.y.charge
        elif obj is Objective.QUALITY_SUM:
            assert p.quality is not None
            c[:n_pairs] = p.quality[ti, mj]
        elif obj is Objective.CAPACITY_SCALE:
            c[extra["alpha"]] = 1.0
        elif obj is Objective.SHARE_SCALE:
            c[extra["beta"]] = 1.0
        return c

    def _hint_vector(self, hint: NDArray[np.int64], ncol: int, extra: dict[str, int]) -> NDArray[np.float64]:
        p = self.p
        v = np.zeros(ncol)
        v[: self.ti.size] = (hint[self.ti] == self.mj).astype(float)
        if self.y.size:
            assert p.group_charges is not None
            v[self.ti.size:self.ti.size + self.y.size] = self.y.values(hint, p.n_models, p.group_charges)
        if "T" in extra:
            v[extra["T"]] = p.makespan(hint)
        if "alpha" in extra:
            v[extra["alpha"]] = capacity_scale(p, hint)
        if "beta" in extra and p.share_cap is not None:
            v[extra["beta"]] = share_scale(p, hint)
        return v

    # -------------------------------------------------------------- solve
    def solve_spec(self, spec: ModelSpec, time_limit_s: float | None,
                   hint: NDArray[np.int64] | None) -> StageResult:
        start = time.perf_counter()
        lp, budget_row, extra = self._build(spec)
        h, stats = self._run(lp, extra, time_left(time_limit_s, start, 0.01), hint)
        x = np.asarray(h.getSolution().col_value)
        if hint is not None and h.getInfo().primal_solution_status == highspy.kSolutionStatusFeasible:
            # HiGHS 1.16 can drop presolve's objective offset when it scores a MIP start and then
            # return the start as "optimal"; the objective of x then disagrees with HiGHS's own.
            true_obj = float(np.dot(lp.col_cost_, x))
            if abs(true_obj - h.getInfo().objective_function_value) > 1e-6 * max(1.0, abs(true_obj)):
                h, stats = self._run(lp, extra, time_left(time_limit_s, start, 0.01), None)
                stats["hint_dropped"] = "HiGHS scored the MIP start inconsistently; solved again without it"
                x = np.asarray(h.getSolution().col_value)
        native = h.getModelStatus()
        info = h.getInfo()
        has_plan = info.primal_solution_status == highspy.kSolutionStatusFeasible
        with_plan, without = STATUS_TABLE.get(native, (Status.ERROR, Status.ERROR))
        status = with_plan if has_plan else without
        if not status.has_plan:
            msg = "" if status is not Status.ERROR else f"HiGHS ended {stats['native_status']}"
            return StageResult(status, wall_time_s=time.perf_counter() - start, message=msg, stats=stats)
        plan = assignment_from_matrix(self.ti, self.mj, x[: self.ti.size], self.p.n_tasks)
        objective, bound = float(info.objective_function_value), float(info.mip_dual_bound)
        budget_dual = None
        if spec.want_budget_dual and budget_row is not None:
            dual = _lp_budget_dual(h, lp, budget_row, time_left(time_limit_s, start, 0.01))
            budget_dual = None if dual is None else dual / self.budget_scale
        return StageResult(status, plan, objective, bound, budget_dual, time.perf_counter() - start, stats=stats)

    def _run(self, lp: highspy.HighsLp, extra: dict[str, int], time_limit_s: float | None,
             hint: NDArray[np.int64] | None) -> tuple[highspy.Highs, dict[str, object]]:
        h = highspy.Highs()
        _apply_options(h, self.options, time_limit_s)
        h.passModel(lp)
        if hint is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(self._hint_vector(hint, lp.num_col_, extra))
            h.setSolution(sol)
        h.run()
        info = h.getInfo()
        stats: dict[str, object] = {"native_status": h.modelStatusToString(h.getModelStatus()),
                                    "nodes": int(info.mip_node_count), "rows": lp.num_row_, "cols": lp.num_col_}
        return h, stats



def _lp_budget_dual(h: highspy.Highs, lp: highspy.HighsLp, budget_row: int, left_s: float | None) -> float | None:
    """d(objective)/d(budget) of the LP relaxation: drop integrality, resolve, read the row dual
    (within what is left of the limit; None when it does not finish)."""
    if left_s is not None:  # HiGHS counts its limit over every run of the instance
        h.setOptionValue("time_limit", float(h.getRunTime() + left_s))
    h.changeColsIntegrality(lp.num_col_, np.arange(lp.num_col_, dtype=np.int32),
                            np.full(lp.num_col_, highspy.HighsVarType.kContinuous))
    h.run()
    if h.getModelStatus() != _MS.kOptimal:
        return None
    # HiGHS reports duals with the sign of d(objective)/d(rhs) for both senses
    return float(h.getSolution().row_dual[budget_row])


_scheduler_threads: dict[str, int] = {}


def _apply_options(h: highspy.Highs, options: Options, time_limit_s: float | None) -> None:
    """Map Options to HiGHS options; an unknown native option name raises ProblemError."""
    # mip_feasibility_tolerance: a plan must meet every limit, not just within 1e-6 of it;
    # Problem.violations checks the final plan at 1e-7 relative
    settings: dict[str, Any] = {"output_flag": bool(options.verbose), "mip_rel_gap": options.rel_gap,
                                "mip_feasibility_tolerance": 1e-9}
    if time_limit_s is not None:
        settings["time_limit"] = float(time_limit_s)
    if options.threads is not None:
        settings["threads"] = int(options.threads)
        # HiGHS keeps one process-wide scheduler; a different thread count needs a fresh one
        if _scheduler_threads.get("n") != options.threads:
            highspy.Highs.resetGlobalScheduler(True)
            _scheduler_threads["n"] = int(options.threads)
    settings.update(options.native)
    for name, value in settings.items():
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            raise ProblemError(f"native.{name}: HiGHS rejects option {name}={value!r}")


def spec_solver(problem: Problem, options: Options) -> HighsSpecSolver:
    return HighsSpecSolver(problem, options)


def solve(problem: Problem, options: Options) -> Solution:
    """Solve ``problem`` with HiGHS; see :mod:`solvers.backends._staging` for the stages."""
    solver = HighsSpecSolver(problem, options)
    return solve_staged(problem, options, solver, diagnose, {"native_options": dict(options.native)})
