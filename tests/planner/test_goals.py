"""Goals are defined once (planner.goals): the CLI, the pipeline, the plan's ranking and the
solvers agree on the names, and an unknown goal is an error everywhere, never another goal."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

import solvers
from planner.errors import InputError
from planner.goals import GOAL_NAMES, GOALS, PRIORITY_GOALS, goal_spec
from tests.conftest import DEMO


def test_one_row_per_solver_goal() -> None:
    assert set(GOAL_NAMES) == {g.value for g in solvers.Goal}
    assert set(PRIORITY_GOALS.values()) == set(GOAL_NAMES)
    for spec in GOALS.values():
        assert spec.maximize == solvers.Goal(spec.name).maximize


def test_unknown_goal_is_an_input_error_naming_the_goals() -> None:
    with pytest.raises(InputError, match="expected one of minimize_cost, maximize_quality"):
        goal_spec("fastest")


def test_the_plan_ranking_refuses_an_unknown_goal(demo_formulation) -> None:
    from planner.solve import _rank_matrix

    np.testing.assert_array_equal(_rank_matrix(demo_formulation), demo_formulation.cost_usd)
    with pytest.raises(InputError, match="fastest"):
        _rank_matrix(dataclasses.replace(demo_formulation, goal="fastest"))


@pytest.fixture(scope="module")
def demo_formulation():
    from planner.catalog import load_catalog
    from planner.formulation import formulate
    from planner.tasks import load_tasks

    return formulate(load_tasks(DEMO), load_catalog(), goal="minimize_cost")


@pytest.mark.parametrize("name", GOAL_NAMES)
def test_each_goal_is_solved_by_the_backends_it_lists(name: str) -> None:
    """A backend listed for a goal accepts it; one not listed refuses it up front."""
    rng = np.random.default_rng(3)
    problem = solvers.Problem(cost=rng.uniform(1, 5, (4, 3)), quality=rng.uniform(0.3, 0.9, (4, 3)),
                              latency=rng.uniform(1, 9, (4, 3)), goal=name)
    listed = goal_spec(name).backends()
    for backend in solvers.available():
        if backend in listed:
            assert solvers.solve(problem, backend=backend, time_limit_s=30).status.has_plan, backend
        else:
            with pytest.raises(solvers.UnsupportedError):
                solvers.solve(problem, backend=backend, time_limit_s=30)
    assert "fast" not in goal_spec("minimize_latency").backends()


def test_pipeline_parameters_take_the_registry_names() -> None:
    from planner.pipeline.tools import OptimizeBatchParams, RouteParams

    goal = OptimizeBatchParams.model_fields["optimization_goal"].annotation
    strategy = RouteParams.model_fields["routing_strategy"].annotation
    assert set(typing.get_args(goal)) == set(GOAL_NAMES)
    assert set(typing.get_args(strategy)) == set(GOAL_NAMES) | set(PRIORITY_GOALS)


@pytest.mark.parametrize("command", ["solve", "sweep", "evaluate"])
def test_cli_help_lists_every_goal(run_cli, command: str) -> None:
    code, out, _ = run_cli(command, "--help")
    assert code == 0
    text = " ".join(out.split())
    for name in GOAL_NAMES:
        assert name in text, (command, name)


def test_cli_unknown_goal_is_one_line_exit_2(run_cli) -> None:
    code, _, err = run_cli("solve", DEMO, "--goal", "fastest", "--budget", "1")
    assert code == 2 and "--goal: expected one of" in err and "Traceback" not in err
