"""Prefix groups at run time (issue 13 item 5): warm the cache once, then send the group.

A provider caches a prompt prefix when a call writes it and bills later calls that start
with it at the cache-read price, for as long as the cache lives (``cache_ttl_s``; each read
refreshes it). So, per (prefix group, model):

- the first call goes alone: it *warms* the cache; the group's other tasks wait for it;
- once it has answered, the rest go at once (a burst, under the model's usual limits), each
  read refreshing the lifetime;
- when the warm-up fails, or the cache has expired (no call for ``cache_ttl_s``), the next
  task warms it again. (A simulated run at ``--time-scale 0`` has no elapsed time to speak of:
  its virtual clock adds up every wait of every call, so there a cache does not expire.)

The run sends each group's tasks together, in the plan's send order (see ``group_order``),
so a group is never spread over the run. Providers that bill cache writes (Anthropic, Claude
on Bedrock/Vertex) cache only where the request marks a breakpoint: ``with_breakpoint``
marks the last of the group's shared leading messages. Others (OpenAI, Gemini, DeepSeek)
cache any repeated prefix by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from planner.executor.clock import Clock
from planner.plan import ModelSnapshot, Plan


@dataclass
class _Cache:
    warm_until: float = float("-inf")
    warming: asyncio.Event | None = None  # set while a warm-up call is in flight


@dataclass
class CacheWarmer:
    """Who warms each (group, model) cache, and when the others may go."""

    clock: Clock
    ttl_s: dict[str, float]  # model name -> cache lifetime; models absent here do not cache
    _state: dict[tuple[str, str], _Cache] = field(default_factory=dict)
    warmups: int = 0

    @contextlib.asynccontextmanager
    async def turn(self, group: str | None, model: str) -> AsyncIterator[Turn]:
        """Wait until this call may go; yields a Turn whose ``ok()`` the caller invokes when the
        call answered (a failed warm-up lets the next task warm instead)."""
        if group is None or model not in self.ttl_s:
            yield Turn(None, False)
            return
        state = self._state.setdefault((group, model), _Cache())
        while True:
            if self.clock.now() < state.warm_until or (self.clock.scale == 0 and state.warm_until > float("-inf")):
                turn = Turn(state, False)
                break
            if state.warming is None:  # cold, and nobody is warming it: this call does
                state.warming = asyncio.Event()
                self.warmups += 1
                turn = Turn(state, True)
                break
            await state.warming.wait()
        try:
            yield turn
        finally:
            if turn.warms:
                event, state.warming = state.warming, None
                assert event is not None
                event.set()
            if turn.answered:
                state.warm_until = self.clock.now() + self.ttl_s[model]


@dataclass
class Turn:
    state: _Cache | None
    warms: bool
    answered: bool = False

    def ok(self) -> None:
        self.answered = True


def warmer_for(plan: Plan, clock: Clock) -> CacheWarmer:
    """A warmer for the plan's models that have a cache price."""
    ttl = {m.name: float(m.cache_ttl_s or 300.0) for m in plan.models if m.cache_read_cost_per_token is not None}
    return CacheWarmer(clock, ttl)


Row = tuple[int, str, int, int]


def group_order(plan: Plan, pending: Callable[[], Iterable[Row]]) -> Iterator[Row]:
    """The pending tasks with each prefix group's members together, in the plan's send order,
    at the place of the group's first pending member. ``pending()`` gives a fresh pass over the
    pending rows (it is read twice); only grouped tasks are held in memory."""
    position: dict[str, tuple[int, int]] = {}
    for g, entry in enumerate(plan.prefix_groups):
        if entry.cached:
            for k, task_id in enumerate(entry.send_order):
                position[task_id] = (g, k)
    if not position:
        yield from pending()
        return
    members: dict[int, list[tuple[int, Row]]] = {}
    for row in pending():
        where = position.get(row[1])
        if where is not None:
            members.setdefault(where[0], []).append((where[1], row))
    sent: set[int] = set()
    for row in pending():
        where = position.get(row[1])
        if where is None:
            yield row
        elif where[0] not in sent:
            sent.add(where[0])
            yield from (r for _, r in sorted(members[where[0]], key=lambda x: x[0]))


def with_breakpoint(model: ModelSnapshot, messages: list[dict[str, Any]], prefix_messages: int) -> list[dict[str, Any]]:
    """The messages with a cache breakpoint after the shared prefix, for providers that bill
    cache writes (they cache only what a request marks); others get the messages unchanged."""
    if model.cache_write_cost_per_token is None or prefix_messages <= 0 or prefix_messages > len(messages):
        return messages
    out = [dict(m) for m in messages]
    last = out[prefix_messages - 1]
    content = last.get("content")
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": {"type": "ephemeral"}}]
    elif isinstance(content, list) and content and isinstance(content[-1], dict):
        blocks = [dict(b) for b in content]
        blocks[-1]["cache_control"] = {"type": "ephemeral"}
        last["content"] = blocks
    return out


def usage_cache_tokens(usage: Any) -> tuple[int, int]:
    """(prompt tokens read from the cache, prompt tokens written to it) of a response's usage.

    OpenAI-style usage reports reads as ``prompt_tokens_details.cached_tokens``; Anthropic's
    (through litellm) as ``cache_read_input_tokens`` and writes as
    ``cache_creation_input_tokens``. Both are part of ``prompt_tokens``."""
    details = getattr(usage, "prompt_tokens_details", None)

    def first(*values: Any) -> int:
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
        return 0

    read = first(getattr(details, "cached_tokens", None), getattr(usage, "cache_read_input_tokens", None))
    written = first(getattr(usage, "cache_creation_input_tokens", None),
                    getattr(details, "cache_creation_tokens", None))
    return read, written
