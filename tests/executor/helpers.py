"""Shared by the executor's tests: what the ledger says against the report, and `routeplan`
run in a child process (to be killed or interrupted mid-run)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def cli_env() -> dict[str, str]:
    """The child's environment: this process's (as the test set it) with litellm's bundled price
    map (no network)."""
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def cli_command(*args: object) -> list[str]:
    """``routeplan ARGS`` as the argv of a child process."""
    return [sys.executable, "-m", "planner.cli", *(str(a) for a in args)]


def start_cli(cmd: Sequence[str], until: Callable[[], bool], *, timeout_s: float = 120,
              what: str = "the run never got going") -> subprocess.Popen[str]:
    """Start ``cmd`` (SIGINT at its default, as in a terminal, so Ctrl-C can be sent) and
    return once ``until()`` holds; fails if the child exits or ``timeout_s`` passes first."""
    proc = subprocess.Popen(list(cmd), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout_s
    while not until():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return proc


def rerun_cli(cmd: Sequence[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to its end (a resume, a report) with the same environment."""
    return subprocess.run(list(cmd), env=cli_env(), capture_output=True, text=True, timeout=timeout_s)


def ledger_facts(out: Path) -> dict:
    conn = sqlite3.connect(out / "ledger.sqlite")
    try:
        statuses = dict(conn.execute("SELECT task_id, status FROM tasks"))
        # answer attempts (a judge's calls, purpose 'grade', are grading cost, not the task's)
        ok_per_task = dict(conn.execute(
            "SELECT task_id, COUNT(*) FROM attempts WHERE state='ok' AND purpose='answer' GROUP BY task_id"))
        spent = conn.execute("SELECT COALESCE(SUM(CASE WHEN state='inflight' THEN reserved_pusd "
                             "ELSE cost_pusd END), 0) FROM attempts").fetchone()[0]
        task_cost = dict(conn.execute("SELECT task_id, cost_pusd FROM tasks"))
        attempt_cost = dict(conn.execute("SELECT task_id, SUM(cost_pusd) FROM attempts WHERE purpose='answer' "
                                         "GROUP BY task_id"))
        grade_cost = dict(conn.execute("SELECT task_id, SUM(cost_pusd) FROM attempts WHERE purpose='grade' "
                                       "GROUP BY task_id"))
        task_grade_cost = dict(conn.execute("SELECT task_id, grade_cost_pusd FROM tasks"))
        states = dict(conn.execute("SELECT state, COUNT(*) FROM attempts GROUP BY state"))
    finally:
        conn.close()
    return {"statuses": statuses, "ok_per_task": ok_per_task, "spent_pusd": spent,
            "task_cost": task_cost, "attempt_cost": attempt_cost, "attempt_states": states,
            "grade_cost": grade_cost, "task_grade_cost": task_grade_cost}


def check_run(out: Path, budget_usd: float | None) -> dict:
    """The invariants every finished run must satisfy; returns the report."""
    facts = ledger_facts(out)
    report = json.loads((out / "report.json").read_text())
    assert set(facts["statuses"].values()) <= {"done", "failed", "queued"}, facts["statuses"]
    for task_id, status in facts["statuses"].items():
        n_ok = facts["ok_per_task"].get(task_id, 0)
        assert n_ok == (1 if status == "done" else 0), (task_id, status, n_ok)
        assert facts["task_cost"][task_id] == (facts["attempt_cost"].get(task_id) or 0), task_id
        assert facts["task_grade_cost"][task_id] == (facts["grade_cost"].get(task_id) or 0), task_id
    assert report["totals"]["actual_cost_pusd"] == facts["spent_pusd"]
    if budget_usd is not None:
        assert facts["spent_pusd"] <= int(budget_usd * 10**12)
    assert "inflight" not in facts["attempt_states"]
    return report


def done_count(ledger: Path) -> int:
    """Tasks marked done in a ledger another process may be writing (0 while it is unreadable)."""
    return live_count(ledger, "SELECT COUNT(*) FROM tasks WHERE status='done'")


def inflight_count(ledger: Path) -> int:
    """Attempts in flight in a ledger another process may be writing."""
    return live_count(ledger, "SELECT COUNT(*) FROM attempts WHERE state='inflight'")


def live_count(ledger: Path, query: str) -> int:
    """A COUNT from a ledger another process may be writing (0 while it is unreadable)."""
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute(query).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
