"""fast never beats the exact optimum, and its bound is never beaten (brute force, up to 8 x 4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solvers
from solvers import Goal, Problem, Status


def brute_force(p: Problem) -> float | None:
    """The exact optimum over every assignment (no queuing), or None when none is feasible."""
    n, k = p.n_tasks, p.n_models
    grids = np.indices((k,) * n).reshape(n, -1).T  # (k**n, n)
    rows = np.arange(n)
    ok = p.feasible_mask[rows, grids].all(axis=1)
    if p.budget is not None:
        ok &= p.cost[rows, grids].sum(axis=1) <= p.budget * (1 + 1e-12)
    if p.min_avg_quality is not None:
        ok &= (p.quality[rows, grids] - p.min_avg_quality).sum(axis=1) >= -1e-12
    for row in p.capacity_rows():
        loads = row.load[rows, grids]
        for j in range(k):
            ok &= np.where(grids == j, loads, 0).sum(axis=1) <= row.limit[j] * (1 + 1e-12)
    if p.share_limits is not None:
        for j in range(k):
            ok &= (grids == j).sum(axis=1) <= p.share_limits[j]
    if not ok.any():
        return None
    vals = p.objective_matrix[rows, grids[ok]].sum(axis=1)
    return float(vals.max() if Goal(p.goal).maximize else vals.min())


@st.composite
def problems(draw):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    if n > 6 and k == 4:  # 4**8 = 65,536 assignments stay cheap, but keep examples quick
        n = draw(st.integers(6, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    goal = draw(st.sampled_from([Goal.MAXIMIZE_QUALITY, Goal.MINIMIZE_COST, Goal.BALANCED]))
    cost = np.round(rng.uniform(0.1, 3.0, (n, k)), 2)
    quality = np.round(rng.uniform(0.2, 1.0, (n, k)), 2)
    latency = rng.uniform(0.5, 5.0, (n, k))
    feasible = rng.random((n, k)) < 0.85
    feasible[np.arange(n), rng.integers(0, k, n)] = True
    kw: dict = dict(cost=cost, quality=quality, latency=latency, feasible=feasible, goal=goal,
                    priority=rng.integers(1, 4, n).astype(float))
    lo = np.where(feasible, cost, np.inf).min(axis=1).sum()
    hi = np.where(feasible, cost, -np.inf).max(axis=1).sum()
    if draw(st.booleans()):
        kw["budget"] = float(lo + draw(st.floats(0.0, 1.0)) * (hi - lo))
    if draw(st.booleans()):
        kw["min_avg_quality"] = float(draw(st.floats(0.2, 0.9)))
    if draw(st.booleans()):
        load = np.round(rng.uniform(0.5, 3.0, (n, k)), 1)
        kw["load"] = load
        kw["capacity"] = np.round(load.sum(axis=0) * draw(st.floats(0.2, 1.0)), 1) + 0.5
    if draw(st.booleans()):
        kw["share_cap"] = np.full(k, draw(st.floats(0.3, 1.0)))
    return Problem(**kw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_fast_against_brute_force(p: Problem) -> None:
    opt = brute_force(p)
    sol = solvers.solve(p, backend="fast")
    maximize = Goal(p.goal).maximize
    tol = 1e-7 * max(1.0, abs(opt or 0.0))
    if sol.status.has_plan:
        assert p.violations(sol.assignment) == []
        assert opt is not None
        if maximize:
            assert sol.objective <= opt + tol
        else:
            assert sol.objective >= opt - tol
        if sol.status is Status.OPTIMAL:
            assert sol.objective == pytest.approx(opt, rel=1e-6, abs=1e-9)
    elif sol.status is Status.INFEASIBLE:
        assert opt is None
    if opt is not None and sol.bound is not None:
        if maximize:
            assert sol.bound >= opt - tol, "the bound lies"
        else:
            assert sol.bound <= opt + tol, "the bound lies"
    assert sol.gap is None or sol.gap >= 0


def test_refuses_the_makespan_goal() -> None:
    p = Problem(latency=np.ones((2, 2)), goal="minimize_latency")
    with pytest.raises(solvers.UnsupportedError, match="highs"):
        solvers.solve(p, backend="fast")


def test_does_not_mutate_the_problem() -> None:
    rng = np.random.default_rng(3)
    cost = rng.random((30, 4))
    p = Problem(cost=cost, quality=rng.random((30, 4)), budget=float(cost.mean(axis=1).sum()),
                load=np.ones((30, 4)), capacity=np.full(4, 9.0), goal="maximize_quality")
    before = p.cost.copy()
    solvers.solve(p, backend="fast")
    assert np.array_equal(before, p.cost)


def test_infeasible_budget_has_diagnosis() -> None:
    p = Problem(cost=np.array([[2.0, 3.0], [1.0, 4.0]]), quality=np.ones((2, 2)) * 0.5,
                budget=2.0, goal="maximize_quality")
    sol = solvers.solve(p, backend="fast")
    assert sol.status is Status.INFEASIBLE
    assert sol.diagnosis is not None and sol.diagnosis.min_budget == pytest.approx(3.0)


def test_shadow_price_is_the_lp_multiplier() -> None:
    # one task, two models: the LP mixes them, so d quality / d budget = (0.9 - 0.5) / (3 - 1)
    p = Problem(cost=np.array([[1.0, 3.0], [1.0, 1.0]]), quality=np.array([[0.5, 0.9], [0.5, 0.5]]),
                budget=3.0, goal="maximize_quality")
    sol = solvers.solve(p, backend="fast")
    assert sol.budget_shadow_price == pytest.approx(0.2)
    assert sol.bound == pytest.approx(0.5 + 0.5 + 0.5 * 0.4)


def test_forced_queue_serves_every_servable_task() -> None:
    feasible = np.array([[True, False], [False, False], [True, True]])
    p = Problem(cost=np.array([[1.0, 2.0], [1.0, 1.0], [2.0, 1.0]]), feasible=feasible,
                allow_queue=True, goal="minimize_cost")
    sol = solvers.solve(p, backend="fast")
    assert sol.assignment.tolist() == [0, -1, 1]
    assert sol.status is Status.OPTIMAL
