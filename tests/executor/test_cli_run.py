"""``routeplan run`` / ``routeplan report`` from the command line."""

from __future__ import annotations

import json

import pytest

from planner.cli import main

from .plans import make_plan

FAKE_OPENAI_KEY = "sk-proj-FAKEFAKEFAKE-1234567890"
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY")


@pytest.fixture
def no_keys(monkeypatch):
    for k in PROVIDER_KEYS:
        monkeypatch.delenv(k, raising=False)


def cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_live_without_keys_is_exit_2_with_one_line(tmp_path, capsys, no_keys):
    plan = make_plan(3).save(tmp_path / "plan.json")
    code = cli(["run", str(plan), "--out", str(tmp_path / "out"), "--live"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "OPENAI_API_KEY" in err and "--live" in err
    assert not (tmp_path / "out").exists()  # nothing was simulated instead


def test_default_without_keys_simulates_and_says_so(tmp_path, capsys, no_keys):
    plan = make_plan(4, budget_usd=1.0).save(tmp_path / "plan.json")
    assert cli(["run", str(plan), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SIMULATED run")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["simulated"] is True
    assert cli(["run", str(plan), "--out", str(tmp_path / "out")]) == 2  # existing ledger, no --resume


def test_fake_key_never_written(tmp_path, capsys, monkeypatch, no_keys):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    plan = make_plan(6, budget_usd=1.0).save(tmp_path / "plan.json")
    out = tmp_path / "out"
    assert cli(["run", str(plan), "--out", str(out), "--fail-rate", "0.5", "--seed", "1"]) == 0
    assert cli(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert FAKE_OPENAI_KEY not in captured.out + captured.err
    files = list(out.iterdir())
    assert {p.name for p in files} >= {"ledger.sqlite", "report.md", "report.json", "tasks.csv",
                                       "cost_by_model.png", "outputs.jsonl"}
    for path in files:
        assert FAKE_OPENAI_KEY.encode() not in path.read_bytes(), path


def test_bad_options_are_exit_2(tmp_path, capsys):
    plan = make_plan(2).save(tmp_path / "plan.json")
    assert cli(["run", str(plan), "--fail-rate", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert cli(["run", str(tmp_path / "missing.json")]) == 2
    assert cli(["run", str(plan), "--simulate", "--live"]) == 2
    assert cli(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--fail-rate" in err


def test_a_plan_with_every_task_queued_is_not_called_live(tmp_path, capsys, monkeypatch, no_keys):
    """Nothing to call is not a live run, even with every key set (it once said 'LIVE')."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    from tests.conftest import DEMO

    plan = tmp_path / "plan.json"
    assert cli(["solve", str(DEMO), "--budget", "0", "--allow-queue", "-o", str(plan)]) == 0
    capsys.readouterr()
    assert cli(["run", str(plan), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith("SIMULATED run")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["simulated"] is True and report["totals"]["n_queued"] == 7
