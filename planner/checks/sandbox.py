"""Run an answer's code and a task's asserts in a throw-away subprocess.

The child runs ``python -I`` (isolated: no user site, no PYTHON* variables, no current
directory on the path; the interpreter's installed packages stay importable) in a fresh temporary
directory that is deleted afterwards, with an environment built from an allow-list (PATH,
LANG, ...: never an API key, token or other secret of the parent), an address-space limit
(``RLIMIT_AS``), a CPU-time limit and no core files (set by the runner itself before the
answer's code runs: ``preexec_fn`` may deadlock when the parent has threads, and the
executor grades from worker threads), and a wall-time limit enforced by killing
its whole process group. It is a guard against accidents (an infinite loop, a memory bomb, a
stray key in a log), not a security boundary against hostile code: it does not stop network
or file-system access outside the directory.

Each assert runs on its own after the answer's code, so the score is the fraction passed; a
result line is written and flushed after each one, so an answer that hangs on its third
assert keeps the credit of the first two.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The only variables the child inherits (when the parent has them).
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
RESULTS = "results.jsonl"

_RUNNER = r'''
import json, resource, sys
spec = json.load(open(sys.argv[2]))
limits = spec["limits"]  # set here, before any answer code runs (preexec_fn is unsafe with threads)
resource.setrlimit(resource.RLIMIT_AS, (limits["as_bytes"], limits["as_bytes"]))
resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
results = open(sys.argv[1], "a", buffering=1)

def report(**kw):
    results.write(json.dumps(kw) + "\n")
    results.flush()

ns = {"__name__": "__main__"}
try:
    if spec["setup"]:
        exec(compile(spec["setup"], "<setup>", "exec"), ns)
    exec(compile(spec["code"], "<answer>", "exec"), ns)
except BaseException as exc:
    report(stage="code", ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    sys.exit(0)
report(stage="code", ok=True)
for i, test in enumerate(spec["tests"]):
    try:
        exec(compile(test, f"<test {i}>", "exec"), dict(ns))
        report(stage="test", index=i, ok=True)
    except AssertionError as exc:
        report(stage="test", index=i, ok=False, error=f"AssertionError: {exc}"[:300])
    except BaseException as exc:
        report(stage="test", index=i, ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
'''


@dataclass(frozen=True)
class SandboxResult:
    """``passed[i]`` for each test; ``ended`` says why the child stopped early (or None)."""

    passed: list[bool]
    errors: list[str | None]
    code_error: str | None
    ended: str | None
    wall_s: float

    @property
    def score(self) -> float:
        return sum(self.passed) / len(self.passed) if self.passed else 0.0


def child_env() -> dict[str, str]:
    """The child's whole environment: the allow-list, nothing else."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_tests(code: str, tests: list[str], *, setup: str | None = None, timeout_s: float = 10.0,
              memory_mb: int = 512) -> SandboxResult:
    """Run ``code`` then each of ``tests`` in a sandboxed child; blocks up to ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="routeplan-sandbox-") as tmp:
        root = Path(tmp)
        (root / "runner.py").write_text(_RUNNER)
        limits = {"as_bytes": memory_mb * 1024 * 1024, "cpu_s": max(1, int(timeout_s) + 1)}
        (root / "spec.json").write_text(json.dumps({"code": code, "tests": tests, "setup": setup,
                                                    "limits": limits}))

        t0 = time.monotonic()
        ended = None
        proc = subprocess.Popen(
            [sys.executable, "-I", "runner.py", RESULTS, "spec.json"], cwd=root, env=child_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            _, stderr = proc.communicate()
            ended = f"time limit {timeout_s:g}s reached"
        wall_s = time.monotonic() - t0
        rows = _read_results(root / RESULTS)
        if ended is None and proc.returncode != 0:
            ended = _why_died(proc.returncode, stderr.decode("utf-8", "replace"), memory_mb)
    return _collect(rows, len(tests), ended, wall_s)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read_results(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by the kill
    return rows


def _why_died(returncode: int, stderr: str, memory_mb: int) -> str:
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = f"signal {-returncode}"
        if sig == "SIGXCPU":
            return "CPU time limit reached"
        return f"killed by {sig}"
    if "MemoryError" in stderr:
        return f"memory limit {memory_mb} MB reached"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {returncode}"
    return f"crashed: {last[:200]}"


def _collect(rows: list[dict[str, object]], n_tests: int, ended: str | None, wall_s: float) -> SandboxResult:
    passed = [False] * n_tests
    errors: list[str | None] = ["not run"] * n_tests
    code_error = None
    for row in rows:
        if row.get("stage") == "code" and not row.get("ok"):
            code_error = str(row.get("error"))
        elif row.get("stage") == "test":
            i = int(row["index"])  # type: ignore[call-overload]
            passed[i] = bool(row.get("ok"))
            errors[i] = None if passed[i] else str(row.get("error"))
    for i, e in enumerate(errors):
        if e and "MemoryError" in e:
            errors[i] = "MemoryError (memory limit reached)"
    if code_error and "MemoryError" in code_error:
        code_error = "MemoryError (memory limit reached)"
    return SandboxResult(passed, errors, code_error, ended, wall_s)
