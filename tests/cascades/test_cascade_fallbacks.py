"""A cascade whose stages all fail goes on to the plan's fallbacks, as a single-model task does:
over HTTP (the loopback server failing the cascade's models), under the budget guard, and
killed in the middle of a fallback call, then resumed."""

from __future__ import annotations

import json
import math
import signal
import sqlite3

import pytest

from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.plan import ModelSnapshot
from tests.cascades.plans import cascade_plan, check_cascade_run
from tests.executor.helpers import cli_command, live_count, rerun_cli, start_cli
from tests.executor.loopback import LoopbackServer

KEY = "sk-routeplan-FAKE-fallback-0123456789"
PROMPT = {"agree": "Question {i}: which letter?\nA) one\nB) two\nC) three\nD) four"}
DOWN = (500, {}, {"error": {"message": "overloaded"}})


@pytest.fixture
def server():
    s = LoopbackServer().start()
    yield s
    s.stop()


def _models(api_base: str) -> tuple[ModelSnapshot, ...]:
    """cheap, witness, strong (the cascade) and backup (a fallback only)."""
    common = dict(provider="local", price_source="test", api_base=api_base, api_key_env="RP_FALLBACK_KEY")

    def m(name: str, cin: float, cout: float) -> ModelSnapshot:
        return ModelSnapshot(name=f"local/{name}", litellm_model=f"openai/{name}", input_cost_per_token=cin,
                             output_cost_per_token=cout, ttft_s=0.2, output_tokens_per_s=80, **common)

    return m("cheap", 1e-7, 2e-7), m("witness", 5e-7, 1e-6), m("strong", 3e-6, 1.2e-5), m("backup", 1e-6, 4e-6)


def _plan(api_base: str, n: int, budget_usd: float | None = 1.0):
    cheap, witness, strong, backup = _models(api_base)
    # the plan ranks the cascade's own second model first among the fallbacks: it was just tried
    return cascade_plan(n, ("agree",), models=(cheap, witness, strong), prompts=PROMPT, checks=False,
                        max_tokens=100, budget_usd=budget_usd, fallbacks=(strong, backup))


def _live_worst(m: ModelSnapshot, in_tok: int = 60, max_tokens: int = 100) -> float:
    """One call's worst case as a live run reserves it (the prompt counted with a margin)."""
    return (math.ceil(in_tok * 1.1) + 16) * m.input_cost_per_token + max_tokens * m.output_cost_per_token


def _options(**kw) -> RunOptions:
    return RunOptions(mode="live", concurrency=2, progress=False,
                      retry=RetryPolicy(max_retries=1, base_s=0.01, max_backoff_s=0.02), **kw)


def _ledger(out, sql: str) -> list[tuple]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_cascade_whose_stages_all_fail_is_answered_by_the_plans_fallback(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_FALLBACK_KEY", KEY)
    server.scripts["cheap"] = [DOWN] * 1000  # stage one fails every time
    server.scripts["strong"] = [DOWN] * 1000  # and so does the escalation
    server.replies["witness"] = lambda body: "The answer is (B)."
    server.replies["backup"] = lambda body: "The answer is (C)."
    plan = _plan(server.api_base, 4)
    out = tmp_path / "run"
    run_plan(plan, out, _options())
    facts = check_cascade_run(out, 1.0)
    assert set(facts["statuses"].values()) == {"done"}
    assert facts["fell_back"] == {a.task_id for a in plan.assignments}
    rows = _ledger(out, "SELECT model, output, reason, accepted, decision FROM tasks")
    for model, output, reason, accepted, decision in rows:
        assert (model, output, accepted) == ("local/backup", "The answer is (C).", 0)
        assert reason.startswith("every stage of the cascade failed (stage one failed: local/cheap")
        assert "escalation: local/strong" in reason and reason.endswith("answered by the plan's fallback local/backup")
        assert decision in reason
    # each stage tried with the run's retries (2 calls); the strong model is not asked again as a
    # fallback; the backup once per task
    sent = [r["model"] for r in server.requests]
    assert (sent.count("cheap"), sent.count("strong"), sent.count("backup")) == (8, 8, 4)
    purposes = dict(_ledger(out, "SELECT purpose, COUNT(*) FROM attempts GROUP BY purpose"))
    assert purposes == {"answer": 8, "verify": 4, "escalate": 8, "fallback": 4}
    report = json.loads((out / "report.json").read_text())
    (c,) = report["cascades"]
    assert (c["fell_back"], c["fallback_done"]) == (4, 4)
    backup = _models(server.api_base)[3]
    assert c["fallback_cost_usd"] == pytest.approx(4 * (20 * backup.input_cost_per_token
                                                        + 30 * backup.output_cost_per_token))
    assert c["cost_usd"] == pytest.approx(c["answer_cost_usd"] + c["verifier_cost_usd"] + c["escalation_cost_usd"]
                                          + c["fallback_cost_usd"])
    assert report["totals"]["fallbacks_used"] == 4
    md = (out / "report.md").read_text()
    assert "on 4 tasks every stage failed, so the plan's fallbacks were tried" in md
    assert KEY not in md


def test_when_the_fallbacks_fail_too_the_task_fails_saying_so(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_FALLBACK_KEY", KEY)
    for name in ("cheap", "strong", "backup"):
        server.scripts[name] = [DOWN] * 1000
    out = tmp_path / "run"
    run_plan(_plan(server.api_base, 2), out, _options())
    check_cascade_run(out, 1.0)
    for status, model, reason in _ledger(out, "SELECT status, model, reason FROM tasks"):
        assert (status, model) == ("failed", "local/backup")
        assert reason.startswith("every stage of the cascade failed (")
        assert "then the plan's fallbacks: every model in the chain failed; last: local/backup" in reason
    sent = [r["model"] for r in server.requests]
    assert sent.count("backup") == 4  # its retries, then nothing left


def test_a_cascade_without_other_fallbacks_fails_as_before(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_FALLBACK_KEY", KEY)
    server.scripts["cheap"] = [DOWN] * 1000
    server.scripts["strong"] = [DOWN] * 1000
    cheap, witness, strong, _ = _models(server.api_base)
    plan = cascade_plan(1, ("agree",), models=(cheap, witness, strong), prompts=PROMPT, checks=False,
                        max_tokens=100, budget_usd=1.0, fallbacks=(strong, cheap))  # only the cascade's own
    out = tmp_path / "run"
    run_plan(plan, out, _options())
    [(status, reason)] = _ledger(out, "SELECT status, reason FROM tasks")
    assert status == "failed" and reason.endswith("the plan has no other fallback for the task")
    assert not check_cascade_run(out, 1.0)["fell_back"]


def test_the_fallback_reserves_under_the_budget_guard(server, tmp_path, monkeypatch):
    """The cascade's hold is released before the fallback reserves as usual: a budget of the
    cascade's worst case covers a fallback cheaper than what the hold kept unused, and queues
    (never sends) one whose worst case it can never cover."""
    monkeypatch.setenv("RP_FALLBACK_KEY", KEY)
    server.scripts["cheap"] = [DOWN] * 1000  # a 500 is not billed: only the witness's answer is paid
    server.scripts["strong"] = [DOWN] * 1000
    server.replies["witness"] = lambda body: "The answer is (B)."
    cheap, witness, strong, backup = _models(server.api_base)
    dear = backup.model_copy(update={"name": "local/dear", "litellm_model": "openai/dear",
                                     "input_cost_per_token": 1e-5, "output_cost_per_token": 4e-5})
    for fallback, want in ((backup, "done"), (dear, "queued")):
        plan = cascade_plan(1, ("agree",), models=(cheap, witness, strong), prompts=PROMPT, checks=False,
                            max_tokens=100, fallbacks=(fallback,))
        a = plan.assignments[0]
        held = sum(_live_worst(m) for m in (cheap, witness, strong))  # what the cascade reserves live
        budget = held * 1.05
        # the backup fits only in the money the cascade held (beside the hold it never would);
        # the dear model's worst case is more than the whole budget
        assert _live_worst(fallback) > budget - held
        assert (_live_worst(fallback) > budget) == (want == "queued")
        out = tmp_path / want
        server.requests.clear()
        run_plan(plan, out, _options(budget_usd=budget))
        facts = check_cascade_run(out, budget)
        assert facts["statuses"] == {a.task_id: want}
        [(reason,)] = _ledger(out, "SELECT reason FROM tasks")
        sent = [r["model"] for r in server.requests]
        if want == "queued":
            assert reason.startswith("budget:") and "local/dear" in reason and "dear" not in sent
        else:
            assert facts["fell_back"] == {a.task_id} and sent.count("backup") == 1


def test_killed_in_the_middle_of_a_fallback_resumes_without_asking_the_stages_again(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_FALLBACK_KEY", KEY)
    server.scripts["cheap"] = [DOWN] * 1000
    server.scripts["strong"] = [DOWN] * 1000
    server.replies["witness"] = lambda body: "The answer is (B)."
    server.replies["backup"] = lambda body: "The answer is (C)."
    server.delay_s["backup"] = 5.0  # the fallback's call hangs: the run is killed while it is in flight
    plan_path = _plan(server.api_base, 3).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    cmd = cli_command("run", plan_path, "--out", out, "--live", "--concurrency", "3", "--max-retries", "1")
    inflight = "SELECT COUNT(*) FROM attempts WHERE purpose='fallback' AND state='inflight'"
    proc = start_cli(cmd, until=lambda: live_count(ledger, inflight) >= 3
                     and [r["model"] for r in server.requests].count("backup") >= 3, timeout_s=120,
                     what="the fallbacks never got in flight")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stage_calls = sum(r["model"] in ("cheap", "strong", "witness") for r in server.requests)
    assert stage_calls == 3 * (2 + 1 + 2)
    server.delay_s["backup"] = 0.0
    rerun = rerun_cli([*cmd, "--resume"], timeout_s=120)
    assert rerun.returncode == 0, rerun.stderr
    facts = check_cascade_run(out, 1.0)
    assert set(facts["statuses"].values()) == {"done"}
    assert facts["states"].get("lost", 0) == 3  # the fallbacks in flight at the kill: counted at their reservation
    # the resumed run went straight to the fallbacks: no stage was asked again
    assert sum(r["model"] in ("cheap", "strong", "witness") for r in server.requests) == stage_calls
    assert [r["model"] for r in server.requests].count("backup") == 6
    for model, reason in _ledger(out, "SELECT model, reason FROM tasks"):
        assert model == "local/backup" and reason.startswith("every stage of the cascade failed (stage one failed")
