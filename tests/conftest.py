"""Fixtures for every test: the CLI run in-process, and caches kept out of the user's home."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "tasks" / "demo_batch.yaml"


@pytest.fixture(autouse=True)
def _token_cache(tmp_path_factory, monkeypatch):
    """Keep token-count caches out of the user's home."""
    monkeypatch.setenv("ROUTEPLAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "rp-cache"))


@pytest.fixture
def run_cli(capsys):
    """run_cli(*args) -> (exit_code, stdout, stderr) through planner.cli.main."""
    from planner.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
