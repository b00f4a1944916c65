"""A realtime price override carries to the batch offering by litellm's batch ratio."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from planner.catalog import load_catalog
from planner.pricing import lookup


def _user_catalog(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "mycat.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


# ---------------------------------------------------------------- 3. batch follows a price override
def test_batch_price_follows_realtime_override(tmp_path: Path) -> None:
    body = ("extends: default\nmodels:\n  - id: gpt-4.1-mini\n"
            "    input_cost_per_token: 0.0000001\n    output_cost_per_token: 0.0000004\n")
    cat = load_catalog(_user_catalog(tmp_path, body))
    rt, b = cat.get("gpt-4.1-mini"), cat.get("gpt-4.1-mini@batch")
    e = lookup("gpt-4.1-mini")
    assert e is not None and e.input_cost_per_token_batches is not None and e.output_cost_per_token_batches is not None
    assert b.input_cost_per_token == pytest.approx(1e-7 * e.input_cost_per_token_batches / e.input_cost_per_token)
    assert b.output_cost_per_token == pytest.approx(4e-7 * e.output_cost_per_token_batches / e.output_cost_per_token)
    assert b.input_cost_per_token < rt.input_cost_per_token
    assert "override x litellm batch ratio" in b.price_source


def test_batch_price_one_direction_override(tmp_path: Path) -> None:
    body = "extends: default\nmodels:\n  - id: gpt-4.1-mini\n    input_cost_per_token: 0.0000001\n"
    b = load_catalog(_user_catalog(tmp_path, body)).get("gpt-4.1-mini@batch")
    e = lookup("gpt-4.1-mini")
    assert e is not None
    assert b.output_cost_per_token == e.output_cost_per_token_batches
    assert b.input_cost_per_token == pytest.approx(1e-7 * e.input_cost_per_token_batches / e.input_cost_per_token)


def test_explicit_batch_override_wins(tmp_path: Path) -> None:
    body = ("extends: default\nmodels:\n  - id: gpt-4.1-mini\n    input_cost_per_token: 0.0000001\n"
            "    input_cost_per_token_batches: 0.00000003\n    output_cost_per_token_batches: 0.0000002\n")
    b = load_catalog(_user_catalog(tmp_path, body)).get("gpt-4.1-mini@batch")
    assert (b.input_cost_per_token, b.output_cost_per_token) == (3e-8, 2e-7)
    assert "mycat.yaml" in b.price_source and "ratio" not in b.price_source


def test_unoverridden_batch_price_is_the_price_map() -> None:
    b = load_catalog().get("gpt-4.1-mini@batch")
    e = lookup("gpt-4.1-mini")
    assert e is not None
    assert (b.input_cost_per_token, b.output_cost_per_token) == (e.input_cost_per_token_batches,
                                                                 e.output_cost_per_token_batches)
    assert "*_batches" in b.price_source
