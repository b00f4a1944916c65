"""Task batches: the :class:`Task` schema and :func:`load_tasks` for YAML, JSON, JSONL, CSV, Parquet.

A file holds either a list of task records or a mapping ``{tasks: [...], defaults: {...}}``
whose ``defaults`` fill fields a record leaves out. Every record is validated before any
work; the first bad one raises :class:`planner.errors.InputError` naming the file, the
record (index, id, and the YAML line where there is one), the field and what was expected.

Complexity is ``low`` / ``medium`` / ``high`` or a number in [0, 1] (low = 0.2,
medium = 0.5, high = 0.8); it sharpens the quality scores (see ``planner.formulation``).

A task may carry a ``check`` (see ``planner.checks.schema``) that grades its answer. In a
file's ``defaults``, ``check`` applies to every task and ``checks`` maps a task type to the
check its tasks get unless they carry their own::

    defaults:
      checks:
        classification: {kind: choice, answer: A}
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from planner.checks.schema import Check, parse_check
from planner.errors import InputError

#: The built-in task types with their default expected output tokens and default max_tokens.
#: A task's ``type`` is any category label (``mmlu-physics``, ``arc-challenge``); these 11 keep
#: their defaults, any other label takes the catalog's calibrated output length or
#: :data:`OTHER_TYPE_TOKENS`. max_tokens defaults leave room for reasoning models' hidden
#: reasoning tokens (billed as output); set a lower ``max_tokens`` to bound the worst-case cost.
TASK_TYPES: dict[str, tuple[int, int]] = {
    "summarize": (150, 8192),
    "code": (400, 8192),
    "analysis": (500, 8192),
    "translate": (40, 8192),
    "reasoning": (600, 16384),
    "math": (400, 16384),
    "extraction": (150, 8192),
    "classification": (10, 8192),
    "chat": (250, 8192),
    "writing": (600, 8192),
    "qa": (120, 8192),
}

#: (expected output tokens, max_tokens) of a category label that is not a built-in type
OTHER_TYPE_TOKENS: tuple[int, int] = (250, 8192)

COMPLEXITY_LEVELS: dict[str, float] = {"low": 0.2, "medium": 0.5, "high": 0.8}
CAPABILITIES = ("json", "tools", "vision")
Capability = Literal["json", "tools", "vision"]

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LIST_FIELDS = ("capabilities", "allow_models", "deny_models", "allow_providers", "deny_providers")


class Task(BaseModel):
    """One unit of LLM work. Either ``prompt`` or ``messages`` (OpenAI chat format)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str
    type: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    complexity: float = Field(0.5, description="0 (trivial) .. 1 (hardest); low/medium/high accepted")
    input_tokens: int | None = Field(None, ge=0)
    expected_output_tokens: int | None = Field(None, ge=0, description="0: e.g. a call made for its side effect")
    max_tokens: int | None = Field(None, gt=0)
    min_quality: float | None = Field(None, ge=0, le=1)
    max_latency_s: float | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, ge=0)
    capabilities: tuple[Capability, ...] = ()
    allow_models: tuple[str, ...] = ()
    deny_models: tuple[str, ...] = ()
    allow_providers: tuple[str, ...] = ()
    deny_providers: tuple[str, ...] = ()
    priority: float = Field(1.0, gt=0)
    prefix_group: str | None = Field(None, description="tasks sharing a prompt prefix (priced as cached)")
    prefix_tokens: int | None = Field(None, ge=0, description="tokens of the prefix shared with the prefix_group; "
                                                             "default: counted from what the group shares")
    check: Check | None = Field(None, description="grades the answer (see planner.checks)")

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v) if isinstance(v, int | float) else v

    @field_validator("type")
    @classmethod
    def _category_label(cls, v: str) -> str:
        return category_label(v)

    @field_validator("check", mode="before")
    @classmethod
    def _check(cls, v: Any) -> Any:
        return None if v is None else parse_check(v)

    @field_validator("complexity", mode="before")
    @classmethod
    def _complexity(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower()
            if key in COMPLEXITY_LEVELS:
                return COMPLEXITY_LEVELS[key]
            try:
                v = float(key)
            except ValueError:
                raise ValueError("expected low, medium, high or a number in [0, 1]") from None
        if isinstance(v, int | float) and not isinstance(v, bool) and not 0 <= v <= 1:
            raise ValueError("expected low, medium, high or a number in [0, 1]")
        return v

    @field_validator(*_LIST_FIELDS, mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, str):  # "json,tools" in CSV cells
            return tuple(s.strip() for s in v.split(",") if s.strip())
        return v

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> Task:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("expected exactly one of prompt or messages")
        if self.messages is not None:
            if not self.messages:
                raise ValueError("messages: expected at least one message")
            for k, m in enumerate(self.messages):
                if not isinstance(m, dict) or "role" not in m or "content" not in m:
                    raise ValueError(f"messages[{k}]: expected a mapping with role and content")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def chat_messages(self) -> list[dict[str, Any]]:
        """The messages sent to the model (a prompt becomes one user message)."""
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.prompt}]

    @property
    def text(self) -> str:
        """All message text, for token counting and prefix grouping."""
        if self.prompt is not None:
            return self.prompt
        parts = []
        for m in self.messages or []:
            c = m.get("content")
            parts.append(c if isinstance(c, str) else json.dumps(c, sort_keys=True))
        return "\n".join(parts)

    @property
    def output_tokens(self) -> int:
        """Expected visible output tokens (the type's default unless given)."""
        if self.expected_output_tokens is not None:
            return self.expected_output_tokens
        return TASK_TYPES.get(self.type, OTHER_TYPE_TOKENS)[0]

    @property
    def max_output_tokens(self) -> int:
        """The executor's hard cap on output tokens (the type's default unless given)."""
        return self.max_tokens or TASK_TYPES.get(self.type, OTHER_TYPE_TOKENS)[1]


def category_label(v: str) -> str:
    """A task type / category as every part of routeplan compares it: trimmed, lower case, inner
    whitespace as single spaces. Tasks, catalogs and outcome history all go through this."""
    label = " ".join(str(v).split()).lower()
    if not label:
        raise ValueError("expected a category label (e.g. code, summarize, arc-challenge), got an empty text")
    return label


# ---------------------------------------------------------------------- loading
def load_tasks(path: str | Path) -> list[Task]:
    """Read and validate every task in ``path``; the format follows the file suffix.

    Raises :class:`InputError` (one line) for a missing, malformed or invalid file.
    """
    path = Path(path)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unknown task file type {path.suffix or '(none)'!r}; expected one of "
                         f"{', '.join(sorted(SUFFIXES))}", file=str(path))
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", file=str(path))
    raw, defaults = _READERS[fmt](path)
    return tasks_from_records(raw, source=str(path), defaults=defaults,
                              yaml_text=_read_text(path) if fmt == "yaml" else None)


def tasks_from_records(records: Sequence[Mapping[str, Any]], *, source: str = "<records>",
                       defaults: Mapping[str, Any] | None = None,
                       yaml_text: str | None = None) -> list[Task]:
    """Validate task records (dicts), applying ``defaults``; ids must be unique."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InputError("expected a list of task records (or a mapping with a 'tasks' list)", file=source)
    if not records:
        raise InputError("no tasks: expected at least one task record", file=source)
    base = dict(defaults or {})
    if "id" in base:
        raise InputError("defaults.id: an id cannot have a default", file=source)
    by_type = _checks_by_type(base.pop("checks", None), source)
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for idx, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise InputError(f"record {idx}{_line(yaml_text, idx)}: expected a mapping of task fields, "
                             f"got {type(rec).__name__}", file=source)
        data = {**base, **{k: v for k, v in rec.items() if not _missing(v)}}
        try:
            task = Task.model_validate(data)
        except ValidationError as exc:
            raise InputError(_describe(exc, idx, rec, yaml_text), file=source) from None
        if task.check is None and task.type in by_type:  # type is already a category_label
            task = task.model_copy(update={"check": by_type[task.type]})
        if task.id in seen:
            raise InputError(f"record {idx} (id {task.id!r}){_line(yaml_text, idx, 'id')}: field id: "
                             f"duplicate id, already used by record {seen[task.id]}", file=source)
        seen[task.id] = idx
        tasks.append(task)
    return tasks


def _checks_by_type(value: Any, source: str) -> dict[str, Any]:
    """``defaults.checks``: task type -> the check its tasks get unless they carry their own."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError("defaults.checks: expected a mapping of task type -> check, e.g. "
                         "{classification: {kind: choice, answer: A}}", file=source)
    out = {}
    for task_type, raw in value.items():
        try:
            out[category_label(str(task_type))] = parse_check(raw)
        except ValueError as exc:
            raise InputError(f"defaults.checks.{task_type}: {exc}", file=source) from None
    return out


def _missing(v: Any) -> bool:
    """None and blank text mean "not given" (empty CSV cells arrive as None, see frame_records);
    an explicit NaN in JSON/YAML is a value, and validation rejects it."""
    return v is None or (isinstance(v, str) and v.strip() == "")


def _describe(exc: ValidationError, idx: int, rec: Mapping[str, Any], yaml_text: str | None) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    field = loc[0] if loc else None
    rid = rec.get("id")
    who = f"record {idx}" + (f" (id {rid!r})" if rid is not None and not _missing(rid) else "")
    where = _line(yaml_text, idx, field)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = ", ".join(Task.model_fields)
        return f"{who}{where}: unknown field {field!r}; expected one of {known}"
    if err["type"] == "missing":
        return f"{who}{where}: field {field} is required"
    if not field:
        return f"{who}{where}: {msg}"
    value = rec.get(field, "(default)")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{who}{where}: field {'.'.join(loc)}: {msg} (got {shown})"


def _line(yaml_text: str | None, idx: int, field: str | None = None) -> str:
    """', line N' for record ``idx`` (and its ``field``) in a YAML file, else ''."""
    if yaml_text is None:
        return ""
    import yaml

    try:
        root = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return ""
    seq = root
    if isinstance(root, yaml.MappingNode):
        seq = next((v for k, v in root.value if k.value == "tasks"), None)
    if not isinstance(seq, yaml.SequenceNode) or idx >= len(seq.value):
        return ""
    node = seq.value[idx]
    if field and isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == field:
                return f", line {k.start_mark.line + 1}"
    return f", line {node.start_mark.line + 1}"


# ---------------------------------------------------------------------- readers
Records = tuple[Sequence[Mapping[str, Any]], Mapping[str, Any] | None]


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a leading byte-order mark (Windows editors) is dropped."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         f"save the file as UTF-8", file=str(path)) from None


def _split_top(obj: Any, path: Path) -> Records:
    if isinstance(obj, Mapping):
        extra = set(obj) - {"tasks", "defaults"}
        if extra:
            raise InputError(f"unknown top-level key {sorted(extra)[0]!r}; expected tasks and "
                             f"optionally defaults", file=str(path))
        if "tasks" not in obj:
            raise InputError("expected a list of tasks or a mapping with a 'tasks' list", file=str(path))
        defaults = obj.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise InputError("defaults: expected a mapping of task fields", file=str(path))
        return obj["tasks"], defaults
    if obj is None:
        raise InputError("empty file: expected a list of tasks", file=str(path))
    return obj, None


def _read_yaml(path: Path) -> Records:
    import yaml

    try:
        obj = yaml.load(_read_text(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InputError(f"{where}malformed YAML: {exc.problem}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=str(path)) from None
    return _split_top(obj, path)


def _read_json(path: Path) -> Records:
    try:
        obj = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}",
                         file=str(path)) from None
    return _split_top(obj, path)


def _read_jsonl(path: Path) -> Records:
    out: list[Any] = []
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):  # not splitlines: U+2028 is valid JSON
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"line {lineno}, column {exc.colno}: malformed JSON: {exc.msg}",
                             file=str(path)) from None
    return out, None


def frame_records(df: Any) -> list[dict[str, Any]]:
    records = df.to_dict(orient="records")
    for rec in records:  # JSON-encoded list columns (messages) in flat files
        for key, v in rec.items():  # pandas reads an empty cell as NaN: not given
            if isinstance(v, float) and math.isnan(v):
                rec[key] = None
        m = rec.get("messages")
        if isinstance(m, str) and m.strip():
            # left as a string when malformed: validation then says what was expected
            with contextlib.suppress(json.JSONDecodeError):
                rec["messages"] = json.loads(m)
        elif m is not None and hasattr(m, "tolist"):
            rec["messages"] = [dict(x) for x in m.tolist()]
        for key in _LIST_FIELDS:
            v = rec.get(key)
            if v is not None and hasattr(v, "tolist"):
                rec[key] = list(v.tolist())
    return records


def _read_csv(path: Path) -> Records:
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype={"id": str}, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise InputError("empty file: expected a CSV header and task rows", file=str(path)) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed CSV: {str(exc).strip().splitlines()[-1]}", file=str(path)) from None
    return frame_records(df), None


def _read_parquet(path: Path) -> Records:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"malformed Parquet: {str(exc).splitlines()[0]}", file=str(path)) from None
    return frame_records(df), None


_READERS = {"yaml": _read_yaml, "json": _read_json, "jsonl": _read_jsonl,
            "csv": _read_csv, "parquet": _read_parquet}
