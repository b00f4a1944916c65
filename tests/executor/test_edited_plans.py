"""A plan edited by hand: each inconsistency is one line naming the file and the entry, exit 2."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO


@pytest.fixture(scope="module")
def plan_data(tmp_path_factory):
    from planner.solve import make_plan

    return json.loads(make_plan(DEMO, solver="highs").model_dump_json())


@pytest.mark.parametrize("edit,expected", [
    (lambda p: p["assignments"][1].update(task_id=p["assignments"][0]["task_id"]),
     "assignments[1]: duplicate task_id 'summarize_doc'"),
    (lambda p: p.update(schema_version="99"), "schema_version: expected '1', got '99'"),
    (lambda p: p["models"][0].update(input_cost_per_token=float("nan")), "models.0.input_cost_per_token"),
    (lambda p: p["assignments"][0].update(max_tokens=0), "assignments.0.max_tokens"),
    (lambda p: p["limits"].update(budget_usd=float("inf")), "limits.budget_usd"),
])
def test_edited_plan_is_rejected_before_any_call(run_cli, tmp_path, plan_data, edit, expected):
    data = json.loads(json.dumps(plan_data))
    edit(data)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))  # json writes NaN/Infinity as Python does
    code, _, err = run_cli("run", path, "-o", tmp_path / "out")
    assert code == 2, err
    assert "Traceback" not in err and expected in err
    assert not (tmp_path / "out" / "ledger.sqlite").exists()
