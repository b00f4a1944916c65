"""The run ledger: SQLite (WAL) beside the report, the single record of what a run did and paid.

Tables: ``meta`` (key/value: plan hash, budget, simulated, seed), ``tasks`` (one row per
task: status pending/running/done/failed/queued, the model used, tokens, cost, latency,
output, error; its check and grade: score, grader, reason, grading cost; a cascade task's
label, projected acceptance and quality, and the verifier's decision), ``attempts``
(one row per call: model, purpose ``answer``, ``grade`` (a judge's call), ``verify`` or
``escalate`` (a cascade's verifier calls and its second stage), ``fallback`` (the plan's
fallbacks of a cascade task whose stages all failed) or ``grant`` (money a
worker of a distributed run holds, see planner.distributed), state,
reservation, cost, tokens (prompt tokens read from / written to the provider's cache among
them), latency, error; ``batch_job`` for a request sent in a provider's batch job) and
``batch_jobs`` (one row per batch job: its offering, state, the provider's file and batch ids,
request counts, reservation, cost and timings) and ``cascade_stages`` (each answered stage of
a cascade task, written in the transaction of the attempt that paid for it, so a resumed run
never asks it again). Money is integer picodollars. Columns added
since the first ledgers are added on open (``MIGRATIONS``), so older ledgers resume.

Crash rules (what makes ``--resume`` safe after ``kill -9``):

- an attempt row in state ``inflight`` with its reservation is *committed before the call is
  sent* (``await ledger.commit()``), so no call is ever unrecorded;
- its outcome and the task's final state are written after the call; writes made in the
  same event-loop tick share one transaction (group commit), which keeps 1k+ tasks/s;
- a batch job is recorded (its requests as ``inflight`` attempts holding their worst case)
  *before* its file is uploaded, and its file and batch ids as soon as they are known, so a
  resumed run finds it again by id and never submits it twice; its attempts stay ``inflight``
  across a crash (the job goes on at the provider) until its results are read;
- on resume an ``inflight`` attempt (not in a batch job) becomes ``lost`` and its whole reservation counts as
  spent (the provider may have billed it), its task runs again; a ``done`` task never runs
  again, and a graded one is never graded again by a paid call (a lost judge call is
  counted as grading cost and the judge asked again).

Storage faults: every commit also checks that the ledger file is still the one the run opened
(device and inode). A failed commit (full disk, read-only folder) or a ledger deleted or
replaced mid-run stops the run: the commit barrier raises ``StorageError``, so no further
call is sent. A deleted ledger's record is first rescued from the open connection into
``ledger.rescued.sqlite``.

This module owns the schema and every query on it: the run writes through ``Ledger``; reports,
the pipeline, grading and outcome history read through the functions at the end of the module
(``read_meta``, ``read_run``, ``task_results``, ``done_outputs``, ``graded_answers``,
``recorded_spend_pusd``), so no other module holds SQL on the ledger.

Durability: ``synchronous=NORMAL`` for simulated runs (survives any process crash, may lose
the last commits on power loss), ``FULL`` for live runs (every commit is fsynced).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from planner.errors import StorageError


class StageAnswer(NamedTuple):
    """A cascade stage's stored answer with its usage."""

    output: str
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None


LEDGER_NAME = "ledger.sqlite"
RESCUED_NAME = "ledger.rescued.sqlite"  # a deleted ledger's record, copied from the open connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks (
  task_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT, priority REAL,
  planned_model TEXT, status TEXT NOT NULL, model TEXT, attempts INTEGER NOT NULL DEFAULT 0,
  max_tokens INTEGER, max_latency_s REAL,
  projected_input_tokens INTEGER, projected_output_tokens INTEGER,
  projected_cost_pusd INTEGER, projected_latency_s REAL,
  input_tokens INTEGER, output_tokens INTEGER, cost_pusd INTEGER NOT NULL DEFAULT 0,
  latency_s REAL, reason TEXT, output TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY, task_id TEXT NOT NULL, n INTEGER NOT NULL, model TEXT NOT NULL,
  state TEXT NOT NULL, reserved_pusd INTEGER NOT NULL, cost_pusd INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, error TEXT,
  started_at REAL, ended_at REAL);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id);
CREATE TABLE IF NOT EXISTS batch_jobs (
  job_id TEXT PRIMARY KEY, model TEXT NOT NULL, state TEXT NOT NULL, file_name TEXT NOT NULL,
  input_file_id TEXT, batch_id TEXT, output_file_id TEXT, error_file_id TEXT, provider_status TEXT,
  n_requests INTEGER NOT NULL, n_done INTEGER NOT NULL DEFAULT 0, n_failed INTEGER NOT NULL DEFAULT 0,
  projected_pusd INTEGER NOT NULL, reserved_pusd INTEGER NOT NULL, cost_pusd INTEGER NOT NULL DEFAULT 0,
  window_s REAL, created_at REAL, uploaded_at REAL, submitted_at REAL, ended_at REAL,
  submitted_s REAL, ended_s REAL, polls INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS cascade_stages (
  task_id TEXT NOT NULL, idx INTEGER NOT NULL, model TEXT NOT NULL, output TEXT,
  input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, PRIMARY KEY (task_id, idx));
CREATE INDEX IF NOT EXISTS tasks_order ON tasks(status, priority DESC, seq);
"""

#: the purposes of the calls whose cost is the task's own (a judge's grading cost is not)
TASK_PURPOSES = "('answer', 'verify', 'escalate', 'fallback')"

#: Columns added after the first ledgers: (table, column, declaration), added when missing.
MIGRATIONS = (
    ("tasks", "check_json", "TEXT"),          # the task's check (planner.checks), JSON
    ("tasks", "chain_quality", "TEXT"),       # {model: the plan's projected quality there}, JSON
    ("tasks", "prompt", "TEXT"),              # the task's text, for grading and outcome history
    ("tasks", "score", "REAL"),               # in [0, 1]; NULL = not graded (yet)
    ("tasks", "grader", "TEXT"),
    ("tasks", "grade_reason", "TEXT"),
    ("tasks", "grade_cost_pusd", "INTEGER NOT NULL DEFAULT 0"),
    ("tasks", "graded_at", "REAL"),
    ("attempts", "purpose", "TEXT NOT NULL DEFAULT 'answer'"),
    ("tasks", "prefix_group", "TEXT"),                 # the task's prompt-prefix group
    ("tasks", "projected_cached_tokens", "INTEGER"),   # prefix tokens the plan expects read from the cache
    ("tasks", "cached_tokens", "INTEGER"),             # prompt tokens the provider read from its cache
    ("tasks", "cache_write_tokens", "INTEGER"),        # ... and wrote to it
    ("attempts", "cached_tokens", "INTEGER"),
    ("attempts", "cache_write_tokens", "INTEGER"),
    ("attempts", "batch_job", "TEXT"),        # the batch job that carries this request, if any
    ("tasks", "cascade", "TEXT"),             # a cascade task: its label as plans print it
    ("tasks", "p_accept", "REAL"),            # the plan's projected probability that its verifier accepts
    ("tasks", "cascade_quality", "REAL"),     # the plan's expected quality of the cascade
    ("tasks", "accepted", "INTEGER"),         # the verifier's decision (1/0); NULL = not decided (yet)
    ("tasks", "decision", "TEXT"),            # why
    ("tasks", "cascade_spec", "TEXT"),        # the cascade as planned (category, first, second, verifier), JSON
)

#: batch job states: open ones are resumed by id; the others are final
BATCH_OPEN_STATES = ("prepared", "uploaded", "creating", "submitted", "cancelling")
BATCH_JOB_FIELDS = ("state", "input_file_id", "batch_id", "output_file_id", "error_file_id", "provider_status",
                    "n_done", "n_failed", "cost_pusd", "uploaded_at", "submitted_at", "ended_at",
                    "submitted_s", "ended_s", "polls", "error")

TASK_COLUMNS = ("task_id", "seq", "type", "priority", "planned_model", "status", "max_tokens",
                "max_latency_s", "projected_input_tokens", "projected_output_tokens",
                "projected_cost_pusd", "projected_latency_s", "reason", "check_json", "chain_quality",
                "prompt", "prefix_group", "projected_cached_tokens", "cascade", "p_accept", "cascade_quality",
                "cascade_spec")


def migrate(conn: sqlite3.Connection) -> None:
    """Add the columns of ``MIGRATIONS`` a ledger lacks (a ledger from an earlier version)."""
    have: dict[str, set[str]] = {}
    for table, column, decl in MIGRATIONS:
        if table not in have:
            have[table] = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have[table]:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            have[table].add(column)


def columns_of(conn: sqlite3.Connection, table: str) -> set[str]:
    """The columns ``table`` has (readers of older ledgers select NULL for the rest)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


class Ledger:
    """One connection, used from the event loop's thread only."""

    def __init__(self, path: Path, *, durable: bool = False) -> None:
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.conn.executescript(SCHEMA)
            migrate(self.conn)
            self._identity = _identity(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the run ledger: {_why(exc)}", file=str(self.path)) from None
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._error: BaseException | None = None
        self._next_attempt_id = (self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM attempts")
                                 .fetchone()[0]) + 1

    # -- metadata and setup (synchronous, before the run starts) -------------------------------
    def set_meta(self, values: dict[str, str]) -> None:
        with self._setup_tx():
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def insert_tasks(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows in ``TASK_COLUMNS`` order; tasks already present are left as they are."""
        cols = ", ".join(TASK_COLUMNS)
        marks = ", ".join("?" * len(TASK_COLUMNS))
        with self._setup_tx():
            self.conn.executemany(f"INSERT OR IGNORE INTO tasks ({cols}) VALUES ({marks})", rows)

    def recover(self) -> int:
        """After a crash: in-flight attempts become ``lost`` and count their reservation as
        spent; their tasks (and any left ``running``) go back to ``pending``. Returns the
        number of lost attempts."""
        now = time.time()
        with self._setup_tx():
            lost = self.conn.execute(
                "UPDATE attempts SET state='lost', cost_pusd=reserved_pusd, ended_at=?, "
                "error='interrupted in flight: may have been billed, reservation counted' "
                "WHERE state='inflight' AND batch_job IS NULL", (now,)).rowcount
            self.conn.execute(
                "UPDATE tasks SET cost_pusd=(SELECT COALESCE(SUM(cost_pusd),0) FROM attempts a "
                f"WHERE a.task_id=tasks.task_id AND a.purpose IN {TASK_PURPOSES}) "
                "WHERE status IN ('running','pending')")
            # a task in an open batch job stays running: the job is resumed by its ids
            self.conn.execute("UPDATE tasks SET status='pending' WHERE status='running' AND task_id NOT IN "
                              "(SELECT task_id FROM attempts WHERE state='inflight' AND batch_job IS NOT NULL)")
            self.conn.execute(
                "UPDATE tasks SET grade_cost_pusd=(SELECT COALESCE(SUM(cost_pusd),0) FROM attempts a "
                "WHERE a.task_id=tasks.task_id AND a.purpose='grade') "
                "WHERE task_id IN (SELECT task_id FROM attempts WHERE purpose='grade')")
        return lost

    def requeue_budget_queued(self) -> int:
        """Tasks queued earlier for lack of budget may run on resume (they were never sent)."""
        with self._setup_tx():
            return self.conn.execute("UPDATE tasks SET status='pending', reason=NULL "
                                     "WHERE status='queued' AND reason LIKE 'budget:%'").rowcount

    def count_pending(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM tasks WHERE status='pending'").fetchone()[0])

    def pending_tasks(self, chunk: int = 2000) -> Iterator[tuple[int, str, int, int]]:
        """(seq, task_id, attempts so far, cost so far in pUSD) of unfinished tasks, by priority
        then plan order, read a chunk at a time (keyset paging) so memory stays flat."""
        key: tuple[float, int] = (float("inf"), -1)
        while True:
            rows = self.conn.execute(
                "SELECT priority, seq, task_id, attempts, cost_pusd FROM tasks WHERE status='pending' "
                "AND (priority < ? OR (priority = ? AND seq > ?)) ORDER BY priority DESC, seq LIMIT ?",
                (key[0], key[0], key[1], chunk)).fetchall()
            if not rows:
                return
            key = (rows[-1][0], rows[-1][1])
            for _, seq, task_id, attempts, cost_pusd in rows:
                yield seq, task_id, attempts, cost_pusd

    def ungraded_tasks(self) -> list[tuple[int, str, str, str]]:
        """(seq, task_id, model, output) of done tasks whose check has no score yet (a run
        interrupted between an answer and its grade, or a judge that could not be reached)."""
        return list(self.conn.execute(
            "SELECT seq, task_id, model, COALESCE(output, '') FROM tasks WHERE status='done' "
            "AND check_json IS NOT NULL AND score IS NULL ORDER BY seq"))

    def grade_attempts(self, task_id: str) -> int:
        """Judge calls made so far for ``task_id`` (numbers the next one)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM attempts WHERE task_id=? AND purpose='grade'",
                                     (task_id,)).fetchone()[0])

    def grade_cost_pusd(self, task_id: str) -> int:
        """What grading ``task_id`` has cost so far (its judge's calls)."""
        row = self.conn.execute("SELECT grade_cost_pusd FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        return int(row[0] or 0) if row else 0

    def tasks_for_grading(self) -> list[tuple[Any, ...]]:
        """Every task in plan order: (task_id, status, model, output ('' when none), check_json,
        chain_quality, prompt, score, grader), what ``routeplan grade`` decides from."""
        return list(self.conn.execute(
            "SELECT task_id, status, model, COALESCE(output, ''), check_json, chain_quality, prompt, "
            "score, grader FROM tasks ORDER BY seq"))

    def spent_pusd(self) -> int:
        """All money the run may have spent: settled attempts plus in-flight reservations."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN state='inflight' THEN reserved_pusd ELSE cost_pusd END),0) "
            "FROM attempts").fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"))

    def cascade_stages(self, task_id: str) -> dict[int, StageAnswer]:
        """The answered stages of a cascade task (a resumed run does not ask them again)."""
        return {idx: StageAnswer(output or "", i, o, lat) for idx, output, i, o, lat in self.conn.execute(
            "SELECT idx, output, input_tokens, output_tokens, latency_s FROM cascade_stages WHERE task_id=?",
            (task_id,))}

    def cascade_fell_back(self, task_id: str) -> str | None:
        """Why a cascade task's stages gave up (its decision), when it has gone on to the plan's
        fallbacks (an attempt of purpose ``fallback``); None otherwise."""
        row = self.conn.execute(
            "SELECT decision FROM tasks WHERE task_id=? AND EXISTS (SELECT 1 FROM attempts a "
            "WHERE a.task_id=tasks.task_id AND a.purpose='fallback')", (task_id,)).fetchone()
        return None if row is None else str(row[0] or "")

    # -- batch jobs ------------------------------------------------------------------------------
    def pending_batch_tasks(self, models: list[str]) -> list[tuple[int, str, int, int]]:
        """(seq, task_id, attempts, cost) of pending tasks planned on a batch offering in
        ``models`` whose earlier batch requests (if any) were only cancelled by the user: the
        ones that go into new batch jobs (a task whose request failed or expired falls back
        to realtime instead)."""
        if not models:
            return []
        marks = ", ".join("?" * len(models))
        return list(self.conn.execute(
            f"SELECT seq, task_id, attempts, cost_pusd FROM tasks WHERE status='pending' AND planned_model IN "
            f"({marks}) AND task_id NOT IN (SELECT task_id FROM attempts WHERE batch_job IS NOT NULL AND "
            f"state NOT IN ('cancelled', 'inflight')) ORDER BY priority DESC, seq", models))

    def batch_tried(self, task_id: str) -> bool:
        """Whether a batch request of this task ended other than cancelled (it runs realtime now)."""
        return self.conn.execute("SELECT 1 FROM attempts WHERE task_id=? AND batch_job IS NOT NULL AND "
                                 "state NOT IN ('cancelled', 'inflight') LIMIT 1", (task_id,)).fetchone() is not None

    def begin_batch_job(self, job_id: str, model: str, file_name: str, requests: list[tuple[str, int, int]],
                        projected_pusd: int, window_s: float | None) -> list[int]:
        """Queue the job's row and one ``inflight`` attempt per request ((task_id, attempt number,
        reserved worst case)); the caller commits before uploading. Returns the attempt ids."""
        now = time.time()
        ids = []
        for task_id, n, reserved in requests:
            attempt_id = self._next_attempt_id
            self._next_attempt_id += 1
            ids.append(attempt_id)
            self._write("INSERT INTO attempts (id, task_id, n, model, state, reserved_pusd, started_at, batch_job) "
                        "VALUES (?, ?, ?, ?, 'inflight', ?, ?, ?)", (attempt_id, task_id, n, model, reserved, now, job_id))
            self._write("UPDATE tasks SET status='running', attempts=?, updated_at=? WHERE task_id=?", (n, now, task_id))
        self._write("INSERT INTO batch_jobs (job_id, model, state, file_name, n_requests, projected_pusd, "
                    "reserved_pusd, window_s, created_at) VALUES (?, ?, 'prepared', ?, ?, ?, ?, ?, ?)",
                    (job_id, model, file_name, len(requests), projected_pusd,
                     sum(r for _, _, r in requests), window_s, now))
        return ids

    def update_batch_job(self, job_id: str, **fields: Any) -> None:
        """Queue new values for a job's columns (``BATCH_JOB_FIELDS``)."""
        bad = set(fields) - set(BATCH_JOB_FIELDS)
        if bad:
            raise ValueError(f"not batch job fields: {sorted(bad)}")
        cols = ", ".join(f"{k}=?" for k in fields)
        self._write(f"UPDATE batch_jobs SET {cols} WHERE job_id=?", (*fields.values(), job_id))

    def open_batch_jobs(self) -> list[dict[str, Any]]:
        """Jobs an earlier process left unfinished, oldest first, as dicts of their columns."""
        marks = ", ".join("?" * len(BATCH_OPEN_STATES))
        cur = self.conn.execute(f"SELECT * FROM batch_jobs WHERE state IN ({marks}) ORDER BY created_at, job_id",
                                BATCH_OPEN_STATES)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def batch_job_requests(self, job_id: str) -> list[tuple[int, str, int, int, int, int]]:
        """(attempt id, task_id, attempt number, reserved, task's cost before it, seq) of the
        job's requests still in flight, in the job's order (its request file's)."""
        return list(self.conn.execute(
            "SELECT a.id, a.task_id, a.n, a.reserved_pusd, t.cost_pusd, t.seq FROM attempts a "
            "JOIN tasks t ON t.task_id=a.task_id WHERE a.batch_job=? AND a.state='inflight' ORDER BY a.id",
            (job_id,)))

    def batch_reserved_pusd(self) -> int:
        """Reservations held by open batch jobs (counted as spent by ``spent_pusd``)."""
        return int(self.conn.execute("SELECT COALESCE(SUM(reserved_pusd), 0) FROM attempts "
                                     "WHERE state='inflight' AND batch_job IS NOT NULL").fetchone()[0])

    def batch_job_error(self, job_id: str) -> str | None:
        """The last error recorded on a job (why it was cancelled, say)."""
        row = self.conn.execute("SELECT error FROM batch_jobs WHERE job_id=?", (job_id,)).fetchone()
        return row[0] if row else None

    def set_meta_soon(self, key: str, value: str) -> None:
        """Queue one meta value (written with the next commit)."""
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- writes during the run (queued, group-committed) ----------------------------------------
    def begin_attempt(self, task_id: str, n: int, model: str, reserved_pusd: int, *,
                      purpose: str = "answer") -> int:
        """An 'inflight' call of the task (``purpose``: answer, or a cascade's verify/escalate/fallback);
        the task shows as running."""
        attempt_id = self._next_attempt_id
        self._next_attempt_id += 1
        now = time.time()
        self._write("INSERT INTO attempts (id, task_id, n, model, state, reserved_pusd, started_at, purpose) "
                    "VALUES (?, ?, ?, ?, 'inflight', ?, ?, ?)",
                    (attempt_id, task_id, n, model, reserved_pusd, now, purpose))
        self._write("UPDATE tasks SET status='running', attempts=?, updated_at=? WHERE task_id=?",
                    (n, now, task_id))
        return attempt_id

    def record_stage(self, task_id: str, idx: int, model: str, output: str, input_tokens: int,
                     output_tokens: int, latency_s: float) -> None:
        """A cascade stage's answer: queued right after its attempt's outcome, so both commit together."""
        self._write("INSERT OR REPLACE INTO cascade_stages VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (task_id, idx, model, output, input_tokens, output_tokens, latency_s))

    def record_decision(self, task_id: str, accepted: bool, reason: str) -> None:
        """The cascade verifier's decision on the task's first answer, and why."""
        self._write("UPDATE tasks SET accepted=?, decision=? WHERE task_id=?", (int(accepted), reason, task_id))

    def begin_grade_attempt(self, task_id: str, n: int, model: str, reserved_pusd: int) -> int:
        """A judge's call for a done task: recorded like an answer's, the task left as it is."""
        attempt_id = self._next_attempt_id
        self._next_attempt_id += 1
        self._write("INSERT INTO attempts (id, task_id, n, model, state, reserved_pusd, started_at, purpose) "
                    "VALUES (?, ?, ?, ?, 'inflight', ?, ?, 'grade')",
                    (attempt_id, task_id, n, model, reserved_pusd, time.time()))
        return attempt_id

    def record_grade(self, task_id: str, score: float | None, grader: str, reason: str,
                     grade_cost_pusd: int | None = None) -> None:
        """A task's grade (``score`` None = could not be graded; ``reason`` says why)."""
        if grade_cost_pusd is None:
            self._write("UPDATE tasks SET score=?, grader=?, grade_reason=?, graded_at=? WHERE task_id=?",
                        (score, grader, reason, time.time(), task_id))
        else:
            self._write("UPDATE tasks SET score=?, grader=?, grade_reason=?, grade_cost_pusd=?, graded_at=? "
                        "WHERE task_id=?", (score, grader, reason, grade_cost_pusd, time.time(), task_id))

    def set_check(self, task_id: str, check_json: str) -> None:
        """Replace a task's check (``routeplan grade --tasks`` with new checks)."""
        self._write("UPDATE tasks SET check_json=? WHERE task_id=?", (check_json, task_id))

    def set_grade_cost(self, task_id: str, cost_pusd: int) -> None:
        self._write("UPDATE tasks SET grade_cost_pusd=? WHERE task_id=?", (cost_pusd, task_id))

    def end_attempt(self, attempt_id: int, state: str, cost_pusd: int, input_tokens: int | None,
                    output_tokens: int | None, latency_s: float | None, error: str | None,
                    cached_tokens: int | None = None, cache_write_tokens: int | None = None) -> None:
        self._write("UPDATE attempts SET state=?, cost_pusd=?, input_tokens=?, output_tokens=?, "
                    "latency_s=?, error=?, ended_at=?, cached_tokens=?, cache_write_tokens=? WHERE id=?",
                    (state, cost_pusd, input_tokens, output_tokens, latency_s, error, time.time(),
                     cached_tokens, cache_write_tokens, attempt_id))

    def finish_task(self, task_id: str, status: str, model: str | None, attempts: int,
                    cost_pusd: int, input_tokens: int | None = None, output_tokens: int | None = None,
                    latency_s: float | None = None, reason: str | None = None,
                    output: str | None = None, cached_tokens: int | None = None,
                    cache_write_tokens: int | None = None) -> None:
        self._write("UPDATE tasks SET status=?, model=?, attempts=?, cost_pusd=?, input_tokens=?, "
                    "output_tokens=?, latency_s=?, reason=?, output=?, updated_at=?, cached_tokens=?, "
                    "cache_write_tokens=? WHERE task_id=?",
                    (status, model, attempts, cost_pusd, input_tokens, output_tokens, latency_s, reason,
                     output, time.time(), cached_tokens, cache_write_tokens, task_id))

    # -- a distributed run (planner.distributed): the coordinator writes what its workers did --
    def record_attempt(self, task_id: str, n: int, model: str, reserved_pusd: int, state: str,
                       cost_pusd: int, input_tokens: int | None, output_tokens: int | None,
                       latency_s: float | None, error: str | None, started_at: float,
                       ended_at: float, cached_tokens: int | None = None,
                       cache_write_tokens: int | None = None) -> None:
        """An attempt a worker made and settled, written whole (its money was covered by the
        worker's grant, durable before the call was sent)."""
        attempt_id = self._next_attempt_id
        self._next_attempt_id += 1
        self._write("INSERT INTO attempts (id, task_id, n, model, state, reserved_pusd, cost_pusd, "
                    "input_tokens, output_tokens, latency_s, error, started_at, ended_at, cached_tokens, "
                    "cache_write_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt_id, task_id, n, model, state, reserved_pusd, cost_pusd, input_tokens,
                     output_tokens, latency_s, error, started_at, ended_at, cached_tokens, cache_write_tokens))
        self._write("UPDATE tasks SET status='running', attempts=?, updated_at=? WHERE task_id=? "
                    "AND status IN ('pending', 'running')", (n, ended_at, task_id))

    def set_grant(self, holder: str, reserved_pusd: int) -> None:
        """Money a worker holds (granted, not yet settled): an 'inflight' row of purpose
        'grant', so a crash counts all of it as spent, as it does a call in flight."""
        self._write("DELETE FROM attempts WHERE task_id=? AND purpose='grant' AND state='inflight'", (holder,))
        if reserved_pusd > 0:
            attempt_id = self._next_attempt_id
            self._next_attempt_id += 1
            self._write("INSERT INTO attempts (id, task_id, n, model, state, reserved_pusd, started_at, "
                        "purpose) VALUES (?, ?, 0, ?, 'inflight', ?, ?, 'grant')",
                        (attempt_id, holder, holder, reserved_pusd, time.time()))

    def lose_grant(self, holder: str, reason: str) -> None:
        """A worker died holding money: what it held counts as spent (it may have been billed)."""
        self._write("UPDATE attempts SET state='lost', cost_pusd=reserved_pusd, error=?, ended_at=? "
                    "WHERE task_id=? AND purpose='grant' AND state='inflight'", (reason, time.time(), holder))

    def return_to_pending(self, task_ids: Iterable[str]) -> None:
        """Unfinished tasks of a worker that died run again; their cost is what was recorded."""
        for task_id in task_ids:
            self._write("UPDATE tasks SET status='pending', cost_pusd=(SELECT COALESCE(SUM(cost_pusd),0) "
                        f"FROM attempts a WHERE a.task_id=tasks.task_id AND a.purpose IN {TASK_PURPOSES}) "
                        "WHERE task_id=? AND status IN ('pending', 'running')", (task_id,))

    def task_progress(self, task_id: str) -> tuple[int, int]:
        """(attempts, cost in pUSD) recorded for a task (read after the queued writes are flushed)."""
        row = self.conn.execute("SELECT attempts, cost_pusd FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def commit(self) -> None:
        """Wait until every write queued so far is committed (the barrier before a call)."""
        if self._error is not None:
            raise self._error
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._schedule()
        await future

    def flush_soon(self) -> None:
        """Commit queued writes soon without waiting (after-call bookkeeping)."""
        self._schedule()

    def flush(self) -> None:
        """Commit queued writes now (the run's end, or a synchronous caller), then check that
        the ledger file is still the run's own. Any failure stops the run (StorageError)."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        waiters, self._waiters = self._waiters, []
        try:
            if self._error is not None:
                raise self._error
            if pending:
                with self._tx():
                    for sql, params in pending:
                        self.conn.execute(sql, params)
            self.check_identity()
        except Exception as exc:  # a full disk must stop the run, not be ignored
            error = self._error or self._storage_error(exc)
            self._error = error
            for w in waiters:
                if not w.done():
                    w.set_exception(error)
            raise error from None
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def check_identity(self) -> None:
        """Raise StorageError when the ledger file was deleted or replaced since it was opened."""
        if _identity(self.path) != self._identity:
            raise self._storage_error(None)

    def close(self) -> None:
        try:
            if self._pending and self._error is None:
                self.flush()
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()

    def _storage_error(self, exc: BaseException | None) -> StorageError:
        """One line for a failed commit, or for a ledger deleted/replaced (its record rescued)."""
        if isinstance(exc, StorageError):
            return exc
        if _identity(self.path) != self._identity:
            where = self.path.parent / RESCUED_NAME
            try:
                if where.exists():
                    raise FileExistsError(f"{where} exists")
                dst = sqlite3.connect(where)
                try:
                    self.conn.backup(dst)
                finally:
                    dst.close()
                saved = f"its record so far was rescued to {where}"
            except (sqlite3.Error, OSError) as err:
                saved = f"its record could not be rescued ({_why(err)})"
            gone = "deleted" if not self.path.exists() else "replaced"
            return StorageError(f"the run ledger was {gone} mid-run: stopped sending calls at once; "
                                f"{saved}", file=str(self.path))
        return StorageError(f"cannot record the run ({_why(exc)}): stopped sending calls at once; what "
                            f"was recorded is kept: fix the folder (space, permissions) and continue with "
                            f"--resume", file=str(self.path))

    # -- internals -------------------------------------------------------------------------------
    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.append((sql, params))

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_callback)

    def _flush_callback(self) -> None:
        # a failure is kept in self._error and raised by the next commit()
        with contextlib.suppress(Exception):
            self.flush()

    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    @contextlib.contextmanager
    def _setup_tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction of the run's synchronous set-up: a storage fault is one StorageError."""
        try:
            with self._tx() as conn:
                yield conn
        except (sqlite3.Error, OSError) as exc:
            raise self._storage_error(exc) from None


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def open_ledger(out_dir: Path, *, durable: bool) -> Ledger:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the output folder: {_why(exc)}", file=str(out_dir)) from None
    return Ledger(out_dir / LEDGER_NAME, durable=durable)


# -- reading a run's ledger (read-only: reports, the pipeline, outcome history) -----------------

#: Task columns a ledger may lack (written before they existed): read as NULL.
OPTIONAL_TASK_COLUMNS = ("type", "check_json", "chain_quality", "score", "grader", "grade_reason",
                         "grade_cost_pusd", "prefix_group", "projected_cached_tokens", "cascade")
#: Attempt columns a ledger from an earlier version may lack (read as NULL).
OPTIONAL_ATTEMPT_COLUMNS = ("cached_tokens", "cache_write_tokens")


@contextlib.contextmanager
def reading(path: Path, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the ledger at ``path`` (sqlite3.Error when it is not one)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    try:
        yield conn
    finally:
        conn.close()


def read_meta(path: Path) -> dict[str, str]:
    """The ledger's meta table (sqlite3.OperationalError "no such table" before set-up)."""
    with reading(path) as conn:
        return dict(conn.execute("SELECT key, value FROM meta"))


def read_batch_jobs(path: Path) -> list[dict[str, Any]]:
    """Every batch job of the ledger at ``path``, oldest first, as dicts of their columns (none
    for a ledger older than batch jobs)."""
    with reading(path) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='batch_jobs'").fetchone():
            return []
        cur = conn.execute("SELECT * FROM batch_jobs ORDER BY created_at, job_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]


def read_run(path: Path) -> tuple[dict[str, str], Any, Any]:
    """(meta, tasks DataFrame in plan order, attempts DataFrame) for the run report; columns a
    ledger from an earlier version lacks read as NULL (``purpose`` as ``'answer'``)."""
    import pandas as pd

    with reading(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        have = columns_of(conn, "tasks")
        extra = ", ".join(c if c in have else f"NULL AS {c}" for c in OPTIONAL_TASK_COLUMNS)
        tasks = pd.read_sql_query(
            "SELECT task_id, status, model, planned_model, attempts, projected_input_tokens, "
            "projected_output_tokens, projected_cost_pusd, projected_latency_s, input_tokens, "
            f"output_tokens, cost_pusd, latency_s, reason, {extra} FROM tasks ORDER BY seq", conn)
        have_a = columns_of(conn, "attempts")
        purpose = "purpose" if "purpose" in have_a else "'answer' AS purpose"
        cache = ", ".join(c if c in have_a else f"NULL AS {c}" for c in OPTIONAL_ATTEMPT_COLUMNS)
        attempts = pd.read_sql_query(
            f"SELECT task_id, model, state, reserved_pusd, cost_pusd, {purpose}, {cache} FROM attempts", conn)
    return meta, tasks, attempts


def read_cascades(path: Path) -> list[dict[str, Any]]:
    """Per cascade (label) of the ledger at ``path``: tasks, decisions, acceptances, projected
    acceptance and quality, projected and actual cost, spend by purpose (answer = stage one,
    verify, escalate, fallback, grade), graded scores, tasks whose stages all failed and went on
    to the plan's fallbacks (``fell_back``) and those a fallback answered (``fallback_done``);
    none for a ledger without cascades."""
    with reading(path) as conn:
        if "cascade" not in columns_of(conn, "tasks"):
            return []
        rows = conn.execute(
            "SELECT cascade, COUNT(*), SUM(accepted IS NOT NULL), COALESCE(SUM(accepted), 0), AVG(p_accept), "
            "AVG(cascade_quality), SUM(status='done'), COUNT(score), AVG(score), "
            "COALESCE(SUM(projected_cost_pusd), 0), COALESCE(SUM(cost_pusd), 0), "
            "SUM(EXISTS (SELECT 1 FROM attempts a WHERE a.task_id = tasks.task_id AND a.purpose = 'fallback')), "
            "SUM(status = 'done' AND EXISTS (SELECT 1 FROM attempts a WHERE a.task_id = tasks.task_id "
            "AND a.purpose = 'fallback' AND a.state = 'ok')) "
            "FROM tasks WHERE cascade IS NOT NULL GROUP BY cascade ORDER BY cascade").fetchall()
        spend = {(c, p): int(v) for c, p, v in conn.execute(
            "SELECT t.cascade, a.purpose, COALESCE(SUM(CASE WHEN a.state='inflight' THEN a.reserved_pusd "
            "ELSE a.cost_pusd END), 0) FROM attempts a JOIN tasks t ON a.task_id = t.task_id "
            "WHERE t.cascade IS NOT NULL GROUP BY t.cascade, a.purpose")}
    keys = ("cascade", "tasks", "decided", "accepted", "projected_accept_rate", "projected_quality", "done",
            "graded", "measured_quality", "projected_cost_pusd", "cost_pusd", "fell_back", "fallback_done")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        for purpose in ("answer", "verify", "escalate", "fallback", "grade"):
            d[f"{purpose}_cost_pusd"] = spend.get((d["cascade"], purpose), 0)
        out.append(d)
    return out


def _meta_and_task_columns(conn: sqlite3.Connection) -> tuple[dict[str, str], set[str]]:
    return dict(conn.execute("SELECT key, value FROM meta")), columns_of(conn, "tasks")


def cascade_outcomes(path: Path) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """(meta, rows) where a row is (task_id, type, cascade label, cascade_spec JSON, accepted,
    status, model, score, prompt, the answered stage indices as "0,1,2") of each cascade task
    in plan order; none for a ledger without cascades. ``cascade_spec`` is NULL in ledgers
    written before it was recorded."""
    with reading(path) as conn:
        meta, have = _meta_and_task_columns(conn)
        if "cascade" not in have:
            return meta, []
        spec = "cascade_spec" if "cascade_spec" in have else "NULL"
        score = "score" if "score" in have else "NULL"
        return meta, conn.execute(
            f"SELECT t.task_id, t.type, t.cascade, {spec}, t.accepted, t.status, t.model, {score}, t.prompt, "
            "(SELECT group_concat(s.idx) FROM cascade_stages s WHERE s.task_id = t.task_id) "
            "FROM tasks t WHERE t.cascade IS NOT NULL ORDER BY t.seq").fetchall()


def task_results(path: Path) -> list[dict[str, Any]]:
    """Per task in plan order: task_id, status, model, planned_model, projected_cost_pusd,
    cost_pusd, input_tokens, output_tokens, latency_s, reason, output, score, grader,
    grade_reason."""
    with reading(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT task_id, status, model, planned_model, projected_cost_pusd, cost_pusd, "
            "input_tokens, output_tokens, latency_s, reason, output, score, grader, grade_reason "
            "FROM tasks ORDER BY seq")]


def done_outputs(path: Path) -> list[tuple[str, str, str | None]]:
    """(task_id, model, output) of each done task, in plan order."""
    with reading(path) as conn:
        return list(conn.execute("SELECT task_id, model, output FROM tasks WHERE status='done' ORDER BY seq"))


def graded_answers(path: Path) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """(meta, rows) where a row is (task_id, type, model, score, cost_pusd, input_tokens,
    output_tokens, latency_s, prompt, output) of each done task with a score, in plan order
    (none for a ledger from before checks). Cascade tasks are left out, both stages: the verifier
    chose which answer was kept (accepted ones are right more often than the first model is; the
    second model answered only the prompts the verifier rejected), so their scores would bias
    the models' measured quality, and their cost is several calls'. :func:`cascade_outcomes`
    reads them for the cascades' own statistics."""
    with reading(path) as conn:
        meta, have = _meta_and_task_columns(conn)
        if "score" not in have:
            return meta, []
        single = " AND cascade IS NULL" if "cascade" in have else ""
        return meta, conn.execute(
            "SELECT task_id, type, model, score, cost_pusd, input_tokens, output_tokens, latency_s, "
            f"prompt, output FROM tasks WHERE status='done' AND score IS NOT NULL{single} ORDER BY seq").fetchall()


def recorded_spend_pusd(path: Path) -> int:
    """What the run at ``path`` may have spent (settled attempts plus in-flight reservations);
    0 when there is no readable ledger there."""
    try:
        with reading(path) as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(CASE WHEN state='inflight' THEN reserved_pusd ELSE cost_pusd END), 0) "
                "FROM attempts").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0
