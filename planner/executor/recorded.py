"""The reserved, recorded call: one model call as the executor makes every one of them.

Answers, judges and each stage of a cascade go through :meth:`RecordedCalls.call`:

    reserve the worst case (from a cascade's hold first, then the guard)
    -> take a slot of the model's limiter -> record an 'inflight' attempt and commit it
    -> call -> settle the reservation with the billed cost (cache reads and writes priced
       at the offering's cache prices) -> record the outcome

so no call is ever sent unreserved or unrecorded, and a call killed in flight is counted as
spent on resume (the ledger's crash rules). Retrying, falling back, prefix-cache turns and
deciding what an answer means stay with the callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planner.executor.caller import Caller, CallRequest, CallResult
from planner.executor.classify import Failure, classify
from planner.executor.limits import ModelLimiter
from planner.executor.redact import Redactor
from planner.money import cache_price_pusd, cached_call_cost_pusd, call_cost_pusd, price_pusd
from planner.plan import ModelSnapshot


class Hold:
    """Money set aside in the guard for the later calls of one task: a cascade reserves the
    worst case of every stage (``shares``: stage index -> amount) before stage one. A stage's
    call takes its worst case from its own share first (a retry finds it used and reserves
    anew, without waiting, so it never eats a later stage's share nor waits on money while
    holding some); :meth:`release` gives back what is left."""

    def __init__(self, guard: Any, shares: dict[int, int]) -> None:
        self.guard = guard
        self.shares = dict(shares)

    @classmethod
    async def acquire(cls, guard: Any, shares: dict[int, int]) -> Hold | None:
        """A hold of the shares' sum, or None when the budget can never cover it."""
        if not await guard.reserve(sum(shares.values())):
            return None
        return cls(guard, shares)

    @property
    def left_pusd(self) -> int:
        return sum(self.shares.values())

    def take(self, stage: int, amount_pusd: int) -> int:
        """Move up to ``amount_pusd`` of ``stage``'s share to one call's reservation; returns how much."""
        took = min(self.shares.get(stage, 0), amount_pusd)
        if took:
            self.shares[stage] -= took
        return took

    def give_back(self, stage: int, amount_pusd: int) -> None:
        if amount_pusd:
            self.shares[stage] = self.shares.get(stage, 0) + amount_pusd

    def release(self) -> None:
        left = self.left_pusd
        self.shares = {}
        if left:
            self.guard.settle(left, 0)


@dataclass(frozen=True)
class Outcome:
    """How one call ended: ``ok`` (``result`` set), ``error`` (``failure`` set), ``no_budget``
    (never sent: the guard could not cover it) or ``stopped`` (never sent: the run is stopping)."""

    status: str
    result: CallResult | None = None
    failure: Failure | None = None
    cost_pusd: int = 0
    worst_pusd: int = 0
    error: str = ""  # '<model>: <message>' (redacted), as a task's reason quotes it


def worst_pusd(model: ModelSnapshot, input_tokens: int, max_tokens: int, *, writes_cache: bool = False) -> int:
    """The most one call can be billed: every prompt token at the input price (or the cache-write
    price when the call may write the cache and that costs more), ``max_tokens`` of output."""
    in_price = price_pusd(model.input_cost_per_token)
    write = cache_price_pusd(model.cache_write_cost_per_token)
    if writes_cache and write is not None:
        in_price = max(in_price, write)
    return call_cost_pusd(input_tokens, max_tokens, in_price, price_pusd(model.output_cost_per_token))


def billed_pusd(model: ModelSnapshot, result: CallResult) -> int:
    """What a call that answered costs: prompt tokens read from or written to the cache at the
    offering's cache prices, the rest at its input price."""
    return cached_call_cost_pusd(result.input_tokens, result.cached_tokens, result.cache_write_tokens,
                                 result.output_tokens, price_pusd(model.input_cost_per_token),
                                 cache_price_pusd(model.cache_read_cost_per_token),
                                 cache_price_pusd(model.cache_write_cost_per_token),
                                 price_pusd(model.output_cost_per_token))


@dataclass
class RecordedCalls:
    """Shared by the engine, the grader and the cascade runner of one run: one count of the
    calls in flight, one path from reservation to record."""

    ledger: Any  # planner.executor.ledger.Ledger (a distributed worker's LedgerProxy)
    budget: Any  # planner.executor.budget_guard.BudgetGuard (or a worker's grant)
    limiters: dict[str, ModelLimiter]
    caller: Caller
    redactor: Redactor
    stop: asyncio.Event | None = None
    inflight: int = 0  # calls committed and not yet answered

    async def call(self, model: ModelSnapshot, req: CallRequest, reserve_input_tokens: int, *,
                   writes_cache: bool = False, hold: Hold | None = None, stage: int = 0,
                   check_reply: Callable[[CallResult], str | None] | None = None) -> Outcome:
        """One reserved, recorded call of ``model``. ``reserve_input_tokens``: the prompt tokens
        the reservation covers (``req.input_tokens`` is the plan's projection, which the
        simulator bills). ``writes_cache``: the request marks a cache breakpoint, so its prompt
        may be billed at the cache-write price. ``hold``/``stage``: a cascade's reservation to
        draw from first. ``check_reply``: an error line when a reply is unusable (recorded as a
        billed malformed error). The attempt's purpose is ``req.purpose``: ``answer`` marks the
        task running, ``grade`` (a judge on a done task) leaves it as it is."""
        worst = worst_pusd(model, reserve_input_tokens, req.max_tokens, writes_cache=writes_cache)
        covered = hold.take(stage, worst) if hold is not None else 0
        if worst > covered and not await self._reserve(worst - covered, waits=hold is None):
            if hold is not None:
                hold.give_back(stage, covered)
            return Outcome("no_budget", worst_pusd=worst)
        failure: Failure | None = None
        result: CallResult | None = None
        async with self.limiters[model.name].slot(reserve_input_tokens + req.max_tokens) as lease:
            if self.stop is not None and self.stop.is_set():
                self.budget.settle(worst, 0)  # never sent
                return Outcome("stopped", worst_pusd=worst)
            attempt_id = self._begin(req, model.name, worst)
            try:
                await self.ledger.commit()  # durable before the call can cost anything
            except BaseException:
                self.budget.settle(worst, 0)  # not recorded, so never sent
                raise
            self.inflight += 1
            try:
                result = await self.caller.call(model, req)
            except asyncio.CancelledError:
                raise  # the attempt stays 'inflight' and is counted as spent on resume
            except Exception as exc:  # every provider error is classified, none escapes
                failure = classify(exc)
            finally:
                self.inflight -= 1
            if result is not None:
                lease.used(result.input_tokens + result.output_tokens)
        if result is not None:
            cost = billed_pusd(model, result)
            self.budget.settle(worst, cost)
            bad = check_reply(result) if check_reply is not None else None
            self.ledger.end_attempt(attempt_id, "ok" if bad is None else "error", cost, result.input_tokens,
                                    result.output_tokens, result.latency_s, bad, result.cached_tokens,
                                    result.cache_write_tokens)
            if bad is not None:
                self.ledger.flush_soon()
                return Outcome("error", result, Failure("malformed", bad), cost, worst, bad)
            return Outcome("ok", result, None, cost, worst)
        assert failure is not None
        cost = worst if failure.billed else 0
        self.budget.settle(worst, cost)
        message = self.redactor.clean(failure.message) or failure.kind
        self.ledger.end_attempt(attempt_id, "error", cost, None, None, None, message)
        self.ledger.flush_soon()
        return Outcome("error", None, failure, cost, worst, f"{model.name}: {message}")

    async def _reserve(self, amount_pusd: int, *, waits: bool) -> bool:
        """The guard's reservation. A caller holding a hold of its own (a cascade whose stage
        needs more than its share: a retry) takes only what fits now: waiting for others to
        settle while holding money could wait forever on another cascade doing the same."""
        if waits:
            return bool(await self.budget.reserve(amount_pusd))
        return bool(self.budget.reserve_now(amount_pusd))

    def _begin(self, req: CallRequest, model: str, worst: int) -> int:
        if req.purpose == "grade":
            return int(self.ledger.begin_grade_attempt(req.task_id, req.attempt, model, worst))
        if req.purpose == "answer":
            return int(self.ledger.begin_attempt(req.task_id, req.attempt, model, worst))
        return int(self.ledger.begin_attempt(req.task_id, req.attempt, model, worst, purpose=req.purpose))
