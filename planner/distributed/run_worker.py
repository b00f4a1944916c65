"""One executor process of ``routeplan run --workers N``: a Ray actor with its own litellm.

It runs today's :class:`planner.executor.engine.Engine` unchanged on the tasks the
coordinator feeds it, with two stand-ins for what the coordinator owns:

- :class:`GrantedBudget`: the worker spends only money the coordinator granted it (in
  blocks, recorded in the ledger before they are handed out); a reservation that does not
  fit asks for more, waits, and queues its task only when the coordinator says no money is
  held anywhere;
- :class:`LedgerProxy`: the Engine's ledger writes become events, shipped back in batches
  on the next exchange (the grant covering a call is durable before it is sent, so the
  per-call commit is not needed here). A cascade task's calls are the exception: each is
  recorded ``inflight`` by the coordinator before it is sent (its ``commit`` waits for the
  coordinator's next message, sent only after the ledger committed the ``begin`` event),
  and its stages' answers and the verifier's decision are events too, so the ledger of a
  cascade run reads as in one process and a killed run never asks an answered stage again.

Cascade tasks are run by the one-process :class:`~planner.executor.cascade_run.CascadeRunner`
on this worker's engine: its hold of every stage's worst case is reserved from the
worker's grants (asking the coordinator for more), the stages the ledger already holds come
with the task from the coordinator.

The coordinator calls :meth:`ExecutorWorker.exchange` in a loop: it brings task ids, grants
and flags, and returns the events, the money asked for or given back, and how many tasks
the worker wants next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from planner.executor.budget_guard import BudgetGuard
from planner.executor.caller import Caller
from planner.executor.cascade_run import CascadeRunner
from planner.executor.clock import Clock
from planner.executor.engine import Engine
from planner.executor.ledger import StageAnswer
from planner.executor.limits import ModelLimiter
from planner.executor.options import RetryPolicy
from planner.executor.prefix import warmer_for
from planner.executor.providers import models_in_use, secrets_of
from planner.executor.redact import Redactor
from planner.plan import Plan

#: Events per batch that make a worker answer the coordinator at once.
EVENT_BATCH = 64
#: The longest a worker keeps the coordinator waiting when nothing happens (seconds).
REPORT_EVERY_S = 0.02


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a run shares, plus its own share of the run's limits."""

    index: int
    n_workers: int
    simulated: bool
    call_tag: str
    seed: int
    fail_rate: float
    time_scale: float
    retry: RetryPolicy
    concurrency: int
    limited_budget: bool


def share(total: int | None, index: int, n: int) -> int | None:
    """Worker ``index``'s share of a limit split evenly over ``n`` workers (at least 1)."""
    if not total:
        return total
    return max(1, total // n + (1 if index < total % n else 0))


class GrantedBudget(BudgetGuard):
    """A BudgetGuard over the money granted by the coordinator (unlimited when the run is)."""

    def __init__(self, limited: bool, on_need: Any) -> None:
        super().__init__(0 if limited else None)
        self.need_pusd = 0
        self.denied_pusd: int | None = None  # the shortfall the coordinator last refused
        self.stopping = False  # the run is stopping: a waiting reservation gives up, nothing sent
        self._on_need = on_need

    async def reserve(self, amount_pusd: int) -> bool:
        while not self.fits(amount_pusd):
            if self.stopping:
                raise asyncio.CancelledError  # the task stays unfinished in the ledger
            short = amount_pusd - (self.remaining_pusd() or 0)
            if self.denied_pusd is not None and short >= self.denied_pusd:
                # the coordinator has no such money and no other worker holds any
                if self.reserved_pusd == 0:
                    return False  # nothing outstanding here either: queued, as in one process
            else:
                self.need_pusd = max(self.need_pusd, short)
                self._on_need()
            event = self._changed
            await event.wait()
        self.reserved_pusd += amount_pusd
        return True

    def grant(self, amount_pusd: int) -> None:
        assert self.budget_pusd is not None
        self.budget_pusd += amount_pusd
        self.need_pusd = 0
        self.denied_pusd = None
        self._notify()

    def deny(self) -> None:
        if self.need_pusd:
            self.denied_pusd = self.need_pusd
        self.need_pusd = 0
        self._notify()

    def give_back_unused(self) -> int:
        """Hand back what no reservation uses; returns the amount."""
        unused = self.remaining_pusd()
        if not unused or unused <= 0:
            return 0
        assert self.budget_pusd is not None
        self.budget_pusd -= unused
        return unused

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()


class LedgerProxy:
    """The Ledger methods the Engine (and the cascade runner) call, turned into events for the
    coordinator.

    ``durable``: the tasks (cascades) whose every call is recorded ``inflight`` before it is
    sent, as in one process: :meth:`begin_attempt` ships a ``begin`` event and :meth:`commit`
    waits until the coordinator has committed it (its next message, see :meth:`acknowledge`)."""

    def __init__(self, wake: Any, durable: frozenset[str] = frozenset()) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._open: dict[int, tuple[str, int, str, int, float]] = {}
        self._next_id = 1
        self._wake = wake
        self._durable = durable
        self._begun = 0  # begin events made so far
        self._shipped = 0  # ... of them taken by the last reply
        self._acked = 0  # ... of them the coordinator has committed
        self._commits: list[tuple[int, asyncio.Future[None]]] = []
        self._target = 0  # the begin the next commit waits for (0: none, the last call is covered by a grant)
        self._stages: dict[str, dict[int, StageAnswer]] = {}
        self._fell_back: dict[str, str] = {}

    def begin_attempt(self, task_id: str, n: int, model: str, reserved_pusd: int, *,
                      purpose: str = "answer") -> int:
        attempt_id = self._next_id
        self._next_id += 1
        started = time.time()
        if task_id in self._durable:
            self._begun += 1
            self._target = self._begun
            self.events.append(("begin", attempt_id, task_id, n, model, reserved_pusd, purpose, started))
        else:
            self._target = 0
            self._open[attempt_id] = (task_id, n, model, reserved_pusd, started)
        return attempt_id

    async def commit(self) -> None:
        """Wait until the ``begin`` just made is committed by the coordinator (the recorded
        call commits right after its begin, in the same tick); nothing to wait for after a
        single-model call's: the grant covering it is already in the ledger."""
        target, self._target = self._target, 0
        if self._acked >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commits.append((target, future))
        self._wake()
        await future

    def waiting(self) -> bool:
        """A call waits for a ``begin`` not yet shipped: the coordinator should hear now."""
        return bool(self._commits) and self._begun > self._shipped

    def acknowledge(self) -> None:
        """The coordinator's next message came: it committed every event of the last reply."""
        self._acked = self._shipped
        waiting, self._commits = self._commits, []
        for target, future in waiting:
            if target <= self._acked:
                if not future.done():
                    future.set_result(None)
            else:
                self._commits.append((target, future))

    def end_attempt(self, attempt_id: int, state: str, cost_pusd: int, input_tokens: int | None,
                    output_tokens: int | None, latency_s: float | None, error: str | None,
                    cached_tokens: int | None = None, cache_write_tokens: int | None = None) -> None:
        opened = self._open.pop(attempt_id, None)
        if opened is None:  # a durable call: its row is in the ledger, settled by id
            self.events.append(("end", attempt_id, state, cost_pusd, input_tokens, output_tokens, latency_s,
                                error, time.time(), cached_tokens, cache_write_tokens))
            return
        task_id, n, model, reserved, started = opened
        self.events.append(("attempt", task_id, n, model, reserved, state, cost_pusd, input_tokens,
                            output_tokens, latency_s, error, started, time.time(), cached_tokens,
                            cache_write_tokens))

    def finish_task(self, task_id: str, status: str, model: str | None, attempts: int, cost_pusd: int,
                    input_tokens: int | None = None, output_tokens: int | None = None,
                    latency_s: float | None = None, reason: str | None = None,
                    output: str | None = None, cached_tokens: int | None = None,
                    cache_write_tokens: int | None = None) -> None:
        self._stages.pop(task_id, None)
        self._fell_back.pop(task_id, None)
        self.events.append(("finish", task_id, status, model, attempts, cost_pusd, input_tokens,
                            output_tokens, latency_s, reason, output, cached_tokens, cache_write_tokens))

    # -- a cascade task's stages and decision --------------------------------------------------
    def add_cascades(self, stored: dict[str, tuple[dict[int, tuple[Any, ...]], str | None]]) -> None:
        """What the ledger holds of cascade tasks the coordinator sends (a resumed run, a dead
        worker's task): their answered stages, and why their stages gave up when they went on
        to the plan's fallbacks."""
        for task_id, (answers, fell_back) in stored.items():
            self._stages[task_id] = {int(i): StageAnswer(*x) for i, x in answers.items()}
            if fell_back is not None:
                self._fell_back[task_id] = fell_back

    def cascade_stages(self, task_id: str) -> dict[int, StageAnswer]:
        return dict(self._stages.get(task_id, {}))

    def cascade_fell_back(self, task_id: str) -> str | None:
        return self._fell_back.get(task_id)

    def record_stage(self, task_id: str, idx: int, model: str, output: str, input_tokens: int,
                     output_tokens: int, latency_s: float) -> None:
        self.events.append(("stage", task_id, idx, model, output, input_tokens, output_tokens, latency_s))

    def record_decision(self, task_id: str, accepted: bool, reason: str) -> None:
        self.events.append(("decision", task_id, accepted, reason))

    def flush_soon(self) -> None:
        self._wake()

    def take(self) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        self._shipped = self._begun
        return events


@dataclass
class _Inbox:
    tasks: deque[tuple[int, str, int, int]] = field(default_factory=deque)
    no_more: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class ExecutorWorker:
    """The actor (wrapped with ``ray.remote`` by the coordinator; plain here, so importing
    this module needs no Ray)."""

    def __init__(self) -> None:
        self.call_tag: str | None = None
        self.sandbox: ThreadPoolExecutor | None = None

    def ping(self) -> int:
        """The actor's pid (it is up, its imports done)."""
        return os.getpid()

    async def start(self, plan_json: bytes, settings: WorkerSettings) -> int:
        """Set up one run (plan, engine, runners) on the actor's event loop; returns the pid.
        An actor runs one run at a time and may be reused for the next (:meth:`reset`)."""
        self.settings = settings
        self.plan = Plan.model_validate_json(plan_json)
        s = self.settings
        models = {m.name: m for m in self.plan.models}
        clock = Clock(s.time_scale if s.simulated else 1.0)
        if s.simulated:
            from planner.executor.caller import InlineSetupExecutor
            from planner.executor.run import cascade_sims, expectations
            from planner.executor.simulator import SimConfig, register_run

            # litellm's set-up step in the loop's thread, as in one process (see InlineSetupExecutor)
            asyncio.get_running_loop().set_default_executor(InlineSetupExecutor())

            register_run(s.call_tag, SimConfig(models, s.seed, s.fail_rate, clock, expectations(self.plan),
                                               cascades=cascade_sims(self.plan)))
            self.call_tag = s.call_tag
        self._wake_event = asyncio.Event()
        self.inbox = _Inbox()
        self.budget = GrantedBudget(s.limited_budget, self._wake)
        self.ledger = LedgerProxy(self._wake, frozenset(a.task_id for a in self.plan.assignments
                                                        if a.cascade is not None))
        self.stop = asyncio.Event()
        limiters = {m.name: ModelLimiter(clock, share(m.concurrency, s.index, s.n_workers),
                                         share(m.rpm, s.index, s.n_workers), share(m.tpm, s.index, s.n_workers))
                    for m in self.plan.models}
        self.engine = Engine(ledger=self.ledger, budget=self.budget, limiters=limiters,  # type: ignore[arg-type]
                             caller=Caller(s.simulated, s.call_tag), clock=clock, policy=s.retry,
                             models=models, simulated=s.simulated,
                             redactor=Redactor(secrets_of(models_in_use(self.plan))), seed=s.seed,
                             stop=self.stop, warmer=warmer_for(self.plan, clock))
        if any(a.cascade is not None for a in self.plan.assignments):
            # python_tests verifiers run their sandbox on a pool of this worker's (the coordinator
            # grades; a simulated run's default executor runs jobs inline, on the event loop)
            self.sandbox = ThreadPoolExecutor(max_workers=2, thread_name_prefix="routeplan-sandbox")
            self.engine.cascades = CascadeRunner(self.engine, sandbox=self.sandbox)
        self.error: str | None = None
        self._asked = 0  # the need last reported (asked again only when it grows)
        self._fed = True  # the last message brought tasks (or none came yet)
        self.running = s.concurrency
        self.runners = [asyncio.ensure_future(self._runner()) for _ in range(s.concurrency)]
        return os.getpid()

    async def reset(self) -> int:
        """Forget the finished run (its runners have all returned); the actor can take another."""
        if self.running:
            raise RuntimeError("reset while tasks are running")
        if self.call_tag is not None:
            from planner.executor.simulator import unregister_run

            unregister_run(self.call_tag)
            self.call_tag = None
        if self.sandbox is not None:
            self.sandbox.shutdown(wait=False)
            self.sandbox = None
        self.plan = None  # type: ignore[assignment]
        return os.getpid()

    async def exchange(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Take the coordinator's message; answer once there is something to report (or soon)."""
        self.ledger.acknowledge()  # sent after the ledger committed our last reply's events
        self._fed = bool(msg.get("tasks"))
        if msg.get("grant") or msg.get("deny"):
            self._asked = 0
        self._apply(msg)
        if not self._ready():
            self._wake_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), REPORT_EVERY_S)
        done = self.running == 0
        returned = self.budget.give_back_unused() if (msg.get("reclaim") or done) else 0
        want = 0 if self.inbox.no_more else max(0, self._backlog() - len(self.inbox.tasks))
        self._asked = self.budget.need_pusd
        return {"events": self.ledger.take(), "need": self.budget.need_pusd, "returned": returned,
                "inflight": self.engine.inflight, "want": want, "done": done, "error": self.error}

    # -- internals ---------------------------------------------------------------------------
    def _apply(self, msg: dict[str, Any]) -> None:
        if msg.get("cascades"):
            self.ledger.add_cascades(msg["cascades"])
        if msg.get("tasks"):
            self.inbox.tasks.extend(msg["tasks"])
        if msg.get("no_more"):
            self.inbox.no_more = True
        if msg.get("tasks") or msg.get("no_more"):
            self.inbox.arrived.set()
        if msg.get("grant"):
            self.budget.grant(msg["grant"])
        if msg.get("deny"):
            self.budget.deny()
        if msg.get("stop") and not self.stop.is_set():
            self.stop.set()
            self.inbox.no_more = True
            self.inbox.tasks.clear()  # not started: they stay pending in the ledger
            self.inbox.arrived.set()
            self.budget.stopping = True
            self.budget._notify()

    def _backlog(self) -> int:
        return max(2 * EVENT_BATCH, 4 * self.settings.concurrency)

    def _ready(self) -> bool:
        """Something the coordinator should hear now. A need already asked for, or tasks wanted
        when the last message brought none, wait for the next regular report (no busy loop)."""
        return (len(self.ledger.events) >= EVENT_BATCH or self.budget.need_pusd > self._asked
                or self.ledger.waiting()
                or self.running == 0 or self.error is not None
                or (self._fed and not self.inbox.no_more and len(self.inbox.tasks) < self._backlog() // 2))

    def _wake(self) -> None:
        if self._ready():
            self._wake_event.set()

    async def _runner(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.inbox.tasks:
                    if self.inbox.no_more:
                        return
                    self.inbox.arrived.clear()
                    self._wake()
                    await self.inbox.arrived.wait()
                    continue
                seq, task_id, attempts, cost_pusd = self.inbox.tasks.popleft()
                a = self.plan.assignments[seq]
                if a.task_id != task_id:
                    raise RuntimeError(f"task {task_id}: plan order differs from the coordinator's")
                await self.engine.run_task(a, attempts, cost_pusd)
        except Exception as exc:  # reported to the coordinator, which stops the run
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.running -= 1
            self._wake()
