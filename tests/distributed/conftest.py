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


@pytest.fixture
def no_ray_left_behind(monkeypatch):
    """The CLI's local Ray lives under a temporary directory of its own (RAY_TMPDIR); its
    processes must end with the CLI, however it ends (Ray makes them share its fate)."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'routeplan[ray]')")
    import shutil
    import tempfile
    import time

    root = tempfile.mkdtemp(prefix="rp-")  # short: Ray's socket paths must fit 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", root)
    yield
    deadline = time.monotonic() + 30
    while True:
        left = [p for p in psutil.process_iter(["pid", "cmdline"])
                if any(root in part for part in (p.info["cmdline"] or []))]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    shutil.rmtree(root, ignore_errors=True)
    assert not left, [" ".join(p.info["cmdline"][:2]) for p in left]
