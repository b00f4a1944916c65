"""User text (task ids, model names, paths) is printed as text, never as rich markup."""

from __future__ import annotations

import json

from tests.conftest import DEMO


def test_task_ids_that_look_like_markup(run_cli, tmp_path):
    ids = ["[/red]", "x:smile:y", "[bold]b"]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"id": i, "type": "chat", "prompt": "hi"} for i in ids]))
    code, out, err = run_cli("solve", path, "--solver", "highs", "-o", tmp_path / "[p].json")
    assert code == 0, err
    for i in ids:
        assert i in out
    assert "[p].json" in out


def test_negative_rows_is_input_error(run_cli):
    code, _, err = run_cli("solve", DEMO, "--rows", "-1", "-o", "-")
    assert code == 2 and "--rows" in err


def test_weights_without_balanced_goal_is_input_error(run_cli):
    code, _, err = run_cli("solve", DEMO, "--weights", "cost=1", "-o", "-")
    assert code == 2 and "--weights" in err and "balanced" in err
    code, _, err = run_cli("solve", DEMO, "--goal", "balanced", "--weights", "cost=1", "-o", "-")
    assert code == 0, err
