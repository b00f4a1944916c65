"""Cascades in a backtest: their columns of the assignment problem, scored offline.

For each cascade the catalog's statistics allow (:mod:`planner.cascade`), every task of its
category gets one more column: projected (expected) cost and quality from the statistics,
and the *realised* outcome computed from the recorded responses, nothing called: the
``agree`` verifier's decision on the extracted answers of the first model and the witnesses,
cost ``c1 + cw`` plus ``c2`` when it escalates, and the first model's recorded score when it
accepts, the second's when it escalates. A task is a cascade's only where all three models
are allowed there and recorded (scores of the first and second, answers of the first and the
witnesses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from planner.cascade import Cascade, CascadeStats, agree, answer_of

if TYPE_CHECKING:
    from planner.evaluate import Truth
    from planner.formulation import Formulation


@dataclass
class CascadeColumns:
    """Per-task columns (n tasks x cascades), appended after the single models'."""

    cascades: list[Cascade]
    names: list[str]
    cost: np.ndarray  # projected, expected
    worst_cost: np.ndarray
    latency: np.ndarray  # expected: first and witnesses side by side, then the second on escalation
    quality: np.ndarray
    feasible: np.ndarray
    real_cost: np.ndarray  # realised from the recorded costs
    real_score: np.ndarray
    accept: np.ndarray  # the verifier's decision on the recorded answers
    notes: list[str] = field(default_factory=list)

    def called(self, i: int, j: int) -> tuple[list[str], str]:
        """(models called in order, the model whose answer is kept) for task ``i`` on column ``j``."""
        c = self.cascades[j]
        if self.accept[i, j]:
            return [c.first, *c.witnesses], c.first
        return list(c.models), c.second


def cascade_columns(truth: Truth, f: Formulation, stats: CascadeStats, t_cost: np.ndarray,
                    t_score: np.ndarray) -> CascadeColumns:
    """The columns of every usable cascade. ``t_cost``/``t_score``: the recorded truth aligned
    with ``f.offerings`` (unknown costs already replaced by projected ones)."""
    from planner.catalog import short_names

    n = len(truth.task_ids)
    col_of = {o.model: j for j, o in enumerate(f.offerings)}
    short = short_names(sorted({m for c in stats.cascades for m in c.models}))
    cats = np.asarray(truth.categories, dtype=object)
    answers: dict[tuple[int, str], list[str | None]] = {}
    kept: list[Cascade] = []
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("cost", "worst", "lat", "q", "feas", "rc", "rs", "acc")}
    notes: list[str] = []
    unusable = 0
    for c in stats.cascades:
        if any(m not in col_of for m in c.models) or truth.response is None:
            unusable += 1
            continue
        j1, j2 = col_of[c.first], col_of[c.second]
        jws = [col_of[w] for w in c.witnesses]
        kind = stats.extractors[c.category]
        in_cat = cats == c.category
        if not in_cat.any():
            continue
        rs_ = [truth.models.index(m) for m in (c.first, *c.witnesses)]
        got = [_answers(answers, truth, kind, r) for r in rs_]
        has = np.ones(n, dtype=bool)
        for r in rs_:
            has &= np.array([x is not None for x in truth.response[:, r]], dtype=bool)
        acc = agree(*got)
        feas = in_cat & has & f.feasible[:, j1] & f.feasible[:, j2] & ~np.isnan(t_score[:, j1]) & ~np.isnan(
            t_score[:, j2]) & ~np.isnan(t_cost[:, j1]) & ~np.isnan(t_cost[:, j2])
        for jw in jws:
            feas &= f.feasible[:, jw] & ~np.isnan(t_cost[:, jw])
        if not feas.any():
            continue
        pr = 1 - c.p_accept
        cw = sum(f.cost_usd[:, jw] for jw in jws)
        parts["cost"].append(f.cost_usd[:, j1] + cw + pr * f.cost_usd[:, j2])
        parts["worst"].append(f.worst_cost_usd[:, j1] + sum(f.worst_cost_usd[:, jw] for jw in jws)
                              + f.worst_cost_usd[:, j2])
        lat = np.nan_to_num(f.latency_s)
        first_lat = np.max(np.column_stack([lat[:, j] for j in (j1, *jws)]), axis=1)
        parts["lat"].append(first_lat + pr * lat[:, j2])
        parts["q"].append(np.full(n, c.quality))
        parts["feas"].append(feas)
        rc = t_cost[:, j1] + sum(t_cost[:, jw] for jw in jws) + np.where(acc, 0.0, t_cost[:, j2])
        rs = np.where(acc, t_score[:, j1], t_score[:, j2])
        parts["rc"].append(np.where(feas, rc, np.nan))
        parts["rs"].append(np.where(feas, rs, np.nan))
        parts["acc"].append(acc)
        kept.append(c)
    if unusable:
        notes.append(f"{unusable} cascades name a model the catalog or the history lacks: not planned")
    basis = sorted({c.basis for c in kept})
    if kept:
        notes.append(f"{len(kept)} cascades planned as extra columns (expected cost and quality from "
                      f"{' and '.join(basis)}); scored offline from the recorded answers")
    if "independence" in basis:
        notes.append("some cascades had no joint outcomes: their acceptance rate and qualities assume the "
                     "models are right or wrong independently")

    def stack(key: str, dtype: type = float) -> np.ndarray:
        return np.column_stack(parts[key]) if parts[key] else np.zeros((n, 0), dtype=dtype)

    return CascadeColumns(kept, [c.name(short) for c in kept], stack("cost"), stack("worst"), stack("lat"),
                          stack("q"), stack("feas", bool), stack("rc"), stack("rs"), stack("acc", bool), notes)


def _answers(cache: dict[tuple[int, str], list[str | None]], truth: Truth, kind: str,
             r: int) -> list[str | None]:
    key = (r, kind)
    if key not in cache:
        assert truth.response is not None
        cache[key] = [answer_of(kind, truth.response[i, r], truth.prompts[i]) for i in range(len(truth.task_ids))]
    return cache[key]
