"""What a backend returns: the assignment, a termination status, bound and gap."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.problem import Goal


class Status(enum.StrEnum):
    """How a solve ended. Only OPTIMAL is a proof; read ``has_plan`` before the assignment."""

    OPTIMAL = "optimal"
    """A plan proven optimal (within the requested relative gap)."""
    FEASIBLE = "feasible"
    """A plan that satisfies every limit, not proven optimal (heuristic, or solver stopped early)."""
    TIME_LIMIT_FEASIBLE = "time_limit_feasible"
    """The time limit was reached; the best plan found so far is returned."""
    TIME_LIMIT_NO_PLAN = "time_limit_no_plan"
    """The time limit was reached before any plan was found."""
    INFEASIBLE = "infeasible"
    """Proven: no plan satisfies every limit. See ``Solution.diagnosis``."""
    ERROR = "error"
    """The backend failed; ``Solution.message`` says how."""

    @property
    def has_plan(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT_FEASIBLE)


@dataclass(frozen=True)
class Diagnosis:
    """Why a problem is infeasible and what would make it feasible.

    ``tasks_without_model``: tasks no plan can serve: the feasible mask is empty, or every
    feasible model is excluded on its own by a limit (cost alone over the budget, load alone
    over a capacity, a share cap of zero); the notes name the limit.
    ``min_budget``: the least budget with which the other limits can all be met.
    ``min_capacity_scale``: the least factor by which every capacity limit must be
    multiplied (a deadline scales them all alike); 1.0 or less means capacity is not the cause.
    ``min_share_scale``: likewise for the share caps.
    ``notes``: one sentence per finding, for people.
    """

    tasks_without_model: tuple[int, ...] = ()
    min_budget: float | None = None
    min_capacity_scale: float | None = None
    min_share_scale: float | None = None
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "; ".join(self.notes) if self.notes else "no single limit explains the infeasibility"


def relative_gap(objective: float | None, bound: float | None, goal: Goal | str) -> float | None:
    """|objective - bound| / max(|objective|, tiny), the one place a gap is computed.

    ``None`` when either is unknown; 0 when both are zero. For maximisation the bound is
    an upper bound, for minimisation a lower bound; a gap is never negative.
    """
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    maximize = Goal(goal).maximize
    diff = (bound - objective) if maximize else (objective - bound)
    diff = max(diff, 0.0)
    denom = max(abs(objective), abs(bound))
    if denom < 1e-12:
        return 0.0
    return diff / denom


@dataclass(frozen=True)
class Solution:
    """A backend's answer.

    assignment : int array of shape (n_tasks,); model index, or -1 for a queued task.
        All -1 when ``status.has_plan`` is False.
    objective : the goal's value of the assignment (see ``Problem.objective_value``).
    bound : a proven bound on the optimum (lower for minimisation, upper for maximisation).
    budget_shadow_price : d(objective)/d(budget) from an LP relaxation, where one was solved.
    stats : backend-specific figures (nodes, iterations, scale, rounding error, choices).
    """

    assignment: NDArray[np.int64]
    status: Status
    goal: Goal
    backend: str
    objective: float | None = None
    bound: float | None = None
    wall_time_s: float = 0.0
    budget_shadow_price: float | None = None
    served_weight: float | None = None
    diagnosis: Diagnosis | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        """Relative gap between objective and bound; see :func:`relative_gap`."""
        return relative_gap(self.objective, self.bound, self.goal)

    @property
    def queued(self) -> NDArray[np.int64]:
        """Indices of the tasks left unserved."""
        return np.flatnonzero(self.assignment < 0)

    def __repr__(self) -> str:
        gap = "n/a" if self.gap is None else f"{self.gap:.2e}"
        return (
            f"Solution(status={self.status.value}, objective={self.objective}, bound={self.bound}, "
            f"gap={gap}, backend={self.backend!r}, wall_time_s={self.wall_time_s:.3f}, "
            f"queued={len(self.queued)})"
        )
