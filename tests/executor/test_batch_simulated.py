"""The simulator runs batch jobs on its clock: completion at a drawn time within the window,
--time-scale applies, injected failed lines and expiry fall back to realtime, a killed
simulated job is resumed by id from the simulated provider's storage, and the report says
simulated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from planner.executor import RunOptions, run_plan

from .helpers import check_run, live_count
from .plans import make_batch_plan

WINDOW_S = 86400.0


def simulate(tmp_path, n=20, name="out", **kw):
    plan = make_batch_plan(n, budget_usd=kw.pop("budget_usd", 1.0), deadline_s=kw.pop("deadline_s", None))
    out = tmp_path / name
    result = run_plan(plan, out, RunOptions(mode="simulate", progress=False, **kw))
    assert result.simulated
    return check_run(out, 1.0), result


def test_a_simulated_job_ends_at_a_drawn_time_within_its_window(tmp_path):
    report, _ = simulate(tmp_path)
    assert report["simulated"] is True
    (job,) = report["batch_jobs"]
    assert job["state"] == "completed" and job["n_done"] == 20 and job["batch_id"].startswith("sim-batch-")
    assert 0 < job["waited_s"] < WINDOW_S
    assert {t["model"] for t in report["tasks"]} == {"openai/gpt-4o-mini@batch"}
    assert job["actual_cost_usd"] == pytest.approx(report["spent_usd"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Batch jobs (simulated)" in md and "simulated provider's batch API" in md
    again, _ = simulate(tmp_path, name="again")  # the same seed draws the same job
    assert again["batch_jobs"][0]["waited_s"] == job["waited_s"]
    assert again["spent_usd"] == report["spent_usd"]


def test_time_scale_applies_to_a_job_s_wait(tmp_path):
    report, _ = simulate(tmp_path, name="virtual")  # time scale 0: the wait is virtual
    drawn = drawn_duration_s(tmp_path / "virtual")
    assert 0 < drawn < report["batch_jobs"][0]["waited_s"] + 1
    scale = 0.4 / drawn  # about 0.4 s of real waiting
    t0 = time.monotonic()
    scaled, _ = simulate(tmp_path, name="scaled", time_scale=scale, batch_poll_s=60, batch_poll_max_s=600)
    wall = time.monotonic() - t0
    assert drawn_duration_s(tmp_path / "scaled") == drawn  # the same draw, waited for in real time
    assert wall >= drawn * scale * 0.95
    assert scaled["batch_jobs"][0]["state"] == "completed"


def drawn_duration_s(out) -> float:
    """The completion time the simulated provider drew for the run's (one) job."""
    (batch,) = json.loads((out / "sim-batches" / "state.json").read_text())["batches"].values()
    return batch["due_s"] - batch["created_s"]


def test_injected_failed_lines_and_expiry_fall_back_to_realtime(tmp_path):
    states = set()
    for seed in range(6):
        report, _ = simulate(tmp_path, name=f"s{seed}", fail_rate=0.4, seed=seed)
        (job,) = report["batch_jobs"]
        states.add(job["state"])
        on_batch = [t for t in report["tasks"] if t["status"] == "done" and t["model"].endswith("@batch")]
        assert len(on_batch) == job["n_done"] and job["n_done"] + job["n_failed"] == 20
        if job["state"] == "expired":
            assert WINDOW_S <= job["waited_s"] <= WINDOW_S + 600  # seen at the first poll after its end
        assert job["n_failed"] > 0
        fell_back = [t for t in report["tasks"] if not (t["model"] or "").endswith("@batch")]
        assert len(fell_back) == job["n_failed"]  # each failed request went on, realtime
    assert states == {"completed", "expired"}


def test_a_deadline_shorter_than_the_window_runs_batch_tasks_realtime(tmp_path):
    report, _ = simulate(tmp_path, deadline_s=3600)
    assert report["batch_jobs"] == []
    assert {t["model"] for t in report["tasks"]} == {"openai/gpt-4o-mini"}


def test_a_killed_simulated_job_is_resumed_by_id(tmp_path):
    plan_path = make_batch_plan(12, budget_usd=1.0).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "planner.cli", "run", str(plan_path), "--out", str(out), "--simulate",
           "--time-scale", "0.01", "--batch-poll", "60"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while live_count(out / "ledger.sqlite", "SELECT COUNT(*) FROM batch_jobs WHERE polls >= 2") < 1:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job was never polled"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    result = run_plan(plan_path, out, RunOptions(mode="simulate", resume=True, time_scale=0, progress=False))
    assert result.counts == {"done": 12}
    report = check_run(out, 1.0)
    (job,) = report["batch_jobs"]
    assert job["state"] == "completed" and job["n_done"] == 12
    state = json.loads((out / "sim-batches" / "state.json").read_text())
    assert len(state["batches"]) == 1  # adopted by id, not submitted again


@pytest.mark.parametrize("time_scale", [0.0, 1e-5])
def test_a_deadline_equal_to_the_window_sends_the_batch_tasks_as_a_job(tmp_path, time_scale):
    """The plan admits a batch offering whose window fits the deadline from the run's start;
    the run's own start-up (scaled up 100,000 times at --time-scale 1e-5) must not undo that."""
    report, _ = simulate(tmp_path, deadline_s=WINDOW_S, time_scale=time_scale)
    (job,) = report["batch_jobs"]
    assert job["state"] == "completed" and job["n_done"] == 20
    assert {t["model"] for t in report["tasks"]} == {"openai/gpt-4o-mini@batch"}
    assert all(t["status"] == "done" for t in report["tasks"])


def test_a_job_counts_as_submitted_at_the_start_only_within_the_start_slack():
    from planner.executor.batch_jobs import START_SLACK_S, RunTime
    from planner.executor.clock import Clock

    fresh = RunTime(Clock(1.0), simulated=False, meta={"started_at": repr(time.time())})
    assert fresh.submission_fits(WINDOW_S, WINDOW_S)
    assert fresh.submission_fits(WINDOW_S, None)
    assert not fresh.submission_fits(WINDOW_S, WINDOW_S - 1)
    resumed = RunTime(Clock(1.0), simulated=False, meta={"started_at": repr(time.time() - 2 * START_SLACK_S)})
    assert not resumed.submission_fits(WINDOW_S, WINDOW_S)
    assert resumed.submission_fits(WINDOW_S, WINDOW_S + 3 * START_SLACK_S)
    carried = RunTime(Clock(0.0), simulated=True, meta={"sim_elapsed_s": "7200"})
    assert not carried.submission_fits(WINDOW_S, WINDOW_S) and carried.submission_fits(3600, WINDOW_S)
