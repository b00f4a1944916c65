"""The pipeline file: its schema, loading, and typing of ``-i key=value`` inputs.

A pipeline is YAML (the shape of the original demo)::

    id: model-routing-demo
    budget: "{{ task_budget }}"        # one budget (USD) shared by every step
    inputs:
      task_budget: {type: float, default: 10.00, min: 0}
      priority: {type: str, choices: [cost, speed, quality, balanced], default: balanced}
    steps:
      - id: assess_requirements
        tool: multi-model-routing
        action: route
        parameters: {routing_strategy: "{{ priority }}", ...}
        dependencies: []

An input may also be written as a bare default (``task_budget: 10.00``); its type is then
the default's type. Every problem is reported as one line naming the file and the step.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner.errors import InputError

STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
InputType = Literal["float", "int", "str", "bool"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Model):
    """A declared input: its type, default (None = required), allowed values and bounds."""

    type: InputType = "str"
    default: Any = None
    choices: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    description: str | None = None

    def coerce(self, name: str, raw: Any) -> Any:
        """Turn a command-line string (or a YAML default) into this input's type, or raise."""
        try:
            if self.type == "float":
                value: Any = float(raw)
                if not math.isfinite(value):
                    raise ValueError(raw)  # 'inf' / 'nan' parse as floats but are no amount
            elif self.type == "int":
                value = _to_int(raw)
            elif self.type == "bool":
                value = _to_bool(raw)
            else:
                value = str(raw)
        except (TypeError, ValueError):
            what = "float (a finite number)" if self.type == "float" else self.type
            raise InputError(f"input {name}: expected {what}, got {raw!r}") from None
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise InputError(f"input {name}: expected one of {allowed}, got {raw!r}")
        if self.min is not None and value < self.min:
            raise InputError(f"input {name}: must be >= {self.min:g}, got {raw!r}")
        if self.max is not None and value > self.max:
            raise InputError(f"input {name}: must be <= {self.max:g}, got {raw!r}")
        return value


def _to_int(raw: Any) -> int:
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(raw)


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


class Step(_Model):
    """One step: a tool's action (or a bare action) with templated parameters."""

    id: str
    tool: str | None = None
    action: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    dependencies: list[str] = Field(default_factory=list)
    description: str | None = None

    @field_validator("id")
    @classmethod
    def _id_is_identifier(cls, v: str) -> str:
        # results are addressed as `{{ step_id.field }}`, so ids must be template names
        if not STEP_ID.match(v):
            raise ValueError("expected a name of letters, digits and _ (not starting with a digit)")
        return v


class Pipeline(_Model):
    id: str
    name: str | None = None
    description: str | None = None
    version: str | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    budget: float | str | None = Field(
        default=None, description="USD shared by every step, e.g. '{{ task_budget }}'")
    steps: list[Step] = Field(min_length=1)  # an empty pipeline is a mistake, not a no-op run
    outputs: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("inputs", mode="before")
    @classmethod
    def _bare_defaults(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {}
        for name, spec in v.items():
            if isinstance(spec, dict):
                out[name] = spec
            else:  # `task_budget: 10.00`: a bare default, typed by its value
                out[name] = {"type": _type_of(spec), "default": spec}
        return out

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def resolve_inputs(self, given: dict[str, str]) -> dict[str, Any]:
        """The typed inputs: ``given`` (strings from ``-i``) over the declared defaults."""
        where = self.source
        unknown = sorted(set(given) - set(self.inputs))
        if unknown:
            declared = ", ".join(self.inputs) or "none"
            raise InputError(f"input {unknown[0]}: not declared by the pipeline (declared: {declared})",
                             file=where)
        values: dict[str, Any] = {}
        for name, spec in self.inputs.items():
            if name in given or spec.default is not None:
                try:
                    values[name] = spec.coerce(name, given.get(name, spec.default))
                except InputError as exc:
                    raise InputError(str(exc), file=where) from None
            else:
                raise InputError(f"input {name}: required; give it with -i {name}=VALUE", file=where)
        return values


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``["task_budget=5", "priority=cost"]`` -> ``{"task_budget": "5", "priority": "cost"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"-i {pair!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and schema-check a pipeline file (references and order are checked by ``validate``)."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte at offset {exc.start}); save the file as UTF-8",
                         file=where) from None
    except FileNotFoundError:
        raise InputError("no such file", file=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=where) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"{line}{problem}", file=where) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping with id, inputs and steps", file=where)
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        raise InputError(_describe(exc, data), file=where) from None
    pipeline.source = where
    seen: set[str] = set()
    for step in pipeline.steps:
        if step.id in seen:
            raise InputError(f"step {step.id}: duplicate step id", file=where)
        if step.id in pipeline.inputs:
            raise InputError(f"step {step.id}: id clashes with an input of the same name", file=where)
        seen.add(step.id)
    return pipeline


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """One line for the first schema error, naming the step by id where there is one."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field missing"
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = data.get("steps") or []
        raw = steps[loc[1]] if loc[1] < len(steps) else None
        name = raw.get("id") if isinstance(raw, dict) and raw.get("id") else f"#{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:]) or "(step)"
        return f"step {name}: {field}: {msg}"
    return f"{'.'.join(str(p) for p in loc) or '(top level)'}: {msg}"
