"""Ray, when it is installed: a local Ray by default, an existing cluster with ``--ray-address``.

Without the extra, asking for workers is bad input (exit 2) with one line saying how to
install it; nothing else in routeplan imports Ray.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from planner.errors import InputError

INSTALL_HINT = "pip install 'routeplan[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or InputError naming the extra that provides it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--workers needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_workers(workers: int) -> None:
    if workers < 1:
        raise InputError(f"--workers: expected >= 1, got {workers}")


@contextlib.contextmanager
def connected(address: str | None, workers: int) -> Iterator[Any]:
    """Ray connected for the block: the caller's own session if one is up (tests, notebooks),
    else a local Ray with room for ``workers`` actors, or the cluster at ``address``.
    A Ray this started is shut down at the end."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = max(workers, os.cpu_count() or 1)
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise InputError(f"--ray-address {address}: cannot connect ({exc})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


#: The idle actors kept for reuse, per kind ("executor", "planner"): each module's pool
#: (Ray session -> actors). Each idle actor holds a CPU of the session's Ray.
IDLE_POOLS: dict[str, dict[str, list[Any]]] = {}


def free_idle(ray: Any, but: str) -> None:
    """Kill this session's idle actors of every kind but ``but``: a plan after a run (or a run
    after a plan) in one session would otherwise wait forever for the CPUs they hold."""
    session = ray.get_runtime_context().get_job_id()
    for kind, pool in IDLE_POOLS.items():
        if kind != but:
            for handle in pool.pop(session, []):
                ray.kill(handle, no_restart=True)
