"""The plan: the versioned contract between ``solve``, ``run``, ``sweep`` and the pipeline.

A plan is self-contained: it carries every task's messages and ``max_tokens`` and a
snapshot of the catalog entries it used (prices with their source, speed profile), so the
executor needs nothing else. Schema changes bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from planner.checks.schema import Check
from planner.errors import InputError

SCHEMA_VERSION = "1"
MAX_BUDGET_USD = 1e9  # larger budgets are typos or "no limit": leave the budget out instead


def check_budget(usd: float, option: str = "--budget") -> None:
    """A budget is a finite amount in [0, MAX_BUDGET_USD] (above it, leave the budget out)."""
    if not (math.isfinite(usd) and usd >= 0):
        raise InputError(f"{option}: expected a number >= 0 (USD), got {usd:g}")
    if usd > MAX_BUDGET_USD:
        raise InputError(f"{option}: ${usd:.3g} is above the ${MAX_BUDGET_USD:,.0f} this tool accepts; "
                         f"leave the budget out for no limit")


#: what `solve -o` writes besides plan.json: per-task tables a run cannot use
TABLE_SUFFIXES = (".csv", ".parquet")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Finite(_Model):
    """Parts the executor computes with (prices, tokens, limits): NaN/inf are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelSnapshot(_Finite):
    """A catalog offering as the plan used it. ``name`` is the offering id used in assignments
    (the litellm model id, with ``@batch`` appended for a batch offering)."""

    name: str
    litellm_model: str
    provider: str
    mode: Literal["realtime", "batch"] = "realtime"
    input_cost_per_token: float = Field(ge=0)
    output_cost_per_token: float = Field(ge=0)
    price_source: str
    ttft_s: float | None = Field(default=None, description="None: the catalog has no latency data for it")
    output_tokens_per_s: float | None = None
    verbosity: float = 1.0
    batch_window_s: float | None = None
    concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the env variable holding the key for api_base (never the key)")
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="sent with each call; ${VAR} is read from the environment at run time")
    cache_read_cost_per_token: float | None = Field(default=None, ge=0, description="USD per cached prompt token read")
    cache_write_cost_per_token: float | None = Field(
        default=None, ge=0, description="USD per prompt token written to the cache; None: the input price")
    cache_price_source: str | None = None
    cache_ttl_s: float | None = Field(default=None, gt=0, description="how long a written prefix stays readable")


class Fallback(_Finite):
    """Another feasible offering for the task, ranked by the plan's goal (best first)."""

    model: str
    projected_cost_usd: float = Field(ge=0)
    projected_latency_s: float = Field(ge=0)
    projected_quality: float


class CascadeStage(_Finite):
    """One call a cascade may make: ``first`` (stage one), ``verify`` (a witness, another
    sample of the first model, or a judge) or ``second`` (the escalation)."""

    role: Literal["first", "verify", "second"]
    model: str
    max_tokens: int = Field(gt=0)
    projected_input_tokens: int = Field(ge=0)
    projected_output_tokens: int = Field(ge=0)
    projected_cost_usd: float = Field(ge=0)
    worst_case_cost_usd: float = Field(ge=0)


class CascadeSpec(_Finite):
    """A task's cascade: ``first -> verifier -> second`` with what the plan expected of it."""

    label: str = Field(description="as tables print it: 'mixtral -> gpt-4 (agree: mixtral, yi-34b)'")
    category: str
    verifier: dict[str, Any] = Field(description="planner.verifiers fields: verifier (the kind), witnesses, "
                                     "samples, extractor, judge, threshold, rubric, schema")
    p_accept: float = Field(ge=0, le=1, description="projected probability that the verifier accepts")
    quality_accept: float = Field(ge=0, le=1)
    quality_reject: float = Field(ge=0, le=1)
    quality_first: float | None = Field(None, ge=0, le=1, description="the first model's own projected quality "
                                        "on the task (the simulator's rejections draw on it)")
    basis: str = Field(description="'joint outcomes' (fitted by calibrate) or 'independence'")
    worst_case_latency_s: float = Field(ge=0)
    stages: list[CascadeStage] = Field(min_length=2)

    @property
    def first(self) -> str:
        return self.stages[0].model

    @property
    def second(self) -> str:
        return self.stages[-1].model

    @property
    def verify_stages(self) -> list[CascadeStage]:
        return self.stages[1:-1]


class Assignment(_Finite):
    task_id: str
    model: str
    type: str
    messages: list[dict[str, Any]]
    max_tokens: int = Field(gt=0)
    priority: float = 1.0
    max_latency_s: float | None = None
    projected_input_tokens: int = Field(ge=0)
    projected_output_tokens: int = Field(ge=0)
    projected_cost_usd: float = Field(ge=0)
    projected_latency_s: float = Field(ge=0)
    projected_quality: float
    worst_case_cost_usd: float = Field(ge=0, description="input tokens + max_tokens at this model's prices")
    fallbacks: list[Fallback] = Field(default_factory=list)
    check: Check | None = Field(None, description="grades the answer; a judge's model is in models")
    prefix_group: str | None = Field(None, description="the task's prompt-prefix group")
    projected_cached_tokens: int = Field(0, ge=0, description="prefix tokens projected read from the cache")
    projected_cache_write_tokens: int = Field(0, ge=0, description="prefix tokens projected written (warm-up)")
    prefix_messages: int = Field(0, ge=0, description="leading messages the group shares (cache breakpoint)")
    cascade: CascadeSpec | None = Field(None, description="set when the task runs a cascade; model is its "
                                        "first stage and the projections are the cascade's expectations")

    @property
    def offering(self) -> str:
        """What the task runs on as tables print it: the model, or the cascade's label."""
        return self.model if self.cascade is None else self.cascade.label


class QueuedTask(_Finite):
    task_id: str
    type: str
    messages: list[dict[str, Any]]
    max_tokens: int = Field(gt=0)
    priority: float = 1.0
    reason: str
    check: Check | None = None


class PrefixGroupPlan(_Finite):
    """A prompt-prefix group on one model: send ``send_order[0]`` first (it writes the cache),
    then the rest within ``cache_ttl_s`` (they read it)."""

    group: str
    model: str
    cached: bool = Field(description="False: the model has no cache price, or the prefix is too short")
    n_tasks: int
    prefix_tokens: int
    prefix_source: str
    send_order: list[str]
    cache_read_cost_per_token: float | None = None
    cache_write_cost_per_token: float | None = None
    cache_price_source: str | None = None
    cache_ttl_s: float | None = None
    projected_cost_usd: float = Field(ge=0)
    projected_cost_without_cache_usd: float = Field(ge=0)
    projected_savings_usd: float


class Limits(_Finite):
    budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD)
    deadline_s: float | None = None
    max_latency_s: float | None = None
    min_quality: float | None = None
    avg_quality: float | None = None
    weights: dict[str, float] = Field(default_factory=lambda: {"cost": 0.4, "quality": 0.4, "speed": 0.2})
    allow_queue: bool = False
    share_caps: dict[str, float] = Field(default_factory=dict,
                                         description="model or offering name -> max share of the tasks")


class BindingLimit(_Model):
    """A limit with its use: ``binding`` when slack is (near) zero."""

    name: str
    limit: float
    used: float
    slack: float
    binding: bool


class Totals(_Model):
    n_tasks: int
    n_assigned: int
    n_queued: int
    projected_cost_usd: float = Field(ge=0)
    projected_worst_case_cost_usd: float = Field(ge=0)
    makespan_s: float
    mean_latency_s: float
    mean_quality: float


class SolverInfo(_Model):
    name: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_time_s: float
    budget_shadow_price: float | None = None
    stats: dict[str, Any] = Field(default_factory=dict)


class Plan(_Model):
    schema_version: str = SCHEMA_VERSION
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    tasks_file: str | None = None
    catalog: str
    goal: str
    limits: Limits
    models: list[ModelSnapshot]
    assignments: list[Assignment]
    queued: list[QueuedTask] = Field(default_factory=list)
    totals: Totals
    solver: SolverInfo
    binding_limits: list[BindingLimit] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what the plan assumed, in words")
    prefix_groups: list[PrefixGroupPlan] = Field(default_factory=list,
                                                 description="each prefix group's model, savings and send order")

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        """A hand-edited plan must still be one plan: known schema, one entry per task id."""
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version: expected {SCHEMA_VERSION!r}, got {self.schema_version!r} "
                             f"(written by another routeplan version; solve again)")
        seen: set[str] = set()
        entries = [("assignments", k, a.task_id) for k, a in enumerate(self.assignments)]
        entries += [("queued", k, q.task_id) for k, q in enumerate(self.queued)]
        for where, k, task_id in entries:
            if task_id in seen:
                raise ValueError(f"{where}[{k}]: duplicate task_id {task_id!r}; expected each task once")
            seen.add(task_id)
        return self

    def model_by_name(self) -> dict[str, ModelSnapshot]:
        return {m.name: m for m in self.models}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=1))
        tmp.replace(path)  # never leave a half-written plan behind
        return path

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        path = Path(path)
        if is_sharded_plan(path):  # the folder of `solve --workers`, rebuilt with its task file
            from planner.distributed.sharded_plan import load_sharded_plan

            return load_sharded_plan(path)
        if path.suffix.lower() in TABLE_SUFFIXES:
            raise InputError(f"a {path.suffix.lower()} plan is one row per task, without the model "
                             f"snapshots and limits a run needs: use the plan.json that "
                             f"`routeplan solve TASKS -o plan.json` writes", file=str(path))
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InputError("no such file", file=str(path)) from None
        except IsADirectoryError:
            raise InputError("expected a plan.json file, got a directory", file=str(path)) from None
        except UnicodeDecodeError:
            raise InputError(f"not a routeplan plan (not JSON text; schema {SCHEMA_VERSION})",
                             file=str(path)) from None
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            err = exc.errors()[0]
            if err["type"] == "value_error" and not err["loc"]:  # from _consistent: already says where
                raise InputError(err["msg"].removeprefix("Value error, "), file=str(path)) from None
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise InputError(f"{loc}: {err['msg']} (not a routeplan plan, schema {SCHEMA_VERSION})",
                             file=str(path)) from None


def is_sharded_plan(path: Path) -> bool:
    """Whether ``path`` is a sharded plan (``routeplan solve --workers``): a folder holding
    summary.json, its summary.json, or one of its parts."""
    if path.is_dir():
        return (path / "summary.json").is_file() or any(path.glob("part-*.parquet"))
    if path.name.startswith("part-") and path.suffix.lower() == ".parquet":
        return True
    return path.name == "summary.json" and path.is_file()
