"""``{{ }}`` templates in step parameters, rendered by jinja2 with StrictUndefined.

A string that is exactly one expression (``"{{ task_budget }}"``) evaluates to the native
value (a float stays a float, a list stays a list); any other string with ``{{ }}`` or
``{% %}`` renders to text. A name or field that does not exist is an error naming the step,
the parameter and the expression, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes

from planner.errors import InputError

_ENV = jinja2.Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.S)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def iter_templates(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every template string inside ``value`` with its dotted path (``constraints.total_budget``)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_templates(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from iter_templates(item, f"{path}[{i}]")
    elif is_template(value):
        yield path, value


def references(template: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The names a template reads, and the (name, first field) pairs it reads from them.

    Raises ``jinja2.TemplateSyntaxError`` for a malformed template.
    """
    ast = _ENV.parse(template)
    roots = meta.find_undeclared_variables(ast)
    fields: set[tuple[str, str]] = set()
    for node in ast.find_all(nodes.Getattr):
        assert isinstance(node, nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name in roots:
            fields.add((node.node.name, node.attr))
    for item in ast.find_all(nodes.Getitem):
        assert isinstance(item, nodes.Getitem)
        if (isinstance(item.node, nodes.Name) and item.node.name in roots
                and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str)):
            fields.add((item.node.name, item.arg.value))
    return roots, fields


def render(value: Any, context: Mapping[str, Any], *, step_id: str, path: str = "") -> Any:
    """``value`` with every template inside it rendered against ``context`` (same shape)."""
    if isinstance(value, Mapping):
        return {k: render(v, context, step_id=step_id, path=f"{path}.{k}" if path else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, step_id=step_id, path=f"{path}[{i}]") for i, v in enumerate(value)]
    if not is_template(value):
        return value
    return _render_one(value, context, step_id=step_id, path=path)


def _render_one(text: str, context: Mapping[str, Any], *, step_id: str, path: str) -> Any:
    single = _SINGLE.match(text)
    shown = text.strip() if len(text.strip()) <= 80 else text.strip()[:77] + "..."
    where = f"step {step_id}: {path or 'parameters'}: {shown}"
    try:
        if single:
            result = _ENV.compile_expression(single["expr"], undefined_to_none=False)(**context)
            if isinstance(result, jinja2.Undefined):
                result._fail_with_undefined_error()
            return result
        return _ENV.from_string(text).render(**context)
    except jinja2.UndefinedError as exc:
        raise InputError(f"{where}: {_plain(exc)}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(f"{where}: template syntax error: {exc.message}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise InputError(f"{where}: {type(exc).__name__}: {exc}") from None


def _plain(exc: jinja2.UndefinedError) -> str:
    msg = str(exc)
    # jinja says "'dict object' has no attribute 'x'"; say which kind of thing lacked it
    msg = msg.replace("'dict object'", "the result").replace("'list object'", "the list")
    if msg.endswith("is undefined"):
        msg += " (no step or input of that name)"
    return msg
