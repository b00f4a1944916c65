"""A newcomer's first hour with `routeplan run`: nothing live without --live, exit statuses
that say what happened, and one line (never a traceback) for a folder that cannot hold a run,
with nothing lost. Storage faults are injected into simulated runs."""

from __future__ import annotations

import json
import sqlite3

import pytest

from planner.executor.engine import Engine

from .helpers import check_run, ledger_facts
from .plans import make_plan

FAKE_KEYS = {"OPENAI_API_KEY": "sk-FAKE-openai-000", "ANTHROPIC_API_KEY": "sk-ant-FAKE-000",
             "GROQ_API_KEY": "gsk_FAKE_000"}


@pytest.fixture
def no_keys(monkeypatch):
    for k in FAKE_KEYS:
        monkeypatch.delenv(k, raising=False)


def one_line(err: str) -> str:
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    return err


# -- 1. live only with --live -------------------------------------------------------------------
def test_keys_in_the_environment_never_make_a_run_live(tmp_path, run_cli, monkeypatch):
    for k, v in FAKE_KEYS.items():
        monkeypatch.setenv(k, v)
    plan = make_plan(4, budget_usd=1.0).save(tmp_path / "plan.json")
    code, out, err = run_cli("run", plan, "-o", tmp_path / "run")
    assert code == 0, err
    assert out.startswith("SIMULATED run") and "only --live calls providers" in out
    assert json.loads((tmp_path / "run" / "report.json").read_text())["simulated"] is True


def test_a_live_run_is_resumed_only_with_live(tmp_path, run_cli, no_keys):
    plan = make_plan(2, budget_usd=1.0).save(tmp_path / "plan.json")
    assert run_cli("run", plan, "-o", tmp_path / "run")[0] == 0
    conn = sqlite3.connect(tmp_path / "run" / "ledger.sqlite")  # as if it had been a live run
    with conn:
        conn.execute("UPDATE meta SET value='0' WHERE key='simulated'")
    conn.close()
    code, _, err = run_cli("run", plan, "-o", tmp_path / "run", "--resume")
    assert code == 2 and "this run was live; resume it with --live" in one_line(err)


# -- 2. exit statuses ---------------------------------------------------------------------------
def test_every_task_failed_exits_1_with_the_counts(tmp_path, run_cli, no_keys):
    plan = make_plan(5, budget_usd=1.0).save(tmp_path / "plan.json")
    code, out, err = run_cli("run", plan, "-o", tmp_path / "run", "--fail-rate", "1", "--max-retries", "0")
    assert code == 1, err
    assert "0 done, 5 failed, 0 queued" in out and "5 task(s) failed" in err
    check_run(tmp_path / "run", 1.0)


def test_tasks_queued_by_the_budget_exit_0(tmp_path, run_cli, no_keys):
    plan = make_plan(5, budget_usd=1e-9).save(tmp_path / "plan.json")
    code, out, err = run_cli("run", plan, "-o", tmp_path / "run")
    assert code == 0, err
    assert "0 done, 0 failed, 5 queued" in out


def test_pipeline_run_exits_1_when_a_task_failed(tmp_path, run_cli, monkeypatch):
    """The demo pipeline under a simulator that fails every call: exit 1 and the counts."""
    import dataclasses

    from planner.executor import run as executor_run
    from tests.conftest import ROOT

    real = executor_run.run_plan
    monkeypatch.setattr(executor_run, "run_plan", lambda plan, out, options, **kw: real(
        plan, out, dataclasses.replace(options, fail_rate=1.0, retry=dataclasses.replace(
            options.retry, max_retries=0)), **kw))
    code, _, err = run_cli("pipeline", "run", ROOT / "examples" / "model_routing_demo.yaml",
                           "-o", tmp_path / "p")
    assert code == 1, err
    assert "0 done" in err and "failed" in err and "exit status 1" in err and "Traceback" not in err


# -- 3 and 4. a folder that cannot hold the run --------------------------------------------------
@pytest.mark.parametrize("make", ["missing", "empty", "other files"])
def test_resume_with_no_run_names_the_folder(tmp_path, run_cli, no_keys, make):
    plan = make_plan(2).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    if make != "missing":
        out.mkdir()
    if make == "other files":
        (out / "notes.txt").write_text("mine")
    code, _, err = run_cli("run", plan, "-o", out, "--resume")
    assert code == 2 and str(out) in one_line(err) and "nothing to resume" in err
    assert out.exists() == (make != "missing")
    assert sorted(p.name for p in out.iterdir()) == (["notes.txt"] if make == "other files" else []) \
        if out.exists() else True


def test_run_out_an_existing_file(tmp_path, run_cli, no_keys):
    plan = make_plan(2).save(tmp_path / "plan.json")
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    code, _, err = run_cli("run", plan, "-o", target)
    assert code == 2 and "it is a file" in one_line(err)
    assert target.read_text() == "keep me"


def test_resume_on_a_corrupt_ledger_leaves_it_as_it_is(tmp_path, run_cli, no_keys):
    plan = make_plan(2).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    out.mkdir()
    junk = b"this is not sqlite" * 100
    (out / "ledger.sqlite").write_bytes(junk)
    for extra in ([], ["--resume"]):
        code, _, err = run_cli("run", plan, "-o", out, *extra)
        assert code == 2 and "not a readable run ledger" in one_line(err)
    assert (out / "ledger.sqlite").read_bytes() == junk


def test_a_hand_edited_plan_with_a_negative_cost_is_refused(tmp_path, run_cli, no_keys):
    plan = make_plan(2).save(tmp_path / "plan.json")
    data = json.loads(plan.read_text())
    data["assignments"][1]["projected_cost_usd"] = -0.5
    plan.write_text(json.dumps(data))
    code, _, err = run_cli("run", plan, "-o", tmp_path / "run")
    assert code == 2 and "assignments.1.projected_cost_usd" in one_line(err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("budget", ["1e308", "inf", "-1"])
def test_absurd_budgets_are_refused(tmp_path, run_cli, no_keys, budget):
    plan = make_plan(2).save(tmp_path / "plan.json")
    code, _, err = run_cli("run", plan, "-o", tmp_path / "run", "--budget", budget)
    assert code == 2 and "--budget" in one_line(err) and len(err) < 200
    assert not (tmp_path / "run").exists()


# -- 6. storage faults mid-run ------------------------------------------------------------------
def fault_after(monkeypatch, n_done: int, fault) -> list[int]:
    """Call ``fault()`` once, when the n-th task finishes; returns [calls sent after it]."""
    state = {"done": 0, "fired": False}
    sent_after = [0]
    finish, call = Engine._finish, None

    def _finish(self, task_id, status, *a, **kw):
        result = finish(self, task_id, status, *a, **kw)
        state["done"] += 1
        if state["done"] == n_done and not state["fired"]:
            state["fired"] = True
            fault()
        return result

    from planner.executor.caller import Caller

    call = Caller.call

    async def counting_call(self, model, req):
        if state["fired"]:
            sent_after[0] += 1
        return await call(self, model, req)

    monkeypatch.setattr(Engine, "_finish", _finish)
    monkeypatch.setattr(Caller, "call", counting_call)
    return sent_after


def failing_commits(monkeypatch, message: str) -> dict[str, bool]:
    """Every ledger transaction raises sqlite3.OperationalError(message) once switched on."""
    from planner.executor import ledger as ledger_mod

    switch = {"on": False}
    enter = ledger_mod._Transaction.__enter__

    def maybe_fail(self):
        if switch["on"]:
            raise sqlite3.OperationalError(message)
        return enter(self)

    monkeypatch.setattr(ledger_mod._Transaction, "__enter__", maybe_fail)
    return switch


def test_full_disk_mid_run_is_one_line_and_resume_recovers(tmp_path, run_cli, no_keys, monkeypatch):
    plan = make_plan(60, budget_usd=0.5).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    full = failing_commits(monkeypatch, "database or disk is full")
    sent_after = fault_after(monkeypatch, 10, lambda: full.update(on=True))
    code, _, err = run_cli("run", plan, "-o", out, "--concurrency", "4")
    assert code == 2 and "database or disk is full" in one_line(err) and "--resume" in err
    assert sent_after[0] == 0  # no call sent once the ledger could not record it
    monkeypatch.undo()  # space again
    stopped = ledger_facts(out)
    assert 0 < sum(s == "done" for s in stopped["statuses"].values()) < 60  # the last writes may be lost
    code, _, err = run_cli("run", plan, "-o", out, "--resume")
    assert code == 0, err
    check_run(out, 0.5)
    assert set(ledger_facts(out)["statuses"].values()) <= {"done", "queued"}


def test_read_only_ledger_mid_run_is_one_line(tmp_path, run_cli, no_keys, monkeypatch):
    """What a read-only folder does to SQLite (as root, chmod cannot show it: injected)."""
    plan = make_plan(30, budget_usd=0.5).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    ro = failing_commits(monkeypatch, "attempt to write a readonly database")
    fault_after(monkeypatch, 5, lambda: ro.update(on=True))
    code, _, err = run_cli("run", plan, "-o", out)
    assert code == 2 and "readonly database" in one_line(err)
    monkeypatch.undo()
    assert run_cli("run", plan, "-o", out, "--resume")[0] == 0
    check_run(out, 0.5)


def test_a_report_that_cannot_be_written_is_one_line_and_resume_writes_it(tmp_path, run_cli, no_keys,
                                                                           monkeypatch):
    from planner.executor import run_report as report

    plan = make_plan(6, budget_usd=0.5).save(tmp_path / "plan.json")
    out = tmp_path / "run"

    def denied(path, *a, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(report, "_write_json", denied)
    code, _, err = run_cli("run", plan, "-o", out)
    assert code == 2 and "Permission denied" in one_line(err) and "routeplan report" in err
    monkeypatch.undo()
    assert run_cli("run", plan, "-o", out, "--resume")[0] == 0
    check_run(out, 0.5)


def test_ledger_deleted_mid_run_stops_at_once_and_is_never_started_afresh(tmp_path, run_cli, no_keys,
                                                                          monkeypatch):
    plan = make_plan(60, budget_usd=0.5).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    sent_after = fault_after(monkeypatch, 10, lambda: (out / "ledger.sqlite").unlink())
    code, _, err = run_cli("run", plan, "-o", out, "--concurrency", "4")
    assert code == 2 and "deleted mid-run" in one_line(err) and "stopped sending calls" in err
    assert sent_after[0] == 0
    monkeypatch.undo()
    assert not (out / "ledger.sqlite").exists()
    rescued = out / "ledger.rescued.sqlite"
    assert rescued.exists()
    for extra in (["--resume"], []):  # neither resumed nor started afresh: the spend is unknown
        code, _, err = run_cli("run", plan, "-o", out, *extra)
        assert code == 2 and "refusing to start afresh" in one_line(err) and str(rescued) in err
        assert not (out / "ledger.sqlite").exists()
    rescued.rename(out / "ledger.sqlite")  # what the message suggests: nothing was lost
    facts = ledger_facts(out)
    assert sum(s == "done" for s in facts["statuses"].values()) >= 9
    code, out_text, err = run_cli("run", plan, "-o", out, "--resume")
    assert code == 0, err
    check_run(out, 0.5)


# -- 7. a bare --resume keeps the run's simulator settings ---------------------------------------
def test_resume_keeps_the_simulator_settings_unless_given(tmp_path, run_cli, no_keys):
    plan = make_plan(6, budget_usd=0.5).save(tmp_path / "plan.json")
    out = tmp_path / "run"
    assert run_cli("run", plan, "-o", out, "--seed", "7", "--fail-rate", "0.25", "--time-scale", "0.001")[0] == 0

    def meta():
        conn = sqlite3.connect(out / "ledger.sqlite")
        try:
            return dict(conn.execute("SELECT key, value FROM meta"))
        finally:
            conn.close()

    assert run_cli("run", plan, "-o", out, "--resume")[0] == 0
    assert (meta()["seed"], meta()["fail_rate"], meta()["time_scale"]) == ("7", "0.25", "0.001")
    assert run_cli("run", plan, "-o", out, "--resume", "--seed", "8")[0] == 0
    assert (meta()["seed"], meta()["fail_rate"]) == ("8", "0.25")
