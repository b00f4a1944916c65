"""A small catalog with one cascade of each verifier, over a few default models."""

from __future__ import annotations

import pytest
import yaml

MODELS = "gpt-4.1-nano,gpt-4.1,gpt-4o-mini"
CASCADES = {
    "extractors": {"qa": "choice", "math": "number"},
    "candidates": [
        {"category": "qa", "first": "gpt-4.1-nano", "witnesses": ["gpt-4o-mini"], "second": "gpt-4.1",
         "p_accept": 0.7, "quality_accept": 0.97, "quality_reject": 0.85, "n": 500},
        {"category": "math", "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": "self_consistency",
         "samples": 3},
        {"category": "code", "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": "python_tests"},
        {"category": "extraction", "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": "json_schema"},
        {"category": "summarize", "first": "gpt-4.1-nano", "second": "gpt-4.1", "verifier": "judge",
         "judge": "gpt-4o-mini", "threshold": 0.7},
    ],
}
TASKS = {"tasks": [
    {"id": "q1", "type": "qa", "prompt": "Which is prime?\nA) 4\nB) 6\nC) 7\nD) 9", "check": {"kind": "choice", "answer": "C"},
     "expected_output_tokens": 20, "max_tokens": 200},
    {"id": "q2", "type": "qa", "prompt": "Capital of France?\nA) Rome\nB) Paris\nC) Oslo\nD) Bern",
     "check": {"kind": "choice", "answer": "B"}, "expected_output_tokens": 20, "max_tokens": 200},
    {"id": "m1", "type": "math", "prompt": "What is 17 * 3?", "check": {"kind": "number", "answer": 51},
     "expected_output_tokens": 30, "max_tokens": 200},
    {"id": "c1", "type": "code", "prompt": "Write add(a, b) returning a + b.", "expected_output_tokens": 60,
     "max_tokens": 300,
     "check": {"kind": "python_tests", "tests": ["assert add(1, 2) == 3"], "solution": "def add(a, b):\n    return a + b"}},
    {"id": "c2", "type": "code", "prompt": "Write sub(a, b).", "expected_output_tokens": 60, "max_tokens": 300},
    {"id": "e1", "type": "extraction", "prompt": "Give {\"name\": ...} for: Ada Lovelace.", "expected_output_tokens": 30,
     "max_tokens": 200, "check": {"kind": "json_schema", "schema": {"type": "object", "required": ["name"]},
                                  "example": {"name": "Ada Lovelace"}}},
    {"id": "s1", "type": "summarize", "prompt": "Summarize: the cat sat on the mat, then slept all day.",
     "expected_output_tokens": 40, "max_tokens": 200},
]}


for _t in TASKS["tasks"]:
    _t["input_tokens"] = 40  # given: no tokenizer to load


@pytest.fixture
def cascade_files(tmp_path):
    """(tasks.yaml, catalog.yaml) of the small batch and catalog above."""
    cat = tmp_path / "catalog.yaml"
    cat.write_text(yaml.safe_dump({"extends": "default", "cascades": CASCADES}, sort_keys=False))
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(yaml.safe_dump(TASKS, sort_keys=False))
    return tasks, cat
