"""A live `routeplan run` with a batch job, through the loopback server, killed with SIGKILL at
each point of the job's life (before its upload, between upload and create, after create,
while polling) or stopped with Ctrl-C, then resumed: every task ends once, no job is
submitted twice, an upload left without a batch is found again, spend stays within budget."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner.executor import RetryPolicy, RunOptions, run_plan

from .helpers import check_run, live_count
from .loopback import LoopbackServer
from .plans import make_batch_plan

FAKE_KEY = "sk-routeplan-FAKE-kill-0123456789"
BUDGET_USD = 0.5
N_TASKS = 8


@pytest.fixture
def server():
    s = LoopbackServer(batch_complete_s=0.3).start()
    yield s
    s.stop()


def start(server: LoopbackServer, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    plan_path = make_batch_plan(N_TASKS, api_base=server.api_base, api_key_env="RP_TEST_KEY",
                                budget_usd=BUDGET_USD).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "planner.cli", "run", str(plan_path), "--out", str(out), "--live",
           "--batch-poll", "0.05", "--concurrency", "4"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RP_TEST_KEY": FAKE_KEY}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, plan_path, out


def wait_for(proc: subprocess.Popen, what, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def job_rows(out: Path) -> list[tuple]:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        return list(conn.execute("SELECT state, input_file_id, batch_id FROM batch_jobs ORDER BY created_at"))
    finally:
        conn.close()


def resume(server: LoopbackServer, plan_path: Path, out: Path, monkeypatch) -> dict:
    """The kill's resume, in this process (the key in the environment as before)."""
    monkeypatch.setenv("RP_TEST_KEY", FAKE_KEY)
    result = run_plan(plan_path, out, RunOptions(mode="live", resume=True, progress=False, batch_poll_s=0.05,
                                                 batch_poll_max_s=0.2, retry=RetryPolicy(base_s=0.01)))
    assert result.counts == {"done": N_TASKS}, result.counts
    report = check_run(out, BUDGET_USD)  # every task ended once, spend == ledger, within budget
    assert {t["model"] for t in report["tasks"]} == {"openai/gpt-4o-mini@batch"}
    return report


def steps(server: LoopbackServer, step: str) -> int:
    return sum(c["step"] == step for c in server.api_calls)


@pytest.mark.parametrize("point", ["before upload", "between upload and create", "after create",
                                   "while polling"])
def test_sigkill_at_each_point_of_a_batch_job_then_resume(server, tmp_path, monkeypatch, point):
    if point == "before upload":
        server.holds = {"upload": "before"}  # the upload never reaches the server
    elif point == "between upload and create":
        server.holds = {"upload": "after"}  # stored, but the answer (the file id) is lost
    elif point == "after create":
        server.holds = {"create": "after"}  # created, but the answer (the batch id) is lost
    else:
        server.batch_complete_s = 30.0
    proc, plan_path, out = start(server, tmp_path)
    if point == "while polling":
        wait_for(proc, lambda: steps(server, "retrieve") >= 2)
    else:
        wait_for(proc, lambda: server.held.get(next(iter(server.holds)), 0) >= 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    server.release()  # held requests end (their client is gone)

    (killed,) = job_rows(out)  # the job was recorded before anything was sent
    expected_state = {"before upload": "prepared", "between upload and create": "prepared",
                      "after create": "creating", "while polling": "submitted"}[point]
    assert killed[0] == expected_state, killed
    assert (killed[1] is not None) == (point in ("after create", "while polling"))
    assert (killed[2] is not None) == (point == "while polling")
    assert live_count(out / "ledger.sqlite", "SELECT COUNT(*) FROM attempts WHERE state='inflight'") == N_TASKS

    server.holds = {}
    server.batch_complete_s = 0.3
    report = resume(server, plan_path, out, monkeypatch)
    assert len(server.batches) == 1, server.batches  # never submitted twice
    assert steps(server, "create") == 1
    (stored,) = server.live_files().values()  # one request file: an orphan upload was adopted
    assert steps(server, "upload") == (2 if point == "before upload" else 1)
    (batch,) = server.batches.values()
    (job,) = report["batch_jobs"]
    assert (job["state"], job["input_file_id"], job["batch_id"]) == ("completed", stored["id"], batch["id"])
    assert batch["input_file_id"] == stored["id"] and job["n_done"] == N_TASKS
    assert report["totals"]["lost_attempts"] == 0  # a batch request is never written off: it is found


def test_ctrl_c_cancels_the_job_and_a_resume_runs_the_rest(server, tmp_path, monkeypatch):
    server.batch_complete_s, server.cancel_done = 60.0, 3
    proc, plan_path, out = start(server, tmp_path)
    wait_for(proc, lambda: steps(server, "retrieve") >= 1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert "--resume" in stderr and "Traceback" not in stderr
    assert steps(server, "cancel") == 1
    (cancelled,) = job_rows(out)
    assert cancelled[0] == "cancelled"
    conn = sqlite3.connect(out / "ledger.sqlite")
    statuses = dict(conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"))
    conn.close()
    assert statuses == {"done": 3, "pending": N_TASKS - 3}  # what it answered is kept

    server.batch_complete_s = 0.3
    report = resume(server, plan_path, out, monkeypatch)
    first, second = report["batch_jobs"]
    assert (first["state"], first["n_done"], first["n_requests"]) == ("cancelled", 3, N_TASKS)
    assert (second["state"], second["n_done"], second["n_requests"]) == ("completed", N_TASKS - 3, N_TASKS - 3)
    assert len(server.batches) == 2  # the rest in a new job; nothing sent twice
    conn = sqlite3.connect(out / "ledger.sqlite")
    per_task = dict(conn.execute("SELECT task_id, COUNT(*) FROM attempts WHERE state='ok' GROUP BY task_id"))
    cancelled_requests = conn.execute("SELECT COUNT(*) FROM attempts WHERE state='cancelled'").fetchone()[0]
    conn.close()
    assert len(per_task) == N_TASKS and set(per_task.values()) == {1}
    assert cancelled_requests == N_TASKS - 3 and report["spent_usd"] == pytest.approx(
        sum(t["actual_cost_usd"] for t in report["tasks"]))
