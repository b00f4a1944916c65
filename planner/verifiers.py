"""Verifiers of a cascade: does the first model's answer stand, with no reference answer?

A cascade ``first -> verifier -> second`` keeps the first model's answer when its verifier
accepts it and asks the second model otherwise. This module holds every verifier: what it
calls, what it decides from the answers it gets, and what it would accept if the models were
right or wrong independently (the estimate a plan uses when no joint outcomes were fitted).

=====================  =================================  ==========================================
verifier               calls (the verify stage)           accepts when
=====================  =================================  ==========================================
``agree``              each witness once                  every witness's extracted answer equals
                                                          the first's (``choice``/``number``/``match``)
``self_consistency``   the first model ``samples - 1``    all ``samples`` answers of the first model
                       more times                         agree (extracted the same way)
``json_schema``        nothing                            the answer validates against ``schema``
                                                          (default: the task's own json_schema check)
``python_tests``       nothing (a sandboxed run)          the task's own ``python_tests`` pass
``judge``              the judge model once               the judge's score >= ``threshold``
=====================  =================================  ==========================================

Independence estimates (P(accept), q(first | accept), q(second | reject)) with ``q1``, ``q2``
the two stages' qualities on the task: ``agree`` as in :func:`planner.cascade.independence`
(wrong answers agree by chance on one of ``L - 1`` wrong options); ``self_consistency`` the
same with ``samples - 1`` witnesses of quality ``q1``; ``json_schema`` and ``python_tests``
pass right answers and fail wrong ones (they are the task's own check); a ``judge`` is right
about an answer with its own quality ``qj`` for the category, so it accepts with
``q1 qj + (1 - q1)(1 - qj)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("agree", "self_consistency", "json_schema", "python_tests", "judge")
EXTRACTORS = ("choice", "number", "match")
DEFAULT_THRESHOLD = 0.7
DEFAULT_RUBRIC = ("The answer fully and correctly does what the task asks, with no errors, "
                  "omissions or made-up facts.")
#: the judge's reply (``SCORE: n`` and a reason), as the grading judge expects
JUDGE_OUTPUT_TOKENS = 40
JUDGE_MAX_TOKENS = 300
#: tokens of the judge's instructions and rubric around the task and the answer
JUDGE_PROMPT_TOKENS = 120
MAX_SAMPLES = 10


@dataclass(frozen=True)
class Verifier:
    """One verifier with its settings (see the module table)."""

    kind: str
    witnesses: tuple[str, ...] = ()
    samples: int = 0
    extractor: str | None = None
    judge: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    rubric: str | None = None
    schema: Any = None  # json_schema: None = the task's own json_schema check
    extra: Mapping[str, Any] = field(default_factory=dict)

    def calls(self, first: str) -> list[str]:
        """The models the verify stage calls, in order (each once)."""
        if self.kind == "agree":
            return list(self.witnesses)
        if self.kind == "self_consistency":
            return [first] * (self.samples - 1)
        if self.kind == "judge":
            assert self.judge is not None
            return [self.judge]
        return []

    @property
    def needs_check(self) -> str | None:
        """The kind of task check the verifier reads (python_tests, json_schema), if any."""
        if self.kind == "python_tests" or (self.kind == "json_schema" and self.schema is None):
            return self.kind
        return None

    def describe(self, first: str, short: Mapping[str, str] | None = None) -> str:
        """``agree: mixtral, yi-34b``, ``self_consistency: mixtral x3``, ``judge: gpt-4o-mini >= 0.7``."""
        s = short or {}
        if self.kind == "agree":
            return f"agree: {', '.join(s.get(m, m) for m in (first, *self.witnesses))}"
        if self.kind == "self_consistency":
            return f"self_consistency: {s.get(first, first)} x{self.samples}"
        if self.kind == "judge":
            assert self.judge is not None
            return f"judge: {s.get(self.judge, self.judge)} >= {self.threshold:g}"
        return self.kind

    def record(self) -> dict[str, Any]:
        """The catalog / plan fields of this verifier (only those that apply)."""
        out: dict[str, Any] = {"verifier": self.kind}
        if self.kind == "agree":
            out["witnesses"] = list(self.witnesses)
        if self.kind == "self_consistency":
            out["samples"] = self.samples
        if self.extractor is not None:
            out["extractor"] = self.extractor
        if self.kind == "judge":
            out.update(judge=self.judge, threshold=self.threshold)
            if self.rubric is not None:
                out["rubric"] = self.rubric
        if self.kind == "json_schema" and self.schema is not None:
            out["schema"] = self.schema
        return out


def parse_verifier(rec: Mapping[str, Any], extractor: str | None = None) -> Verifier:
    """The verifier of a catalog or plan entry; ValueError (one line, the field) when malformed.

    ``extractor``: the category's, for ``agree``/``self_consistency`` entries that name none."""
    kind = rec.get("verifier", "agree")
    if kind not in KINDS:
        raise ValueError(f"verifier: expected one of {', '.join(KINDS)}, got {kind!r}")
    ext = rec.get("extractor", extractor)
    if ext is not None and ext not in EXTRACTORS:
        raise ValueError(f"extractor: expected one of {', '.join(EXTRACTORS)}, got {ext!r}")
    if kind == "agree":
        ws = rec.get("witnesses")
        if not isinstance(ws, list | tuple) or not ws or not all(isinstance(w, str) and w for w in ws):
            raise ValueError("witnesses: expected a list of model ids")
        if ext is None:
            raise ValueError("extractor: agree needs one (choice, number or match) for its category")
        return Verifier("agree", witnesses=tuple(ws), extractor=ext)
    if kind == "self_consistency":
        k = rec.get("samples", 3)
        if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= MAX_SAMPLES:
            raise ValueError(f"samples: expected a whole number from 2 to {MAX_SAMPLES}, got {k!r}")
        if ext is None:
            raise ValueError("extractor: self_consistency needs one (choice, number or match)")
        return Verifier("self_consistency", samples=k, extractor=ext)
    if kind == "judge":
        judge = rec.get("judge")
        if not isinstance(judge, str) or not judge:
            raise ValueError("judge: expected the judge's model id")
        thr = rec.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(thr, bool) or not isinstance(thr, int | float) or not 0 <= thr <= 1:
            raise ValueError(f"threshold: expected a score in [0, 1], got {thr!r}")
        rubric = rec.get("rubric")
        if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
            raise ValueError("rubric: expected text")
        return Verifier("judge", judge=judge, threshold=float(thr), rubric=rubric)
    if kind == "json_schema":
        schema = rec.get("schema")
        if schema is not None:
            from planner.checks.schema import parse_check

            try:
                parse_check({"kind": "json_schema", "schema": schema})
            except Exception as exc:  # pydantic's ValidationError: one line
                raise ValueError(f"schema: {exc}") from None
        return Verifier("json_schema", schema=schema)
    return Verifier("python_tests")


def applies(v: Verifier, check: Any) -> bool:
    """Whether ``v`` can verify a task carrying ``check`` (its own tests or schema, when it needs them)."""
    need = v.needs_check
    return need is None or getattr(check, "kind", None) == need


# --------------------------------------------------------------------- independence
def independence(v: Verifier, q1: Any, q2: Any, q_witnesses: Sequence[Any] = (), q_judge: Any = None,
                 n_labels: float = math.inf) -> tuple[Any, Any, Any]:
    """(P(accept), q(first | accept), q(second | reject)) if the models were right or wrong
    independently (see the module doc); numbers or numpy arrays of one shape."""
    q1 = np.asarray(q1, dtype=float)
    if v.kind in ("agree", "self_consistency"):
        ws = list(q_witnesses) if v.kind == "agree" else [q1] * (v.samples - 1)
        right = q1 * np.prod([np.asarray(w, dtype=float) for w in ws], axis=0)
        wrong = (1 - q1) * np.prod([1 - np.asarray(w, dtype=float) for w in ws], axis=0)
        chance = wrong / (n_labels - 1) ** len(ws) if math.isfinite(n_labels) and n_labels > 1 else 0.0
        p = right + chance
        qa = np.divide(right, p, out=q1.copy(), where=p > 0)
    elif v.kind == "judge":
        qj = np.asarray(q_judge, dtype=float)
        right = q1 * qj
        p = right + (1 - q1) * (1 - qj)
        qa = np.divide(right, p, out=q1.copy(), where=p > 0)
    else:  # the task's own check: passes right answers, fails wrong ones
        p = q1
        qa = np.ones_like(q1)
    return _plain(p), _plain(qa), _plain(np.asarray(q2, dtype=float))


def _plain(x: Any) -> Any:
    return float(x) if np.ndim(x) == 0 else x


# --------------------------------------------------------------------- the decision
@dataclass(frozen=True)
class Decision:
    """The verifier's verdict on the first model's answer, and why."""

    accepted: bool
    reason: str


def decide(v: Verifier, first_answer: str, verify_replies: Sequence[str], *, check: Any = None,
           prompt: str | None = None) -> Decision:
    """Accept or reject ``first_answer`` from the verify stage's replies (in :meth:`Verifier.calls`
    order). ``check``: the task's check (python_tests, json_schema); ``prompt``: the task's text
    (a choice extractor reads its option letters). ``python_tests`` runs the sandbox: call it off
    the event loop."""
    if v.kind in ("agree", "self_consistency"):
        from planner.cascade import answer_of

        assert v.extractor is not None
        answers = [answer_of(v.extractor, t, prompt) for t in (first_answer, *verify_replies)]
        if answers[0] is None:
            return Decision(False, f"no {v.extractor} answer read in the first model's reply")
        if all(a == answers[0] for a in answers[1:]):
            return Decision(True, f"{len(answers)} answers agree on {answers[0]!r}")
        shown = ", ".join("-" if a is None else repr(a) for a in answers)
        return Decision(False, f"answers differ: {shown}")
    if v.kind == "judge":
        from planner.checks.graders import parse_judge

        parsed = parse_judge(verify_replies[0]) if verify_replies else None
        if parsed is None:
            return Decision(False, "the judge's reply has no 'SCORE: n'")
        ok = parsed.score >= v.threshold
        return Decision(ok, f"judge scored {parsed.score:.2f} ({'>=' if ok else '<'} {v.threshold:g})")
    from planner.checks.graders import grade

    if v.kind == "json_schema":
        from planner.checks.schema import parse_check

        use = check if v.schema is None else parse_check({"kind": "json_schema", "schema": v.schema})
        if use is None or getattr(use, "kind", None) != "json_schema":  # never another check's reference answer
            return Decision(False, "no schema: the task has no json_schema check")
        g = grade(use, first_answer)
        return Decision(g.score >= 1.0, g.reason)
    if check is None or getattr(check, "kind", None) != "python_tests":
        return Decision(False, "no tests: the task has no python_tests check")
    g = grade(check, first_answer)
    return Decision(g.score >= 1.0, g.reason)


def judge_verify_messages(v: Verifier, task_text: str, answer: str) -> list[dict[str, str]]:
    """The verify judge's prompt (the grading judge's, with the verifier's rubric)."""
    from planner.checks.graders import judge_messages
    from planner.checks.schema import parse_check

    assert v.judge is not None
    check = parse_check({"kind": "judge", "model": v.judge, "rubric": v.rubric or DEFAULT_RUBRIC,
                         "max_tokens": JUDGE_MAX_TOKENS})
    return judge_messages(check, task_text, answer)
