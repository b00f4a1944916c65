"""Pipeline inputs and catalog/pipeline files a new user might get wrong: one line, exit 2."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

DEMO_PIPELINE = ROOT / "examples" / "model_routing_demo.yaml"


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_budget_input(run_cli, tmp_path, value):
    code, _, err = run_cli("pipeline", "run", DEMO_PIPELINE, "-i", f"task_budget={value}", "-o", tmp_path / "o")
    assert code == 2, err
    assert "Traceback" not in err and "task_budget" in err


def test_non_utf8_pipeline_and_catalog(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00bad")
    for args in (("pipeline", "validate", bad), ("catalog", "list", "--catalog", bad)):
        code, _, err = run_cli(*args)
        assert code == 2, err
        assert "not UTF-8" in err and "Traceback" not in err
