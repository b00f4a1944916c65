"""Ctrl-C on a real `routeplan run` process: the first stops sending and waits for the calls in
flight (their real cost recorded, nothing written off); a second Ctrl-C, or the end of
--grace, writes off what is left at its worst case, as kill -9 would."""

from __future__ import annotations

import signal
import time

import pytest

from .helpers import check_run, cli_command, inflight_count, ledger_facts, start_cli
from .plans import make_plan

BUDGET_USD = 0.5


def start(tmp_path, time_scale: str, *extra: str):
    plan_path = make_plan(40, budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = cli_command("run", plan_path, "--out", out, "--simulate", "--time-scale", time_scale,
                      "--concurrency", "4", "--seed", "5", *extra)
    proc = start_cli(cmd, until=lambda: inflight_count(out / "ledger.sqlite") >= 2)
    return proc, out


def resume(out):
    """Resume in this process (no second start-up), without waiting: --time-scale 0 given
    explicitly overrides the run's own, which a bare --resume keeps."""
    from planner.executor import RunOptions, run_plan

    result = run_plan(out.parent / "plan.json", out, RunOptions(mode="simulate", resume=True, time_scale=0,
                                                                progress=False))
    assert result.counts.get("pending", 0) == 0
    return check_run(out, BUDGET_USD)


def test_first_ctrl_c_waits_for_the_calls_in_flight(tmp_path):
    proc, out = start(tmp_path, "0.2")  # calls take ~0.3-1 s
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "waiting up to 10 s for" in stderr and "Ctrl-C again to stop now" in stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    stopped = ledger_facts(out)
    assert "inflight" not in stopped["attempt_states"]  # each answered and was recorded at its cost
    assert any(s != "done" for s in stopped["statuses"].values())  # stopped sending
    report = resume(out)
    assert report["totals"]["lost_attempts"] == 0  # nothing written off at worst case


@pytest.mark.parametrize("how", ["second Ctrl-C", "grace ends"])
def test_second_ctrl_c_or_the_end_of_grace_writes_off_what_is_left(tmp_path, how):
    extra = ("--grace", "0.3") if how == "grace ends" else ()
    proc, out = start(tmp_path, "3", *extra)  # calls take seconds
    proc.send_signal(signal.SIGINT)
    if how == "second Ctrl-C":
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "written off at their reserved worst case" in stderr and "Traceback" not in stderr
    stopped = ledger_facts(out)
    n = stopped["attempt_states"].get("inflight", 0)
    assert n >= 1
    if how == "second Ctrl-C":
        report = resume(out)
        assert report["totals"]["lost_attempts"] == n
