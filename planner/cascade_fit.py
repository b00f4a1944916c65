"""Fitting cascades from outcome history: which ``first -> agree(first, witnesses) -> second``
to offer per category, and the statistics that price them (:mod:`planner.cascade`).

Every combination of a first model, one to :data:`MAX_WITNESSES` witnesses and a dearer second
model is counted on the prompts all of them answered: how often the answers agree, how often
the first model was right when they did and the second when they did not.

**Cross-fitted.** Thousands of combinations are tried per category, and the one that looks
best on the prompts it was chosen on looks better there than it is (the winner's curse: on
RouterBench the cascades kept by in-sample counts projected about 3 points above what they
realised on held-out prompts at the dearest budgets, enough to put them ahead of GPT-4 there,
where they then fell short of it). So the prompts are split into :data:`FOLDS` folds by a hash
of their id; for each fold the cascades are *chosen* on the other folds (dominance, then the
:data:`MAX_PER_CATEGORY` rising furthest above the single models' hull) and *counted* on it.
A cascade is kept when it was chosen on at least half the folds (chosen once is mostly luck),
with the summed counts of the folds it was chosen for; those are pruned again. Each rate is
shrunk toward the independence estimate (:func:`planner.cascade.independence`) by
``prior_strength`` pseudo-observations.

**Its lead over the second model, conservatively.** The planner still picks the best of a few
cascades whose qualities differ by less than their noise, which again favours the lucky. What
decides whether a cascade beats its own second model is the first model's lead over it on the
accepted prompts, a paired difference; q(first | accept) is lowered by :data:`LEAD_Z` of its
standard errors (a one-sided 90 % bound), so a cascade is planned above its second model only
when the outcomes show that lead clearly. On RouterBench this halved the optimism at the
dearest budgets and raised AIQ (docs/cascades.md, "Offline evaluation and figures").

The counting is vectorised over the second model and the folds (one matrix product per first
model and witness set), so a category of 20,000 prompts and 12 models fits in seconds.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from planner.cascade import (
    Cascade,
    CascadeFit,
    answer_of,
    choose_extractor,
    independence,
    labels_in,
    pareto,
)

MAX_PER_CATEGORY = 20
MAX_WITNESSES = 3
#: models per category the candidates are drawn from (the best by quality), so fitting stays quick
MAX_POOL = 12
#: prompts per category the statistics are counted on (a seeded sample beyond), so fitting stays quick
MAX_TASKS = 20_000
#: folds of the cross-fitting (chosen on all but one, counted on that one)
FOLDS = 5
#: fewest prompts per fold for cross-fitting; fewer prompts in all: chosen and counted on the same
MIN_FOLD_PROMPTS = 20
#: standard errors of the first model's lead over the second (on accepted prompts) taken off
#: q(first | accept): the one-sided 90 % bound
LEAD_Z = 1.2816


def fold_of(task_ids: np.ndarray, folds: int) -> np.ndarray:
    """A fold per task from a hash of its id: the same split on every run and machine."""
    return np.fromiter((zlib.crc32(str(t).encode()) % folds for t in task_ids), dtype=np.int64,
                       count=len(task_ids))


def fit_cascades(frame: pd.DataFrame, quality: Mapping[tuple[str, str], float], *,
                 prior_strength: float = 10.0, max_per_category: int = MAX_PER_CATEGORY) -> CascadeFit:
    """Candidate cascades per category from outcome records (see module doc).

    ``frame``: history records with ``category`` already normalised; ``quality``: the
    calibrated (model, category) quality each independence estimate starts from, and the
    single models' side of the final pruning.
    """
    fit = CascadeFit([], {}, {}, prior_strength)
    if "response" not in frame or frame["response"].isna().all():
        fit.notes.append("no responses recorded: no cascades (agree compares the models' answers)")
        return fit
    for cat, sub in frame.groupby("category", sort=True):
        cat = str(cat)
        tids, t_codes = np.unique(sub["task_id"].astype(str).to_numpy(), return_inverse=True)
        models, m_codes = np.unique(sub["model"].astype(str).to_numpy(), return_inverse=True)
        if len(models) < 3:
            fit.skipped[cat] = "fewer than three models recorded"
            continue
        if len(tids) > MAX_TASKS:
            chosen = np.random.default_rng(0).choice(len(tids), size=MAX_TASKS, replace=False)
            sub = sub[np.isin(t_codes, chosen)]
            tids, t_codes = np.unique(sub["task_id"].astype(str).to_numpy(), return_inverse=True)
            models, m_codes = np.unique(sub["model"].astype(str).to_numpy(), return_inverse=True)
            fit.notes.append(f"{cat}: cascade statistics counted on a sample of {MAX_TASKS:,} prompts")
        if len(models) > MAX_POOL:
            qual = [quality.get((str(m), cat), 0.0) for m in models]
            pool = set(np.argsort(qual)[::-1][:MAX_POOL].tolist())
            sub = sub[np.isin(m_codes, sorted(pool))]
            models, m_codes = np.unique(sub["model"].astype(str).to_numpy(), return_inverse=True)
            tids, t_codes = np.unique(sub["task_id"].astype(str).to_numpy(), return_inverse=True)
            fit.notes.append(f"{cat}: cascades drawn from the {MAX_POOL} models of best quality there")
        n, k = len(tids), len(models)
        if not _joint(t_codes, m_codes, sub):
            fit.skipped[cat] = ("no prompt has answers from two or more models (one model per task, as in a "
                                "run folder of single-model tasks): no joint outcomes to fit cascades from")
            continue
        score = np.full((n, k), np.nan)
        cost = np.full((n, k), np.nan)
        resp = np.full((n, k), None, dtype=object)
        score[t_codes, m_codes] = sub["score"].to_numpy(dtype=float)
        if "cost_usd" in sub:
            cost[t_codes, m_codes] = sub["cost_usd"].to_numpy(dtype=float)
        resp[t_codes, m_codes] = sub["response"].to_numpy(dtype=object)
        prompts: list[str | None] = [None] * n
        if "prompt" in sub:
            for t, p in zip(t_codes, sub["prompt"].to_numpy(dtype=object), strict=True):
                if prompts[t] is None and isinstance(p, str):
                    prompts[t] = p
        kind, why = choose_extractor(list(resp.ravel()), [prompts[t] for t in range(n) for _ in range(k)])
        if kind is None:
            fit.skipped[cat] = why
            continue
        fit.extractors[cat] = kind
        ans = answers(kind, resp, prompts)
        n_labels = float(np.median([len(labels_in(p)) for p in prompts])) if kind == "choice" else math.inf
        with warnings.catch_warnings():  # a model without costs (or scores) here: NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_cost = np.nanmean(np.where(np.isnan(score), np.nan, cost), axis=0)
            q = np.array([quality.get((m, cat), float(np.nanmean(score[:, j]))) for j, m in enumerate(models)])
        folds = FOLDS if n >= FOLDS * MIN_FOLD_PROMPTS else 2 if n >= 2 * MIN_FOLD_PROMPTS else 1
        if folds == 1:
            fit.notes.append(f"{cat}: {n} prompts, too few to cross-fit: cascades chosen and counted on the "
                             f"same prompts")
        with threadpool_limits(1, user_api="blas"):  # many small products: threads only contend
            counts = count_candidates(score, resp, ans, mean_cost, fold_of(tids, folds), folds)
        fit.cascades.extend(select(cat, list(models), counts, score, mean_cost, q, n_labels, prior_strength,
                                   max_per_category))
    if fit.cascades:
        fit.method = (f"cross-fitted: chosen on {FOLDS - 1} of {FOLDS} folds of the prompts and counted on the "
                      f"other, kept when chosen on at least half; rates shrunk toward independence by "
                      f"{prior_strength:g} observations; q(first | accept) lowered by {LEAD_Z:g} standard errors "
                      f"of the first model's lead over the second on accepted prompts")
    return fit


def _joint(t_codes: np.ndarray, m_codes: np.ndarray, sub: pd.DataFrame) -> bool:
    """Whether some prompt has scored answers from two or more models: without one, no
    cascade's statistics can be counted (only the independence guess, which the planner makes
    by itself)."""
    ok = sub["score"].notna().to_numpy() & sub["response"].notna().to_numpy()
    pairs = np.unique(np.stack([t_codes[ok], m_codes[ok]]), axis=1)
    return bool(pairs.shape[1]) and bool((np.bincount(pairs[0]) >= 2).any())


def answers(kind: str, resp: np.ndarray, prompts: list[str | None]) -> np.ndarray:
    """``answer_of`` of every response (tasks x models), each distinct (response, options)
    read once: multiple-choice answers repeat a lot."""
    labels = [tuple(labels_in(p)) for p in prompts] if kind == "choice" else [()] * len(prompts)
    like: dict[tuple[str, ...], str | None] = {}  # a prompt with those options (all answer_of reads of it)
    for lab, p in zip(labels, prompts, strict=True):
        like.setdefault(lab, p)
    seen: dict[tuple[str, tuple[str, ...]], str | None] = {}
    out = np.full(resp.shape, None, dtype=object)
    for t in range(resp.shape[0]):
        lab = labels[t]
        for j in range(resp.shape[1]):
            r = resp[t, j]
            if not isinstance(r, str):
                continue
            key = (r, lab)
            if key not in seen:
                seen[key] = answer_of(kind, r, like[lab])
            out[t, j] = seen[key]
    return out


class Counts:
    """Per candidate (first, witnesses, second) and fold: prompts all were observed on, prompts
    accepted, the first model's score summed over accepted ones, the second's over rejected."""

    def __init__(self, fold: np.ndarray, folds: int) -> None:
        self.fold = fold  # per prompt
        self.folds = folds
        self.first: list[int] = []
        self.witnesses: list[tuple[int, ...]] = []
        self.second: list[int] = []
        self._blocks: list[np.ndarray] = []  # (4, folds, candidates of the block)
        self.table = np.zeros((6, folds, 0))

    def add(self, a: int, ws: tuple[int, ...], bs: list[int], block: np.ndarray) -> None:
        self.first.extend([a] * len(bs))
        self.witnesses.extend([ws] * len(bs))
        self.second.extend(bs)
        self._blocks.append(block)

    def done(self) -> Counts:
        if self._blocks:
            self.table = np.concatenate(self._blocks, axis=2)
        self._blocks = []
        return self

    def __len__(self) -> int:
        return len(self.second)


def count_candidates(score: np.ndarray, resp: np.ndarray, ans: np.ndarray, cost: np.ndarray,
                     fold: np.ndarray, folds: int) -> Counts:
    """Counts of every (first, witnesses, second) whose second model is dearer than the first
    and each witness, per fold of the prompts (rows of :attr:`Counts.table`: prompts all were
    observed on, accepted, first right on accepted, second right on rejected, second right on
    accepted, squared difference of the two scores on accepted).

    One matrix product per first model and witness set gives every second model and fold."""
    n, k = score.shape
    order = np.argsort(fold, kind="stable")  # the prompts of each fold side by side
    bounds = np.searchsorted(fold[order], np.arange(folds + 1))
    score, resp, ans = score[order], resp[order], ans[order]
    codes = np.full(ans.shape, -1, dtype=np.int64)  # answers as integers, -1 where none was read
    known = ans != None  # noqa: E711
    if known.any():
        _, inv = np.unique(ans[known].astype(str), return_inverse=True)
        codes[known] = inv
    has = resp != None  # noqa: E711
    scored = ~np.isnan(score)
    s0 = np.nan_to_num(score)
    right = np.hstack([scored.astype(float), s0, s0 * s0])  # (n, 3k): observed, score, score squared
    parts = [right[bounds[f]:bounds[f + 1]] for f in range(folds)]
    ok = np.isfinite(cost)
    out = Counts(fold, folds)
    for a in range(k):
        if not ok[a]:
            continue
        others = [w for w in range(k) if w != a and ok[w]]
        base_seen = has[:, a] & scored[:, a]
        base_acc = codes[:, a] >= 0
        for size in range(1, MAX_WITNESSES + 1):
            for ws in combinations(others, size):
                top = max(cost[a], *(cost[w] for w in ws))
                bs = [b for b in range(k) if b != a and b not in ws and ok[b] and cost[b] > top]
                if not bs:
                    continue
                seen, acc = base_seen.copy(), base_acc.copy()
                for w in ws:
                    acc &= codes[:, w] == codes[:, a]
                    seen &= has[:, w]
                acc &= seen
                s1 = np.where(acc, s0[:, a], 0.0)
                left = np.vstack([seen, acc, s1, s1 * s1])  # (4, n)
                prod = np.stack([left[:, bounds[f]:bounds[f + 1]] @ parts[f] for f in range(folds)], axis=1)
                prod = prod.reshape(4, folds, 3, k)[:, :, :, bs]  # (rows, fold, column kind, second)
                n_seen, n_acc = prod[0, :, 0], prod[1, :, 0]
                s2_acc = prod[1, :, 1]
                block = np.stack([n_seen, n_acc, prod[2, :, 0], prod[0, :, 1] - s2_acc, s2_acc,
                                  prod[3, :, 0] - 2 * prod[2, :, 1] + prod[1, :, 2]])
                out.add(a, ws, bs, block)
    return out.done()


def rates(table: np.ndarray, prior: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(accept), q(first | accept), q(second | reject)) per candidate from summed counts
    ``table`` (the rows of :attr:`Counts.table` x candidates), shrunk toward ``prior`` (3 x
    candidates, the independence estimates) by ``strength`` observations; q(first | accept)
    lowered by :data:`LEAD_Z` standard errors of the first model's lead over the second on the
    accepted prompts (see module doc)."""
    nj, na, s1, s2, s2a, dd = table
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(nj + strength > 0, (na + strength * prior[0]) / (nj + strength), prior[0])
        qa = np.where(na + strength > 0, (s1 + strength * prior[1]) / (na + strength), prior[1])
        qr = np.where(nj - na + strength > 0, (s2 + strength * prior[2]) / (nj - na + strength), prior[2])
    # the first model's lead over the second on the accepted prompts (paired), and its standard
    # error (with a floor of one prompt's worth, so a lead seen without a single disagreement
    # still counts as uncertain)
    n1 = np.maximum(na, 1)
    lead = (s1 - s2a) / n1
    se = np.sqrt(np.maximum(dd / n1 - lead * lead, 0) / n1 + 1 / (n1 * n1))
    qa = np.clip(qa - np.where(na > 0, LEAD_Z * se, 0), 0, 1)
    return p, qa, qr


def _chosen(cost: np.ndarray, quality: np.ndarray, singles_cost: np.ndarray, singles_q: np.ndarray,
            limit: int) -> list[int]:
    """Indices of the candidates no single model or other candidate dominates, at most
    ``limit``: those rising furthest above the single models' hull (and above it at all)."""
    from planner.evaluate import hull_value, upper_hull

    fin = np.isfinite(singles_cost) & np.isfinite(singles_q)
    singles = list(zip(singles_cost[fin].tolist(), singles_q[fin].tolist(), strict=True))
    kept = pareto(list(zip(cost.tolist(), quality.tolist(), strict=True)), singles)
    hc, hs = upper_hull([c for c, _ in singles], [s for _, s in singles])
    lift = sorted(((float(quality[i]) - hull_value(hc, hs, float(cost[i])), i) for i in kept), reverse=True)
    return sorted(i for d, i in lift[:limit] if d > 0)


def select(cat: str, models: list[str], counts: Counts, score: np.ndarray, cost: np.ndarray, q: np.ndarray,
           n_labels: float, strength: float, limit: int) -> list[Cascade]:
    """Cross-fitted choice and statistics of one category's cascades (see module doc)."""
    m = len(counts)
    if m == 0:
        return []
    a, b = np.array(counts.first), np.array(counts.second)
    cw = np.array([sum(cost[w] for w in ws) for ws in counts.witnesses])
    prior = np.array([independence(q[i], [q[w] for w in ws], q[j], n_labels)
                      for i, ws, j in zip(counts.first, counts.witnesses, counts.second, strict=True)]).T
    table, folds = counts.table, counts.folds

    def priced(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        p, qa, qr = rates(t, prior, strength)
        return cost[a] + cw + (1 - p) * cost[b], p * qa + (1 - p) * qr, (p, qa, qr)

    if folds == 1:
        honest, chosen = table[:, 0, :], np.ones(m, dtype=bool)
    else:
        honest, times = np.zeros((6, m)), np.zeros(m, dtype=int)
        total = table.sum(axis=1)
        for f in range(folds):
            c, qual, _ = priced(total - table[:, f, :])
            # the single models' mean scores on the same (choosing) folds: the lift is like for like
            rest = (counts.fold != f)[:, None] & ~np.isnan(score)
            n_rest = rest.sum(axis=0)
            single_q = np.where(n_rest > 0, np.where(rest, score, 0.0).sum(axis=0) / np.maximum(n_rest, 1), np.nan)
            for i in _chosen(c, qual, cost, single_q, limit):
                honest[:, i] += table[:, f, i]
                times[i] += 1
        chosen = times >= math.ceil(folds / 2)  # chosen on one fold only: mostly luck
    chosen &= honest[0] > 0  # counted on no prompt: nothing fitted, only the independence guess
    c, qual, (p, qa, qr) = priced(honest)
    idx = np.flatnonzero(chosen)  # never chosen on any fold (or never counted): not offered
    out = []
    for i in idx[_chosen(c[idx], qual[idx], cost, q, limit)]:
        nj, na, s1, s2 = honest[:4, i]
        out.append(Cascade(cat, models[a[i]], tuple(models[w] for w in counts.witnesses[i]), models[b[i]],
                           float(p[i]), float(qa[i]), float(qr[i]), int(nj), int(na), float(s1), float(s2),
                           "joint outcomes" if nj else "independence"))
    return out

