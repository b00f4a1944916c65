"""The built-in simulator: a litellm custom provider, so simulated runs take the same
``litellm.acompletion`` path as live ones.

It answers from the plan's model snapshot: output tokens drift around the projection
(lognormal, sigma 0.35, capped at ``max_tokens``), latency is ``ttft + tokens / speed`` with
lognormal noise on both and an occasional slow tail (3x, 2 % of calls). Faults are injected
at ``fail_rate`` per attempt: 429 with Retry-After (40 %), 500/503 (30 %), timeouts (15 %)
and malformed responses (15 %). Every draw is seeded by (seed, task, attempt, model), so a
run is reproducible whatever the order calls complete in. Costs use the real model's prices.

Models are addressed as ``routeplan-sim/<offering name>``; the run's settings travel in the
call's ``metadata["routeplan"]`` and are looked up in a per-run registry.

Prompt caching is simulated per (prefix group, model), as a provider does it: a call finds
the group's prefix cached when an earlier call of the group on that model has *answered*
within the model's cache lifetime (each hit refreshes it; at ``--time-scale 0`` the virtual
clock measures no elapsed time, so a written cache stays), except for a seeded miss
(``CACHE_MISS_P``: providers route some calls to servers without the prefix). A hit reports
the prefix as ``cached_tokens`` (and ``cache_read_input_tokens``); a miss writes it, reported
as ``cache_creation_input_tokens`` for models that bill writes. Calls sent together before the
first answer all miss, which is why the executor warms a group with one call first.

Answers to checked tasks take the form the check reads (``planner.checks.simulate``): right
with probability equal to the plan's projected quality for that task and model, drawn once
per (seed, task, model), so a retry or a resumed run gets the same verdict. The simulated
judge scores 10/10 a right answer and 0/10 a wrong one: its mean agrees with the projection.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from planner.executor.caller import import_litellm

import_litellm()
import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from planner.executor.clock import Clock  # noqa: E402
from planner.executor.providers import SIM_PROVIDER  # noqa: E402
from planner.plan import ModelSnapshot  # noqa: E402

TOKENS_SIGMA = 0.35
TTFT_SIGMA = 0.3
SPEED_SIGMA = 0.2
SLOW_TAIL_P, SLOW_TAIL_X = 0.02, 3.0
CACHE_MISS_P = 0.03
FAULT_MIX = (("rate_limit", 0.40), ("server_error", 0.30), ("timeout", 0.15), ("malformed", 0.15))
_WORDS = ["the", "plan", "routes", "each", "task", "to", "the", "model", "that", "meets", "its", "limits", "at", "the", "lowest", "cost", "while", "the", "executor", "keeps", "spend", "under", "budget", "and", "records", "every", "attempt"]


@dataclass
class SimConfig:
    models: dict[str, ModelSnapshot]
    seed: int
    fail_rate: float
    clock: Clock
    #: task id -> (its check, {model: projected quality}) for the tasks that carry a check
    expect: dict[str, tuple[Any, dict[str, float]]] = field(default_factory=dict)
    #: (prefix group, model) -> clock time its cached prefix was last written or read
    cache: dict[tuple[str, str], float] = field(default_factory=dict)
    #: task id -> its cascade (planner.executor.sim_cascade.CascadeSim) for tasks planned as one
    cascades: dict[str, Any] = field(default_factory=dict)

    def cache_lookup(self, snap: ModelSnapshot, group: str | None, prefix_tokens: int,
                     rng: random.Random) -> tuple[int, int]:
        """(tokens read from the cache, tokens written to it) for a call starting now."""
        if group is None or prefix_tokens <= 0 or snap.cache_read_cost_per_token is None:
            return 0, 0
        last = self.cache.get((group, snap.name))
        ttl = snap.cache_ttl_s or 300.0
        warm = last is not None and (self.clock.scale == 0 or self.clock.now() - last <= ttl)
        if warm and rng.random() >= CACHE_MISS_P:
            return prefix_tokens, 0
        return 0, prefix_tokens if snap.cache_write_cost_per_token is not None else 0

    def cache_answered(self, snap: ModelSnapshot, group: str | None, prefix_tokens: int) -> None:
        """A call of the group on ``snap`` answered: the prefix is (still) in the cache."""
        if group is not None and prefix_tokens > 0 and snap.cache_read_cost_per_token is not None:
            self.cache[(group, snap.name)] = self.clock.now()

    def is_right(self, task_id: str, model: str) -> bool:
        """Whether ``model``'s answer to ``task_id`` is right: P = the projected quality there
        (a cascade's stages: its joint outcome)."""
        if task_id in self.cascades:
            right = self.cascades[task_id].is_right(self.seed, model)
            if right is not None:
                return bool(right)
        _, quality = self.expect.get(task_id, (None, {}))
        q = quality.get(model, 0.5)
        return _rng(self.seed, task_id, model, "right").random() < q


_RUNS: dict[str, SimConfig] = {}


def register_run(run_id: str, config: SimConfig) -> None:
    """Make the simulator answer calls tagged with ``run_id``; installs the provider once."""
    _RUNS[run_id] = config
    if not any(item.get("provider") == SIM_PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map = [*litellm.custom_provider_map,
                                       {"provider": SIM_PROVIDER, "custom_handler": SimProvider()}]
        # litellm reads the map when a call is set up; make sure it is picked up
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def unregister_run(run_id: str) -> None:
    _RUNS.pop(run_id, None)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _lognormal(rng: random.Random, sigma: float) -> float:
    """Mean-one lognormal noise."""
    return rng.lognormvariate(-sigma * sigma / 2, sigma)


def draw_output_tokens(rng: random.Random, expected: float, max_tokens: int) -> int:
    return max(1, min(max_tokens, round(expected * _lognormal(rng, TOKENS_SIGMA))))


#: speed of a model the catalog has no latency data for (a typical hosted chat model)
UNKNOWN_TTFT_S, UNKNOWN_TOKENS_PER_S = 0.6, 60.0


def draw_latency_s(rng: random.Random, m: ModelSnapshot, output_tokens: int) -> float:
    base_ttft = UNKNOWN_TTFT_S if m.ttft_s is None else m.ttft_s
    base_speed = UNKNOWN_TOKENS_PER_S if m.output_tokens_per_s is None else m.output_tokens_per_s
    ttft = base_ttft * _lognormal(rng, TTFT_SIGMA)
    speed = max(base_speed, 1e-6) * _lognormal(rng, SPEED_SIGMA)
    latency = ttft + output_tokens / speed
    return latency * SLOW_TAIL_X if rng.random() < SLOW_TAIL_P else latency


def synthetic_text(model: str, task_id: str, output_tokens: int) -> str:
    """Plausible filler that says what it is; about 0.75 words per token, at most 80 words."""
    n_words = min(80, max(1, math.ceil(output_tokens * 0.75)))
    body = " ".join(_WORDS[i % len(_WORDS)] for i in range(n_words))
    more = f" [... {output_tokens} tokens in all]" if n_words < output_tokens * 0.75 else ""
    return f"[simulated answer from {model} for task {task_id}] {body}{more}"


def _status_error(kind: str, rng: random.Random, model: str) -> Exception:
    request = httpx.Request("POST", "http://routeplan-sim/v1/chat/completions")
    if kind == "rate_limit":
        retry_after_s = rng.randint(1, 10)
        response = httpx.Response(429, headers={"retry-after": str(retry_after_s)}, request=request)
        return litellm.RateLimitError(f"simulated 429: retry after {retry_after_s}s",
                                      llm_provider=SIM_PROVIDER, model=model, response=response)
    status = rng.choice((500, 503))
    response = httpx.Response(status, request=request)
    cls = litellm.InternalServerError if status == 500 else litellm.ServiceUnavailableError
    return cls(f"simulated {status}", llm_provider=SIM_PROVIDER, model=model, response=response)


@dataclass(frozen=True)
class SimAnswer:
    """One simulated completion; ``malformed`` = a 200 whose body has no usable answer."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    finish_reason: str
    malformed: bool = False
    cached_tokens: int = 0
    cache_write_tokens: int = 0


def answer_text(config: SimConfig, snap: ModelSnapshot, task_id: str, attempt: int, output_tokens: int,
                purpose: str = "answer", graded_model: str | None = None, stage: int | None = None) -> str:
    """The text of a simulated answer: a judge's verdict, a cascade stage's answer (drawn from
    the task's joint outcome), a checked task's answer in the form its check reads, or filler."""
    if stage is not None and task_id in config.cascades:
        return str(config.cascades[task_id].text(config.seed, stage))
    if purpose == "grade":
        right = config.is_right(task_id, graded_model or "")
        verdict = "meets the rubric" if right else "does not meet the rubric"
        return f"SCORE: {10 if right else 0}\nREASON: simulated judge: the answer {verdict}."
    expected = config.expect.get(task_id)
    if expected is not None:
        from planner.checks.simulate import answer_for

        right = config.is_right(task_id, snap.name)
        return answer_for(expected[0], right, _rng(config.seed, task_id, attempt, snap.name, "form"))
    return synthetic_text(snap.litellm_model, task_id, output_tokens)


async def answer(config: SimConfig, snap: ModelSnapshot, task_id: str, attempt: int, max_tokens: int,
                 timeout_s: float, expected_output_tokens: float, input_tokens: int,
                 purpose: str = "answer", graded_model: str | None = None,
                 prefix_group: str | None = None, prefix_tokens: int = 0, stage: int | None = None) -> SimAnswer:
    """Draw one call's outcome and wait its (scaled) latency; faults raise litellm's errors."""
    rng = _rng(config.seed, task_id, attempt, snap.name)
    prefix_tokens = min(prefix_tokens, input_tokens)
    cached, written = config.cache_lookup(snap, prefix_group, prefix_tokens,
                                          _rng(config.seed, task_id, attempt, snap.name, "cache"))
    fault = None
    if config.fail_rate > 0 and rng.random() < config.fail_rate:
        fault = rng.choices([k for k, _ in FAULT_MIX], weights=[w for _, w in FAULT_MIX])[0]
    if fault in ("rate_limit", "server_error"):
        await config.clock.sleep(min(0.05 + rng.random() * 0.2, timeout_s))
        raise _status_error(fault, rng, snap.name)

    output_tokens = draw_output_tokens(rng, expected_output_tokens, max_tokens)
    latency_s = math.inf if fault == "timeout" else draw_latency_s(rng, snap, output_tokens)
    if latency_s > timeout_s:
        await config.clock.sleep(timeout_s)
        raise litellm.Timeout(f"simulated timeout after {timeout_s:g}s", model=snap.name,
                              llm_provider=SIM_PROVIDER)
    await config.clock.sleep(latency_s)
    text = answer_text(config, snap, task_id, attempt, output_tokens, purpose, graded_model, stage)
    if fault != "malformed":
        config.cache_answered(snap, prefix_group, prefix_tokens)
    return SimAnswer(text, input_tokens, output_tokens,
                     latency_s, "length" if output_tokens >= max_tokens else "stop", fault == "malformed",
                     cached, written)


def lookup(meta: dict[str, Any], model: str) -> tuple[SimConfig, ModelSnapshot]:
    config = _RUNS.get(meta.get("run", ""))
    snap = config.models.get(model) if config else None
    if config is None or snap is None:
        raise litellm.BadRequestError(f"routeplan simulator: unknown run or model {model!r}",
                                      model=model, llm_provider=SIM_PROVIDER)
    return config, snap


class SimProvider(CustomLLM):
    """Answers ``acompletion`` for ``routeplan-sim/*`` models (the sync path is not used)."""

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,  # type: ignore[override]
                          model_response: Any, print_verbose: Any, encoding: Any, api_key: Any,
                          logging_obj: Any, optional_params: dict, acompletion: Any = None,
                          litellm_params: Any = None, logger_fn: Any = None, headers: Any = None,
                          timeout: Any = None, client: Any = None) -> Any:
        meta = ((litellm_params or {}).get("metadata") or {}).get("routeplan") or {}
        config, snap = lookup(meta, model)
        max_tokens = int(optional_params.get("max_tokens") or 256)
        result = await answer(
            config, snap, meta.get("task_id", "?"), meta.get("attempt", 0), max_tokens,
            float(timeout) if isinstance(timeout, (int, float)) else math.inf,
            float(meta.get("expected_output_tokens", max_tokens / 2)), int(meta.get("input_tokens") or 0),
            meta.get("purpose") or "answer", meta.get("graded_model"), meta.get("prefix_group"),
            int(meta.get("prefix_tokens") or 0), meta.get("stage"))
        if result.malformed:
            model_response.choices = []
            model_response.usage = None
            return model_response
        model_response.model = snap.litellm_model
        model_response.choices[0].message.content = result.text
        model_response.choices[0].finish_reason = result.finish_reason
        cache_usage: dict[str, Any] = {}
        if result.cached_tokens or result.cache_write_tokens:  # as providers report it, through litellm
            cache_usage = {"prompt_tokens_details": {"cached_tokens": result.cached_tokens},
                           "cache_read_input_tokens": result.cached_tokens,
                           "cache_creation_input_tokens": result.cache_write_tokens}
        model_response.usage = litellm.Usage(prompt_tokens=result.input_tokens,
                                             completion_tokens=result.output_tokens,
                                             total_tokens=result.input_tokens + result.output_tokens,
                                             **cache_usage)
        # priced here (the real model's prices) so litellm need not look the model up
        read = snap.cache_read_cost_per_token or snap.input_cost_per_token
        write = max(snap.cache_write_cost_per_token or 0.0, snap.input_cost_per_token)
        plain = result.input_tokens - result.cached_tokens - result.cache_write_tokens
        model_response._hidden_params["response_cost"] = (
            plain * snap.input_cost_per_token + result.cached_tokens * read + result.cache_write_tokens * write
            + result.output_tokens * snap.output_cost_per_token)
        model_response._hidden_params["routeplan_latency_s"] = result.latency_s
        return model_response
