"""Cascades as columns of the assignment problem that ``solve`` and ``sweep`` build.

Every cascade of the catalog (``cascades:`` block: fitted ``agree`` candidates from
``calibrate``, or entries written by hand with any verifier of :mod:`planner.verifiers`)
becomes one more column for the tasks of its category, after the single offerings':

- expected cost ``c1 + v + (1 - p) c2`` and expected quality ``p q(m1 | accept) + (1 - p)
  q(m2 | reject)``: the objective's coefficients and the budget row, as for single models
  (whose projected cost is also an expectation);
- latency: the first stage (the first model, with the witnesses or samples beside it, then a
  judge after it), then the second on escalation; expected ``s + (1 - p) l2`` for the
  objective, worst ``s + l2`` against each task's latency limit;
- the worst-case cost ``c1 + v + c2`` (every stage at ``max_tokens``) is what the executor's
  guard reserves before stage one, and what the plan shows as the worst case.

``p`` and the two conditional qualities come from the catalog when ``calibrate`` fitted them
(joint outcomes); otherwise from :func:`planner.verifiers.independence` per task, and the
plan says so. A column is feasible where the first, second and witness models may serve the
task (lists, capabilities, context, max_tokens, category), the verifier applies (the task's
own tests or schema), and the cascade as a whole meets the task's latency, cost and quality
limits. Cascades are not planned under ``--deadline`` or with share caps on their models:
the solvers' capacity and share rows are per column, and a cascade's calls land on several
models' (the plan notes it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planner.errors import InputError
from planner.verifiers import (
    JUDGE_MAX_TOKENS,
    JUDGE_OUTPUT_TOKENS,
    JUDGE_PROMPT_TOKENS,
    Verifier,
    applies,
    independence,
    parse_verifier,
)

#: exclusion criteria of formulate that also exclude a model from a cascade's stages (the
#: per-task limits on latency, cost and quality apply to the cascade as a whole)
HARD_CRITERIA = ("allow/deny lists", "capabilities", "context window", "max_tokens", "category profile",
                 "latency data")


def parse_entry(rec: Mapping[str, Any], what: str, where: str, extractors: Mapping[str, Any]) -> Any:
    """A catalog ``cascades.candidates`` entry with a verifier other than ``agree``.

    Its statistics (``p_accept``, ``quality_accept``, ``quality_reject``) are optional: without
    them the plan uses the independence estimate per task."""
    from planner.cascade import Cascade
    from planner.tasks import category_label

    try:
        for k in ("category", "first", "second"):
            if not isinstance(rec.get(k), str) or not rec.get(k):
                raise ValueError(f"{k}: expected a name")
        cat = category_label(str(rec["category"]))
        ext = {category_label(str(k)): v for k, v in extractors.items()}.get(cat)
        v = parse_verifier(rec, ext if isinstance(ext, str) else None)
        stats = [rec.get(k) for k in ("p_accept", "quality_accept", "quality_reject")]
        if any(x is not None for x in stats) and not all(x is not None for x in stats):
            raise ValueError("p_accept, quality_accept and quality_reject: give all three or none")
        if stats[0] is not None:
            for k, x in zip(("p_accept", "quality_accept", "quality_reject"), stats, strict=True):
                if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x <= 1:
                    raise ValueError(f"{k}: expected a number in [0, 1], got {x!r}")
        n = rec.get("n", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: expected a count >= 0, got {n!r}")
        known = {"category", "first", "second", "verifier", "witnesses", "samples", "extractor", "judge",
                 "threshold", "rubric", "schema", "p_accept", "quality_accept", "quality_reject", "n",
                 "basis", "accepted", "first_right_accepted", "second_right_rejected", "source", "calibration"}
        extra = sorted(set(rec) - known)
        if extra:
            raise ValueError(f"unknown field {extra[0]!r}")
        if rec.get("calibration") is not None:
            from planner.fit_layers import parse

            parse(rec["calibration"], 3)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}", file=where) from None
    p, qa, qr = (math.nan if x is None else float(x) for x in stats)
    fitted = stats[0] is not None
    return Cascade(cat, str(rec["first"]), (), str(rec["second"]), p, qa, qr, n=int(n),
                   basis=str(rec.get("basis") or ("joint outcomes" if fitted and n else "independence")),
                   verifier=v.kind, verify=v, calibration=rec.get("calibration"))


def verifier_of(c: Any, extractors: Mapping[str, str]) -> Verifier:
    """The verifier of a catalog cascade (an ``agree`` candidate reads its category's extractor)."""
    if c.verify is not None:
        return c.verify  # type: ignore[no-any-return]
    return Verifier("agree", witnesses=tuple(c.witnesses), extractor=extractors.get(c.category))


def all_cascades(stats: Any) -> list[Any]:
    """Every cascade of a catalog's block: the fitted ``agree`` ones, then the others."""
    return [] if stats is None else [*stats.cascades, *getattr(stats, "others", ())]


@dataclass(frozen=True)
class CascadeColumn:
    """One cascade column: which offerings (column indices) each stage uses."""

    cascade: Any  # planner.cascade.Cascade
    verifier: Verifier
    first: int
    second: int
    verify: tuple[int, ...]  # one per verify call, in order (a judge, witnesses, or the first again)
    label: str

    @property
    def fitted(self) -> bool:
        return not math.isnan(self.cascade.p_accept)


@dataclass
class CascadeColumns:
    """The cascade columns of one formulation: arrays of shape (n_tasks, n_cascades)."""

    columns: list[CascadeColumn]
    cost: NDArray[np.float64]
    worst_cost: NDArray[np.float64]
    latency: NDArray[np.float64]
    worst_latency: NDArray[np.float64]
    quality: NDArray[np.float64]
    p_accept: NDArray[np.float64]
    quality_accept: NDArray[np.float64]
    quality_reject: NDArray[np.float64]
    quality_first: NDArray[np.float64]  # the first model's own projected quality
    feasible: NDArray[np.bool_]
    #: per stage (first, each verify call, second): cost, worst cost, in/out tokens, max_tokens
    stage_cost: list[list[NDArray[np.float64]]]
    stage_worst: list[list[NDArray[np.float64]]]
    stage_in_tok: list[list[NDArray[np.float64]]]
    stage_out_tok: list[list[NDArray[np.float64]]]
    stage_max_tokens: list[list[NDArray[np.float64]]]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns)


@dataclass(frozen=True)
class SingleColumns:
    """What formulate computed for the single offerings, that the cascade columns build on."""

    in_tok: NDArray[np.float64]
    visible_tok: NDArray[np.float64]
    out_tok: NDArray[np.float64]
    cost: NDArray[np.float64]
    worst: NDArray[np.float64]
    cap_tok: NDArray[np.float64]
    latency: NDArray[np.float64]
    quality: NDArray[np.float64]
    gamma: NDArray[np.float64]  # (n,) the complexity exponent of each task's quality
    time_cap: NDArray[np.float64]  # (n,) the latest each task may finish
    max_cost: NDArray[np.float64]  # (n,)
    min_quality: NDArray[np.float64]  # (n,)
    hard_excluded: NDArray[np.bool_]  # (n, k) excluded from any stage


def cascade_columns(tasks: Sequence[Any], categories: Sequence[str], offerings: Sequence[Any], stats: Any,
                    s: SingleColumns, *, deadline: bool, share_capped: Sequence[bool]) -> CascadeColumns | None:
    """The columns of every cascade that applies to some task (None when none does)."""
    from planner.cascade import labels_in
    from planner.catalog import short_names

    cands = all_cascades(stats)
    if not cands:
        return None
    n = len(tasks)
    notes: list[str] = []
    if deadline:
        notes.append(f"the catalog's {len(cands)} cascades are not planned with a batch deadline: the solvers "
                     f"count capacity per column, and a cascade's calls land on several models")
        return _empty(n, notes)
    col = {o.name: j for j, o in enumerate(offerings) if o.mode == "realtime"}
    col.update({o.model: j for j, o in enumerate(offerings) if o.mode == "realtime"})
    short = short_names(sorted({o.name for o in offerings}))
    cats = np.asarray(categories, dtype=object)
    checks = [t.check for t in tasks]
    texts = [t.text for t in tasks]
    labels_n = None
    missing = capped = 0
    cols: list[CascadeColumn] = []
    parts: dict[str, list[Any]] = {k: [] for k in ("cost", "worst", "lat", "wlat", "q", "p", "qa", "qr", "q1", "feas",
                                                     "sc", "sw", "si", "so", "sm")}
    for c in cands:
        v = verifier_of(c, stats.extractors)
        names = [c.first, c.second, *v.calls(c.first)]
        if any(m not in col for m in names):
            missing += 1
            continue
        j1, j2 = col[c.first], col[c.second]
        jv = tuple(col[m] for m in v.calls(c.first))
        if any(share_capped[j] for j in (j1, j2, *jv)):
            capped += 1
            continue
        in_cat = cats == c.category
        if not in_cat.any():
            continue
        ok = in_cat & ~s.hard_excluded[:, j1] & ~s.hard_excluded[:, j2]
        for w in v.witnesses:
            ok &= ~s.hard_excluded[:, col[w]]
        if v.needs_check is not None:
            ok &= np.array([applies(v, ch) for ch in checks], dtype=bool)
        if not ok.any():
            continue
        # ---- stage costs and latencies, shape (n,)
        sc, sw, si, so, sm = [s.cost[:, j1]], [s.worst[:, j1]], [s.in_tok[:, j1]], [s.out_tok[:, j1]], [
            s.cap_tok[:, j1]]
        lat = np.nan_to_num(s.latency)
        stage1 = lat[:, j1].copy()
        for jj in jv:
            o = offerings[jj]
            if v.kind == "judge":  # the judge reads the task and the first answer
                base = s.in_tok[:, jj] + JUDGE_PROMPT_TOKENS
                exp_in, worst_in = base + s.visible_tok[:, j1], base + s.cap_tok[:, j1]
                cap = min(JUDGE_MAX_TOKENS, o.max_output_tokens or JUDGE_MAX_TOKENS)
                sc.append(exp_in * o.input_cost_per_token + JUDGE_OUTPUT_TOKENS * o.output_cost_per_token)
                sw.append(worst_in * o.input_cost_per_token + cap * o.output_cost_per_token)
                si.append(worst_in)
                so.append(np.full(n, float(JUDGE_OUTPUT_TOKENS)))
                sm.append(np.full(n, float(cap)))
                judge_lat = (o.ttft_s or 0.0) + JUDGE_OUTPUT_TOKENS / max(o.output_tokens_per_s or 1e9, 1e-9)
                stage1 = stage1 + judge_lat
            else:  # witnesses and samples run beside the first model
                sc.append(s.cost[:, jj])
                sw.append(s.worst[:, jj])
                si.append(s.in_tok[:, jj])
                so.append(s.out_tok[:, jj])
                sm.append(s.cap_tok[:, jj])
                stage1 = np.maximum(stage1, lat[:, jj])
                ok &= ~s.hard_excluded[:, jj]
        sc.append(s.cost[:, j2])
        sw.append(s.worst[:, j2])
        si.append(s.in_tok[:, j2])
        so.append(s.out_tok[:, j2])
        sm.append(s.cap_tok[:, j2])
        # ---- acceptance and qualities
        if not math.isnan(c.p_accept):
            p = np.full(n, c.p_accept)
            qa = np.full(n, c.quality_accept) ** s.gamma
            qr = np.full(n, c.quality_reject) ** s.gamma
        else:
            n_labels: Any = math.inf
            if v.extractor == "choice":
                if labels_n is None:
                    labels_n = np.array([len(labels_in(t)) for t in texts], dtype=float)
                n_labels = labels_n
            p, qa, qr = _independence(v, s, j1, j2, jv, n_labels)
        worst_cost = np.sum(sw, axis=0)
        exp_cost = np.sum(sc[:-1], axis=0) + (1 - p) * sc[-1]
        quality = p * qa + (1 - p) * qr
        feas = ok & (stage1 + lat[:, j2] <= s.time_cap) & (exp_cost <= s.max_cost) \
            & (quality >= s.min_quality - 1e-12)
        if not feas.any():
            continue
        for key, val in (("cost", exp_cost), ("worst", worst_cost), ("lat", stage1 + (1 - p) * lat[:, j2]),
                         ("wlat", stage1 + lat[:, j2]), ("q", quality), ("p", p), ("qa", qa), ("qr", qr),
                         ("q1", s.quality[:, j1]),
                         ("feas", feas), ("sc", sc), ("sw", sw), ("si", si), ("so", so), ("sm", sm)):
            parts[key].append(val)
        label = f"{short.get(offerings[j1].name, c.first)} -> {short.get(offerings[j2].name, c.second)} " \
                f"({v.describe(offerings[j1].name, short)})"
        cols.append(CascadeColumn(c, v, j1, j2, jv, label))
    if missing:
        notes.append(f"{missing} of the catalog's cascades name a model not offered here (realtime): not planned")
    if capped:
        notes.append(f"{capped} cascades use a model with a share cap: not planned (a share cap counts one "
                     f"column's tasks, and a cascade's calls land on several models)")
    if not cols:
        return _empty(n, notes)

    def stack(key: str) -> NDArray[Any]:
        return np.column_stack(parts[key])

    return CascadeColumns(cols, stack("cost"), stack("worst"), stack("lat"), stack("wlat"),
                          np.clip(stack("q"), 0.0, 1.0), stack("p"), stack("qa"), stack("qr"), stack("q1"),
                          stack("feas").astype(bool), parts["sc"], parts["sw"], parts["si"], parts["so"],
                          parts["sm"], notes)


def _independence(v: Verifier, s: SingleColumns, j1: int, j2: int, jv: tuple[int, ...],
                  n_labels: Any) -> tuple[Any, Any, Any]:
    q = s.quality
    if v.kind == "judge":
        return independence(v, q[:, j1], q[:, j2], q_judge=q[:, jv[0]])
    return independence(v, q[:, j1], q[:, j2], [q[:, j] for j in jv] if v.kind == "agree" else (), n_labels=n_labels)


def _empty(n: int, notes: list[str]) -> CascadeColumns:
    z = np.zeros((n, 0))
    return CascadeColumns([], z, z, z, z, z, z, z, z, z, np.zeros((n, 0), dtype=bool), [], [], [], [], [], notes)


def plan_notes(cc: CascadeColumns, used: Sequence[int]) -> list[str]:
    """What a plan that uses cascade columns ``used`` (indices into ``cc.columns``) assumed."""
    if not used:
        return []
    cols = [cc.columns[c] for c in sorted(set(used))]
    indep = [c.label for c in cols if not c.fitted or c.cascade.basis == "independence"]
    out = [f"{len(cols)} cascade{'s' if len(cols) > 1 else ''} planned (first -> verifier -> second): cost, "
           f"latency and quality are "
           f"expectations over the verifier's decision; the worst case (every stage at max_tokens) is "
           f"reserved before stage one"]
    if indep:
        shown = "; ".join(indep[:3]) + (f" and {len(indep) - 3} more" if len(indep) > 3 else "")
        out.append(f"no joint outcome data for {shown}: their acceptance rate and qualities assume the models "
                   f"(and a judge) are right or wrong independently")
    return out


def without_cascades(catalog: Any) -> Any:
    """The catalog with its cascades switched off (``--no-cascades``)."""
    return replace(catalog, cascades=None)


def plan_spec(cc: CascadeColumns, c: int, i: int, offerings: Sequence[Any], worst_cost_usd: float) -> Any:
    """Task ``i``'s cascade on column ``c`` as the plan records it (:class:`planner.plan.CascadeSpec`)."""
    from planner.plan import CascadeSpec, CascadeStage

    col = cc.columns[c]
    js = [col.first, *col.verify, col.second]
    roles: list[Any] = ["first", *(["verify"] * len(col.verify)), "second"]
    stages = [CascadeStage(role=r, model=offerings[j].name, max_tokens=max(1, int(cc.stage_max_tokens[c][s][i])),
                           projected_input_tokens=int(round(cc.stage_in_tok[c][s][i])),
                           projected_output_tokens=int(round(cc.stage_out_tok[c][s][i])),
                           projected_cost_usd=float(cc.stage_cost[c][s][i]),
                           worst_case_cost_usd=float(cc.stage_worst[c][s][i]))
              for s, (r, j) in enumerate(zip(roles, js, strict=True))]
    record = col.verifier.record()
    return CascadeSpec(label=col.label, category=col.cascade.category, verifier=record,
                       p_accept=float(np.clip(cc.p_accept[i, c], 0, 1)),
                       quality_accept=float(np.clip(cc.quality_accept[i, c], 0, 1)),
                       quality_reject=float(np.clip(cc.quality_reject[i, c], 0, 1)),
                       quality_first=float(np.clip(cc.quality_first[i, c], 0, 1)),
                       basis=col.cascade.basis if col.fitted else "independence",
                       worst_case_latency_s=float(cc.worst_latency[i, c]), stages=stages)
