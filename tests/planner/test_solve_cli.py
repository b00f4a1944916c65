"""`routeplan solve|validate|catalog` end to end: goals, options, bad input, infeasibility."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from planner.plan import Plan
from tests.conftest import DEMO, ROOT

ARGS = ["--solver", "highs", "--budget", "10"]


def solve_plan(run_cli, tmp_path, *args):
    out = tmp_path / "plan.json"
    code, stdout, err = run_cli("solve", DEMO, *ARGS, "-o", out, *args)
    assert code == 0, err
    return Plan.load(out), stdout


def by_task(plan):
    return {a.task_id: a for a in plan.assignments}


def test_four_goals_differ_as_a_user_expects(run_cli, tmp_path):
    plans = {g: solve_plan(run_cli, tmp_path, "--goal", g)[0]
             for g in ("minimize_cost", "maximize_quality", "minimize_latency", "balanced")}
    cost, qual, lat, bal = (plans[g].totals for g in plans)
    assert cost.projected_cost_usd < bal.projected_cost_usd < qual.projected_cost_usd
    assert qual.mean_quality > bal.mean_quality > cost.mean_quality
    assert lat.makespan_s < min(cost.makespan_s, qual.makespan_s, bal.makespan_s)
    # premium models for quality, cheap ones for cost
    models = {g: {a.model for a in p.assignments} for g, p in plans.items()}
    assert models["maximize_quality"] & {"gpt-5", "gemini/gemini-2.5-pro"}
    assert not models["minimize_cost"] & {"gpt-5", "gemini/gemini-2.5-pro",
                                          "bedrock/us.anthropic.claude-opus-4-20250514-v1:0"}
    assert len({frozenset((a.task_id, a.model) for a in p.assignments) for p in plans.values()}) == 4


def test_plan_json_fields(run_cli, tmp_path):
    plan, stdout = solve_plan(run_cli, tmp_path, "--goal", "minimize_cost")
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["schema_version"] and data["solver"]["status"] == "optimal"
    a = plan.assignments[0]
    assert a.fallbacks and a.worst_case_cost_usd >= a.projected_cost_usd > 0
    assert {m.name for m in plan.models} >= {x.model for x in plan.assignments}
    assert abs(plan.totals.projected_cost_usd - sum(x.projected_cost_usd for x in plan.assignments)) < 1e-12
    assert plan.binding_limits[0].name == "budget_usd" and not plan.binding_limits[0].binding
    assert "By model" in stdout and "summarize_doc" in stdout


def test_budget_binds_and_queue(run_cli, tmp_path):
    cheap, _ = solve_plan(run_cli, tmp_path, "--goal", "minimize_cost")
    budget = cheap.totals.projected_cost_usd * 0.5
    code, _, err = run_cli("solve", DEMO, "--solver", "highs", "--budget", budget, "-o", "-")
    assert code == 2 and err.count("\n") == 1 and "least budget" in err and "--allow-queue" in err
    out = tmp_path / "q.json"
    code, _, err = run_cli("solve", DEMO, "--solver", "highs", "--budget", budget, "--allow-queue", "-o", out)
    assert code == 0, err
    plan = Plan.load(out)
    assert plan.queued and plan.totals.projected_cost_usd <= budget + 1e-12
    assert "budget_usd" in plan.queued[0].reason


@pytest.mark.parametrize("args, check", [
    (["--models", "gpt-5-mini,deepseek/deepseek-chat"],
     lambda p: {a.model for a in p.assignments} == {"gpt-5-mini", "deepseek/deepseek-chat"}),
    (["--max-latency", "12", "--goal", "maximize_quality"],
     lambda p: all(a.projected_latency_s <= 12 for a in p.assignments)),
    (["--min-quality", "0.62", "--goal", "minimize_cost"],
     lambda p: all(a.projected_quality >= 0.62 for a in p.assignments)),
    (["--avg-quality", "0.78"], lambda p: p.totals.mean_quality >= 0.78 - 1e-9),
    (["--deadline", "100000", "--goal", "minimize_cost"],  # a day-long deadline admits batch APIs
     lambda p: any(a.model.endswith("@batch") for a in p.assignments)
     and all(a.projected_latency_s <= 100000 for a in p.assignments)),
    (["--goal", "balanced", "--weights", "cost=1,quality=0,speed=0"],
     lambda p: p.limits.weights == {"cost": 1.0, "quality": 0.0, "speed": 0.0}),
    (["--share-cap", "deepseek/deepseek-chat=0.3"],
     lambda p: sum(a.model == "deepseek/deepseek-chat" for a in p.assignments) <= 2),
    (["--time-limit", "5", "--solver", "highs"], lambda p: p.solver.name == "highs"),
    (["--gap", "0", "--solver", "highs", "--goal", "maximize_quality", "--budget", "0.05"],
     lambda p: p.solver.status == "optimal" and p.solver.gap is not None and p.solver.gap <= 1e-9),
])
def test_every_option_shapes_the_plan(run_cli, tmp_path, args, check):
    plan, _ = solve_plan(run_cli, tmp_path, *args)
    assert check(plan)


def test_output_formats(run_cli, tmp_path):
    csv_out = tmp_path / "plan.csv"
    code, stdout, _ = run_cli("solve", DEMO, *ARGS, "--format", "csv", "-o", csv_out)
    assert code == 0 and "task_id" in stdout and csv_out.read_text().count("\n") == 8
    pq = tmp_path / "plan.parquet"
    assert run_cli("solve", DEMO, *ARGS, "-o", pq)[0] == 0
    import pandas as pd
    assert len(pd.read_parquet(pq)) == 7
    code, stdout, _ = run_cli("solve", DEMO, *ARGS, "--format", "json", "-o", "-")
    assert code == 0 and '"assignments"' in stdout


@pytest.mark.parametrize("args, expected", [
    (["solve", ROOT / "nope.yaml"], "nope.yaml: no such file"),
    (["solve", DEMO, "--budget", "-1"], "--budget: expected a number >= 0"),
    (["solve", DEMO, "--goal", "cheapest"], "--goal: expected one of minimize_cost"),
    (["solve", DEMO, "--models", "gpt-9"], "unknown model 'gpt-9'"),
    (["solve", DEMO, "--weights", "cost=a"], "--weights: cost: expected a number"),
    (["solve", DEMO, "--solver", "magic"], "--solver: unknown backend 'magic'"),
    (["solve", DEMO, "--gap", "1.5"], "--gap: expected a relative gap in [0, 1)"),
    (["solve", DEMO, "--max-latency", "0.2"], "no model can serve task 'summarize_doc'"),
    (["solve", DEMO, "--avg-quality", "0.99", "--solver", "highs"], "--avg-quality 0.99 is unreachable"),
    (["solve", DEMO, "--deadline", "1", "--solver", "highs"], "no model can serve"),
    (["solve", DEMO, "--catalog", ROOT / "missing.yaml"], "no such catalog file"),
    (["catalog", "show", "gpt-4.2"], "unknown model 'gpt-4.2'"),
    # looking at plans and runs
    (["run", ROOT / "plan.csv"], "plan.csv: a .csv plan is one row per task"),
    (["run", ROOT / "plan.parquet", "-o", ROOT / "never-written"], "use the plan.json that `routeplan solve"),
    (["plan", "show", ROOT / "plan.csv"], "use the plan.json"),
    (["plan", "show", ROOT / "missing.json"], "missing.json: no such file"),
    (["plan", "show", DEMO], "not a routeplan plan"),
    (["plan", "show", ROOT], "expected a plan.json file, got a directory"),
    (["plan", "show", ROOT / "catalogs" / "__init__.py", "--format", "xml"], "--format: expected table, json or csv"),
    (["plan", "show", ROOT / "README.md", "--rows", "-1"], "--rows: expected a number of rows >= 0"),
    (["report", ROOT / "examples"], "no run ledger (ledger.sqlite) here"),
    # safety
    (["solve", DEMO, "--share-cap", "gpt-4.1-mni=0.3"], "--share-cap gpt-4.1-mni=0.3: unknown model"),
    (["solve", DEMO, "--share-cap", "gpt-4.1-mni=0.3"], "did you mean gpt-4.1-mini"),
    (["solve", DEMO, "--budget", "1e308"], "--budget: $1e+308 is above the $1,000,000,000"),
    (["sweep", DEMO, "--budget", "1:1e308:3"], "--budget: values must be in [0, 1e+09]"),
    (["sweep", DEMO, "--budget", "1e308", "--deadline", "60:600:3"], "--budget: $1e+308 is above"),
])
def test_bad_input_exits_2_with_one_line(run_cli, tmp_path, args, expected):
    code, _, err = run_cli(*args, "-o", tmp_path / "p.json") if args[0] == "solve" else run_cli(*args)
    assert code == 2, err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "p.json").exists()


def test_solve_out_names_an_existing_folder(run_cli, tmp_path):
    folder = tmp_path / "plan.json"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    code, _, err = run_cli("solve", DEMO, *ARGS, "-o", folder)
    assert code == 2 and "it is a folder" in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]


def test_share_cap_accepts_the_short_name_tables_print(run_cli, tmp_path):
    plan, _ = solve_plan(run_cli, tmp_path, "--share-cap", "deepseek-chat=0.3")
    assert plan.limits.share_caps == {"deepseek/deepseek-chat": 0.3}
    assert sum(a.model == "deepseek/deepseek-chat" for a in plan.assignments) <= 2


def test_task_no_model_can_serve(run_cli, tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("- id: pic\n  type: qa\n  prompt: describe\n  input_tokens: 5\n  capabilities: [vision]\n"
                 "  deny_providers: [openai, gemini, bedrock, anthropic]\n")
    code, _, err = run_cli("validate", p)
    assert code == 2 and "task 'pic'" in err and "needs vision" in err, err
    code, _, err = run_cli("solve", p, "-o", "-")
    assert code == 2 and "no model can serve task 'pic'" in err


def test_validate_and_catalog_commands(run_cli):
    code, out, _ = run_cli("validate", DEMO)
    assert code == 0 and "7 tasks OK" in out
    code, out, _ = run_cli("catalog", "list")
    assert code == 0 and "gpt-4.1-mini" in out and "@batch" in out
    code, out, _ = run_cli("catalog", "show", "gpt-4.1-mini")
    assert code == 0 and "artificial_analysis" not in out and "GPT-4.1 mini" in out and "price map" in out


def test_user_catalog_extends_default(tmp_path):
    from planner.catalog import load_catalog
    p = tmp_path / "c.yaml"
    p.write_text("extends: default\nremove: ['gpt-5']\nmodels:\n  - id: gpt-4.1-mini\n"
                 "    input_cost_per_token: 0.0000001\n    sources: {price: negotiated}\n")
    cat = load_catalog(p)
    assert "gpt-5" not in cat.names and cat.get("gpt-4.1-mini").input_cost_per_token == 1e-7
    assert cat.get("gpt-4.1-mini").price_source == "negotiated"
    cat2 = load_catalog(overrides={"gpt-4.1": {"ttft_s": 9.0}})
    assert cat2.get("gpt-4.1").ttft_s == 9.0


def test_default_catalog_covers_the_brief():
    from planner import pricing
    from planner.catalog import load_catalog
    cat = load_catalog()
    assert len(cat.profiles) >= 12 and len({p.vendor for p in cat.profiles}) >= 4
    for p in cat.profiles:
        assert pricing.lookup(p.id) is not None, p.id
        assert {"ttft_s", "output_tokens_per_s", "quality"} <= set(p.sources)
    assert any(o.mode == "batch" for o in cat.offerings)


def test_import_planner_does_not_import_litellm():
    code = ("import sys, planner; planner.Limits; planner.make_plan; import planner.commands.solve; "
            "import planner.cli; assert 'litellm' not in sys.modules, 'litellm imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_demo_solve_skips_litellm(tmp_path):
    """Solving a batch whose tokens are given never imports litellm (its import is most of
    a cold start). How fast the solve is belongs to benchmarks, not to a timed test."""
    code = ("import sys; from planner.cli import main\n"
            "try: main(['solve', sys.argv[1], '--budget', '10', '-o', sys.argv[2]])\n"
            "except SystemExit as e: assert not e.code\n"
            "assert 'litellm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(DEMO), str(tmp_path / "p.json")],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    assert (tmp_path / "p.json").exists()


def test_counts_tokens_with_litellm_when_not_given(tmp_path):
    from planner import tokens
    from planner.catalog import load_catalog
    from planner.formulation import formulate
    from planner.tasks import tasks_from_records
    tasks = tasks_from_records([{"id": "x", "type": "chat", "prompt": "Hello there, how are you today?"}])
    f = formulate(tasks, load_catalog(), models=["gpt-4.1-mini", "deepseek/deepseek-chat"])
    assert 5 < f.in_tok[0, 0] < 30 and f.in_tok[0, -1] > 5
    assert any("litellm" in u for u in tokens.counter_used()) or tokens._memory
