"""Answers in the form a check reads, for the simulator: right or wrong as asked.

The simulator decides whether an answer is right (with the plan's projected quality for that
task and model) and asks here for a text to match. Every text is confirmed with the real
grader before it is returned; when no confirmed text can be made (a regex or schema too
intricate for the samplers below and no ``example`` given), the answer says so and is
graded as it is. For ``python_tests`` a right answer is the check's reference ``solution``;
without one, a labelled stand-in whose values compare equal to anything (it passes
equality asserts, not every assert). For ``judge`` the text is filler: the simulated judge
scores it.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from planner.checks.graders import grade
from planner.checks.schema import (
    ChoiceCheck,
    ExactCheck,
    JsonSchemaCheck,
    JudgeCheck,
    MatchCheck,
    NumberCheck,
    PythonTestsCheck,
    RegexCheck,
)


def answer_for(check: Any, right: bool, rng: random.Random) -> str:
    """A text that passes ``check`` when ``right``, fails it otherwise."""
    if isinstance(check, JudgeCheck):
        return "A simulated answer for the judge to score."
    candidates = [c for c in _candidates(check, right, rng) if c is not None]
    if isinstance(check, PythonTestsCheck):  # the sandbox is slow; the grader will run it once
        return candidates[0]
    best, best_score = None, -1.0
    for text in candidates:
        score = grade(check, text).score
        if (score >= check.pass_score) == right:
            return text
        if score > best_score:
            best, best_score = text, score
    if right and best is not None:
        return best
    return (f"[simulated: no {'right' if right else 'wrong'} answer could be made for this "
            f"{check.kind} check]")


def _candidates(check: Any, right: bool, rng: random.Random) -> list[str | None]:
    if isinstance(check, ExactCheck):
        want = check.answers[0]
        return [want] if right else [want + " (unsure)", "no answer", "?"]
    if isinstance(check, MatchCheck):
        want = check.answers[0]
        if right:
            shouted = "  ".join(want.upper().split())
            return [f"Here it is: {want}." if check.mode == "contains" else shouted, want]
        return ["I do not know.", "zzz", "—"]
    if isinstance(check, RegexCheck):
        if right:
            return [check.example, *(_sample_regex(check.pattern, rng) for _ in range(5))]
        return ["", "no match here", "\u2400", "zzz"]
    if isinstance(check, ChoiceCheck):
        if right:
            return [f"The answer is ({check.answer})."]
        others = [label for label in check.labels if label != check.answer]
        return [f"The answer is ({rng.choice(others)})."]
    if isinstance(check, NumberCheck):
        if right:
            return [f"The answer is {_number(check.answer)}."]
        off = max(1.0, abs(check.answer)) * 0.5 + check.allowed_error * 10 + 1
        return [f"The answer is {_number(check.answer + off * rng.choice((-1, 1)))}."]
    if isinstance(check, JsonSchemaCheck):
        if right:
            example = check.example if check.example is not None else sample_instance(check.json_schema)
            return [f"```json\n{json.dumps(example)}\n```"]
        return ['{"truncated": ', "Sorry, no JSON today.", "null"]
    if isinstance(check, PythonTestsCheck):
        if right:
            return [f"```python\n{check.solution}\n```" if check.solution else None,
                    _stand_in(check.tests)]
        return [_broken(check.tests)]
    return []


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.12g}"


def _called_names(tests: list[str]) -> list[str]:
    """Top-level names the asserts call (``fib`` in ``assert fib(10) == 55``)."""
    import builtins

    names = []
    for test in tests:
        for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", test):
            if name not in names and not hasattr(builtins, name) and name not in {"assert", "lambda"}:
                names.append(name)
    return names


def _stand_in(tests: list[str]) -> str:
    lines = ["# simulated answer: a stand-in whose results compare equal to anything",
             "class _Any:", "    def __eq__(self, other): return True", "    def __ne__(self, other): return False",
             "    __lt__ = __le__ = __gt__ = __ge__ = __eq__", "    def __bool__(self): return True",
             "    def __hash__(self): return 0"]
    for name in _called_names(tests):
        lines.append(f"def {name}(*args, **kwargs): return _Any()")
    return "```python\n" + "\n".join(lines) + "\n```"


def _broken(tests: list[str]) -> str:
    lines = ["# simulated wrong answer"]
    for name in _called_names(tests):
        lines.append(f"def {name}(*args, **kwargs): raise NotImplementedError('simulated wrong answer')")
    if len(lines) == 1:
        lines.append("raise RuntimeError('simulated wrong answer')")
    return "```python\n" + "\n".join(lines) + "\n```"


# -- samplers -----------------------------------------------------------------------------------
def _sample_regex(pattern: str, rng: random.Random) -> str | None:
    """A string the pattern matches, for the common constructs (None when it cannot say)."""
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    try:
        return _emit(sre_parse.parse(pattern), rng, 0)
    except (_Unsupported, RecursionError, re.error):
        return None


class _Unsupported(Exception):
    pass


_CATEGORY = {"CATEGORY_DIGIT": "0123456789", "CATEGORY_WORD": "abcxyz_019", "CATEGORY_SPACE": " ",
             "CATEGORY_NOT_DIGIT": "abc", "CATEGORY_NOT_WORD": " -", "CATEGORY_NOT_SPACE": "abc1"}


def _emit(parsed: Any, rng: random.Random, depth: int) -> str:
    if depth > 20:
        raise _Unsupported
    out = []
    for op, av in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(av) != "a" else "b")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_from_set(av, rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            count = lo if hi == lo else rng.randint(lo, min(hi, lo + 3))
            out.extend(_emit(sub, rng, depth + 1) for _ in range(count))
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            out.append(_emit(av[-1], rng, depth + 1))
        elif name == "BRANCH":
            out.append(_emit(av[1][0], rng, depth + 1))
        elif name == "AT":
            continue
        else:  # backreferences, lookarounds, conditionals
            raise _Unsupported
    return "".join(out)


def _from_set(items: Any, rng: random.Random) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in items)
    if negate:
        banned = set()
        for op, av in items:
            if str(op) == "LITERAL":
                banned.add(chr(av))
            elif str(op) == "RANGE":
                banned.update(chr(c) for c in range(av[0], av[1] + 1))
        for c in "xqz0#":
            if c not in banned:
                return c
        raise _Unsupported
    op, av = items[0]
    if str(op) == "LITERAL":
        return chr(av)
    if str(op) == "RANGE":
        return chr(av[0])
    if str(op) == "CATEGORY":
        return _CATEGORY.get(str(av), "a")[0]
    raise _Unsupported


def sample_instance(schema: Any, depth: int = 0) -> Any:
    """A JSON value valid against ``schema`` for the common keywords (type, properties,
    required, items, enum, const, min/max, anyOf/oneOf/allOf)."""
    if depth > 12 or schema is True or not isinstance(schema, dict):
        return {}
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "examples" in schema and schema["examples"]:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema and schema[key]:
            return sample_instance(schema[key][0], depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                for k, v in part.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged.setdefault("required", []).extend(v)
                    else:
                        merged[k] = v
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return sample_instance({**merged, **rest}, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        obj = {name: sample_instance(props.get(name, {}), depth + 1) for name in required}
        for name, sub in props.items():
            if name not in obj and len(obj) < max(len(required), schema.get("minProperties", 0)):
                obj[name] = sample_instance(sub, depth + 1)
        return obj
    if kind == "array":
        items = schema.get("items", {})
        n = max(schema.get("minItems", 1), 1 if schema.get("maxItems", 1) else 0)
        if isinstance(schema.get("prefixItems"), list):
            return [sample_instance(s, depth + 1) for s in schema["prefixItems"]]
        values = [sample_instance(items, depth + 1) for _ in range(n)]
        if schema.get("uniqueItems") and len({json.dumps(v) for v in values}) < len(values):
            values = values[:1]
        return values
    if kind in ("integer", "number"):
        bounds: dict[str, float] = {k: float(v) for k, v in schema.items()
                                    if k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")}
        lo = bounds.get("minimum", bounds.get("exclusiveMinimum", 0.0))
        hi = bounds.get("maximum", bounds.get("exclusiveMaximum", lo + 10))
        number = lo + 1 if "exclusiveMinimum" in schema else lo
        number = min(number, hi - 1 if "exclusiveMaximum" in schema else hi)
        mult = schema.get("multipleOf")
        if mult:
            number = mult * max(1, round(number / mult))
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    # string
    if "pattern" in schema:
        sample = _sample_regex(schema["pattern"], random.Random(0))
        if sample is not None:
            return sample
    fmt = {"email": "user@example.com", "date": "2024-01-31", "date-time": "2024-01-31T12:00:00Z",
           "uri": "https://example.com", "uuid": "123e4567-e89b-12d3-a456-426614174000"}
    if schema.get("format") in fmt:
        return fmt[schema["format"]]
    n = max(schema.get("minLength", 1), 1)
    return ("sample" * (n // 6 + 1))[:max(n, min(6, schema.get("maxLength", 6)))]
