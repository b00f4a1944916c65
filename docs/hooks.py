"""MkDocs hooks: what the pages take from the code instead of copying it.

- ``<!-- options: solve -->`` (or ``pipeline run``, ``catalog show``...) becomes the table of
  that command's arguments and options, read from the CLI itself (typer/click), so a page
  always lists every option with its current help and default;
- ``<!-- include: catalogs/README.md -->`` becomes that file of the repository (a page may show
  a file that lives beside the code it describes).

``tests/test_docs.py`` uses ``options_table`` too: every command has a page with its marker.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = re.compile(r"<!-- options: ([a-z ]+?) -->")
INCLUDE = re.compile(r"<!-- include: ([\w./-]+) -->")


@cache
def commands() -> dict[str, Any]:
    """Every leaf command of the CLI by its path (``"pipeline run"``) -> its click command."""
    import typer.main

    from planner.cli import app

    out: dict[str, Any] = {}

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            if hasattr(sub, "commands"):
                walk(sub, (*path, name))
            else:
                out[" ".join((*path, name))] = sub

    walk(typer.main.get_command(app), ())
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def options_table(command: str) -> str:
    """The markdown table of ``routeplan COMMAND``'s arguments and options."""
    cmd = commands()[command]
    rows = ["| argument or option | takes | default | what it does |", "| --- | --- | --- | --- |"]
    args: list[str] = []
    for p in cmd.params:
        takes = "" if getattr(p, "is_flag", False) else _cell(p.bare_type().strip("<>"))
        if p.param_type_name == "argument":
            names = f"`{p.name.upper()}`"
            args.append(p.name.upper() + ("..." if p.nargs == -1 else ""))
        else:
            names = ", ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
        default = p.default
        shown = "" if default in (None, False, ()) or p.required or callable(default) else f"`{default}`"
        if p.param_type_name == "argument" and p.required:
            shown = "required"
        rows.append(f"| {names} | {takes} | {shown} | {_cell(getattr(p, 'help', None) or '')} |")
    usage = f"```\nrouteplan {command} [OPTIONS] {' '.join(args)}\n```"
    return f"{usage}\n\n" + "\n".join(rows) + "\n"


def expand(markdown: str) -> str:
    markdown = OPTIONS.sub(lambda m: options_table(m.group(1)), markdown)
    return INCLUDE.sub(lambda m: (ROOT / m.group(1)).read_text(), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return expand(markdown)
