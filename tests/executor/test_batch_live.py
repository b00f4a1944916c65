"""Live batch jobs through litellm's real client against the loopback server's /v1/files and
/v1/batches: success, failed lines and expiry falling back to realtime (or failing when the
deadline leaves no time), the budget guard, and a provider run cannot drive refused up front."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from planner.errors import InputError
from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.executor.engine import LIVE_INPUT_EXTRA_TOKENS, LIVE_INPUT_MARGIN

from .helpers import check_run
from .loopback import LoopbackServer
from .plans import make_batch_plan

FAKE_KEY = "sk-routeplan-FAKE-batch-0123456789"
# the loopback server's usage: 20 prompt and 30 completion tokens
BATCH_COST = 20 * 7.5e-8 + 30 * 3e-7
REALTIME_COST = 20 * 1.5e-7 + 30 * 6e-7


@pytest.fixture
def server():
    s = LoopbackServer(batch_complete_s=0.2, required_headers={"Authorization": f"Bearer {FAKE_KEY}"}).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.setenv("RP_TEST_KEY", FAKE_KEY)


def options(**kw) -> RunOptions:
    return RunOptions(mode="live", concurrency=4, progress=False, batch_poll_s=0.05, batch_poll_max_s=0.2,
                      retry=RetryPolicy(max_retries=1, base_s=0.01, max_backoff_s=0.05), **kw)


def run(server: LoopbackServer, out: Path, n: int = 6, **kw) -> dict:
    plan = make_batch_plan(n, api_base=server.api_base, api_key_env="RP_TEST_KEY",
                           budget_usd=kw.pop("budget_usd", 1.0), deadline_s=kw.pop("deadline_s", None),
                           **({"window_s": kw.pop("window_s")} if "window_s" in kw else {}))
    result = run_plan(plan, out, options(**kw))
    assert not result.simulated
    return json.loads((out / "report.json").read_text())


def served(report: dict) -> dict[str, str]:
    return {t["task_id"]: t["model"] for t in report["tasks"] if t["status"] == "done"}


def test_a_batch_job_runs_every_task_at_batch_prices(server, tmp_path):
    report = run(server, tmp_path / "out", 6)
    check_run(tmp_path / "out", 1.0)
    assert set(served(report).values()) == {"openai/gpt-4o-mini@batch"}
    assert server.requests == []  # no realtime call
    creates = [c for c in server.api_calls if c["step"] == "create"]
    assert len(creates) == 1 and creates[0]["body"]["metadata"]["routeplan_job"]
    (upload,) = server.live_files().values()
    lines = [json.loads(x) for x in upload["content"].decode().splitlines()]
    assert sorted(x["custom_id"] for x in lines) == [f"t{i:05d}" for i in range(6)]
    assert {x["body"]["model"] for x in lines} == {"gpt-4o-mini"} and lines[0]["body"]["max_tokens"] == 100
    assert report["totals"]["actual_cost_usd"] == pytest.approx(6 * BATCH_COST)
    (job,) = report["batch_jobs"]
    assert job["state"] == "completed" and (job["n_done"], job["n_failed"], job["n_requests"]) == (6, 0, 6)
    assert job["input_file_id"] == upload["id"] and job["batch_id"] == "batch_0001"
    assert job["output_file_id"] and job["actual_cost_usd"] == pytest.approx(6 * BATCH_COST)
    assert job["projected_cost_usd"] > 0 and job["waited_s"] > 0 and job["polls"] >= 1
    assert job["submitted_at"] <= job["ended_at"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Batch jobs" in md and "batch_0001" in md and "6 / 0 of 6" in md
    for path in (tmp_path / "out").iterdir():
        assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_failed_lines_fall_back_to_realtime(server, tmp_path):
    server.batch_failures = {"t00001": (500, "server trouble"), "t00004": (400, "bad request in line")}
    report = run(server, tmp_path / "out", 6)
    check_run(tmp_path / "out", 1.0)
    models = served(report)
    assert len(models) == 6
    assert models["t00001"] == models["t00004"] == "openai/gpt-4o-mini"
    assert {models[t] for t in ("t00000", "t00002", "t00003", "t00005")} == {"openai/gpt-4o-mini@batch"}
    assert [r["model"] for r in server.requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    (job,) = report["batch_jobs"]
    assert (job["n_done"], job["n_failed"]) == (4, 2)
    assert report["totals"]["actual_cost_usd"] == pytest.approx(4 * BATCH_COST + 2 * REALTIME_COST)
    conn = sqlite3.connect(tmp_path / "out" / "ledger.sqlite")
    errors = dict(conn.execute("SELECT task_id, error FROM attempts WHERE state='error'"))
    assert "server trouble" in errors["t00001"] and "bad request in line" in errors["t00004"]


def test_expiry_falls_back_to_realtime(server, tmp_path):
    server.batch_expire_after = 2
    report = run(server, tmp_path / "out", 6)
    check_run(tmp_path / "out", 1.0)
    models = served(report)
    assert len(models) == 6 and sum(m.endswith("@batch") for m in models.values()) == 2
    (job,) = report["batch_jobs"]
    assert job["state"] == "expired" and (job["n_done"], job["n_failed"]) == (2, 4)
    assert len(server.requests) == 4


def test_expiry_with_no_time_left_before_the_deadline_fails_with_the_reason(server, tmp_path):
    """A 1 s window in a 1.5 s deadline: the job ends after 1 s, and a realtime call (0.78 s
    projected) no longer fits; nothing is sent for the expired requests."""
    server.batch_complete_s, server.batch_expire_after = 1.0, 2
    report = run(server, tmp_path / "out", 6, deadline_s=1.5, window_s=1.0)
    check_run(tmp_path / "out", 1.0)
    failed = [t for t in report["tasks"] if t["status"] == "failed"]
    assert len(failed) == 4 and len(served(report)) == 2
    assert all("expired" in t["reason"] and "leaves no time for a realtime fallback" in t["reason"] for t in failed)
    assert server.requests == []


def test_the_guard_reserves_every_request_before_the_upload(server, tmp_path):
    """A budget for the worst case of 3 requests: 3 go in the job, 3 are queued, none sent."""
    plan = make_batch_plan(6, api_base=server.api_base, api_key_env="RP_TEST_KEY")
    by_priority = sorted(plan.assignments, key=lambda a: -a.priority)  # the order tasks are taken in
    worst = [(math.ceil(a.projected_input_tokens * LIVE_INPUT_MARGIN) + LIVE_INPUT_EXTRA_TOKENS) * 7.5e-8
             + 100 * 3e-7 for a in by_priority]
    assert worst[3:] and min(worst[3:]) > 2e-9  # none of the others fits in what is left
    budget = sum(worst[:3]) + 1e-9
    report = run(server, tmp_path / "out", 6, budget_usd=budget)
    check_run(tmp_path / "out", budget)
    assert report["totals"]["n_done"] == 3 and report["totals"]["n_queued"] == 3
    assert all(q["reason"].startswith("budget:") for q in report["queued"])
    (job,) = report["batch_jobs"]
    assert job["n_requests"] == 3 and job["reserved_usd"] == pytest.approx(budget, abs=1e-8)
    assert report["spent_usd"] <= budget


def test_a_job_the_provider_refuses_falls_back_to_realtime(server, tmp_path):
    """A 400 on the batch's creation ends the job (nothing to retry): every request goes realtime."""
    server.reject_batches = "batches are not enabled for this organisation"
    report = run(server, tmp_path / "out", 3)
    check_run(tmp_path / "out", 1.0)
    assert set(served(report).values()) == {"openai/gpt-4o-mini"}
    (job,) = report["batch_jobs"]
    assert job["state"] == "failed" and (job["n_done"], job["n_failed"]) == (0, 3)
    assert "batches are not enabled" in job["error"] and job["batch_id"] is None


def anthropic_batch_plan(monkeypatch):
    """Two tasks on an Anthropic batch offering (which run does not drive), keys set."""
    from planner.plan import ModelSnapshot

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-FAKE-000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-FAKE-000")
    plan = make_batch_plan(2)
    anthropic = ModelSnapshot(name="anthropic/claude-3-5-haiku@batch", litellm_model="anthropic/claude-3-5-haiku-20241022",
                              provider="anthropic", mode="batch", input_cost_per_token=4e-7,
                              output_cost_per_token=2e-6, price_source="test", batch_window_s=86400)
    return plan.model_copy(update={
        "models": [anthropic, plan.models[1]],
        "assignments": [a.model_copy(update={"model": anthropic.name}) for a in plan.assignments]})


def test_live_refuses_a_batch_offering_whose_provider_run_cannot_drive(tmp_path, monkeypatch):
    plan = anthropic_batch_plan(monkeypatch)
    with pytest.raises(InputError, match=r"anthropic/claude-3-5-haiku@batch \(anthropic\)"):
        run_plan(plan, tmp_path / "out", options())
    assert not (tmp_path / "out" / "ledger.sqlite").exists()


@pytest.mark.parametrize("litellm_model, provider", [
    ("anthropic/claude-3-5-haiku-20241022", "anthropic"), ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "bedrock"),
    ("vertex_ai/gemini-1.5-flash", "vertex_ai"), ("gemini/gemini-1.5-flash", "gemini"),
    ("mistral/mistral-small-latest", "mistral"), ("xai/grok-2", "xai")])
def test_providers_litellm_cannot_fully_drive_are_named(litellm_model, provider):
    from planner.executor.batch_api import SUPPORTED_PROVIDERS, unsupported
    from planner.plan import ModelSnapshot

    m = ModelSnapshot(name=f"{litellm_model}@batch", litellm_model=litellm_model, provider=provider, mode="batch",
                      input_cost_per_token=1e-7, output_cost_per_token=1e-7, price_source="test", batch_window_s=86400)
    assert unsupported([m]) == [f"{m.name} ({provider})"]
    assert provider not in SUPPORTED_PROVIDERS
    azure = m.model_copy(update={"name": "azure/gpt-4o-mini@batch", "litellm_model": "azure/gpt-4o-mini"})
    assert unsupported([azure]) == []


def test_cli_live_refuses_an_unsupported_batch_provider_in_one_line_exit_2(tmp_path, capsys, monkeypatch):
    from planner.cli import main

    path = anthropic_batch_plan(monkeypatch).save(tmp_path / "plan.json")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "--out", str(tmp_path / "out"), "--live"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "anthropic/claude-3-5-haiku@batch (anthropic)" in err and "azure, hosted_vllm, litellm_proxy, openai" in err
    assert not (tmp_path / "out" / "ledger.sqlite").exists()
