"""Without the ray extra everything works as before, and asking for workers says how to get it."""

from __future__ import annotations

import sys

from planner.cli import main
from tests.executor.plans import make_plan


def _cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_workers_without_ray_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when not installed
    plan = make_plan(3).save(tmp_path / "plan.json")
    out = tmp_path / "out"
    assert _cli(["run", str(plan), "-o", str(out), "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "pip install 'routeplan[ray]'" in err and "--workers" in err
    assert not out.exists()  # nothing was started or written
    assert _cli(["run", str(plan), "-o", str(out)]) == 0  # and the ordinary run still works


def test_ray_address_needs_workers(tmp_path, capsys):
    plan = make_plan(2).save(tmp_path / "plan.json")
    assert _cli(["run", str(plan), "-o", str(tmp_path / "o"), "--ray-address", "ray://h:10001"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_solve_workers_without_ray_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    tasks = tmp_path / "t.parquet"
    tasks.write_bytes(b"")  # never read: Ray is checked first
    assert _cli(["solve", str(tasks), "--workers", "2", "-o", str(tmp_path / "plan")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'routeplan[ray]'" in err
