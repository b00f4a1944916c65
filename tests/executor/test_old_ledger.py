"""Ledgers written before checks existed (no grade columns): ``report`` reads them and
``--resume`` continues them (their columns are added on open)."""

from __future__ import annotations

import json
import sqlite3

from planner.executor import RunOptions, run_plan
from planner.executor.ledger import MIGRATIONS
from planner.executor.run_report import write_run_report

from .helpers import check_run
from .plans import make_plan


def _downgrade(path) -> None:
    """Make a ledger look like one written before the checks: drop every migrated column."""
    conn = sqlite3.connect(path)
    try:
        for table, column, _ in MIGRATIONS:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DELETE FROM meta WHERE key='models'")
        conn.commit()
    finally:
        conn.close()


def test_report_and_resume_on_a_ledger_from_before_checks(tmp_path):
    plan = make_plan(30)
    worst = sorted(a.worst_case_cost_usd for a in plan.assignments)
    budget = sum(worst[:10])  # part of the batch runs; the rest is queued by the guard
    out = tmp_path / "run"
    run_plan(plan, out, RunOptions(mode="simulate", progress=False, budget_usd=budget), report=False)
    _downgrade(out / "ledger.sqlite")
    write_run_report(out)  # read-only: the missing columns read as NULL
    report = json.loads((out / "report.json").read_text())
    assert report["quality"]["n_checked"] == 0 and report["totals"]["grading_cost_usd"] == 0
    assert "No task carries a check" in (out / "report.md").read_text()
    done_before = report["totals"]["n_done"]
    assert 0 < done_before < 30
    run_plan(plan, out, RunOptions(mode="simulate", progress=False, resume=True, budget_usd=1.0))
    after = check_run(out, None)
    assert after["totals"]["n_done"] == 30
