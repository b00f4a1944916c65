"""Group fixed charges: a cost paid once per (group, model) that serves any task of the group.

Tasks may belong to a group (``group[i]`` in ``0..G-1``, or -1 for none). When at least one
task of group g runs on model j, the plan pays ``setup[g, j]`` once, on top of the tasks' own
costs. In the integer program this is a variable ``y[g, j]`` with ``y[g, j] >= x[i, j]`` for
every task i of g, and ``setup[g, j] * y[g, j]`` added wherever cost counts:

- the budget row: ``sum cost * x + sum setup * y <= budget``;
- the ``minimize_cost`` goal (and the least-budget diagnosis);
- the ``balanced`` goal, converted from USD to score points at the rate the group's own tasks
  use on average (``w.cost * priority_i / cost span_i``, see :func:`group_objective`);
- not the quality or latency goals, which do not count money.

(The LLM reading: a shared prompt prefix is written to the provider's cache once per model
and read at the cheaper cached price after that; the pair costs carry the read price and
``setup`` the difference. The solvers know nothing of that.)

Backends need a ``y`` only where the charge is positive and the group has a feasible pair on
the model; :func:`group_columns` lists them in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from solvers.errors import ProblemError

if TYPE_CHECKING:
    from solvers.problem import Problem

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class GroupCharges:
    """Fixed charges of task groups.

    group : int array of shape (n_tasks,); the task's group in 0..n_groups-1, or -1 for none
    setup : array of shape (n_groups, n_models), >= 0, in the units of ``Problem.cost`` (USD)
    """

    group: IntArray
    setup: FloatArray

    @property
    def n_groups(self) -> int:
        return int(self.setup.shape[0])


def checked_charges(charges: GroupCharges, n: int, k: int) -> GroupCharges:
    """A validated, read-only copy (raises ProblemError naming the field)."""
    try:
        group = np.array(charges.group, dtype=np.int64, copy=True)
        setup = np.array(charges.setup, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ProblemError(f"group_charges: expected numbers, {exc}") from None
    if group.shape != (n,):
        raise ProblemError(f"group_charges.group: expected shape ({n},), got {group.shape}")
    if setup.ndim != 2 or setup.shape[1] != k:
        raise ProblemError(f"group_charges.setup: expected shape (n_groups, {k}), got {setup.shape}")
    g = setup.shape[0]
    if ((group < -1) | (group >= g)).any():
        i = int(np.argmax((group < -1) | (group >= g)))
        raise ProblemError(f"group_charges.group: task {i} names group {group[i]}, expected -1..{g - 1}")
    bad = ~np.isfinite(setup) | (setup < 0)
    if bad.any():
        gi, j = (int(v) for v in np.argwhere(bad)[0])
        raise ProblemError(f"group_charges.setup: expected finite values >= 0, got {setup[gi, j]!r} "
                           f"at group {gi}, model {j}")
    group.setflags(write=False)
    setup.setflags(write=False)
    return GroupCharges(group, setup)


def used_pairs(charges: GroupCharges, assignment: IntArray, n_models: int) -> NDArray[np.bool_]:
    """(n_groups, n_models) True where a task of the group is served by the model."""
    a = np.asarray(assignment)
    on = (charges.group >= 0) & (a >= 0)
    used = np.zeros((charges.n_groups, n_models), dtype=bool)
    used[charges.group[on], a[on]] = True
    return used


def group_objective(problem: Problem) -> FloatArray:
    """The goal's coefficient on y[g, j], shape (n_groups, n_models), in the goal's units.

    minimize_cost: the charge itself. balanced: the charge times the group's mean rate of
    score points per USD (each task's cost term is w.cost * priority * cost / span over its
    feasible models, so one USD on task i weighs w.cost * priority_i / span_i). Other goals: 0.
    """
    from solvers.problem import Goal

    ch = problem.group_charges
    assert ch is not None
    goal = Goal(problem.goal)
    if goal is Goal.MINIMIZE_COST:
        return ch.setup
    if goal is not Goal.BALANCED or problem.cost is None or problem.weights.cost == 0:
        return np.zeros_like(ch.setup)
    mask = problem.feasible_mask
    lo = np.where(mask, problem.cost, np.inf).min(axis=1)
    hi = np.where(mask, problem.cost, -np.inf).max(axis=1)
    span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    rate = np.where(span > 0, problem.priority_weights / np.where(span > 0, span, 1.0), 0.0)
    inside = ch.group >= 0
    total = np.bincount(ch.group[inside], weights=rate[inside], minlength=ch.n_groups)
    count = np.bincount(ch.group[inside], minlength=ch.n_groups)
    mean_rate = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    out = problem.weights.cost * ch.setup * mean_rate[:, None]
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class GroupColumns:
    """The y variables a model needs, in a fixed order.

    g, j : int arrays of shape (n_y,): the (group, model) of each y
    of_pair : int array of shape (n_pairs,): the y each feasible pair (ti, mj) must switch on, -1 for none
    charge : shape (n_y,), the setup in cost units (budget row, COST objective)
    objective : shape (n_y,), the goal's coefficient (GOAL objective)
    """

    g: IntArray
    j: IntArray
    of_pair: IntArray
    charge: FloatArray
    objective: FloatArray

    @property
    def size(self) -> int:
        return int(self.g.size)

    def values(self, assignment: IntArray, n_models: int, charges: GroupCharges) -> FloatArray:
        """y of a plan (1 where the group uses the model), for hints."""
        used = used_pairs(charges, assignment, n_models)
        return used[self.g, self.j].astype(float)


def group_columns(problem: Problem, ti: IntArray, mj: IntArray) -> GroupColumns:
    """One y per (group, model) with a positive charge and at least one feasible pair."""
    ch = problem.group_charges
    empty = np.zeros(0, dtype=np.int64)
    if ch is None:
        return GroupColumns(empty, empty, np.full(ti.size, -1, dtype=np.int64), np.zeros(0), np.zeros(0))
    k = problem.n_models
    pg = ch.group[ti]
    charged = (pg >= 0) & (ch.setup[np.maximum(pg, 0), mj] > 0)
    keys = pg[charged] * k + mj[charged]
    uniq, inverse = np.unique(keys, return_inverse=True)
    of_pair = np.full(ti.size, -1, dtype=np.int64)
    of_pair[charged] = inverse
    g, j = (uniq // k).astype(np.int64), (uniq % k).astype(np.int64)
    obj = group_objective(problem)
    return GroupColumns(g, j, of_pair, ch.setup[g, j].astype(float), obj[g, j].astype(float))
