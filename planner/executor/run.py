"""``run_plan``: set up the ledger (fresh or resumed), the budget guard, the limits and the
provider, drive every pending task through the Engine with a bounded pool of workers, then
write the report.

Memory stays flat in the batch size: workers pull task ids from a list and look the task up
in the plan; results live in the ledger, not in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import InputError, StorageError
from planner.executor.budget_guard import BudgetGuard
from planner.executor.caller import Caller, InlineSetupExecutor
from planner.executor.cascade_run import CascadeRunner
from planner.executor.clock import Clock
from planner.executor.engine import Engine
from planner.executor.grading import Grading, messages_text
from planner.executor.interrupt import Interrupt
from planner.executor.ledger import Ledger, open_ledger
from planner.executor.limits import ModelLimiter
from planner.executor.options import RunOptions
from planner.executor.outdir import (
    RUN_ID_NAME,
    check_out_dir,
    check_startable,
    read_meta,
    record_run_id,
)
from planner.executor.prefix import group_order, warmer_for
from planner.executor.progress import Progress
from planner.executor.providers import decide_simulated, models_in_use, secrets_of
from planner.executor.recorded import RecordedCalls
from planner.executor.redact import Redactor
from planner.money import (
    budget_pusd,
    cache_price_pusd,
    cached_call_cost_pusd,
    price_pusd,
    to_pusd,
    to_usd,
)
from planner.plan import Plan


@dataclass
class RunResult:
    """What a run did. Every figure is also in ``out_dir/report.json``."""

    out_dir: Path
    simulated: bool
    mode_reason: str
    budget_usd: float | None
    spent_usd: float
    counts: dict[str, int]
    ran_tasks: int
    wall_s: float
    lost_attempts: int = 0
    report_files: list[Path] = field(default_factory=list)
    graded: int = 0  # answers graded by this invocation (their checks' scores are in the ledger)
    passed: int = 0
    grade_errors: int = 0  # answers that could not be graded (e.g. the judge failed)


#: Fields added to the plan after its first ledgers; left out of the digest while at their
#: default, so a plan written before them keeps its digest (and its ledger resumes).
_LATER_MODEL_FIELDS = ("cache_read_cost_per_token", "cache_write_cost_per_token", "cache_price_source",
                       "cache_ttl_s")
_LATER_TASK_FIELDS = {"check": None, "prefix_group": None, "projected_cached_tokens": 0,
                      "projected_cache_write_tokens": 0, "prefix_messages": 0, "cascade": None}


def _at_default(entry: Any) -> set[str]:
    return {k for k, v in _LATER_TASK_FIELDS.items() if hasattr(entry, k) and getattr(entry, k) == v}


def plan_digest(plan: Plan) -> str:
    """Identity of a plan's content (its creation time aside), to tie a ledger to its plan.
    Hashed piece by piece: a 100k-task plan never becomes one big string. Fields added since
    the first plans are left out while at their default (an absent check, no prefix group, no cascade),
    so plans written before them keep their digest (and their ledgers)."""
    exclude: dict[str, Any] = {"created_at": True, "assignments": True, "queued": True,
                               "models": {i: {f for f in _LATER_MODEL_FIELDS if getattr(m, f) is None}
                                          for i, m in enumerate(plan.models)}}
    if not plan.prefix_groups:
        exclude["prefix_groups"] = True
    h = hashlib.sha256(plan.model_dump_json(exclude=exclude).encode())
    for a in plan.assignments:
        h.update(a.model_dump_json(exclude=_at_default(a)).encode())
    h.update(b"|queued|")
    for q in plan.queued:
        h.update(q.model_dump_json(exclude=_at_default(q)).encode())
    return h.hexdigest()


def run_plan(plan: Plan | str | Path, out_dir: str | Path, options: RunOptions | None = None, *,
             simulate: bool | None = None, report: bool = True) -> RunResult:
    """Run ``plan`` and write the ledger and report into ``out_dir``.

    ``simulate=True/False`` is a shortcut for ``RunOptions(mode="simulate"/"live")``.
    Raises InputError for unusable input (a ledger of another plan, --live without keys).
    """
    return asyncio.run(arun_plan(plan, out_dir, options, simulate=simulate, report=report, _owns_loop=True))


async def arun_plan(plan: Plan | str | Path, out_dir: str | Path, options: RunOptions | None = None, *,
                    simulate: bool | None = None, report: bool = True, _owns_loop: bool = False) -> RunResult:
    """``run_plan`` for callers already inside an event loop (whose loop it leaves as it is)."""
    options = options or RunOptions()
    if options.workers:
        from planner.distributed.cluster import require_ray

        require_ray()  # before any file is written
    if simulate is not None:
        options = _replace(options, mode="simulate" if simulate else "live")
    out = Path(out_dir)
    check_out_dir(out)
    plan_file = "" if isinstance(plan, Plan) else str(plan)
    if not isinstance(plan, Plan):
        from planner.status import status

        with status(f"loading {plan}"):  # a 100k-task plan takes seconds
            plan = Plan.load(plan)
    batch_offerings = {m.name for m in plan.models if m.mode == "batch"}
    batch = sorted({a.model for a in plan.assignments if a.model in batch_offerings})
    if options.workers and batch:
        raise InputError(f"{plan_file or 'plan'}: --workers does not run batch jobs, and the plan puts tasks on "
                         f"{', '.join(batch)}: run it without --workers, or re-solve "
                         f"without a deadline that admits batch offerings")
    check_cascades_runnable(plan, plan_file or "plan")
    previous = read_meta(out)
    check_startable(out, previous, resume=options.resume)
    digest = plan_digest(plan)
    if previous and previous.get("plan_sha256") != digest:
        raise InputError(f"{out}: the ledger belongs to another plan; resume it with the plan it "
                         f"was started with ({previous.get('plan_file') or 'unknown'}), or choose another --out")
    was_live = previous.get("simulated") == "0"
    if was_live and options.mode != "live":
        raise InputError(f"{out}: this run was live; resume it with --live (without it nothing calls a "
                         f"provider)")
    if previous.get("simulated") == "1" and options.mode == "live":
        raise InputError(f"{out}: this run was simulated; resume it the same way (without --live)")
    simulated, mode_reason = decide_simulated(plan, options.mode)  # before any file is written
    if previous and options.mode == "auto" and previous.get("mode_reason"):
        mode_reason = previous["mode_reason"]  # resumed the way it ran; the user passed no --simulate
    options = options.settled(previous)
    run_id = previous.get("run_id") or uuid.uuid4().hex
    ledger = open_ledger(out, durable=not simulated)
    try:
        budget_usd = _choose_budget(options, previous, plan)
        if not previous:
            ledger.insert_tasks(_task_rows(plan))  # before meta: meta marks a complete setup
        ledger.set_meta({"plan_sha256": digest, "plan_file": plan_file, "goal": plan.goal,
                         "simulated": "1" if simulated else "0", "mode_reason": mode_reason,
                         "budget_usd": "" if budget_usd is None else repr(budget_usd),
                         "seed": str(options.seed), "fail_rate": repr(options.fail_rate),
                         "time_scale": repr(options.time_scale), "catalog": plan.catalog,
                         "models": json.dumps({m.name: m.model_dump(mode="json") for m in plan.models}),
                         "prefix_groups": json.dumps([g.model_dump(mode="json", exclude={"send_order"})
                                                      for g in plan.prefix_groups]),
                         "run_id": run_id, "started_at": previous.get("started_at") or repr(time.time())})
        _record_run_id(out, run_id)
        lost = ledger.recover()
        if previous:
            ledger.requeue_budget_queued()
        if simulated and _owns_loop:  # litellm's set-up step in this thread: see InlineSetupExecutor
            asyncio.get_running_loop().set_default_executor(InlineSetupExecutor())
        if options.workers:
            from planner.distributed.run_coordinator import execute_distributed

            result = await execute_distributed(plan, ledger, options, simulated, budget_usd,
                                               catch_sigint=_owns_loop)
        else:
            result = await _execute(plan, ledger, options, simulated, budget_usd, catch_sigint=_owns_loop)
    finally:
        ledger.close()
    result.out_dir, result.mode_reason, result.lost_attempts = out, mode_reason, lost
    if report:
        from planner.executor.run_report import write_run_report
        from planner.status import status

        try:
            with status(f"writing the report in {out}"):
                result.report_files = write_run_report(out)
        except OSError as exc:
            raise StorageError(f"cannot write the report ({exc.strerror or exc}); the run is complete "
                               f"in the ledger: fix the folder, then `routeplan report {out}`",
                               file=str(exc.filename or out)) from None
    return result


def _record_run_id(out: Path, run_id: str) -> None:
    try:
        record_run_id(out, run_id)
    except OSError as exc:
        raise StorageError(f"cannot write {RUN_ID_NAME}: {exc.strerror or exc}", file=str(out)) from None


async def _execute(plan: Plan, ledger: Ledger, options: RunOptions, simulated: bool,
                   budget_usd: float | None, *, catch_sigint: bool = False) -> RunResult:
    models = {m.name: m for m in plan.models}
    seed, fail_rate, time_scale = int(options.seed or 0), options.fail_rate or 0.0, options.time_scale or 0.0
    clock = Clock(time_scale if simulated else 1.0)
    call_tag = uuid.uuid4().hex  # ties simulated calls to this process's settings
    sim_config = None
    if simulated:
        from planner.executor.simulator import SimConfig, register_run

        sim_config = SimConfig(models, seed, fail_rate, clock, expectations(plan), cascades=cascade_sims(plan))
        register_run(call_tag, sim_config)
    guard = BudgetGuard(budget_pusd(budget_usd), spent_pusd=ledger.spent_pusd())
    n_pending = ledger.count_pending()
    progress = Progress(n_pending, options.progress,
                        "simulating" if simulated else "running")

    def on_finish(status: str, cost_pusd: int) -> None:
        progress.advance(f"${to_usd(guard.spent_pusd):.4f}")

    stop = asyncio.Event()
    limiters = {m.name: ModelLimiter(clock, m.concurrency, m.rpm, m.tpm) for m in plan.models}
    caller = Caller(simulated, call_tag)
    redactor = Redactor(secrets_of(models_in_use(plan)))
    calls = RecordedCalls(ledger, guard, limiters, caller, redactor, stop)  # answers, judges, cascade stages
    grading = Grading(ledger=ledger, budget=guard, limiters=limiters, caller=caller, clock=clock,
                      policy=options.retry, models=models, simulated=simulated, redactor=redactor,
                      seed=seed, stop=stop, calls=calls)
    engine = Engine(ledger=ledger, budget=guard, limiters=limiters, caller=caller, clock=clock,
                    policy=options.retry, models=models, simulated=simulated, redactor=redactor,
                    seed=seed, on_finish=on_finish, grading=grading, stop=stop, warmer=warmer_for(plan, clock),
                    calls=calls)
    engine.cascades = CascadeRunner(engine)
    batches = await _batch_runner(plan, ledger, options, engine, guard, grading, clock, simulated, sim_config,
                                  redactor, stop, on_finish)
    jobs = await batches.prepare() if batches is not None else []  # recorded before the workers start
    # answers an interrupted run received but never graded are graded first (never re-asked)
    ungraded = [(seq, task_id, model, output) for seq, task_id, model, output in ledger.ungraded_tasks()
                if seq < len(plan.assignments) and plan.assignments[seq].check is not None]
    # one shared iterator: each task goes to exactly one worker; a prefix group's tasks together
    queue = group_order(plan, ledger.pending_tasks)
    to_grade = iter(ungraded)

    async def worker() -> None:
        for seq, task_id, model, output in to_grade:
            if stop.is_set():
                return
            a = plan.assignments[seq]
            await grading.grade(task_id, a.check, messages_text(a.messages), output, model)
        for seq, task_id, attempts, cost_pusd in queue:
            if stop.is_set():
                return
            a = plan.assignments[seq]  # assigned tasks are numbered first, in plan order
            assert a.task_id == task_id, (seq, task_id)
            if batches is not None and models[a.model].mode == "batch":  # not in a job: realtime now
                why = ("its batch request failed" if ledger.batch_tried(task_id)
                       else "the batch window no longer fits the deadline")
                await batches.fall_back(a, attempts, cost_pusd, why)
                continue
            await engine.run_task(a, attempts, cost_pusd)

    t0 = time.perf_counter()
    n_workers = min(options.concurrency, max(1, n_pending + len(ungraded)))
    workers = asyncio.gather(*(worker() for _ in range(n_workers)),
                             *([batches.run(jobs)] if batches is not None and jobs else []))
    interrupt = Interrupt(workers, stop, lambda: calls.inflight + (
        batches.open_jobs if batches is not None else 0), options.grace_s, progress)
    try:
        with interrupt.catching(catch_sigint):
            try:
                await workers
            except asyncio.CancelledError:
                if not interrupt.cancelled:
                    raise
        if batches is not None:
            batches.note_time()
        ledger.flush()
    finally:
        progress.close()
        grading.close()
        if simulated:
            from planner.executor.simulator import unregister_run

            unregister_run(call_tag)
    if interrupt.count:
        raise KeyboardInterrupt
    wall_s = time.perf_counter() - t0
    return RunResult(out_dir=ledger.path.parent, simulated=simulated, mode_reason="",
                     budget_usd=budget_usd, spent_usd=to_usd(ledger.spent_pusd()),
                     counts=ledger.counts(), ran_tasks=n_pending, wall_s=wall_s,
                     graded=grading.counts.graded, passed=grading.counts.passed,
                     grade_errors=grading.counts.errors)


async def _batch_runner(plan: Plan, ledger: Ledger, options: RunOptions, engine: Engine, guard: BudgetGuard,
                        grading: Grading, clock: Clock, simulated: bool, sim_config: Any, redactor: Redactor,
                        stop: asyncio.Event, on_finish: Any) -> Any:
    """The batch jobs' runner when the plan has batch offerings (or the ledger open jobs)."""
    if not any(m.mode == "batch" for m in plan.models) and not ledger.open_batch_jobs():
        return None
    from planner.executor.batch_jobs import BatchRunner, RunTime

    runtime = RunTime(clock, simulated, read_meta(ledger.path.parent))
    api: Any
    if simulated:
        from planner.executor.batch_sim import SIM_BATCH_DIR, Expected, SimBatchAPI

        batch_models = {m.name for m in plan.models if m.mode == "batch"}
        expected = {a.task_id: Expected(a.projected_input_tokens, float(a.projected_output_tokens), a.prefix_group,
                                        a.projected_cached_tokens + a.projected_cache_write_tokens)
                    for a in plan.assignments if a.model in batch_models}
        api = SimBatchAPI(ledger.path.parent / SIM_BATCH_DIR, sim_config, runtime.elapsed, expected)
    else:
        from planner.executor.batch_api import LiteLLMBatchAPI

        api = LiteLLMBatchAPI(options.retry.request_timeout_s)
    return BatchRunner(plan=plan, ledger=ledger, budget=guard, engine=engine, api=api, options=options,
                       clock=clock, runtime=runtime, redactor=redactor, simulated=simulated, stop=stop,
                       grading=grading, on_finish=on_finish)


def expectations(plan: Plan) -> dict[str, tuple[Any, dict[str, float]]]:
    """For the simulator: each checked task's check and projected quality per model."""
    return {a.task_id: (a.check, {a.model: a.projected_quality,
                                  **{f.model: f.projected_quality for f in a.fallbacks}})
            for a in plan.assignments if a.check is not None}


def cascade_sims(plan: Plan) -> dict[str, Any]:
    """For the simulator: each cascade task's plan, check and text (its joint outcome is drawn
    from them, see ``planner.executor.sim_cascade``)."""
    from planner.executor.sim_cascade import CascadeSim

    return {a.task_id: CascadeSim(a.task_id, a.cascade, a.check, messages_text(a.messages))
            for a in plan.assignments if a.cascade is not None}


def check_cascades_runnable(plan: Plan, where: str) -> None:
    """One line (InputError) for a plan whose cascades this executor (one process or Ray
    workers alike) cannot run as planned: a stage on a batch offering (batch jobs are not
    cascade stages), or a cascade task reading a prompt-prefix cache the plan priced (the
    cascade runner does not warm caches)."""
    cascades = [(seq, a) for seq, a in enumerate(plan.assignments) if a.cascade is not None]
    if not cascades:
        return
    batch = {m.name for m in plan.models if m.mode == "batch"}
    for seq, a in cascades:
        assert a.cascade is not None
        on_batch = sorted({s.model for s in a.cascade.stages} & batch)
        if on_batch:
            raise InputError(f"{where}: assignments[{seq}] ({a.task_id}): cascade {a.cascade.label!r} has a stage on "
                             f"the batch offering {on_batch[0]}; cascade stages run realtime only: re-solve "
                             f"with --no-cascades or without a deadline that admits batch offerings")
        if a.projected_cached_tokens or a.projected_cache_write_tokens or a.prefix_messages:
            raise InputError(f"{where}: assignments[{seq}] ({a.task_id}): cascade {a.cascade.label!r} is planned "
                             f"to read the prompt-prefix cache of group {a.prefix_group!r}, which cascades do not "
                             f"use: re-solve with --no-cascades, or without the prefix group")


def _task_rows(plan: Plan):  # type: ignore[no-untyped-def]
    """Ledger rows for every task of the plan: assigned ones pending, the plan's queue queued."""
    from planner.checks.schema import check_to_json

    models = {m.name: m for m in plan.models}
    seq = 0
    for a in plan.assignments:
        if a.model not in models:
            raise InputError(f"assignments[{seq}] ({a.task_id}): model {a.model!r} is not among the "
                             f"plan's models")
        if a.check is not None and a.check.kind == "judge" and a.check.model not in models:
            raise InputError(f"assignments[{seq}] ({a.task_id}): check.model {a.check.model!r} (the judge) "
                             f"is not among the plan's models")
        m = models[a.model]
        projected_pusd = cached_call_cost_pusd(
            a.projected_input_tokens, a.projected_cached_tokens, a.projected_cache_write_tokens,
            a.projected_output_tokens, price_pusd(m.input_cost_per_token), cache_price_pusd(m.cache_read_cost_per_token),
            cache_price_pusd(m.cache_write_cost_per_token), price_pusd(m.output_cost_per_token))
        quality = {a.model: a.projected_quality, **{f.model: f.projected_quality for f in a.fallbacks}}
        c = a.cascade
        if c is not None:
            missing = [s.model for s in c.stages if s.model not in models]
            if missing:
                raise InputError(f"assignments[{seq}] ({a.task_id}): cascade stage model {missing[0]!r} is not "
                                 f"among the plan's models")
            projected_pusd = to_pusd(a.projected_cost_usd)  # the expectation over the decision
            # the projected quality of the model that serves it: q(first | accept), q(second | reject)
            quality = {c.first: c.quality_accept, c.second: c.quality_reject}
        yield (a.task_id, seq, a.type, a.priority, a.model, "pending", a.max_tokens, a.max_latency_s,
               a.projected_input_tokens, a.projected_output_tokens, projected_pusd,
               a.projected_latency_s, None, None if a.check is None else check_to_json(a.check),
               json.dumps(quality), messages_text(a.messages), a.prefix_group,
               a.projected_cached_tokens if a.prefix_group else None, None if c is None else c.label,
               None if c is None else c.p_accept, None if c is None else a.projected_quality,
               None if c is None else json.dumps(c.model_dump(mode="json", exclude={"stages"})
                                                 | {"first": c.first, "second": c.second, "stages": len(c.stages)}))
        seq += 1
    for q in plan.queued:
        yield (q.task_id, seq, q.type, q.priority, None, "queued", q.max_tokens, None,
               None, None, None, None, f"plan: {q.reason}", None if q.check is None else check_to_json(q.check),
               None, messages_text(q.messages), None, None, None, None, None, None)
        seq += 1


def _choose_budget(options: RunOptions, previous: dict[str, str], plan: Plan) -> float | None:
    """--budget wins; a resumed run keeps its budget; a new run takes the plan's limit."""
    if options.unlimited:
        return None
    if options.budget_usd is not None:
        return options.budget_usd
    if previous:
        return float(previous["budget_usd"]) if previous.get("budget_usd") else None
    return plan.limits.budget_usd


def _replace(options: RunOptions, **changes: object) -> RunOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]
