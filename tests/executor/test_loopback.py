"""The live path: litellm's real HTTP client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from planner.executor import RetryPolicy, RunOptions, run_plan
from planner.plan import ModelSnapshot

from .loopback import LoopbackServer
from .plans import make_plan

FAKE_KEY = "sk-routeplan-FAKE-0123456789abcdef"
HEADER_SECRET = "hdr-secret-FAKE-987654321"


@pytest.fixture
def server():
    s = LoopbackServer().start()
    yield s
    s.stop()


def local_models(api_base: str) -> list[ModelSnapshot]:
    common = dict(provider="local", price_source="test", api_base=api_base, api_key_env="RP_TEST_KEY",
                  extra_headers={"X-Team-Token": "${RP_TEST_HEADER}"})
    return [
        ModelSnapshot(name="local/primary", litellm_model="openai/primary", input_cost_per_token=1e-6,
                      output_cost_per_token=2e-6, ttft_s=0.3, output_tokens_per_s=60, **common),
        ModelSnapshot(name="local/backup", litellm_model="openai/backup", input_cost_per_token=2e-6,
                      output_cost_per_token=4e-6, ttft_s=0.2, output_tokens_per_s=90, **common),
    ]


def run(server: LoopbackServer, tmp_path: Path, n: int, **kw) -> dict:
    plan = make_plan(n, models=local_models(server.api_base), max_tokens=100, expected_tokens=30,
                     budget_usd=kw.pop("budget_usd", None))
    # only the primary serves tasks; the backup is each task's fallback
    plan = plan.model_copy(update={"assignments": [a for a in plan.assignments if a.model == "local/primary"]})
    options = RunOptions(mode="live", concurrency=2, progress=False,
                         retry=RetryPolicy(max_retries=kw.pop("max_retries", 2), base_s=0.01, max_backoff_s=0.05))
    result = run_plan(plan, tmp_path / "out", options)
    assert not result.simulated
    return json.loads((tmp_path / "out" / "report.json").read_text())


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch):
    monkeypatch.setenv("RP_TEST_KEY", FAKE_KEY)
    monkeypatch.setenv("RP_TEST_HEADER", HEADER_SECRET)


def test_success_through_http_counts_usage_at_snapshot_prices(server, tmp_path):
    report = run(server, tmp_path, 4)
    assert report["simulated"] is False
    assert report["totals"]["n_done"] == 2
    assert len(server.requests) == 2
    # 20 prompt + 30 completion tokens at $1e-6 / $2e-6
    assert report["totals"]["actual_cost_usd"] == pytest.approx(2 * (20e-6 + 60e-6))
    req = server.requests[0]
    assert req["headers"]["Authorization"] == f"Bearer {FAKE_KEY}"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers.get("x-team-token") == HEADER_SECRET, sorted(headers)
    assert req["body"]["max_tokens"] == 100


def test_429_retry_after_is_honoured(server, tmp_path):
    server.scripts["primary"] = [(429, {"Retry-After": "1"}, {"error": {"message": "slow down"}})]
    t0 = time.monotonic()
    report = run(server, tmp_path, 2)
    elapsed = time.monotonic() - t0
    task = report["tasks"][0]
    assert task["status"] == "done" and task["model"] == "local/primary" and task["attempts"] == 2
    assert elapsed >= 1.0  # the backoff is 0.01 s; only Retry-After explains the wait
    assert report["totals"]["wasted_cost_usd"] == 0  # a 429 is not billed


def test_500s_exhaust_retries_then_fallback(server, tmp_path):
    server.scripts["primary"] = [(500, {}, {"error": {"message": "boom"}})] * 3
    report = run(server, tmp_path, 2, max_retries=2)
    task = report["tasks"][0]
    assert task["status"] == "done" and task["model"] == "local/backup" and task["attempts"] == 4
    assert [r["model"] for r in server.requests] == ["primary"] * 3 + ["backup"]


def test_permanent_error_fails_the_task_and_never_leaks_the_key(server, tmp_path):
    server.scripts["primary"] = [(401, {}, {"error": {"message": f"invalid api key {FAKE_KEY} and {HEADER_SECRET}"}})]
    report = run(server, tmp_path, 2)
    task = report["tasks"][0]
    assert task["status"] == "failed" and "permanent" in task["reason"]
    assert len(server.requests) == 1
    for path in (tmp_path / "out").iterdir():
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, path
        assert HEADER_SECRET.encode() not in data, path


def test_malformed_body_is_retried_then_fails(server, tmp_path):
    server.scripts["primary"] = [(200, {}, {"id": "x", "object": "chat.completion", "choices": []})] * 3
    report = run(server, tmp_path, 2, max_retries=2)
    task = report["tasks"][0]
    assert task["status"] == "failed" and "malformed" in task["reason"]
    # malformed answers count as billed: three reservations of (40 * 1.1 + 16 input + 100 output) tokens
    assert report["spent_usd"] == pytest.approx(3 * (60e-6 + 200e-6))


@pytest.mark.parametrize("status, headers, wait_s", [
    (429, {"Retry-After": "1"}, 1.0),
    (503, {"Retry-After": "1"}, 1.0),
    (500, {"Retry-After": "1"}, 1.0),
    (503, {"retry-after-ms": "1200"}, 1.2),
    (502, {"Retry-After": "0", "retry-after-ms": "900"}, 0.9),  # both sent: the longer wait wins
])
def test_retry_after_is_honoured_on_every_status(server, tmp_path, status, headers, wait_s):
    """Retries once arrived 0.4-0.6 s after a 503 that asked for 1 s: only 429 read the header."""
    server.scripts["primary"] = [(status, headers, {"error": {"message": "busy"}})]
    report = run(server, tmp_path, 2)
    task = report["tasks"][0]
    assert task["status"] == "done" and task["model"] == "local/primary" and task["attempts"] == 2
    first, second = [r["t"] for r in server.requests if r["model"] == "primary"][:2]
    assert second - first >= wait_s  # the backoff is 0.01-0.05 s: only the header explains the gap


def test_retry_after_headers_wherever_litellm_keeps_them():
    """classify reads the header from the response, litellm's mapped headers or exc.headers."""
    import httpx

    from planner.executor.classify import classify

    class Err(Exception):
        status_code = 503

    via_response, via_mapped, via_attr = Err("a"), Err("b"), Err("c")
    via_response.response = httpx.Response(503, headers={"Retry-After": "7"})  # type: ignore[attr-defined]
    via_mapped.litellm_response_headers = httpx.Headers({"retry-after-ms": "2500"})  # type: ignore[attr-defined]
    via_attr.headers = {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}  # type: ignore[attr-defined]
    assert classify(via_response).retry_after_s == 7
    assert classify(via_mapped).retry_after_s == 2.5
    assert classify(via_attr).retry_after_s > 1e9  # an HTTP date far ahead
    assert classify(Err("none")).retry_after_s is None
