"""Every exact backend honours its time limit on large grouped problems (issue 13).

On 3,000 tasks x 27 models in 20 prefix groups with a 2 s limit, solved in-process, HiGHS took
4 s, CP-SAT 5 s and CBC 69 s (native phases that do not look at the clock). A stage of a
problem that large now runs in a child process killed at the limit plus GRACE_S
(``solvers.backends._hard_stop``); with ``ROUTEPLAN_SOLVER_CHILD=1`` (in-process) these tests
fail for CP-SAT and CBC."""

from __future__ import annotations

import time

import numpy as np
import pytest

import solvers
from solvers import GroupCharges, Status
from solvers.backends import _hard_stop

from .conftest import EXACT

LIMIT_S = 2.0


def grouped_instance(n: int, k: int = 27, groups: int = 20, seed: int = 0) -> solvers.Problem:
    """Tasks sharing prompt prefixes in ``groups`` groups, as the planner prices them: most models
    read a cached prefix cheaply after one write per (group, model); an average-quality floor
    makes the plan a mix of models."""
    rng = np.random.default_rng(seed)
    g = np.arange(n) % groups
    prefix = rng.integers(1500, 6001, groups)
    own, out = rng.integers(50, 600, n), rng.integers(20, 400, n)
    pin = rng.uniform(5e-8, 3e-6, k)
    pout, read = pin * rng.uniform(2, 5, k), pin * rng.uniform(0.1, 0.5, k)
    caches = rng.random(k) < 0.7
    cost = (np.where(caches, own[:, None] * pin + prefix[g][:, None] * read, (own + prefix[g])[:, None] * pin)
            + out[:, None] * pout)
    by_type = rng.uniform(0.4, 0.95, (8, k))
    quality = np.clip(by_type[rng.integers(0, 8, groups)][g] + rng.normal(0, 0.03, (n, k)), 0, 1)
    setup = np.where(caches, prefix[:, None] * (pin - read)[None, :], 0.0)
    return solvers.Problem(cost=cost, quality=quality, min_avg_quality=0.7, goal="minimize_cost",
                           group_charges=GroupCharges(g, setup))


@pytest.mark.parametrize("backend", EXACT)
def test_exact_backend_stops_at_its_time_limit_on_a_large_grouped_problem(backend: str) -> None:
    problem = grouped_instance(3000)
    assert int(problem.feasible_mask.sum()) >= _hard_stop.MIN_PAIRS
    solvers.solve(grouped_instance(5, k=3, groups=2), backend=backend)  # the backend's imports, not timed
    t0 = time.perf_counter()
    sol = solvers.solve(problem, backend=backend, time_limit_s=LIMIT_S, rel_gap=1e-4)
    wall = time.perf_counter() - t0
    assert wall <= LIMIT_S + _hard_stop.GRACE_S + 1.5, (wall, sol.status, sol.message)
    assert sol.status is not Status.ERROR, sol.message
    if sol.status.has_plan:
        assert problem.is_feasible(sol.assignment)
    assert all(stage.get("child_process") for stage in sol.stats["stages"] if not stage.get("skipped"))


@pytest.mark.parametrize("backend", EXACT)
def test_a_stage_in_a_child_process_answers_as_in_process(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = grouped_instance(30, k=4, groups=3, seed=2)
    here = solvers.solve(problem, backend=backend, time_limit_s=60)
    monkeypatch.setattr(_hard_stop, "MIN_PAIRS", 1)
    there = solvers.solve(problem, backend=backend, time_limit_s=60)
    assert there.stats["stages"][-1]["child_process"] is True
    assert "child_process" not in here.stats["stages"][-1]
    assert there.status is here.status is Status.OPTIMAL
    assert there.objective == pytest.approx(here.objective, rel=1e-6)


def test_no_child_without_a_time_limit_or_below_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    big, small = grouped_instance(1000), grouped_instance(30, k=4, groups=3)
    assert _hard_stop.needs_child(big, 5.0)
    assert not _hard_stop.needs_child(big, None)
    assert not _hard_stop.needs_child(small, 5.0)
    monkeypatch.setenv("ROUTEPLAN_SOLVER_CHILD", "1")  # inside the child: never another one
    assert not _hard_stop.needs_child(big, 5.0)


def test_a_child_s_error_is_raised_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    if "highs" not in EXACT:
        pytest.skip("highs not installed")
    monkeypatch.setattr(_hard_stop, "MIN_PAIRS", 1)
    problem = grouped_instance(30, k=4, groups=3)
    with pytest.raises(solvers.ProblemError, match="hint"):  # the hint is checked in the child's stage too
        _hard_stop.solve_stage(_BrokenSolver(), problem, solvers.Options(time_limit_s=10),
                               _spec(), 10.0, None)


class _BrokenSolver:
    """A spec solver whose module's ``spec_solver`` raises (this test module's)."""

    name = "broken"

    def solve_spec(self, spec, time_limit_s, hint):  # type: ignore[no-untyped-def]
        raise AssertionError("solved in-process; expected the child")


def spec_solver(problem: solvers.Problem, options: solvers.Options) -> _BrokenSolver:
    raise solvers.ProblemError("hint: refused by the test's spec solver")


def _spec():  # type: ignore[no-untyped-def]
    from solvers.backends._spec import ModelSpec

    return ModelSpec()


@pytest.mark.parametrize("backend", EXACT)
def test_an_infeasible_problem_s_diagnosis_runs_in_the_child_too(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    problem = grouped_instance(30, k=4, groups=3, seed=2)
    broke = dataclasses.replace(problem, budget=float(problem.cost.min(axis=1).sum()) / 2)  # type: ignore[union-attr]
    here = solvers.solve(broke, backend=backend, time_limit_s=60)
    monkeypatch.setattr(_hard_stop, "MIN_PAIRS", 1)
    children: list[object] = []
    popen = _hard_stop.subprocess.Popen

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        if "child_main" in str(args[0]):  # ours, not CBC's own process
            children.append(args)
        return popen(*args, **kwargs)

    monkeypatch.setattr(_hard_stop.subprocess, "Popen", counted)
    there = solvers.solve(broke, backend=backend, time_limit_s=60)
    assert len(children) >= 2  # the goal stage, then the diagnosis's least-budget model
    assert here.status is there.status is Status.INFEASIBLE
    assert here.diagnosis is not None and there.diagnosis is not None
    assert there.diagnosis.min_budget == pytest.approx(here.diagnosis.min_budget, rel=1e-6)
    assert there.diagnosis.min_budget > broke.budget  # type: ignore[operator]
