"""The one I/O boundary of the executor: a single ``litellm.acompletion`` call.

Live and simulated calls differ only in the model string and routing keywords; everything
else (retries, budget, ledger) is pure logic around ``Caller.call``. litellm's own retries
are switched off so the executor's policy, budget guard and ledger see every attempt.

Simulated calls name their provider (``custom_llm_provider``) instead of leaving litellm to
parse it from the model string: the same route, ~0.1 ms less CPU per call.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from planner.executor.classify import MalformedResponse
from planner.executor.providers import SIM_PROVIDER, live_call_kwargs
from planner.plan import ModelSnapshot


@dataclass(frozen=True)
class CallRequest:
    task_id: str
    attempt: int
    messages: list[dict[str, Any]]
    max_tokens: int
    input_tokens: int
    expected_output_tokens: float
    timeout_s: float
    purpose: str = "answer"  # or "grade": a judge's call
    graded_model: str | None = None  # for a judge's call: the model whose answer it grades
    prefix_group: str | None = None  # the task's prompt-prefix group (the simulator's cache key)
    prefix_tokens: int = 0  # tokens of that prefix, as the plan projected them
    stage: int | None = None  # a cascade's stage (0 = first, then the verifier's calls, last = second)
    temperature: float | None = None  # None: the provider's default


@dataclass(frozen=True)
class CallResult:
    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str | None
    cached_tokens: int = 0  # prompt tokens the provider read from its cache (part of input_tokens)
    cache_write_tokens: int = 0  # prompt tokens it wrote to its cache (part of input_tokens)


class Caller:
    """Sends one request to one model. ``run_id`` ties simulated calls to their settings."""

    def __init__(self, simulated: bool, run_id: str) -> None:
        import_litellm()
        import litellm

        litellm.suppress_debug_info = True
        self._acompletion = litellm.acompletion
        self.simulated = simulated
        self.run_id = run_id

    async def call(self, model: ModelSnapshot, req: CallRequest) -> CallResult:
        if self.simulated:
            route: dict[str, Any] = {"model": f"{SIM_PROVIDER}/{model.name}", "custom_llm_provider": SIM_PROVIDER}
        else:
            route = live_call_kwargs(model)
        t0 = time.monotonic()
        response = await self._acompletion(
            messages=req.messages,
            max_tokens=req.max_tokens,
            timeout=req.timeout_s,
            num_retries=0,
            max_retries=0,
            metadata={"routeplan": {"run": self.run_id, "task_id": req.task_id, "attempt": req.attempt,
                                    "input_tokens": req.input_tokens,
                                    "expected_output_tokens": req.expected_output_tokens,
                                    "purpose": req.purpose, "graded_model": req.graded_model,
                                    "prefix_group": req.prefix_group, "prefix_tokens": req.prefix_tokens,
                                    "stage": req.stage}},
            **({} if req.temperature is None else {"temperature": req.temperature}),
            **route,
        )
        wall_s = time.monotonic() - t0
        return parse_response(response, wall_s)


def import_litellm() -> None:
    """Import litellm without its start-up fetch of the remote price map (prices come from the
    plan's snapshot; the fetch only costs seconds or fails offline). A user's own setting wins."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True


class InlineSetupExecutor(ThreadPoolExecutor):
    """An event loop's default executor that runs each job at once in the loop's own thread.

    ``litellm.acompletion`` hands its synchronous set-up step (``litellm.completion``, which
    only builds the request and returns a coroutine) to ``loop.run_in_executor(None, ...)``.
    In a simulated run that thread hop buys nothing and costs: the worker threads fight the
    event loop for the GIL (every ledger commit then waits up to the 5 ms switch interval).
    Simulated runs only: live set-up may block (credential refresh, tokenizer download, DNS),
    and there a thread keeps the loop responsive. Subclasses ThreadPoolExecutor because asyncio
    accepts nothing else as a default executor; it never starts a thread.
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:  # type: ignore[override]
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting caller
            future.set_exception(exc)
        return future


def parse_response(response: Any, wall_s: float) -> CallResult:
    """Text, usage and latency from a chat completion; MalformedResponse when any is missing."""
    choices = getattr(response, "choices", None)
    usage = getattr(response, "usage", None)
    if not choices or usage is None:
        raise MalformedResponse("response without choices or usage")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not isinstance(text, str) or not isinstance(prompt, int) or not isinstance(completion, int):
        raise MalformedResponse("response without text or token counts")
    hidden = getattr(response, "_hidden_params", None) or {}
    latency_s = float(hidden.get("routeplan_latency_s", wall_s))
    from planner.executor.prefix import usage_cache_tokens

    read, written = usage_cache_tokens(usage)
    return CallResult(text, prompt, completion, latency_s, getattr(choices[0], "finish_reason", None),
                      min(read, prompt), min(written, max(prompt - read, 0)))
