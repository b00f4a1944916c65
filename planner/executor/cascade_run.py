"""Running a task planned as a cascade: stage one, the verifier, the decision, the escalation.

    reserve the worst case of every stage not yet done (one hold, before stage one)
    -> stage one, with the witnesses or extra samples beside it (agree, self_consistency)
    -> the judge's call on the first answer (judge)
    -> the verifier's decision (python_tests runs the sandbox off the event loop)
    -> accepted: the first answer is the task's | rejected: the second model's
    -> release what the hold did not use; grade the kept answer when the task has a check

Every call is a reserved, recorded call (:mod:`planner.executor.recorded`); each stage's
answer is stored in the ledger with the attempt that paid for it (one transaction), so a run
killed mid-cascade resumes from the stages it has and pays for none twice. A stage that
fails after the run's retries counts as a rejection (no answer to verify, or a verifier that
could not answer): the cascade escalates; if the escalation fails too, the first answer (when
there is one) is kept, marked unverified. With no answer at all the task goes on to the plan's
fallbacks, as a single-model task does (attempts of purpose ``fallback``).
"""

from __future__ import annotations

import asyncio
import math
import random
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.executor.caller import CallRequest
from planner.executor.grading import CHARS_PER_TOKEN, messages_text
from planner.executor.ledger import StageAnswer
from planner.executor.recorded import Hold, worst_pusd
from planner.money import to_usd
from planner.plan import Assignment, CascadeStage
from planner.verifiers import Decision, Verifier, decide, judge_verify_messages, parse_verifier

if TYPE_CHECKING:
    from planner.executor.engine import Engine

#: sampling temperature of the extra samples self_consistency asks for (the first answer is
#: the model's default); without it a model may answer the same prompt the same way every time
SAMPLE_TEMPERATURE = 0.7


@dataclass
class StageResult:
    status: str  # ok, failed, no_budget, stopped
    answer: StageAnswer | None = None
    error: str = ""

    @property
    def output(self) -> str | None:
        return None if self.answer is None else self.answer.output


@dataclass
class CascadeRunner:
    """Runs the cascade tasks of one run with the engine's ledger, guard, calls and grading."""

    engine: Engine
    #: where python_tests verifiers run their sandbox when the engine has no grading (a Ray
    #: worker's: the coordinator grades); else the grading's pool
    sandbox: Executor | None = None

    async def run(self, a: Assignment, attempts: int, cost_pusd: int) -> str:
        e = self.engine
        spec = a.cascade
        assert spec is not None and e.calls is not None
        v = parse_verifier(spec.verifier)
        prompt = messages_text(a.messages)
        gave_up = e.ledger.cascade_fell_back(a.task_id)
        if gave_up is not None:  # a resumed run: the stages gave up and the fallbacks had begun
            return await self._fall_back(a, None, _State(attempts, cost_pusd), gave_up)
        stored = e.ledger.cascade_stages(a.task_id)  # stage index -> its answer (a resumed run)
        shares = {i: self._worst(a, v, i, s, prompt) for i, s in enumerate(spec.stages) if i not in stored}
        worst = sum(shares.values())
        hold = await Hold.acquire(e.budget, shares)
        if hold is None:
            remaining = e.budget.remaining_pusd() or 0
            return e._finish(a.task_id, "queued", None, attempts, cost_pusd,
                             reason=f"budget: ${to_usd(remaining):.6f} left cannot cover the cascade's worst "
                                    f"case ${to_usd(worst):.6f} (every stage at max_tokens)")
        state = _State(attempts, cost_pusd)
        try:
            return await self._run(a, v, prompt, stored, hold, state)
        finally:
            hold.release()

    async def _run(self, a: Assignment, v: Verifier, prompt: str, stored: dict[int, StageAnswer], hold: Hold,
                   state: _State) -> str:
        e = self.engine
        spec = a.cascade
        assert spec is not None
        last = len(spec.stages) - 1
        beside = [i for i in range(1, last) if v.kind in ("agree", "self_consistency")]
        todo = [i for i in (0, *beside) if i not in stored]
        results = await asyncio.gather(*(self._stage(a, i, a.messages, hold, state) for i in todo))
        if any(r.status == "stopped" for r in results):
            return "stopped"  # the stages answered so far are in the ledger for --resume
        answers = dict(stored)
        answers.update({i: r.answer for i, r in zip(todo, results, strict=True) if r.answer is not None})
        errors = {i: r.error for i, r in zip(todo, results, strict=True)}
        done = {i: x.output for i, x in answers.items()}
        first = done.get(0)
        replies = [done.get(i) for i in beside]
        if first is None:
            decision = Decision(False, f"stage one failed: {errors.get(0) or 'no answer'}")
        elif v.kind == "judge":
            reply = done.get(1)
            if reply is None:
                r = await self._stage(a, 1, judge_verify_messages(v, prompt, first), hold, state)
                if r.status == "stopped":
                    return "stopped"
                reply = r.output
            decision = (decide(v, first, [reply]) if reply is not None
                        else Decision(False, "the judge could not be asked; escalated"))
        elif any(r is None for r in replies):
            decision = Decision(False, "a verifier call failed; escalated")
        else:
            decision = await self._decide(a, v, first, [r or "" for r in replies], prompt)
        e.ledger.record_decision(a.task_id, decision.accepted, e.redactor.clean(decision.reason) or "")
        if decision.accepted:
            return await self._finish(a, 0, answers[0], state, hold)
        error = ""
        if last not in answers:
            r = await self._stage(a, last, a.messages, hold, state)
            if r.status == "stopped":
                return "stopped"
            if r.answer is not None:
                answers[last] = r.answer
            error = r.error
        if last in answers:
            return await self._finish(a, last, answers[last], state, hold)
        if 0 in answers:
            return await self._finish(a, 0, answers[0], state, hold,
                                      reason=f"escalation failed ({error}): stage one's answer kept, unverified")
        why = e.redactor.clean(f"every stage of the cascade failed ({decision.reason}; escalation: "
                               f"{error or 'no answer'})") or ""
        e.ledger.record_decision(a.task_id, False, why)  # what a resumed run reads back
        return await self._fall_back(a, hold, state, why)

    async def _fall_back(self, a: Assignment, hold: Hold | None, state: _State, why: str) -> str:
        """Every stage failed with no answer at all: the plan's fallbacks for the task, as a
        single-model task falls back (reserved as usual, each call an attempt of purpose
        ``fallback``), skipping the cascade's first and second models (each was just tried with
        the run's retries). The cascade's hold is released first. A resumed run whose ledger
        holds a fallback attempt of the task comes straight here."""
        e = self.engine
        spec = a.cascade
        assert spec is not None
        if hold is not None:
            hold.release()
        chain = e.chain_of(a, frozenset({spec.first, spec.second}))
        if not chain:
            return e._finish(a.task_id, "failed", spec.second, state.attempts, state.cost_pusd,
                             reason=f"{why}; the plan has no other fallback for the task")
        return await e.run_chain(a, chain, state.attempts, state.cost_pusd, purpose="fallback",
                                 done_reason=lambda model: f"{why}; answered by the plan's fallback {model}",
                                 failed_prefix=f"{why}, then the plan's fallbacks: ")

    async def _decide(self, a: Assignment, v: Verifier, first: str, replies: list[str], prompt: str) -> Decision:
        """The verifier's decision (``python_tests`` runs the sandbox off the event loop). A
        verifier that cannot decide (a plan edited so the task's check no longer holds the
        schema or tests it needs) rejects: the cascade escalates, the run goes on."""
        e = self.engine
        try:
            if v.kind == "python_tests":
                return await asyncio.get_running_loop().run_in_executor(
                    e.grading._sandbox_pool() if e.grading is not None else self.sandbox,
                    lambda: decide(v, first, replies, check=a.check, prompt=prompt))
            return decide(v, first, replies, check=a.check, prompt=prompt)
        except Exception as exc:  # a verifier bug must not lose the answers or stop the run
            return Decision(False, f"the verifier could not decide ({type(exc).__name__}: {exc}); escalated")

    async def _finish(self, a: Assignment, idx: int, answer: StageAnswer, state: _State, hold: Hold,
                      reason: str | None = None) -> str:
        """The task done with stage ``idx``'s answer (its tokens and latency), then graded. The
        hold is released first: a judge grading the answer reserves its own call, and must not
        wait on what this cascade no longer needs."""
        e = self.engine
        assert a.cascade is not None
        model = a.cascade.stages[idx].model
        output = answer.output
        result = e._finish(a.task_id, "done", model, state.attempts, state.cost_pusd, answer.input_tokens,
                           answer.output_tokens, answer.latency_s, reason=reason, output=output)
        hold.release()
        if e.grading is not None and a.check is not None:
            await e.grading.grade(a.task_id, a.check, messages_text(a.messages), output, model)
        return result

    # -- one stage ---------------------------------------------------------------------------
    async def _stage(self, a: Assignment, idx: int, messages: list[dict[str, Any]], hold: Hold,
                     state: _State) -> StageResult:
        """One stage's call with the run's retries; its answer stored with the paying attempt."""
        e = self.engine
        assert a.cascade is not None and e.calls is not None
        st = a.cascade.stages[idx]
        model = e.models[st.model]
        purpose = {"first": "answer", "verify": "verify", "second": "escalate"}[st.role]
        sample = st.role == "verify" and st.model == a.cascade.first
        judge = st.role == "verify" and parse_verifier(a.cascade.verifier).kind == "judge"
        in_tok, reserve = self._input_tokens(st, messages, judge)
        rng = random.Random(f"{e.seed}|{a.task_id}|{idx}|cascade-backoff")
        timeout_s = e._timeout(a)[0]
        retries, error = 0, "no call made"
        while True:
            if e._stopping():
                return StageResult("stopped")
            state.attempts += 1
            out = await e.calls.call(model, CallRequest(
                a.task_id, state.attempts, messages, st.max_tokens, in_tok, st.projected_output_tokens, timeout_s,
                purpose=purpose, graded_model=a.cascade.first if judge else None, stage=idx,
                temperature=SAMPLE_TEMPERATURE if sample else None), reserve, hold=hold, stage=idx)
            if out.status in ("no_budget", "stopped"):
                state.attempts -= 1  # never sent
                return StageResult(out.status, error=f"budget: cannot cover {st.model}" if out.status == "no_budget"
                                   else "")
            state.cost_pusd += out.cost_pusd
            if out.status == "ok" and out.result is not None:
                res = out.result
                text = e.redactor.clean(res.text) or ""
                e.ledger.record_stage(a.task_id, idx, st.model, text, res.input_tokens, res.output_tokens,
                                      res.latency_s)
                e.ledger.flush_soon()
                return StageResult("ok", StageAnswer(text, res.input_tokens, res.output_tokens, res.latency_s))
            assert out.failure is not None
            error = out.error
            if out.failure.kind == "permanent" or retries >= e.policy.max_retries:
                return StageResult("failed", error=error)
            backoff = min(e.policy.max_backoff_s, e.policy.base_s * 2**retries) * rng.uniform(0.75, 1.25)
            await e._pause(max(backoff, out.failure.retry_after_s or 0.0))
            retries += 1

    def _input_tokens(self, st: CascadeStage, messages: list[dict[str, Any]], judge: bool) -> tuple[int, int]:
        """(input tokens the simulator bills, input tokens reserved) for one stage's call."""
        e = self.engine
        if judge:
            if e.simulated:
                n = math.ceil(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + 16
                return n, n
            from planner.executor.engine import LIVE_INPUT_EXTRA_TOKENS, LIVE_INPUT_MARGIN
            from planner.tokens import count

            n = count(e.models[st.model].litellm_model, messages)
            return n, math.ceil(n * LIVE_INPUT_MARGIN) + LIVE_INPUT_EXTRA_TOKENS
        return st.projected_input_tokens, self._reserve(st.projected_input_tokens)

    def _reserve(self, tokens: int) -> int:
        from planner.executor.engine import LIVE_INPUT_EXTRA_TOKENS, LIVE_INPUT_MARGIN

        return tokens if self.engine.simulated else math.ceil(tokens * LIVE_INPUT_MARGIN) + LIVE_INPUT_EXTRA_TOKENS

    def _worst(self, a: Assignment, v: Verifier, idx: int, st: CascadeStage, prompt: str) -> int:
        """The worst case of one stage, reserved before stage one. A judge's prompt holds the
        first answer, at most the first stage's max_tokens long."""
        e = self.engine
        assert a.cascade is not None and e.calls is not None
        model = e.models[st.model]
        if st.role == "verify" and v.kind == "judge":
            empty = judge_verify_messages(v, prompt, "")
            answer = a.cascade.stages[0].max_tokens
            if e.simulated:  # the simulator bills the prompt's characters / 3.5; an answer of n tokens
                chars = sum(len(m["content"]) for m in empty)  # is at most ~4 n characters
                tokens = math.ceil((chars + 4 * answer) / CHARS_PER_TOKEN) + 16
            else:
                _, tokens = self._input_tokens(st, empty, True)
                tokens += self._reserve(answer)
            return worst_pusd(model, tokens, st.max_tokens)
        return worst_pusd(model, self._reserve(st.projected_input_tokens), st.max_tokens)


@dataclass
class _State:
    """What one cascade task has used so far (attempts numbered across its stages)."""

    attempts: int
    cost_pusd: int
