"""Without the ray extra everything works as before, and asking for workers says how to get it."""

from __future__ import annotations

import sys

from tests.executor.plans import make_plan


def test_workers_without_ray_is_one_line_and_exit_2(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when not installed
    plan = make_plan(3).save(tmp_path / "plan.json")
    out = tmp_path / "out"
    code, _, err = run_cli("run", plan, "-o", out, "--workers", 2)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pip install 'routeplan[ray]'" in err and "--workers" in err
    assert not out.exists()  # nothing was started or written
    assert run_cli("run", plan, "-o", out)[0] == 0  # and the ordinary run still works


def test_ray_address_needs_workers(tmp_path, run_cli):
    plan = make_plan(2).save(tmp_path / "plan.json")
    code, _, err = run_cli("run", plan, "-o", tmp_path / "o", "--ray-address", "ray://h:10001")
    assert code == 2 and "--workers" in err


def test_solve_workers_without_ray_is_one_line_and_exit_2(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    tasks = tmp_path / "t.parquet"
    tasks.write_bytes(b"")  # never read: Ray is checked first
    code, _, err = run_cli("solve", tasks, "--workers", 2, "-o", tmp_path / "plan")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pip install 'routeplan[ray]'" in err
