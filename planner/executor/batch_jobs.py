"""Batch jobs: the tasks a plan put on ``@batch`` offerings, run through the provider's batch
API (``batch_api``) instead of one call each.

    prepare   per batch offering, chunks of pending tasks: reserve each request's worst case
              (a task that cannot be covered is queued), record the job and its requests in
              the ledger, commit -- all before anything is uploaded
    upload    the request file (one line per task, custom_id = task id); its file id recorded
    create    the batch; its id recorded ('creating' is committed before the request)
    poll      with backoff (``batch_poll_s`` doubling to ``batch_poll_max_s``) until it ends
    apply     output and error files read; every request settled in one transaction: done at
              its usage's cost at the batch prices, or failed (error line, expired, missing)
    fall back each failed request goes on with the realtime offerings of its chain when the
              deadline leaves time (the budget guard decides the rest); else it fails

Resume (the ledger holds the job from before its upload): ``prepared`` -> look for the file
by its name (an upload whose answer was lost) and adopt it, else upload; ``creating`` ->
look for the batch by the job id in its metadata (or its input file) and adopt it, else
create; ``submitted``/``cancelling`` -> poll by id. So a job is never submitted twice.

Ctrl-C: a job not uploaded yet is abandoned (its tasks stay pending); an uploaded one not
created has its file deleted and is abandoned; a submitted one is cancelled and polled until
it ends (within ``--grace``; a resume polls it on): what it answered is kept, the rest goes
back to pending and joins a new job on resume.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from planner.executor.batch_api import (
    BatchAPI,
    JobStatus,
    LineResult,
    parse_lines,
    provider_of,
    request_line,
)
from planner.executor.batch_packing import pack_units, send_positions, units_in_send_order
from planner.executor.budget_guard import BudgetGuard
from planner.executor.classify import classify
from planner.executor.clock import Clock
from planner.executor.engine import Engine, build_chain
from planner.executor.grading import Grading, messages_text
from planner.executor.ledger import Ledger
from planner.executor.options import RunOptions
from planner.executor.prefix import with_breakpoint
from planner.executor.redact import Redactor
from planner.money import (
    cache_price_pusd,
    cached_call_cost_pusd,
    call_cost_pusd,
    price_pusd,
    to_usd,
)
from planner.plan import Assignment, ModelSnapshot, Plan

MAX_JOB_BYTES = 190_000_000  # OpenAI takes request files up to 200 MB
API_RETRIES = 5  # transient errors of one files/batches call before the job is given up
LATE_MARGIN = 0.05  # a job the provider has not ended by window * (1 + margin) is cancelled as expired
T = TypeVar("T")


class JobFailed(Exception):
    """The job cannot go on (a permanent error, or retries exhausted): its requests fall back."""


class Stopped(Exception):
    """Ctrl-C before the job was submitted: it is abandoned, its tasks left pending."""


#: seconds after the run's start within which a job counts as submitted at the start
START_SLACK_S = 60.0


class RunTime:
    """Seconds since the run first started, across resumes: wall time for a live run (from
    the ledger's ``started_at``), the clock's simulated time for a simulated one (carried
    over in ``sim_elapsed_s``)."""

    def __init__(self, clock: Clock, simulated: bool, meta: dict[str, str]) -> None:
        self.clock = clock
        self.simulated = simulated
        self.started_at = float(meta.get("started_at") or time.time())
        self.base_s = float(meta.get("sim_elapsed_s") or 0.0)
        self._clock0 = clock.now()

    def mark_start(self) -> None:
        """This process's work starts now: its start-up is not simulated time (at --time-scale
        0.0001 half a second of imports would count as 5,000 s and push every job past the deadline)."""
        self._clock0 = self.clock.now()

    def elapsed(self) -> float:
        if self.simulated:
            return self.base_s + self.clock.now() - self._clock0
        return time.time() - self.started_at

    def submission_fits(self, window_s: float, deadline_s: float | None, now: float | None = None) -> bool:
        """Whether a job submitted now still ends by the deadline. The plan admits a batch
        offering when its window fits the deadline counted from the run's start; a job
        submitted within :data:`START_SLACK_S` of the start counts as submitted at the start
        (a minute of start-up is noise against a provider's 24 h window, which is an upper bound)."""
        if deadline_s is None:
            return True
        now = self.elapsed() if now is None else now
        return (0.0 if now <= START_SLACK_S else now) + window_s <= deadline_s


@dataclass
class Request:
    attempt_id: int
    task_id: str
    n: int  # the attempt's number for the task
    reserved_pusd: int
    prior_cost_pusd: int  # what the task cost before this request
    seq: int


@dataclass
class Job:
    job_id: str
    model: ModelSnapshot
    state: str
    file_name: str
    requests: list[Request]
    input_file_id: str | None = None
    batch_id: str | None = None
    submitted_s: float | None = None
    window_s: float = 86400.0
    polls: int = 0


@dataclass
class BatchRunner:
    plan: Plan
    ledger: Ledger
    budget: BudgetGuard
    engine: Engine
    api: BatchAPI
    options: RunOptions
    clock: Clock
    runtime: RunTime
    redactor: Redactor
    simulated: bool
    stop: asyncio.Event
    grading: Grading | None = None
    on_finish: Callable[[str, int], None] | None = None
    open_jobs: int = 0  # jobs recorded and not ended (the Ctrl-C note counts them)
    _models: dict[str, ModelSnapshot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._models = {m.name: m for m in self.plan.models}

    @property
    def batch_models(self) -> list[str]:
        return [m.name for m in self.plan.models if m.mode == "batch"]

    # -- prepare ---------------------------------------------------------------------------------
    async def prepare(self) -> list[Job]:
        """Jobs to drive: those an earlier process left open (their reservations held again)
        and new ones for the pending batch tasks, all committed before any upload."""
        jobs = []
        for row in self.ledger.open_batch_jobs():
            m = self._models.get(row["model"])
            requests = [Request(*r) for r in self.ledger.batch_job_requests(row["job_id"])]
            if m is None:
                continue
            self.budget.adopt(sum(r.reserved_pusd for r in requests))
            jobs.append(Job(row["job_id"], m, row["state"], row["file_name"], requests, row["input_file_id"],
                            row["batch_id"], row["submitted_s"], row["window_s"] or 86400.0, row["polls"]))
        deadline = self.plan.limits.deadline_s
        self.runtime.mark_start()
        now = self.runtime.elapsed()  # once: jobs prepared together are submitted together
        by_model: dict[str, list[tuple[int, int, int]]] = {}
        for seq, task_id, attempts, cost in self.ledger.pending_batch_tasks(self.batch_models):
            a = self.plan.assignments[seq]
            assert a.task_id == task_id, (seq, task_id)
            window = self._models[a.model].batch_window_s or 86400.0
            if not self.runtime.submission_fits(window, deadline, now):
                continue  # the window no longer fits the deadline: left pending, it runs realtime
            by_model.setdefault(a.model, []).append((seq, attempts, cost))
        for name, tasks in by_model.items():
            jobs.extend(self._new_jobs(self._models[name], tasks))
        await self.ledger.commit()  # durable before any upload
        self.open_jobs = len(jobs)
        return jobs

    def _new_jobs(self, m: ModelSnapshot, tasks: list[tuple[int, int, int]]) -> list[Job]:
        """Jobs of at most ``batch_max_requests`` requests (and MAX_JOB_BYTES) for ``tasks``
        ((seq, attempts so far, cost so far)), each request's worst case reserved; each cached
        prefix group's requests together in its send order, in one job where it fits in one
        (``batch_packing``)."""
        kept: list[tuple[int, int, int, int, int]] = []  # (seq, attempts, cost, worst case, line bytes)
        for seq, attempts, cost in tasks:
            a = self.plan.assignments[seq]
            link = build_chain(a, self._models)[0]
            writes_cache = a.prefix_group is not None and a.prefix_messages > 0  # as the engine reserves
            worst = call_cost_pusd(self.engine.reserve_input_tokens(a), link.max_tokens,
                                   link.worst_input_price_pusd(writes_cache), link.out_price_pusd)
            if not self.budget.reserve_now(worst):
                remaining = self.budget.remaining_pusd() or 0
                self.ledger.finish_task(a.task_id, "queued", None, attempts, cost, reason=(
                    f"budget: ${to_usd(remaining):.6f} left cannot cover the worst case ${to_usd(worst):.6f} "
                    f"on {m.name}"))
                continue
            line_bytes = len(self._line(a, m, "")) + 64
            kept.append((seq, attempts, cost, worst, line_bytes))
        units = units_in_send_order(kept, lambda t: self.plan.assignments[t[0]].task_id,
                                    send_positions(self.plan, m.name))
        return [self._record(m, [t[:4] for t in chunk])
                for chunk in pack_units(units, lambda t: t[4], self.options.batch_max_requests, MAX_JOB_BYTES)]

    def _record(self, m: ModelSnapshot, chunk: list[tuple[int, int, int, int]]) -> Job:
        """Queue one job's ledger rows: ((seq, attempts so far, cost so far, worst case))."""
        job_id = uuid.uuid4().hex
        file_name = f"routeplan-{job_id}.jsonl"
        tasks = [self.plan.assignments[seq] for seq, *_ in chunk]
        projected = sum(a.projected_input_tokens * price_pusd(m.input_cost_per_token)
                        + a.projected_output_tokens * price_pusd(m.output_cost_per_token) for a in tasks)
        ids = self.ledger.begin_batch_job(job_id, m.name, file_name,
                                          [(a.task_id, attempts + 1, worst)
                                           for a, (_, attempts, _, worst) in zip(tasks, chunk, strict=True)],
                                          projected, m.batch_window_s)
        requests = [Request(i, a.task_id, attempts + 1, worst, cost, seq)
                    for i, a, (seq, attempts, cost, worst) in zip(ids, tasks, chunk, strict=True)]
        return Job(job_id, m, "prepared", file_name, requests, window_s=m.batch_window_s or 86400.0)

    # -- drive -----------------------------------------------------------------------------------
    async def run(self, jobs: list[Job]) -> None:
        await asyncio.gather(*(self.drive(job) for job in jobs))

    async def drive(self, job: Job) -> None:
        """Take one job from wherever it stands to its end, then settle its requests."""
        try:
            try:
                if job.state == "prepared":
                    await self._upload(job)
                if job.state in ("uploaded", "creating"):
                    await self._create(job)
            except Stopped:
                await self._abandon(job)
                return
            except JobFailed as exc:  # never submitted: every request falls back
                await self._apply(job, None, why=str(exc))
                return
            try:
                status = await self._poll(job)
            except JobFailed as exc:
                await self._leave_open(job, str(exc))
                return
            await self._apply(job, status)
        finally:
            self.open_jobs -= 1

    async def _leave_open(self, job: Job, why: str) -> None:
        """A submitted job whose outcome cannot be learnt now (the provider refuses to show it):
        it stays open, its requests holding their reservations (it may still bill), and
        ``--resume`` asks again by id."""
        self.ledger.update_batch_job(job.job_id, error=f"{why}; left open: --resume asks the provider again")
        await self.ledger.commit()

    async def _upload(self, job: Job) -> None:
        m = job.model
        found = await self._api(job, "look for the upload", lambda: self.api.find_uploads(m, job.file_name))
        if found:  # an upload whose answer an earlier process never recorded
            file_id = found[0]
            for extra in found[1:]:
                await self._api(job, "delete a duplicate upload", _bind(self.api.delete_file, m, extra))
        else:
            if self.stop.is_set():
                raise Stopped
            content = self._request_file(job)
            file_id = await self._api(job, "upload", lambda: self.api.upload(m, job.file_name, content),
                                      find=lambda: self._found_upload(job))
        job.input_file_id, job.state = file_id, "uploaded"
        self.ledger.update_batch_job(job.job_id, state="uploaded", input_file_id=file_id, uploaded_at=time.time())
        await self.ledger.commit()

    async def _found_upload(self, job: Job) -> str | None:
        found = await self.api.find_uploads(job.model, job.file_name)
        return found[0] if found else None

    def _request_file(self, job: Job) -> bytes:
        model = job.model.name if self.simulated else provider_of(job.model)[0]
        return b"".join(self._line(self.plan.assignments[r.seq], job.model, model) for r in job.requests)

    def _line(self, a: Assignment, m: ModelSnapshot, model: str) -> bytes:
        """The task's request line; a cached group's shared prefix marked for providers that
        cache only what a request marks (as the realtime calls do)."""
        link = build_chain(a, self._models)[0]
        messages = a.messages
        if a.prefix_group is not None:
            messages = with_breakpoint(m, messages, a.prefix_messages)
        return request_line(a.task_id, model, messages, link.max_tokens)

    async def _create(self, job: Job) -> None:
        m = job.model
        assert job.input_file_id is not None
        file_id = job.input_file_id
        status = None
        if job.state == "creating":  # an earlier process may have created it: find it first
            status = await self._api(job, "look for the batch", lambda: self.api.find_batch(m, job.job_id, file_id))
        if status is None:
            if self.stop.is_set():
                await self._api(job, "delete the upload", lambda: self.api.delete_file(m, file_id))
                raise Stopped
            job.state = "creating"
            self.ledger.update_batch_job(job.job_id, state="creating")
            await self.ledger.commit()  # before the request: a resume looks for the batch first
            status = await self._api(job, "create", lambda: self.api.create(m, file_id, job.job_id),
                                     find=lambda: self.api.find_batch(m, job.job_id, file_id))
        job.batch_id, job.state, job.submitted_s = status.batch_id, "submitted", self.runtime.elapsed()
        self.ledger.update_batch_job(job.job_id, state="submitted", batch_id=status.batch_id,
                                     provider_status=status.status, submitted_at=time.time(),
                                     submitted_s=job.submitted_s)
        self.note_time()
        await self.ledger.commit()

    async def _poll(self, job: Job) -> JobStatus:
        m = job.model
        assert job.batch_id is not None
        batch_id = job.batch_id
        wait = self.options.batch_poll_s
        late_at = (job.submitted_s or self.runtime.elapsed()) + job.window_s * (1 + LATE_MARGIN)
        while True:
            # the job runs at the provider whatever happens here: transient errors never end it
            status = await self._api(job, "poll", lambda: self.api.retrieve(m, batch_id), retries=None)
            job.polls += 1
            self.ledger.update_batch_job(job.job_id, provider_status=status.status, polls=job.polls)
            self.note_time()
            self.ledger.flush_soon()
            if status.ended:
                return status
            if job.state == "submitted" and (self.stop.is_set() or self.runtime.elapsed() > late_at):
                status = await self._api(job, "cancel", lambda: self.api.cancel(m, batch_id))
                job.state = "cancelling"
                why = "cancelled (Ctrl-C)" if self.stop.is_set() else "past its window: cancelled as expired"
                self.ledger.update_batch_job(job.job_id, state="cancelling", provider_status=status.status, error=why)
                await self.ledger.commit()
                wait = self.options.batch_poll_s
                continue
            if job.state == "cancelling":
                await self.clock.sleep(wait)  # the grace period (or a second Ctrl-C) bounds this wait
            else:
                await self._pause(wait)
            wait = min(wait * 2, self.options.batch_poll_max_s)

    async def _api(self, job: Job, step: str, call: Callable[[], Awaitable[T]],
                   find: Callable[[], Awaitable[T | None]] | None = None, retries: int | None = API_RETRIES) -> T:
        """One files/batches call with retries on transient errors (``retries=None``: until it
        answers, waits capped at ``batch_poll_max_s``). ``find`` looks for what the call makes
        before it is retried (the first request may have gone through)."""
        wait = min(self.options.retry.base_s, self.options.batch_poll_s) or 0.01
        k = 0
        while True:
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified: transient ones are retried, the rest end the step
                failure = classify(exc)
                message = self.redactor.clean(failure.message) or failure.kind
                if failure.kind == "permanent" or (retries is not None and k >= retries):
                    raise JobFailed(f"{step}: {message}") from None
                self.ledger.update_batch_job(job.job_id, error=f"{step} (retrying): {message}")
                self.ledger.flush_soon()
                await self.clock.sleep(max(min(wait * 2**k, self.options.batch_poll_max_s),
                                           failure.retry_after_s or 0.0))
                k += 1
                if find is not None:
                    try:
                        found = await find()
                    except Exception:  # noqa: BLE001 - looked for again before the next retry
                        found = None
                    if found is not None:
                        return found

    async def _pause(self, seconds: float) -> None:
        """Wait between polls, ending early on Ctrl-C (so the cancel goes out at once)."""
        await self.clock.sleep_or_stop(seconds, self.stop)

    def note_time(self) -> None:
        """Carry a simulated run's elapsed time over to a resume."""
        if self.simulated:
            self.ledger.set_meta_soon("sim_elapsed_s", repr(self.runtime.elapsed()))

    # -- settle ----------------------------------------------------------------------------------
    async def _abandon(self, job: Job) -> None:
        """Ctrl-C before the job was submitted: nothing was run; its tasks stay pending."""
        for r in job.requests:
            self.budget.settle(r.reserved_pusd, 0)
            self.ledger.end_attempt(r.attempt_id, "cancelled", 0, None, None, None,
                                    "batch job abandoned before it was submitted (Ctrl-C)")
            self.ledger.finish_task(r.task_id, "pending", None, r.n, r.prior_cost_pusd)
        self.ledger.update_batch_job(job.job_id, state="abandoned", ended_at=time.time(),
                                     ended_s=self.runtime.elapsed(), error="stopped (Ctrl-C) before it was submitted")
        await self.ledger.commit()

    async def _apply(self, job: Job, status: JobStatus | None, why: str | None = None) -> None:
        """Settle every request of the job from its output and error files (one transaction),
        then grade what was answered and send what failed down its chain."""
        results: dict[str, LineResult] = {}
        if status is not None:
            for file_id in (status.output_file_id, status.error_file_id):
                if file_id:
                    try:
                        data = await self._api(job, "read the results", _bind(self.api.content, job.model, file_id))
                    except JobFailed as exc:  # billed work unread: never settled as failed
                        await self._leave_open(job, str(exc))
                        return
                    for line in parse_lines(data):
                        results.setdefault(line.custom_id, line)
        final = status.status if status is not None else "failed"
        if why is None and status is not None and status.status == "failed":
            why = f"the job failed at the provider: {status.errors or 'no detail'}"
        user_cancel = final == "cancelled" and self.stop.is_set()
        m = job.model
        in_price, out_price = price_pusd(m.input_cost_per_token), price_pusd(m.output_cost_per_token)
        read_price, write_price = cache_price_pusd(m.cache_read_cost_per_token), cache_price_pusd(m.cache_write_cost_per_token)
        now_s = self.runtime.elapsed()
        wait_s = now_s - job.submitted_s if job.submitted_s is not None else None
        done, failed, requeued, cost_total = [], [], 0, 0
        for r in job.requests:
            got = results.get(r.task_id)
            if got is not None and got.ok:
                line = got
                cost = cached_call_cost_pusd(line.input_tokens, line.cached_tokens, line.cache_write_tokens,
                                             line.output_tokens, in_price, read_price, write_price, out_price)
                self.budget.settle(r.reserved_pusd, cost)
                cost_total += cost
                output = self.redactor.clean(line.text)
                self.ledger.end_attempt(r.attempt_id, "ok", cost, line.input_tokens, line.output_tokens, wait_s, None,
                                        line.cached_tokens, line.cache_write_tokens)
                self.ledger.finish_task(r.task_id, "done", m.name, r.n, r.prior_cost_pusd + cost, line.input_tokens,
                                        line.output_tokens, wait_s, None, output, line.cached_tokens,
                                        line.cache_write_tokens)
                done.append((r, output or ""))
                continue
            self.budget.settle(r.reserved_pusd, 0)  # failed, expired and unrun requests are not billed
            if got is None and user_cancel:
                self.ledger.end_attempt(r.attempt_id, "cancelled", 0, None, None, None,
                                        "batch job cancelled (Ctrl-C) before this request ran")
                self.ledger.finish_task(r.task_id, "pending", None, r.n, r.prior_cost_pusd)
                requeued += 1
                continue
            reason = (self.redactor.clean(got.error) if got is not None else why or {
                "expired": "expired at the end of the batch window",
                "cancelled": str(self._job_error(job) or "the job was cancelled"),
            }.get(final, "missing from the job's output"))
            self.ledger.end_attempt(r.attempt_id, "error", 0, None, None, None, f"batch: {reason}")
            failed.append((r, reason or "failed"))
        self.ledger.update_batch_job(
            job.job_id, state=final if final in ("completed", "expired", "cancelled") else "failed",
            provider_status=status.status if status is not None else None, n_done=len(done), n_failed=len(failed),
            cost_pusd=cost_total, ended_at=time.time(), ended_s=now_s,
            output_file_id=status.output_file_id if status is not None else None,
            error_file_id=status.error_file_id if status is not None else None,
            **({"error": why} if why else {}))
        self.note_time()
        await self.ledger.commit()  # the job's results and its final state, together
        for r, _ in done:
            if self.on_finish is not None:
                self.on_finish("done", r.prior_cost_pusd)
        await self._after(done, failed)

    def _job_error(self, job: Job) -> str | None:
        return self.ledger.batch_job_error(job.job_id)

    async def _after(self, done: list[tuple[Request, str]], failed: list[tuple[Request, str]]) -> None:
        """Grade the answers (tasks with a check) and run the failed requests' fallbacks,
        ``concurrency`` at a time."""
        gate = asyncio.Semaphore(self.options.concurrency)

        async def grade(r: Request, output: str) -> None:
            a = self.plan.assignments[r.seq]
            if self.grading is None or a.check is None:
                return
            async with gate:
                await self.grading.grade(a.task_id, a.check, messages_text(a.messages), output, a.model)

        async def fall_back(r: Request, why: str) -> None:
            async with gate:
                await self.fall_back(self.plan.assignments[r.seq], r.n, r.prior_cost_pusd, why)

        await asyncio.gather(*(grade(r, o) for r, o in done), *(fall_back(r, w) for r, w in failed))

    async def fall_back(self, a: Assignment, attempts: int, cost_pusd: int, why: str) -> str:
        """A failed batch request: on to the realtime offerings of the task's chain when the
        deadline leaves time for one; the budget guard then decides as for any call."""
        realtime = [link for link in build_chain(a, self._models) if link.model.mode != "batch"]
        deadline = self.plan.limits.deadline_s
        reason = None
        if not realtime:
            reason = f"batch: {why}; no realtime offering in the task's chain to fall back to"
        elif deadline is not None and self.runtime.elapsed() + realtime[0].projected_latency_s > deadline:
            reason = (f"batch: {why}; the deadline ({deadline:g} s) leaves no time for a realtime fallback "
                      f"on {realtime[0].model.name}")
        if reason is not None:
            self.ledger.finish_task(a.task_id, "failed", a.model, attempts, cost_pusd, reason=reason)
            self.ledger.flush_soon()
            if self.on_finish is not None:
                self.on_finish("failed", cost_pusd)
            return "failed"
        return await self.engine.run_task(a, attempts, cost_pusd)


def _bind(fn: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
    """``fn(*args)`` as a call for ``_api`` (a closure over loop variables would be late-bound)."""
    return lambda: fn(*args)


def job_rows_for_report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's view of each job (USD, durations)."""
    from planner.money import PUSD_PER_USD

    out = []
    for j in rows:
        waited = (j["ended_s"] - j["submitted_s"]) if j.get("ended_s") is not None and j.get("submitted_s") is not None else None
        out.append({"job_id": j["job_id"], "model": j["model"], "state": j["state"],
                    "provider_status": j.get("provider_status"), "input_file_id": j.get("input_file_id"),
                    "batch_id": j.get("batch_id"), "output_file_id": j.get("output_file_id"),
                    "error_file_id": j.get("error_file_id"), "n_requests": j["n_requests"],
                    "n_done": j["n_done"], "n_failed": j["n_failed"],
                    "projected_cost_usd": j["projected_pusd"] / PUSD_PER_USD,
                    "reserved_usd": j["reserved_pusd"] / PUSD_PER_USD,
                    "actual_cost_usd": (j["cost_pusd"] or 0) / PUSD_PER_USD,
                    "created_at": j.get("created_at"), "uploaded_at": j.get("uploaded_at"),
                    "submitted_at": j.get("submitted_at"), "ended_at": j.get("ended_at"),
                    "waited_s": waited, "polls": j.get("polls"), "error": j.get("error")})
    return out
