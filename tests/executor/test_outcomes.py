"""A graded run read back as outcome history (what ``routeplan calibrate`` reads)."""

from __future__ import annotations

import json

import pytest

from planner.checks import OUTCOME_COLUMNS, run_outcomes
from planner.errors import InputError
from planner.executor import RunOptions, run_plan

from .plans import MODELS, make_plan


def test_run_outcomes_has_one_row_per_graded_task(tmp_path):
    plan = make_plan(30, check=lambda i: {"kind": "number", "answer": i} if i % 2 == 0 else None)
    out = tmp_path / "run"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False, seed=2))
    df = run_outcomes(out)
    assert list(df.columns) == OUTCOME_COLUMNS == [
        "task_id", "category", "model", "score", "cost_usd", "input_tokens", "output_tokens", "latency_s",
        "prompt", "response", "source"]
    assert list(df["task_id"]) == [f"t{i:05d}" for i in range(0, 30, 2)]
    assert set(df["category"]) == {"summarize"}
    assert set(df["model"]) == {m.litellm_model for m in MODELS}  # litellm ids, not offering names
    assert df["score"].isin([0.0, 1.0]).all()
    assert df["source"].eq(f"run {out}").all()
    assert df["prompt"].str.startswith("Summarise document").all()
    tasks = {t["task_id"]: t for t in json.loads((out / "report.json").read_text())["tasks"]}
    for row in df.itertuples():
        t = tasks[row.task_id]
        assert row.cost_usd == pytest.approx(t["actual_cost_usd"])
        assert row.output_tokens == t["actual_output_tokens"] and row.score == t["score"]
    assert (df["response"].str.contains("answer is")).all()


def test_run_outcomes_of_a_run_without_checks_is_empty_and_of_no_run_is_an_error(tmp_path):
    out = tmp_path / "run"
    run_plan(make_plan(3), out, RunOptions(mode="simulate", progress=False), report=False)
    df = run_outcomes(out)
    assert df.empty and list(df.columns) == OUTCOME_COLUMNS
    with pytest.raises(InputError, match="no run ledger"):
        run_outcomes(tmp_path / "nothing")


def test_a_graded_run_folder_is_outcome_history(tmp_path):
    from planner.history import read_history

    plan = make_plan(9, check=lambda i: {"kind": "choice", "answer": "A"})
    out = tmp_path / "run"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False), report=False)
    h = read_history([out])
    assert h.files[0].layout == "run" and h.files[0].records == 9
    assert set(h.frame["model"]) == {m.litellm_model for m in MODELS}
    assert h.frame["score"].isin([0.0, 1.0]).all()
