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
4. For the goals that count money, a plan from the bound's prices (below): each group's
   tasks on the models the facility-location dual ascent opened, at the least scale of the
   Lagrange multipliers whose plan meets every limit; consolidated, kept when better.
5. When the consolidated plan still breaks the budget, reserve its charges and solve again
   (at most :data:`PASSES` passes).

The proven bound combines two relaxations, taking the tighter: (a) the bound of the first
pass (without charges; the budget then only loosens, so it is a relaxation) plus, for the
goals that count money, the least charge every served group must pay; (b) a Lagrangian
bound: the global rows (budget, quality floor) priced in by multipliers, the per-model rows
dropped, which leaves one uncapacitated facility-location problem per group (a model is a
facility whose charge opens it); each is bounded below by the dual of its LP relaxation,
raised by dual ascent (or by the uncoupled bound, no charge or the least one with each task
at its best, where that is higher), and the multipliers are set by golden-section search.
On the 10,000-task benchmark the bound is within 4e-6 of the optimum HiGHS proves.
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
    bound, priced = _bound(problem, first.bound)
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
    if priced is not None:
        plan = _from_prices(problem, search, priced, plan, stats)
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


#: Plans from the bound's prices: the least scale of the multipliers whose plan meets every
#: limit (cheaper plans sit at lower scales), bracketed from 1 down or up, then bisected.
PRICE_SCALES_UP = (1.01, 1.03, 1.1, 1.3)
PRICE_SCALES_DOWN = (0.99, 0.97, 0.9, 0.7, 0.3, 0.0)
BISECTIONS = 8


def _from_prices(problem: Problem, search: _Search, priced: _Priced, plan: NDArray[np.int64],
                 stats: dict[str, Any]) -> NDArray[np.int64]:
    """The better of ``plan`` and a consolidated facility-location plan at the bound's prices:
    the least scale of the multipliers whose plan meets every limit (bisection between the
    last scale that breaks one and the first that does not; cheaper plans sit at lower
    scales), consolidated. The charges are counted exactly by the search."""
    def at(scale: float) -> NDArray[np.int64]:
        return _facility_plan(problem, _priced(problem, [m * scale for m in priced.mu]))

    low, found = None, None
    first = at(1.0)
    if search._ok(first):  # down until a scale breaks a limit
        found = (1.0, first)
        for scale in PRICE_SCALES_DOWN:
            trial = at(scale)
            if not search._ok(trial):
                low = scale
                break
            found = (scale, trial)
    else:  # up until one meets them all
        low = 1.0
        for scale in PRICE_SCALES_UP:
            trial = at(scale)
            if search._ok(trial):
                found = (scale, trial)
                break
            low = scale
    if found is None:
        stats["price_plan"] = "none met the limits"
        return plan
    high, cand = found
    if low is not None:
        for _ in range(BISECTIONS):
            mid = (low + high) / 2
            trial = at(mid)
            if search._ok(trial):
                high, cand = mid, trial
            else:
                low = mid
    cand = search.consolidate(cand)
    best_value = search._value(plan) if search._ok(plan) else np.inf
    if search._ok(cand) and search._value(cand) < best_value - 1e-12 * max(1.0, abs(best_value)):
        stats["price_plan"] = f"taken (multipliers x {high:.4g})"
        return cand
    stats["price_plan"] = f"not better (multipliers x {high:.4g})"
    return plan


# ---------------------------------------------------------------------- the bound
@dataclasses.dataclass(frozen=True)
class _Priced:
    """The global rows (budget, quality floor) priced in by multipliers ``mu`` >= 0: pair values
    ``c`` (n, k), +inf where infeasible, and group charges ``charge`` (G, k)."""

    c: NDArray[np.float64]
    charge: NDArray[np.float64]
    mu: tuple[float, ...]


def _bound(problem: Problem, plain_bound: float | None) -> tuple[float | None, _Priced | None]:
    """A proven bound for the problem with charges (see the module docstring), and the
    Lagrangian prices it was found at (None for the goals that maximise)."""
    goal = Goal(problem.goal)
    if goal.maximize:  # the charges cost money, not quality: the plain bound stands
        return plain_bound, None
    cg = problem.group_objective
    assert cg is not None
    least, b = _uncoupled(problem, np.asarray(problem.objective_matrix), cg)
    lagrange, priced = _lagrangian(problem, b)
    b = max(b, lagrange)
    return (b if plain_bound is None else max(plain_bound + least, b)), priced


#: Golden-section steps per multiplier and coordinate-ascent rounds of the Lagrangian bound.
GOLDEN_STEPS, ROUNDS = 22, 3


def _rows(problem: Problem) -> list[tuple[NDArray[np.float64], NDArray[np.float64], float]]:
    """The global rows as (pair coefficients, charge coefficients, limit), each ``<= limit``."""
    assert problem.group_charges is not None
    mask = problem.feasible_mask
    rows: list[tuple[NDArray[np.float64], NDArray[np.float64], float]] = []
    if problem.budget is not None and problem.cost is not None:
        rows.append((np.where(mask, problem.cost, 0.0), problem.group_charges.setup, float(problem.budget)))
    if problem.min_avg_quality is not None and problem.quality is not None:
        rows.append((np.where(mask, problem.min_avg_quality - problem.quality, 0.0),
                     np.zeros_like(problem.group_charges.setup), 0.0))
    return rows


def _priced(problem: Problem, mu: list[float] | tuple[float, ...]) -> _Priced:
    assert problem.group_objective is not None
    c = np.where(problem.feasible_mask, np.asarray(problem.objective_matrix), 0.0)
    charge = np.array(problem.group_objective, dtype=float)
    for m, (coef, ch, _) in zip(mu, _rows(problem), strict=True):
        if m:
            c = c + m * coef
            charge = charge + m * ch
    return _Priced(np.where(problem.feasible_mask, c, np.inf), charge, tuple(mu))


def _lagrangian(problem: Problem, at_zero: float) -> tuple[float, _Priced]:
    """The group bound with the global rows (budget, quality floor) priced in by multipliers
    mu >= 0 instead of dropped: for any mu, the per-group facility-location bound
    (:func:`_facility_bound`) minus mu times the limits is a valid lower bound (Lagrangian
    relaxation; the per-model rows stay dropped). Each multiplier is set by golden-section
    search in turn (the dual is concave; any value evaluated is valid). ``at_zero``: the
    uncoupled bound at mu = 0."""
    rows = _rows(problem)
    zero = _priced(problem, [0.0] * len(rows))
    best, best_mu = max(at_zero, _facility_bound(problem, zero.c, zero.charge)), [0.0] * len(rows)
    if not rows:
        return best, zero
    scale_c = float(np.abs(np.where(problem.feasible_mask, np.asarray(problem.objective_matrix), 0.0)).max()) or 1.0

    def value(mu: list[float]) -> float:
        pr = _priced(problem, mu)
        return _facility_bound(problem, pr.c, pr.charge) - sum(m * r[2] for m, r in zip(mu, rows, strict=True))

    mu = [0.0] * len(rows)
    for _ in range(ROUNDS if len(rows) > 1 else 1):
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
                best_mu = list(mu)
    return best, _priced(problem, best_mu)


#: Dual-ascent passes per group (each raises every task's dual value it can, at once).
ASCENT_PASSES = 200


def _facility_dual(c: NDArray[np.float64], f: NDArray[np.float64]) -> tuple[float, NDArray[np.bool_]]:
    """A lower bound on one group's facility-location problem (tasks ``c`` (m, k), +inf where
    infeasible; a model used by any of them pays ``f`` (k,) once) and the models the bound
    opens. The dual of its LP relaxation, max sum v_i with sum_i max(0, v_i - c_ij) <= f_j for
    every j, raised from v_i = min_j c_ij (Erlenkotter's dual ascent, every task at once: a
    task rises to its next-dearer model, or by its share of the slack of each model it
    already reaches). Any such v is feasible, so its sum is a valid bound."""
    v = c.min(axis=1)
    slack = np.asarray(f, dtype=float).copy()
    eps = 1e-15 * max(1.0, float(np.abs(c[np.isfinite(c)]).max(initial=0.0)))
    for _ in range(ASCENT_PASSES):
        reach = c <= v[:, None] + eps
        want = np.where(reach, np.inf, c).min(axis=1) - v
        count = reach.sum(axis=0)
        share = np.where(count > 0, slack / np.maximum(count, 1), np.inf)
        step = np.minimum(want, np.where(reach, share[None, :], np.inf).min(axis=1))
        step = np.where(np.isfinite(step), step, 0.0)
        if step.max(initial=0.0) <= eps:
            break
        v = v + step
        slack = np.maximum(slack - (reach * step[:, None]).sum(axis=0), 0.0)
    return float(v.sum()), slack <= np.maximum(1e-6 * np.asarray(f, dtype=float), eps)  # (all but) spent


def _facility_bound(problem: Problem, c: NDArray[np.float64], charge: NDArray[np.float64]) -> float:
    """For pair values c (n, k; +inf where infeasible) and charges (G, k): a lower bound over
    plans serving every servable task with every per-model limit dropped: ungrouped tasks at
    their best; per group the better of its facility-location dual bound and the uncoupled
    one (no charge, or the least charge with each task at its best)."""
    ch = problem.group_charges
    assert ch is not None
    served = problem.feasible_mask.any(axis=1)
    total = float(c[served & (ch.group < 0)].min(axis=1, initial=np.inf).sum()) if (served & (ch.group < 0)).any() else 0.0
    for g in range(ch.n_groups):
        members = np.flatnonzero((ch.group == g) & served)
        if members.size == 0:
            continue
        cm = c[members]
        best = cm.min(axis=1)
        free = charge[g] <= 0
        no_charge = float(np.where(free[None, :], cm, np.inf).min(axis=1).sum())
        charged = np.isfinite(cm).any(axis=0) & ~free
        with_charge = (float(charge[g, charged].min()) + float(best.sum())) if charged.any() else np.inf
        total += max(min(no_charge, with_charge), _facility_dual(cm, np.maximum(charge[g], 0.0))[0])
    return total


def _facility_plan(problem: Problem, priced: _Priced) -> NDArray[np.int64]:
    """A plan from the bound's prices: each group's tasks on the best of the models its dual
    ascent opened (and the free ones); ungrouped tasks at their best priced model. A
    candidate for consolidation: the limits are checked there, the charges counted exactly."""
    ch = problem.group_charges
    assert ch is not None
    c = priced.c
    served = problem.feasible_mask.any(axis=1)
    plan = np.where(served, np.argmin(np.where(np.isfinite(c), c, np.inf), axis=1), -1).astype(np.int64)
    for g in range(ch.n_groups):
        members = np.flatnonzero((ch.group == g) & served)
        if members.size == 0:
            continue
        cm = c[members]
        f = np.maximum(priced.charge[g], 0.0)
        _, opened = _facility_dual(cm, f)
        opened |= f <= 0
        on_open = np.where(opened[None, :], cm, np.inf)
        # a task the ascent left with no opened model takes its dearest-charged best (charge counted)
        fallback = np.argmin(cm + f[None, :], axis=1)
        plan[members] = np.where(np.isfinite(on_open.min(axis=1)), np.argmin(on_open, axis=1), fallback)
    return plan


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
