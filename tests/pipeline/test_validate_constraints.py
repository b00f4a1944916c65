"""`pipeline validate` applies each parameter's own limits (at least one task, budgets > 0),
exactly as `pipeline run` would, and refuses a pipeline with no steps.
"""

import pytest

HEADER = "id: qa\nbudget: 1\n"
BATCH = ("steps:\n  - id: b\n    tool: multi-model-routing\n    action: optimize_batch\n"
         "    parameters: {task_type: translate, optimization_goal: minimize_cost, %s}\n")


@pytest.mark.parametrize("params, expected", [
    ("tasks: []", "parameters.tasks: List should have at least 1 item"),
    ("tasks: [hi], constraints: {max_budget_per_task: 0}", "max_budget_per_task: Input should be greater than 0"),
    ("tasks: [hi], constraints: {min_quality: 2}", "min_quality: Input should be less than or equal to 1"),
])
def test_validate_applies_parameter_constraints(run_cli, tmp_path, params, expected):
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + BATCH % params)
    code, out, err = run_cli("pipeline", "validate", path)
    assert code == 2, out
    assert "step b: " in err and expected in err
    assert "Traceback" not in err


def test_a_valid_batch_step_still_validates(run_cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + BATCH % "tasks: [hi], constraints: {max_budget_per_task: 0.05}")
    code, out, err = run_cli("pipeline", "validate", path)
    assert code == 0, err
    assert "ok: 1 steps" in out


@pytest.mark.parametrize("command", ["validate", "run"])
def test_empty_steps_is_an_input_error(run_cli, tmp_path, command):
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + "steps: []\n")
    args = ["-o", tmp_path / "out"] if command == "run" else []
    code, _, err = run_cli("pipeline", command, path, *args)
    assert code == 2
    assert "steps: List should have at least 1 item" in err
    assert not (tmp_path / "out").exists()
