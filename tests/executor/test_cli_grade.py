"""``routeplan grade DIR``: regrade stored answers (new checks from --tasks), judge only
calls the judge, counts printed, exit statuses 0 / 1 / 2."""

from __future__ import annotations

import json
import sqlite3

from .plans import MODELS, make_plan


def _scores(out) -> dict[str, float | None]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return dict(conn.execute("SELECT task_id, score FROM tasks"))
    finally:
        conn.close()


def _answer_attempts(out) -> int:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return conn.execute("SELECT COUNT(*) FROM attempts WHERE purpose='answer'").fetchone()[0]
    finally:
        conn.close()


def test_grade_takes_fixed_checks_and_never_asks_the_models_again(tmp_path, run_cli):
    # the run's check expects the wrong number for odd tasks; the fixed file corrects them
    plan = make_plan(12, check=lambda i: {"kind": "number", "answer": i}, quality=lambda i, m: 1.0)
    plan_path = plan.save(tmp_path / "plan.json")
    out = tmp_path / "run"
    code, stdout, _ = run_cli("run", plan_path, "-o", out, "--simulate")
    assert code == 0 and "graded: 12 answer(s) by their checks, 12 passed" in stdout
    assert set(_scores(out).values()) == {1.0}
    attempts = _answer_attempts(out)

    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("tasks:\n" + "".join(
        f"  - {{id: t{i:05d}, type: summarize, prompt: x, check: {{kind: number, answer: {i + 1}}}}}\n"
        for i in range(0, 12, 2)) + "  - {id: elsewhere, type: qa, prompt: x, check: {kind: exact, answer: y}}\n")
    code, stdout, stderr = run_cli("grade", out, "--tasks", fixed)
    assert code == 0, stderr
    assert "checks: 6 updated" in stdout and "1 task(s) of the file are not in this run" in stdout
    assert "graded 12 of 12: 6 passed, 6 failed their check, 0 could not be graded" in stdout
    scores = _scores(out)
    assert all(scores[f"t{i:05d}"] == (0.0 if i % 2 == 0 else 1.0) for i in range(12))
    assert _answer_attempts(out) == attempts  # no model asked again
    report = json.loads((out / "report.json").read_text())
    assert report["quality"]["overall"]["measured_quality"] == 0.5
    assert len(report["quality"]["failed_checks"]) == 6
    assert "got 0, expected 1" in (out / "report.md").read_text()


def test_grade_with_a_simulated_judge_calls_only_the_judge(tmp_path, run_cli):
    plan = make_plan(6, quality=lambda i, m: 1.0 if i < 3 else 0.0)
    out = tmp_path / "run"
    code, _, _ = run_cli("run", plan.save(tmp_path / "plan.json"), "-o", out, "--simulate")
    assert code == 0
    attempts = _answer_attempts(out)
    judge = MODELS[0].name
    tasks = tmp_path / "judge.yaml"
    tasks.write_text(f"defaults:\n  check: {{kind: judge, model: {judge}, rubric: 'three sentences'}}\n"
                     "tasks:\n" + "".join(f"  - {{id: t{i:05d}, type: summarize, prompt: x}}\n" for i in range(6)))
    code, stdout, stderr = run_cli("grade", out, "--tasks", tasks)
    assert code == 0, stderr
    assert "graded 6 of 6: 3 passed, 3 failed their check" in stdout and "judge cost $" in stdout
    assert "(simulated)" in stdout
    assert _answer_attempts(out) == attempts
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["grading_calls"] == 6 and report["totals"]["grading_cost_usd"] > 0
    code, stdout, _ = run_cli("grade", out)  # judged once: never paid for again
    assert code == 0 and "graded 0 of 0" in stdout and "6 judge grade(s) kept" in stdout
    assert json.loads((out / "report.json").read_text())["totals"]["grading_calls"] == 6


def test_grade_exit_1_when_an_answer_cannot_be_graded(tmp_path, run_cli):
    plan = make_plan(4, check=lambda i: {"kind": "judge", "model": MODELS[1].name, "rubric": "ok"},
                     budget_usd=None)
    out = tmp_path / "run"
    code, _, _ = run_cli("run", plan.save(tmp_path / "plan.json"), "-o", out, "--simulate")
    assert code == 0
    conn = sqlite3.connect(out / "ledger.sqlite")
    conn.execute("UPDATE tasks SET score=NULL")
    conn.commit()
    conn.close()
    code, stdout, _ = run_cli("grade", out, "--budget", "0")  # no money left for the judge
    assert code == 1
    assert "4 could not be graded" in stdout
    report = json.loads((out / "report.json").read_text())
    assert len(report["quality"]["ungraded"]) == 4
    assert all(u["grade_reason"].startswith("budget:") for u in report["quality"]["ungraded"])


def test_grade_bad_input_is_exit_2_with_one_line(tmp_path, run_cli):
    code, _, err = run_cli("grade", tmp_path / "missing")
    assert code == 2 and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("grade", tmp_path / "empty")
    assert code == 2 and "no run ledger" in err
    out = tmp_path / "run"
    run_cli("run", make_plan(2).save(tmp_path / "plan.json"), "-o", out, "--simulate")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [{id: t00000, type: summarize, prompt: x, check: {kind: regex, pattern: '(('}}]\n")
    code, _, err = run_cli("grade", out, "--tasks", bad)
    assert code == 2 and "invalid regex" in err and len(err.strip().splitlines()) == 1
    none = tmp_path / "none.yaml"
    none.write_text("tasks: [{id: zzz, type: qa, prompt: x, check: {kind: exact, answer: a}}]\n")
    code, _, err = run_cli("grade", out, "--tasks", none)
    assert code == 2 and "none of its tasks" in err
    judge = tmp_path / "judge.yaml"
    judge.write_text("tasks: [{id: t00000, type: qa, prompt: x, check: {kind: judge, model: nope-xyz, rubric: a}}]\n")
    code, _, err = run_cli("grade", out, "--tasks", judge)
    assert code == 2 and "task t00000: check.model" in err
