"""Brute-force reference: enumerate every plan of a tiny problem, numpy-vectorised.

Written from the Problem docstring, independently of the backends: every limit is checked
on every plan, queuing is lexicographic (most priority weight served first, then the goal).
Sizes up to 8 tasks x 4 models (5**8 = 390,625 plans with queuing) take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from solvers import Goal, Problem

TOL = 1e-9


@dataclass(frozen=True)
class BruteResult:
    optimum: float | None  # None: no plan meets the limits
    served_weight: float | None
    min_budget: float | None  # least cost over plans meeting every other limit
    min_capacity_scale: float | None
    min_share_scale: float | None


def all_plans(problem: Problem) -> NDArray[np.int64]:
    """Every assignment, shape (n_plans, n_tasks); -1 (queued) only when queuing is allowed."""
    choices = []
    for i in range(problem.n_tasks):
        c = list(np.flatnonzero(problem.feasible_mask[i]))
        if problem.allow_queue:
            c.append(-1)
        choices.append(np.array(c, dtype=np.int64))
    grids = np.meshgrid(*choices, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _gather(matrix: NDArray[np.float64], plans: NDArray[np.int64], served: NDArray[np.bool_]) -> NDArray[np.float64]:
    vals = matrix[np.arange(plans.shape[1])[None, :], np.maximum(plans, 0)]
    return np.where(served, vals, 0.0)


def solve_brute(problem: Problem) -> BruteResult:
    p = problem
    plans = all_plans(p)
    served = plans >= 0
    n_plans = plans.shape[0]
    onehot = [(plans == j) for j in range(p.n_models)]

    ok_budget = np.ones(n_plans, bool)
    spent = np.zeros(n_plans)
    if p.cost is not None:
        spent = _gather(p.cost, plans, served).sum(axis=1)
    charges = np.zeros(n_plans)  # group fixed charges: setup once per (group, model) used
    charges_obj = np.zeros(n_plans)
    if p.group_charges is not None:
        grp = p.group_charges.group
        assert p.group_objective is not None
        for g in range(p.group_charges.n_groups):
            members = grp == g
            for j in range(p.n_models):
                on = onehot[j][:, members].any(axis=1)
                charges += on * p.group_charges.setup[g, j]
                charges_obj += on * p.group_objective[g, j]
        spent = spent + charges
    if p.budget is not None:
        ok_budget = spent <= p.budget + TOL
    ok_quality = np.ones(n_plans, bool)
    if p.min_avg_quality is not None:
        assert p.quality is not None
        ok_quality = ((_gather(p.quality, plans, served) - p.min_avg_quality) * served).sum(axis=1) >= -TOL
    alpha = np.zeros(n_plans)
    for row in p.capacity_rows():
        load = _gather(row.load, plans, served)
        for j in range(p.n_models):
            if np.isfinite(row.limit[j]):
                used = (load * onehot[j]).sum(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    alpha = np.maximum(alpha, np.where(used > 0, used / row.limit[j], 0.0))
    ok_capacity = alpha <= 1 + TOL
    beta = np.zeros(n_plans)
    ok_share = np.ones(n_plans, bool)
    if p.share_cap is not None:
        for j in range(p.n_models):
            count = onehot[j].sum(axis=1)
            ok_share &= count <= np.floor(p.share_cap[j] * p.n_tasks + 1e-9)
            with np.errstate(divide="ignore", invalid="ignore"):
                beta = np.maximum(beta, np.where(count > 0, count / (p.share_cap[j] * p.n_tasks), 0.0))

    weight = (p.priority_weights[None, :] * served).sum(axis=1)
    if Goal(p.goal) is Goal.MINIMIZE_LATENCY:
        assert p.latency is not None
        lat = _gather(p.latency, plans, served)
        value = lat.max(axis=1)
        for j in range(p.n_models):
            c = p.makespan_concurrency[j]
            if np.isfinite(c):
                value = np.maximum(value, (lat * onehot[j]).sum(axis=1) / c)
    else:
        value = _gather(np.asarray(p.objective_matrix), plans, served).sum(axis=1) + charges_obj
    sign = -1.0 if Goal(p.goal).maximize else 1.0

    def least(values: NDArray[np.float64], ok: NDArray[np.bool_]) -> float | None:
        return float(values[ok].min()) if ok.any() else None

    feasible = ok_budget & ok_quality & ok_capacity & ok_share
    if not feasible.any():
        return BruteResult(None, None, least(spent, ok_quality & ok_capacity & ok_share),
                           least(alpha, ok_budget & ok_quality & ok_share) if p.capacity_rows() else None,
                           least(beta, ok_budget & ok_quality & ok_capacity) if p.share_cap is not None else None)
    best_weight = weight[feasible].max()
    keep = feasible & (weight >= best_weight - TOL)
    optimum = sign * float((sign * value)[keep].min())
    return BruteResult(optimum, float(best_weight), None, None, None)
