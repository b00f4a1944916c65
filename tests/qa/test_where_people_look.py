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


# ---------------------------------------------------------------- 14, 18: one name per model
def _png_size(path) -> tuple[int, int]:
    import struct

    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_run_report_tables_print_short_names_and_files_keep_the_id_beside_them(run_cli, tmp_path):
    import csv
    import json

    from planner.catalog import short_name

    plan = tmp_path / "plan.json"
    models = "llama3-1-8b,deepseek-chat,gemini-2.5-flash,gpt-4.1-nano"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "--models", models,
                   "-o", plan)[0] == 0
    out = tmp_path / "run"
    assert run_cli("run", plan, "-o", out, "--simulate", "--fail-rate", "0.5", "--seed", "2")[0] in (0, 1)
    md = (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text())
    ids = {r["model"] for r in report["by_model"]}
    assert any("/" in m for m in ids)  # the run used provider-prefixed ids
    for m in ids:  # no table cell names a model by its litellm id (an error's text may quote it)
        assert f"| {m} " not in md and f"(planned {m})" not in md, m
    for r in report["by_model"]:
        assert r["model_short"] == short_name(r["model"]) and r["model_short"] in md
    for t in report["tasks"]:
        assert t["model_short"] == (short_name(t["model"]) if t["model"] else None)
        assert t["planned_model_short"] == short_name(t["planned_model"])
    with (out / "tasks.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["model_short"] == short_name(r["model"]) for r in rows if r["model"])
    for line in (out / "outputs.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert rec["model_short"] == short_name(rec["model"])
    # the chart: short names, a readable shape (was 2376 x 495 with litellm ids)
    width, height = _png_size(out / "cost_by_model.png")
    assert 0.4 <= height / width <= 1.2 and width <= 1000, (width, height)


@pytest.mark.parametrize("n_models", [1, 4, 12, 29])
def test_cost_chart_stays_readable_for_any_number_of_models(tmp_path, n_models):
    from planner.catalog import load_catalog, short_name
    from planner.executor.run_report import cost_chart

    names = load_catalog().names[:n_models]
    report = {"simulated": True, "by_model": [
        {"model": m, "model_short": short_name(m), "projected_cost_usd": 0.01 * (i + 1),
         "actual_cost_usd": 0.012 * (i + 1)} for i, m in enumerate(names)]}
    fig = cost_chart(report)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(short_name(m) for m in names)
    path = tmp_path / "chart.png"
    fig.savefig(path, dpi=110)
    width, height = _png_size(path)
    assert width == 880 and 0.3 <= height / width <= 1.5, (width, height)


def test_plan_csv_has_the_id_and_the_short_name(run_cli, tmp_path):
    import pandas as pd

    from planner.catalog import short_name

    path = tmp_path / "plan.csv"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "--models",
                   "llama3-1-8b,deepseek-chat,gemini-2.5-flash", "--allow-queue", "-o", path)[0] == 0
    df = pd.read_csv(path)
    assert list(df.columns[2:4]) == ["model", "model_short"]
    assigned = df[df["status"] == "assigned"]
    assert len(assigned) and (assigned["model_short"] == assigned["model"].map(short_name)).all()


# ---------------------------------------------------------------- 13: the README's tour
def test_readme_tour_gives_each_plan_its_own_file_and_runs_the_first():
    """The tour once wrote plan.json three times (solve's default -o), so `run plan.json` ran
    the 10,000-task plan. Each solve now names its own file and `run` reads the first one."""
    import shlex

    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## The tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in tour.splitlines() if line.startswith("routeplan")]
    written: list[str] = []
    for argv in commands:
        if argv[1] == "solve":
            assert "-o" in argv or "--out" in argv, f"{' '.join(argv)} writes plan.json by default"
            written.append(argv[argv.index("-o" if "-o" in argv else "--out") + 1])
    assert len(written) == len(set(written)) >= 3, written
    run = next(a for a in commands if a[1] == "run")
    assert run[2] == written[0] and "demo_batch.yaml" in commands[0][2]
    shown = next(a for a in commands if a[1:3] == ["plan", "show"])
    assert shown[3] in written


def test_sweep_csv_names_the_mix_by_short_name_beside_the_id_counts(run_cli, tmp_path):
    import pandas as pd

    from planner.catalog import short_name

    path = tmp_path / "frontier.csv"
    code, _, err = run_cli("sweep", DEMO, "--budget", "0.01:1:3", "--solver", "highs", "-o", path)
    assert code == 0, err
    df = pd.read_csv(path)
    for _, row in df.iterrows():
        counts = {short_name(c.removeprefix("n_")): int(row[c]) for c in df.columns
                  if c.startswith("n_") and row[c] > 0}
        assert dict((k, int(v)) for k, v in (p.split("=") for p in row["models_short"].split("; "))) == counts
