"""One task's life: reserve, call, settle, retry, fall back, finish.

    for each model in [assigned, *fallbacks]:
        repeat: reserve worst case -> (queued if it never fits)
                commit an 'inflight' attempt -> call -> settle the reservation
                ok -> done (then graded, when the task has a check) | permanent -> failed
                latency limit hit -> a faster fallback
                transient/timeout/malformed -> back off and retry, up to max_retries
                (malformed then fails the task; the others move to the next model)
    chain exhausted -> failed with the last error
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planner.executor.budget_guard import BudgetGuard
from planner.executor.caller import Caller, CallRequest
from planner.executor.classify import Failure
from planner.executor.clock import Clock
from planner.executor.grading import Grading, messages_text
from planner.executor.ledger import Ledger
from planner.executor.limits import ModelLimiter
from planner.executor.options import RetryPolicy
from planner.executor.prefix import CacheWarmer, with_breakpoint
from planner.executor.recorded import RecordedCalls
from planner.executor.redact import Redactor
from planner.money import cache_price_pusd, price_pusd, to_usd
from planner.plan import Assignment, ModelSnapshot

LIVE_INPUT_MARGIN = 1.10  # providers count prompt tokens their own way; reserve a little more
LIVE_INPUT_EXTRA_TOKENS = 16


@dataclass(frozen=True)
class Link:
    """One model of a task's chain with what the plan projected for it there."""

    model: ModelSnapshot
    in_price_pusd: int
    out_price_pusd: int
    projected_latency_s: float
    expected_output_tokens: float
    max_tokens: int
    read_price_pusd: int | None = None  # prompt-cache prices (None: the plan knows none)
    write_price_pusd: int | None = None

    def worst_input_price_pusd(self, writes_cache: bool) -> int:
        """Per prompt token, the most a call can be billed: a cache write may cost more than input."""
        if writes_cache and self.write_price_pusd is not None:
            return max(self.in_price_pusd, self.write_price_pusd)
        return self.in_price_pusd


def build_chain(a: Assignment, models: dict[str, ModelSnapshot]) -> list[Link]:
    """[assigned model, *fallbacks] as Links; fallbacks whose model is not in the plan are skipped."""
    base = models[a.model]
    per_verbosity = a.projected_output_tokens / max(base.verbosity, 1e-9)
    entries = [(a.model, a.projected_latency_s)] + [(f.model, f.projected_latency_s) for f in a.fallbacks]
    chain, seen = [], set()
    for name, latency_s in entries:
        m = models.get(name)
        if m is None or name in seen:
            continue
        seen.add(name)
        cap = m.max_output_tokens or a.max_tokens
        chain.append(Link(m, price_pusd(m.input_cost_per_token), price_pusd(m.output_cost_per_token),
                          latency_s, per_verbosity * m.verbosity, max(1, min(a.max_tokens, cap)),
                          cache_price_pusd(m.cache_read_cost_per_token), cache_price_pusd(m.cache_write_cost_per_token)))
    return chain


@dataclass
class _Outcome:
    """What one attempt left: a final status, or the failure to act on (retry, fall back)."""

    status: str | None
    attempts: int
    cost_pusd: int
    result: Any = None
    output: str = ""
    failure: Failure | None = None
    last_error: str = ""
    latency_bound: bool = False


class _LazyRandom:
    """A random.Random seeded on first use (most tasks never retry; seeding costs ~5 us)."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._rng: random.Random | None = None

    def uniform(self, a: float, b: float) -> float:
        if self._rng is None:
            self._rng = random.Random(self._seed)
        return self._rng.uniform(a, b)


@dataclass
class Engine:
    ledger: Ledger
    budget: BudgetGuard
    limiters: dict[str, ModelLimiter]
    caller: Caller
    clock: Clock
    policy: RetryPolicy
    models: dict[str, ModelSnapshot]
    simulated: bool
    redactor: Redactor
    seed: int = 0
    on_finish: Callable[[str, int], None] | None = None
    grading: Grading | None = None  # grades each answer of a task with a check as it arrives
    stop: asyncio.Event | None = None  # set on Ctrl-C: start no new attempt, end backoff waits
    warmer: CacheWarmer | None = None  # prefix groups: one warm-up call, then the rest
    calls: RecordedCalls | None = None  # the run's reserved, recorded calls (made here when not given)
    cascades: Any = None  # planner.executor.cascade_run.CascadeRunner: runs the tasks planned as cascades

    def __post_init__(self) -> None:
        if self.calls is None:
            self.calls = RecordedCalls(self.ledger, self.budget, self.limiters, self.caller, self.redactor, self.stop)

    @property
    def inflight(self) -> int:
        """Calls committed and not yet answered (answers, judges and cascade stages alike when
        the grader shares ``calls``)."""
        assert self.calls is not None
        return self.calls.inflight

    def reserve_input_tokens(self, a: Assignment) -> int:
        if self.simulated:
            return a.projected_input_tokens
        return math.ceil(a.projected_input_tokens * LIVE_INPUT_MARGIN) + LIVE_INPUT_EXTRA_TOKENS

    async def run_task(self, a: Assignment, attempts: int = 0, cost_pusd: int = 0) -> str:
        """Run one task to done/failed/queued; returns the status. ``attempts`` and
        ``cost_pusd`` carry over what earlier (interrupted) runs spent on it. Only realtime
        offerings are called here: batch ones go out as jobs (``batch_jobs``), never as a call.
        A task planned as a cascade is run by the cascade runner."""
        if a.cascade is not None and self.cascades is not None:
            return str(await self.cascades.run(a, attempts, cost_pusd))
        return await self.run_chain(a, self.chain_of(a), attempts, cost_pusd)

    def chain_of(self, a: Assignment, skip: frozenset[str] = frozenset()) -> list[Link]:
        """The task's realtime chain, [assigned, *fallbacks], without the models in ``skip``."""
        return [link for link in build_chain(a, self.models)
                if link.model.mode != "batch" and link.model.name not in skip]

    async def run_chain(self, a: Assignment, chain: list[Link], attempts: int, cost_pusd: int, *,
                        purpose: str = "answer", done_reason: Callable[[str], str] | None = None,
                        failed_prefix: str = "") -> str:
        """Run ``a`` along ``chain`` (retries, latency fallbacks, then the next model) to a final
        status. A cascade whose stages all failed runs its plan's fallbacks through here with
        ``purpose`` ``fallback``; ``done_reason(model)`` is the reason a done task keeps (which
        model answered, and why), ``failed_prefix`` starts a failed task's reason."""
        jitter = _LazyRandom(f"{self.seed}|{a.task_id}|backoff")  # seeded only if a retry needs it
        in_tok = self.reserve_input_tokens(a)
        prefix_tokens = a.projected_cached_tokens + a.projected_cache_write_tokens
        writes_cache = a.prefix_group is not None and a.prefix_messages > 0  # a breakpoint may write
        idx, last_error = 0, "no model in the fallback chain is in the plan"
        while idx < len(chain):
            link = chain[idx]
            retries = 0
            next_idx = idx + 1
            while True:
                if self._stopping():
                    return "stopped"  # left pending (or running) in the ledger for --resume
                async with self._turn(a.prefix_group, link.model.name) as turn:
                    outcome = await self._attempt(a, link, in_tok, writes_cache, prefix_tokens, attempts,
                                                  cost_pusd, purpose=purpose,
                                                  done_reason=None if done_reason is None
                                                  else done_reason(link.model.name))
                    if outcome.result is not None:
                        turn.ok()
                attempts, cost_pusd = outcome.attempts, outcome.cost_pusd
                if outcome.result is not None and self.grading is not None and a.check is not None:
                    # graded after the turn: the group's burst need not wait for a judge
                    await self.grading.grade(a.task_id, a.check, messages_text(a.messages), outcome.output,
                                             link.model.name)
                if outcome.status is not None:
                    return outcome.status
                failure = outcome.failure
                assert failure is not None
                if failure.kind == "permanent":
                    return self._finish(a.task_id, "failed", link.model.name, attempts, cost_pusd,
                                        reason=f"{failed_prefix}permanent error: {outcome.last_error}")
                last_error = outcome.last_error
                if failure.kind == "timeout" and outcome.latency_bound:
                    faster = self._faster(chain, idx, a.max_latency_s)
                    if faster is None:
                        return self._finish(a.task_id, "failed", link.model.name, attempts, cost_pusd,
                                            reason=f"{failed_prefix}latency limit {a.max_latency_s:g}s exceeded "
                                                   f"on {link.model.name}; no faster fallback")
                    next_idx = faster
                    break
                if retries < self.policy.max_retries:
                    await self._pause(self._backoff_s(retries, failure, jitter))
                    retries += 1
                    continue
                if failure.kind == "malformed":
                    return self._finish(a.task_id, "failed", link.model.name, attempts, cost_pusd,
                                        reason=f"{failed_prefix}malformed responses after {retries} retries: "
                                               f"{last_error}")
                break
            idx = next_idx
        return self._finish(a.task_id, "failed", chain[-1].model.name if chain else None, attempts,
                            cost_pusd, reason=f"{failed_prefix}every model in the chain failed; last: {last_error}")

    def _turn(self, group: str | None, model: str) -> Any:
        """The prefix group's turn on ``model`` (no wait outside groups, or without a warmer)."""
        if self.warmer is None:
            return CacheWarmer(self.clock, {}).turn(None, model)
        return self.warmer.turn(group, model)

    async def _attempt(self, a: Assignment, link: Link, in_tok: int, writes_cache: bool, prefix_tokens: int,
                       attempts: int, cost_pusd: int, *, purpose: str = "answer",
                       done_reason: str | None = None) -> _Outcome:
        """One call of the task on ``link`` (the run's reserved, recorded call). A final status
        (done, queued, stopped) ends the task; otherwise the failure says what to do next."""
        assert self.calls is not None
        timeout_s, latency_bound = self._timeout(a)
        messages = with_breakpoint(link.model, a.messages, a.prefix_messages) if writes_cache else a.messages
        out = await self.calls.call(link.model, CallRequest(
            a.task_id, attempts + 1, messages, link.max_tokens, a.projected_input_tokens,
            link.expected_output_tokens, timeout_s, prefix_group=a.prefix_group, prefix_tokens=prefix_tokens,
            purpose=purpose), in_tok, writes_cache=writes_cache)
        if out.status == "no_budget":
            remaining = self.budget.remaining_pusd() or 0
            reason = (f"budget: ${to_usd(remaining):.6f} left cannot cover the worst case "
                      f"${to_usd(out.worst_pusd):.6f} on {link.model.name}")
            return _Outcome(self._finish(a.task_id, "queued", None, attempts, cost_pusd, reason=reason),
                            attempts, cost_pusd)
        if out.status == "stopped":
            return _Outcome("stopped", attempts, cost_pusd)  # never sent: left for --resume
        attempts += 1
        cost_pusd += out.cost_pusd
        result = out.result
        if out.status == "ok" and result is not None:
            output = self.redactor.clean(result.text)
            status = self._finish(a.task_id, "done", link.model.name, attempts, cost_pusd,
                                  result.input_tokens, result.output_tokens, result.latency_s,
                                  reason=done_reason, output=output, cached_tokens=result.cached_tokens,
                                  cache_write_tokens=result.cache_write_tokens)
            return _Outcome(status, attempts, cost_pusd, result=result, output=output or "")
        assert out.failure is not None
        return _Outcome(None, attempts, cost_pusd, failure=out.failure, last_error=out.error,
                        latency_bound=latency_bound)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def _pause(self, seconds: float) -> None:
        """Back off for ``seconds`` (clock time), ending early when the run is stopping."""
        await self.clock.sleep_or_stop(seconds, self.stop)

    def _timeout(self, a: Assignment) -> tuple[float, bool]:
        """(timeout for the call, whether it is the task's latency limit)."""
        if a.max_latency_s is not None and a.max_latency_s < self.policy.request_timeout_s:
            return a.max_latency_s, True
        return self.policy.request_timeout_s, False

    @staticmethod
    def _faster(chain: list[Link], idx: int, max_latency_s: float | None) -> int | None:
        """The best-ranked later link projected faster than the current one (and within the limit)."""
        current = chain[idx].projected_latency_s
        for j in range(idx + 1, len(chain)):
            lat = chain[j].projected_latency_s
            if lat < current and (max_latency_s is None or lat <= max_latency_s):
                return j
        return None

    def _backoff_s(self, retries: int, failure: Failure, jitter: _LazyRandom) -> float:
        backoff = min(self.policy.max_backoff_s, self.policy.base_s * 2**retries)
        backoff *= jitter.uniform(0.75, 1.25)
        return max(backoff, failure.retry_after_s or 0.0)

    def _finish(self, task_id: str, status: str, model: str | None, attempts: int, cost_pusd: int,
                input_tokens: int | None = None, output_tokens: int | None = None,
                latency_s: float | None = None, reason: str | None = None,
                output: str | None = None, cached_tokens: int | None = None,
                cache_write_tokens: int | None = None) -> str:
        self.ledger.finish_task(task_id, status, model, attempts, cost_pusd, input_tokens,
                                output_tokens, latency_s, reason, output, cached_tokens, cache_write_tokens)
        self.ledger.flush_soon()
        if self.on_finish is not None:
            self.on_finish(status, cost_pusd)
        return status
