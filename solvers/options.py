"""Solve options shared by every backend, validated once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.errors import ProblemError


@dataclass(frozen=True)
class Options:
    """time_limit_s: wall-clock limit (None = none); rel_gap: stop when proven within it;
    threads: worker threads (None = backend default); hint: a starting assignment of shape
    (n_tasks,) (-1 = queued) for backends that take one; verbose: native solver log;
    native: backend-specific parameters passed through as-is (a misspelt name is an error,
    never silently dropped)."""

    time_limit_s: float | None = None
    rel_gap: float = 1e-6
    threads: int | None = None
    hint: NDArray[np.int64] | None = None
    verbose: bool = False
    native: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise ProblemError(f"time_limit_s: expected a number > 0, got {self.time_limit_s!r}")
        if not (0 <= self.rel_gap < 1):
            raise ProblemError(f"rel_gap: expected a value in [0, 1), got {self.rel_gap!r}")
        if self.threads is not None and self.threads < 1:
            raise ProblemError(f"threads: expected an integer >= 1, got {self.threads!r}")
        if self.hint is not None:
            raw = np.asarray(self.hint)
            if raw.dtype.kind not in "iub" and not (raw.dtype.kind == "f" and np.all(raw == np.round(raw))):
                raise ProblemError(f"hint: expected integer model indices (-1 = queued), got dtype {raw.dtype}"
                                   + (f" ({raw.flat[0]!r}...)" if raw.size else ""))
            hint = np.array(raw, dtype=np.int64, copy=True)
            hint.setflags(write=False)
            object.__setattr__(self, "hint", hint)
