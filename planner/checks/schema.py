"""The ``check`` a task may carry: one pydantic model per kind, a discriminated union on ``kind``.

    check: {kind: exact, answer: "Paris"}
    check: {kind: match, answer: ["hola mundo"], mode: contains}      # case, spacing, punctuation ignored
    check: {kind: regex, pattern: "^\\d{3}-\\d{4}$", example: "555-1234"}
    check: {kind: choice, answer: B}                                  # options A-D unless given
    check: {kind: number, answer: 42, tolerance: 0.01}                # or rel_tolerance: 0.001
    check: {kind: json_schema, schema: {type: object, required: [name]}}
    check: {kind: python_tests, tests: ["assert fib(10) == 55"]}
    check: {kind: judge, model: gpt-4o-mini, rubric: "Names both findings"}

Everything that can be wrong with a check (an unknown kind, a regex that does not compile, a
schema that is not a JSON Schema, a choice answer not among the options, a test that is not
Python) is found here, when the task file is loaded, before anything is spent.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

KINDS = ("exact", "match", "regex", "choice", "number", "json_schema", "python_tests", "judge")


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    pass_score: float = Field(1.0, ge=0, le=1, description="a score below this fails the check")


class ExactCheck(_Check):
    """The answer, with surrounding whitespace stripped, equals ``answer`` (or one of them)."""

    kind: Literal["exact"]
    answer: str | list[str]

    @property
    def answers(self) -> list[str]:
        return _as_list(self.answer)


class MatchCheck(_Check):
    """Like exact after normalising case, spacing and (by default) punctuation; with
    ``mode: contains`` the normalised answer need only appear in the normalised text."""

    kind: Literal["match"]
    answer: str | list[str]
    mode: Literal["equals", "contains"] = "equals"
    ignore_punctuation: bool = True

    @model_validator(mode="before")
    @classmethod
    def _contains_flag(cls, data: Any) -> Any:
        """``contains: true`` is read as ``mode: contains``."""
        if isinstance(data, dict) and "contains" in data:
            data = dict(data)
            flag = data.pop("contains")
            if not isinstance(flag, bool):
                raise ValueError("contains: expected true or false")
            if flag and data.get("mode", "contains") != "contains":
                raise ValueError("contains: true contradicts mode: equals")
            data.setdefault("mode", "contains" if flag else "equals")
        return data

    @property
    def answers(self) -> list[str]:
        return _as_list(self.answer)

    @field_validator("answer")
    @classmethod
    def _not_blank(cls, v: str | list[str]) -> str | list[str]:
        if not _as_list(v) or any(not a.strip() for a in _as_list(v)):
            raise ValueError("expected non-blank text (or a list of them)")
        return v


class RegexCheck(_Check):
    """The pattern is found in the answer (``mode: fullmatch``: the stripped answer is all of it)."""

    kind: Literal["regex"]
    pattern: str
    mode: Literal["search", "fullmatch"] = "search"
    ignore_case: bool = False
    example: str | None = Field(None, description="a text that matches; the simulator answers with it")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return v

    @model_validator(mode="after")
    def _example_matches(self) -> RegexCheck:
        if self.example is not None and not self.matches(self.example):
            raise ValueError(f"example {self.example!r} does not match the pattern")
        return self

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)

    def matches(self, text: str) -> bool:
        rx = self.compiled()
        return bool(rx.fullmatch(text.strip()) if self.mode == "fullmatch" else rx.search(text))


class ChoiceCheck(_Check):
    """Multiple choice: the option letter the answer picks is ``answer``. ``options`` are the
    labels (``[A, B, C, D]`` by default) or a mapping label -> option text."""

    kind: Literal["choice"]
    answer: str
    options: list[str] | dict[str, str] = Field(default_factory=lambda: ["A", "B", "C", "D"],
                                                validation_alias=AliasChoices("options", "choices"))

    @property
    def labels(self) -> list[str]:
        return [str(k).strip().upper() for k in self.options]

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_text(cls, v: Any) -> Any:
        return str(v).strip().upper() if isinstance(v, str | int) and not isinstance(v, bool) else v

    @field_validator("options", mode="before")
    @classmethod
    def _option_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(t) for k, t in v.items()}
        if isinstance(v, list):
            return [str(x) for x in v]
        return v

    @model_validator(mode="after")
    def _answer_among_options(self) -> ChoiceCheck:
        labels = self.labels
        if len(labels) < 2:
            raise ValueError("options: expected at least two options")
        if len(set(labels)) != len(labels):
            raise ValueError("options: each label once")
        for label in labels:
            if not re.fullmatch(r"[A-Z0-9]{1,3}", label):
                raise ValueError(f"options: expected short labels such as A, B, C (got {label!r})")
        if self.answer not in labels:
            raise ValueError(f"answer {self.answer!r} is not among the options {', '.join(labels)}")
        return self


class NumberCheck(_Check):
    """The number the answer gives is within ``max(tolerance, rel_tolerance * |answer|)``."""

    kind: Literal["number"]
    answer: float
    tolerance: float = Field(0.0, ge=0, description="absolute",
                             validation_alias=AliasChoices("tolerance", "abs_tolerance", "atol"))
    rel_tolerance: float = Field(0.0, ge=0, description="relative to the answer",
                                 validation_alias=AliasChoices("rel_tolerance", "relative_tolerance", "rtol"))

    @property
    def allowed_error(self) -> float:
        return max(self.tolerance, self.rel_tolerance * abs(self.answer))


class JsonSchemaCheck(_Check):
    """The answer (or its fenced JSON block) parses as JSON and validates against ``schema``."""

    kind: Literal["json_schema"]
    json_schema: dict[str, Any] | bool = Field(alias="schema")
    example: Any = Field(None, description="a valid instance; the simulator answers with it")

    @field_validator("json_schema")
    @classmethod
    def _is_schema(cls, v: dict[str, Any] | bool) -> dict[str, Any] | bool:
        import jsonschema

        try:
            jsonschema.validators.validator_for(v).check_schema(v)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path)
            raise ValueError(f"invalid JSON Schema{f' at {where}' if where else ''}: {exc.message}") from None
        return v

    @model_validator(mode="after")
    def _example_valid(self) -> JsonSchemaCheck:
        if self.example is not None:
            error = self.first_error(self.example)
            if error is not None:
                raise ValueError(f"example is not valid against the schema: {error}")
        return self

    def first_error(self, instance: Any) -> str | None:
        import jsonschema

        validator = jsonschema.validators.validator_for(self.json_schema)(self.json_schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{where + ': ' if where else ''}{error.message}"


class PythonTestsCheck(_Check):
    """The answer's code (its fenced Python blocks, else the whole text) runs in a sandbox,
    then each assert on its own; the score is the fraction that pass."""

    kind: Literal["python_tests"]
    tests: list[str] = Field(min_length=1, validation_alias=AliasChoices("tests", "asserts"))
    setup: str | None = Field(None, description="run before the answer's code (imports, fixtures)")
    solution: str | None = Field(None, description="a reference solution; the simulator answers with it")
    timeout_s: float = Field(10.0, gt=0, le=600, description="wall time for the whole run")
    memory_mb: int = Field(512, ge=64, le=65536, description="address-space limit of the process")

    @field_validator("tests", mode="before")
    @classmethod
    def _one_test(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("tests")
    @classmethod
    def _tests_compile(cls, v: list[str]) -> list[str]:
        for k, test in enumerate(v):
            _compiles(test, f"test {k}")
        return v

    @field_validator("setup", "solution")
    @classmethod
    def _code_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            _compiles(v, "code")
        return v


class JudgeCheck(_Check):
    """A model scores the answer against ``rubric`` from 0 to 10 (a call billed as grading)."""

    kind: Literal["judge"]
    model: str = Field(min_length=1, description="catalog model that judges")
    rubric: str = Field(min_length=1)
    max_tokens: int = Field(300, gt=0, description="of the judge's reply")
    pass_score: float = Field(0.5, ge=0, le=1)


Check = Annotated[ExactCheck | MatchCheck | RegexCheck | ChoiceCheck | NumberCheck | JsonSchemaCheck
                  | PythonTestsCheck | JudgeCheck, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Check)


def parse_check(value: Any) -> Any:
    """A check from a mapping (or its JSON text, as in a CSV cell); ValueError with one line."""
    if isinstance(value, _Check):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("expected a mapping such as {kind: choice, answer: B} (or its JSON)") from None
    if not isinstance(value, dict):
        raise ValueError("expected a mapping such as {kind: choice, answer: B}")
    kind = value.get("kind")
    if kind is None:
        raise ValueError(f"kind is required; expected one of {', '.join(KINDS)}")
    if kind == "contains":  # the "contains" flavour of match, named as a kind
        value = {**value, "kind": "match", "mode": "contains"}
        kind = "match"
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None


def check_to_json(check: Any) -> str:
    """The check as compact JSON (what the ledger stores), ``schema`` under its own name."""
    return json.dumps(check.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))


def describe_error(exc: ValidationError) -> str:
    """One line for the first error of a check: the field inside the check and what is wrong."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"][1:]]  # [0] is the kind's tag
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"unknown field {loc[-1]!r} for kind {exc.errors()[0]['loc'][0]}"
    if err["type"] == "missing":
        return f"{'.'.join(loc)} is required for kind {exc.errors()[0]['loc'][0]}"
    return f"{'.'.join(loc) + ': ' if loc else ''}{msg}"


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _compiles(code: str, what: str) -> None:
    try:
        compile(code, f"<{what}>", "exec")
    except SyntaxError as exc:
        raise ValueError(f"{what}: not valid Python (line {exc.lineno}: {exc.msg})") from None
