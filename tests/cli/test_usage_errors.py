"""Usage errors (unknown option, missing argument, bad option type) are one message, exit 2."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO


@pytest.mark.parametrize("args", [
    ("report", "somewhere", "-o", "x"),          # no such option
    ("catalog", "show"),                          # missing argument
    ("solve", DEMO, "--budget", "abc"),           # not a number
    ("no-such-command",),
])
def test_usage_error_is_exit_2_without_traceback(run_cli, args):
    code, _, err = run_cli(*args)
    assert code == 2
    assert "Traceback" not in err and "Error:" in err


def test_error_line_keeps_colons_as_text(run_cli):
    """Rich would turn ':b:' into an emoji in the error line."""
    code, _, err = run_cli("sweep", DEMO, "--budget", "a:b:c")
    assert code == 2
    assert "'a:b:c'" in err


def test_range_error_gives_an_example_in_the_options_own_range(run_cli):
    code, _, err = run_cli("sweep", DEMO, "--quality-weight", "0:1")
    assert code == 2 and "e.g. 0:1:11" in err


def test_run_help_reads_as_sentences(run_cli):
    code, out, _ = run_cli("run", "--help")
    assert code == 0 and "spend never\n" not in out
