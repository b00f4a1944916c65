"""Templates: native values for a lone expression, text otherwise, errors that name the step."""

from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.pipeline import templating
from planner.pipeline.schema import InputSpec, parse_assignments

CTX = {"task_budget": 5.0, "priority": "cost",
       "route": {"recommendations": [{"model": "gpt-4.1-nano", "ranked": [1, 2]}]}}


def test_a_lone_expression_keeps_its_type():
    out = templating.render({"b": "{{ task_budget }}", "r": "{{ route.recommendations[0].ranked }}",
                             "n": 3, "nested": ["{{ priority }}"]}, CTX, step_id="s")
    assert out == {"b": 5.0, "r": [1, 2], "n": 3, "nested": ["cost"]}


def test_mixed_text_renders_to_a_string():
    assert templating.render("budget {{ task_budget }} for {{ priority }}", CTX, step_id="s") == \
        "budget 5.0 for cost"
    assert templating.render("{% if priority == 'cost' %}cheap{% endif %}", CTX, step_id="s") == "cheap"


def test_the_demo_expression_works():
    assert templating.render("{{ route.recommendations[0].model }}", CTX, step_id="s") == "gpt-4.1-nano"


@pytest.mark.parametrize(("text", "problem"), [
    ("{{ nope }}", "'nope' is undefined"),
    ("{{ nope.model }}", "'nope' is undefined"),
    ("{{ route.recs[0].model }}", "has no attribute 'recs'"),
    ("{{ route.recommendations[3].model }}", "no element 3"),
    ("{{ route.recommendations[0].modl }}", "has no attribute 'modl'"),
    ("text {{ route.missing }}", "has no attribute 'missing'"),
])
def test_missing_names_and_fields_are_errors_naming_step_and_expression(text, problem):
    with pytest.raises(InputError) as exc:
        templating.render({"model": text}, CTX, step_id="gen")
    msg = str(exc.value)
    assert msg.startswith("step gen: model: ") and text.strip() in msg and problem in msg
    assert "\n" not in msg


def test_references_find_steps_and_their_first_fields():
    roots, fields = templating.references(
        "{{ a.recommendations[0].model }} {{ b['x'] }} {% for i in c %}{{ i.z }}{% endfor %}")
    assert roots == {"a", "b", "c"}
    assert fields == {("a", "recommendations"), ("b", "x")}


def test_inputs_are_typed_by_their_declaration():
    spec = InputSpec(type="float", default=10.0, min=0)
    assert spec.coerce("task_budget", "5") == 5.0
    with pytest.raises(InputError, match="expected float"):
        spec.coerce("task_budget", "five")
    with pytest.raises(InputError, match=">= 0"):
        spec.coerce("task_budget", "-1")
    choice = InputSpec(type="str", choices=["cost", "speed"])
    with pytest.raises(InputError, match="one of cost, speed"):
        choice.coerce("priority", "fast")
    assert InputSpec(type="int").coerce("n", "3") == 3
    assert InputSpec(type="bool").coerce("flag", "yes") is True
    assert parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
