"""The ``routeplan`` command line. Commands live in ``planner/commands/``, one module each,
each exposing ``register(app)``. Domain errors become exit codes here and only here."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from planner.errors import InfeasibleError, InputError, RouteplanError


class _Group(TyperGroup):
    """The root command group, with no type shown for a flag in --help.

    typer >= 0.29 prints a type beside every option, flags included (``--log <bool>``, even
    ``--help <bool>``), as if they took a value; an empty metavar replaces it. Options declared
    with ``commands._options.flag`` already have one; this catches ``--help`` and any other.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stack: list[Any] = [self]
        while stack:
            cmd = stack.pop()
            stack.extend(getattr(cmd, "commands", {}).values())
            for param in [*cmd.params, cmd.get_help_option(cmd.context_class(cmd))]:
                if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
                    param.metavar = ""


app = typer.Typer(
    cls=_Group,
    name="routeplan",
    help="Plan and run batches of LLM work under a budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# one module per command group; each adds its commands to `app`
COMMAND_MODULES: list[str] = [
    "pipeline",
    "solve",
    "plan",
    "catalog",
    "run",
    "grade",
    "sweep",
    "calibrate",
    "evaluate",
]



def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"routeplan {version('routeplan')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option(
        "--version", help="Print routeplan's version and exit.", callback=_version, is_eager=True,
        metavar="")] = None,
) -> None:
    """Plan and run batches of LLM work under a budget."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"planner.commands.{_name}").register(app)

err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # "a:b:c" stays text


def _click_types(name: str) -> tuple[type[BaseException], ...]:
    """``name`` (ClickException, Abort) from click and from the copy typer >= 0.29 vendors."""
    found: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one clear line and exit status 2 for bad input."""
    try:
        code = app(args=argv, standalone_mode=False)
        # typer (>= 0.29) turns Ctrl-C into Exit(130) and, outside standalone mode, returns it
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except (InputError, InfeasibleError) as exc:
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except RouteplanError as exc:
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and aborts arrive here in non-standalone mode
        if isinstance(exc, _click_types("ClickException")):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if isinstance(exc, _click_types("Abort")):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
