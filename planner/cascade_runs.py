"""Cascade statistics from graded runs: what ``routeplan calibrate RUN_DIR`` learns of the
cascades a run executed, for any verifier (docs/cascades.md, "Calibrating from runs").

A run's ledger records, per cascade task, the cascade as planned (category, first, second,
the verifier and its settings), the verifier's decision, which stage's answer was kept and
that answer's check score. Per cascade (those four together):

- ``p_accept`` = accepted / decided, over every task the verifier decided (graded or not); a
  task escalated because stage one or a verifier call failed was not decided by the verifier
  and is left out (with a note), as are its answers;
- ``quality_accept`` = the mean check score of the kept (first) answers of accepted tasks;
- ``quality_reject`` = the mean check score of the second model's answers on rejected tasks
  (a rejected task whose escalation failed kept the first answer: it counts for the decision
  only). Only graded tasks count toward the two qualities.

Each rate is shrunk like every other calibrated number (:func:`planner.calibrate.posterior_mean`,
``prior_strength`` pseudo-observations) toward the base catalog's entry for the same cascade
when it has fitted values, else toward the independence estimate of
:func:`planner.verifiers.independence` from the models' calibrated qualities, else toward
what the run's plan projected; each with its credible interval. The fitted entries join the
catalog's ``cascades.candidates`` (:func:`merge_block`), replacing an entry for the same
cascade from the base catalog or from a wide outcome table.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.fit_layers import Fit, Fitted, base_fit, parse

#: what a fitted entry's ``basis`` says
BASIS = "graded runs"


def read_run_cascades(run_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per cascade task of the run in ``run_dir`` (see :data:`RECORD_COLUMNS`), and
    notes on what was left out. Raises InputError when the folder holds no readable ledger."""
    from planner.executor.ledger import LEDGER_NAME, cascade_outcomes

    path = run_dir / LEDGER_NAME
    if not path.is_file():
        raise InputError(f"not a run folder: expected {LEDGER_NAME} in it (a run's --out folder)", file=str(run_dir))
    try:
        meta, rows = cascade_outcomes(path)
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the run ledger: {exc}", file=str(path)) from None
    run_id = meta.get("run_id") or None  # the run's identity: a base entry fitted from it says so
    models = json.loads(meta.get("models") or "{}")
    litellm = {name: m.get("litellm_model", name) for name, m in models.items()}
    records, notes, unspecified, forced = [], [], 0, 0
    for task_id, _type, label, spec_json, accepted, status, model, score, prompt, stages in rows:
        if not spec_json:
            unspecified += 1
            continue
        spec = json.loads(spec_json)
        done = {int(x) for x in str(stages).split(",")} if stages else set()
        last = int(spec["stages"]) - 1
        if accepted is not None and not all(i in done for i in range(last)):
            forced += 1  # a stage before the verifier failed: escalated without its decision
            accepted = None
        kept = None
        if status == "done" and accepted == 1 and model == spec["first"]:
            kept = "first"
        elif status == "done" and accepted == 0 and last in done and model == spec["second"]:
            kept = "second"
        records.append({
            "source": str(run_dir), "run_id": run_id, "task_id": str(task_id), "category": str(spec["category"]),
            "label": label,
            "first": spec["first"], "second": spec["second"], "verifier": spec["verifier"],
            "accepted": math.nan if accepted is None else float(accepted), "kept": kept,
            "score": math.nan if score is None or kept is None else float(score), "prompt": prompt,
            "plan": (float(spec["p_accept"]), float(spec["quality_accept"]), float(spec["quality_reject"])),
            "litellm": {m: litellm.get(m, m) for m in _models_of(spec)}})
    if records and meta.get("simulated") == "1":
        notes.append(f"{run_dir}: a simulated run: its cascades' decisions and answers were drawn at the "
                     f"plan's projected rates, so calibrating from it learns the projection back")
    if forced:
        notes.append(f"{run_dir}: {forced} cascade tasks left out: stage one or a verifier call failed, so the "
                     f"verifier never decided them (as rejections they would bias p_accept down, and their "
                     f"second answers are no sample of the prompts the verifier rejects)")
    if unspecified:
        notes.append(f"{run_dir}: {unspecified} cascade tasks left out: the ledger predates recording the "
                     f"cascade's verifier (cascade_spec); re-run to calibrate them")
    return pd.DataFrame.from_records(records, columns=RECORD_COLUMNS), notes


RECORD_COLUMNS = ["source", "run_id", "task_id", "category", "label", "first", "second", "verifier", "accepted", "kept",
                  "score", "prompt", "plan", "litellm"]


def _models_of(spec: Mapping[str, Any]) -> list[str]:
    v = spec.get("verifier") or {}
    return [spec["first"], spec["second"], *v.get("witnesses", []), *([v["judge"]] if v.get("judge") else [])]


def cascade_key(category: str, first: str, second: str, verifier: Mapping[str, Any]) -> str:
    """The identity of a cascade: category, first, second, the verifier and its settings."""
    return json.dumps([category, first, second, dict(verifier)], sort_keys=True)


@dataclass
class RunFit:
    """One cascade's statistics from graded runs."""

    key: str
    category: str
    first: str
    second: str
    verifier: dict[str, Any]
    label: str
    decided: int
    accepted: int
    n_accept: int  # graded accepted tasks (the first answer kept)
    sum_accept: float
    n_reject: int  # graded rejected tasks with the second model's answer kept
    sum_reject: float
    prior: tuple[float, float, float]
    prior_from: str
    fitted: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    #: how it was fitted, runs by id (:mod:`planner.fit_layers`): the base entry's record (less
    #: the runs read again) with this fit on top
    calibration: Any = None
    again: frozenset[str] = frozenset()  # runs the base entry already held, read again here

    def entry(self, strength: float, level: float) -> dict[str, Any]:
        """The ``cascades.candidates`` entry (an ``agree`` one reads its extractor from the block)."""
        p, qa, qr = self.fitted
        v = {k: val for k, val in self.verifier.items() if not (k == "extractor" and self.verifier["verifier"] == "agree")}
        (plo, phi), (alo, ahi), (rlo, rhi) = self.intervals
        ungraded = "" if self.n_accept + self.n_reject else "; no graded tasks: qualities left at the prior"
        again = (f"; the base entry already held run{'s' * (len(self.again) > 1)} {', '.join(sorted(self.again))}, "
                 f"counted once" if self.again else "")
        return {"category": self.category, "first": self.first, "second": self.second, **v,
                "p_accept": round(p, 4), "quality_accept": round(qa, 4), "quality_reject": round(qr, 4),
                "n": self.decided, "accepted": self.accepted, "first_right_accepted": round(self.sum_accept, 4),
                "second_right_rejected": round(self.sum_reject, 4), "basis": BASIS,
                "source": (f"calibrated from graded runs ({', '.join(self.sources)}): {self.accepted} of "
                           f"{self.decided} decided tasks accepted, {self.n_accept} accepted and {self.n_reject} "
                           f"escalated graded; {level:.0%} intervals p_accept [{plo:.2f}, {phi:.2f}], "
                           f"quality_accept [{alo:.2f}, {ahi:.2f}], quality_reject [{rlo:.2f}, {rhi:.2f}] "
                           f"(prior {self.prior[0]:.3f}/{self.prior[1]:.3f}/{self.prior[2]:.3f} from "
                           f"{self.prior_from}, strength {strength:g}){ungraded}{again}"),
                **({"calibration": self.calibration.record()} if self.calibration is not None else {})}


def fit_run_cascades(records: pd.DataFrame, base: Any, quality: Mapping[tuple[str, str], float], *,
                     strength: float, level: float) -> tuple[list[RunFit], list[str]]:
    """Per cascade of ``records`` (:func:`read_run_cascades` rows, categories normalised): the
    shrunk rates; ``base``: the base catalog (priors); ``quality``: calibrated (model,
    category) qualities for the independence prior. Returns (fits, notes)."""
    from planner.calibrate import credible_interval, posterior_mean

    notes: list[str] = []
    if records.empty:
        return [], notes
    base_entries = base_cascades(base)
    fits = []
    keys = [cascade_key(c, f, s, v) for c, f, s, v in zip(records["category"], records["first"], records["second"],
                                                            records["verifier"], strict=True)]
    for key, g in records.groupby(pd.Series(keys, index=records.index), sort=True):
        r0 = g.iloc[0]
        decided = g[g["accepted"].notna()]
        if decided.empty:
            notes.append(f"cascade {r0['label']}: no decided task in the runs; nothing fitted")
            continue
        acc = decided[decided["accepted"] == 1]
        qa_scores = acc.loc[(acc["kept"] == "first") & acc["score"].notna(), "score"]
        rej = decided[decided["accepted"] == 0]
        qr_scores = rej.loc[(rej["kept"] == "second") & rej["score"].notna(), "score"]
        counts_by_run = _counts_by_run(decided)
        reading = frozenset(r for r in counts_by_run if r is not None)
        onto, again = _recorded(base_entries.get(str(key)), reading)
        if onto is not None and again:  # the base entry less the runs read again: each counted once
            p, qa, qr = onto.value()
            prior = (p, qa, qr)
            prior_from = (f"catalog {base.name}'s entry without run{'s' * (len(again) > 1)} "
                          f"{', '.join(sorted(again))} (read again here)")
        else:
            prior, prior_from = _prior(str(key), g, base, base_entries, quality)
        layer = Fit(strength, {r: c for r, c in counts_by_run.items() if r is not None},
                    counts_by_run.get(None, ((0.0, 0.0),) * 3))
        fit = RunFit(str(key), str(r0["category"]), str(r0["first"]), str(r0["second"]), dict(r0["verifier"]),
                     str(r0["label"]), len(decided), len(acc), len(qa_scores), float(qa_scores.sum()),
                     len(qr_scores), float(qr_scores.sum()), prior, prior_from,
                     sources=sorted(set(g["source"])), again=again,
                     calibration=(onto if onto is not None else Fitted(prior, prior_from)).then(layer))
        sums = (float(len(acc)), fit.sum_accept, fit.sum_reject)
        counts = (fit.decided, fit.n_accept, fit.n_reject)
        fit.fitted = tuple(float(posterior_mean(s, n, p, strength)) for s, n, p in  # type: ignore[assignment]
                           zip(sums, counts, prior, strict=True))
        fit.intervals = [tuple(float(x) for x in credible_interval(s, n, p, strength, level))  # type: ignore[misc]
                         for s, n, p in zip(sums, counts, prior, strict=True)]
        if again:
            notes.append(f"cascade {fit.label}: the base catalog's entry already held run{'s' * (len(again) > 1)} "
                         f"{', '.join(sorted(again))}, read again here: counted once (shrunk toward the entry "
                         f"without {'them' if len(again) > 1 else 'it'})")
        if not fit.n_accept + fit.n_reject:
            notes.append(f"cascade {fit.label}: {fit.decided} decided tasks, none graded: p_accept fitted, "
                         f"quality_accept and quality_reject left at the prior ({prior_from})")
        fits.append(fit)
    return fits, notes


def _counts_by_run(decided: pd.DataFrame) -> dict[str | None, tuple[tuple[float, float], ...]]:
    """Per run id (None: no id recorded) of decided tasks: (n, sum) of each rate: (decided,
    accepted), (graded accepted, their scores), (graded escalated, their scores)."""
    out: dict[str | None, tuple[tuple[float, float], ...]] = {}
    ids = decided["run_id"].map(lambda x: x if isinstance(x, str) and x else "\0")
    for run, g in decided.groupby(ids, sort=True):
        acc, rej = g[g["accepted"] == 1], g[g["accepted"] == 0]
        qa = acc.loc[(acc["kept"] == "first") & acc["score"].notna(), "score"]
        qr = rej.loc[(rej["kept"] == "second") & rej["score"].notna(), "score"]
        out[None if run == "\0" else str(run)] = ((float(len(g)), float(len(acc))), (float(len(qa)), float(qa.sum())),
                                                  (float(len(qr)), float(qr.sum())))
    return out


def _recorded(c: Any, reading: frozenset[str]) -> tuple[Fitted | None, frozenset[str]]:
    """(the base entry's calibration record to fit on top of, its runs read again)."""
    if c is None or c.calibration is None or math.isnan(c.p_accept):
        return None, frozenset()
    return base_fit(parse(c.calibration, 3), (c.p_accept, c.quality_accept, c.quality_reject), reading)


def base_cascades(base: Any) -> dict[str, Any]:
    """The base catalog's cascades by :func:`cascade_key`."""
    from planner.cascade_plan import all_cascades, verifier_of

    stats = getattr(base, "cascades", None)
    if stats is None:
        return {}
    return {cascade_key(c.category, c.first, c.second, verifier_of(c, stats.extractors).record()): c
            for c in all_cascades(stats)}


def _prior(key: str, g: pd.DataFrame, base: Any, entries: Mapping[str, Any],
           quality: Mapping[tuple[str, str], float]) -> tuple[tuple[float, float, float], str]:
    from planner.verifiers import parse_verifier

    c = entries.get(key)
    if c is not None and not math.isnan(c.p_accept):
        return (float(c.p_accept), float(c.quality_accept), float(c.quality_reject)), f"catalog {base.name}"
    r0 = g.iloc[0]
    cat, names = str(r0["category"]), dict(r0["litellm"])
    profiles = {p.id: p for p in base.profiles}

    def q(model: str) -> float | None:
        for m in (model, names.get(model, model)):
            if (m, cat) in quality:
                return quality[(m, cat)]
            prof = profiles.get(m)
            if prof is not None:
                value = prof.quality.get(cat, prof.quality.get("default"))
                if value is None and base.default_category is not None:
                    value = prof.quality.get(base.default_category)
                if value is not None:
                    return float(value)
        return None

    v = parse_verifier(dict(r0["verifier"]))
    q1, q2 = q(str(r0["first"])), q(str(r0["second"]))
    qw = [q(w) for w in v.witnesses] if v.kind == "agree" else []
    qj = q(v.judge) if v.kind == "judge" and v.judge else None
    if q1 is not None and q2 is not None and None not in qw and (v.kind != "judge" or qj is not None):
        from planner.cascade import labels_in
        from planner.verifiers import independence

        n_labels = math.inf
        if v.extractor == "choice":
            n_labels = float(np.median([len(labels_in(p if isinstance(p, str) else None)) for p in g["prompt"]]))
        p, qa, qr = independence(v, q1, q2, [w for w in qw if w is not None], qj, n_labels)
        return (float(p), float(qa), float(qr)), "independence of the models' qualities"
    plan = np.array(list(g["plan"]), dtype=float).mean(axis=0)
    return (float(plan[0]), float(plan[1]), float(plan[2])), "the run's plan (its models have no quality here)"


def merge_block(base: Any, wide: Mapping[str, Any] | None, fits: Sequence[RunFit], *, strength: float,
                level: float) -> tuple[dict[str, Any], list[str]]:
    """The ``cascades:`` block of a calibrated catalog with run-fitted entries: the base
    catalog's entries, then those fitted from wide outcome tables, then the run-fitted ones;
    a later one replaces an earlier one for the same cascade (noted)."""
    from planner.cascade_plan import all_cascades, verifier_of

    stats = getattr(base, "cascades", None)
    extractors: dict[str, str] = dict(stats.extractors) if stats is not None else {}
    skipped: dict[str, str] = dict(stats.skipped) if stats is not None else {}
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for c in all_cascades(stats):
        rec = verifier_of(c, extractors).record()
        entries[cascade_key(c.category, c.first, c.second, rec)] = (f"catalog {base.name}", _base_entry(c))
    block: dict[str, Any] = {}
    if wide:
        block = {k: v for k, v in wide.items() if k not in ("extractors", "skipped", "candidates")}
        extractors.update(wide.get("extractors") or {})
        skipped.update(wide.get("skipped") or {})
        for rec in wide.get("candidates") or []:
            v = {"verifier": "agree", "witnesses": list(rec["witnesses"]), "extractor": extractors.get(rec["category"])}
            v = {k: x for k, x in v.items() if x is not None}
            entries[cascade_key(rec["category"], rec["first"], rec["second"], v)] = ("wide outcome tables", rec)
    notes = []
    for f in fits:
        if f.verifier["verifier"] == "agree":
            ext = f.verifier.get("extractor")
            if ext is not None and extractors.setdefault(f.category, ext) != ext:
                notes.append(f"cascade {f.label}: ran with the {ext} extractor, the catalog reads {f.category} "
                             f"with {extractors[f.category]}; the block keeps {extractors[f.category]}")
        had = entries.get(f.key)
        if had is not None:
            notes.append(f"cascade {f.label}: the run-fitted statistics replace the entry from {had[0]}")
        entries[f.key] = ("graded runs", f.entry(strength, level))
    block.update({"extractors": extractors, "skipped": skipped, "candidates": [e for _, e in entries.values()]})
    return block, notes


def _base_entry(c: Any) -> dict[str, Any]:
    """A base catalog cascade as a candidates entry (statistics only where it has them)."""
    rec = c.record()
    if math.isnan(c.p_accept):
        for k in ("p_accept", "quality_accept", "quality_reject", "accepted", "first_right_accepted",
                  "second_right_rejected", "basis"):
            rec.pop(k, None)
    if rec.get("verifier") != "agree":
        rec.pop("witnesses", None)
    return {k: v for k, v in rec.items() if v is not None}
