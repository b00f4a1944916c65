"""`--version`, the root help, and flags that take no value look like flags in every command's --help."""

from __future__ import annotations

from tests.conftest import DEMO, ROOT


def test_version(run_cli):
    from importlib.metadata import version

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"routeplan {version('routeplan')}"


def _commands(group, path=()):
    import typer.main

    cmd = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, sub in getattr(cmd, "commands", {}).items():
        if hasattr(sub, "commands"):
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name), sub


def test_flags_take_no_value_and_help_shows_none(run_cli):
    from planner.cli import app

    flags = 0
    for path, cmd in _commands(app):
        code, out, _ = run_cli(*path, "--help")
        assert code == 0
        assert "<bool>" not in out, f"{' '.join(path)} --help shows a flag as taking a value"
        flags += sum(getattr(p, "is_flag", False) for p in cmd.params)
    assert flags >= 7  # --simulate --live --resume --allow-queue --log --per-point, pipeline --live
    # and they still work as flags
    code, _, err = run_cli("sweep", DEMO, "--budget", "0.01:1:3", "--log", "--allow-queue", "--per-point",
                           "--solver", "highs")
    assert code == 0, err


def test_root_help_lists_the_plan_command(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0 and "plan" in out and "--version" in out
    assert ROOT.exists()
