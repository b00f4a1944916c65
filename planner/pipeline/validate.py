"""Static checks of a loaded pipeline, before any work: tools and actions exist, parameter
names and literal values fit the action, dependencies exist, templates name only inputs and
earlier steps (and fields those steps return), and the steps have an order (no cycle).

Templates add implicit dependencies: a step reading ``{{ a.x }}`` runs after ``a``.
"""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any, cast

import jinja2
from pydantic import TypeAdapter, ValidationError

from planner.errors import InputError
from planner.pipeline import templating
from planner.pipeline.schema import Pipeline
from planner.pipeline.tools import Action, resolve

BUILTINS = frozenset({"pipeline", "inputs"})  # always in a template's context


@dataclass(frozen=True)
class CheckedPipeline:
    """A pipeline known to be runnable: each step's action and the order to run them in."""

    pipeline: Pipeline
    actions: dict[str, Action]
    dependencies: dict[str, frozenset[str]]  # explicit and template-implied
    order: list[str]


def check(pipeline: Pipeline) -> CheckedPipeline:
    where = pipeline.source
    step_ids = [s.id for s in pipeline.steps]
    known_steps = set(step_ids)
    actions: dict[str, Action] = {}
    deps: dict[str, set[str]] = {}

    for step in pipeline.steps:
        try:
            action = resolve(step.tool, step.action)
        except KeyError as exc:
            raise InputError(f"step {step.id}: {exc.args[0]}", file=where) from None
        actions[step.id] = action
        _check_params(step.id, step.parameters, action, where)
        deps[step.id] = set()
        for dep in step.dependencies:
            if dep == step.id:
                raise InputError(f"step {step.id}: depends on itself", file=where)
            if dep not in known_steps:
                raise InputError(f"step {step.id}: depends on unknown step '{dep}'", file=where)
            deps[step.id].add(dep)

    for step in pipeline.steps:
        for path, text in templating.iter_templates(step.parameters):
            deps[step.id] |= _template_steps(step.id, f"step {step.id}: parameters.{path}", text,
                                             pipeline, actions, where)
    for _, text in templating.iter_templates(pipeline.budget):
        if _template_steps(None, "budget", text, pipeline, actions, where):
            raise InputError("budget: may read inputs only, not step results", file=where)
    for name, text in templating.iter_templates(pipeline.outputs):
        _template_steps(None, f"outputs.{name}", text, pipeline, actions, where)

    return CheckedPipeline(pipeline, actions, {k: frozenset(v) for k, v in deps.items()},
                           _order(step_ids, deps, where))


def _check_params(step_id: str, params: dict[str, Any], action: Action, where: str | None) -> None:
    """Parameter names always; values now where they hold no template (else after rendering)."""
    fields = action.params.model_fields
    for key in params:
        if key not in fields:
            raise InputError(f"step {step_id}: parameters.{key}: unknown parameter for "
                             f"{action.tool}.{action.name} (parameters: {', '.join(fields)})",
                             file=where)
    for key, info in fields.items():
        if key not in params:
            if info.is_required():
                raise InputError(f"step {step_id}: parameters.{key}: required parameter missing",
                                 file=where)
            continue
        value = params[key]
        if any(True for _ in templating.iter_templates(value)):
            continue
        try:
            TypeAdapter(cast(Any, info.rebuild_annotation())).validate_python(value)  # with its constraints
        except ValidationError as exc:
            raise InputError(f"step {step_id}: {param_error('parameters.' + key, exc)}",
                             file=where) from None


def param_error(prefix: str, exc: ValidationError) -> str:
    """One line for a pydantic error inside a parameter: ``parameters.x.y: what was expected``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("str", "dict[")))
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{prefix}{'.' + loc if loc else ''}: {msg}"


def _template_steps(step_id: str | None, at: str, text: str, pipeline: Pipeline,
                    actions: dict[str, Action], where: str | None) -> set[str]:
    """The steps a template (found ``at``, in step ``step_id``) reads; raises on a name or
    field that cannot exist."""
    shown = text.strip() if len(text.strip()) <= 80 else text.strip()[:77] + "..."
    prefix = f"{at}: {shown}"
    try:
        roots, fields = templating.references(text)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"{prefix}: template syntax error: {exc.message}", file=where) from None
    steps: set[str] = set()
    for name in sorted(roots):
        if name in pipeline.inputs or name in BUILTINS:
            continue
        if name not in actions:
            raise InputError(f"{prefix}: '{name}' is neither an input nor a step", file=where)
        if name == step_id:
            raise InputError(f"{prefix}: a step cannot read its own result", file=where)
        steps.add(name)
    for name, field in sorted(fields):
        if name in actions and field not in actions[name].outputs:
            have = ", ".join(sorted(actions[name].outputs))
            raise InputError(f"{prefix}: step {name} has no field '{field}' (fields: {have})",
                             file=where)
    return steps


def _order(step_ids: list[str], deps: dict[str, set[str]], where: str | None) -> list[str]:
    """Dependency order; among steps ready together, the file's order."""
    sorter: TopologicalSorter[str] = TopologicalSorter({s: deps[s] for s in step_ids})
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = list(exc.args[1])  # [a, b, ..., a]: each depends on the next
        cycle.reverse()
        raise InputError(f"step {cycle[0]}: dependency cycle {' -> '.join(cycle)} "
                         "(each depends on the next)",
                         file=where) from None
    position = {s: i for i, s in enumerate(step_ids)}
    order: list[str] = []
    ready: set[str] = set()
    while sorter.is_active():
        ready.update(sorter.get_ready())
        step = min(ready, key=position.__getitem__)
        ready.remove(step)
        order.append(step)
        sorter.done(step)
    return order
