"""The ``routeplan`` command line. Commands live in ``planner/commands/``, one module each,
each exposing ``register(app)``. Domain errors become exit codes here and only here."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from planner.errors import InfeasibleError, InputError, RouteplanError

app = typer.Typer(
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
    "catalog",
    "run",
    "sweep",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"planner.commands.{_name}").register(app)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one clear line and exit status 2 for bad input."""
    try:
        app(args=argv, standalone_mode=False)
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
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
