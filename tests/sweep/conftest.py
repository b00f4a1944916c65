"""Shared batches for the sweep tests: formulated once per session (token counts are given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.catalog import Catalog, load_catalog
from planner.tasks import Task, load_tasks

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "tasks" / "demo_batch.yaml"
BATCH_10K = ROOT / "examples" / "tasks" / "batch_10k.jsonl"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def demo_tasks() -> list[Task]:
    return load_tasks(DEMO)


@pytest.fixture(scope="session")
def mixed_tasks() -> list[Task]:
    """The first 150 tasks of the generated batch: mixed types, some priorities and floors."""
    return load_tasks(BATCH_10K)[:150]
