"""CBC on micro-dollar problems (its tolerances are absolute) and on a too-short time limit."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from solvers.problem import Problem


def _micro_cost_problem(seed: int) -> Problem:
    """Per-task costs ~1e-7 USD, as short translations on cheap models."""
    rng = np.random.default_rng(seed)
    n, k = 8, 3
    cost = rng.uniform(0, 1, (n, k)) * 1e-6
    return Problem(cost=cost, quality=rng.uniform(0, 1, (n, k)), latency=rng.uniform(0, 10, (n, k)),
                   goal="minimize_cost", share_cap=np.full(k, 0.5))


@pytest.mark.parametrize("seed", range(6))
def test_cbc_matches_highs_on_micro_dollar_costs(seed):
    p = _micro_cost_problem(seed)
    ref = solvers.solve(p, backend="highs")
    got = solvers.solve(p, backend="cbc")
    assert got.status.value == "optimal"
    assert got.objective == pytest.approx(ref.objective, rel=1e-6)
    assert p.objective_value(np.asarray(got.assignment)) == pytest.approx(ref.objective, rel=1e-6)


def test_cbc_micro_dollar_budget_is_never_overrun():
    rng = np.random.default_rng(1)
    n, k = 6, 3
    cost = rng.uniform(0, 1, (n, k)) * 1e-6
    quality = rng.uniform(0, 1, (n, k))
    budget = float(cost.min(axis=1).sum() * 1.3)
    p = Problem(cost=cost, quality=quality, goal="maximize_quality", budget=budget)
    sol = solvers.solve(p, backend="cbc")
    a = np.asarray(sol.assignment)
    assert cost[np.arange(n), a].sum() <= budget * (1 + 1e-9)
    assert sol.objective == pytest.approx(solvers.solve(p, backend="highs").objective, rel=1e-6)


def test_cbc_too_short_time_limit_is_never_called_infeasible():
    """Everything is feasible; CBC stopped by the clock must not claim a proof of infeasibility."""
    rng = np.random.default_rng(0)
    p = Problem(cost=rng.uniform(0, 1, (7, 12)) * 1e-4, goal="minimize_cost")
    for _ in range(40):
        assert solvers.solve(p, backend="cbc", time_limit_s=0.001).status.value != "infeasible"
