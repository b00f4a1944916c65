"""The backend registry: names, declared capabilities, lazy loading.

Each backend declares the constraint families and goals it expresses (``features``) and,
among them, those it may still refuse at solve time for some problems (``may_refuse``: it
then raises UnsupportedError naming a backend that can). ``solve`` refuses a problem that
needs a feature the backend does not declare before building anything; ``auto`` and the
conformance suite read the same declarations.

Order is preference order for ``auto``'s exact fallback. Availability is probed with
``importlib.util.find_spec`` (cheap, cached) and never imports the native library.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from solvers.errors import BackendUnavailable, UnknownBackend, UnsupportedError
from solvers.options import Options
from solvers.problem import Feature, Problem
from solvers.solution import Solution

SolveFn = Callable[[Problem, Options], Solution]

_ALL = frozenset(Feature)


@dataclass(frozen=True)
class Backend:
    """A registered backend: where it lives, what it needs installed, what it can express."""

    name: str
    module: str
    requires: tuple[str, ...]
    features: frozenset[Feature]
    exact: bool
    description: str
    may_refuse: frozenset[Feature] = frozenset()

    def supports(self, feature: Feature) -> bool:
        return feature in self.features

    def is_available(self) -> bool:
        return all(_has_module(m) for m in self.requires)

    def load(self) -> SolveFn:
        if not self.is_available():
            missing = [m for m in self.requires if not _has_module(m)]
            raise BackendUnavailable(
                f"backend {self.name!r} needs {', '.join(missing)}; install it or use one of {available()}"
            )
        fn: SolveFn = importlib.import_module(self.module).solve
        return fn


@cache
def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("highs", "solvers.backends.highs", ("highspy", "scipy"), _ALL, True,
                "HiGHS MIP through highspy; matrix built with numpy/scipy.sparse"),
        Backend("cpsat", "solvers.backends.cpsat", ("ortools",), _ALL, True,
                "OR-Tools CP-SAT; money and loads scaled to integers"),
        Backend("cbc", "solvers.backends.cbc", ("pulp",), _ALL, True,
                "PuLP with its bundled CBC: the readable reference model"),
        # queuing: fast serves every task that has a model and queues the rest, and refuses
        # when it cannot prove that all of them can be served; no bound for the makespan
        Backend("fast", "solvers.backends.fast", (), _ALL - {Feature.HINT, Feature.MAKESPAN}, False,
                "convex-hull greedy / Lagrangian with repair; proven bound and gap",
                may_refuse=frozenset({Feature.QUEUE})),
        Backend("auto", "solvers.backends.auto", (), _ALL, False,
                "chooses by size and structure and records why in stats['auto']"),
    )
}


def available(exact_only: bool = False) -> list[str]:
    """Names of the installed backends, in preference order."""
    return [b.name for b in BACKENDS.values() if b.is_available() and (b.exact or not exact_only)]


def get(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}") from None


def missing_features(backend: Backend, problem: Problem) -> frozenset[Feature]:
    """What ``problem`` needs that ``backend`` does not declare."""
    return problem.required_features() - backend.features


def check_supported(backend: Backend, problem: Problem) -> None:
    """Refuse before building anything when the backend cannot express the problem."""
    missing = missing_features(backend, problem)
    if missing:
        names = ", ".join(sorted(f.value for f in missing))
        able = [b.name for b in BACKENDS.values() if missing <= b.features and b.is_available()]
        raise UnsupportedError(
            f"backend {backend.name!r} cannot express {names}; use {' or '.join(able) or 'another backend'}"
        )


def solve(problem: Problem, backend: str = "auto", **options: Any) -> Solution:
    """Solve ``problem`` with the named backend.

    Keyword options are those of :class:`solvers.Options` (``time_limit_s``, ``rel_gap``,
    ``threads``, ``hint``, ``verbose``, ``native``).
    """
    opts = options.pop("options", None) or Options(**options)
    info = get(backend)
    check_supported(info, problem)
    if opts.hint is not None:  # every backend, also those that ignore hints: a bad one is an error
        from solvers.backends._staging import checked_hint

        checked_hint(problem, opts.hint)
    fn = info.load()
    start = time.perf_counter()
    sol = fn(problem, opts)
    if sol.wall_time_s == 0.0:
        object.__setattr__(sol, "wall_time_s", time.perf_counter() - start)
    return sol
