"""Bad pipelines and inputs: one line naming the step (or input) and the problem, exit 2,
no traceback; and a step failing after others spent keeps their spend in the report."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.pipeline.conftest import DEMO, cli, ledger_spend_usd

ROUTE = """
  - id: route
    tool: multi-model-routing
    action: route
    parameters:
      tasks: [{id: a, type: summarize, prompt: "Summarize this", max_tokens: 200}]
      routing_strategy: cost
"""


def write(tmp_path: Path, body: str, inputs: str = "") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"id: t\nbudget: 1.0\n{inputs}steps:\n" + textwrap.dedent(body).strip("\n") + "\n")
    return path


def expect_error(capsys, argv: list[str], *fragments: str) -> str:
    code, _, err = cli(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def demo_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    edit(data)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def step(data: dict, step_id: str) -> dict:
    return next(s for s in data["steps"] if s["id"] == step_id)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_unknown_tool(tmp_path, capsys, command):
    path = write(tmp_path, ROUTE.replace("multi-model-routing", "model-router"))
    argv = ["pipeline", command, str(path)] + (["-o", str(tmp_path / "o")] if command == "run" else [])
    expect_error(capsys, argv,
                 "step route", "unknown tool 'model-router'", "multi-model-routing")


def test_unknown_action(tmp_path, capsys):
    path = write(tmp_path, ROUTE.replace("action: route", "action: analyze_requirements"))
    expect_error(capsys, ["pipeline", "validate", str(path)],
                 "step route", "unknown action 'analyze_requirements'", "route, optimize_batch")


def test_unknown_bare_action(tmp_path, capsys):
    path = write(tmp_path, "  - id: x\n    action: summarize\n")
    expect_error(capsys, ["pipeline", "validate", str(path)], "step x", "unknown action 'summarize'")


def test_unknown_parameter(tmp_path, capsys):
    path = write(tmp_path, ROUTE.replace("routing_strategy: cost", "routing_strategy: cost\n      budget: 3"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step route", "parameters.budget",
                 "unknown parameter")


def test_bad_literal_parameter(tmp_path, capsys):
    path = write(tmp_path, ROUTE.replace("routing_strategy: cost", "routing_strategy: cheapest"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step route",
                 "parameters.routing_strategy")


def test_missing_input(tmp_path, capsys):
    inputs = "inputs:\n  priority: {type: str, choices: [cost, speed]}\n"
    path = write(tmp_path, ROUTE.replace("routing_strategy: cost", 'routing_strategy: "{{ priority }}"'),
                 inputs)
    expect_error(capsys, ["pipeline", "run", str(path), "-o", str(tmp_path / "o")],
                 "input priority", "required", "-i priority=")


def test_input_of_the_wrong_type_or_value(capsys):
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "task_budget=lots"],
                 "input task_budget", "expected float")
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "priority=cheap"],
                 "input priority", "cost, speed, quality, balanced")
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "budget=3"],
                 "input budget", "not declared")
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "task_budget"], "key=value")


def test_template_naming_a_missing_step(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code")["parameters"].update(
        model="{{ assess_requirement.recommendations[1].model }}"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step generate_code",
                 "parameters.model", "assess_requirement.recommendations[1].model",
                 "'assess_requirement' is neither an input nor a step")


def test_template_naming_a_missing_field(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code")["parameters"].update(
        model="{{ assess_requirements.recommendation[1].model }}"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step generate_code",
                 "step assess_requirements has no field 'recommendation'")


def test_template_reading_past_the_results_fails_at_run_naming_step_and_expression(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code")["parameters"].update(
        model="{{ assess_requirements.recommendations[7].model }}"))
    out = tmp_path / "o"
    line = expect_error(capsys, ["pipeline", "run", str(path), "-o", str(out)],
                        "step generate_code", "{{ assess_requirements.recommendations[7].model }}",
                        "no element 7")
    report = (out / "report.md").read_text()
    assert "Stopped" in report and "no element 7" in line
    assert "### summarize_document" in report  # the step that ran before is reported
    results = json.loads((out / "results.json").read_text())
    spent = results["budget"]["spent_usd"]
    assert spent > 0 and spent == pytest.approx(ledger_spend_usd(out), abs=1e-12)


def test_template_syntax_error(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code")["parameters"].update(
        model="{{ assess_requirements.recommendations[1].model }"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step generate_code",
                 "template syntax error")


def test_dependency_cycle(tmp_path, capsys):
    def cycle(d):
        step(d, "assess_requirements")["dependencies"] = ["batch_processing"]
    path = demo_variant(tmp_path, cycle)
    line = expect_error(capsys, ["pipeline", "validate", str(path)], "dependency cycle",
                        "assess_requirements", "batch_processing")
    assert line.count("->") >= 2


def test_template_implies_a_dependency_and_so_a_cycle(tmp_path, capsys):
    def cycle(d):
        step(d, "assess_requirements")["parameters"]["request"] = "{{ generate_code.result }}"
    path = demo_variant(tmp_path, cycle)
    expect_error(capsys, ["pipeline", "validate", str(path)], "dependency cycle", "generate_code")


def test_unknown_dependency_and_duplicate_id(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code").update(dependencies=["asses"]))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step generate_code",
                 "unknown step 'asses'")
    path = demo_variant(tmp_path, lambda d: d["steps"].append(dict(step(d, "generate_code"))))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step generate_code", "duplicate")


def test_schema_errors_name_the_step(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "analyze_data").update(dependency=["x"]))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step analyze_data", "dependency",
                 "unknown field")
    path = demo_variant(tmp_path, lambda d: step(d, "analyze_data").pop("action"))
    expect_error(capsys, ["pipeline", "validate", str(path)], "step analyze_data", "action")


def test_malformed_yaml_and_missing_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nsteps:\n  - id: [\n")
    expect_error(capsys, ["pipeline", "validate", str(path)], str(path), "line")
    expect_error(capsys, ["pipeline", "run", str(tmp_path / "none.yaml")], "no such file")


def test_a_budget_that_pays_for_nothing(capsys):
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "task_budget=0"], "budget", "> 0")


def test_a_per_task_budget_no_model_meets_stops_the_step_and_keeps_earlier_spend(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "batch_processing")["parameters"]["constraints"]
                        .update(max_budget_per_task=1e-6))
    out = tmp_path / "o"
    expect_error(capsys, ["pipeline", "run", str(path), "-o", str(out), "-i", "priority=cost"],
                 "step batch_processing", "no model can serve", "max_cost_usd", "cheapest")
    results = json.loads((out / "results.json").read_text())
    spent = results["budget"]["spent_usd"]
    assert spent > 0 and spent == pytest.approx(ledger_spend_usd(out), abs=1e-12)
    assert [s["step_id"] for s in results["budget"]["steps"]] == \
        ["summarize_document", "generate_code", "analyze_data"]
    report = (out / "report.md").read_text()
    assert "Stopped" in report and "step batch_processing" in report
    assert f"${spent:,.6f}" in report


def test_an_unknown_model_in_an_llm_step(tmp_path, capsys):
    path = demo_variant(tmp_path, lambda d: step(d, "generate_code")["parameters"].update(
        model="gpt-4.1-mimi"))
    expect_error(capsys, ["pipeline", "run", str(path), "-o", str(tmp_path / "o")],
                 "step generate_code", "parameters.model", "gpt-4.1-mimi", "gpt-4.1-mini")


def test_a_live_run_folder_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "o"
    (out / "steps").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps({"simulated": False}))
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-o", str(out)], str(out),
                 "choose another --out")
    assert (out / "results.json").exists()


def test_live_without_keys_is_an_error_not_a_silent_simulation(tmp_path, capsys, monkeypatch):
    for var in ("OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DEEPSEEK_API_KEY",
                "GEMINI_API_KEY", "AZURE_AI_API_KEY", "AZURE_AI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "o"
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-o", str(out), "--live"],
                 "step summarize_document", "--live", "keys not set")
    assert json.loads((out / "results.json").read_text())["budget"]["spent_usd"] == 0


def test_a_missing_catalog_fails_before_any_step(tmp_path, capsys):
    out = tmp_path / "o"
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-o", str(out), "--catalog",
                          str(tmp_path / "none.yaml")], "none.yaml", "no such catalog file")
    assert not out.exists()


def test_run_out_an_existing_file_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    expect_error(capsys, ["pipeline", "run", str(DEMO), "--out", str(target)], "it is a file", str(target))
    assert target.read_text() == "keep me"


def test_an_absurd_budget_is_refused_before_any_step(tmp_path, capsys):
    out = tmp_path / "o"
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-i", "task_budget=1e308", "-o", str(out)],
                 "budget: $1e+308 is above")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--solver", "gurobi"], "--solver: unknown solver 'gurobi'; expected one of highs, cpsat, cbc, fast, auto"),
    (["--solver", "gurobi", "-i", "priority=nope"], "--solver: unknown solver 'gurobi'"),
    (["--catalog", "missing.yaml"], "missing.yaml: no such catalog file"),
])
def test_a_bad_option_stops_before_any_step(tmp_path, capsys, args, fragment):
    """Options are checked before the first step runs; nothing is written."""
    out = tmp_path / "out"
    expect_error(capsys, ["pipeline", "run", str(DEMO), "-o", str(out), *args], fragment)
    assert not out.exists()


def test_an_unknown_solver_in_a_step_fails_validation(tmp_path, capsys):
    path = write(tmp_path, ROUTE + "      solver: gurobi\n")
    expect_error(capsys, ["pipeline", "validate", str(path)], "step route", "unknown solver 'gurobi'")
