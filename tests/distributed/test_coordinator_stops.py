"""The coordinator of ``routeplan run --workers 2`` (the routeplan process itself, which
starts its local Ray) killed with SIGKILL, or stopped with Ctrl-C, mid-run; then resumed:
every task ends once, nothing is paid twice, spend never goes above the budget."""

from __future__ import annotations

import signal
import sqlite3

import pytest

from tests.executor.helpers import (
    check_run,
    cli_command,
    done_count,
    ledger_facts,
    rerun_cli,
    start_cli,
)
from tests.executor.plans import make_plan

pytestmark = pytest.mark.xdist_group("ray")

BUDGET_USD = 0.4


def _command(tmp_path, n_tasks: int):
    """The run (on 2 workers), and the same run resumed. Each start of a local Ray costs
    seconds: the runs are short (time-scale 0.002; a simulated timeout lasts 1.2 s)."""
    plan_path = make_plan(n_tasks, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", "0.002",
                      "--concurrency", "6", "--fail-rate", "0.2", "--seed", "3")
    return out, [*cmd, "--workers", "2"], cmd


def test_coordinator_killed_mid_run_then_resumed(tmp_path, no_ray_left_behind):
    out, cmd, _ = _command(tmp_path, 120)
    proc = start_cli(cmd, until=lambda: done_count(out / "ledger.sqlite") >= 20, timeout_s=180)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = ledger_facts(out)
    assert "inflight" in killed["attempt_states"]  # the workers' grants (and calls) were held
    done_at_kill = {t for t, s in killed["statuses"].items() if s == "done"}
    assert 20 <= len(done_at_kill) < 120

    rerun = rerun_cli([*cmd, "--resume"], timeout_s=240)
    assert rerun.returncode == 0, rerun.stderr
    check_run(out, BUDGET_USD)  # every task ended once, spend == ledger, within the budget
    after = ledger_facts(out)
    assert set(after["statuses"]) == set(killed["statuses"])  # no task lost
    assert all(after["statuses"][t] == "done" for t in done_at_kill)  # never run again
    assert all(n == 1 for n in after["ok_per_task"].values())  # nothing paid twice for an answer
    # what the dead coordinator's workers held counts as spent, never forgotten
    assert after["attempt_states"].get("lost", 0) >= killed["attempt_states"]["inflight"]
    assert after["attempt_states"].get("inflight", 0) == 0
    assert after["spent_pusd"] >= killed["spent_pusd"]
    assert "resumed" in rerun.stdout


def test_ctrl_c_stops_cleanly_then_resumes(tmp_path, no_ray_left_behind):
    """Ctrl-C: no new calls, the workers give back every grant but what their calls in flight
    reserved (what is held at the end covers calls in flight, not blocks); --resume (here in
    one process) finishes the run."""
    out, cmd, one_process = _command(tmp_path, 160)
    proc = start_cli([*cmd, "--grace", "5"], until=lambda: done_count(out / "ledger.sqlite") >= 10,
                     timeout_s=180)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "--resume" in stderr and "interrupted" in stderr
    assert "Traceback" not in stderr
    stopped = ledger_facts(out)
    assert any(s != "done" for s in stopped["statuses"].values())  # really stopped mid-run
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        held = conn.execute("SELECT COALESCE(SUM(reserved_pusd), 0) FROM attempts "
                            "WHERE purpose='grant' AND state='inflight'").fetchone()[0]
    assert held <= BUDGET_USD * 10**12 / 100  # calls' worst cases (~4e-5 USD each), not blocks

    rerun = rerun_cli([*one_process, "--resume"], timeout_s=240)
    assert rerun.returncode == 0, rerun.stderr
    check_run(out, BUDGET_USD)
    after = ledger_facts(out)
    assert all(s in ("done", "queued", "failed") for s in after["statuses"].values())
    assert all(n == 1 for n in after["ok_per_task"].values())
