"""A hard stop at the time limit for one stage of an exact backend, on large problems.

A backend's own time limit is only checked where the native solver looks at its clock, and
on large problems some phases run long without looking (measured on grouped problems, issue
13: HiGHS's presolve probing ran 194 s against a 45 s limit on 10,000 tasks x 27 feasible
models, and 22 s against 3 s on 3,000; CBC 25 s against 3 s, most of it before CBC starts;
CP-SAT 5 s against 3 s, its model built in Python first). So a stage of a problem with at
least :data:`MIN_PAIRS` feasible pairs and a time limit runs in a child Python process
(``python -c``, its own session): the parent waits until the limit plus :data:`GRACE_S` and
then kills the child's whole process group (CBC's own process too). A killed stage has no
plan (``time_limit_no_plan``); the staged driver keeps an earlier stage's plan, and ``auto``
keeps ``fast``'s.

The child gets the problem, options, spec and hint pickled in a temporary file and answers
there (the native solvers print on stdout, so it is not the channel). Smaller problems solve
in this process, where the overrun is a fraction of a second and a child's start-up would
cost more than it saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from solvers.backends._spec import ModelSpec, SpecSolver, StageResult
from solvers.options import Options
from solvers.problem import Problem
from solvers.solution import Status

MIN_PAIRS = 20_000  # smaller problems overrun by well under a second: solved in-process
GRACE_S = 1.0  # after the limit, how long the child may take to answer before it is killed

_CHILD_CODE = ("import sys; sys.path.insert(0, {root!r}); "
               "from solvers.backends._hard_stop import child_main; child_main(sys.argv[1])")


def needs_child(problem: Problem, time_limit_s: float | None) -> bool:
    """Whether a stage of ``problem`` under this limit runs in a child process."""
    if time_limit_s is None or os.environ.get("ROUTEPLAN_SOLVER_CHILD") == "1":
        return False  # no limit to hold; or this is the child
    return int(problem.feasible_mask.sum()) >= MIN_PAIRS


def solve_stage(solver: SpecSolver, problem: Problem, options: Options, spec: ModelSpec,
                time_limit_s: float | None, hint: NDArray[np.int64] | None) -> StageResult:
    """``solver.solve_spec(spec, time_limit_s, hint)``, stopped at the limit (+ GRACE_S) however
    long the native solver would run (see the module docstring)."""
    module = type(solver).__module__
    if not needs_child(problem, time_limit_s) or not hasattr(sys.modules.get(module), "spec_solver"):
        return solver.solve_spec(spec, time_limit_s, hint)
    assert time_limit_s is not None
    start = time.monotonic()
    deadline = start + time_limit_s
    opts = dataclasses.replace(options, native=dict(options.native))
    with tempfile.TemporaryDirectory(prefix="routeplan-stage-") as tmp:
        ask, answer = Path(tmp) / "ask.pickle", Path(tmp) / "answer.pickle"
        with ask.open("wb") as f:
            pickle.dump({"module": module, "problem": problem, "options": opts, "spec": spec, "hint": hint,
                         "deadline": deadline, "answer": str(answer)}, f, protocol=pickle.HIGHEST_PROTOCOL)
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "ROUTEPLAN_SOLVER_CHILD": "1"}
        child = subprocess.Popen([sys.executable, "-c", _CHILD_CODE.format(root=root), str(ask)],
                                 stdin=subprocess.DEVNULL, stdout=None if options.verbose else subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True, env=env)
        try:
            _, err = child.communicate(timeout=max(deadline - time.monotonic(), 0.0) + GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            wall = time.monotonic() - start
            return StageResult(Status.TIME_LIMIT_NO_PLAN, wall_time_s=wall, message=(
                f"{solver.name} ran past its {time_limit_s:g} s limit without stopping: stopped at {wall:.1f} s"),
                stats={"hard_stop": True, "child_process": True})
        finally:
            if child.poll() is None:  # an exception above (Ctrl-C): never leave the child running
                _kill_group(child)
        if not answer.exists():
            detail = (err or b"").decode(errors="replace").strip().splitlines()
            return StageResult(Status.ERROR, wall_time_s=time.monotonic() - start, stats={"child_process": True},
                               message=f"{solver.name}'s child process ended {child.returncode} without an answer"
                                       + (f": {detail[-1]}" if detail else ""))
        with answer.open("rb") as f:
            kind, value = pickle.load(f)
    if kind == "error":
        raise value
    result: StageResult = value
    return dataclasses.replace(result, stats={**result.stats, "child_process": True})


def _kill_group(child: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def child_main(ask_path: str) -> None:
    """In the child: solve the stage within what is left of the limit, pickle the answer."""
    import importlib

    with open(ask_path, "rb") as f:
        ask = pickle.load(f)
    try:
        solver = importlib.import_module(ask["module"]).spec_solver(ask["problem"], ask["options"])
        left = max(ask["deadline"] - time.monotonic(), 1e-3)
        answer: tuple[str, Any] = ("ok", solver.solve_spec(ask["spec"], left, ask["hint"]))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        answer = ("error", exc)
    tmp = ask["answer"] + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(answer, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, ask["answer"])
