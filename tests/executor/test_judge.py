"""A judge check through the loopback OpenAI-compatible server: its call is reserved, billed,
retried, written to the ledger and shown as grading cost; a killed run resumes mid-grading
without paying for anything twice."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from planner.checks.schema import parse_check
from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.plan import ModelSnapshot, Plan

from .helpers import check_run, cli_command, ledger_facts, rerun_cli, start_cli
from .loopback import LoopbackServer
from .plans import make_plan

FAKE_KEY = "sk-routeplan-FAKE-judge-0123456789"
RUBRIC = "Names the capital of France."


@pytest.fixture
def server():
    s = LoopbackServer(replies={"judge": _judge_reply}).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch):
    monkeypatch.setenv("RP_TEST_KEY", FAKE_KEY)


def _judge_reply(body: dict) -> str:
    """8/10 for an answer of even task number, 3/10 for odd (read from the judged prompt)."""
    text = body["messages"][-1]["content"]
    n = int(re.search(r"document (\d+)", text).group(1))
    return f"SCORE: {8 if n % 2 == 0 else 3}\nREASON: checked against the rubric"


def _models(api_base: str) -> list[ModelSnapshot]:
    common = dict(provider="local", price_source="test", api_base=api_base, api_key_env="RP_TEST_KEY")
    return [ModelSnapshot(name="local/primary", litellm_model="openai/primary", input_cost_per_token=1e-6,
                          output_cost_per_token=2e-6, ttft_s=0.3, output_tokens_per_s=60, **common),
            ModelSnapshot(name="local/judge", litellm_model="openai/judge", input_cost_per_token=5e-6,
                          output_cost_per_token=1e-5, ttft_s=0.3, output_tokens_per_s=60, **common)]


def judged_plan(api_base: str, n: int, budget_usd: float | None = None) -> Plan:
    models = _models(api_base)
    plan = make_plan(n, models=models[:1], max_tokens=100, expected_tokens=30, budget_usd=budget_usd,
                     fallbacks=False, check=lambda i: {"kind": "judge", "model": "local/judge", "rubric": RUBRIC})
    return plan.model_copy(update={"models": models})


def _options(**kw) -> RunOptions:
    return RunOptions(mode="live", concurrency=2, progress=False,
                      retry=RetryPolicy(max_retries=2, base_s=0.01, max_backoff_s=0.05), **kw)


def _grades(out: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return {r[0]: r[1:] for r in conn.execute("SELECT task_id, score, grader, grade_reason, grade_cost_pusd "
                                                  "FROM tasks")}
    finally:
        conn.close()


def _grade_attempts(out: Path) -> list[tuple]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return conn.execute("SELECT task_id, model, state, cost_pusd FROM attempts WHERE purpose='grade'").fetchall()
    finally:
        conn.close()


def test_judge_call_is_billed_as_grading_and_scores_the_answer(server, tmp_path):
    out = tmp_path / "out"
    run_plan(judged_plan(server.api_base, 4, budget_usd=1.0), out, _options())
    report = check_run(out, 1.0)
    grades = _grades(out)
    assert {t: g[0] for t, g in grades.items()} == {"t00000": 0.8, "t00001": 0.3, "t00002": 0.8, "t00003": 0.3}
    assert all(g[1] == "judge" and "checked against the rubric" in g[2] for g in grades.values())
    judged = [r for r in server.requests if r["model"] == "judge"]
    assert len(judged) == 4
    assert RUBRIC in judged[0]["body"]["messages"][-1]["content"]
    assert "answer from primary" in judged[0]["body"]["messages"][-1]["content"]
    # priced at the judge's prices: 20 prompt + 30 completion tokens each
    per_call = 20 * 5_000_000 + 30 * 10_000_000
    assert [a[3] for a in _grade_attempts(out)] == [per_call] * 4
    assert report["totals"]["grading_cost_usd"] == pytest.approx(4 * per_call / 1e12)
    assert report["totals"]["grading_calls"] == 4
    q = report["quality"]
    assert q["n_graded"] == 4 and q["overall"]["measured_quality"] == pytest.approx(0.55)
    assert q["overall"]["interval"] == "t"
    assert [f["task_id"] for f in q["failed_checks"]] == ["t00001", "t00003"]  # below the judge's 0.5
    # the judge is not a served model: by_model holds the answering model only
    assert [m["model"] for m in report["by_model"]] == ["local/primary"]
    md = (out / "report.md").read_text()
    assert "Quality: projected vs measured" in md and "Grading cost" in md


def test_judge_errors_are_retried_and_an_unusable_reply_leaves_the_answer_ungraded(server, tmp_path):
    server.scripts["judge"] = [(500, {}, {"error": {"message": "boom"}})]
    server.replies["judge"] = lambda body: ("no score here" if "document 1" in body["messages"][-1]["content"]
                                            else "SCORE: 9\nREASON: fine")
    out = tmp_path / "out"
    result = run_plan(judged_plan(server.api_base, 2), out, _options())
    assert result.graded == 1 and result.grade_errors == 1
    grades = _grades(out)
    assert grades["t00000"][0] == 0.9
    assert grades["t00001"][0] is None and "no 'SCORE: n'" in grades["t00001"][2]
    calls = _grade_attempts(out)
    assert [a[2] for a in calls].count("ok") == 1
    assert [a[2] for a in calls if a[0] == "t00001"] == ["error"] * 3  # 1 call + max_retries 2
    assert len(calls) == 5 or [a[2] for a in calls if a[0] == "t00000"] == ["ok"]  # the 500 hit one of them
    assert len([r for r in server.requests if r["model"] == "judge"]) == len(calls)
    check_run(out, None)
    report = json.loads((out / "report.json").read_text())
    assert [u["task_id"] for u in report["quality"]["ungraded"]] == ["t00001"]


def test_a_judge_the_budget_cannot_cover_is_left_for_grade(server, tmp_path):
    plan = judged_plan(server.api_base, 2)
    answers_worst = sum(a.worst_case_cost_usd for a in plan.assignments)
    out = tmp_path / "out"
    run_plan(plan, out, _options(budget_usd=answers_worst * 1.05))  # answers fit, their judges do not
    grades = _grades(out)
    assert all(g[0] is None and g[2].startswith("budget:") for g in grades.values())
    assert not _grade_attempts(out)
    from planner.executor.regrade import grade_run

    answered = len([r for r in server.requests if r["model"] == "primary"])
    r = grade_run(out, live=True, budget_usd=1.0)
    assert (r.graded, r.errors) == (2, 0)
    assert len([r for r in server.requests if r["model"] == "primary"]) == answered  # never re-asked
    assert {t: g[0] for t, g in _grades(out).items()} == {"t00000": 0.8, "t00001": 0.3}
    again = grade_run(out, live=True, budget_usd=1.0)  # graded answers are never paid for again
    assert (again.to_grade, again.kept) == (0, 2)
    assert len([r for r in server.requests if r["model"] == "judge"]) == 2


def _grade_state(ledger: Path) -> dict[str, int]:
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            return dict(conn.execute("SELECT state, COUNT(*) FROM attempts WHERE purpose='grade' GROUP BY state"))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def test_killed_mid_grading_then_resumed_pays_for_nothing_twice(server, tmp_path):
    server.delay_s["judge"] = 0.4
    plan_path = judged_plan(server.api_base, 12).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = cli_command("run", plan_path, "--out", out, "--live", "--concurrency", "3")
    proc = start_cli(cmd, until=lambda: (_grade_state(out / "ledger.sqlite").get("ok", 0) >= 2
                                         and _grade_state(out / "ledger.sqlite").get("inflight", 0) >= 1),
                     timeout_s=90, what="grading never got going")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = ledger_facts(out)
    graded_at_kill = {t for t, g in _grades(out).items() if g[0] is not None}
    judge_calls_at_kill = {t: n for t, n in _count(_grade_attempts(out)).items()}
    inflight = _grade_state(out / "ledger.sqlite")["inflight"]
    assert graded_at_kill and len(graded_at_kill) < 12
    answers_at_kill = len([r for r in server.requests if r["model"] == "primary"])

    rerun = rerun_cli([*cmd, "--resume"])
    assert rerun.returncode == 0, rerun.stderr
    report = check_run(out, None)
    after = ledger_facts(out)
    grades = _grades(out)
    assert all(g[0] is not None for g in grades.values())  # every answer graded in the end
    assert all(after["ok_per_task"][t] == 1 for t in killed["ok_per_task"])  # no answer asked twice
    calls_after = _count(_grade_attempts(out))
    for t in graded_at_kill:  # a graded answer is never judged again
        assert calls_after[t] == judge_calls_at_kill[t]
    states = _grade_state(out / "ledger.sqlite")
    assert states.get("lost", 0) == inflight  # what was in flight counts at its reservation
    assert report["totals"]["grading_calls"] == sum(calls_after.values())
    answered_after = len([r for r in server.requests if r["model"] == "primary"])
    assert answered_after - answers_at_kill == 12 - len(killed["ok_per_task"])


def _count(rows: list[tuple]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row[0]] = out.get(row[0], 0) + 1
    return out


def test_plan_from_solve_carries_the_judge_snapshot(tmp_path):
    from planner.solve import make_plan as solve

    path = tmp_path / "t.yaml"
    path.write_text("tasks:\n  - {id: a, type: qa, prompt: 'Capital of France?', "
                    "check: {kind: judge, model: gpt-4.1-mini, rubric: Paris}}\n")
    plan = solve(path)
    check = plan.assignments[0].check
    assert check is not None and check.kind == "judge"
    assert check.model in {m.name for m in plan.models}
    assert parse_check(check.model_dump(by_alias=True)).model == check.model


def test_python_tests_in_a_live_run_never_see_or_write_the_keys(server, tmp_path):
    fence = "`" * 3
    code = (f"Here you go:\n{fence}python\nimport os\nENV = dict(os.environ)\nprint(ENV)\n"
            f"def leak():\n    return repr(ENV)\n{fence}")
    server.replies["primary"] = lambda body: code
    models = _models(server.api_base)
    tests = ["assert 'RP_TEST_KEY' not in ENV, leak()", "assert 'sk-routeplan' not in leak(), leak()",
             "assert 'PATH' in ENV", "assert False, leak()"]  # the last fails and shows the child's env
    plan = make_plan(2, models=models[:1], max_tokens=100, expected_tokens=30, fallbacks=False,
                     check=lambda i: {"kind": "python_tests", "tests": tests})
    out = tmp_path / "out"
    run_plan(plan, out, _options())
    grades = _grades(out)
    assert all(g[0] == 0.75 and g[1] == "python_tests" for g in grades.values()), grades
    assert any("AssertionError" in g[2] for g in grades.values())
    for path in out.iterdir():
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, path.name
        assert b"RP_TEST_KEY" not in data or path.name == "ledger.sqlite", path.name


def test_grade_interrupted_by_ctrl_c_exits_130_and_finishes_when_run_again(server, tmp_path):
    plan = judged_plan(server.api_base, 8)
    out = tmp_path / "out"
    answers_worst = sum(a.worst_case_cost_usd for a in plan.assignments)
    run_plan(plan, out, _options(budget_usd=answers_worst * 1.02))  # answers only: judges left for grade
    assert all(g[0] is None for g in _grades(out).values())
    answered = len([r for r in server.requests if r["model"] == "primary"])
    server.delay_s["judge"] = 0.5
    cmd = cli_command("grade", out, "--live", "--budget", "1", "--concurrency", "2")
    proc = start_cli(cmd, until=lambda: _grade_state(out / "ledger.sqlite").get("ok", 0) >= 1,
                     timeout_s=90, what="grading never got going")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr and "routeplan grade" in stderr
    graded_before = {t for t, g in _grades(out).items() if g[0] is not None}
    calls_before = _count(_grade_attempts(out))
    assert 1 <= len(graded_before) < 8

    again = rerun_cli(cmd)
    assert again.returncode == 0, again.stderr
    assert f"graded {8 - len(graded_before)} of {8 - len(graded_before)}" in again.stdout
    assert all(g[0] is not None for g in _grades(out).values())
    calls_after = _count(_grade_attempts(out))
    assert all(calls_after[t] == calls_before[t] for t in graded_before)  # never judged twice
    assert len([r for r in server.requests if r["model"] == "primary"]) == answered
    check_run(out, None)


def test_live_run_needs_the_judges_key_too(tmp_path, monkeypatch):
    from planner.errors import InputError

    models = _models("http://127.0.0.1:9/v1")
    judge = models[1].model_copy(update={"api_key_env": "RP_JUDGE_KEY_NOT_SET"})
    plan = judged_plan("http://127.0.0.1:9/v1", 2).model_copy(update={"models": [models[0], judge]})
    monkeypatch.delenv("RP_JUDGE_KEY_NOT_SET", raising=False)
    with pytest.raises(InputError, match="RP_JUDGE_KEY_NOT_SET"):
        run_plan(plan, tmp_path / "out", _options())
    assert not (tmp_path / "out").exists()
