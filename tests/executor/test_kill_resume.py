"""A real run killed with SIGKILL mid-flight, then resumed: nothing lost, nothing paid twice."""

from __future__ import annotations

import json
import signal

from .helpers import check_run, cli_command, done_count, ledger_facts, rerun_cli, start_cli
from .plans import make_plan

BUDGET_USD = 0.5


def test_sigkill_mid_run_then_resume(tmp_path):
    plan_path = make_plan(80, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", "0.02",
                      "--concurrency", "6", "--fail-rate", "0.2", "--seed", "3")
    proc = start_cli(cmd, until=lambda: done_count(out / "ledger.sqlite") >= 15)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = ledger_facts(out)
    assert "inflight" in killed["attempt_states"]  # it really died with calls in flight
    done_at_kill = {t for t, s in killed["statuses"].items() if s == "done"}
    assert 15 <= len(done_at_kill) < 80
    ok_at_kill = {t: 1 for t in killed["ok_per_task"]}

    rerun = rerun_cli([*cmd, "--resume"])
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
    again = rerun_cli(cli_command("report", out), timeout_s=60)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "report.json").read_text())["totals"] == report["totals"]
