"""A small local Ray (2 CPUs) shared by the distributed tests, started and stopped here.

The tests that use it are grouped on one xdist worker (``xdist_group("ray")``), so a run
starts one Ray, not one per worker; without Ray installed they are skipped.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def local_ray():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'routeplan[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
