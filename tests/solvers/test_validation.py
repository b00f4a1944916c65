"""Bad input is refused once, with a message naming the field (and the task or model)."""

from __future__ import annotations

import numpy as np
import pytest

import solvers
from solvers import ProblemError, UnknownBackend

C = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"cost": np.array([[1.0, 2.0], [np.nan, 1.0]])}, ("cost", "task 1", "model 0")),
        ({"cost": np.array([[1.0, -2.0]])}, ("cost", "task 0", "model 1")),
        ({"cost": C, "quality": np.array([[0.5, 0.5], [0.5, 1.5], [0.1, 0.1]])}, ("quality", "task 1")),
        ({"cost": C, "quality": np.ones((2, 2))}, ("quality", "shape")),
        ({"cost": C, "latency": np.array([[1.0, np.inf]] * 3)}, ("latency", "task 0", "model 1")),
        ({"cost": C, "feasible": np.array([[True, False], [True, True], [False, False]])},
         ("feasible", "task 2", "no feasible model")),
        ({"cost": C, "priority": np.array([1.0, 0.0, 1.0])}, ("priority", "task 1")),
        ({"cost": C, "goal": "fastest"}, ("goal", "minimize_cost")),
        ({"quality": C / 4, "budget": 3.0, "goal": "maximize_quality"}, ("cost", "budget")),
        ({"cost": C, "budget": -1.0}, ("budget",)),
        ({"cost": C, "quality": C / 4, "min_avg_quality": 1.2}, ("min_avg_quality",)),
        ({"cost": C, "load": np.ones((3, 2))}, ("capacity", "load")),
        ({"cost": C, "load": np.ones((3, 2)), "capacity": np.array([1.0, -1.0])}, ("capacity", "model 1")),
        ({"cost": C, "share_cap": np.array([0.5, 1.5])}, ("share_cap",)),
        ({"cost": C, "goal": "maximize_quality"}, ("quality", "maximize_quality")),
        ({"cost": np.ones(3)}, ("cost", "2-d")),
    ],
)
def test_problem_validation_names_field_and_task(kwargs: dict, words: tuple[str, ...]) -> None:
    with pytest.raises(ProblemError) as err:
        solvers.Problem(**kwargs)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_excluded_pairs_may_hold_any_value() -> None:
    cost = np.array([[1.0, np.nan], [2.0, 1.0]])
    p = solvers.Problem(cost=cost, feasible=np.array([[True, False], [True, True]]))
    assert p.n_tasks == 2


def test_queuing_allows_tasks_without_a_model() -> None:
    p = solvers.Problem(cost=C, feasible=np.array([[True, False], [True, True], [False, False]]), allow_queue=True)
    assert p.allow_queue


@pytest.mark.parametrize(("hint", "words"), [(np.array([0, 1]), ("hint", "shape")),
                                             (np.array([0, 5, 1]), ("hint", "task 1"))])
def test_bad_hint_is_refused(exact_backend: str, hint: np.ndarray, words: tuple[str, ...]) -> None:
    with pytest.raises(ProblemError) as err:
        solvers.solve(solvers.Problem(cost=C), backend=exact_backend, hint=hint)
    for word in words:
        assert word in str(err.value)


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend) as err:
        solvers.solve(solvers.Problem(cost=C), backend="gurobi")
    assert "highs" in str(err.value)


@pytest.mark.parametrize("kwargs", [{"time_limit_s": 0}, {"rel_gap": 1.5}, {"threads": 0}])
def test_bad_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(ProblemError):
        solvers.Options(**kwargs)
