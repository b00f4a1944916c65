"""The typed hand-off between the shared drivers and an exact backend's model builder.

A solve is a short sequence of models that differ only in their objective and in a few
switches (drop the budget, scale the capacities by a variable, ...). The shared drivers
(:mod:`solvers.backends._staging`, :mod:`solvers.diagnose`) describe each model as a
:class:`ModelSpec`; a backend turns a spec into its native model, solves it once and
answers with a :class:`StageResult`. Every backend builds the same rows::

    sum_j x[i, j] + u[i] = 1                    u exists only when queuing is allowed
    sum cost * x <= budget                      when ``spec.budget`` and a budget is set
    sum (quality - q_min) * x >= 0              quality floor
    sum_i load_r x[:, j] <= limit_r[j] (* alpha)  every capacity row r, finite limits only
    sum_i x[i, j] <= share_limit[j]             or <= beta * share_cap[j] * N when scaled
    sum_j latency[i, j] x[i, j] <= T            per task   } only when the goal is
    sum_i latency[i, j] x[i, j] / conc[j] <= T  per model  } minimize_latency
    served weight >= that of ``served_at_least``  (lexicographic stage fix)
    T <= makespan of ``makespan_at_most``          (lexicographic stage fix)
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from solvers.problem import Goal, Problem
from solvers.solution import Status

#: Relative slack granted to float backends on a stage fix (served weight, makespan), so
#: that the previous stage's own plan stays feasible despite solver tolerances.
STAGE_TOL = 1e-7


class Objective(enum.StrEnum):
    """What one model optimises."""

    SERVED = "served"
    """max total priority weight of the served tasks (queuing stage 1)."""
    GOAL = "goal"
    """the problem's goal: objective_matrix, or the makespan T for minimize_latency."""
    TOTAL_LATENCY = "total_latency"
    """min sum latency * x (the makespan goal's tie-break)."""
    COST = "cost"
    """min sum cost * x (diagnosis: the least budget)."""
    QUALITY_SUM = "quality_sum"
    """max sum quality * x (diagnosis: the best reachable average quality)."""
    CAPACITY_SCALE = "capacity_scale"
    """min alpha with every finite capacity limit multiplied by alpha (diagnosis)."""
    SHARE_SCALE = "share_scale"
    """min beta with every share cap multiplied by beta (diagnosis)."""


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One model to build and solve; the switches default to the problem as given."""

    objective: Objective = Objective.GOAL
    budget: bool = True
    quality_floor: bool = True
    served_at_least: NDArray[np.int64] | None = None
    makespan_at_most: NDArray[np.int64] | None = None
    want_budget_dual: bool = False

    def maximize(self, problem: Problem) -> bool:
        if self.objective is Objective.GOAL:
            return Goal(problem.goal).maximize
        return self.objective in (Objective.SERVED, Objective.QUALITY_SUM)


@dataclass(frozen=True, eq=False)
class StageResult:
    """A backend's answer to one spec.

    assignment : int array of shape (n_tasks,), -1 = queued; None without a plan.
    objective / bound : the spec's objective value and proven bound, in the problem's
        units (alpha and beta are plain factors).
    budget_dual : d(objective)/d(budget) from the LP relaxation, when asked and available.
    """

    status: Status
    assignment: NDArray[np.int64] | None = None
    objective: float | None = None
    bound: float | None = None
    budget_dual: float | None = None
    wall_time_s: float = 0.0
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


class SpecSolver(Protocol):
    """What an exact backend offers the shared drivers: one spec in, one result out."""

    name: str

    def solve_spec(
        self, spec: ModelSpec, time_limit_s: float | None, hint: NDArray[np.int64] | None
    ) -> StageResult: ...


def time_left(time_limit_s: float | None, start: float, floor: float = 1e-3) -> float | None:
    """What is left of a stage's limit after building its model (``start``: ``time.perf_counter()``
    when the stage began; the build counts against the limit)."""
    return None if time_limit_s is None else max(time_limit_s - (time.perf_counter() - start), floor)


def served_rhs(problem: Problem, reference: NDArray[np.int64]) -> float:
    """The float rows' right-hand side for 'serve at least as much weight as reference'."""
    w = problem.served_weight(reference)
    return w - STAGE_TOL * max(1.0, abs(w))


def makespan_rhs(problem: Problem, reference: NDArray[np.int64]) -> float:
    """The float bound for 'a makespan no longer than reference's'."""
    t = problem.makespan(reference)
    return t + STAGE_TOL * max(1.0, abs(t))


def assignment_from_matrix(
    tasks: NDArray[np.int64], models: NDArray[np.int64], x: NDArray[np.float64], n_tasks: int
) -> NDArray[np.int64]:
    """Per-task model index from pair values x (shape (n_pairs,)); -1 where none is set."""
    out = np.full(n_tasks, -1, dtype=np.int64)
    chosen = x > 0.5
    out[tasks[chosen]] = models[chosen]
    return out
