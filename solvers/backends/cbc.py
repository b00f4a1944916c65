"""PuLP with its bundled CBC: the readable reference model, for small batches.

Written for reading, not speed: one ``x[task, model]`` per feasible pair, constraints in
the order of the :mod:`solvers.problem` docstring, one comment per family. CBC's best bound
and its reason for stopping are read from its log, which PuLP does not return.
"""

from __future__ import annotations

import inspect
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pulp
from numpy.typing import NDArray

from solvers.backends._spec import (
    ModelSpec,
    Objective,
    StageResult,
    makespan_rhs,
    served_rhs,
    time_left,
)
from solvers.backends._staging import solve_staged
from solvers.diagnose import diagnose
from solvers.errors import ProblemError
from solvers.groups import group_columns
from solvers.options import Options
from solvers.problem import Goal, Problem
from solvers.solution import Solution, Status

#: CBC's "Result - ..." line -> (status when a plan exists, status without one).
STATUS_TABLE: dict[str, tuple[Status, Status]] = {
    "Optimal solution found": (Status.OPTIMAL, Status.ERROR),
    "Stopped on time limit": (Status.TIME_LIMIT_FEASIBLE, Status.TIME_LIMIT_NO_PLAN),
    "Problem proven infeasible": (Status.INFEASIBLE, Status.INFEASIBLE),
    "Linear relaxation infeasible": (Status.INFEASIBLE, Status.INFEASIBLE),
    "Stopped on iteration limit": (Status.FEASIBLE, Status.ERROR),
    "Stopped on node limit": (Status.FEASIBLE, Status.ERROR),
    "Stopped on solution limit": (Status.FEASIBLE, Status.ERROR),
    "Stopped on ctrl-c": (Status.FEASIBLE, Status.ERROR),
}
_NATIVE_KEYS = set(inspect.signature(pulp.COIN_CMD.__init__).parameters) - {"self", "path", "msg", "logPath"}


class CbcSpecSolver:
    """Builds the PuLP model of one :class:`ModelSpec` and solves it with the bundled CBC."""

    name = "cbc"

    def __init__(self, problem: Problem, options: Options) -> None:
        unknown = set(options.native) - _NATIVE_KEYS
        if unknown:
            raise ProblemError(f"native.{sorted(unknown)[0]}: not a CBC option; expected one of "
                               f"{', '.join(sorted(_NATIVE_KEYS))}")
        self.p = problem
        self.options = options
        # CBC's tolerances are absolute (1e-7 on reduced costs and rows): micro-dollar costs
        # would tie and a micro-dollar budget could be overrun. The objective and the budget row
        # are scaled so their largest coefficient is 1; values are scaled back when read.
        self.obj_scale = 1.0
        self.budget_scale = 1.0

    def _model(self, spec: ModelSpec) -> tuple[pulp.LpProblem, dict[tuple[int, int], pulp.LpVariable],
                                               pulp.LpConstraint | None, dict[str, pulp.LpVariable]]:
        p = self.p
        n, k = p.n_tasks, p.n_models
        pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(p.feasible_mask), strict=True)]
        model = pulp.LpProblem("routeplan", pulp.LpMaximize if spec.maximize(p) else pulp.LpMinimize)
        # x[i, j] = 1 when task i runs on model j; only feasible pairs get a variable
        x = {(i, j): model.add_variable(f"x_{i}_{j}", 0, 1, cat=pulp.LpBinary) for i, j in pairs}
        by_task: dict[int, list[tuple[int, int]]] = {i: [] for i in range(n)}
        by_model: dict[int, list[tuple[int, int]]] = {j: [] for j in range(k)}
        for i, j in pairs:
            by_task[i].append((i, j))
            by_model[j].append((i, j))
        # y[g, j] = 1 when any task of group g runs on model j (charged pairs only). Binary: with
        # continuous y, CBC's MIP start (the stage hint) was seen to end "optimal" at a worse plan
        ti = np.array([i for i, _ in pairs], dtype=np.int64)
        mj = np.array([j for _, j in pairs], dtype=np.int64)
        gy = group_columns(p, ti, mj)
        y = [model.add_variable(f"y_{g}_{j}", 0, 1, cat=pulp.LpBinary) for g, j in zip(gy.g.tolist(), gy.j.tolist(), strict=True)]
        self.y_terms = (gy, y)
        extra: dict[str, pulp.LpVariable] = {}
        latency_goal = Goal(p.goal) is Goal.MINIMIZE_LATENCY
        if latency_goal and spec.objective in (Objective.GOAL, Objective.TOTAL_LATENCY):
            upper = makespan_rhs(p, spec.makespan_at_most) if spec.makespan_at_most is not None else None
            extra["T"] = model.add_variable("makespan", 0, upper)
        if spec.objective is Objective.CAPACITY_SCALE:
            extra["alpha"] = model.add_variable("capacity_scale", 0)
        if spec.objective is Objective.SHARE_SCALE:
            extra["beta"] = model.add_variable("share_scale", 0)

        # objective
        model += self._objective(spec, x, extra), "objective"

        # every task runs on exactly one model, or on none when queuing is allowed
        for i in range(n):
            served = pulp.lpSum(x[pair] for pair in by_task[i])
            model += (served <= 1 if p.allow_queue else served == 1), f"assign_{i}"
        # a group pays its charge on a model as soon as one of its tasks runs there
        for pos, (i, j) in enumerate(pairs):
            if gy.of_pair[pos] >= 0:
                model += x[i, j] <= y[gy.of_pair[pos]], f"group_{i}_{j}"
        # the plan's total cost stays within the budget
        budget_row = None
        if spec.budget and p.budget is not None:
            assert p.cost is not None
            self.budget_scale = _scale(p.cost, p.feasible_mask)
            bs = self.budget_scale
            self.budget_scale = max(bs, float(gy.charge.max(initial=0.0)))
            bs = self.budget_scale
            budget_row = (pulp.lpSum(float(p.cost[i, j]) / bs * x[i, j] for i, j in pairs)
                          + pulp.lpSum(float(c) / bs * v for c, v in zip(gy.charge, y, strict=True))
                          <= p.budget / bs)
            model += budget_row, "budget"
        # the served tasks' mean quality reaches the floor: sum (quality - floor) >= 0
        if spec.quality_floor and p.min_avg_quality is not None:
            assert p.quality is not None
            q_min = p.min_avg_quality
            model += pulp.lpSum((float(p.quality[i, j]) - q_min) * x[i, j] for i, j in pairs) >= 0, "quality_floor"
        # each model's load stays within each capacity (times alpha when that is minimised)
        for row in p.capacity_rows():
            for j in range(k):
                if not np.isfinite(row.limit[j]):
                    continue
                limit = extra["alpha"] * float(row.limit[j]) if "alpha" in extra else float(row.limit[j])
                used = pulp.lpSum(float(row.load[i, jj]) * x[i, jj] for i, jj in by_model[j])
                model += used <= limit, f"{row.name}_{j}"
        # no model takes more than its share of the tasks
        if p.share_limits is not None:
            assert p.share_cap is not None
            for j in range(k):
                cap = (extra["beta"] * float(p.share_cap[j] * n) if "beta" in extra
                       else int(p.share_limits[j]))
                model += pulp.lpSum(x[pair] for pair in by_model[j]) <= cap, f"share_{j}"
        # the makespan covers each task's latency and each model's queue of work / concurrency
        if "T" in extra:
            assert p.latency is not None
            lat = p.latency
            for i in range(n):
                model += pulp.lpSum(float(lat[i, j]) * x[i, j] for _, j in by_task[i]) <= extra["T"], f"task_time_{i}"
            for j in range(k):
                conc = float(p.makespan_concurrency[j])
                if np.isfinite(conc):
                    busy = pulp.lpSum(float(lat[i, j]) / conc * x[i, j] for i, _ in by_model[j])
                    model += busy <= extra["T"], f"model_time_{j}"
        # lexicographic: serve at least the priority weight the queuing stage reached
        if spec.served_at_least is not None:
            w = p.priority_weights
            model += pulp.lpSum(float(w[i]) * x[i, j] for i, j in pairs) >= served_rhs(p, spec.served_at_least), "served"
        return model, x, budget_row, extra

    def _objective(self, spec: ModelSpec, x: dict[tuple[int, int], pulp.LpVariable],
                   extra: dict[str, pulp.LpVariable]) -> pulp.LpAffineExpression:
        p, obj = self.p, spec.objective
        self.obj_scale = 1.0
        if obj is Objective.SERVED:
            return pulp.lpSum(float(p.priority_weights[i]) * v for (i, _), v in x.items())
        if obj is Objective.GOAL and "T" in extra:
            return pulp.lpSum([extra["T"]])
        if obj is Objective.CAPACITY_SCALE:
            return pulp.lpSum([extra["alpha"]])
        if obj is Objective.SHARE_SCALE:
            return pulp.lpSum([extra["beta"]])
        coef = {Objective.GOAL: p.objective_matrix, Objective.TOTAL_LATENCY: p.latency,
                Objective.COST: p.cost, Objective.QUALITY_SUM: p.quality}[obj]
        assert coef is not None
        gy, y = self.y_terms
        charges = {Objective.GOAL: gy.objective, Objective.COST: gy.charge}.get(obj)
        self.obj_scale = max(_scale(coef, p.feasible_mask),
                             0.0 if charges is None else float(np.abs(charges).max(initial=0.0)))
        terms = pulp.lpSum(float(coef[i, j]) / self.obj_scale * v for (i, j), v in x.items())
        if charges is not None and y:
            terms += pulp.lpSum(float(c) / self.obj_scale * v for c, v in zip(charges, y, strict=True))
        return terms

    def _command(self, time_limit_s: float | None, log_path: str, warm: bool, mip: bool = True) -> pulp.COIN_CMD:
        o = self.options
        kwargs = {"mip": mip, "msg": o.verbose, "timeLimit": time_limit_s, "gapRel": o.rel_gap,
                  "threads": o.threads, "warmStart": warm, "logPath": log_path, **dict(o.native)}
        return pulp.COIN_CMD(path=pulp.PULP_CBC_CMD.pulp_cbc_path, **kwargs)

    def solve_spec(self, spec: ModelSpec, time_limit_s: float | None,
                   hint: NDArray[np.int64] | None) -> StageResult:
        start = time.perf_counter()
        p = self.p
        model, x, budget_row, extra = self._model(spec)
        if hint is not None:
            for (i, j), v in x.items():
                v.setInitialValue(1 if hint[i] == j else 0)
            gy, y = self.y_terms
            if y:
                assert p.group_charges is not None
                for v, on in zip(y, gy.values(hint, p.n_models, p.group_charges).tolist(), strict=True):
                    v.setInitialValue(on)
        with tempfile.TemporaryDirectory() as tmp:
            log_path = os.path.join(tmp, "cbc.log")
            model.solve(self._command(time_left(time_limit_s, start), log_path, hint is not None))
            log = Path(log_path).read_text() if os.path.exists(log_path) else ""
            result = re.search(r"^Result - (.+?)\s*$", log, re.M)
            reason = result.group(1) if result else pulp.LpStatus[model.status]
            has_plan = model.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
            key = next((k for k in STATUS_TABLE if reason.startswith(k)), None)
            if key is None:  # no log line (e.g. solved in presolve): fall back on PuLP's status
                key = {1: "Optimal solution found", -1: "Problem proven infeasible"}.get(model.status, "")
            with_plan, without = STATUS_TABLE.get(key, (Status.FEASIBLE, Status.ERROR))
            status = with_plan if has_plan else without
            if (status is Status.INFEASIBLE and result is None and time_limit_s is not None
                    and time.perf_counter() - start >= time_limit_s):
                # CBC's cut generators, stopped by the clock in preprocessing, report "infeasible"
                # without a proof (seen at --time-limit 0.001 on a problem with an obvious plan)
                status = Status.TIME_LIMIT_NO_PLAN
            stats = {"native_status": reason, "variables": len(x)}
            if not status.has_plan:
                return StageResult(status, wall_time_s=time.perf_counter() - start, stats=stats,
                                   message="" if status is not Status.ERROR else f"CBC ended: {reason}")
            plan = np.full(p.n_tasks, -1, dtype=np.int64)
            for (i, j), v in x.items():
                if (v.value() or 0) > 0.5:
                    plan[i] = j
            objective = float(pulp.value(model.objective) or 0.0) * self.obj_scale
            bound: float | None
            if status is Status.OPTIMAL:  # proven within rel_gap; CBC prints no bound then
                slack = self.options.rel_gap * abs(objective)
                bound = objective + slack if spec.maximize(p) else objective - slack
            else:
                bound = _log_bound(log, spec.maximize(p))
                bound = None if bound is None else bound * self.obj_scale
            dual = None
            if spec.want_budget_dual and budget_row is not None:
                dual = self._lp_budget_dual(model, x, extra, os.path.join(tmp, "lp.log"))
        return StageResult(status, plan, objective, bound, dual, time.perf_counter() - start, stats=stats)

    def _lp_budget_dual(self, model: pulp.LpProblem, x: dict[tuple[int, int], pulp.LpVariable],
                        extra: dict[str, pulp.LpVariable], log_path: str) -> float | None:
        """d(objective)/d(budget) of the LP relaxation (CBC's 'pi' of the budget row)."""
        model.solve(self._command(None, log_path, False, mip=False))
        if model.status != pulp.LpStatusOptimal:
            return None
        pi = model.get_constraint_by_name("budget").pi
        return None if pi is None else float(pi) * self.obj_scale / self.budget_scale


def _scale(coef: NDArray[np.float64], mask: NDArray[np.bool_]) -> float:
    """The largest |coefficient| over the feasible pairs (1 when there is none or it is 0)."""
    vals = np.abs(coef[mask])
    top = float(vals.max()) if vals.size else 0.0
    return top if top > 0 and np.isfinite(top) else 1.0


def _log_bound(log: str, maximize: bool) -> float | None:
    """CBC's best bound from its log; it prints a minimisation's 'Lower bound'."""
    m = re.search(r"^Lower bound:\s*(\S+)", log, re.M)
    if not m:
        return None
    value = float(m.group(1))
    return -value if maximize and value < 0 else value


def spec_solver(problem: Problem, options: Options) -> CbcSpecSolver:
    return CbcSpecSolver(problem, options)


def solve(problem: Problem, options: Options) -> Solution:
    """Solve ``problem`` with CBC; see :mod:`solvers.backends._staging` for the stages."""
    return solve_staged(problem, options, CbcSpecSolver(problem, options), diagnose)
