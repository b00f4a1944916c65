"""solvers on small degenerate problems: NaN at excluded pairs, tiny dollar scales, one task/model."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from solvers.problem import Problem

NAN = np.nan


def _nan_excluded_problem() -> Problem:
    """Found by fuzzing: fast's Lagrangian put tasks on excluded pairs whose cost was NaN."""
    feasible = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=bool)
    cost = np.where(feasible, 0.5, NAN)
    quality = np.array([[0.84, 0.30, 0.77], [0.12, 0.47, 0.60], [0.35, 0.22, 0.54]])
    latency = np.array([[3.0, 8.0, 1.0], [6.0, 2.0, 9.0], [4.0, 5.0, 2.0]])
    return Problem(cost=cost, quality=quality, latency=latency, feasible=feasible, allow_queue=True,
                   goal="maximize_quality", budget=1.1, load=latency, capacity=np.array([3.5, 1.0, 2.5]))


@pytest.mark.parametrize("backend", ["highs", "cpsat", "cbc", "fast", "auto"])
def test_nan_at_excluded_pairs_never_reaches_a_plan(backend):
    p = _nan_excluded_problem()
    assert np.isfinite(p.cost).all()
    try:
        sol = solvers.solve(p, backend=backend, time_limit_s=10)
    except solvers.UnsupportedError:
        assert backend == "fast"  # fast may decline to prove which task to queue
        return
    assert sol.status.has_plan
    assert p.violations(np.asarray(sol.assignment)) == []


@pytest.mark.parametrize("backend", ["highs", "cpsat", "cbc", "fast", "auto"])
def test_one_task_one_model(backend):
    p = Problem(cost=[[0.0]], quality=[[1.0]], latency=[[0.0]], goal="minimize_cost", budget=0.0)
    sol = solvers.solve(p, backend=backend, time_limit_s=10)
    assert sol.status.value == "optimal" and list(sol.assignment) == [0]


def test_priority_zero_is_a_problem_error():
    with pytest.raises(solvers.ProblemError, match="priority"):
        Problem(cost=[[1.0, 2.0]], priority=[0.0])
