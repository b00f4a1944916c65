"""Task types are category labels; catalogs may lack latency data; output length per category."""

from __future__ import annotations

import pytest

from planner import Limits, make_plan
from planner.catalog import load_catalog
from planner.errors import InfeasibleError, InputError
from planner.formulation import formulate
from planner.tasks import tasks_from_records

CUSTOM = """\
version: 1
models:
  - id: house/small
    input_cost_per_token: 1.0e-7
    output_cost_per_token: 4.0e-7
    quality: {mmlu-physics: 0.55, arc-challenge: 0.6}
    output_tokens: {arc-challenge: 3}
  - id: house/large
    input_cost_per_token: 2.0e-6
    output_cost_per_token: 8.0e-6
    quality: {mmlu-physics: 0.85, arc-challenge: 0.9}
"""


def _tasks(*types: str, **extra):
    return tasks_from_records([{"id": f"t{i}", "type": t, "prompt": "Which is heavier?", "input_tokens": 100,
                                **extra} for i, t in enumerate(types)])


@pytest.fixture
def custom(tmp_path):
    p = tmp_path / "custom.yaml"
    p.write_text(CUSTOM)
    return p


def test_any_label_is_a_type_and_matches_case_insensitively():
    (t,) = _tasks("  MMLU-Physics ")
    assert t.type == "mmlu-physics"


def test_label_the_catalog_knows_is_planned(custom):
    plan = make_plan(_tasks("mmlu-physics", "arc-challenge"), custom, goal="maximize_quality")
    assert {a.model for a in plan.assignments} == {"house/large"}
    assert [a.projected_quality for a in plan.assignments] == pytest.approx([0.85, 0.9])


def test_unknown_label_is_one_line_naming_it():
    with pytest.raises(InputError) as exc:
        make_plan(_tasks("mmlu-physics"), None)
    msg = str(exc.value)
    assert "type 'mmlu-physics' is not a category catalog default knows" in msg
    assert "default_category" in msg and "\n" not in msg


def test_default_category_takes_unknown_labels(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("extends: default\ndefault_category: qa\n")
    cat = load_catalog(p)
    f = formulate(_tasks("mmlu-physics", "code"), cat)
    assert f.categories == ["qa", "code"]
    j = [o.name for o in f.offerings].index("gpt-5-mini")
    assert f.quality[0, j] == pytest.approx(cat.get("gpt-5-mini").quality["qa"])


def test_default_category_must_be_scored(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("extends: default\ndefault_category: poetry\n")
    with pytest.raises(InputError, match="default_category: 'poetry' is not a category any model scores"):
        load_catalog(p)


def test_model_without_the_category_cannot_serve_it(custom, tmp_path):
    p = tmp_path / "more.yaml"
    p.write_text(f"extends: {custom.name}\nmodels:\n  - id: house/coder\n    input_cost_per_token: 1.0e-9\n"
                 f"    output_cost_per_token: 1.0e-9\n    quality: {{code: 0.9}}\n")
    f = formulate(_tasks("arc-challenge"), load_catalog(p))
    j = [o.name for o in f.offerings].index("house/coder")
    assert not f.feasible[0, j] and f.excluded["category profile"][0, j]
    plan = make_plan(_tasks("arc-challenge"), p, goal="minimize_cost")
    assert plan.assignments[0].model == "house/small"


def test_measured_output_tokens_replace_the_type_default(custom):
    f = formulate(_tasks("arc-challenge"), load_catalog(custom))
    names = [o.name for o in f.offerings]
    assert f.visible_tok[0, names.index("house/small")] == 3  # measured for this model and category
    assert f.visible_tok[0, names.index("house/large")] == 250  # the default for a non-built-in label
    (given,) = _tasks("arc-challenge", expected_output_tokens=7)
    f = formulate([given], load_catalog(custom))
    assert f.visible_tok[0, names.index("house/small")] == 7  # the task's own figure wins


def test_catalog_without_latency_plans_and_says_so(custom):
    plan = make_plan(_tasks("arc-challenge"), custom, goal="minimize_cost")
    assert plan.assignments[0].projected_latency_s == 0
    assert any("no latency data" in n and "house/small" in n for n in plan.notes)
    snap = plan.model_by_name()["house/small"]
    assert snap.ttft_s is None and snap.output_tokens_per_s is None


def test_latency_limit_without_latency_data_is_explained(custom):
    with pytest.raises(InfeasibleError, match="no latency data"):
        make_plan(_tasks("arc-challenge"), custom, limits=Limits(max_latency_s=30))


def test_calibrated_models_beside_timed_ones_respect_deadlines(tmp_path):
    p = tmp_path / "mixed.yaml"
    p.write_text("extends: default\nmodels:\n  - id: house/untimed\n    input_cost_per_token: 0\n"
                 "    output_cost_per_token: 0\n    quality: {default: 0.99}\n")
    tasks = _tasks("code", "summarize")
    plan = make_plan(tasks, p, goal="minimize_cost")
    assert {a.model for a in plan.assignments} == {"house/untimed"}
    plan = make_plan(tasks, p, goal="minimize_cost", limits=Limits(max_latency_s=60))
    assert "house/untimed" not in {a.model for a in plan.assignments}
