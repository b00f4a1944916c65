"""What the cascade runner cannot do is refused in one line, exit 2, before anything is written."""

from __future__ import annotations

import pytest

from tests.cascades.plans import STRONG, cascade_plan


def _refused(run_cli, plan, tmp_path, *extra: object) -> str:
    path = plan.save(tmp_path / "plan.json")
    out = tmp_path / "run"
    code, _, err = run_cli("run", path, "--out", out, *extra)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())  # nothing written, nothing lost
    return err


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one process", "ray workers"])
def test_a_stage_on_a_batch_offering_is_refused(run_cli, tmp_path, workers):
    """Refused alike on Ray workers (which run cascades otherwise), before any Ray starts."""
    if workers:
        pytest.importorskip("ray")
    plan = cascade_plan(2, ("agree",))
    batch = STRONG.model_copy(update={"name": STRONG.name + "@batch", "mode": "batch"})
    a = plan.assignments[1]
    assert a.cascade is not None
    stages = [*a.cascade.stages[:-1], a.cascade.stages[-1].model_copy(update={"model": batch.name})]
    moved = a.model_copy(update={"cascade": a.cascade.model_copy(update={"stages": stages})})
    plan = plan.model_copy(update={"models": [*plan.models, batch], "assignments": [plan.assignments[0], moved]})
    err = _refused(run_cli, plan, tmp_path, *workers)
    assert "assignments[1] (t0001)" in err and "batch offering" in err and batch.name in err


def test_a_cascade_planned_on_a_prompt_cache_is_refused(run_cli, tmp_path):
    plan = cascade_plan(2, ("agree",))
    a = plan.assignments[0].model_copy(update={"prefix_group": "g1", "projected_cached_tokens": 40,
                                               "prefix_messages": 1})
    plan = plan.model_copy(update={"assignments": [a, plan.assignments[1]]})
    err = _refused(run_cli, plan, tmp_path)
    assert "assignments[0] (t0000)" in err and "prompt-prefix cache" in err and "'g1'" in err


def test_a_stage_model_missing_from_the_plan_is_refused(run_cli, tmp_path):
    plan = cascade_plan(2, ("agree",))
    plan = plan.model_copy(update={"models": [m for m in plan.models if m.name != STRONG.name]})
    path = plan.save(tmp_path / "plan.json")
    code, _, err = run_cli("run", path, "--out", tmp_path / "run")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert STRONG.name in err
