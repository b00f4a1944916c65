"""The tools a pipeline step can name, their actions, parameters and result fields.

    multi-model-routing.route           per-task ranked recommendations from a solved plan
    multi-model-routing.optimize_batch  one batch solved as a plan and executed
    llm.generate_text                   one prompt run on a given model through the executor
    report-generator.generate           the pipeline's markdown report

A bare ``action:`` with no ``tool:`` names an action of the ``llm`` or ``report-generator``
tool (``generate_text``, ``generate_report``). Parameters are pydantic models checked after
the templates are rendered; the declared ``outputs`` let ``validate`` reject a template
reading a field a step never returns, before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from planner.checks.schema import Check, parse_check
from planner.goals import GOAL_NAMES, PRIORITY_GOALS

if TYPE_CHECKING:
    from planner.pipeline.runner import StepContext

#: A routing strategy: a priority word or a goal name; an optimization goal: a goal name.
Strategy = Literal[(*PRIORITY_GOALS, *GOAL_NAMES)]  # type: ignore[valid-type]
GoalName = Literal[GOAL_NAMES]  # type: ignore[valid-type]

def _record_check(record: str | dict[str, Any]) -> str | dict[str, Any]:
    """A task record's ``check`` is validated with the pipeline, before anything runs."""
    if isinstance(record, dict) and record.get("check") is not None:
        try:
            parse_check(record["check"])
        except ValueError as exc:
            raise ValueError(f"check: {exc}") from None
    return record


TaskItem = Annotated[str | dict[str, Any], AfterValidator(_record_check)]
#: A step's ``check`` (see planner.checks): validated, with the one-line reason, at ``validate``.
CheckParam = Annotated[Check | None, BeforeValidator(lambda v: None if v is None else parse_check(v))]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_solver(name: str | None) -> str | None:
    """A solver backend's name (auto, highs, cpsat, cbc, fast), checked when the step is."""
    from solvers.registry import BACKENDS

    if name is not None and name not in BACKENDS:
        raise ValueError(f"unknown solver {name!r}; expected one of {', '.join(BACKENDS)}")
    return name


#: a step's own solver (None: `pipeline run --solver`, default auto)
SolverName = Annotated[str | None, AfterValidator(_known_solver)]


class RouteConstraints(_Params):
    total_budget: float | None = Field(default=None, gt=0, description="USD for the routed tasks")
    max_latency: float | None = Field(default=None, gt=0, description="seconds per task")
    min_quality: float | None = Field(default=None, ge=0, le=1, description="per-task floor")
    max_cost_per_task: float | None = Field(default=None, gt=0, description="USD per task")


class RouteParams(_Params):
    request: str | None = None
    tasks: list[TaskItem] = Field(min_length=1)
    task_type: str | None = Field(default=None, description="type of tasks given as bare prompts")
    routing_strategy: Strategy = "balanced"
    constraints: RouteConstraints = Field(default_factory=RouteConstraints)
    top_k: int = Field(default=3, ge=1, description="ranked recommendations kept per task")
    solver: SolverName = None


class BatchConstraints(_Params):
    max_budget_per_task: float | None = Field(default=None, gt=0)
    total_budget: float | None = Field(default=None, gt=0)
    max_latency: float | None = Field(default=None, gt=0)
    min_quality: float | None = Field(default=None, ge=0, le=1)


class OptimizeBatchParams(_Params):
    tasks: list[TaskItem] = Field(min_length=1)
    task_type: str | None = None
    optimization_goal: GoalName = "minimize_cost"
    constraints: BatchConstraints = Field(default_factory=BatchConstraints)
    max_tokens: int | None = Field(default=None, gt=0)
    solver: SolverName = None
    check: CheckParam = Field(default=None, description="grades every task that has no check of its own")


class GenerateTextParams(_Params):
    prompt: str
    model: str | None = Field(description="catalog model; None when its routing queued the task")
    task_type: str = "chat"
    system: str | None = None
    max_tokens: int = Field(default=512, gt=0)
    expected_output_tokens: int | None = Field(default=None, gt=0)
    max_latency: float | None = Field(default=None, gt=0)
    check: CheckParam = Field(default=None, description="grades the answer (see planner.checks)")


class ReportParams(_Params):
    title: str = "Model Routing Report"
    path: str = "report.md"
    format: Literal["markdown"] = "markdown"


@dataclass(frozen=True)
class Action:
    """An action: its parameter model, the fields of its result, and the function."""

    tool: str
    name: str
    params: type[_Params]
    outputs: frozenset[str]
    run: Callable[[Any, StepContext], dict[str, Any]]


def _route(p: Any, ctx: StepContext) -> dict[str, Any]:
    from planner.pipeline.routing import route

    return route(p, ctx)


def _optimize_batch(p: Any, ctx: StepContext) -> dict[str, Any]:
    from planner.pipeline.routing import optimize_batch

    return optimize_batch(p, ctx)


def _generate_text(p: Any, ctx: StepContext) -> dict[str, Any]:
    from planner.pipeline.generate import generate_text

    return generate_text(p, ctx)


def _generate_report(p: Any, ctx: StepContext) -> dict[str, Any]:
    from planner.pipeline.pipeline_report import write_pipeline_report

    return write_pipeline_report(p, ctx)


ROUTE_OUTPUTS = frozenset({"strategy", "goal", "recommendations", "projected_cost_usd",
                           "n_tasks", "n_queued", "plan_path", "solver"})
BATCH_OUTPUTS = frozenset({"goal", "task_type", "total_tasks", "n_done", "n_queued", "n_failed", "models_used",
                           "projected_cost_usd", "total_cost_usd", "average_cost_per_task_usd",
                           "results", "plan_path", "run_dir", "simulated"})
GENERATE_OUTPUTS = frozenset({"task_type", "status", "model", "model_short", "result", "reason", "estimated_cost_usd",
                              "actual_cost_usd", "latency_s", "input_tokens", "output_tokens",
                              "quality", "score", "grader", "grade_reason", "run_dir", "simulated"})
REPORT_OUTPUTS = frozenset({"path", "markdown"})

_ACTIONS = [
    Action("multi-model-routing", "route", RouteParams, ROUTE_OUTPUTS, _route),
    Action("multi-model-routing", "optimize_batch", OptimizeBatchParams, BATCH_OUTPUTS,
           _optimize_batch),
    Action("llm", "generate_text", GenerateTextParams, GENERATE_OUTPUTS, _generate_text),
    Action("report-generator", "generate", ReportParams, REPORT_OUTPUTS, _generate_report),
]
TOOLS: dict[str, dict[str, Action]] = {}
for _a in _ACTIONS:
    TOOLS.setdefault(_a.tool, {})[_a.name] = _a
BARE_ACTIONS = {"generate_text": TOOLS["llm"]["generate_text"],
                "generate_report": TOOLS["report-generator"]["generate"]}


def resolve(tool: str | None, action: str) -> Action:
    """The action a step names; raises ``KeyError`` with the one-line reason."""
    if tool is None:
        if action in BARE_ACTIONS:
            return BARE_ACTIONS[action]
        known = ", ".join(sorted(BARE_ACTIONS))
        raise KeyError(f"unknown action '{action}' without a tool (bare actions: {known}; "
                       "or name a tool)")
    if tool not in TOOLS:
        raise KeyError(f"unknown tool '{tool}' (tools: {', '.join(sorted(TOOLS))})")
    actions = TOOLS[tool]
    if action not in actions:
        raise KeyError(f"unknown action '{action}' for tool {tool} (actions: {', '.join(actions)})")
    return actions[action]
