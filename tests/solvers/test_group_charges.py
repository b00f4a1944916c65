"""Group fixed charges (solvers.groups): every exact backend equals brute force on tiny random
problems with groups; fast's plan is feasible, its bound is never beaten, and its gap holds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solvers
from solvers import Goal, GroupCharges, Status, UnsupportedError

from .brute import solve_brute
from .conftest import EXACT
from .test_properties import _tol, random_problem

GOALS = ["minimize_cost", "maximize_quality", "balanced", "minimize_latency"]


def with_groups(problem: solvers.Problem, seed: int, n_groups: int) -> solvers.Problem:
    """The problem with tasks in random groups (some in none) and charges in cents."""
    rng = np.random.default_rng(seed + 1)
    group = rng.integers(-1, n_groups, problem.n_tasks)
    setup = rng.integers(0, 150, (n_groups, problem.n_models)) / 100
    setup[rng.random(setup.shape) < 0.2] = 0.0  # some models charge nothing (no cache)
    kw: dict = {"group_charges": GroupCharges(group, setup)}
    if problem.budget is not None:  # room for some charges, not always all
        kw["budget"] = round(problem.budget + float(rng.uniform(0, 1.0)) * n_groups * 0.5, 2)
    return dataclasses.replace(problem, **kw)


grouped = st.builds(
    lambda seed, n, k, goal, families, g: with_groups(random_problem(seed, n, k, goal, families), seed, g),
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 7),
    k=st.integers(1, 4),
    goal=st.sampled_from(GOALS),
    families=st.frozensets(st.sampled_from(["budget", "quality", "capacity", "share", "queue"])),
    g=st.integers(1, 3),
)


@pytest.mark.parametrize("backend", EXACT)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=grouped)
def test_exact_backend_equals_brute_force_with_groups(backend: str, problem: solvers.Problem) -> None:
    ref = solve_brute(problem)
    sol = solvers.solve(problem, backend=backend, time_limit_s=60)
    if ref.optimum is None:
        assert sol.status is Status.INFEASIBLE, sol
        d = sol.diagnosis
        assert d is not None
        if ref.min_budget is not None and d.min_budget is not None:
            assert d.min_budget == pytest.approx(ref.min_budget, rel=1e-5, abs=1e-6), (d, ref)
        return
    assert sol.status is Status.OPTIMAL, sol
    assert problem.is_feasible(sol.assignment), problem.violations(sol.assignment)
    assert sol.served_weight == pytest.approx(ref.served_weight)
    assert abs(sol.objective - ref.optimum) <= _tol(problem, backend) * max(1.0, abs(ref.optimum)), (sol, ref)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=grouped)
def test_fast_plan_is_feasible_and_within_its_gap(problem: solvers.Problem) -> None:
    ref = solve_brute(problem)
    try:
        sol = solvers.solve(problem, backend="fast", time_limit_s=30)
    except UnsupportedError:
        return  # fast refuses (makespan goal, a queue it cannot prove): it names an exact backend
    if not sol.status.has_plan:
        assert sol.status in (Status.INFEASIBLE, Status.TIME_LIMIT_NO_PLAN), sol
        if sol.status is Status.INFEASIBLE:
            assert ref.optimum is None
        return
    assert ref.optimum is not None
    assert problem.is_feasible(sol.assignment), problem.violations(sol.assignment)
    assert sol.objective == pytest.approx(problem.objective_value(sol.assignment))
    maximize = Goal(problem.goal).maximize
    slack = 1e-7 * max(1.0, abs(ref.optimum))
    assert sol.bound is not None and sol.gap is not None
    if maximize:
        assert sol.objective <= ref.optimum + slack and sol.bound >= ref.optimum - slack, (sol, ref)
    else:
        assert sol.objective >= ref.optimum - slack and sol.bound <= ref.optimum + slack, (sol, ref)
    # the optimum lies within the reported gap of the plan
    assert abs(sol.objective - ref.optimum) <= sol.gap * max(abs(sol.objective), abs(sol.bound)) + slack
    if sol.status is Status.OPTIMAL:
        assert abs(sol.objective - ref.optimum) <= 1e-4 * max(1.0, abs(ref.optimum)) + slack


def test_charges_count_in_budget_and_objective() -> None:
    p = solvers.Problem(cost=np.array([[1.0, 0.4]] * 3),
                        group_charges=GroupCharges(np.array([0, 0, -1]), np.array([[0.0, 1.0]])))
    assert p.charges(np.array([1, 1, 1])) == pytest.approx(1.0)
    assert p.total_cost(np.array([1, 1, 1])) == pytest.approx(2.2)
    assert p.objective_value(np.array([1, 0, 1])) == pytest.approx(2.8)
    assert solvers.Feature.GROUP_CHARGE in p.required_features()
    tight = dataclasses.replace(p, budget=2.0)
    assert not tight.is_feasible(np.array([1, 1, 1]))


@pytest.mark.parametrize("bad, words", [
    ({"group": np.array([0, 2]), "setup": np.zeros((2, 2))}, "names group 2"),
    ({"group": np.array([0, 0]), "setup": np.array([[0.0, -1.0]])}, ">= 0"),
    ({"group": np.array([0]), "setup": np.zeros((1, 2))}, "shape"),
])
def test_bad_group_charges_are_one_clear_error(bad: dict, words: str) -> None:
    with pytest.raises(solvers.ProblemError, match=words):
        solvers.Problem(cost=np.ones((2, 2)), group_charges=GroupCharges(**bad))
