"""Simulated answers for cascade tasks, on which the verifiers behave as the plan projected.

Answering each stage independently would make ``agree`` accept far less often than a cascade
fitted on real, correlated outcomes projects. Instead one joint outcome is drawn per task
(seeded by the run's seed and the task): the verifier accepts with the plan's ``p_accept``;
the first model is right with ``q(first | accept)`` when it accepts, else with what the
first model's quality leaves for rejections; the second is right with ``q(second | reject)``.
Every stage's text then follows from it: witnesses and extra samples repeat the first answer
when it is accepted and differ from it otherwise, a verifying judge scores 10 or 0, a
``json_schema`` or ``python_tests`` answer passes exactly when accepted (the verifier is the
task's own check). Answers take the form the task's check reads (choice letter, number,
text), so grading the kept answer measures what the plan projected.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from planner.plan import CascadeSpec
from planner.verifiers import parse_verifier


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


@dataclass(frozen=True)
class Joint:
    """One task's drawn outcome."""

    accepted: bool
    first_right: bool
    second_right: bool


@dataclass(frozen=True)
class CascadeSim:
    """What the simulator knows of one cascade task."""

    task_id: str
    spec: CascadeSpec
    check: Any
    prompt: str

    def joint(self, seed: int) -> Joint:
        s = self.spec
        kind = s.verifier.get("verifier")
        rng = _rng(seed, "cascade", self.task_id)
        u = [rng.random() for _ in range(3)]
        accepted = u[0] < s.p_accept
        if kind in ("json_schema", "python_tests"):
            first = accepted  # the verifier is the task's own check
        elif accepted:
            first = u[1] < s.quality_accept
        else:
            q1 = s.quality_first if s.quality_first is not None else s.quality_accept
            left = (q1 - s.p_accept * s.quality_accept) / (1 - s.p_accept) if s.p_accept < 1 else 0.0
            first = u[1] < min(1.0, max(0.0, left))
        return Joint(accepted, first, u[2] < s.quality_reject)

    def is_right(self, seed: int, model: str) -> bool | None:
        """Whether ``model``'s answer (first or second stage) is right; None for another model."""
        j = self.joint(seed)
        if model == self.spec.second:
            return j.second_right
        if model == self.spec.first:
            return j.first_right
        return None

    def text(self, seed: int, stage: int) -> str:
        """The text of stage ``stage`` (0 = first; 1.. the verify calls; last = the second)."""
        s = self.spec
        j = self.joint(seed)
        v = parse_verifier(s.verifier)
        last = len(s.stages) - 1
        rng = _rng(seed, "cascade-text", self.task_id, stage)
        if stage == last:
            return self._checked(j.second_right, rng)
        if v.kind == "judge" and stage > 0:
            return f"SCORE: {10 if j.accepted else 0}\nREASON: simulated verifier: " \
                   f"{'meets' if j.accepted else 'does not meet'} the rubric."
        if v.kind in ("json_schema", "python_tests"):
            return self._verified(v, j.accepted, rng)
        if v.kind == "judge":
            return self._checked(j.first_right, rng)
        space = _Space(self.check, v.extractor, self.prompt)
        first = space.right() if j.first_right else space.wrong(1)
        if stage == 0 or j.accepted:
            return first
        if stage == 1:  # the first witness or sample disagrees: the cascade rejects
            return space.right() if not j.first_right and rng.random() < 0.5 else space.other_than(first, rng)
        return space.any(rng)

    def _checked(self, right: bool, rng: random.Random) -> str:
        """An answer the task's check reads, right or wrong as drawn."""
        if self.check is not None and self.check.kind != "judge":
            from planner.checks.simulate import answer_for

            return answer_for(self.check, right, rng)
        return "A simulated answer." if right else "A simulated answer that misses the point."

    def _verified(self, v: Any, accepted: bool, rng: random.Random) -> str:
        if v.kind == "json_schema" and v.schema is not None:
            if accepted:
                import json

                from planner.checks.simulate import sample_instance

                return f"```json\n{json.dumps(sample_instance(v.schema))}\n```"
            return "Sorry, no JSON today."
        return self._checked(accepted, rng)


class _Space:
    """Answers an extractor reads: the right one and distinct wrong ones."""

    def __init__(self, check: Any, extractor: str | None, prompt: str) -> None:
        from planner.cascade import labels_in

        kind = getattr(check, "kind", None)
        if kind == "choice":
            self.options = [check.answer, *(x for x in check.labels if x != check.answer)]
            self.fmt = "The answer is ({}).".format
        elif kind == "number":
            off = max(1.0, abs(check.answer)) * 0.5 + check.allowed_error * 10 + 1
            self.options = [_num(check.answer + k * off) for k in range(0, 6)]
            self.fmt = "The answer is {}.".format
        elif kind in ("exact", "match"):
            want = check.answers[0]
            self.options = [want, *(f"not {want} ({k})" for k in range(1, 6))]
            self.fmt = "{}".format
        elif extractor == "choice":
            labels = labels_in(prompt)
            self.options = labels
            self.fmt = "The answer is ({}).".format
        elif extractor == "number":
            self.options = [str(42 + 7 * k) for k in range(6)]
            self.fmt = "The answer is {}.".format
        else:
            self.options = [f"answer {k}" for k in range(6)]
            self.fmt = "{}".format

    def right(self) -> str:
        return str(self.fmt(self.options[0]))

    def wrong(self, k: int) -> str:
        return str(self.fmt(self.options[1 + (k - 1) % (len(self.options) - 1)]))

    def other_than(self, text: str, rng: random.Random) -> str:
        return rng.choice([t for t in (self.fmt(o) for o in self.options) if t != text])

    def any(self, rng: random.Random) -> str:
        return str(self.fmt(rng.choice(self.options)))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.12g}"
