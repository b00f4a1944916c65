"""`import solvers` loads no native solver and no heavy dependency (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("ortools", "highspy", "pulp", "scipy", "pandas", "litellm")


def test_import_solvers_loads_no_heavy_module() -> None:
    code = (
        "import sys, solvers\n"
        "solvers.available(); solvers.Problem(cost=[[1.0, 2.0]])\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import solvers loaded: {out.stdout.strip()}"


def test_solving_loads_only_the_chosen_backend() -> None:
    code = (
        "import sys, solvers\n"
        "solvers.solve(solvers.Problem(cost=[[1.0, 2.0]]), backend='cpsat')\n"
        "print(','.join(m for m in ('highspy', 'pulp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
