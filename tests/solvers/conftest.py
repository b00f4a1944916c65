"""Backends under test: every registered backend whose module can be imported here."""

from __future__ import annotations

import importlib.util

import pytest

import solvers


def installed_backends() -> list[str]:
    return [n for n in solvers.available() if importlib.util.find_spec(solvers.BACKENDS[n].module)]


BACKENDS = installed_backends()
EXACT = [n for n in BACKENDS if solvers.BACKENDS[n].exact]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=EXACT)
def exact_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
