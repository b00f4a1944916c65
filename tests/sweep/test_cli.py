"""``routeplan sweep``: options, outputs, and bad ranges as one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from planner.cli import main
from planner.commands.sweep import parse_range
from tests.sweep.conftest import DEMO, ROOT


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(["sweep", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_budget_sweep_prints_the_table_and_writes_csv_and_png(capsys, tmp_path):
    csv, png = tmp_path / "frontier.csv", tmp_path / "frontier.png"
    code, out, err = run(capsys, str(DEMO), "--budget", "0.001:0.05:6", "-o", str(csv), "--plot", str(png))
    assert code == 0, err
    assert "budget sweep" in out and "maximize_quality" in out and "parametric" in out
    assert "infeasible" in out  # $0.001 is below the cheapest plan
    df = pd.read_csv(csv)
    np.testing.assert_allclose(df["budget_usd"], np.linspace(0.001, 0.05, 6))
    assert {"objective", "projected_cost_usd", "mean_quality", "makespan_s", "queued_tasks",
            "budget_shadow_price", "status", "gap", "solve_time_s", "n_gpt-5-mini"} <= set(df.columns)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_log_spacing_goal_and_per_point(capsys, tmp_path):
    out_file = tmp_path / "f.json"
    code, out, err = run(capsys, str(DEMO), "--budget", "0.002:0.2:5", "--log", "--goal", "balanced",
                         "--per-point", "--solver", "highs", "-o", str(out_file))
    assert code == 0, err
    df = pd.read_json(out_file)
    np.testing.assert_allclose(df["budget_usd"], np.geomspace(0.002, 0.2, 5))
    assert (df["method"] == "solve").all() and (df["backend"] == "highs").all()
    assert "goal balanced" in out


def test_deadline_range_with_a_fixed_budget(capsys, tmp_path):
    pq = tmp_path / "f.parquet"
    code, out, err = run(capsys, str(DEMO), "--deadline", "10:86400:4", "--log", "--budget", "1",
                         "--allow-queue", "-o", str(pq))
    assert code == 0, err
    df = pd.read_parquet(pq)
    assert df["deadline_s"].iloc[-1] == pytest.approx(86400)
    assert (df["projected_cost_usd"].dropna() <= 1).all()
    assert "deadline sweep" in out and "goal minimize_cost" in out


def test_quality_weight_range(capsys, tmp_path):
    csv = tmp_path / "w.csv"
    code, out, err = run(capsys, str(DEMO), "--quality-weight", "0:1:3", "--weights", "cost=0.1,speed=0.3",
                         "-o", str(csv))
    assert code == 0, err
    df = pd.read_csv(csv)
    # cost and speed share 1 - q in the ratio of --weights (1 : 3)
    np.testing.assert_allclose(df["weight_cost"], [0.25, 0.125, 0.0])
    np.testing.assert_allclose(df["weight_speed"], [0.75, 0.375, 0.0])
    assert "weights sweep" in out


@pytest.mark.parametrize("args, message", [
    (["--budget", "1:2"], "--budget: expected START:STOP:COUNT"),
    (["--budget", "a:2:3"], "START and STOP must be numbers"),
    (["--budget", "1:2:x"], "COUNT must be a whole number"),
    (["--budget", "1:2:0"], "COUNT must be between 1"),
    (["--budget", "1:2:100000"], "COUNT must be between 1"),
    (["--budget", "2:1:3"], "START must not exceed STOP"),
    (["--budget", "-1:2:3"], "--budget: values must be"),
    (["--budget", "1:inf:3"], "finite"),
    (["--budget", "0:2:3", "--log"], "--log needs START > 0"),
    (["--deadline", "0:10:3"], "--deadline: values must be in (0"),
    (["--quality-weight", "0:1.5:3"], "--quality-weight: values must be in [0, 1]"),
    (["--quality-weight", "0.5"], "--quality-weight: expected START:STOP:COUNT"),
    ([], "expected exactly one range"),
    (["--budget", "5"], "expected exactly one range"),
    (["--budget", "1:2:3", "--deadline", "1:2:3"], "expected exactly one range"),
    (["--deadline", "1:2:3", "--budget", "x"], "--budget: expected a number"),
    (["--budget", "1:2:3", "-o", "out.txt"], "--out: expected a .csv, .json or .parquet"),
    (["--budget", "1:2:3", "--time-limit", "0"], "--time-limit"),
    (["--budget", "1:2:3", "--avg-quality", "2"], "--avg-quality"),
    (["--budget", "1:2:3", "--goal", "fastest"], "--goal"),
    (["--quality-weight", "0:1:3", "--goal", "minimize_cost"], "goal balanced"),
    (["--budget", "1:2:3", "--solver", "nope"], "--solver"),
    (["--budget", "1:2:3", "--weights", "cost=x"], "--weights"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, str(DEMO), *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


def test_missing_task_file(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "none.yaml"), "--budget", "1:2:3")
    assert code == 2 and "none.yaml" in err and "Traceback" not in err


def test_a_plot_of_no_plan_is_an_input_error(capsys, tmp_path):
    code, _, err = run(capsys, str(DEMO), "--budget", "0.0001:0.0002:2", "--plot", str(tmp_path / "p.png"))
    assert code == 2 and "no point of the sweep has a plan" in err


def test_parse_range_values():
    assert parse_range("--budget", "1:1:1", log=False) == [1.0]
    assert parse_range("--budget", "1:100:3", log=True) == pytest.approx([1, 10, 100])
    assert parse_range("--budget", "0:1:5", log=False) == pytest.approx([0, 0.25, 0.5, 0.75, 1])


def test_exit_status_2_from_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "planner.cli", "sweep", str(DEMO), "--budget", "3:1:4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --budget: START must not exceed STOP, got '3:1:4'"


def test_plot_into_a_folder_or_without_a_suffix_names_the_file_written(capsys, tmp_path):
    """`--plot DIR` writes DIR/frontier.png, a name without a suffix gets .png, and the line
    printed names the file written."""
    folder = tmp_path / "charts"
    folder.mkdir()
    code, out, err = run(capsys, str(DEMO), "--budget", "0.001:0.05:3", "--plot", str(folder))
    assert code == 0, err
    assert (folder / "frontier.png").exists() and f"plot written to {folder / 'frontier.png'}" in out
    bare = tmp_path / "frontier"
    code, out, err = run(capsys, str(DEMO), "--budget", "0.001:0.05:3", "--plot", str(bare))
    assert code == 0, err
    assert (tmp_path / "frontier.png").exists() and f"plot written to {tmp_path / 'frontier.png'}" in out


def test_sweep_out_names_an_existing_folder(capsys, tmp_path):
    folder = tmp_path / "f.csv"
    folder.mkdir()
    code, _, err = run(capsys, str(DEMO), "--budget", "0.001:0.05:3", "-o", str(folder))
    assert code == 2 and "it is a folder" in err and "Traceback" not in err
