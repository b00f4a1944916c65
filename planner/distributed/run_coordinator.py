"""The coordinator of ``routeplan run --workers N``: one process owns the budget and the ledger.

It starts N :class:`~planner.distributed.run_worker.ExecutorWorker` actors and drives each
through a loop of exchanges (one in flight per worker): task ids out, in priority then plan
order; events back (attempts settled, tasks finished), written to the ledger in one
transaction per exchange.

Money. The coordinator's BudgetGuard counts what every worker *holds* (granted and not yet
settled) as reserved. Grants go out in blocks (a quarter of what is left, shared between
the workers, at least what was asked), and each is committed to the ledger as an
``inflight`` row of purpose ``grant`` *before* it is sent, so every call a worker makes is
covered by a durable reservation: a crash of the coordinator counts all held money as spent
on ``--resume``, as it counts a call in flight. When a worker asks for more than is left,
the others are asked to give back what no reservation of theirs uses; a task is queued only
when no money is held anywhere, as in one process.

A worker that dies: what it held counts as spent (its grant row becomes ``lost``), its
unfinished tasks go back to ``pending`` and to the other workers, and the run goes on. A task
whose answer was reported is ``done`` and never runs again; one whose answer was not is run
again (its first call is paid for by the lost grant, exactly as a call in flight is after a
``kill -9`` of one process).

Checks are graded here, in the coordinator, as answers arrive (the same Grading as in one
process, spending from the same guard).

Cascade tasks run on the workers with the one-process cascade runner. Each of their calls is
written here as an ``inflight`` attempt (a ``begin`` event) and committed before the worker
sends it, then settled by id (``end``); what such calls reserve is left out of the worker's
grant row, so a crash counts each held picodollar as spent once. Their stages' answers and
the verifier's decision are written as they come (``stage``, ``decision``); a task sent to a
worker carries the stages the ledger already holds, which are never asked again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from planner.distributed.cluster import IDLE_POOLS, connected, free_idle
from planner.distributed.run_worker import ExecutorWorker, WorkerSettings, share
from planner.executor.budget_guard import BudgetGuard
from planner.executor.caller import Caller
from planner.executor.clock import Clock
from planner.executor.grading import Grading, messages_text
from planner.executor.interrupt import Interrupt
from planner.executor.ledger import Ledger
from planner.executor.limits import ModelLimiter
from planner.executor.options import RunOptions
from planner.executor.prefix import group_order
from planner.executor.progress import Progress
from planner.executor.providers import models_in_use, secrets_of
from planner.executor.redact import Redactor
from planner.money import budget_pusd, to_usd
from planner.plan import Plan


@dataclass
class RunView:
    """What observers see after each exchange (tests and benchmarks use it, e.g. to kill a
    worker mid-run)."""

    pids: dict[int, int] = field(default_factory=dict)
    alive: set[int] = field(default_factory=set)
    finished: int = 0
    lost_workers: int = 0


#: Called with the RunView after every exchange.
observers: list[Callable[[RunView], None]] = []


def holder(index: int) -> str:
    """The ledger's name for worker ``index`` (its grant rows' task_id and model)."""
    return f"<ray worker {index}>"


class _Coordinator:
    def __init__(self, plan: Plan, ledger: Ledger, guard: BudgetGuard, n: int, progress: Progress,
                 grading: Grading, stop: asyncio.Event) -> None:
        self.plan, self.ledger, self.guard, self.n = plan, ledger, guard, n
        self.limited = guard.budget_pusd is not None
        self.progress, self.grading, self.stop = progress, grading, stop
        self.held = [0] * n
        self.need = [0] * n
        # workers told to wait for money, in the order they began to wait: the first is served
        # first, so two workers cannot pass a block back and forth while a third starves
        self.waiting: dict[int, int] = {}
        self._tickets = itertools.count()
        self.inflight = [0] * n
        self.outstanding: list[dict[str, int]] = [{} for _ in range(n)]  # task_id -> seq
        # durable calls in flight (a cascade's): the worker's attempt id -> (ledger id, reserved)
        self.open: list[dict[int, tuple[int, int]]] = [{} for _ in range(n)]
        self.cascades = any(a.cascade is not None for a in plan.assignments)
        self.requeued: deque[tuple[int, str]] = deque()
        # a prefix group's tasks together, as in one process (a group cut between two
        # workers' batches is warmed once by each)
        self.pending: Iterator[tuple[int, str, int, int]] = iter(group_order(plan, ledger.pending_tasks))
        self.exhausted = False
        self.view = RunView(alive=set(range(n)))
        self.grades: set[asyncio.Future[Any]] = set()

    # -- the loop of one worker ----------------------------------------------------------------
    async def drive(self, w: int, handle: Any) -> None:
        from ray.exceptions import RayActorError, WorkerCrashedError

        msg: dict[str, Any] = {}
        while True:
            try:
                reply = await handle.exchange.remote(msg)
            except (RayActorError, WorkerCrashedError) as exc:
                await self._lost(w, f"worker died: {type(exc).__name__}")
                return
            if reply["error"]:
                raise RuntimeError(f"ray worker {w}: {reply['error']}")
            self._apply(w, reply)
            # stopping: every worker gives back what no call in flight reserved, so a call still
            # in flight when the wait ends writes off its own worst case, not the worker's grant
            msg = {"stop": True, "reclaim": True} if self.stop.is_set() else {}
            if reply["done"]:
                if self.held[w]:  # cannot happen: a finished worker reserves nothing; stay safe
                    self._record_grant(w)
                    self.ledger.lose_grant(holder(w), "held when the worker finished")
                    self._settle(w, self.held[w], self.held[w])
                self.ledger.set_grant(holder(w), 0)
                await self.ledger.commit()
                self._notify()
                return
            if reply["need"] and self.limited:
                self._answer_need(w, reply["need"], msg)
            else:
                self.waiting.pop(w, None)
            if any(self.need[v] for v in self.view.alive if v != w):
                msg["reclaim"] = True
            if reply["want"] and not self.stop.is_set():
                msg["tasks"] = self._take(reply["want"])
                # outstanding at once: another worker's loop, running while this one awaits the
                # commit below, must not find everything dispatched and nothing outstanding
                self._dispatched(w, msg["tasks"])
                stored = self._stored(msg["tasks"])
                if stored:
                    msg["cascades"] = stored
            if self._all_dispatched():
                msg["no_more"] = True
            if self.limited:
                self._record_grant(w)
            await self.ledger.commit()  # a grant is durable before the worker can spend it
            self._notify()

    # -- tasks -----------------------------------------------------------------------------------
    def _take(self, k: int) -> list[tuple[int, str, int, int]]:
        out: list[tuple[int, str, int, int]] = []
        while len(out) < k and self.requeued:
            seq, task_id = self.requeued.popleft()
            attempts, cost = self.ledger.task_progress(task_id)
            out.append((seq, task_id, attempts, cost))
        while len(out) < k and not self.exhausted:
            try:
                out.append(next(self.pending))
            except StopIteration:
                self.exhausted = True
        return out

    def _stored(self, tasks: list[tuple[int, str, int, int]]) -> dict[str, tuple[Any, ...]]:
        """What the ledger holds of the cascade tasks among ``tasks`` (a resumed run, a dead
        worker's task), sent with them: (answered stages, why the stages gave up when the task
        went on to the plan's fallbacks), so no answered stage is asked again."""
        if not self.cascades:
            return {}
        out: dict[str, tuple[Any, ...]] = {}
        for seq, task_id, _, _ in tasks:
            if self.plan.assignments[seq].cascade is not None:
                stages = {i: tuple(x) for i, x in self.ledger.cascade_stages(task_id).items()}
                fell_back = self.ledger.cascade_fell_back(task_id)
                if stages or fell_back is not None:
                    out[task_id] = (stages, fell_back)
        return out

    def _record_grant(self, w: int) -> None:
        """The ledger's row of what worker ``w`` holds, less what its durable calls in flight
        reserved (their own ``inflight`` rows count that)."""
        self.ledger.set_grant(holder(w), self.held[w] - sum(r for _, r in self.open[w].values()))

    def _dispatched(self, w: int, tasks: list[tuple[int, str, int, int]]) -> None:
        for seq, task_id, _, _ in tasks:
            self.outstanding[w][task_id] = seq

    def _all_dispatched(self) -> bool:
        return (self.exhausted and not self.requeued
                and not any(self.outstanding[v] for v in self.view.alive))

    # -- events and money ------------------------------------------------------------------------
    def _apply(self, w: int, reply: dict[str, Any]) -> None:
        ledger = self.ledger
        for ev in reply["events"]:
            if ev[0] == "attempt":
                _, task_id, n, model, reserved, state, cost, tin, tout, lat, err, t0, t1, cached, written = ev
                ledger.record_attempt(task_id, n, model, reserved, state, cost, tin, tout, lat, err, t0, t1,
                                      cached, written)
                if cost:
                    self._settle(w, cost, cost)
            elif ev[0] == "begin":
                _, local_id, task_id, n, model, reserved, purpose, _ = ev
                self.open[w][local_id] = (ledger.begin_attempt(task_id, n, model, reserved, purpose=purpose),
                                          reserved)
            elif ev[0] == "end":
                _, local_id, state, cost, tin, tout, lat, err, _, cached, written = ev
                attempt_id, _ = self.open[w].pop(local_id)
                ledger.end_attempt(attempt_id, state, cost, tin, tout, lat, err, cached, written)
                if cost:
                    self._settle(w, cost, cost)
            elif ev[0] == "stage":
                ledger.record_stage(*ev[1:])
            elif ev[0] == "decision":
                ledger.record_decision(*ev[1:])
            else:
                _, task_id, status, model, attempts, cost, tin, tout, lat, reason, output, cached, written = ev
                ledger.finish_task(task_id, status, model, attempts, cost, tin, tout, lat, reason, output,
                                   cached, written)
                seq = self.outstanding[w].pop(task_id, None)
                self.view.finished += 1
                self.progress.advance(f"${to_usd(self.guard.spent_pusd):.4f}")
                if status == "done" and seq is not None:
                    self._grade(seq, model, output)
        if reply["returned"]:
            self._settle(w, reply["returned"], 0)
            self.need[w] = 0
        self.inflight[w] = reply["inflight"]

    def _settle(self, w: int, amount: int, spent: int) -> None:
        """``amount`` of what worker ``w`` holds leaves it: ``spent`` of it was spent."""
        if self.limited:
            self.held[w] -= amount
            self.guard.settle(amount, spent)
        else:
            self.guard.spent_pusd += spent

    def _answer_need(self, w: int, need: int, msg: dict[str, Any]) -> None:
        """Grant worker ``w`` the money it lacks, tell it to wait, or deny it (its task is then
        queued, as one process queues a call whose worst case the budget cannot cover).

        Denied when the need could never fit: more than is left plus all the other workers
        hold (their calls in flight included; what they hold only shrinks as it is spent).
        Workers that wait are served in the order they began to wait: a grant leaves room for
        the needs of those ahead, who get the money the others give back (``reclaim``)."""
        remaining = self.guard.remaining_pusd() or 0
        elsewhere = self.guard.reserved_pusd - self.held[w]
        if need > remaining + max(elsewhere, 0):
            self.need[w] = 0
            self.waiting.pop(w, None)
            msg["deny"] = True
            return
        place = self.waiting.get(w)
        ahead = sum(self.need[v] for v, p in self.waiting.items()
                    if v != w and v in self.view.alive and (place is None or p < place))
        room = remaining - ahead
        if need <= room:
            block = min(room, max(need, remaining // (4 * max(len(self.view.alive), 1))))
            self.guard.reserved_pusd += block
            self.held[w] += block
            self.need[w] = 0
            self.waiting.pop(w, None)
            msg["grant"] = block
            return
        self.need[w] = need  # others hold money: they give back what they do not use
        if place is None:
            self.waiting[w] = next(self._tickets)

    async def _lost(self, w: int, why: str) -> None:
        self.view.alive.discard(w)
        self.waiting.pop(w, None)
        self.view.lost_workers += 1
        for attempt_id, reserved in self.open[w].values():  # its calls in flight: maybe billed
            self.ledger.end_attempt(attempt_id, "lost", reserved, None, None, None,
                                    f"{why}; in flight: may have been billed, reservation counted")
        if not self.limited:
            self._settle(w, 0, sum(r for _, r in self.open[w].values()))
        self.open[w] = {}
        if self.limited and self.held[w]:
            self._record_grant(w)
            self.ledger.lose_grant(holder(w), f"{why}; what it held counts as spent")
            self._settle(w, self.held[w], self.held[w])
        self.need[w] = 0
        tasks, self.outstanding[w] = self.outstanding[w], {}
        self.ledger.return_to_pending(tasks)
        self.requeued.extend((seq, task_id) for task_id, seq in tasks.items())
        await self.ledger.commit()
        self.progress.note(f"ray worker {w} {why}: its {len(tasks)} unfinished task(s) go back to pending"
                           + (f"; {len(self.view.alive)} worker(s) go on" if self.view.alive else ""))
        self._notify()

    def _grade(self, seq: int, model: str | None, output: str | None) -> None:
        a = self.plan.assignments[seq]
        if a.check is None or model is None:
            return
        job = asyncio.ensure_future(self.grading.grade(a.task_id, a.check, messages_text(a.messages),
                                                       output or "", model))
        self.grades.add(job)
        job.add_done_callback(self.grades.discard)

    def _notify(self) -> None:
        for observe in observers:
            observe(self.view)


#: Idle executor actors of this process's Ray session, reused by the next run (an actor's
#: start-up, litellm's import above all, costs seconds; tests and notebooks run many plans).
_idle: dict[str, list[Any]] = IDLE_POOLS.setdefault("executor", {})


def _actors(ray: Any, n: int) -> list[Any]:
    """``n`` executor actors: idle ones of this Ray session first, then new ones."""
    free_idle(ray, but="executor")
    session = ray.get_runtime_context().get_job_id()
    idle = _idle.setdefault(session, [])
    handles = [idle.pop() for _ in range(min(n, len(idle)))]
    actor = ray.remote(num_cpus=1, max_restarts=0)(ExecutorWorker)
    handles += [actor.remote() for _ in range(n - len(handles))]
    return handles


async def _release(ray: Any, handles: list[Any], healthy: set[int]) -> None:
    """Keep the healthy actors for the next run (reset); kill the rest."""
    session = ray.get_runtime_context().get_job_id()
    for i, h in enumerate(handles):
        if i in healthy:
            try:
                await h.reset.remote()
                _idle.setdefault(session, []).append(h)
                continue
            except Exception:  # noqa: BLE001 - a worker that cannot reset is not reused
                pass
        ray.kill(h, no_restart=True)


async def execute_distributed(plan: Plan, ledger: Ledger, options: RunOptions, simulated: bool,
                              budget_usd: float | None, *, catch_sigint: bool = False) -> Any:
    """``planner.executor.run._execute`` on Ray: same inputs, same RunResult."""
    from planner.executor.run import RunResult, cascade_sims, expectations

    n = options.workers
    with connected(options.ray_address, n) as ray:
        models = {m.name: m for m in plan.models}
        seed, fail_rate, time_scale = int(options.seed or 0), options.fail_rate or 0.0, options.time_scale or 0.0
        clock = Clock(time_scale if simulated else 1.0)
        call_tag = uuid.uuid4().hex
        if simulated:
            from planner.executor.simulator import SimConfig, register_run

            register_run(call_tag, SimConfig(models, seed, fail_rate, clock, expectations(plan),
                                             cascades=cascade_sims(plan)))
        guard = BudgetGuard(budget_pusd(budget_usd), spent_pusd=ledger.spent_pusd())
        progress = Progress(ledger.count_pending(), options.progress,
                            f"{'simulating' if simulated else 'running'} on {n} ray worker(s)")
        stop = asyncio.Event()
        limiters = {m.name: ModelLimiter(clock, m.concurrency, m.rpm, m.tpm) for m in plan.models}
        grading = Grading(ledger=ledger, budget=guard, limiters=limiters, caller=Caller(simulated, call_tag),
                          clock=clock, policy=options.retry, models=models, simulated=simulated,
                          redactor=Redactor(secrets_of(models_in_use(plan))), seed=seed, stop=stop)
        coord = _Coordinator(plan, ledger, guard, n, progress, grading, stop)
        n_pending = ledger.count_pending()
        handles = _actors(ray, n)
        plan_ref = ray.put(plan.model_dump_json().encode())
        reusable = False
        try:
            pids = await asyncio.gather(*(h.start.remote(plan_ref, WorkerSettings(
                index=i, n_workers=n, simulated=simulated, call_tag=call_tag, seed=seed, fail_rate=fail_rate,
                time_scale=time_scale, retry=options.retry, concurrency=share(options.concurrency, i, n) or 1,
                limited_budget=guard.budget_pusd is not None)) for i, h in enumerate(handles)))
            coord.view.pids = dict(enumerate(pids))
            # answers an interrupted run received but never graded are graded first
            for seq, task_id, model, output in ledger.ungraded_tasks():
                if seq < len(plan.assignments) and plan.assignments[seq].check is not None:
                    a = plan.assignments[seq]
                    await grading.grade(task_id, a.check, messages_text(a.messages), output, model)
            t0 = time.perf_counter()
            drivers = asyncio.gather(*(coord.drive(i, h) for i, h in enumerate(handles)))
            interrupt = Interrupt(drivers, stop, lambda: sum(coord.inflight) + grading.inflight,
                                  options.grace_s, progress)
            try:
                with interrupt.catching(catch_sigint):
                    try:
                        await drivers
                        if coord.grades:
                            await asyncio.gather(*list(coord.grades))
                    except asyncio.CancelledError:
                        if not interrupt.cancelled:
                            raise
                ledger.flush()
                reusable = not interrupt.count
            finally:
                progress.close()
                grading.close()
        finally:
            await _release(ray, handles, coord.view.alive if reusable else set())
            if simulated:
                from planner.executor.simulator import unregister_run

                unregister_run(call_tag)
    if interrupt.count:
        raise KeyboardInterrupt
    wall_s = time.perf_counter() - t0
    if not coord.view.alive and coord.view.lost_workers:
        progress.note("every ray worker died: the unfinished tasks stay pending (continue with --resume)")
    return RunResult(out_dir=ledger.path.parent, simulated=simulated, mode_reason="",
                     budget_usd=budget_usd, spent_usd=to_usd(ledger.spent_pusd()),
                     counts=ledger.counts(), ran_tasks=n_pending, wall_s=wall_s,
                     graded=grading.counts.graded, passed=grading.counts.passed,
                     grade_errors=grading.counts.errors)
