"""Checks on pipeline steps: a bad check is one line at validate (nothing runs); a step-level
check grades a batch's tasks; the ROI quality is measured where checks exist."""

from __future__ import annotations

import pytest

from tests.pipeline.conftest import cli, run_demo
from tests.pipeline.test_bad_input import demo_variant, expect_error, step


@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda d: step(d, "generate_code")["parameters"].update(check={"kind": "python_tests", "tests": ["assert ("]}),
     ("step generate_code", "parameters.check", "not valid Python")),
    (lambda d: step(d, "generate_code")["parameters"].update(check={"kind": "guess"}),
     ("step generate_code", "parameters.check", "unknown kind 'guess'")),
    (lambda d: step(d, "batch_processing")["parameters"]["tasks"][0].update(
        check={"kind": "regex", "pattern": "(("}), ("step batch_processing", "parameters.tasks", "invalid regex")),
    (lambda d: step(d, "batch_processing")["parameters"].update(check={"kind": "choice", "answer": "Z"}),
     ("step batch_processing", "parameters.check", "not among the options")),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_bad_check_on_a_step_is_one_line_before_anything_runs(tmp_path, capsys, edit, fragments, command):
    path = demo_variant(tmp_path, edit)
    out = tmp_path / "o"
    argv = ["pipeline", command, str(path)] + (["-o", str(out)] if command == "run" else [])
    expect_error(capsys, argv, *fragments)
    assert not (out / "steps").exists()


def test_a_step_check_grades_every_batch_task_without_its_own(tmp_path, capsys, monkeypatch):
    import tests.pipeline.conftest as conftest

    def edit(d):
        p = step(d, "batch_processing")["parameters"]
        p["tasks"] = ["Translate 'yes' to Spanish", {"prompt": "Translate 'no' to Spanish",
                                                     "check": {"kind": "exact", "answer": "no"}}]
        p["check"] = {"kind": "match", "mode": "contains", "answer": "si"}

    monkeypatch.setattr(conftest, "DEMO", demo_variant(tmp_path, edit))
    run = run_demo(tmp_path / "out", task_budget=5, priority="cost")
    results = run["results"]["batch_processing"]["results"]
    assert [t["grader"] for t in results] == ["match", "exact"]
    assert all(t["score"] in (0.0, 1.0) for t in results)


def test_validate_accepts_the_demo_with_its_checks(capsys):
    from tests.pipeline.conftest import DEMO

    code, out, err = cli(["pipeline", "validate", str(DEMO)], capsys)
    assert code == 0, err
