"""Cascades on the live path: litellm's real HTTP client against the loopback server.

The server's answers decide each verifier (a witness that agrees or not, samples that agree, a
judge's score), so what the runner calls, keeps and pays is known exactly."""

from __future__ import annotations

import json
import sqlite3

import pytest

from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.plan import ModelSnapshot
from tests.cascades.plans import cascade_plan, check_cascade_run
from tests.executor.loopback import LoopbackServer

KEY = "sk-routeplan-FAKE-cascade-0123456789"
PROMPTS = {"agree": "Question {i}: which letter?\nA) one\nB) two\nC) three\nD) four", "self_consistency": "6 * 7 = ?",
           "judge": "Summarise: the cat sat on the mat."}


@pytest.fixture
def server():
    s = LoopbackServer().start()
    yield s
    s.stop()


def _models(api_base: str) -> tuple[ModelSnapshot, ModelSnapshot, ModelSnapshot]:
    common = dict(provider="local", price_source="test", api_base=api_base, api_key_env="RP_CASCADE_KEY")

    def m(name: str, cin: float, cout: float) -> ModelSnapshot:
        return ModelSnapshot(name=f"local/{name}", litellm_model=f"openai/{name}", input_cost_per_token=cin,
                             output_cost_per_token=cout, ttft_s=0.2, output_tokens_per_s=80, **common)

    return m("cheap", 1e-7, 2e-7), m("witness", 5e-7, 1e-6), m("strong", 3e-6, 1.2e-5)


def _text(body: dict) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"])


def _witness(body: dict) -> str:
    text = _text(body)
    if "SCORE" in text or "score" in text:  # the verifier's judge prompt
        return "SCORE: 9\nREASON: meets the rubric."
    question = int(text.split(":")[0].split()[-1])
    return "The answer is (B)." if question % 2 == 0 else "The answer is (C)."  # odd questions: disagree


def test_cascades_over_http(server, tmp_path, monkeypatch):
    monkeypatch.setenv("RP_CASCADE_KEY", KEY)
    server.replies["cheap"] = lambda body: "The answer is 42." if "6 * 7" in _text(body) else "The answer is (B)."
    server.replies["witness"] = _witness
    server.replies["strong"] = lambda body: "The answer is (C)."
    server.scripts["cheap"] = [(500, {}, {"error": {"message": "overloaded"}})]  # stage one retried once
    models = _models(server.api_base)
    plan = cascade_plan(6, ("agree", "agree", "self_consistency", "judge"), models=models, prompts=PROMPTS,
                        checks=False, max_tokens=100, budget_usd=1.0)
    out = tmp_path / "run"
    result = run_plan(plan, out, RunOptions(mode="live", concurrency=2, progress=False,
                                            retry=RetryPolicy(max_retries=2, base_s=0.01, max_backoff_s=0.05)))
    assert not result.simulated
    facts = check_cascade_run(out, 1.0)
    assert set(facts["statuses"].values()) == {"done"}
    by_kind = {a.task_id: a.cascade.verifier["verifier"] for a in plan.assignments}
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        rows = {t: (m, acc, o) for t, m, acc, o in conn.execute("SELECT task_id, model, accepted, output FROM tasks")}
    finally:
        conn.close()
    for task_id, (model, accepted, output) in rows.items():
        question = int(task_id[1:])
        if by_kind[task_id] == "agree" and question % 2 == 1:  # the witness disagreed: escalated
            assert (accepted, model, output) == (0, "local/strong", "The answer is (C)."), task_id
        else:  # agreed, samples agreed, the judge scored 9 of 10 (threshold 0.7)
            assert accepted == 1 and model == "local/cheap", task_id
    sent = [(r["model"], r["body"]) for r in server.requests]
    n_agree = sum(k == "agree" for k in by_kind.values())
    n_sc = sum(k == "self_consistency" for k in by_kind.values())
    n_judge = sum(k == "judge" for k in by_kind.values())
    rejected = sum(1 for t, (_, acc, _) in rows.items() if acc == 0)
    assert sum(m == "strong" for m, _ in sent) == rejected
    assert sum(m == "witness" for m, _ in sent) == n_agree + n_judge
    # stage one of every task (one retried after the 500) and two more samples per self_consistency
    assert sum(m == "cheap" for m, _ in sent) == len(rows) + 1 + 2 * n_sc
    samples = [b for m, b in sent if m == "cheap" and b.get("temperature") is not None]
    assert len(samples) == 2 * n_sc and all(b["temperature"] == 0.7 for b in samples)
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
    report = json.loads((out / "report.json").read_text())
    # 20 prompt tokens and up to 30 completion tokens per call, at the snapshot prices
    by_name = {m.name.split("/")[-1]: m for m in models}
    want = sum(20 * by_name[m].input_cost_per_token + min(30, b["max_tokens"]) * by_name[m].output_cost_per_token
               for m, b in sent if b is not None)
    failed = by_name["cheap"]  # the 500 is not billed
    assert failed and report["totals"]["actual_cost_usd"] == pytest.approx(
        want - (20 * failed.input_cost_per_token + 30 * failed.output_cost_per_token))
    (c_agree,) = [c for c in report["cascades"] if c["cascade"].endswith("(agree)")]
    assert c_agree["accepted"] == n_agree - rejected and c_agree["decided"] == n_agree
    for line in (out / "report.md").read_text().splitlines() + [json.dumps(report)]:
        assert KEY not in line
