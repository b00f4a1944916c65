"""QA pass 2: Ctrl-C (SIGINT) during `routeplan run` exits 130 and says how to resume.

typer >= 0.29 turns KeyboardInterrupt into Exit(130) and, outside standalone mode, returns
the code; planner.cli.main dropped it, so an interrupted run exited 0 and printed nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.executor.helpers import check_run, done_count, ledger_facts
from tests.executor.plans import make_plan

BUDGET_USD = 0.5


def test_sigint_mid_run_exits_130_then_resume_finishes(tmp_path):
    plan_path = make_plan(40, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "planner.cli", "run", str(plan_path), "--out", str(out), "--simulate",
           "--time-scale", "0.05", "--concurrency", "4", "--seed", "5"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while done_count(out / "ledger.sqlite") < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (stdout, stderr)
    assert "--resume" in stderr and "interrupted" in stderr
    stopped = ledger_facts(out)
    assert any(s != "done" for s in stopped["statuses"].values())  # really stopped mid-run

    rerun = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=120)
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
    """A resumed run said 'simulated (--simulate)' although nobody passed --simulate."""
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
