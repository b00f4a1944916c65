"""Cascades: ``m1 -> agree(m1, w) -> m2`` as one more column of the assignment problem.

A cascade asks a cheap first model ``m1`` and one or two cheap witnesses ``w``; when all
their extracted answers agree (``agree``: the same option letter, number or normalised text)
it keeps ``m1``'s answer, else it escalates to a strong model ``m2``. Per category, with
``p`` the probability of accepting and ``cw`` the witnesses' cost:

- expected cost ``c1 + cw + (1 - p) c2``, worst case ``c1 + cw + c2``;
- expected quality ``p q(m1 | accept) + (1 - p) q(m2 | reject)``.

``p`` and the two conditional qualities come from outcome history where all three models
answered the same prompts (``calibrate`` counts them, cross-fitted: :mod:`planner.cascade_fit`),
shrunk toward
the *independence* estimate (the models right or wrong independently with their category
qualities, wrong answers agreeing by chance on one of ``L - 1`` wrong options, the second
model as good on rejected prompts as on any). Without joint observations the estimate is
the independence one, and the catalog says so (``basis``).

Candidates whose expected (cost, quality) a single model or another cascade dominates are
dropped, and at most ``cascade_fit.MAX_PER_CATEGORY`` per category are kept (those furthest
above the single models' hull), so the problem stays small. Categories whose answers no extractor
reads (code, free prose) get no cascades; the catalog records why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.checks import extract
from planner.errors import InputError

VERIFIER = "agree"
EXTRACTORS = ("choice", "number", "match")
#: share of a category's responses an extractor must read for ``agree`` to be used there
MIN_READ = 0.6
#: longest median response (characters) the whole-answer ``match`` extractor is tried on
MATCH_MAX_CHARS = 40
DEFAULT_LABELS = ("A", "B", "C", "D", "E")
_LABEL_LINE = re.compile(r"^\s*\(?([A-J])[).:]\s", re.MULTILINE)
_CODE = re.compile(r"```|^\s*def\s|\[PYTHON\]", re.MULTILINE)


# --------------------------------------------------------------------- answers
def labels_in(prompt: str | None) -> list[str]:
    """The option letters a multiple-choice prompt lists (``A) ...`` lines), else A-E."""
    found = sorted(set(_LABEL_LINE.findall(prompt or "")))
    return found if len(found) >= 2 else list(DEFAULT_LABELS)


def answer_of(kind: str, response: str | None, prompt: str | None = None) -> str | None:
    """The part of ``response`` that ``agree`` compares, as text, or None when none is read."""
    if not isinstance(response, str):  # None, or NaN from a pivot
        return None
    if kind == "choice":
        return extract.choice_of(response, labels_in(prompt))
    if kind == "number":
        v = extract.number_of(response)
        return None if v is None or not math.isfinite(v) else f"{v:.9g}"
    if kind == "match":
        norm = extract.normalise(response)
        return norm or None
    raise ValueError(f"unknown extractor {kind!r}")


def choose_extractor(responses: Sequence[str | None], prompts: Sequence[str | None]) -> tuple[str | None, str]:
    """(extractor, why) for one category: ``choice`` when the prompts list options and most
    answers pick one, ``number`` when most answers give a number and are not code, ``match``
    for short answers; None (and the reason) when none applies."""
    pairs = [(r, p) for r, p in zip(responses, prompts, strict=True) if r is not None]
    if not pairs:
        return None, "no recorded responses"
    sample = pairs[:: max(1, len(pairs) // 400)]  # the choice is the same on a few hundred
    n = len(sample)
    if sum(len(set(_LABEL_LINE.findall(p or ""))) >= 2 for _, p in sample) >= n / 2:
        read = sum(answer_of("choice", r, p) is not None for r, p in sample) / n
        if read >= MIN_READ:
            return "choice", f"options listed; {read:.0%} of answers pick one"
    code = sum(bool(_CODE.search(r)) for r, _ in sample) / n
    if code >= 0.2:
        return None, f"{code:.0%} of answers are code: no extractor compares them"
    read = sum(answer_of("number", r) is not None for r, _ in sample) / n
    if read >= MIN_READ:
        return "number", f"{read:.0%} of answers give a number"
    if float(np.median([len(r) for r, _ in sample])) <= MATCH_MAX_CHARS:
        return "match", "short answers compared as normalised text"
    return None, "long free-text answers: no extractor compares them"


def agree(first: Sequence[str | None], *witnesses: Sequence[str | None]) -> np.ndarray:
    """Per task: the first answer read and every witness's equal to it (``agree`` accepts)."""
    return np.array([a is not None and all(w == a for w in ws)
                     for a, *ws in zip(first, *witnesses, strict=True)], dtype=bool)


# --------------------------------------------------------------------- cascades
@dataclass(frozen=True)
class Cascade:
    """One candidate cascade of one category, with the statistics that price it."""

    category: str
    first: str
    witnesses: tuple[str, ...]
    second: str
    p_accept: float
    quality_accept: float  # q(first | accept)
    quality_reject: float  # q(second | reject)
    n: int = 0  # prompts all three were observed on
    accepted: int = 0
    first_right_accepted: float = 0.0
    second_right_rejected: float = 0.0
    basis: str = "joint outcomes"  # or "independence" (no joint observations)
    verifier: str = VERIFIER
    #: a verifier other than ``agree`` (:class:`planner.verifiers.Verifier`), from the catalog
    verify: Any = None
    #: how calibrate fitted it from graded runs (:mod:`planner.fit_layers`), as the catalog holds it
    calibration: Any = field(default=None, compare=False)

    @property
    def quality(self) -> float:
        return self.p_accept * self.quality_accept + (1 - self.p_accept) * self.quality_reject

    def expected_cost(self, c1: Any, cw: Any, c2: Any) -> Any:
        return c1 + cw + (1 - self.p_accept) * c2

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the cascade may call: first, witnesses, second."""
        return self.first, *self.witnesses, self.second

    def name(self, short: Mapping[str, str] | None = None) -> str:
        s = short or {}
        f, m2 = s.get(self.first, self.first), s.get(self.second, self.second)
        return f"{f} -> {m2} ({self.verifier}: {', '.join([f, *(s.get(w, w) for w in self.witnesses)])})"

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("verify", None)
        if self.calibration is None:
            d.pop("calibration", None)
        if self.verify is not None:
            d.update(self.verify.record())
        d["witnesses"] = list(self.witnesses)
        for k in ("p_accept", "quality_accept", "quality_reject"):
            d[k] = round(float(d[k]), 4)
        for k in ("first_right_accepted", "second_right_rejected"):
            d[k] = float(d[k]) if d[k] != int(d[k]) else int(d[k])
        return d


@dataclass
class CascadeFit:
    """What ``calibrate`` learned about cascades (the ``cascades:`` block of a catalog)."""

    cascades: list[Cascade]
    extractors: dict[str, str]  # category -> extractor
    skipped: dict[str, str]  # category -> why no cascades
    prior_strength: float
    notes: list[str] = field(default_factory=list)
    method: str = ""  # how the candidates were chosen and counted (:mod:`planner.cascade_fit`)

    def block(self) -> dict[str, Any]:
        return {"verifier": VERIFIER, "prior_strength": self.prior_strength,
                **({"fit": self.method} if self.method else {}),
                "extractors": dict(self.extractors), "skipped": dict(self.skipped),
                "candidates": [c.record() for c in self.cascades]}


def independence(q1: float, qw: Sequence[float] | float, q2: float, n_labels: float) -> tuple[float, float, float]:
    """(P(accept), q(first | accept), q(second | reject)) if the models were right or wrong
    independently with qualities ``q1``, ``qw`` (the witnesses), ``q2``, wrong answers all
    picking the same of the ``n_labels - 1`` wrong options by chance (never, for free answers)."""
    ws = [qw] if isinstance(qw, int | float) else list(qw)
    right = q1 * math.prod(ws)
    wrong = (1 - q1) * math.prod(1 - w for w in ws)
    chance = wrong / (n_labels - 1) ** len(ws) if n_labels > 1 and math.isfinite(n_labels) else 0.0
    p = right + chance
    return p, right / p if p > 0 else q1, q2


def pareto(points: Sequence[tuple[float, float]], others: Sequence[tuple[float, float]] = ()) -> list[int]:
    """Indices of ``points`` (cost, quality) that no other point nor any of ``others`` dominates
    (no dearer and no worse, better in one); of exact ties the first is kept."""
    allpts = [(c, s, i) for i, (c, s) in enumerate(points)] + [(c, s, -1) for c, s in others]
    allpts.sort(key=lambda x: (x[0], -x[1], x[2] if x[2] >= 0 else -1))
    best = -math.inf
    out = []
    for _c, s, i in allpts:  # by cost: a point survives when it beats every cheaper (or equal) one
        if s > best:
            best = s
            if i >= 0:
                out.append(i)
    return sorted(out)


# --------------------------------------------------------------------- catalog block
@dataclass(frozen=True)
class CascadeStats:
    """A catalog's ``cascades:`` block, read back."""

    cascades: tuple[Cascade, ...]
    extractors: dict[str, str]
    skipped: dict[str, str]
    #: entries with another verifier (self_consistency, json_schema, python_tests, judge), for
    #: planning (:mod:`planner.cascade_plan`); ``cascades`` keeps the ``agree`` ones
    others: tuple[Cascade, ...] = ()


def parse_block(data: Any, where: str) -> CascadeStats:
    """The ``cascades:`` block of a catalog file; a malformed one is one InputError line."""
    from planner.tasks import category_label

    if not isinstance(data, Mapping):
        raise InputError("cascades: expected a mapping with extractors and candidates", file=where)
    extractors = data.get("extractors") or {}
    if not isinstance(extractors, Mapping) or any(v not in EXTRACTORS for v in extractors.values()):
        raise InputError(f"cascades.extractors: expected category -> one of {', '.join(EXTRACTORS)}", file=where)
    cands = data.get("candidates") or []
    if not isinstance(cands, list):
        raise InputError("cascades.candidates: expected a list", file=where)
    out = []
    others = []
    for idx, rec in enumerate(cands):
        what = f"cascades.candidates[{idx}]"
        if not isinstance(rec, Mapping):
            raise InputError(f"{what}: expected a mapping", file=where)
        if rec.get("verifier", VERIFIER) != VERIFIER:
            from planner.cascade_plan import parse_entry

            others.append(parse_entry(rec, what, where, extractors))
            continue
        try:
            fields = {k: rec[k] for k in rec if k in Cascade.__dataclass_fields__}
            ws = fields.get("witnesses")
            if not isinstance(ws, list | tuple) or not ws or not all(isinstance(w, str) and w for w in ws):
                raise ValueError("witnesses: expected a list of model ids")
            fields["witnesses"] = tuple(ws)
            c = Cascade(**fields)
            for k in ("category", "first", "second"):
                if not isinstance(getattr(c, k), str) or not getattr(c, k):
                    raise ValueError(f"{k}: expected a name")
            for k in ("p_accept", "quality_accept", "quality_reject"):
                v = float(getattr(c, k))
                if not 0 <= v <= 1:
                    raise ValueError(f"{k}: expected a number in [0, 1], got {v!r}")
            if c.verifier != VERIFIER:
                raise ValueError(f"verifier: only {VERIFIER!r} is supported, got {c.verifier!r}")
            if c.calibration is not None:
                from planner.fit_layers import parse

                parse(c.calibration, 3)
        except TypeError as exc:
            raise InputError(f"{what}: {exc}", file=where) from None
        except ValueError as exc:
            raise InputError(f"{what}: {exc}", file=where) from None
        c = Cascade(**{**asdict(c), "category": category_label(c.category)})
        if c.category not in {category_label(k) for k in extractors}:
            raise InputError(f"{what}: category {c.category!r} has no extractor in cascades.extractors", file=where)
        out.append(c)
    return CascadeStats(tuple(out), {category_label(k): str(v) for k, v in extractors.items()},
                        {str(k): str(v) for k, v in (data.get("skipped") or {}).items()}, tuple(others))
