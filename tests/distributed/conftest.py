"""A small local Ray (2 CPUs) shared by the distributed tests, started and stopped here.

One per test process: under ``pytest -n 2`` each xdist worker that gets a Ray test starts its
own (``--dist loadgroup`` keeps them on one worker: they are marked ``xdist_group("ray")``).
Without Ray installed they are skipped.
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
