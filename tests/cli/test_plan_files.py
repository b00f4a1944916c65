"""`plan show` prints the table `solve` printed; a CSV plan has the id and the short name; the
README's tour gives each plan its own file."""

from __future__ import annotations

from planner.plan import Plan
from tests.conftest import DEMO, ROOT


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


def test_readme_tour_gives_each_plan_its_own_file_and_runs_the_first():
    """Each solve in the tour writes its own plan file (solve's default -o is plan.json, which
    would be overwritten) and the tour's `run` reads the first, small plan."""
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
