"""Cached prompt prefixes (DESIGN constraint 6): what a shared prefix costs on each offering.

Tasks that share a ``prefix_group`` send the same leading tokens. A provider that caches
prompts bills the first call that writes the prefix at its cache-write price and later calls
that read it at the cache-read price (10-50 % of the input price), as long as they come
within the cache's lifetime. So, per group g and offering j, with ``p[g, j]`` prefix tokens:

- every task of g on j pays ``p * read`` for the prefix instead of ``p * input``
  (its pair cost drops by ``p * (input - read)``);
- the group pays ``p * (write - read)`` once per offering it uses: a group fixed charge
  (:mod:`solvers.groups`), so exact backends model it with y[g, j] >= x[i, j].

The prefix is the task's ``prefix_tokens`` where given (the least over the group: the part all
share), else the leading messages every task of the group has in common, else the common
start of their first message's text; counted with litellm's token counter for each
offering's tokenizer, and never more than any member's input. A prefix is priced as cached
only on offerings with cache prices (litellm's ``cache_read_input_token_cost`` and
``cache_creation_input_token_cost``, ``*_batches`` for batch offerings, or the catalog's),
and only when it reaches the offering's minimum cacheable length (``prompt_cache_min_tokens``,
else :data:`DEFAULT_MIN_TOKENS`). A provider without a write price (OpenAI, Gemini) bills the
writing call at the input price.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planner.catalog import Offering
from planner.tasks import Task

#: Providers cache prompts of at least this many tokens (OpenAI, Anthropic Sonnet/Opus, Gemini
#: Flash); a model may set its own (``cache_min_tokens``, litellm's ``prompt_cache_min_tokens``).
DEFAULT_MIN_TOKENS = 1024
#: How long a written prefix stays readable, unless the catalog says otherwise: Anthropic's
#: default lifetime (refreshed by each read); OpenAI keeps prefixes 5-10 minutes.
DEFAULT_TTL_S = 300.0


@dataclass(frozen=True)
class PrefixGroup:
    """One prefix group of the batch.

    tasks : int array, the members' task indices (plan order)
    tokens : array of shape (n_offerings,), the prefix's tokens on each offering's tokenizer
    messages : leading messages the members share (where the cache breakpoint goes); 0 if none
    source : how the prefix was found, in words
    """

    name: str
    tasks: NDArray[np.int64]
    tokens: NDArray[np.float64]
    messages: int
    source: str


@dataclass(frozen=True)
class PrefixPricing:
    """Cached-prefix prices of a batch on a catalog, shape (n_tasks, n_offerings) unless noted.

    group : int array (n_tasks,), the task's group index or -1
    cached : bool (n_groups, n_offerings), the prefix is priced as cached there
    tokens : (n_groups, n_offerings), prefix tokens (0 where not cached)
    read_usd, write_usd : (n_offerings,), USD per token (NaN where the offering has no cache price)
    saving_usd : (n_tasks, n_offerings), what reading instead of sending the prefix saves each task
    setup_usd : (n_groups, n_offerings), the one-off write premium of the group on the offering
    extra_worst_usd : (n_tasks, n_offerings), how much a call writing the prefix can cost above
        the input price (for the worst case the executor reserves)
    """

    groups: list[PrefixGroup]
    group: NDArray[np.int64]
    cached: NDArray[np.bool_]
    tokens: NDArray[np.float64]
    read_usd: NDArray[np.float64]
    write_usd: NDArray[np.float64]
    saving_usd: NDArray[np.float64]
    setup_usd: NDArray[np.float64]
    extra_worst_usd: NDArray[np.float64]
    notes: list[str]

    @property
    def any_cached(self) -> bool:
        return bool(self.cached.any())


def _shared_messages(members: Sequence[Task]) -> list[dict[str, Any]]:
    """The leading messages every member has, equal in role and content."""
    lists = [t.chat_messages for t in members]
    shortest = min(len(m) for m in lists)
    n = 0
    while n < shortest and all(m[n] == lists[0][n] for m in lists[1:]):
        n += 1
    return lists[0][:n]


def _shared_text(members: Sequence[Task]) -> tuple[str, str] | None:
    """(role, text) of the common start of the members' first messages, when they are text."""
    firsts = [t.chat_messages[0] for t in members]
    if any(not isinstance(m.get("content"), str) or m.get("role") != firsts[0].get("role") for m in firsts):
        return None
    common = os.path.commonprefix([m["content"] for m in firsts])
    return (str(firsts[0]["role"]), common) if common.strip() else None


def _count(offerings: Sequence[Offering], messages: list[dict[str, Any]]) -> NDArray[np.float64]:
    from planner import tokens

    return np.array([float(tokens.count(o.model, messages)) for o in offerings])


def find_groups(tasks: Sequence[Task], offerings: Sequence[Offering],
                in_tok: NDArray[np.float64]) -> list[PrefixGroup]:
    """Every prefix group of two or more tasks with its prefix tokens per offering."""
    members: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        if t.prefix_group is not None:
            members.setdefault(t.prefix_group, []).append(i)
    out: list[PrefixGroup] = []
    for name, idx in members.items():
        if len(idx) < 2:  # a lone task writes the prefix and never reads it back
            continue
        group_tasks = [tasks[i] for i in idx]
        shared = _shared_messages(group_tasks)
        given = [t.prefix_tokens for t in group_tasks if t.prefix_tokens is not None]
        if given:
            tokens = np.full(len(offerings), float(min(given)))
            source = f"given (prefix_tokens, least over {len(idx)} tasks)"
        elif shared:
            tokens = _count(offerings, shared)
            source = f"{len(shared)} shared leading message(s), counted with litellm's token counter"
        else:
            text = _shared_text(group_tasks)
            if text is None:
                tokens, source = np.zeros(len(offerings)), "no shared leading text"
            else:
                role, common = text
                # the common text may end inside a token: one token less is certain to be shared
                tokens = np.maximum(_count(offerings, [{"role": role, "content": common}]) - 1, 0.0)
                source = "shared start of the first message, counted with litellm's token counter"
        cap = in_tok[idx].min(axis=0)  # never more than any member sends
        out.append(PrefixGroup(name, np.array(idx, dtype=np.int64), np.minimum(tokens, cap), len(shared), source))
    return out


def prefix_pricing(tasks: Sequence[Task], offerings: Sequence[Offering],
                   in_tok: NDArray[np.float64], pin: NDArray[np.float64]) -> PrefixPricing | None:
    """Cached-prefix prices of ``tasks`` on ``offerings``, or None when no task shares a prefix.

    in_tok : (n_tasks, n_offerings) input tokens; pin : (n_offerings,) input USD per token.
    """
    if not any(t.prefix_group is not None for t in tasks):
        return None
    groups = find_groups(tasks, offerings, in_tok)
    n, k = in_tok.shape
    nan = float("nan")
    read = np.array([nan if o.cache_read_cost_per_token is None else o.cache_read_cost_per_token
                     for o in offerings])
    # no write price: the provider bills the writing call as ordinary input (OpenAI, Gemini)
    write = np.array([pin[j] if o.cache_write_cost_per_token is None else o.cache_write_cost_per_token
                      for j, o in enumerate(offerings)])
    write = np.where(np.isnan(read), nan, write)
    min_tok = np.array([o.cache_min_tokens for o in offerings], dtype=np.float64)
    g_n = len(groups)
    tokens = np.zeros((g_n, k))
    group = np.full(n, -1, dtype=np.int64)
    for g, pg in enumerate(groups):
        tokens[g] = pg.tokens
        group[pg.tasks] = g
    has_price = ~np.isnan(read) & (read < pin)
    cached = has_price[None, :] & (tokens >= min_tok[None, :]) & (tokens > 0)
    tokens = np.where(cached, tokens, 0.0)
    rd, wr = np.nan_to_num(read), np.nan_to_num(write)
    per_task = tokens[np.maximum(group, 0)] * (group >= 0)[:, None]  # (n, k) prefix tokens per task
    saving = per_task * (pin - rd)[None, :]
    setup = tokens * np.maximum(wr - rd, 0.0)[None, :]
    extra_worst = per_task * np.maximum(wr - pin, 0.0)[None, :]
    notes: list[str] = []
    short = [pg.name for g, pg in enumerate(groups) if not cached[g].any() and pg.tokens.max() > 0]
    if short:
        shown = ", ".join(short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
        notes.append(f"prefix groups {shown}: the shared prefix is below every model's minimum cacheable "
                     f"length (or no model caches), so it is priced at the full input price")
    if g_n and cached.any():
        notes.append(f"{int(cached.any(axis=1).sum())} prefix group(s) priced with cached prompt prefixes: "
                     f"one cache write per model used, cache reads after (see prefix_groups)")
    return PrefixPricing(groups, group, cached, tokens, read, write, saving, setup, extra_worst, notes)


@dataclass(frozen=True)
class GroupPlan:
    """What a solved assignment does with the prefix groups.

    extra_usd : (n_tasks,), the cache-write premium on top of the pair cost (on the warm-up task)
    cached_tokens, write_tokens : (n_tasks,), prefix tokens projected read / written per task
    entries : one :class:`planner.plan.PrefixGroupPlan` per (group, offering) used
    """

    extra_usd: NDArray[np.float64]
    cached_tokens: NDArray[np.int64]
    write_tokens: NDArray[np.int64]
    entries: list[Any]


def plan_groups(prefix: PrefixPricing, tasks: Sequence[Task], offerings: Sequence[Offering],
                cost_usd: NDArray[np.float64], assignment: NDArray[np.int64]) -> GroupPlan:
    """Per (group, offering) used: the send order (highest priority first, then plan order; the
    first writes the cache), the projected cost with and without the cache, and per task the
    write premium and the tokens read or written."""
    from planner.plan import PrefixGroupPlan

    a = np.asarray(assignment)
    n = a.size
    extra = np.zeros(n)
    cached_tok = np.zeros(n, dtype=np.int64)
    write_tok = np.zeros(n, dtype=np.int64)
    entries: list[PrefixGroupPlan] = []
    for g, pg in enumerate(prefix.groups):
        served = pg.tasks[a[pg.tasks] >= 0]
        for j in np.unique(a[served]).tolist():
            members = served[a[served] == j]
            order = sorted(members.tolist(), key=lambda i: (-tasks[i].priority, i))
            o = offerings[j]
            tok = float(prefix.tokens[g, j])
            cost = float(cost_usd[members, j].sum())
            if prefix.cached[g, j]:
                extra[order[0]] = prefix.setup_usd[g, j]
                write_tok[order[0]] = round(tok)
                cached_tok[order[1:]] = round(tok)
                with_cache = cost + float(prefix.setup_usd[g, j])
                without = cost + float(prefix.saving_usd[members, j].sum())
                source = pg.source
            else:
                with_cache = without = cost
                why = ("no cache price" if np.isnan(prefix.read_usd[j]) else
                       f"prefix below the {o.cache_min_tokens}-token minimum" if pg.tokens[j] > 0
                       else "no shared prefix found")
                source = f"{pg.source}; not cached on this model ({why})"
            entries.append(PrefixGroupPlan(
                group=pg.name, model=o.name, cached=bool(prefix.cached[g, j]), n_tasks=len(order),
                prefix_tokens=round(float(pg.tokens[j])), prefix_source=source,
                send_order=[tasks[i].id for i in order],
                cache_read_cost_per_token=o.cache_read_cost_per_token if prefix.cached[g, j] else None,
                cache_write_cost_per_token=(float(prefix.write_usd[j]) if prefix.cached[g, j] else None),
                cache_price_source=o.cache_price_source or None if prefix.cached[g, j] else None,
                cache_ttl_s=o.cache_ttl_s if prefix.cached[g, j] else None,
                projected_cost_usd=with_cache, projected_cost_without_cache_usd=without,
                projected_savings_usd=without - with_cache))
    return GroupPlan(extra, cached_tok, write_tok, entries)
