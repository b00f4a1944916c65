"""A run's output folder before the run starts: is it a folder, does it hold a run, may it be
resumed. Every refusal is an InputError (one line, exit status 2) and touches nothing.

Beside the ledger lives ``ledger.id``, the run's id (also in the ledger's meta). It outlives
the ledger: a folder whose ledger was deleted, or replaced by another run's, is refused
(its spend is unknown, so neither a new run nor ``--resume`` may start there afresh).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from planner.errors import InputError
from planner.executor import ledger
from planner.executor.ledger import LEDGER_NAME, RESCUED_NAME

RUN_ID_NAME = "ledger.id"


def check_out_dir(out: Path, option: str = "--out") -> None:
    """``out`` is a folder or does not exist yet (a file there would be lost or break the run)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{option}: expected a folder for the ledger and report, but it is a file; "
                         f"choose another {option}", file=str(out))


def read_meta(out: Path) -> dict[str, str]:
    """The meta table of the ledger in ``out`` ({} when there is none or setup never finished).
    A file that is not a readable ledger is an InputError, and is left as it is."""
    path = out / LEDGER_NAME
    if not path.exists():
        return {}
    if not path.is_file():
        raise InputError(f"{path}: not a run ledger (not a file); choose another --out")
    try:
        return ledger.read_meta(path)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}  # killed while the ledger was being created: nothing was sent
        raise InputError(f"{path}: cannot read the run ledger ({exc}); it was left as it is") from None
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a readable run ledger ({exc}); it was left as it is: move it "
                         f"away or choose another --out") from None


def recorded_run_id(out: Path) -> str | None:
    try:
        return (out / RUN_ID_NAME).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", file=str(out / RUN_ID_NAME)) from None


def check_startable(out: Path, meta: dict[str, str], *, resume: bool) -> None:
    """Refuse what would lose or repeat spend: a new run over an earlier one, ``--resume`` with
    nothing to resume, and any run where an earlier run's ledger went missing."""
    run_id = recorded_run_id(out)
    if run_id is not None and meta.get("run_id") != run_id:
        rescued = out / RESCUED_NAME
        hint = (f"; its record was rescued to {rescued} (move it back to {LEDGER_NAME} to resume)"
                if rescued.exists() else "")
        what = "is missing" if not (out / LEDGER_NAME).exists() else "was replaced by another"
        raise InputError(f"{out}: the ledger of run {run_id} {what} (deleted mid-run?), so what it "
                         f"spent is unknown: refusing to start afresh{hint}; or choose another --out")
    if meta and not resume:
        raise InputError(f"{out}: holds the ledger of an earlier run; pass --resume to continue it, "
                         f"or choose another --out")
    if resume and not meta:
        what = ("does not exist" if not out.exists()
                else f"holds no run ({LEDGER_NAME} {'was never set up' if (out / LEDGER_NAME).exists() else 'is not there'})")
        raise InputError(f"--resume: {out} {what}; nothing to resume (run without --resume to start)")


def record_run_id(out: Path, run_id: str) -> None:
    """Write ``ledger.id`` (atomically) once the ledger's meta holds the same id."""
    tmp = out / (RUN_ID_NAME + ".tmp")
    tmp.write_text(run_id + "\n")
    tmp.replace(out / RUN_ID_NAME)
