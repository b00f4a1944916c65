"""`routeplan report DIR` prints what `run` printed; a run's tables and files name each model by
its short name with the id beside it in files; the cost chart stays readable for any number of models."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DEMO


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
    assert str(out / "report.json") not in reported  # a summary, not a list of file paths


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


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_run_of_a_table_plan_says_it_needs_plan_json(run_cli, tmp_path, suffix):
    table = tmp_path / f"plan{suffix}"
    assert run_cli("solve", DEMO, "--budget", "10", "--solver", "highs", "-o", table)[0] == 0
    out = tmp_path / "run"
    code, _, err = run_cli("run", table, "-o", out)
    assert code == 2 and err.count("\n") == 1
    assert "routeplan solve TASKS -o plan.json" in err and "Traceback" not in err
    assert not out.exists()


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
    # the chart: short names, a readable shape
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
