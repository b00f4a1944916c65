"""A run killed with SIGKILL mid-cascade, then resumed: every task ends once, nothing is paid twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.cascades.plans import cascade_plan, check_cascade_run
from tests.executor.helpers import live_count

BUDGET_USD = 0.5


def _stages(ledger) -> dict[tuple[str, int], str]:
    import sqlite3

    conn = sqlite3.connect(ledger)
    try:
        return {(t, i): o for t, i, o in conn.execute("SELECT task_id, idx, output FROM cascade_stages")}
    finally:
        conn.close()


def test_sigkill_mid_cascade_then_resume(tmp_path):
    plan_path = cascade_plan(40, ("agree", "self_consistency", "judge"), p_accept=0.5,
                             budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    cmd = [sys.executable, "-m", "planner.cli", "run", str(plan_path), "--out", str(out), "--simulate",
           "--time-scale", "0.03", "--concurrency", "6", "--fail-rate", "0.2", "--seed", "3"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # a loaded machine starts slowly
    # wait until some cascades are done and others are between their stages, with calls in flight
    mid = ("SELECT COUNT(*) FROM tasks t WHERE t.status <> 'done' AND EXISTS "
           "(SELECT 1 FROM cascade_stages s WHERE s.task_id = t.task_id)")
    while not (live_count(ledger, "SELECT COUNT(*) FROM tasks WHERE status='done'") >= 8
               and live_count(ledger, mid) >= 1
               and live_count(ledger, "SELECT COUNT(*) FROM attempts WHERE state='inflight'") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got mid-cascade"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stored = _stages(ledger)
    mid_tasks = live_count(ledger, mid)
    assert mid_tasks >= 1 and stored
    inflight = live_count(ledger, "SELECT COUNT(*) FROM attempts WHERE state='inflight'")

    rerun = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    facts = check_cascade_run(out, BUDGET_USD)  # ended once; each stage answered once; cost = its calls
    assert set(facts["statuses"]) == {a.task_id for a in cascade_plan(40).assignments}
    after = _stages(ledger)
    assert all(after[k] == v for k, v in stored.items())  # a stage answered before the kill is never re-asked
    assert facts["states"].get("lost", 0) == inflight  # in flight at the kill: counted at its reservation
    assert "resumed" in rerun.stdout


def test_ctrl_c_mid_cascade_then_resume(tmp_path):
    """Ctrl-C: calls in flight finish within the grace period, no new stage starts, the run
    exits 130; --resume finishes every task from the stages it has."""
    from tests.executor.helpers import cli_command, rerun_cli, start_cli

    plan_path = cascade_plan(30, ("agree", "judge", "self_consistency"), p_accept=0.4,
                             budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    ledger = out / "ledger.sqlite"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", "0.03", "--concurrency", "4",
                      "--seed", "8")
    mid = ("SELECT COUNT(*) FROM tasks t WHERE t.status <> 'done' AND EXISTS "
           "(SELECT 1 FROM cascade_stages s WHERE s.task_id = t.task_id)")
    proc = start_cli(cmd, until=lambda: live_count(ledger, "SELECT COUNT(*) FROM tasks WHERE status='done'") >= 4
                     and live_count(ledger, mid) >= 1, timeout_s=300, what="the run never got mid-cascade")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert live_count(ledger, "SELECT COUNT(*) FROM tasks WHERE status <> 'done'") >= 1  # really stopped mid-run
    stored = _stages(ledger)
    rerun = rerun_cli([*cmd, "--resume"], timeout_s=180)
    assert rerun.returncode == 0, rerun.stderr
    facts = check_cascade_run(out, BUDGET_USD)
    assert set(facts["statuses"].values()) <= {"done", "queued"}
    after = _stages(ledger)
    assert all(after[k] == v for k, v in stored.items())
