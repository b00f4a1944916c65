"""``fast`` with group fixed charges: solve without them, then consolidate groups, with a bound.

The charges (:mod:`solvers.groups`) couple the tasks of a group, which the per-task methods
of ``fast`` cannot see. The method:

1. Solve the problem without the charges (the same pair data, the budget lowered by the
   charges reserved so far; the first pass reserves nothing).
2. Consolidate each group by moves that keep every limit met: move all of a group's tasks
   on one model to the group's other models (closing that model's charge), or move the
   whole group onto one model; a move is taken when it improves the goal with the charges
   counted (or, while the budget is broken, when it frees money at the least loss).
3. Solve again without the charges but with each spread over the group's tasks (the share
   of the model a group barely uses grows with each pass), consolidate, keep the best plan.
4. When the consolidated plan still breaks the budget, reserve its charges and solve again
   (at most :data:`PASSES` passes).

The proven bound combines two relaxations, taking the tighter: (a) the bound of the first
pass (without charges; the budget then only loosens, so it is a relaxation) plus, for the
goals that count money, the least charge every served group must pay; (b) the groups
uncoupled (every limit dropped): per group, either no charged model is used, or at least
one charge is paid and each task takes its best model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.groups import used_pairs
from solvers.options import Options
from solvers.problem import FEAS_TOL, Goal, Problem
from solvers.solution import Diagnosis, Solution, Status, relative_gap

PASSES = 4
#: Charge-free solves with the charges spread over the groups' tasks (see ``_amortised``).
AMORTISE_PASSES = 3
#: Consolidation sweeps over all groups (each sweep stops early once nothing improves).
SWEEPS = 4
#: "Whole group on one model" moves tried per group: the models best for the group's pair values.
WHOLE_GROUP_TRIES = 3

SolveFn = Callable[[Problem, Options], Solution]


def solve_grouped(problem: Problem, options: Options, solve_plain: SolveFn) -> Solution:
    """``fast`` on a problem with group charges; ``solve_plain`` solves one without them."""
    start = time.perf_counter()
    goal = Goal(problem.goal)
    plain = dataclasses.replace(problem, group_charges=None)
    first = solve_plain(plain, options)
    stats: dict[str, Any] = {"method": "group-consolidation", "plain_method": first.stats.get("method")}
    if not first.status.has_plan:
        # the charges only add cost: without a plan here there is none with them
        return dataclasses.replace(first, wall_time_s=time.perf_counter() - start,
                                   stats={**first.stats, **stats})
    bound = _bound(problem, first.bound)
    if problem.budget is not None and not problem.allow_queue:
        least = least_total_cost(problem)
        if least > problem.budget * (1 + 1e-9) + 1e-12:
            note = (f"every plan costs at least {least:.6g} with the group charges (each group pays at "
                    f"least one) > budget {problem.budget:.6g}")
            return Solution(np.full(problem.n_tasks, -1, np.int64), Status.INFEASIBLE, goal, "fast",
                            wall_time_s=time.perf_counter() - start, diagnosis=Diagnosis(notes=(note,)),
                            message=note, stats=stats)
    search = _Search(problem)
    plan = search.consolidate(first.assignment)
    plan = _amortised(problem, plain, options, solve_plain, search, plan, stats)
    passes = 1
    while not problem.is_feasible(plan) and passes < PASSES and problem.budget is not None:
        reserve = problem.charges(plan)
        budget = problem.budget - reserve
        if budget < 0:
            break
        again = solve_plain(dataclasses.replace(plain, budget=budget), options)
        passes += 1
        if not again.status.has_plan:
            break
        plan = search.consolidate(again.assignment)
    stats.update(passes=passes, moves=search.moves, charges=problem.charges(plan),
                 groups_split=int((used_pairs(problem.group_charges, plan, problem.n_models).sum(axis=1) > 1).sum())  # type: ignore[arg-type]
                 )
    if not problem.is_feasible(plan):
        msg = ("fast found no plan that pays the group charges within the budget; the problem may "
               "still be feasible: use highs or cpsat")
        return Solution(np.full(problem.n_tasks, -1, np.int64), Status.TIME_LIMIT_NO_PLAN, goal, "fast",
                        bound=bound, wall_time_s=time.perf_counter() - start, message=msg, stats=stats)
    objective = problem.objective_value(plan)
    if bound is not None:  # the bound can never be past a plan's value (float noise aside)
        bound = max(bound, objective) if goal.maximize else min(bound, objective)
    gap = relative_gap(objective, bound, goal)
    status = Status.OPTIMAL if gap is not None and gap <= options.rel_gap else Status.FEASIBLE
    return Solution(plan, status, goal, "fast", objective=objective, bound=bound,
                    wall_time_s=time.perf_counter() - start, budget_shadow_price=None,
                    served_weight=problem.served_weight(plan), stats={**first.stats, **stats})


def _amortised(problem: Problem, plain: Problem, options: Options, solve_plain: SolveFn, search: _Search,
               plan: NDArray[np.int64], stats: dict[str, Any]) -> NDArray[np.int64]:
    """Better plans from the charge-free solver with each charge spread over the group's tasks.

    Pass 1 adds ``setup[g, j] / |g|`` to the cost of every task of g on j (as if the whole group
    went there); later passes ``setup[g, j] / tasks of g on j`` in the last plan (and the
    whole-group share where it used none), so a model a group barely uses grows dear. The
    budget row then carries the charges, spread. Each plan is consolidated; the best one that
    meets every limit (charges counted exactly) is kept. Only for the goals that count money.
    """
    if Goal(problem.goal).maximize or problem.cost is None:
        return plan
    ch = problem.group_charges
    assert ch is not None
    inside = ch.group >= 0
    size = np.bincount(ch.group[inside], minlength=ch.n_groups).astype(float)
    share = ch.setup / np.maximum(size, 1.0)[:, None]
    best, best_value = plan, (search._value(plan) if search._ok(plan) else np.inf)
    tried = 0
    for _ in range(AMORTISE_PASSES):
        extra = np.zeros(plain.feasible_mask.shape)
        extra[inside] = share[ch.group[inside]]
        try:
            sol = solve_plain(dataclasses.replace(plain, cost=np.asarray(plain.cost) + extra), options)
        except Exception:  # noqa: BLE001 - a refused pass only means no better plan from it
            break
        tried += 1
        if not sol.status.has_plan:
            break
        cand = search.consolidate(sol.assignment)
        if search._ok(cand) and search._value(cand) < best_value:
            best, best_value = cand, search._value(cand)
        counts = np.zeros_like(ch.setup)
        on = inside & (cand >= 0)
        np.add.at(counts, (ch.group[on], cand[on]), 1.0)
        share = np.where(counts > 0, ch.setup / np.maximum(counts, 1.0), ch.setup / np.maximum(size, 1.0)[:, None])
    stats["amortised_passes"] = tried
    return best


# ---------------------------------------------------------------------- the bound
def _bound(problem: Problem, plain_bound: float | None) -> float | None:
    """A proven bound for the problem with charges (see the module docstring)."""
    goal = Goal(problem.goal)
    if goal.maximize:  # the charges cost money, not quality: the plain bound stands
        return plain_bound
    cg = problem.group_objective
    assert cg is not None
    least, b = _uncoupled(problem, np.asarray(problem.objective_matrix), cg)
    b = max(b, _lagrangian(problem, b))
    return b if plain_bound is None else max(plain_bound + least, b)


#: Golden-section steps per multiplier and coordinate-ascent rounds of the Lagrangian bound.
GOLDEN_STEPS, ROUNDS = 24, 3


def _lagrangian(problem: Problem, at_zero: float) -> float:
    """The uncoupled group bound with the global rows (budget, quality floor) priced in by
    multipliers mu >= 0 instead of dropped: for any mu it is a valid lower bound (Lagrangian
    relaxation; the per-model rows stay dropped), and it is concave in mu, so each multiplier
    is set by golden-section search in turn. ``at_zero`` is its value at mu = 0."""
    assert problem.group_charges is not None and problem.group_objective is not None
    mask = problem.feasible_mask
    rows: list[tuple[NDArray[np.float64], NDArray[np.float64], float]] = []  # pair coef, charge coef, limit
    if problem.budget is not None and problem.cost is not None:
        rows.append((np.where(mask, problem.cost, 0.0), problem.group_charges.setup, float(problem.budget)))
    if problem.min_avg_quality is not None and problem.quality is not None:
        rows.append((np.where(mask, problem.min_avg_quality - problem.quality, 0.0),
                     np.zeros_like(problem.group_charges.setup), 0.0))
    if not rows:
        return at_zero
    c0 = np.where(mask, np.asarray(problem.objective_matrix), 0.0)
    scale_c = float(np.abs(c0).max()) or 1.0

    def value(mu: list[float]) -> float:
        c = c0.copy()
        charge = np.array(problem.group_objective, dtype=float)
        for m, (coef, ch, _) in zip(mu, rows, strict=True):
            if m:
                c += m * coef
                charge += m * ch
        return _uncoupled(problem, c, charge)[1] - sum(m * r[2] for m, r in zip(mu, rows, strict=True))

    mu = [0.0] * len(rows)
    best = at_zero
    for _ in range(ROUNDS):
        for r, (coef, _, _) in enumerate(rows):
            hi = 10.0 * scale_c / (float(np.abs(coef).max()) or 1.0)
            lo_x, hi_x = 0.0, hi
            phi = (5 ** 0.5 - 1) / 2

            def at(x: float, r: int = r) -> float:
                trial = list(mu)
                trial[r] = x
                return value(trial)

            a, b = hi_x - phi * (hi_x - lo_x), lo_x + phi * (hi_x - lo_x)
            fa, fb = at(a), at(b)
            for _ in range(GOLDEN_STEPS):
                if fa < fb:
                    lo_x, a, fa = a, b, fb
                    b = lo_x + phi * (hi_x - lo_x)
                    fb = at(b)
                else:
                    hi_x, b, fb = b, a, fa
                    a = hi_x - phi * (hi_x - lo_x)
                    fa = at(a)
            x = a if fa >= fb else b
            fx = max(fa, fb)
            if fx > best:
                best, mu[r] = fx, x
    return best


def least_total_cost(problem: Problem) -> float:
    """A lower bound on the cost (charges included) of any plan serving every servable task."""
    assert problem.cost is not None and problem.group_charges is not None
    return _uncoupled(problem, problem.cost, problem.group_charges.setup)[1]


def _uncoupled(problem: Problem, c: NDArray[np.float64], charge: NDArray[np.float64]) -> tuple[float, float]:
    """For pair values c (n, k) and charges (G, k), both to minimise over plans serving every
    servable task: (the sum over groups of the least charge each must pay, the bound with every
    limit dropped: a group either pays no charge, its tasks on uncharged models only, or at
    least its least positive charge with each task on its best model)."""
    ch = problem.group_charges
    assert ch is not None
    mask = problem.feasible_mask
    served = mask.any(axis=1)
    cm = np.where(mask, c, np.inf)
    best = np.where(served, cm.min(axis=1), 0.0)
    in_group = (ch.group >= 0) & served
    has = np.zeros(ch.n_groups, dtype=bool)
    has[ch.group[in_group]] = True
    usable = np.zeros((ch.n_groups, problem.n_models), dtype=bool)
    np.logical_or.at(usable, ch.group[in_group], mask[in_group])
    least = float(np.where(usable[has], charge[has], np.inf).min(axis=1).sum()) if has.any() else 0.0
    total = float(best[served & (ch.group < 0)].sum())
    for g in np.flatnonzero(has):
        members = np.flatnonzero((ch.group == g) & served)
        free = charge[g] <= 0
        no_charge = float(np.where(free[None, :], cm[members], np.inf).min(axis=1).sum())
        charged = usable[g] & ~free
        with_charge = (float(charge[g, charged].min()) + float(best[members].sum())) if charged.any() else np.inf
        total += min(no_charge, with_charge)
    return least, total


# ---------------------------------------------------------------------- consolidation
class _Search:
    """Group moves on a full assignment, checked against every limit of the problem."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.moves = 0
        ch = problem.group_charges
        assert ch is not None and problem.group_objective is not None
        self.ch, self.cg = ch, problem.group_objective
        self.sign = -1.0 if Goal(problem.goal).maximize else 1.0  # minimisation form
        self.members = [np.flatnonzero(ch.group == g) for g in range(ch.n_groups)]

    def _value(self, a: NDArray[np.int64]) -> float:
        return self.sign * self.p.objective_value(a)

    def _ok(self, a: NDArray[np.int64]) -> bool:
        return not self.p.violations(a, FEAS_TOL / 10)

    def consolidate(self, start: NDArray[np.int64]) -> NDArray[np.int64]:
        a = np.asarray(start, dtype=np.int64).copy()
        for _ in range(SWEEPS):
            improved = False
            for g, members in enumerate(self.members):
                if members.size == 0:
                    continue
                improved |= self._improve_group(a, g, members)
            if not improved:
                break
        return a

    def _candidates(self, a: NDArray[np.int64], members: NDArray[np.int64]) -> list[NDArray[np.int64]]:
        """New assignments of the group's members: close one used model, or all on one model."""
        p = self.p
        m = members[a[members] >= 0]
        if m.size == 0:
            return []
        mask = p.feasible_mask[m]
        sub = np.where(mask, self.sign * p.objective_matrix[m], np.inf)
        used = np.unique(a[m])
        out: list[NDArray[np.int64]] = []
        if used.size > 1:
            for j in used:  # close j: its tasks go to their best other used model
                others = np.setdiff1d(used, [j])
                moving = a[m] == j
                choice = others[np.argmin(sub[moving][:, others], axis=1)]
                if np.isfinite(sub[moving][np.arange(moving.sum()), choice]).all():
                    new = a[m].copy()
                    new[moving] = choice
                    out.append(new)
        totals = sub.sum(axis=0)  # the whole group on model k (the few best k by pair values)
        for k in np.argsort(totals, kind="stable")[:WHOLE_GROUP_TRIES]:
            if not np.isfinite(totals[k]) or (used.size == 1 and used[0] == k):
                continue
            out.append(np.full(m.size, k, dtype=np.int64))
        return out

    def _improve_group(self, a: NDArray[np.int64], g: int, members: NDArray[np.int64]) -> bool:
        m = members[a[members] >= 0]
        cands = self._candidates(a, members)
        if not cands:
            return False
        current = a[m].copy()
        base_ok = self._ok(a)
        base_value = self._value(a)
        base_cost = self.p.total_cost(a) if self.p.budget is not None else 0.0
        best, best_key = None, None
        for new in cands:
            a[m] = new
            if self._ok(a):
                value = self._value(a)
                if base_ok:
                    key = value - base_value
                    if key < -1e-12 * max(1.0, abs(base_value)) and (best_key is None or key < best_key):
                        best, best_key = new, key
                else:  # repairing the budget: any feasible plan beats an infeasible one
                    key = value
                    if best_key is None or key < best_key:
                        best, best_key = new, key
            elif not base_ok and self.p.budget is not None:
                cost = self.p.total_cost(a)
                if cost < base_cost - 1e-15 and best is None:
                    best, base_cost = new, cost  # frees money: keep it as a step toward feasible
            a[m] = current
        if best is None:
            return False
        a[m] = best
        self.moves += 1
        return True
