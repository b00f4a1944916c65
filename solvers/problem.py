"""The assignment problem: N tasks x K models as read-only numpy arrays.

Every backend reads the same :class:`Problem`; everything that is derived from the data
(objective coefficients, the balanced score, which features a problem needs, whether an
assignment is feasible and what it scores) lives here, once, so the backends cannot
disagree on what the problem *means*.

The integer program (x[i, j] = 1 when task i goes to model j; u[i] = 1 when task i is queued)::

    sum_j x[i, j] + u[i] = 1                      every task served once, or queued
    x[i, j] = 0 where not feasible[i, j]
    sum cost * x <= budget                        budget
    sum (quality - min_avg_quality) * x >= 0      average quality over served tasks
    sum_i load_r[i, j] x[i, j] <= limit_r[j]      each capacity r, each model j
    sum_i x[i, j] <= floor(share_cap[j] * N)      share caps
    u[i] = 0 unless allow_queue
    y[g, j] >= x[i, j] for task i in group g     group fixed charges (optional): setup * y is
                                                  added to the cost (see :mod:`solvers.groups`)

Goals: ``minimize_cost``; ``maximize_quality`` (sum priority * quality);
``minimize_latency`` (makespan T with T >= latency[i, j] x[i, j] for every task and
T >= sum_i latency[i, j] x[i, j] / concurrency[j] for every model); ``balanced``
(minimise sum priority * score, where score is the weighted per-task normalised cost,
latency and (1 - quality); see :meth:`Problem.balanced_score`).

With queuing allowed the objective is lexicographic: first serve the largest total
priority weight the limits allow, then optimise the goal over plans that serve it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.errors import ProblemError
from solvers.groups import GroupCharges, checked_charges, group_objective, used_pairs

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

#: Feasibility tolerance used when checking a plan against the limits (relative to scale).
FEAS_TOL = 1e-7


class Goal(enum.StrEnum):
    """What the solver optimises."""

    MINIMIZE_COST = "minimize_cost"
    """Least total cost (USD) of the served tasks."""
    MAXIMIZE_QUALITY = "maximize_quality"
    """Largest sum of priority x quality over served tasks."""
    MINIMIZE_LATENCY = "minimize_latency"
    """Least batch makespan under per-model concurrency."""
    BALANCED = "balanced"
    """Least weighted sum of per-task normalised cost, latency and (1 - quality)."""

    @property
    def maximize(self) -> bool:
        return self is Goal.MAXIMIZE_QUALITY


class Feature(enum.StrEnum):
    """Constraint families and options a backend may or may not express."""

    BUDGET = "budget"
    QUALITY_FLOOR = "quality_floor"
    CAPACITY = "capacity"
    SHARE_CAP = "share_cap"
    QUEUE = "queue"
    MAKESPAN = "makespan"
    HINT = "hint"
    GROUP_CHARGE = "group_charge"


@dataclass(frozen=True)
class Weights:
    """Weights of the balanced goal; they need not sum to one."""

    cost: float = 0.4
    quality: float = 0.4
    speed: float = 0.2

    def __post_init__(self) -> None:
        for name in ("cost", "quality", "speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ProblemError(f"weights.{name}: expected a finite number >= 0, got {value!r}")
        if self.cost + self.quality + self.speed <= 0:
            raise ProblemError("weights: at least one weight must be positive")


@dataclass(frozen=True)
class CapacityRow:
    """One capacity family: sum_i load[i, j] x[i, j] <= limit[j] for every model j."""

    name: str
    load: FloatArray  # shape (n_tasks, n_models)
    limit: FloatArray  # shape (n_models,); +inf means unlimited


def _readonly(a: Any, dtype: Any, name: str, shape: tuple[int, ...] | None) -> NDArray[Any] | None:
    if a is None:
        return None
    try:
        arr = np.array(a, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ProblemError(f"{name}: expected numbers, {exc}") from None
    if shape is not None and arr.shape != shape:
        raise ProblemError(f"{name}: expected shape {shape}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Problem:
    """An assignment problem. Arrays are copied and made read-only on construction.

    Parameters
    ----------
    cost : array of shape (n_tasks, n_models), USD, >= 0
    quality : array of shape (n_tasks, n_models), in [0, 1]
    latency : array of shape (n_tasks, n_models), seconds, >= 0
    load : array of shape (n_tasks, n_models), >= 0
        Capacity use of task i on model j (e.g. seconds of model time); with ``capacity``.
    capacity : array of shape (n_models,), > 0 or +inf
    feasible : bool array of shape (n_tasks, n_models); default all True
    budget : total cost limit in USD
    min_avg_quality : floor on the mean quality of the served tasks
    share_cap : array of shape (n_models,) in [0, 1]: at most ``floor(share_cap[j] * N)`` tasks
    priority : array of shape (n_tasks,), > 0; weights for quality and for queuing
    allow_queue : tasks may be left unserved (assignment -1)
    goal : a :class:`Goal` or its string value
    weights : the balanced goal's weights
    concurrency : array of shape (n_models,), > 0; parallel requests per model (makespan)
    extra_capacities : further capacity families (requests, tokens) beyond load/capacity
    group_charges : a :class:`solvers.groups.GroupCharges`: a setup cost paid once per
        (group, model) used, counted in the budget and the cost goals
    """

    cost: FloatArray | None = None
    quality: FloatArray | None = None
    latency: FloatArray | None = None
    load: FloatArray | None = None
    capacity: FloatArray | None = None
    feasible: BoolArray | None = None
    budget: float | None = None
    min_avg_quality: float | None = None
    share_cap: FloatArray | None = None
    priority: FloatArray | None = None
    allow_queue: bool = False
    goal: Goal | str = Goal.MINIMIZE_COST
    weights: Weights = field(default_factory=Weights)
    concurrency: FloatArray | None = None
    extra_capacities: tuple[CapacityRow, ...] = ()
    group_charges: GroupCharges | None = None

    def __post_init__(self) -> None:
        _set = object.__setattr__
        try:
            goal = Goal(self.goal)
        except ValueError:
            options = ", ".join(g.value for g in Goal)
            raise ProblemError(f"goal: expected one of {options}, got {self.goal!r}") from None
        _set(self, "goal", goal)

        first = next(
            (a for a in (self.cost, self.quality, self.latency, self.load, self.feasible) if a is not None),
            None,
        )
        if first is None:
            raise ProblemError("cost: at least one of cost, quality, latency, load or feasible is required")
        shape = np.shape(first)
        if len(shape) != 2:
            raise ProblemError(f"cost: expected a 2-d array (n_tasks, n_models), got shape {shape}")
        n, k = shape
        if n == 0 or k == 0:
            raise ProblemError(f"cost: expected at least one task and one model, got shape {shape}")

        for name in ("cost", "quality", "latency", "load"):
            _set(self, name, _readonly(getattr(self, name), np.float64, name, (n, k)))
        _set(self, "feasible", _readonly(self.feasible, np.bool_, "feasible", (n, k)))
        for name in ("cost", "quality", "latency", "load"):
            _set(self, name, self._zero_excluded(getattr(self, name)))
        for name in ("capacity", "share_cap", "concurrency"):
            _set(self, name, _readonly(getattr(self, name), np.float64, name, (k,)))
        _set(self, "priority", _readonly(self.priority, np.float64, "priority", (n,)))
        rows = []
        for row in self.extra_capacities:
            rows.append(
                CapacityRow(
                    row.name,
                    self._zero_excluded(_readonly(row.load, np.float64, f"{row.name}.load", (n, k))),  # type: ignore[arg-type]
                    _readonly(row.limit, np.float64, f"{row.name}.limit", (k,)),  # type: ignore[arg-type]
                )
            )
        _set(self, "extra_capacities", tuple(rows))
        if self.group_charges is not None:
            _set(self, "group_charges", checked_charges(self.group_charges, n, k))
        _set(self, "allow_queue", bool(self.allow_queue))
        self._validate(n, k)

    def _zero_excluded(self, arr: FloatArray | None) -> FloatArray | None:
        """NaN/inf at excluded pairs become 0: their values do not matter, and no backend
        should have to mask them before arithmetic (NaN costs misled fast's Lagrangian)."""
        if arr is None or self.feasible is None:
            return arr
        junk = ~self.feasible & ~np.isfinite(arr)
        if not junk.any():
            return arr
        clean = np.where(junk, 0.0, arr)
        clean.setflags(write=False)
        return clean

    # ------------------------------------------------------------------ validation
    def _validate(self, n: int, k: int) -> None:
        def check_matrix(name: str, arr: NDArray[Any] | None, lo: float, hi: float = math.inf) -> None:
            if arr is None:
                return
            bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
            if self.feasible is not None and arr.ndim == 2:
                bad &= self.feasible  # values of excluded pairs do not matter
            if bad.any():
                idx = np.argwhere(bad)[0]
                where = f"task {idx[0]}, model {idx[1]}" if arr.ndim == 2 else f"index {idx[0]}"
                bound = f">= {lo}" if hi == math.inf else f"in [{lo}, {hi}]"
                raise ProblemError(f"{name}: expected finite values {bound}, got {arr[tuple(idx)]!r} at {where}")

        check_matrix("cost", self.cost, 0.0)
        check_matrix("quality", self.quality, 0.0, 1.0)
        check_matrix("latency", self.latency, 0.0)
        check_matrix("load", self.load, 0.0)
        check_matrix("priority", self.priority, 0.0)
        if self.priority is not None and (self.priority <= 0).any():
            raise ProblemError(f"priority: expected values > 0, task {int(np.argmax(self.priority <= 0))} has {self.priority.min()}")
        check_matrix("share_cap", self.share_cap, 0.0, 1.0)
        for name in ("capacity", "concurrency"):
            arr = getattr(self, name)
            if arr is not None and (np.isnan(arr).any() or (arr <= 0).any()):
                j = int(np.argmax(np.isnan(arr) | (arr <= 0)))
                raise ProblemError(f"{name}: expected values > 0 (or inf), model {j} has {arr[j]!r}")
        for row in self.extra_capacities:
            check_matrix(f"{row.name}.load", row.load, 0.0)
            if np.isnan(row.limit).any() or (row.limit < 0).any():
                raise ProblemError(f"{row.name}.limit: expected values >= 0 (or inf)")
        if (self.load is None) != (self.capacity is None):
            raise ProblemError("capacity: load and capacity must be given together")

        for name in ("budget", "min_avg_quality"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ProblemError(f"{name}: expected a finite number >= 0, got {value!r}")
        if self.min_avg_quality is not None and self.min_avg_quality > 1:
            raise ProblemError(f"min_avg_quality: expected a value in [0, 1], got {self.min_avg_quality}")

        # the data each goal / limit needs
        needs = {
            Goal.MINIMIZE_COST: "cost",
            Goal.MAXIMIZE_QUALITY: "quality",
            Goal.MINIMIZE_LATENCY: "latency",
        }
        goal = Goal(self.goal)
        if goal in needs and getattr(self, needs[goal]) is None:
            raise ProblemError(f"{needs[goal]}: required by goal {goal.value}")
        if goal is Goal.BALANCED and self.cost is None and self.quality is None and self.latency is None:
            raise ProblemError("cost: goal balanced needs at least one of cost, quality, latency")
        if self.budget is not None and self.cost is None:
            raise ProblemError("cost: required when a budget is given")
        if self.group_charges is not None and self.cost is None:
            raise ProblemError("cost: required when group_charges are given")
        if self.min_avg_quality is not None and self.quality is None:
            raise ProblemError("quality: required when min_avg_quality is given")

        if not self.allow_queue:
            empty = np.flatnonzero(~self.feasible_mask.any(axis=1))
            if empty.size:
                shown = ", ".join(str(i) for i in empty[:10]) + (" ..." if empty.size > 10 else "")
                raise ProblemError(
                    f"feasible: task {shown} has no feasible model "
                    f"({empty.size} task(s)); allow queuing or relax the limits"
                )

    # ------------------------------------------------------------------ shape & derived data
    @property
    def n_tasks(self) -> int:
        return int(self.feasible_mask.shape[0])

    @property
    def n_models(self) -> int:
        return int(self.feasible_mask.shape[1])

    @cached_property
    def feasible_mask(self) -> BoolArray:
        """The feasible pairs; all True when ``feasible`` was not given."""
        if self.feasible is not None:
            return self.feasible
        for a in (self.cost, self.quality, self.latency, self.load):
            if a is not None:
                mask = np.ones(a.shape, dtype=bool)
                mask.setflags(write=False)
                return mask
        raise AssertionError("unreachable: validated in __post_init__")

    @cached_property
    def priority_weights(self) -> FloatArray:
        """Per-task priority, ones when not given."""
        if self.priority is not None:
            return self.priority
        w = np.ones(self.n_tasks)
        w.setflags(write=False)
        return w

    @cached_property
    def share_limits(self) -> IntArray | None:
        """Per-model maximum task count from ``share_cap`` (floor of share x N)."""
        if self.share_cap is None:
            return None
        lim = np.floor(self.share_cap * self.n_tasks + 1e-9).astype(np.int64)
        lim.setflags(write=False)
        return lim

    def capacity_rows(self) -> list[CapacityRow]:
        """Every capacity family, the primary ``load``/``capacity`` first."""
        rows: list[CapacityRow] = []
        if self.load is not None and self.capacity is not None:
            rows.append(CapacityRow("capacity", self.load, self.capacity))
        rows.extend(self.extra_capacities)
        return rows

    @cached_property
    def makespan_concurrency(self) -> FloatArray:
        """Per-model concurrency for the makespan; +inf (no per-model term) when not given."""
        if self.concurrency is not None:
            return self.concurrency
        c = np.full(self.n_models, np.inf)
        c.setflags(write=False)
        return c

    def required_features(self) -> frozenset[Feature]:
        """The constraint families this problem uses; backends compare against their own."""
        f: set[Feature] = set()
        if self.budget is not None:
            f.add(Feature.BUDGET)
        if self.min_avg_quality is not None:
            f.add(Feature.QUALITY_FLOOR)
        if self.capacity_rows():
            f.add(Feature.CAPACITY)
        if self.share_cap is not None:
            f.add(Feature.SHARE_CAP)
        if self.allow_queue:
            f.add(Feature.QUEUE)
        if self.goal is Goal.MINIMIZE_LATENCY:
            f.add(Feature.MAKESPAN)
        if self.has_group_charges:
            f.add(Feature.GROUP_CHARGE)
        return frozenset(f)

    @property
    def has_group_charges(self) -> bool:
        """Whether any group fixed charge is positive (zero charges change nothing)."""
        return self.group_charges is not None and bool((self.group_charges.setup > 0).any())

    def charges(self, assignment: IntArray) -> float:
        """The group fixed charges (cost units) an assignment pays; 0 without groups."""
        if self.group_charges is None:
            return 0.0
        used = used_pairs(self.group_charges, assignment, self.n_models)
        return float(self.group_charges.setup[used].sum())

    def total_cost(self, assignment: IntArray) -> float:
        """Cost of the served tasks plus the group fixed charges (what the budget limits)."""
        assert self.cost is not None
        a = np.asarray(assignment)
        served = np.flatnonzero(a >= 0)
        return float(self.cost[served, a[served]].sum()) + self.charges(a)

    @cached_property
    def group_objective(self) -> FloatArray | None:
        """The goal's coefficient on each (group, model) charge, shape (n_groups, n_models)."""
        return None if self.group_charges is None else group_objective(self)

    @cached_property
    def balanced_score(self) -> FloatArray:
        """Per-pair score of the balanced goal, shape (n_tasks, n_models), lower is better.

        Each of cost, latency and quality is normalised per task over that task's feasible
        models to [0, 1] (0 = best of them); a task whose models tie on a criterion scores 0
        on it. score = w.cost * cost_n + w.speed * latency_n + w.quality * (1 - quality_n).
        """
        mask = self.feasible_mask
        score = np.zeros(mask.shape)
        w = self.weights

        def normalised(a: FloatArray, lower_is_better: bool) -> FloatArray:
            lo = np.where(mask, a, np.inf).min(axis=1, keepdims=True)
            hi = np.where(mask, a, -np.inf).max(axis=1, keepdims=True)
            lo = np.where(np.isfinite(lo), lo, 0.0)
            hi = np.where(np.isfinite(hi), hi, 0.0)
            span = hi - lo
            safe = np.where(span > 0, span, 1.0)
            out = np.where(span > 0, (a - lo) / safe, 0.0)
            out = out if lower_is_better else np.where(span > 0, 1.0 - out, 0.0)  # a tie scores 0
            return np.where(mask, out, 0.0)

        if self.cost is not None and w.cost > 0:
            score += w.cost * normalised(self.cost, True)
        if self.latency is not None and w.speed > 0:
            score += w.speed * normalised(self.latency, True)
        if self.quality is not None and w.quality > 0:
            score += w.quality * normalised(self.quality, False)
        score.setflags(write=False)
        return score

    @cached_property
    def objective_matrix(self) -> FloatArray:
        """Linear objective coefficients c[i, j] for the linear goals (sense: :attr:`Goal.maximize`).

        For ``minimize_latency`` this is the per-pair latency used by the tie-break only; the
        makespan itself is not linear in x and every backend models it with its own variable.
        """
        goal = Goal(self.goal)
        if goal is Goal.MINIMIZE_COST:
            c = self.cost
        elif goal is Goal.MAXIMIZE_QUALITY:
            c = self.quality * self.priority_weights[:, None]  # type: ignore[operator]
        elif goal is Goal.MINIMIZE_LATENCY:
            c = self.latency
        else:
            c = self.balanced_score * self.priority_weights[:, None]
        assert c is not None
        c = np.where(self.feasible_mask, c, 0.0)
        c.setflags(write=False)
        return c

    # ------------------------------------------------------------------ evaluating a plan
    def served_weight(self, assignment: IntArray) -> float:
        """Total priority of the served tasks."""
        a = np.asarray(assignment)
        return float(self.priority_weights[a >= 0].sum())

    def makespan(self, assignment: IntArray) -> float:
        """max(max_i latency of served task, max_j sum latency on j / concurrency[j])."""
        assert self.latency is not None
        a = np.asarray(assignment)
        served = np.flatnonzero(a >= 0)
        if served.size == 0:
            return 0.0
        lat = self.latency[served, a[served]]
        per_model = np.bincount(a[served], weights=lat, minlength=self.n_models)
        conc = self.makespan_concurrency
        with np.errstate(divide="ignore", invalid="ignore"):
            per_model = np.where(np.isfinite(conc), per_model / conc, 0.0)
        return float(max(lat.max(), per_model.max()))

    def objective_value(self, assignment: IntArray) -> float:
        """The goal's value for an assignment (queued tasks contribute nothing)."""
        a = np.asarray(assignment)
        if Goal(self.goal) is Goal.MINIMIZE_LATENCY:
            return self.makespan(a)
        served = np.flatnonzero(a >= 0)
        value = float(self.objective_matrix[served, a[served]].sum())
        if self.group_charges is not None:
            assert self.group_objective is not None
            value += float(self.group_objective[used_pairs(self.group_charges, a, self.n_models)].sum())
        return value

    def violations(self, assignment: IntArray, tol: float = FEAS_TOL) -> list[str]:
        """Every limit the assignment breaks, in words; empty when it is feasible."""
        a = np.asarray(assignment)
        out: list[str] = []
        if a.shape != (self.n_tasks,):
            return [f"assignment: expected shape ({self.n_tasks},), got {a.shape}"]
        if ((a < -1) | (a >= self.n_models)).any():
            return ["assignment: model index out of range"]
        served = np.flatnonzero(a >= 0)
        queued = np.flatnonzero(a < 0)
        if queued.size and not self.allow_queue:
            out.append(f"queue: task {queued[0]} is queued but queuing is not allowed")
        bad = served[~self.feasible_mask[served, a[served]]]
        if bad.size:
            out.append(f"feasible: task {bad[0]} is assigned to excluded model {a[bad[0]]}")
        if self.budget is not None:
            assert self.cost is not None
            spent = self.total_cost(a)
            if spent > self.budget + tol * max(1.0, self.budget):
                out.append(f"budget: spends {spent:.6g} > {self.budget:.6g}")
        if self.min_avg_quality is not None and served.size:
            assert self.quality is not None
            slack = float((self.quality[served, a[served]] - self.min_avg_quality).sum())
            if slack < -tol * max(1.0, served.size):
                out.append(f"min_avg_quality: mean quality below {self.min_avg_quality}")
        for row in self.capacity_rows():
            used = np.bincount(a[served], weights=row.load[served, a[served]], minlength=self.n_models)
            over = used > row.limit + tol * np.maximum(1.0, np.where(np.isfinite(row.limit), row.limit, 1.0))
            if over.any():
                j = int(np.argmax(over))
                out.append(f"{row.name}: model {j} uses {used[j]:.6g} > {row.limit[j]:.6g}")
        if self.share_limits is not None:
            counts = np.bincount(a[served], minlength=self.n_models)
            over = counts > self.share_limits
            if over.any():
                j = int(np.argmax(over))
                out.append(f"share_cap: model {j} takes {counts[j]} > {self.share_limits[j]} tasks")
        return out

    def is_feasible(self, assignment: IntArray, tol: float = FEAS_TOL) -> bool:
        return not self.violations(assignment, tol)
