"""Tasks x offerings -> coefficient arrays -> :class:`solvers.Problem` (docs/concepts/integer-program.md).

All arrays have shape (n_tasks, n_offerings) and are built with numpy, no per-pair loop:

- ``in_tok``: the task's ``input_tokens`` or litellm's count for the offering's tokenizer;
- ``visible_tok`` = expected output tokens x verbosity; ``out_tok`` = visible + the model's
  hidden reasoning tokens (billed as output);
- ``cost_usd`` = in_tok x price_in + out_tok x price_out; ``worst_cost_usd`` uses
  min(max_tokens, model max output) instead of out_tok; tasks of a ``prefix_group`` read
  their shared prefix at the cache-read price, and each group pays the cache write once per
  offering it uses, as a group fixed charge (:mod:`planner.prefix_cache`);
- ``latency_s`` = ttft + visible / tokens_per_s (realtime) or the batch window;
- ``quality`` = the model's score for the task type ** 4 ** (complexity - 0.5): complexity
  0.5 keeps the benchmark score, harder tasks widen the gaps, easier ones narrow them;
- ``feasible``: capabilities, context window (in_tok + max output <= window), projected
  output <= min(max_tokens, model max output), allow/deny lists (ids accept fnmatch
  patterns; providers match the litellm provider or the vendor), per-task
  ``max_latency_s`` and ``min_quality`` (the stricter of the task's and the global one), the
  batch deadline, ``max_cost_usd`` against the
  *projected* cost (the executor guards the worst case at run time).

Batch offerings need an explicit deadline (``--deadline`` or a task's ``max_latency_s``) no
shorter than their window: without one, a plan is for interactive use.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray

import solvers
from planner import goals, tokens
from planner.catalog import Catalog, Offering, aliases
from planner.errors import InfeasibleError, InputError
from planner.plan import Limits
from planner.prefix_cache import PrefixPricing, prefix_pricing
from planner.tasks import CAPABILITIES, OTHER_TYPE_TOKENS, TASK_TYPES, Task

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class Formulation:
    """The arrays behind a :class:`solvers.Problem`, kept for building and explaining the plan."""

    tasks: list[Task]
    offerings: list[Offering]
    goal: str
    limits: Limits
    in_tok: NDArray[np.float64]
    visible_tok: NDArray[np.float64]
    out_tok: NDArray[np.float64]
    cost_usd: NDArray[np.float64]
    worst_cost_usd: NDArray[np.float64]
    latency_s: NDArray[np.float64]
    quality: NDArray[np.float64]
    feasible: NDArray[np.bool_]
    excluded: dict[str, NDArray[np.bool_]]  # criterion -> (n, k) True where it excludes the pair
    max_tokens: NDArray[np.float64]  # (n, k) the executor's cap: min(task max_tokens, model max output)
    problem: solvers.Problem
    categories: list[str]  # per task: the category whose profile it uses (its type, or the default)
    notes: list[str]  # what the plan assumed, in words (e.g. models without latency data)
    prefix: PrefixPricing | None = None  # cached prompt prefixes (planner.prefix_cache), if any group caches
    #: cascade columns (:mod:`planner.cascade_plan`), after the offerings' in every array; None: none
    cascades: Any = None

    @property
    def n_offerings(self) -> int:
        """Columns that are single offerings; those from here on are cascades."""
        return len(self.offerings)

    def column_name(self, j: int) -> str:
        """An offering's name, or a cascade's label (``mixtral -> gpt-4 (agree: mixtral, yi-34b)``)."""
        k0 = len(self.offerings)
        return self.offerings[j].name if j < k0 else self.cascades.columns[j - k0].label

    def explain_task(self, i: int) -> str:
        """Why task ``i`` has no feasible offering, with the least change that would give it one."""
        return explain(self, i)


def _validate_limits(goal: str, limits: Limits) -> None:
    goals.goal_spec(goal)  # an unknown goal is an InputError naming the goals
    checks = {"budget_usd": (limits.budget_usd, 0.0, None), "deadline_s": (limits.deadline_s, 0.0, None),
              "max_latency_s": (limits.max_latency_s, 0.0, None),
              "min_quality": (limits.min_quality, 0.0, 1.0), "avg_quality": (limits.avg_quality, 0.0, 1.0)}
    for name, (v, lo, hi) in checks.items():
        if v is None:
            continue
        if not np.isfinite(v) or v < lo or (hi is not None and v > hi) or (name.endswith("_s") and v == 0):
            want = f"a number in [{lo:g}, {hi:g}]" if hi is not None else (
                "a number > 0" if name.endswith("_s") else "a number >= 0")
            raise InputError(f"limits.{name}: expected {want}, got {v!r}")
    extra = set(limits.weights) - {"cost", "quality", "speed"}
    if extra:
        raise InputError(f"weights: unknown weight {sorted(extra)[0]!r}; expected cost, quality, speed")
    if any(not np.isfinite(w) or w < 0 for w in limits.weights.values()) or sum(limits.weights.values()) <= 0:
        raise InputError("weights: expected numbers >= 0, at least one > 0")


def _list_mask(tasks: Sequence[Task], offerings: Sequence[Offering]) -> NDArray[np.bool_]:
    """(n, k) True where the task's allow/deny lists exclude the offering."""
    n, k = len(tasks), len(offerings)
    out = np.zeros((n, k), dtype=bool)
    ids = [(*aliases(o.name), *aliases(o.model)) for o in offerings]  # what the tables print
    provs = [(o.provider.lower(), o.vendor.lower()) for o in offerings]

    def match_model(pats: Sequence[str], j: int) -> bool:
        return any(fnmatch.fnmatchcase(x, p) for p in pats for x in ids[j])

    def match_prov(pats: Sequence[str], j: int) -> bool:
        return any(p.lower() in provs[j] for p in pats)

    cache: dict[tuple, NDArray[np.bool_]] = {}
    for i, t in enumerate(tasks):
        key = (t.allow_models, t.deny_models, t.allow_providers, t.deny_providers)
        if key == ((), (), (), ()):
            continue
        if key not in cache:
            row = np.zeros(k, dtype=bool)
            for j in range(k):
                row[j] = ((bool(t.allow_models) and not match_model(t.allow_models, j))
                          or match_model(t.deny_models, j)
                          or (bool(t.allow_providers) and not match_prov(t.allow_providers, j))
                          or match_prov(t.deny_providers, j))
            cache[key] = row
        out[i] = cache[key]
    return out


def formulate(tasks: Sequence[Task], catalog: Catalog, goal: str = "minimize_cost",
              limits: Limits | None = None, models: Sequence[str] | None = None,
              cascades: bool = True) -> Formulation:
    """Build the coefficient arrays and the :class:`solvers.Problem` for ``tasks`` on ``catalog``.

    ``cascades``: add the catalog's cascades as columns (:mod:`planner.cascade_plan`).

    Raises :class:`InputError` for bad limits or model names and :class:`InfeasibleError`
    when a task has no feasible offering and queuing is not allowed.
    """
    limits = limits or Limits()
    goal = getattr(goal, "value", goal)
    _validate_limits(goal, limits)
    if limits.share_caps:
        limits = _known_share_caps(limits, catalog)
    if models:
        catalog = catalog.select(models)
    tasks = list(tasks)
    offs = list(catalog.offerings)
    if not tasks:
        raise InputError("no tasks to plan")
    n, k = len(tasks), len(offs)

    # ---- per-offering vectors, shape (k,)
    pin = np.array([o.input_cost_per_token for o in offs])
    pout = np.array([o.output_cost_per_token for o in offs])
    ttft = np.array([np.nan if o.ttft_s is None else o.ttft_s for o in offs], dtype=np.float64)
    tps = np.array([np.nan if o.output_tokens_per_s is None else o.output_tokens_per_s for o in offs],
                   dtype=np.float64)
    reason = np.array([o.reasoning_tokens for o in offs], dtype=np.float64)
    verb = np.array([o.verbosity for o in offs])
    ctx = np.array([o.context_window or np.inf for o in offs], dtype=np.float64)
    mout = np.array([o.max_output_tokens or np.inf for o in offs], dtype=np.float64)
    is_batch = np.array([o.mode == "batch" for o in offs])
    window = np.array([o.batch_window_s or 0.0 for o in offs])
    ocaps = np.array([sum(1 << b for b, c in enumerate(CAPABILITIES) if c in o.capabilities) for o in offs])
    has_lat = np.array([o.mode == "batch" or o.has_latency for o in offs])
    cats = task_categories(tasks, catalog)
    cat_names = sorted(set(cats))
    cidx = np.searchsorted(np.array(cat_names), np.array(cats))
    nan = float("nan")

    def per_cat(value) -> NDArray[np.float64]:  # (categories, k), NaN where the model has no value
        return np.array([[nan if (v := value(o, c)) is None else v for o in offs] for c in cat_names],
                        dtype=np.float64).reshape(len(cat_names), k)

    qtab = per_cat(lambda o, c: o.quality_for(c))
    otab = per_cat(lambda o, c: o.output_tokens.get(c))  # measured visible output tokens
    type_out = np.array([TASK_TYPES.get(c, OTHER_TYPE_TOKENS)[0] for c in cat_names], dtype=np.float64)
    type_max = np.array([TASK_TYPES.get(c, OTHER_TYPE_TOKENS)[1] for c in cat_names], dtype=np.float64)

    # ---- per-task vectors, shape (n,)
    def opt(values: list[float | None], default: float) -> NDArray[np.float64]:
        return np.array([default if v is None else v for v in values], dtype=np.float64)

    exp_out = opt([t.expected_output_tokens for t in tasks], nan)  # NaN: not given by the task
    max_tok = np.where(opt([t.max_tokens for t in tasks], nan) > 0,
                       opt([t.max_tokens for t in tasks], 0.0), type_max[cidx])
    cplx = np.array([t.complexity for t in tasks])
    tcaps = np.array([sum(1 << b for b, c in enumerate(CAPABILITIES) if c in t.capabilities) for t in tasks])
    prio = np.array([t.priority for t in tasks])
    # a global limit applies to every task; a task's own limit may be stricter
    g_lat = np.inf if limits.max_latency_s is None else limits.max_latency_s
    max_lat = np.minimum(opt([t.max_latency_s for t in tasks], np.inf), g_lat)
    max_cost = opt([t.max_cost_usd for t in tasks], np.inf)
    g_q = 0.0 if limits.min_quality is None else limits.min_quality
    min_q = np.maximum(opt([t.min_quality for t in tasks], 0.0), g_q)
    deadline = np.inf if limits.deadline_s is None else limits.deadline_s
    time_cap = np.minimum(max_lat, deadline)  # the latest a task may finish

    # ---- coefficients, shape (n, k)
    given = [t.input_tokens for t in tasks]
    msgs = [t.chat_messages if t.input_tokens is None else None for t in tasks]
    in_tok = tokens.count_matrix(msgs, given, [o.model for o in offs])
    # the task's own expected length x verbosity, else the model's measured length for the
    # category, else the type's default x verbosity
    measured = otab[cidx]
    visible = np.where(~np.isnan(exp_out)[:, None], np.nan_to_num(exp_out)[:, None] * verb[None, :],
                       np.where(np.isnan(measured), type_out[cidx][:, None] * verb[None, :], measured))
    out_tok = visible + reason[None, :]
    cap_tok = np.minimum(max_tok[:, None], mout[None, :])
    cost = in_tok * pin + out_tok * pout
    worst = in_tok * pin + cap_tok * pout
    prefix = prefix_pricing(tasks, offs, in_tok, pin)
    if prefix is not None and prefix.any_cached:  # the prefix read from the cache; its write is a group charge
        cost = cost - prefix.saving_usd
        worst = worst + prefix.extra_worst_usd
    with np.errstate(invalid="ignore"):
        latency = np.where(is_batch[None, :], window[None, :],
                           np.nan_to_num(ttft)[None, :] + visible / np.where(has_lat, tps, 1.0)[None, :])
    latency = np.where(has_lat[None, :], latency, 0.0)
    gamma = 4.0 ** (cplx - 0.5)
    q = qtab[cidx]
    no_profile = np.isnan(q)
    quality = np.clip(np.nan_to_num(q), 0.0, 1.0) ** gamma[:, None]
    if catalog.predictor is not None:  # per-prompt scores where calibration kept a predictor
        from planner.predictor import predict_quality

        quality = np.where(no_profile, 0.0, predict_quality(catalog.predictor, [t.text for t in tasks], cats,
                                                            offs, quality))
    notes: list[str] = [] if prefix is None else list(prefix.notes)
    needs_latency = np.isfinite(time_cap) | (goal == "minimize_latency")
    if not has_lat.all():
        names = [o.name for o in offs if not (o.mode == "batch" or o.has_latency)]
        listed = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        notes.append(f"no latency data (ttft_s, output_tokens_per_s) for {listed}: their latency is not "
                     f"projected (shown as 0 s) and they serve no task with a latency limit or deadline")
        if goal == "balanced" and has_lat.any() and limits.weights.get("speed", 0.0) > 0:
            known = np.where(has_lat[None, :], latency, np.nan)
            stand_in = np.nanmean(known, axis=1)
            latency = np.where(has_lat[None, :], latency, stand_in[:, None])
            notes.append("for the balanced score, a model without latency data counts as the mean "
                         "latency of the models with data")

    excluded = {
        "allow/deny lists": _list_mask(tasks, offs),
        "capabilities": (tcaps[:, None] & ~ocaps[None, :]) != 0,
        "context window": in_tok + cap_tok > ctx[None, :],
        "max_tokens": out_tok > cap_tok,
        "min_quality": quality < min_q[:, None] - 1e-12,
        "max_latency_s": latency > time_cap[:, None],
        "batch deadline": is_batch[None, :] & ~np.isfinite(time_cap)[:, None],
        "max_cost_usd": cost > max_cost[:, None],
        "category profile": no_profile,
        "latency data": needs_latency[:, None] & ~has_lat[None, :],
    }
    feasible = ~np.logical_or.reduce(list(excluded.values()))

    # ---- limits that span tasks
    conc = np.array([np.inf if o.mode == "batch" else float(o.concurrency or DEFAULT_CONCURRENCY)
                     for o in offs])
    share = np.array([limits_share(o, limits) for o in offs])
    cc = None
    if cascades and catalog.cascades is not None and prefix is not None and prefix.any_cached:
        notes.append("the catalog's cascades are not planned with cached prompt prefixes: a prefix group's "
                     "cache write is charged per offering column, and a cascade's calls land on several models")
    elif cascades and catalog.cascades is not None:
        from planner.cascade_plan import HARD_CRITERIA, SingleColumns, cascade_columns

        hard = np.logical_or.reduce([excluded[c] for c in HARD_CRITERIA])
        cc = cascade_columns(tasks, cats, offs, catalog.cascades, SingleColumns(
            in_tok, visible, out_tok, cost, worst, cap_tok, latency, quality, gamma, time_cap, max_cost, min_q,
            hard), deadline=limits.deadline_s is not None, share_capped=list(share < 1))
        if cc is not None:
            notes.extend(cc.notes)
            if len(cc):
                cc.notes.clear()
                # the cascades' columns after the offerings' (solvers see more columns, nothing else)
                cost, worst = np.hstack([cost, cc.cost]), np.hstack([worst, cc.worst_cost])
                latency, quality = np.hstack([latency, cc.latency]), np.hstack([quality, cc.quality])
                feasible = np.hstack([feasible, cc.feasible])
                first = [c.first for c in cc.columns]
                # tokens and max_tokens of a cascade column: its first stage's
                in_tok, visible = np.hstack([in_tok, in_tok[:, first]]), np.hstack([visible, visible[:, first]])
                out_tok, cap_tok = np.hstack([out_tok, out_tok[:, first]]), np.hstack([cap_tok, cap_tok[:, first]])
                conc = np.append(conc, [min(conc[j] for j in (c.first, c.second, *c.verify)) for c in cc.columns])
                share = np.append(share, np.ones(len(cc)))
            else:
                cc = None
    capacity = load = None
    extra: list[solvers.CapacityRow] = []
    if limits.deadline_s is not None:
        T = limits.deadline_s
        load, capacity = latency, conc * T  # seconds of model time in T with `conc` parallel calls
        rpm = np.array([np.inf if o.rpm is None or o.mode == "batch" else o.rpm * T / 60 for o in offs])
        tpm = np.array([np.inf if o.tpm is None or o.mode == "batch" else o.tpm * T / 60 for o in offs])
        if np.isfinite(rpm).any():
            extra.append(solvers.CapacityRow("requests", np.ones((n, k)), rpm))
        if np.isfinite(tpm).any():
            extra.append(solvers.CapacityRow("tokens", in_tok + out_tok, tpm))

    cached_prefix = prefix if prefix is not None and prefix.any_cached else None
    parts = dict(tasks=tasks, offerings=offs, goal=goal, limits=limits, in_tok=in_tok,
                 visible_tok=visible, out_tok=out_tok, cost_usd=cost, worst_cost_usd=worst,
                 latency_s=latency, quality=quality, feasible=feasible, excluded=excluded,
                 max_tokens=cap_tok, categories=cats, notes=notes, prefix=cached_prefix, cascades=cc)
    empty = np.flatnonzero(~feasible.any(axis=1))
    if empty.size and not limits.allow_queue:  # said in the user's words, before any Problem
        arrays = SimpleNamespace(**parts)  # what explain() reads; no problem is built
        shown = [explain(arrays, int(i)) for i in empty[:3]]
        more = f" (and {empty.size - 3} more tasks)" if empty.size > 3 else ""
        raise InfeasibleError("no model can serve " + "; ".join(shown) + more
                              + "; relax those limits or pass --allow-queue")
    w = limits.weights
    problem = solvers.Problem(
        cost=cost, quality=quality, latency=latency, feasible=feasible,
        load=load, capacity=capacity, extra_capacities=tuple(extra),
        budget=limits.budget_usd, min_avg_quality=limits.avg_quality,
        share_cap=share if (share < 1).any() else None, priority=prio,
        allow_queue=limits.allow_queue, goal=goal,
        weights=solvers.Weights(cost=w.get("cost", 0.0), quality=w.get("quality", 0.0),
                                speed=w.get("speed", 0.0)),
        concurrency=conc,
        group_charges=(solvers.GroupCharges(cached_prefix.group, cached_prefix.setup_usd)
                       if cached_prefix is not None else None),
    )
    f = Formulation(**parts, problem=problem)
    return f


def problem_at_deadline(f: Formulation, deadline_s: float) -> tuple[solvers.Problem | None, str]:
    """The problem at deadline T derived from ``f``, formulated at T_max = ``f.limits.deadline_s``
    (sweeps and the deadline search formulate once, then derive every shorter deadline).

    formulate excludes a pair when latency > min(task limit, T); at T <= T_max that is the pair
    excluded at T_max or slower than T, and every capacity is linear in T. Returns (None, why)
    when a task has no model within T and queueing is not allowed.
    """
    p = f.problem
    t_max = f.limits.deadline_s
    assert t_max is not None and deadline_s <= t_max
    scale = deadline_s / t_max
    mask = f.feasible & (f.latency_s <= deadline_s)
    extra = tuple(solvers.CapacityRow(r.name, r.load, r.limit * scale) for r in p.extra_capacities)
    capacity = None if p.capacity is None else p.capacity * scale
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size and not p.allow_queue:
        task = f.tasks[int(empty[0])]
        more = f" (and {empty.size - 1} more)" if empty.size > 1 else ""
        return None, f"task {task.id!r} has no model within {deadline_s:g} s{more}"
    return dataclasses.replace(p, feasible=mask, capacity=capacity, extra_capacities=extra), ""


def _known_share_caps(limits: Limits, catalog: Catalog) -> Limits:
    """Share caps keyed by names the catalog knows (ids, models or short names); an unknown
    name is an InputError naming close ones (it was once silently ignored)."""
    known = {o.name for o in catalog.offerings} | {o.model for o in catalog.offerings}
    caps: dict[str, float] = {}
    for name, share in limits.share_caps.items():
        if name in known:
            caps[name] = share
            continue
        try:
            caps[catalog.resolve(name).name] = share
        except InputError as exc:
            raise InputError(f"--share-cap {name}={share:g}: {exc}") from None
    return limits.model_copy(update={"share_caps": caps})


def task_categories(tasks: Sequence[Task], catalog: Catalog) -> list[str]:
    """Per task, the category whose profile it uses: its type when the catalog knows the label,
    else the catalog's ``default_category``; an unknown label without one is an InputError."""
    out: list[str] = []
    resolved: dict[str, str | None] = {}
    for i, t in enumerate(tasks):
        if t.type not in resolved:
            resolved[t.type] = catalog.category_of(t.type)
        cat = resolved[t.type]
        if cat is None:
            known = sorted(catalog.categories)
            shown = ", ".join(known[:15]) + (f", ... ({len(known)} in all)" if len(known) > 15 else "")
            raise InputError(f"task {t.id!r} (record {i}): type {t.type!r} is not a category catalog "
                             f"{catalog.name} knows ({shown}); use one of those, or declare "
                             f"'default_category: <label>' in the catalog, or calibrate it from outcomes")
        out.append(cat)
    return out


def limits_share(o: Offering, limits: Limits) -> float:
    """The share cap of an offering: the limits' entry for its name or model, else the catalog's."""
    caps = getattr(limits, "share_caps", None) or {}
    for key in (o.name, o.model):
        if key in caps:
            return float(caps[key])
    return 1.0 if o.share_cap is None else float(o.share_cap)


def explain(f: Formulation | SimpleNamespace, i: int) -> str:
    """Task ``i``'s exclusion in words: each limit that alone blocks otherwise-eligible models."""
    t = f.tasks[i]
    masks = {c: m[i] for c, m in f.excluded.items()}
    names = [o.name for o in f.offerings]
    parts: list[str] = []
    for c, m in masks.items():
        others = ~np.logical_or.reduce([mm for cc, mm in masks.items() if cc != c])
        cand = np.flatnonzero(others & m)
        if cand.size == 0:
            continue
        if c == "min_quality":
            j = cand[np.argmax(f.quality[i, cand])]
            parts.append(f"min_quality {max(t.min_quality or 0, f.limits.min_quality or 0):g} is above the best "
                         f"score, {f.quality[i, j]:.3f} ({names[j]})")
        elif c == "max_latency_s":
            j = cand[np.argmin(f.latency_s[i, cand])]
            parts.append(f"the latency limit excludes all; fastest is {names[j]} at {f.latency_s[i, j]:.2f} s")
        elif c == "max_cost_usd":
            j = cand[np.argmin(f.cost_usd[i, cand])]
            parts.append(f"max_cost_usd {t.max_cost_usd:g} is below the cheapest, "
                         f"${f.cost_usd[i, j]:.6f} ({names[j]})")
        elif c == "capabilities":
            parts.append(f"it needs {', '.join(t.capabilities)}, which {names[cand[0]]} and others lack")
        elif c == "context window":
            j = cand[np.argmax([f.offerings[x].context_window or 0 for x in cand])]
            parts.append(f"{int(f.in_tok[i, j])} input + {int(f.max_tokens[i, j])} output tokens exceed "
                         f"the largest context window ({names[j]}: {f.offerings[j].context_window})")
        elif c == "max_tokens":
            j = cand[np.argmin(f.out_tok[i, cand])]
            parts.append(f"max_tokens {t.max_output_tokens} is below the expected output; least is "
                         f"{int(np.ceil(f.out_tok[i, j]))} tokens ({names[j]})")
        elif c == "batch deadline":
            parts.append("batch models need a deadline (--deadline) no shorter than their window")
        elif c == "category profile":
            parts.append(f"no model scores category {f.categories[i]!r} (give those models a quality "
                         f"for it, or a default)")
        elif c == "latency data":
            parts.append("it has a latency limit or deadline, and the catalog has no latency data "
                         f"(ttft_s, output_tokens_per_s) for {names[cand[0]]} and others that could serve it")
        else:
            parts.append("its allow/deny lists exclude every model that meets its other limits")
    if not parts:
        counts = ", ".join(f"{c} ({int(m.sum())} models)" for c, m in masks.items() if m.any())
        parts.append(f"several limits together exclude every model: {counts}")
    return f"task {t.id!r} (record {i}, {t.type}): " + "; ".join(parts)
