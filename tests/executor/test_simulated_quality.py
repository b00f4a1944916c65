"""The simulator grades honestly: answers in the form the check reads, right with the plan's
projected quality, so measured quality per model agrees with the projection."""

from __future__ import annotations

import json
import math
import random
import sqlite3

import pytest

from planner.checks.graders import grade
from planner.checks.schema import parse_check
from planner.checks.simulate import answer_for
from planner.executor import RunOptions, run_plan

from .plans import MODELS, make_plan

QUALITY = {MODELS[0].name: 0.62, MODELS[1].name: 0.91, MODELS[2].name: 0.27}


def _choice(i: int) -> dict:
    return {"kind": "choice", "answer": "ABCDE"[i % 5], "options": list("ABCDE")}


def _agrees(tmp_path, n_tasks: int, fail_rate: float) -> dict:
    plan = make_plan(n_tasks, check=_choice, quality=lambda i, m: QUALITY[m.name])
    out = tmp_path / "run"
    result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=11))
    assert result.graded == result.counts["done"] and result.grade_errors == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["quality"]["by_model"]
    assert {r["model"] for r in rows} == set(QUALITY)
    for r in rows:
        # every task served by a model is projected at that model's quality (fallbacks too)
        assert r["projected_quality"] == pytest.approx(QUALITY[r["model"]])
        se = math.sqrt(r["projected_quality"] * (1 - r["projected_quality"]) / r["n_graded"])
        assert abs(r["measured_quality"] - r["projected_quality"]) <= 3 * se, r
        assert r["ci95_low"] <= r["measured_quality"] <= r["ci95_high"]
    return report


def test_measured_quality_agrees_with_projection(tmp_path):
    report = _agrees(tmp_path, 900, fail_rate=0.05)
    assert report["quality"]["n_graded"] == report["totals"]["n_done"]


@pytest.mark.slow
def test_measured_quality_agrees_with_projection_on_10k_tasks(tmp_path):
    _agrees(tmp_path, 10_000, fail_rate=0.02)


def test_a_right_answer_is_right_every_time_and_a_retry_keeps_the_verdict(tmp_path):
    plan = make_plan(60, check=_choice, quality=lambda i, m: QUALITY[m.name])
    runs = []
    for k, fail_rate in enumerate((0.0, 0.3)):  # retries and fallbacks change nothing drawn per model
        out = tmp_path / f"r{k}"
        run_plan(plan, out, RunOptions(mode="simulate", progress=False, fail_rate=fail_rate, seed=5))
        conn = sqlite3.connect(out / "ledger.sqlite")
        runs.append({t: (m, s) for t, m, s in conn.execute("SELECT task_id, model, score FROM tasks")})
        conn.close()
    same_model = [t for t in runs[0] if runs[0][t][0] == runs[1][t][0]]
    assert len(same_model) > 30
    assert all(runs[0][t][1] == runs[1][t][1] for t in same_model)


CHECKS = [
    {"kind": "exact", "answer": "Paris"},
    {"kind": "match", "answer": "guten morgen", "mode": "contains"},
    {"kind": "regex", "pattern": r"^[A-Z]{3}-\d{2,4}(x|yz)?$", "mode": "fullmatch"},
    {"kind": "regex", "pattern": r"id=\w+", "example": "id=abc"},
    {"kind": "choice", "answer": "C", "options": {"A": "red", "B": "green", "C": "blue"}},
    {"kind": "number", "answer": -3.5, "tolerance": 0.1},
    {"kind": "json_schema", "schema": {
        "type": "object", "required": ["name", "tags", "when"],
        "properties": {"name": {"type": "string", "minLength": 8}, "tags": {"type": "array", "minItems": 2,
                                                                           "items": {"enum": ["x", "y"]}},
                       "when": {"type": "string", "format": "date"}, "n": {"type": "integer", "minimum": 3}}}},
    {"kind": "python_tests", "tests": ["assert fib(10) == 55", "assert fib(1) == 1"],
     "solution": "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a"},
    {"kind": "python_tests", "tests": ["assert double(4) == 8", "assert double(0) == 0"]},
]


@pytest.mark.parametrize("raw", CHECKS, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CHECKS)])
def test_simulated_answers_take_the_form_the_check_reads(raw):
    check = parse_check(raw)
    rng = random.Random(3)
    assert grade(check, answer_for(check, True, rng)).score == 1.0
    assert grade(check, answer_for(check, False, rng)).score == 0.0
