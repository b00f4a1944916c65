"""Issue 15, "where people look": `report` prints the run's summary, `plan show` prints the
table `solve` printed, `--version`, and flags that take no value look like flags in --help."""

from __future__ import annotations

import re

import pytest

from planner.plan import Plan
from tests.conftest import DEMO, ROOT


def test_report_prints_the_summary_run_printed(run_cli, tmp_path):
    plan = tmp_path / "plan.json"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "-o", plan)[0] == 0
    out = tmp_path / "run"
    code, ran, err = run_cli("run", plan, "-o", out, "--simulate", "--fail-rate", "0.3", "--seed", "3")
    assert code in (0, 1), err
    code, reported, err = run_cli("report", out)
    assert code == 0, err
    # the same lines, less the timing of the invocation that ran the tasks
    assert reported.splitlines() == [re.sub(r"; \d+ task\(s\) run in [\d.]+s$", "", line)
                                     for line in ran.splitlines()]
    assert reported.startswith("SIMULATED run: ") and "7 done" in reported
    assert f"report: {out / 'report.md'}" in reported
    assert str(out / "report.json") not in reported  # no longer a list of file paths


def test_report_of_an_unfinished_run_says_what_is_left(run_cli, tmp_path):
    import sqlite3

    plan = tmp_path / "plan.json"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "-o", plan)[0] == 0
    out = tmp_path / "run"
    assert run_cli("run", plan, "-o", out, "--simulate")[0] == 0
    conn = sqlite3.connect(out / "ledger.sqlite")  # as if killed before two tasks were done
    conn.execute("UPDATE tasks SET status='pending' WHERE seq < 2")
    conn.commit()
    conn.close()
    code, reported, _ = run_cli("report", out)
    assert code == 0 and "5 done" in reported and "2 not finished (resume with --resume)" in reported


def test_plan_show_prints_the_table_solve_printed(run_cli, tmp_path):
    plan = tmp_path / "plan.json"
    code, solved, _ = run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "-o", plan)
    assert code == 0
    code, shown, err = run_cli("plan", "show", plan)
    assert code == 0, err
    assert solved.replace(f"plan written to {plan}\n", "") == shown
    assert "By model" in shown and "By task" in shown
    code, as_json, _ = run_cli("plan", "show", plan, "--format", "json")
    assert code == 0 and Plan.model_validate_json(as_json).totals == Plan.load(plan).totals
    code, as_csv, _ = run_cli("plan", "show", plan, "--format", "csv", "--rows", "0")
    assert code == 0 and as_csv.count("\n") == 8  # header + 7 tasks


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_run_of_a_table_plan_says_it_needs_plan_json(run_cli, tmp_path, suffix):
    table = tmp_path / f"plan{suffix}"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "-o", table)[0] == 0
    out = tmp_path / "run"
    code, _, err = run_cli("run", table, "-o", out)
    assert code == 2 and err.count("\n") == 1
    assert "routeplan solve TASKS -o plan.json" in err and "Traceback" not in err
    assert not out.exists()


def test_version(run_cli):
    from importlib.metadata import version

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"routeplan {version('routeplan')}"


def _commands(group, path=()):
    import typer.main

    cmd = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, sub in getattr(cmd, "commands", {}).items():
        if hasattr(sub, "commands"):
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name), sub


def test_flags_take_no_value_and_help_shows_none(run_cli):
    from planner.cli import app

    flags = 0
    for path, cmd in _commands(app):
        code, out, _ = run_cli(*path, "--help")
        assert code == 0
        assert "<bool>" not in out, f"{' '.join(path)} --help shows a flag as taking a value"
        flags += sum(getattr(p, "is_flag", False) for p in cmd.params)
    assert flags >= 7  # --simulate --live --resume --allow-queue --log --per-point, pipeline --live
    # and they still work as flags
    code, _, err = run_cli("sweep", DEMO, "--budget", "0.01:1:3", "--log", "--allow-queue", "--per-point",
                           "--solver", "highs")
    assert code == 0, err


def test_root_help_lists_the_plan_command(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0 and "plan" in out and "--version" in out
    assert ROOT.exists()
