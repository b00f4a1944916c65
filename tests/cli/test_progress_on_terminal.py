"""A slow step (counting tokens with a cold cache) shows progress on a terminal's stderr, and
nothing more is printed when stderr is not a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TASKS = "".join(f"- id: t{i}\n  type: summarize\n  prompt: \"Summarize note number {i} in one line.\"\n"
                for i in range(6))  # no input_tokens: every count goes through litellm


def _solve_on_a_terminal(tmp_path) -> tuple[int, str, str]:
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(TASKS)
    env = {**os.environ, "ROUTEPLAN_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "120"}
    env.pop("FORCE_TERMINAL", None)
    env.setdefault("TERM", "xterm")
    argv = [sys.executable, "-m", "planner.cli", "solve", str(tasks), "--budget", "1", "-o", "-",
            "--format", "csv", "--models", "gpt-4.1-mini"]  # one tokenizer: a cold count in seconds
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower,
                            stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=300)
    os.close(leader)
    return code, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_counting_tokens_cold_shows_progress_on_a_terminal(tmp_path):
    code, out, err = _solve_on_a_terminal(tmp_path)
    assert code == 0, err
    assert "counting input tokens of 6 task(s)" in err and "planning" in err
    assert out.startswith("task_id,"), out  # stdout holds only what was asked for


def test_nothing_extra_when_stderr_is_not_a_terminal(tmp_path, run_cli):
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(TASKS.replace("note number", "memo number"))  # uncached texts: counted here
    code, out, err = run_cli("solve", tasks, "--budget", "1", "-o", "-", "--format", "csv")
    assert code == 0 and err == "", err
    assert out.startswith("task_id,") and out.count("\n") == 7
