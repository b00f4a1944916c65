"""A check on a task, as a per-type default, and bad checks as one-line errors at load."""

from __future__ import annotations

import json

import pytest

from planner.errors import InputError
from planner.tasks import load_tasks


def _write(path, text):
    path.write_text(text)
    return path


def test_checks_on_tasks_and_per_type_defaults(tmp_path):
    path = _write(tmp_path / "t.yaml", """
defaults:
  checks:
    classification: {kind: choice, answer: A}
tasks:
  - {id: a, type: classification, prompt: "pick one"}
  - {id: b, type: classification, prompt: "pick", check: {kind: choice, answer: c}}
  - {id: c, type: code, prompt: "fib", check: {kind: python_tests, tests: ["assert fib(1) == 1"]}}
  - {id: d, type: qa, prompt: "no check"}
""")
    tasks = {t.id: t for t in load_tasks(path)}
    assert tasks["a"].check.kind == "choice" and tasks["a"].check.answer == "A"
    assert tasks["b"].check.answer == "C"  # its own check wins over the type's default
    assert tasks["c"].check.kind == "python_tests"
    assert tasks["d"].check is None


def test_a_check_for_every_task_and_in_csv_and_jsonl(tmp_path):
    path = _write(tmp_path / "t.yaml", "defaults: {check: {kind: number, answer: 4}}\n"
                                       "tasks: [{id: a, type: math, prompt: '2+2'}]\n")
    assert load_tasks(path)[0].check.answer == 4
    csv = _write(tmp_path / "t.csv", 'id,type,prompt,check\n1,qa,hi,"{""kind"": ""exact"", ""answer"": ""x""}"\n2,qa,hi,\n')
    a, b = load_tasks(csv)
    assert a.check.kind == "exact" and b.check is None
    jl = _write(tmp_path / "t.jsonl", json.dumps({"id": 1, "type": "qa", "prompt": "x",
                                                  "check": {"kind": "regex", "pattern": "^x$"}}) + "\n")
    assert load_tasks(jl)[0].check.pattern == "^x$"


@pytest.mark.parametrize(("check", "expected"), [
    ("{kind: fuzzy}", "unknown kind 'fuzzy'"),
    ("{kind: regex, pattern: '(unclosed'}", "invalid regex"),
    ("{kind: json_schema, schema: {type: 12}}", "invalid JSON Schema"),
    ("{kind: choice, answer: E}", "not among the options"),
    ("{kind: choice, answer: B, options: {A: yes, C: no}}", "not among the options A, C"),
    ("{kind: python_tests, tests: ['assert (']}", "not valid Python"),
    ("{kind: number, answer: 1, tolerance: -0.5}", "tolerance"),
])
def test_bad_check_names_file_record_and_field(tmp_path, check, expected):
    path = _write(tmp_path / "t.yaml", f"tasks:\n  - {{id: ok, type: qa, prompt: x}}\n"
                                       f"  - {{id: bad, type: qa, prompt: x, check: {check}}}\n")
    with pytest.raises(InputError) as info:
        load_tasks(path)
    text = str(info.value)
    assert str(path) in text and "record 1" in text and "'bad'" in text and "check" in text
    assert expected in text and "\n" not in text


def test_bad_per_type_default_is_named(tmp_path):
    path = _write(tmp_path / "t.yaml", "defaults: {checks: {qa: {kind: choice, answer: Z}}}\n"
                                       "tasks: [{id: a, type: qa, prompt: x}]\n")
    with pytest.raises(InputError, match=r"defaults\.checks\.qa: answer 'Z' is not among"):
        load_tasks(path)
    path = _write(tmp_path / "t2.yaml", "defaults: {checks: [1]}\ntasks: [{id: a, type: qa, prompt: x}]\n")
    with pytest.raises(InputError, match="defaults.checks: expected a mapping"):
        load_tasks(path)


def test_solve_rejects_an_unknown_judge_before_anything_runs(tmp_path):
    from planner.solve import make_plan

    path = _write(tmp_path / "t.yaml", "tasks: [{id: a, type: qa, prompt: x, "
                                       "check: {kind: judge, model: no-such-model-xyz, rubric: ok}}]\n")
    with pytest.raises(InputError, match="task a: check.model"):
        make_plan(path)


def test_per_type_checks_match_free_category_labels(tmp_path):
    path = _write(tmp_path / "t.yaml", "defaults:\n  checks:\n    'ARC  Challenge': {kind: choice, answer: B}\n"
                                       "tasks: [{id: a, type: arc challenge, prompt: x}, {id: b, type: other, prompt: y}]\n")
    a, b = load_tasks(path)
    assert a.check is not None and a.check.answer == "B"
    assert b.check is None
