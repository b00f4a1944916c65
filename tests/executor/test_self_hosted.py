"""A self-hosted OpenAI-compatible server that wants a key, configured from a catalog file:
``api_key_env`` and ``extra_headers`` name environment variables, never hold values."""

from __future__ import annotations

import json

import pytest

from .loopback import LoopbackServer

KEY = "sk-selfhosted-FAKE-5555555555"
TEAM = "team-token-FAKE-4444444444"

TASKS = """tasks:
  - {id: a, type: summarize, prompt: "Summarise: the plan routes tasks.", input_tokens: 12, expected_output_tokens: 20}
  - {id: b, type: translate, prompt: "Translate to French: good morning.", input_tokens: 10, expected_output_tokens: 8}
"""


def catalog_yaml(api_base: str, key_env: str = "RP_SELFHOSTED_KEY", header_env: str = "RP_TEAM_TOKEN") -> str:
    return f"""models:
  - id: openai/selfhosted
    provider: local
    api_base: {api_base}
    api_key_env: {key_env}
    extra_headers: {{X-Team-Token: {header_env}}}
    input_cost_per_token: 0.0000001
    output_cost_per_token: 0.0000002
    ttft_s: 0.1
    output_tokens_per_s: 100
    quality: {{default: 0.9}}
    batch: false
    sources: {{price: our own server}}
"""


@pytest.fixture
def server():
    s = LoopbackServer(required_headers={"Authorization": f"Bearer {KEY}", "X-Team-Token": TEAM}).start()
    yield s
    s.stop()


def test_a_server_that_needs_a_key_gets_it(server, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("RP_SELFHOSTED_KEY", KEY)
    monkeypatch.setenv("RP_TEAM_TOKEN", TEAM)
    (tmp_path / "cat.yaml").write_text(catalog_yaml(server.api_base))
    (tmp_path / "tasks.yaml").write_text(TASKS)
    plan = tmp_path / "plan.json"
    code, _, err = run_cli("solve", tmp_path / "tasks.yaml", "--catalog", tmp_path / "cat.yaml", "-o", plan)
    assert code == 0, err
    assert KEY not in plan.read_text() and TEAM not in plan.read_text()  # names only in the plan
    code, out, err = run_cli("run", plan, "-o", tmp_path / "run", "--live")
    assert code == 0, err
    assert out.startswith("LIVE run") and "2 done, 0 failed" in out
    assert len(server.requests) == 2  # both accepted: the 401 would have failed the tasks
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["simulated"] is False and report["totals"]["n_done"] == 2
    for path in (tmp_path / "run").iterdir():
        assert KEY.encode() not in path.read_bytes() and TEAM.encode() not in path.read_bytes(), path


def test_a_missing_header_variable_is_named_before_any_call(server, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("RP_SELFHOSTED_KEY", KEY)
    monkeypatch.delenv("RP_TEAM_TOKEN", raising=False)
    (tmp_path / "cat.yaml").write_text(catalog_yaml(server.api_base))
    (tmp_path / "tasks.yaml").write_text(TASKS)
    plan = tmp_path / "plan.json"
    assert run_cli("solve", tmp_path / "tasks.yaml", "--catalog", tmp_path / "cat.yaml", "-o", plan)[0] == 0
    code, _, err = run_cli("run", plan, "-o", tmp_path / "run", "--live")
    assert code == 2 and "RP_TEAM_TOKEN" in err and err.count("\n") == 1, err
    assert not server.requests and not (tmp_path / "run").exists()


@pytest.mark.parametrize("key_env, header_env, expected", [
    (KEY, "RP_TEAM_TOKEN", "field api_key_env: expected the NAME of an environment variable"),
    ("RP_SELFHOSTED_KEY", TEAM, "header X-Team-Token: expected the NAME of an environment variable"),
    ("RP_SELFHOSTED_KEY", "AKIAIOSFODNN7EXAMPLE", "never the key itself"),  # upper case, but a key
    ("rp-lower-key", "RP_TEAM_TOKEN", "field api_key_env"),
])
def test_a_literal_key_in_a_catalog_is_refused_without_echoing_it(tmp_path, run_cli, key_env, header_env,
                                                                   expected):
    (tmp_path / "cat.yaml").write_text(catalog_yaml("http://127.0.0.1:9/v1", key_env, header_env))
    (tmp_path / "tasks.yaml").write_text(TASKS)
    code, out, err = run_cli("solve", tmp_path / "tasks.yaml", "--catalog", tmp_path / "cat.yaml", "-o", "-")
    assert code == 2 and expected in err, err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err
    for secret in (KEY, TEAM, "AKIAIOSFODNN7EXAMPLE", "rp-lower-key"):
        assert secret not in out + err
