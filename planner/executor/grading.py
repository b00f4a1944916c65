"""Grading answers as they arrive: the task's check, then its score in the ledger.

Every kind but ``judge`` is a pure function of the stored answer (``python_tests`` runs its
sandbox in a small thread pool, off the event loop). A ``judge`` is a model call like an
answer's: its worst case is reserved by the budget guard, the attempt is committed to the
ledger (purpose ``grade``) before it is sent, it is retried on transient errors with the run's
policy, billed, and counted as grading cost (the run's reserved, recorded call,
``planner.executor.recorded``, shared with answers and cascade stages). A judge the budget cannot cover leaves the task
ungraded with the reason; ``--resume`` or ``routeplan grade`` tries again.

Grades are made on the answer as stored (secrets redacted), so grading during the run and
``routeplan grade`` later agree.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from planner.checks.graders import Grade, grade, judge_messages, parse_judge
from planner.checks.schema import JudgeCheck
from planner.executor.budget_guard import BudgetGuard
from planner.executor.caller import Caller, CallRequest
from planner.executor.clock import Clock
from planner.executor.ledger import Ledger
from planner.executor.limits import ModelLimiter
from planner.executor.options import RetryPolicy
from planner.executor.recorded import RecordedCalls
from planner.executor.redact import Redactor
from planner.money import to_usd
from planner.plan import ModelSnapshot

JUDGE_EXPECTED_OUTPUT_TOKENS = 40
CHARS_PER_TOKEN = 3.5  # a simulated judge prompt's input tokens (a live one is counted)


def messages_text(messages: list[dict[str, Any]]) -> str:
    """A task's messages as one text (what the judge is shown, and the outcome's prompt)."""
    parts = []
    for m in messages:
        c = m.get("content")
        parts.append(c if isinstance(c, str) else json.dumps(c, sort_keys=True))
    return "\n".join(parts)


@dataclass
class GradeCounts:
    graded: int = 0
    passed: int = 0
    errors: int = 0
    judge_cost_pusd: int = 0


@dataclass
class Grading:
    """Grades answers for one run (or one ``routeplan grade``); shares the run's guard,
    limiters, caller, clock and ledger."""

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
    counts: GradeCounts = field(default_factory=GradeCounts)
    stop: asyncio.Event | None = None  # set on Ctrl-C: no new judge call (the task stays ungraded)
    calls: RecordedCalls | None = None  # the run's reserved, recorded calls (made here when not given)
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        if self.calls is None:
            self.calls = RecordedCalls(self.ledger, self.budget, self.limiters, self.caller, self.redactor, self.stop)

    @property
    def inflight(self) -> int:
        """Calls committed and not yet answered (shared with the engine when it shares ``calls``)."""
        assert self.calls is not None
        return self.calls.inflight

    async def grade(self, task_id: str, check: Any, task_text: str, answer: str, model: str) -> Grade | None:
        """Grade one stored answer and record it; returns the grade (None = could not)."""
        if isinstance(check, JudgeCheck):
            result = await self._judge(task_id, check, task_text, answer, model)
        else:
            try:
                if check.kind == "python_tests":
                    result = await asyncio.get_running_loop().run_in_executor(self._sandbox_pool(), grade,
                                                                              check, answer)
                else:
                    result = grade(check, answer)
            except Exception as exc:  # a grader bug must not lose the answer or stop the run
                result = None
                self._record_failure(task_id, check.kind, f"grader error: {type(exc).__name__}: {exc}")
            if result is not None:
                self.ledger.record_grade(task_id, result.score, result.grader,
                                         self.redactor.clean(result.reason) or "")
        if result is not None:
            self.counts.graded += 1
            self.counts.passed += result.passed(check.pass_score)
        self.ledger.flush_soon()
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- internals ------------------------------------------------------------------------------
    def _sandbox_pool(self) -> ThreadPoolExecutor:
        # its own pool: a simulated run's default executor runs jobs inline (InlineSetupExecutor)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)),
                                            thread_name_prefix="routeplan-sandbox")
        return self._pool

    def _record_failure(self, task_id: str, grader: str, reason: str) -> None:
        self.counts.errors += 1
        self.ledger.record_grade(task_id, None, grader, self.redactor.clean(reason) or reason)

    async def _judge(self, task_id: str, check: JudgeCheck, task_text: str, answer: str,
                     answered_by: str) -> Grade | None:
        judge = self.models.get(check.model)
        if judge is None:
            self._record_failure(task_id, "judge", f"judge {check.model!r} is not among the run's models")
            return None
        assert self.calls is not None
        messages = judge_messages(check, task_text, answer)
        in_tok = self._judge_input_tokens(judge, messages)
        max_tokens = max(1, min(check.max_tokens, judge.max_output_tokens or check.max_tokens))
        n = self.ledger.grade_attempts(task_id)
        spent = self.ledger.grade_cost_pusd(task_id)
        rng = random.Random(f"{self.seed}|{task_id}|judge-backoff")
        retries = 0
        while True:
            if self.stop is not None and self.stop.is_set():
                self.ledger.set_grade_cost(task_id, spent)
                return None  # left ungraded: a resumed run grades it first
            out = await self.calls.call(judge, CallRequest(
                task_id, n + 1, messages, max_tokens, in_tok, JUDGE_EXPECTED_OUTPUT_TOKENS,
                self.policy.request_timeout_s, purpose="grade", graded_model=answered_by), in_tok,
                check_reply=lambda r: None if parse_judge(r.text) else f"{judge.name}: no 'SCORE: n' in the "
                                                                       f"judge's reply")
            if out.status == "no_budget":
                remaining = self.budget.remaining_pusd() or 0
                self._record_failure(task_id, "judge", f"budget: ${to_usd(remaining):.6f} left cannot cover "
                                                       f"the judge's worst case ${to_usd(out.worst_pusd):.6f}")
                self.ledger.set_grade_cost(task_id, spent)
                return None
            if out.status == "stopped":
                self.ledger.set_grade_cost(task_id, spent)
                return None
            n += 1
            spent += out.cost_pusd
            self.counts.judge_cost_pusd += out.cost_pusd
            parsed = parse_judge(out.result.text) if out.status == "ok" and out.result is not None else None
            if parsed is not None:
                self.ledger.record_grade(task_id, parsed.score, "judge",
                                         self.redactor.clean(parsed.reason) or "", spent)
                return parsed
            failure = out.failure
            assert failure is not None
            if failure.kind == "permanent" or retries >= self.policy.max_retries:
                self._record_failure(task_id, "judge", f"judge failed after {n} call(s): {out.error}")
                self.ledger.set_grade_cost(task_id, spent)
                return None
            backoff = min(self.policy.max_backoff_s, self.policy.base_s * 2**retries) * rng.uniform(0.75, 1.25)
            await self.clock.sleep(max(backoff, failure.retry_after_s or 0.0))
            retries += 1

    def _judge_input_tokens(self, judge: ModelSnapshot, messages: list[dict[str, str]]) -> int:
        """Tokens to reserve for the judge's prompt: counted with the judge's tokenizer plus
        the executor's live margin (a simulated judge bills what is reserved: an estimate)."""
        if self.simulated:
            return math.ceil(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 16
        from planner.executor.engine import LIVE_INPUT_EXTRA_TOKENS, LIVE_INPUT_MARGIN
        from planner.tokens import count

        return math.ceil(count(judge.litellm_model, messages) * LIVE_INPUT_MARGIN) + LIVE_INPUT_EXTRA_TOKENS

