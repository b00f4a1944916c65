"""Property tests: exact backends equal brute force on tiny problems, agree on larger ones,
and no backend touches its input.

Data lie on grids (cents, twentieths of quality, whole seconds and load units, integer
priorities) so every backend's arithmetic, CP-SAT's integer scaling included, is exact
on the limits; only the balanced score is a general float (CP-SAT rounds it to 1e-6).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solvers
from solvers import Goal, Status, UnsupportedError

from .brute import solve_brute
from .conftest import BACKENDS, EXACT

GOALS = [g.value for g in Goal]


def random_problem(seed: int, n: int, k: int, goal: str, families: frozenset[str]) -> solvers.Problem:
    """A random problem on the grids above with the chosen constraint families switched on."""
    rng = np.random.default_rng(seed)
    queue = "queue" in families
    feasible = rng.random((n, k)) < 0.8
    if not queue:
        feasible[np.arange(n), rng.integers(0, k, n)] = True
    cost = rng.integers(1, 100, (n, k)) / 100
    kw: dict[str, Any] = {
        "cost": cost,
        "quality": rng.integers(0, 21, (n, k)) / 20,
        "latency": rng.integers(1, 20, (n, k)).astype(float),
        "feasible": feasible,
        "goal": goal,
        "allow_queue": queue,
    }
    if "budget" in families:
        cheapest = np.where(feasible, cost, np.inf).min(axis=1)
        least = float(cheapest[np.isfinite(cheapest)].sum())
        kw["budget"] = round(least * rng.uniform(0.8, 1.6), 2)
    if "quality" in families:
        kw["min_avg_quality"] = rng.integers(8, 17) / 20
    if "capacity" in families:
        kw["load"] = rng.integers(1, 10, (n, k)).astype(float)
        kw["capacity"] = rng.integers(4, 25, k).astype(float)
    if "share" in families:
        kw["share_cap"] = rng.integers(2, 11, k) / 10
    if queue:
        kw["priority"] = rng.integers(1, 4, n).astype(float)
    if goal == "minimize_latency" and rng.random() < 0.7:
        kw["concurrency"] = rng.integers(1, 3, k).astype(float)
    return solvers.Problem(**kw)


problems = st.builds(
    random_problem,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    k=st.integers(1, 4),
    goal=st.sampled_from(GOALS),
    families=st.frozensets(st.sampled_from(["budget", "quality", "capacity", "share", "queue"])),
)


def _tol(problem: solvers.Problem, backend: str) -> float:
    # CP-SAT rounds the balanced score to 1e-6 per task: allow n_tasks of it, twice
    return 2e-6 * problem.n_tasks if backend == "cpsat" and problem.goal is Goal.BALANCED else 1e-6


@pytest.mark.parametrize("backend", EXACT)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems)
def test_exact_backend_equals_brute_force(backend: str, problem: solvers.Problem) -> None:
    ref = solve_brute(problem)
    sol = solvers.solve(problem, backend=backend, time_limit_s=60)
    if ref.optimum is None:
        assert sol.status is Status.INFEASIBLE, sol
        d = sol.diagnosis
        assert d is not None
        for got, want in ((d.min_budget, ref.min_budget), (d.min_capacity_scale, ref.min_capacity_scale),
                          (d.min_share_scale, ref.min_share_scale)):
            assert (got is None) == (want is None), (d, ref)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-5, abs=1e-6), (d, ref)
        return
    assert sol.status is Status.OPTIMAL, sol
    assert problem.is_feasible(sol.assignment), problem.violations(sol.assignment)
    assert sol.served_weight == pytest.approx(ref.served_weight)
    assert abs(sol.objective - ref.optimum) <= _tol(problem, backend) * max(1.0, abs(ref.optimum)), (sol, ref)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), goal=st.sampled_from(GOALS),
       families=st.frozensets(st.sampled_from(["budget", "quality", "capacity", "share", "queue"])))
def test_exact_backends_agree_on_larger_problems(seed: int, goal: str, families: frozenset[str]) -> None:
    if len(EXACT) < 2:
        pytest.skip("needs two exact backends")
    problem = random_problem(seed, 40, 6, goal, families)
    sols = {b: solvers.solve(problem, backend=b, time_limit_s=60) for b in EXACT}
    proven = {b: s for b, s in sols.items() if s.status is Status.OPTIMAL}
    statuses = {s.status for s in sols.values()}
    assert not (Status.INFEASIBLE in statuses and proven), sols  # infeasible for one, solved by another
    values = [s.objective for s in proven.values()]
    for b, s in proven.items():
        assert problem.is_feasible(s.assignment)
        tol = _tol(problem, b) * max(1.0, abs(values[0])) * 10
        assert max(values) - min(values) <= tol, {b: s.objective for b, s in proven.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems)
def test_no_backend_mutates_its_input(backend: str, problem: solvers.Problem) -> None:
    names = ["cost", "quality", "latency", "load", "capacity", "feasible", "share_cap", "priority", "concurrency"]
    before = {n: None if getattr(problem, n) is None else getattr(problem, n).copy() for n in names}
    scalars = (problem.budget, problem.min_avg_quality, problem.allow_queue, problem.goal, problem.weights)
    hint = np.where(problem.feasible_mask.any(axis=1), problem.feasible_mask.argmax(axis=1), -1)
    hint_before = hint.copy()
    options = solvers.Options(time_limit_s=30, hint=hint if solvers.BACKENDS[backend].supports(
        solvers.Feature.HINT) else None)
    try:
        solvers.solve(problem, backend=backend, options=options)
    except UnsupportedError:
        assert not solvers.BACKENDS[backend].exact
    for n, arr in before.items():
        now = getattr(problem, n)
        assert (arr is None and now is None) or np.array_equal(arr, now), n
        assert now is None or not now.flags.writeable, n
    assert scalars == (problem.budget, problem.min_avg_quality, problem.allow_queue, problem.goal, problem.weights)
    assert np.array_equal(hint, hint_before)
