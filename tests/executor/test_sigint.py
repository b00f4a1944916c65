"""Ctrl-C (SIGINT) during `routeplan run` exits 130 and says how to resume; the CLI's entry
point passes on the exit code typer returns; a resumed run keeps the reason it was simulated.
"""

from __future__ import annotations

import signal

from tests.executor.helpers import (
    check_run,
    cli_command,
    done_count,
    ledger_facts,
    rerun_cli,
    start_cli,
)
from tests.executor.plans import make_plan

BUDGET_USD = 0.5


def test_sigint_mid_run_exits_130_then_resume_finishes(tmp_path):
    plan_path = make_plan(40, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", "0.05",
                      "--concurrency", "4", "--seed", "5")
    proc = start_cli(cmd, until=lambda: done_count(out / "ledger.sqlite") >= 3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (stdout, stderr)
    assert "--resume" in stderr and "interrupted" in stderr
    stopped = ledger_facts(out)
    assert any(s != "done" for s in stopped["statuses"].values())  # really stopped mid-run

    rerun = rerun_cli([*cmd, "--resume"])
    assert rerun.returncode == 0, rerun.stderr
    check_run(out, BUDGET_USD)
    assert all(s in ("done", "queued") for s in ledger_facts(out)["statuses"].values())


def test_cli_main_passes_on_a_returned_exit_code(monkeypatch):
    import pytest

    from planner import cli

    monkeypatch.setattr(cli, "app", lambda **_: 3)
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 3


def test_resume_keeps_the_reason_the_run_was_simulated(tmp_path, monkeypatch):
    """A resumed run gives the reason the first run was simulated (no keys), not --simulate."""
    from planner.executor import RunOptions, run_plan

    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):  # never call a provider
        monkeypatch.delenv(key, raising=False)

    plan = make_plan(3, budget_usd=BUDGET_USD)
    out = tmp_path / "run"
    first = run_plan(plan, out, RunOptions(mode="auto"))  # no keys: simulated, and it says why
    assert first.simulated and "--simulate" not in first.mode_reason
    again = run_plan(plan, out, RunOptions(mode="auto", resume=True))
    assert again.simulated and again.mode_reason == first.mode_reason
    assert "--simulate" not in (out / "report.md").read_text()
