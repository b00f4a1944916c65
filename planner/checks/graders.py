"""Graders: pure functions from (check, answer text) to a :class:`Grade` (score in [0, 1] and
why). ``grade`` dispatches on the check's kind; ``judge`` is not here (it is a model call, made
by the executor) but its prompt and the reading of its reply are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from planner.checks import extract
from planner.checks.schema import (
    ChoiceCheck,
    ExactCheck,
    JsonSchemaCheck,
    JudgeCheck,
    MatchCheck,
    NumberCheck,
    PythonTestsCheck,
    RegexCheck,
    parse_check,
)

REASON_CHARS = 300


@dataclass(frozen=True)
class Grade:
    """A score in [0, 1], the grader's name and a one-line reason."""

    score: float
    grader: str
    reason: str

    def passed(self, pass_score: float) -> bool:
        return self.score >= pass_score


def _grade(score: float, grader: str, reason: str) -> Grade:
    reason = " ".join(reason.split())
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS - 3] + "..."
    return Grade(min(1.0, max(0.0, float(score))), grader, reason)


def _shown(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[:n - 3] + "...")


def grade_exact(check: ExactCheck, answer: str) -> Grade:
    got = answer.strip()
    if got in (a.strip() for a in check.answers):
        return _grade(1, "exact", "equals the expected answer")
    return _grade(0, "exact", f"got {_shown(got)}, expected {_shown(check.answers[0])}")


def grade_match(check: MatchCheck, answer: str) -> Grade:
    norm = extract.normalise(answer, punctuation=check.ignore_punctuation)
    for expected in check.answers:
        want = extract.normalise(expected, punctuation=check.ignore_punctuation)
        if (want in norm) if check.mode == "contains" else (want == norm):
            return _grade(1, "match", f"{'contains' if check.mode == 'contains' else 'matches'} {_shown(expected)}")
    verb = "does not contain" if check.mode == "contains" else "does not match"
    return _grade(0, "match", f"{_shown(answer)} {verb} {_shown(check.answers[0])}")


def grade_regex(check: RegexCheck, answer: str) -> Grade:
    if check.matches(answer):
        return _grade(1, "regex", f"matches /{check.pattern}/")
    return _grade(0, "regex", f"{_shown(answer)} does not {'fully ' if check.mode == 'fullmatch' else ''}"
                              f"match /{check.pattern}/")


def grade_choice(check: ChoiceCheck, answer: str) -> Grade:
    texts = check.options if isinstance(check.options, dict) else None
    picked = extract.choice_of(answer, check.labels, {k.upper(): v for k, v in texts.items()} if texts else None)
    if picked is None:
        return _grade(0, "choice", f"no option picked in {_shown(answer)}")
    if picked == check.answer:
        return _grade(1, "choice", f"picked {picked}")
    return _grade(0, "choice", f"picked {picked}, expected {check.answer}")


def grade_number(check: NumberCheck, answer: str) -> Grade:
    value = extract.number_of(answer)
    if value is None or not math.isfinite(value):
        return _grade(0, "number", f"no number in {_shown(answer)}")
    error = abs(value - check.answer)
    if error <= check.allowed_error + 1e-12 * max(1.0, abs(check.answer)):
        return _grade(1, "number", f"{value:g} is within {check.allowed_error:g} of {check.answer:g}")
    return _grade(0, "number", f"got {value:g}, expected {check.answer:g} (off by {error:g}, "
                               f"allowed {check.allowed_error:g})")


def grade_json_schema(check: JsonSchemaCheck, answer: str) -> Grade:
    found, value, why = extract.json_of(answer)
    if not found:
        return _grade(0, "json_schema", why)
    error = check.first_error(value)
    if error is None:
        return _grade(1, "json_schema", "valid against the schema")
    return _grade(0, "json_schema", f"invalid: {error}")


def grade_python_tests(check: PythonTestsCheck, answer: str) -> Grade:
    from planner.checks.sandbox import run_tests

    result = run_tests(extract.code_of(answer), list(check.tests), setup=check.setup,
                       timeout_s=check.timeout_s, memory_mb=check.memory_mb)
    n, k = len(result.passed), sum(result.passed)
    parts = [f"{k}/{n} asserts passed"]
    if result.code_error:
        parts.append(f"the code failed: {result.code_error}")
    if result.ended:
        parts.append(result.ended)
    first = next((f"test {i}: {e}" for i, e in enumerate(result.errors) if e and e != "not run"), None)
    if first and not result.code_error:
        parts.append(f"first failure {first}")
    return _grade(result.score, "python_tests", "; ".join(parts))


_GRADERS: dict[str, Any] = {
    "exact": grade_exact, "match": grade_match, "regex": grade_regex, "choice": grade_choice,
    "number": grade_number, "json_schema": grade_json_schema, "python_tests": grade_python_tests,
}


def grade(check: Any, answer: str) -> Grade:
    """Grade ``answer`` against ``check`` without any model call (every kind but judge)."""
    if isinstance(check, dict | str):
        check = parse_check(check)
    if isinstance(check, JudgeCheck):
        raise ValueError("a judge check is graded by a model call (see judge_messages)")
    return _GRADERS[check.kind](check, answer or "")


# -- judge ------------------------------------------------------------------------------------
JUDGE_SCALE = 10
_SCORE = re.compile(r"(?i)\bscore\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?))?")


def judge_messages(check: JudgeCheck, task_text: str, answer: str) -> list[dict[str, str]]:
    """The judge's prompt: the rubric, the task and the answer; the reply starts 'SCORE: n'."""
    system = (f"You grade answers against a rubric. Reply with exactly two lines:\n"
              f"SCORE: <an integer from 0 to {JUDGE_SCALE}>\nREASON: <one sentence>")
    user = (f"Rubric:\n{check.rubric}\n\nTask:\n{task_text}\n\nAnswer to grade:\n{answer}\n\n"
            f"Grade the answer against the rubric (0 = fails it entirely, {JUDGE_SCALE} = meets it fully).")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_judge(reply: str) -> Grade | None:
    """The judge's grade from its reply, or None when the reply carries no usable score."""
    m = _SCORE.search(reply or "")
    if m is None:
        return None
    value = float(m.group(1))
    scale = float(m.group(2)) if m.group(2) else JUDGE_SCALE
    if scale <= 0 or value > scale:
        return None
    reason = re.search(r"(?i)\breason\s*:\s*(.+)", reply)
    why = reason.group(1).strip() if reason else reply.replace(m.group(0), "").strip() or "no reason given"
    return _grade(value / scale, "judge", f"{value:g}/{scale:g}: {why}")
