"""The one I/O boundary of the executor: a single ``litellm.acompletion`` call.

Live and simulated calls differ only in the model string and routing keywords; everything
else (retries, budget, ledger) is pure logic around ``Caller.call``. litellm's own retries
are switched off so the executor's policy, budget guard and ledger see every attempt.
"""

from __future__ import annotations

import os
import time
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


@dataclass(frozen=True)
class CallResult:
    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str | None


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
            route: dict[str, Any] = {"model": f"{SIM_PROVIDER}/{model.name}"}
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
                                    "expected_output_tokens": req.expected_output_tokens}},
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
    return CallResult(text, prompt, completion, latency_s, getattr(choices[0], "finish_reason", None))
