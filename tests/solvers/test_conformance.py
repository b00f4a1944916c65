"""Every backend on the hand-solved cases of cases.py: exact ones hit the optimum, others stay
honest, and each does what its registry entry declares (``features``, ``may_refuse``)."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from solvers import Goal, Status, UnsupportedError

from .cases import CASES, Case, problem_kwargs

TOL = 1e-6


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


# Known defects of other backends, kept visible: strict, so a fix turns them into a failure to remove.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, backend: str, request: pytest.FixtureRequest) -> None:
    if (backend, case.name) in KNOWN_BUGS:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_BUGS[backend, case.name], strict=True))
    problem = solvers.Problem(**problem_kwargs(case))
    info = solvers.BACKENDS[backend]
    exact = info.exact
    needs = problem.required_features()
    if not needs <= info.features:  # not declared: refused up front, naming a backend that can
        with pytest.raises(UnsupportedError, match="cannot express"):
            solvers.solve(problem, backend=backend, time_limit_s=30)
        return
    try:
        sol = solvers.solve(problem, backend=backend, time_limit_s=30)
    except UnsupportedError as exc:  # only where the declaration says it may refuse
        if not needs & info.may_refuse:
            raise
        pytest.skip(f"{backend} refuses ({', '.join(sorted(f.value for f in needs & info.may_refuse))}): {exc}")
    assert sol.backend == backend or not exact
    if case.optimum is None:
        assert sol.status is Status.INFEASIBLE, sol
        assert not sol.status.has_plan and (sol.assignment == -1).all()
        assert sol.diagnosis is not None
        for name, expected in case.diagnosis.items():
            got = getattr(sol.diagnosis, name)
            if not exact and not got:
                continue  # a heuristic may leave a figure out, but what it reports must be right
            if expected is None or isinstance(expected, tuple):
                assert got == expected, (name, got)
            else:
                assert got is not None and abs(got - expected) <= 1e-5 * max(1.0, expected), (name, got)
        text = " ".join(sol.diagnosis.notes)
        for word in case.note_words if exact else ():
            assert word in text, (word, text)
        return
    assert sol.status.has_plan, sol
    assert problem.is_feasible(sol.assignment), problem.violations(sol.assignment)
    assert sol.objective == pytest.approx(problem.objective_value(sol.assignment))
    maximize = Goal(problem.goal).maximize
    if exact:
        assert sol.status is Status.OPTIMAL
        assert _close(sol.objective, case.optimum), (sol.objective, case.optimum)
        if case.assignment is not None:
            assert tuple(sol.assignment.tolist()) == case.assignment
        if case.served_weight is not None:
            assert sol.served_weight == pytest.approx(case.served_weight)
        assert sol.gap is not None and sol.gap <= 1e-5
    else:  # a heuristic never beats the optimum, and its bound never passes it
        worse = case.optimum - sol.objective if maximize else sol.objective - case.optimum
        assert worse >= -TOL * max(1.0, abs(case.optimum))
        if sol.bound is not None:
            past = sol.bound - case.optimum if not maximize else case.optimum - sol.bound
            assert past <= TOL * max(1.0, abs(case.optimum))
    if sol.bound is not None and sol.status is Status.OPTIMAL:
        # the bound is on the right side of the reported objective (within rounding)
        side = sol.bound - sol.objective if maximize else sol.objective - sol.bound
        assert side >= -1e-6 * max(1.0, abs(sol.objective))


def test_declarations_are_consistent() -> None:
    """A backend may only refuse what it declares; exact backends refuse nothing they declare;
    auto declares everything (it delegates to a backend that can)."""
    for info in solvers.BACKENDS.values():
        assert info.may_refuse <= info.features, info.name
        assert not (info.exact and info.may_refuse), info.name
    assert solvers.BACKENDS["auto"].features == frozenset(solvers.Feature)


def test_public_entry_point_keywords() -> None:
    """The documented one-liner works with the stable keyword names."""
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.5, 5.0], [3.0, 2.0, 2.0]])
    load = np.array([[1.0, 2.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    capacity = np.array([2.0, 2.0, 2.0])
    backend = "highs" if "highs" in solvers.available() else solvers.available(exact_only=True)[0]
    sol = solvers.solve(solvers.Problem(cost=cost, load=load, capacity=capacity), backend=backend, time_limit_s=30)
    assert sol.status is Status.OPTIMAL
    # model 1 holds one task of load 2: task 0 there (1), task 1 on model 0 (2), task 2 on model 2 (2);
    # task 1 on model 1 instead (0.5) would leave 3 + 2 for the others: 5.5
    assert sol.objective == pytest.approx(5.0)
    assert sol.assignment.tolist() == [1, 0, 2]
