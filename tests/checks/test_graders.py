"""Each grader on fixtures: a passing, a failing and a malformed answer."""

from __future__ import annotations

import pytest

from planner.checks.graders import grade, parse_judge
from planner.checks.schema import parse_check

FENCE = "`" * 3

CASES = [
    # (check, passing answer, failing answer, malformed answer)
    ({"kind": "exact", "answer": "Paris"}, "  Paris\n", "paris", ""),
    ({"kind": "match", "answer": "hola mundo", "mode": "contains"}, "Spanish: ¡Hola,   MUNDO!", "Hola amigo",
     "\x00\x01"),
    ({"kind": "match", "answer": ["New York", "NYC"]}, "  new   york. ", "New York City", "   "),
    ({"kind": "regex", "pattern": r"\b\d{3}-\d{4}\b"}, "Call 555-1234 today", "Call 5551234", ""),
    ({"kind": "regex", "pattern": r"[a-z]+", "mode": "fullmatch"}, " hello ", "hello world", "123"),
    ({"kind": "choice", "answer": "B"}, "Reasoning... so the answer is **B**.", "The answer is (C).",
     "I cannot decide."),
    ({"kind": "choice", "answer": "C", "options": {"A": "Berlin", "B": "Madrid", "C": "Paris"}},
     "It is Paris, of course.", "Madrid", "none of these"),
    ({"kind": "number", "answer": 42, "tolerance": 0.01}, "x = 6*7, so the answer is 42.004", "answer: 41.9",
     "forty-two"),
    ({"kind": "number", "answer": 1_000_000, "rel_tolerance": 0.001}, "about 1,000,400 people", "1,002,000",
     "many"),
    ({"kind": "number", "answer": 0.25}, "\\boxed{25%}", "\\boxed{0.3}", "n/a"),
    ({"kind": "json_schema", "schema": {"type": "object", "required": ["name", "age"],
                                        "properties": {"age": {"type": "integer", "minimum": 0}}}},
     f'Here:\n{FENCE}json\n{{"name": "Ada", "age": 36}}\n{FENCE}', '{"name": "Ada", "age": -1}',
     '{"name": "Ada", "age": '),
    ({"kind": "python_tests", "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]},
     f"Sure:\n{FENCE}python\ndef add(a, b):\n    return a + b\n{FENCE}",
     f"{FENCE}python\ndef add(a, b):\n    return a - b\n{FENCE}", "def add(a, b) return"),
]


@pytest.mark.parametrize(("raw", "good", "bad", "malformed"), CASES, ids=[c[0]["kind"] for c in CASES])
def test_grader_passes_fails_and_survives_malformed(raw, good, bad, malformed):
    check = parse_check(raw)
    passed = grade(check, good)
    assert passed.score == 1.0, passed
    assert passed.grader == check.kind
    failed = grade(check, bad)
    assert failed.score == 0.0, failed
    assert failed.reason  # says why
    broken = grade(check, malformed)
    assert broken.score == 0.0, broken
    assert broken.reason


def test_python_tests_scores_the_fraction_of_asserts_passed():
    check = parse_check({"kind": "python_tests", "tests": [
        "assert fib(0) == 0", "assert fib(10) == 55", "assert fib(-1) == 0", "assert fib(2) == 2"]})
    code = f"{FENCE}python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n{FENCE}"
    g = grade(check, code)
    assert g.score == 0.75
    assert "3/4" in g.reason and "test 3" in g.reason


def test_python_tests_setup_runs_before_the_answer():
    check = parse_check({"kind": "python_tests", "setup": "import math", "tests": ["assert area(1) == math.pi"]})
    assert grade(check, "def area(r):\n    return math.pi * r * r").score == 1.0


def test_choice_reads_the_conclusion_not_the_options_discussed():
    check = parse_check({"kind": "choice", "answer": "D"})
    assert grade(check, "Option A is wrong, option B too. The answer is D.").score == 1.0
    assert grade(check, "D) 42").score == 1.0


def test_number_ignores_working_when_an_answer_is_marked():
    check = parse_check({"kind": "number", "answer": 12})
    assert grade(check, "3 + 4 + 5 = 12; Final answer: 12").score == 1.0
    assert grade(check, "The answer is 12 (not 13)").score == 1.0
    assert grade(check, "-12").score == 0.0


@pytest.mark.parametrize(("reply", "score"), [
    ("SCORE: 7\nREASON: mostly right", 0.7), ("Score = 10/10. Reason: perfect", 1.0),
    ("**SCORE:** 0\nREASON: wrong", 0.0), ("score: 3/5", 0.6)])
def test_judge_reply_is_read(reply, score):
    g = parse_judge(reply)
    assert g is not None and g.score == pytest.approx(score)
    assert g.grader == "judge"


@pytest.mark.parametrize("reply", ["", "I like it", "SCORE: 11", "SCORE: 4/0"])
def test_judge_reply_without_a_usable_score_is_none(reply):
    assert parse_judge(reply) is None


@pytest.mark.parametrize(("raw", "message"), [
    ({"kind": "fuzzy"}, "unknown kind 'fuzzy'"),
    ({"answer": "A"}, "kind is required"),
    ({"kind": "regex", "pattern": "(a"}, "invalid regex"),
    ({"kind": "regex", "pattern": "a+", "example": "bbb"}, "does not match"),
    ({"kind": "choice", "answer": "E"}, "not among the options A, B, C, D"),
    ({"kind": "choice", "answer": "A", "options": ["A"]}, "at least two options"),
    ({"kind": "number", "answer": "many"}, "answer"),
    ({"kind": "number", "answer": 1, "tolerance": -1}, "tolerance"),
    ({"kind": "json_schema", "schema": {"type": "nonsense"}}, "invalid JSON Schema"),
    ({"kind": "json_schema", "schema": {"type": "integer"}, "example": "x"}, "example is not valid"),
    ({"kind": "python_tests", "tests": []}, "tests"),
    ({"kind": "python_tests", "tests": ["assert f(1) =="]}, "not valid Python"),
    ({"kind": "judge", "rubric": "be right"}, "model is required"),
    ({"kind": "exact", "answer": "x", "anwser": "y"}, "unknown field 'anwser'"),
    ("not json", "expected a mapping"),
])
def test_bad_checks_are_one_line_errors(raw, message):
    with pytest.raises(ValueError) as info:
        parse_check(raw)
    text = str(info.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize(("answer", "score"), [
    ("the answer is b", 1.0), ("The answer is a bit unclear, but (b)", 1.0), ("Answer: (B)", 1.0),
    ("the answer is a", 0.0), ("I pick option b.", 1.0)])
def test_choice_reads_lower_case_labels_but_not_the_article(answer, score):
    assert grade(parse_check({"kind": "choice", "answer": "B"}), answer).score == score


@pytest.mark.parametrize(("answer", "score"), [
    ("\\boxed{\\frac{1}{2}}", 1.0), ("The answer is 1/2.", 1.0), ("answer: 0.5", 1.0), ("answer: 2/3", 0.0)])
def test_number_reads_fractions(answer, score):
    assert grade(parse_check({"kind": "number", "answer": 0.5, "tolerance": 1e-9}), answer).score == score


def test_python_tests_takes_one_test_as_text_and_sees_installed_packages():
    check = parse_check({"kind": "python_tests", "tests": "assert total([1, 2]) == 3"})
    assert check.tests == ["assert total([1, 2]) == 3"]
    code = "import numpy as np\ndef total(xs):\n    return int(np.sum(xs))"
    assert grade(check, code).score == 1.0


@pytest.mark.parametrize("raw", [
    {"kind": "contains", "answer": "hola"}, {"kind": "match", "answer": "hola", "contains": True},
    {"kind": "match", "answer": "hola", "mode": "contains"}])
def test_contains_spellings_are_one_check(raw):
    check = parse_check(raw)
    assert (check.kind, check.mode) == ("match", "contains")
    assert grade(raw, "¡HOLA, amigo!").score == 1.0


def test_alias_field_names_and_a_stored_check_round_trips():
    from planner.checks.schema import check_to_json

    for raw in ({"kind": "number", "answer": 2, "atol": 0.5}, {"kind": "choice", "answer": "b", "choices": ["a", "b"]},
                {"kind": "python_tests", "asserts": ["assert True"]}, {"kind": "json_schema", "schema": {"type": "array"}}):
        check = parse_check(raw)
        assert parse_check(check_to_json(check)) == check
    assert parse_check({"kind": "number", "answer": 2, "atol": 0.5}).tolerance == 0.5
