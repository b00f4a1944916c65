"""A real run killed with SIGKILL mid-flight, then resumed: nothing lost, nothing paid twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from .helpers import check_run, done_count, ledger_facts
from .plans import make_plan

BUDGET_USD = 0.5


def test_sigkill_mid_run_then_resume(tmp_path):
    plan_path = make_plan(80, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "planner.cli", "run", str(plan_path), "--out", str(out), "--simulate",
           "--time-scale", "0.02", "--concurrency", "6", "--fail-rate", "0.2", "--seed", "3"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while done_count(out / "ledger.sqlite") < 15:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = ledger_facts(out)
    assert "inflight" in killed["attempt_states"]  # it really died with calls in flight
    done_at_kill = {t for t, s in killed["statuses"].items() if s == "done"}
    assert 15 <= len(done_at_kill) < 80
    ok_at_kill = {t: 1 for t in killed["ok_per_task"]}

    rerun = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    report = check_run(out, BUDGET_USD)  # every task ended once, spend == ledger, within budget
    after = ledger_facts(out)
    assert set(after["statuses"]) == set(killed["statuses"])  # no task lost
    assert all(after["statuses"][t] == "done" for t in done_at_kill)
    assert all(after["ok_per_task"][t] == 1 for t in ok_at_kill)  # none run twice after success
    # what was in flight at the kill is counted at its reservation, never forgotten
    assert after["attempt_states"].get("lost", 0) == killed["attempt_states"]["inflight"]
    assert after["spent_pusd"] >= killed["spent_pusd"]
    assert report["totals"]["lost_attempts"] == killed["attempt_states"]["inflight"]
    assert "resumed" in rerun.stdout
    # the report can be rebuilt from the ledger alone and says the same
    again = subprocess.run([sys.executable, "-m", "planner.cli", "report", str(out)], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "report.json").read_text())["totals"] == report["totals"]
