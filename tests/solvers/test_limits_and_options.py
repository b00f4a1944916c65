"""Time limits, native options, hints and threads, on every backend that takes them."""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest

import solvers
from solvers import ProblemError, Status

from .conftest import EXACT

NATIVE_OK = {"highs": {"presolve": "off"}, "cpsat": {"random_seed": 3}, "cbc": {"presolve": True}}


def hard_gap(seed: int = 7, n: int = 200, m: int = 20) -> solvers.Problem:
    """A type-D-like generalised assignment instance (cost falls as load rises, tight capacity)
    that no backend closes in half a second."""
    rng = np.random.default_rng(seed)
    load = rng.integers(1, 101, (n, m)).astype(float)
    cost = 111 - load + rng.integers(-10, 11, (n, m))
    return solvers.Problem(cost=cost, load=load, capacity=np.floor(0.8 * load.sum(axis=0) / m))


def test_time_limit_is_reported_as_such(exact_backend: str) -> None:
    problem = hard_gap()
    start = time.perf_counter()
    sol = solvers.solve(problem, backend=exact_backend, time_limit_s=0.5, threads=1)
    elapsed = time.perf_counter() - start
    assert sol.status in (Status.TIME_LIMIT_FEASIBLE, Status.TIME_LIMIT_NO_PLAN), sol
    assert elapsed < 0.5 + 5.0  # model building and process start-up on top of the limit
    if sol.status.has_plan:
        assert problem.is_feasible(sol.assignment)
        assert sol.bound is not None and sol.bound <= sol.objective
        assert sol.gap is not None and sol.gap > 0
    else:
        assert (sol.assignment == -1).all() and sol.objective is None


def test_time_limit_statuses_are_distinct_in_every_table() -> None:
    for name in EXACT:
        module = importlib.import_module(solvers.BACKENDS[name].module)
        outcomes = {s for pair in module.STATUS_TABLE.values() for s in pair}
        assert {Status.TIME_LIMIT_FEASIBLE, Status.TIME_LIMIT_NO_PLAN, Status.INFEASIBLE} <= outcomes, name
    if "cpsat" in EXACT:
        table = importlib.import_module("solvers.backends.cpsat").STATUS_TABLE
        assert all(v[0] is not Status.OPTIMAL for k, v in table.items() if k[0] == "FEASIBLE")


def test_unknown_native_option_raises(exact_backend: str) -> None:
    with pytest.raises(ProblemError, match="native.no_such_option"):
        solvers.solve(solvers.Problem(cost=[[1.0, 2.0]]), backend=exact_backend, native={"no_such_option": 1})


def test_known_native_option_is_passed_through(exact_backend: str) -> None:
    sol = solvers.solve(solvers.Problem(cost=[[1.0, 2.0], [3.0, 1.0]]), backend=exact_backend,
                        native=NATIVE_OK[exact_backend], threads=1)
    assert sol.status is Status.OPTIMAL and sol.objective == pytest.approx(2.0)


def test_hint_is_accepted_and_does_not_change_the_optimum(exact_backend: str) -> None:
    rng = np.random.default_rng(3)
    cost = rng.integers(1, 30, (25, 5)).astype(float)
    load = rng.integers(1, 10, (25, 5)).astype(float)
    problem = solvers.Problem(cost=cost, load=load, capacity=np.full(5, 14.0))
    plain = solvers.solve(problem, backend=exact_backend, time_limit_s=30)
    bad_hint = np.zeros(25, dtype=np.int64)  # everything on model 0: breaks capacity
    for hint in (plain.assignment, bad_hint):
        hinted = solvers.solve(problem, backend=exact_backend, time_limit_s=30, hint=hint)
        assert hinted.status is Status.OPTIMAL
        assert hinted.objective == pytest.approx(plain.objective)


def test_cpsat_reports_its_scales_and_rounding() -> None:
    if "cpsat" not in EXACT:
        pytest.skip("ortools not installed")
    from solvers.backends import cpsat

    problem = solvers.Problem(cost=np.array([[0.1234567891234, 2.0]]), quality=np.array([[0.5, 0.7]]))
    sol = solvers.solve(problem, backend="cpsat")
    assert sol.stats["scale"]["cost"] == cpsat.COST_SCALE
    assert 0 < sol.stats["rounding"]["cost"] <= 0.5 / cpsat.COST_SCALE
    assert sol.objective == pytest.approx(0.1234567891234)  # reported in true, unscaled arithmetic
    assert sol.bound <= sol.objective


def test_cpsat_refuses_values_beyond_int64() -> None:
    if "cpsat" not in EXACT:
        pytest.skip("ortools not installed")
    with pytest.raises(solvers.UnsupportedError, match="highs"):
        solvers.solve(solvers.Problem(cost=np.array([[1e12, 1.0]])), backend="cpsat")



@pytest.mark.parametrize("backend", [b for b in ("highs", "cpsat", "cbc") if b in solvers.available()])
@pytest.mark.parametrize("seed", [1, 2])
def test_tight_budget_of_micro_dollar_costs_is_met_exactly(backend: str, seed: int) -> None:
    """Per-task costs of 1e-4..0.3 USD, prices spanning 100x, the budget 1% above the
    cheapest plan: solver tolerances must not let the plan overrun the budget (HiGHS's
    absolute 1e-6 row tolerance once did, for seed 1)."""
    rng = np.random.default_rng(seed)
    n, k = 300, 12
    price = np.exp(rng.uniform(np.log(1e-6), np.log(1e-4), size=k))
    tokens = rng.integers(100, 3000, size=(n, 1))
    cost = tokens * price * rng.uniform(0.8, 1.2, size=(n, k))
    quality = np.clip(0.4 + 0.5 * (np.log(price) - np.log(1e-6)) / np.log(100)
                      + rng.normal(0, 0.05, (n, k)), 0, 1)
    budget = float(cost.min(axis=1).sum()) * 1.01
    p = solvers.Problem(cost=cost, quality=quality, budget=budget, goal="maximize_quality")
    sol = solvers.solve(p, backend=backend, time_limit_s=60, rel_gap=1e-4)
    assert sol.status.has_plan, sol.message
    assert p.is_feasible(sol.assignment)
