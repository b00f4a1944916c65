"""``routeplan run`` on a sharded plan (the folder ``routeplan solve --workers N`` writes): the
plan rebuilt from its parts and its task file is one process's ``fast`` plan; it runs simulated
in one process and on Ray, resumes after a kill, and bad input is one line, exit 2."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

from planner.plan import Limits
from tests.conftest import ROOT
from tests.executor.helpers import (
    check_run,
    cli_command,
    done_count,
    ledger_facts,
    rerun_cli,
    start_cli,
)

pytestmark = pytest.mark.xdist_group("ray")

BUDGET_USD = 0.8
N_TASKS = 600
UNSERVABLE = ("too-long-a", "too-long-b")  # no model's context window holds them: queued by the plan
LIMITS = Limits(budget_usd=BUDGET_USD, allow_queue=True)
GOAL = "maximize_quality"


def _tasks() -> pd.DataFrame:
    tasks = pd.read_json(ROOT / "examples" / "tasks" / "batch_10k.jsonl", lines=True).head(N_TASKS).copy()
    tasks.loc[[5, 407], "id"] = list(UNSERVABLE)
    tasks.loc[[5, 407], "input_tokens"] = 50_000_000
    return tasks


@pytest.fixture(scope="module")
def sharded(local_ray, tmp_path_factory):
    """A 600-task Parquet file (row groups of 100) planned on 2 workers in 3 parts."""
    from planner.catalog import load_catalog
    from planner.distributed.plan_driver import solve_sharded
    from planner.distributed.shards import TaskFileSource

    root = tmp_path_factory.mktemp("sharded")
    path = root / "tasks.parquet"
    _tasks().to_parquet(path, row_group_size=100)
    source = TaskFileSource(str(path), load_catalog(None), GOAL, LIMITS, rows_per_shard=200)
    res, _ = solve_sharded(source, 2, root / "plan")
    assert res.objective is not None and res.n_queued == len(UNSERVABLE)
    assert len(list((root / "plan").glob("part-*.parquet"))) == 3
    return root


def _parts(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("part-*.parquet"))], ignore_index=True)


def test_rebuilt_plan_is_one_process_fast_plan(sharded):
    """Every entry (model, prompt, max_tokens, projections, fallbacks, queue reason) and the
    totals are those `routeplan solve --solver fast` writes into plan.json."""
    from planner.distributed.sharded_plan import load_sharded_plan
    from planner.solve import make_plan

    plan = load_sharded_plan(sharded / "plan")
    ref = make_plan(sharded / "tasks.parquet", None, goal=GOAL, limits=LIMITS, solver="fast")
    assert [a.model_dump() for a in plan.assignments] == [a.model_dump() for a in ref.assignments]
    assert [q.model_dump() for q in plan.queued] == [q.model_dump() for q in ref.queued]
    assert {q.task_id for q in plan.queued} == set(UNSERVABLE)
    got, want = plan.totals.model_dump(), ref.totals.model_dump()  # sums chunk by chunk: the last bits differ
    assert got == pytest.approx(want, rel=1e-12) and got["n_queued"] == want["n_queued"] == len(UNSERVABLE)
    assert [m.name for m in plan.models] == [m.name for m in ref.models]
    assert plan.limits == ref.limits and plan.goal == ref.goal
    assert plan.totals.projected_cost_usd == pytest.approx(_parts(sharded / "plan")["cost_usd"].sum(), rel=1e-12)
    summary = json.loads((sharded / "plan" / "summary.json").read_text())
    assert plan.solver.objective == summary["objective"] and plan.solver.status == summary["status"]
    assert [b.name for b in plan.binding_limits] == [b.name for b in ref.binding_limits]


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "ray"])
def test_run_the_folder_simulated(sharded, tmp_path, run_cli, workers):
    """`routeplan run plan/` (and its summary.json): simulated by default, the report's
    projection is the plan's, every task of the task file ends once, planned queues are queued."""
    given = sharded / "plan" if workers else sharded / "plan" / "summary.json"
    out = tmp_path / "run"
    code, stdout, err = run_cli("run", given, "-o", out, *(["--workers", workers] if workers else []))
    assert code in (0, 1), err  # 1: some task failed (its latency limit), said in the report
    assert stdout.startswith("SIMULATED run")
    report = check_run(out, BUDGET_USD)  # every task ended once; spend is the ledger's, within the budget
    assert report["budget_usd"] == BUDGET_USD  # the plan's budget guards the run
    assert report["simulated"] is True
    parts = _parts(sharded / "plan")
    assert report["totals"]["projected_cost_usd"] == pytest.approx(parts["cost_usd"].sum(), rel=1e-6)
    statuses = ledger_facts(out)["statuses"]
    assert sorted(statuses) == sorted(_tasks()["id"])
    assert {t for t, s in statuses.items() if s == "queued"} >= set(UNSERVABLE)
    by_task = {t["task_id"]: t for t in report["tasks"]}
    assert all(by_task[t]["status"] == "queued" for t in UNSERVABLE)


def test_killed_then_resumed(sharded, tmp_path):
    """kill -9 of `routeplan run plan/` mid-run, then --resume: every task ends once, no answer
    paid twice, spend within the plan's budget."""
    out = tmp_path / "run"
    cmd = cli_command("run", sharded / "plan", "-o", out, "--time-scale", "0.003", "--concurrency", "4")
    proc = start_cli(cmd, until=lambda: done_count(out / "ledger.sqlite") >= 15, timeout_s=180)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = ledger_facts(out)
    done_at_kill = {t for t, s in killed["statuses"].items() if s == "done"}
    assert 15 <= len(done_at_kill) < N_TASKS - len(UNSERVABLE)
    rerun = rerun_cli([*cli_command("run", sharded / "plan", "-o", out, "--resume")], timeout_s=240)
    assert rerun.returncode in (0, 1), rerun.stderr
    check_run(out, BUDGET_USD)
    after = ledger_facts(out)
    assert sorted(after["statuses"]) == sorted(_tasks()["id"])
    assert all(after["statuses"][t] == "done" for t in done_at_kill)
    assert all(n == 1 for n in after["ok_per_task"].values())


def _copy(sharded: Path, tmp_path: Path, *, tasks: pd.DataFrame | None = None) -> Path:
    """The plan's folder copied, its summary pointing at a copy of the task file (``tasks``: a
    changed one written over it)."""
    folder = tmp_path / "plan"
    shutil.copytree(sharded / "plan", folder)
    shutil.copy(sharded / "tasks.parquet", tmp_path / "tasks.parquet")
    summary = json.loads((folder / "summary.json").read_text())
    summary["source"]["tasks_file"]["path"] = str(tmp_path / "tasks.parquet")
    (folder / "summary.json").write_text(json.dumps(summary))
    if tasks is not None:
        tasks.to_parquet(tmp_path / "tasks.parquet", row_group_size=100)
    return folder


def _refused(run_cli, given: Path, out: Path, *expected: str) -> str:
    code, stdout, err = run_cli("run", given, "-o", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, (code, err)
    assert "Traceback" not in err
    for e in expected:
        assert e in err, (e, err)
    assert not out.exists()  # nothing written
    return err


def test_bad_input_is_one_line_and_nothing_is_written(sharded, tmp_path, run_cli):
    out = tmp_path / "run"
    # the copy runs (its task file is the same bytes at another path): the checks below fail for their reason alone
    folder = _copy(sharded, tmp_path / "same")
    from planner.distributed.sharded_plan import load_sharded_plan

    assert len(load_sharded_plan(folder).assignments) == N_TASKS - len(UNSERVABLE)

    # a missing part
    folder = _copy(sharded, tmp_path / "missing-part")
    (folder / "part-00001.parquet").unlink()
    _refused(run_cli, folder, out, "part-00001.parquet", "missing part")

    # a part whose rows do not match the task file: another task's id, another model
    folder = _copy(sharded, tmp_path / "other-id")
    part = pd.read_parquet(folder / "part-00002.parquet")
    part.loc[3, "task_id"] = "someone-else"
    part.to_parquet(folder / "part-00002.parquet")
    _refused(run_cli, folder, out, "part-00002.parquet", "row 3", "task_id")
    folder = _copy(sharded, tmp_path / "other-model")
    part = pd.read_parquet(folder / "part-00000.parquet")
    served = part["model"].notna()
    row = int(part.index[served & (part["model"] != part.loc[served, "model"].iloc[-1])][0])
    part.loc[row, "model"] = part.loc[served, "model"].iloc[-1]
    part.to_parquet(folder / "part-00000.parquet")
    _refused(run_cli, folder, out, "part-00000.parquet", f"row {row}")
    folder = _copy(sharded, tmp_path / "short-part")
    pd.read_parquet(folder / "part-00001.parquet").head(150).to_parquet(folder / "part-00001.parquet")
    _refused(run_cli, folder, out, "part-00001.parquet", "150 row(s)", "parts[].rows")

    # the task file: missing, changed since it was planned
    folder = _copy(sharded, tmp_path / "missing-tasks")
    (tmp_path / "missing-tasks" / "tasks.parquet").unlink()
    _refused(run_cli, folder, out, str(tmp_path / "missing-tasks" / "tasks.parquet"), "no such file",
             "source.tasks_file.path")
    changed = _tasks()
    changed.loc[10, "prompt"] = "something else entirely"
    folder = _copy(sharded, tmp_path / "changed-tasks", tasks=changed)
    _refused(run_cli, folder, out, str(tmp_path / "changed-tasks" / "tasks.parquet"), "changed since it was planned")

    # a summary that does not say what the plan was made from (an older routeplan's)
    folder = _copy(sharded, tmp_path / "no-source")
    summary = json.loads((folder / "summary.json").read_text())
    del summary["source"]
    (folder / "summary.json").write_text(json.dumps(summary))
    _refused(run_cli, folder, out, "summary.json", "source: missing")

    # an offering priced differently from when it was planned
    folder = _copy(sharded, tmp_path / "repriced")
    summary = json.loads((folder / "summary.json").read_text())
    summary["source"]["offerings"][0]["input_cost_per_token"] *= 2
    (folder / "summary.json").write_text(json.dumps(summary))
    _refused(run_cli, folder, out, "summary.json", "source.offerings", "input_cost_per_token")

    # one part alone is not a plan
    _refused(run_cli, sharded / "plan" / "part-00000.parquet", out, "run the whole plan")
