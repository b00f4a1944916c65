"""The python_tests sandbox: time and memory limits, and no secrets in the child."""

from __future__ import annotations

import time

import pytest

from planner.checks.graders import grade
from planner.checks.sandbox import run_tests
from planner.checks.schema import parse_check

FAKE_KEYS = {"OPENAI_API_KEY": "sk-fake-openai-0123456789", "ANTHROPIC_API_KEY": "sk-ant-fake-abcdef",
             "MY_SERVICE_TOKEN": "tok-fake-secret-42", "AWS_SECRET_ACCESS_KEY": "aws-fake-secret-99"}


def test_an_infinite_loop_ends_at_the_time_limit():
    t0 = time.monotonic()
    result = run_tests("def f():\n    while True:\n        pass", ["assert 1 == 1", "f()", "assert 2 == 2"],
                       timeout_s=1.5)
    assert time.monotonic() - t0 < 10
    assert result.ended is not None and "time limit" in result.ended
    assert result.passed == [True, False, False]  # the assert before the loop keeps its credit
    assert result.score == pytest.approx(1 / 3)


def test_a_memory_bomb_ends_at_the_memory_limit():
    bomb = "def bomb():\n    x = []\n    while True:\n        x.append(bytearray(10**7))"
    t0 = time.monotonic()
    result = run_tests(bomb, ["bomb()", "assert True"], timeout_s=20, memory_mb=200)
    assert time.monotonic() - t0 < 15
    assert result.passed == [False, True]
    assert "MemoryError" in (result.errors[0] or "")


def test_answer_code_that_crashes_scores_zero_with_the_reason():
    g = grade(parse_check({"kind": "python_tests", "tests": ["assert f() == 1"]}), "import nonexistent_mod_xyz")
    assert g.score == 0.0
    assert "ModuleNotFoundError" in g.reason


def test_no_secret_reaches_the_child_or_its_files(monkeypatch, tmp_path):
    for k, v in FAKE_KEYS.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "seen"
    code = (
        "import os, pathlib\n"
        f"pathlib.Path({str(out)!r}).write_text(repr(dict(os.environ)))\n"
        "print(dict(os.environ))\n"
        "ENV = dict(os.environ)\n")
    tests = [f"assert {k!r} not in ENV" for k in FAKE_KEYS] + ["assert 'PATH' in ENV"]
    result = run_tests(code, tests, timeout_s=10)
    assert result.code_error is None, result.code_error
    assert all(result.passed), result.errors
    seen = out.read_text()
    for k, v in FAKE_KEYS.items():
        assert k not in seen and v not in seen
