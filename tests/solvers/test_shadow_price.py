"""The budget's shadow price equals the finite difference of an independently built LP relaxation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import solvers

from .conftest import EXACT

LP_BACKENDS = [b for b in EXACT if b in ("highs", "cbc")]


def lp_value(problem: solvers.Problem, budget: float) -> float:
    """max/min of the goal's linear objective over the LP relaxation, with scipy (sense-corrected)."""
    n, k = problem.n_tasks, problem.n_models
    c = np.asarray(problem.objective_matrix).ravel()
    sign = -1.0 if problem.goal.maximize else 1.0
    a_eq = np.kron(np.eye(n), np.ones(k))
    res = linprog(sign * c, A_ub=np.asarray(problem.cost).ravel()[None, :], b_ub=[budget], A_eq=a_eq,
                  b_eq=np.ones(n), bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(sign * res.fun)


@pytest.mark.parametrize("backend", LP_BACKENDS)
@pytest.mark.parametrize("goal", ["maximize_quality", "balanced"])
def test_budget_shadow_price_is_d_objective_d_budget(backend: str, goal: str) -> None:
    rng = np.random.default_rng(11)
    cost = rng.uniform(1, 10, (15, 4))
    quality = rng.uniform(0, 1, (15, 4))
    latency = rng.uniform(1, 5, (15, 4))
    budget = float(np.sort(cost, axis=1)[:, :2].mean(axis=1).sum())  # binding: between cheapest and dearest
    problem = solvers.Problem(cost=cost, quality=quality, latency=latency, budget=budget, goal=goal)
    sol = solvers.solve(problem, backend=backend)
    step = 1e-4
    expected = (lp_value(problem, budget + step) - lp_value(problem, budget - step)) / (2 * step)
    assert abs(expected) > 1e-3  # the budget binds, so the test can tell a sign error
    assert sol.budget_shadow_price == pytest.approx(expected, rel=1e-4)


def test_no_budget_no_shadow_price() -> None:
    backend = EXACT[0]
    sol = solvers.solve(solvers.Problem(cost=[[1.0, 2.0]]), backend=backend)
    assert sol.budget_shadow_price is None
