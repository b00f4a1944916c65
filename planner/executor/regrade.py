"""``routeplan grade DIR``: grade (again) the answers a run stored, without asking the models again.

Every check but ``judge`` is free, so those are always regraded (after a check was added or
fixed with ``--tasks FILE``, the new one is stored and used). A ``judge`` grade costs a call:
it is made only for an answer with no score yet or whose judge check changed; a graded
answer is never paid for again. Judge calls are simulated unless ``live`` (the simulated
judge agrees with the plan's projected quality, as in a simulated run), reserved against
the run's budget and written to its ledger like any call; an interrupted ``grade`` resumes
with the next one (its in-flight judge call counted at its reservation).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.checks.schema import check_to_json, parse_check
from planner.errors import InputError
from planner.plan import ModelSnapshot


@dataclass
class GradeResult:
    """What ``grade`` did; every score is in the ledger and the rewritten report."""

    out_dir: Path
    simulated: bool
    to_grade: int = 0     # answers this invocation set out to grade
    graded: int = 0
    passed: int = 0
    errors: int = 0       # could not be graded (the judge failed or the budget could not cover it)
    kept: int = 0         # judge grades kept (check unchanged: never paid for twice)
    unanswered: int = 0   # tasks with a check but no answer (failed, queued or never run)
    updated_checks: int = 0
    ignored_tasks: int = 0  # tasks of --tasks that are not in this run
    judge_cost_usd: float = 0.0

    @property
    def failed_check(self) -> int:
        return self.graded - self.passed


def grade_run(out_dir: str | Path, *, tasks_file: str | Path | None = None, live: bool = False,
              budget_usd: float | None = None, catalog: str | Path | None = None, concurrency: int = 8,
              seed: int | None = None) -> GradeResult:
    """Grade the stored answers of the run in ``out_dir``; rewrites its report."""
    return asyncio.run(_grade_run(Path(out_dir), tasks_file, live, budget_usd, catalog, concurrency, seed))


async def _grade_run(out: Path, tasks_file: str | Path | None, live: bool, budget_usd: float | None,
                     catalog: str | Path | None, concurrency: int, seed: int | None) -> GradeResult:
    from planner.executor.ledger import LEDGER_NAME, Ledger
    from planner.executor.outdir import read_meta
    from planner.money import budget_pusd
    from planner.plan import check_budget

    if concurrency < 1:
        raise InputError(f"--concurrency: expected >= 1, got {concurrency}")
    if budget_usd is not None:
        check_budget(budget_usd)  # the same bounds as every --budget
    path = out / LEDGER_NAME
    if not path.exists():
        raise InputError(f"{out}: no run ledger ({LEDGER_NAME}) here")
    meta = read_meta(out)
    if not meta:
        raise InputError(f"{path}: not a routeplan run ledger, or its setup never finished")
    new_checks = _checks_from_file(tasks_file) if tasks_file is not None else {}
    ledger = Ledger(path, durable=live)
    try:
        ledger.recover()  # a killed run or grade: its in-flight calls count at their reservation
        rows = ledger.tasks_for_grading()
        known = {r[0] for r in rows}
        result = GradeResult(out, simulated=not live)
        if new_checks:
            result.ignored_tasks = len(set(new_checks) - known)
            if result.ignored_tasks == len(new_checks):
                raise InputError(f"{tasks_file}: none of its tasks with a check is in the run in {out}")
        models = _stored_models(meta)
        work: list[tuple[str, Any, str, str, str]] = []
        expect: dict[str, tuple[Any, dict[str, float]]] = {}
        for task_id, status, model, output, check_json, chain_json, prompt, score, grader in rows:
            check = new_checks.get(task_id)
            changed = False
            if check is not None:
                check = _resolve_judge(task_id, check, models, catalog)
                text = check_to_json(check)
                if text != check_json:
                    changed = True
                    result.updated_checks += 1
                    ledger.set_check(task_id, text)
            elif check_json is not None:
                check = _resolve_judge(task_id, parse_check(check_json), models, catalog)
            if check is None:
                continue
            if status != "done":
                result.unanswered += 1
                continue
            if check.kind == "judge" and score is not None and grader == "judge" and not changed:
                result.kept += 1
                continue
            work.append((task_id, check, prompt or "", output, model))
            expect[task_id] = (check, json.loads(chain_json) if chain_json else {})
        ledger.flush()
        result.to_grade = len(work)
        if work:
            await _grade_all(ledger, work, expect, models, meta, live, budget_usd, budget_pusd,
                             concurrency, seed, result)
    finally:
        ledger.close()
    from planner.executor.run_report import write_run_report

    write_run_report(out)
    return result


async def _grade_all(ledger: Any, work: list[tuple[str, Any, str, str, str]],
                     expect: dict[str, tuple[Any, dict[str, float]]], models: dict[str, ModelSnapshot],
                     meta: dict[str, str], live: bool, budget_usd: float | None, budget_pusd: Any,
                     concurrency: int, seed: int | None, result: GradeResult) -> None:
    from planner.executor.budget_guard import BudgetGuard
    from planner.executor.caller import Caller
    from planner.executor.clock import Clock
    from planner.executor.grading import Grading
    from planner.executor.limits import ModelLimiter
    from planner.executor.options import RetryPolicy
    from planner.executor.providers import check_environment, secrets_of
    from planner.executor.redact import Redactor
    from planner.money import to_usd

    judges = sorted({c.model for _, c, *_ in work if c.kind == "judge"})
    judge_models = [models[name] for name in judges]
    if live and judge_models:
        env = check_environment(judge_models)
        if not env.ready:
            raise InputError(f"--live: provider keys not set for the judge: {env.describe()}")
    if budget_usd is None and meta.get("budget_usd"):
        budget_usd = float(meta["budget_usd"])
    guard = BudgetGuard(budget_pusd(budget_usd), spent_pusd=ledger.spent_pusd())
    seed = int(meta.get("seed") or 0) if seed is None else seed
    clock = Clock(0.0 if not live else 1.0)
    run_id = uuid.uuid4().hex
    if not live:
        from planner.executor.simulator import SimConfig, register_run

        register_run(run_id, SimConfig(models, seed, 0.0, clock, expect))
    grading = Grading(ledger=ledger, budget=guard,
                      limiters={m.name: ModelLimiter(clock, m.concurrency, m.rpm, m.tpm) for m in judge_models},
                      caller=Caller(not live, run_id), clock=clock, policy=RetryPolicy(), models=models,
                      simulated=not live, redactor=Redactor(secrets_of(judge_models)), seed=seed)
    queue = iter(work)

    async def worker() -> None:
        for task_id, check, prompt, output, model in queue:
            await grading.grade(task_id, check, prompt, output, model)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(work)))))
        ledger.flush()
    finally:
        grading.close()
        if not live:
            from planner.executor.simulator import unregister_run

            unregister_run(run_id)
    result.graded, result.passed = grading.counts.graded, grading.counts.passed
    result.errors = grading.counts.errors
    result.judge_cost_usd = to_usd(grading.counts.judge_cost_pusd)


def _checks_from_file(tasks_file: str | Path) -> dict[str, Any]:
    from planner.tasks import load_tasks

    tasks = load_tasks(tasks_file)
    checks = {t.id: t.check for t in tasks if t.check is not None}
    if not checks:
        raise InputError("no task in the file carries a check (a check on a task, or defaults.check / "
                         "defaults.checks)", file=str(tasks_file))
    return checks


def _stored_models(meta: dict[str, str]) -> dict[str, ModelSnapshot]:
    raw = meta.get("models")
    if not raw:
        return {}
    return {name: ModelSnapshot.model_validate(m) for name, m in json.loads(raw).items()}


_CATALOGS: dict[str, Any] = {}


def _resolve_judge(task_id: str, check: Any, models: dict[str, ModelSnapshot],
                   catalog: str | Path | None) -> Any:
    """A judge check naming a model the run has, or one the catalog has (snapshotted into
    ``models``); other checks as they are."""
    if check.kind != "judge" or check.model in models:
        return check
    from planner.catalog import load_catalog

    key = str(catalog)
    if key not in _CATALOGS:
        _CATALOGS[key] = load_catalog(catalog)
    try:
        offering = _CATALOGS[key].resolve(check.model)
    except InputError as exc:
        raise InputError(f"task {task_id}: check.model: {exc}") from None
    if offering.name not in models:
        models[offering.name] = offering.snapshot()
    return check.model_copy(update={"model": offering.name})
