"""Every backend applies the same option contract (docs: the solver library): an unknown
``native`` option, a hint of the wrong length or naming no model, and a fractional hint are
errors; integral hints are accepted.
"""

import numpy as np
import pytest

import solvers
from solvers.errors import ProblemError

COST = np.arange(12, dtype=float).reshape(4, 3) + 1.0


@pytest.mark.parametrize("backend", ["fast", "auto"])
def test_unknown_native_option_is_an_error(backend: str) -> None:
    with pytest.raises(ProblemError, match="native.random_sed"):
        solvers.solve(solvers.Problem(cost=COST), backend=backend, native={"random_sed": 1})


@pytest.mark.parametrize("backend", solvers.available())
def test_hint_of_wrong_length_is_an_error(backend: str) -> None:
    with pytest.raises(ProblemError, match=r"hint: expected shape \(4,\)"):
        solvers.solve(solvers.Problem(cost=COST), backend=backend, hint=[0, 1])


@pytest.mark.parametrize("backend", solvers.available())
def test_hint_naming_no_model_is_an_error(backend: str) -> None:
    with pytest.raises(ProblemError, match="names model 7"):
        solvers.solve(solvers.Problem(cost=COST), backend=backend, hint=[7, 0, 0, 0])


def test_fractional_hint_is_an_error() -> None:
    with pytest.raises(ProblemError, match="integer model indices"):
        solvers.Options(hint=[0.5, 0, 0, 0])


def test_integral_hints_still_accepted() -> None:
    assert solvers.Options(hint=[1.0, -1.0]).hint.tolist() == [1, -1]
    sol = solvers.solve(solvers.Problem(cost=COST), backend="auto", hint=np.zeros(4, dtype=np.int32))
    assert sol.assignment.tolist() == [0, 0, 0, 0]
