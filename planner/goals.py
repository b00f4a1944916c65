"""The goals a plan can optimise, defined once: the CLI's ``--goal``, the pipeline's
``optimization_goal``/``routing_strategy``/``priority``, the plan's fallback ranking and the
solvers all read this table.

A goal's objective is the solver library's (:class:`solvers.Goal`); what it adds here is what
the rest of routeplan needs to know about it: the pipeline's word for it, how to say it, the
per-pair figure that ranks a task's models, and which backends can solve it (read from the
backends' declared features, so a backend that cannot express a goal is never offered for it).
To add a goal: add it to :class:`solvers.Goal` and its objective to ``solvers.problem``, then
a row here (see the docs' architecture page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import solvers
from planner.errors import InputError

Figure = Literal["cost", "quality", "latency", "balanced_score"]


@dataclass(frozen=True)
class GoalSpec:
    name: str  # the solvers.Goal value, as users type it
    priority: str  # the pipeline's word for it (``priority: cost`` / ``routing_strategy: cost``)
    objective: str  # what the solver optimises (solvers.problem builds it)
    phrase: str  # "lowest projected cost": how reports say what was optimised
    figure: Figure  # the per-pair figure that ranks a task's models (lower is better, quality negated)
    needs: solvers.Feature | None = None  # a constraint family the objective itself needs

    @property
    def maximize(self) -> bool:
        return solvers.Goal(self.name).maximize

    def backends(self) -> list[str]:
        """Backends whose declared features express this goal, in preference order."""
        return [b.name for b in solvers.BACKENDS.values() if self.needs is None or self.needs in b.features]


GOALS: dict[str, GoalSpec] = {g.name: g for g in (
    GoalSpec("minimize_cost", "cost", "least total cost (USD) of the served tasks",
             "lowest projected cost", "cost"),
    GoalSpec("maximize_quality", "quality", "largest sum of priority x quality over the served tasks",
             "highest quality", "quality"),
    GoalSpec("minimize_latency", "speed", "least batch makespan under per-model concurrency",
             "lowest latency", "latency", needs=solvers.Feature.MAKESPAN),
    GoalSpec("balanced", "balanced", "least weighted sum of per-task normalised cost, latency and "
             "(1 - quality)", "best balance of cost, quality and speed", "balanced_score"),
)}
GOAL_NAMES = tuple(GOALS)
#: The pipeline's priority words -> goal names.
PRIORITY_GOALS = {g.priority: g.name for g in GOALS.values()}
#: "minimize_cost, maximize_quality, minimize_latency or balanced", for help texts.
GOAL_LIST = ", ".join(GOAL_NAMES[:-1]) + " or " + GOAL_NAMES[-1]


def goal_spec(name: str, option: str = "--goal") -> GoalSpec:
    """The goal called ``name``; any other name is an InputError listing the goals."""
    try:
        return GOALS[name]
    except (KeyError, TypeError):
        raise InputError(f"{option}: expected one of {', '.join(GOAL_NAMES)}, got {name!r}") from None


assert set(GOAL_NAMES) == {g.value for g in solvers.Goal}, "every solvers.Goal has exactly one row here"
