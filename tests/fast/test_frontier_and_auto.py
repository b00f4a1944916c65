"""The parametric budget frontier, and auto's recorded choice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import solvers
from solvers import Goal, Options, Problem, Status
from solvers.parametric import budget_frontier, is_parametric


def batch(n: int, k: int, seed: int, **kw) -> Problem:
    rng = np.random.default_rng(seed)
    price = np.exp(rng.uniform(np.log(0.1), np.log(10), k))
    cost = rng.lognormal(0, 0.5, (n, 1)) * price[None, :] / 1000
    quality = np.clip(0.5 + 0.4 * np.argsort(np.argsort(price)) / k + rng.normal(0, 0.05, (n, k)), 0, 1)
    return Problem(cost=cost, quality=quality, goal=kw.pop("goal", Goal.MAXIMIZE_QUALITY), **kw)


def test_frontier_is_monotone_and_agrees_with_per_point_solves() -> None:
    p = batch(400, 8, 1)
    lo = float(p.cost.min(axis=1).sum())
    hi = float(p.cost.max(axis=1).sum())
    budgets = list(np.linspace(lo, hi, 12)) + [lo * 0.5]
    front = budget_frontier(p, budgets)
    assert is_parametric(p)
    assert front[-1].status is Status.INFEASIBLE and front[-1].diagnosis.min_budget == pytest.approx(lo)
    points = front[:-1]
    objs = [s.objective for s in points]
    bounds = [s.bound for s in points]
    assert all(b2 >= b1 - 1e-12 for b1, b2 in zip(bounds, bounds[1:], strict=False))  # LP is monotone
    prices = [s.budget_shadow_price for s in points]
    assert all(p2 <= p1 + 1e-12 for p1, p2 in zip(prices, prices[1:], strict=False))  # and concave
    for b, s in zip(budgets, points, strict=False):
        q = dataclasses.replace(p, budget=b)
        assert q.violations(s.assignment) == []
        single = solvers.solve(q, backend="fast")
        assert s.bound == pytest.approx(single.bound, rel=1e-12)
        # both are within their stated gap of the same bound
        assert abs(s.objective - single.objective) <= max(s.gap, single.gap) * abs(s.bound) + 1e-9
    assert objs[-1] == pytest.approx(bounds[-1])  # all-best plan at the top budget


def test_frontier_falls_back_per_point_with_capacities() -> None:
    p = batch(60, 4, 2, load=np.ones((60, 4)), capacity=np.full(4, 20.0))
    assert not is_parametric(p)
    budgets = [float(p.cost.max(axis=1).sum()) * f for f in (0.5, 0.8)]
    front = budget_frontier(p, budgets, backend="fast")
    assert [s.stats["budget"] for s in front] == budgets
    for b, s in zip(budgets, front, strict=True):
        if s.status.has_plan:
            assert dataclasses.replace(p, budget=b).violations(s.assignment) == []


def test_auto_records_its_choice_small_and_large() -> None:
    small = batch(50, 4, 3, budget=0.05)
    sol = solvers.solve(small, backend="auto", time_limit_s=20)
    rec = sol.stats["auto"]
    assert sol.backend == f"auto->{rec['chose']}"
    assert rec["reason"]
    large = batch(3000, 20, 4)
    large = dataclasses.replace(large, budget=float(large.cost.min(axis=1).sum() * 3))
    sol = solvers.solve(large, backend="auto", options=Options(rel_gap=1e-12))
    assert sol.stats["auto"]["chose"] == "fast"
    assert "pairs" in sol.stats["auto"]["reason"] or "proved" in sol.stats["auto"]["reason"]


def test_auto_sends_the_makespan_goal_to_an_exact_backend() -> None:
    if not solvers.available(exact_only=True):
        pytest.skip("no exact backend installed")
    p = Problem(latency=np.array([[1.0, 2.0], [2.0, 1.0]]), goal="minimize_latency")
    sol = solvers.solve(p, backend="auto", time_limit_s=20)
    assert sol.stats["auto"]["chose"] != "fast"
    assert "makespan" in sol.stats["auto"]["reason"]
