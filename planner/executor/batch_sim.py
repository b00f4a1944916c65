"""The simulator's batch API: a provider's files and batches, on the run's clock.

Its storage is a folder in the run's output (``sim-batches/``: the uploaded files and one
``state.json``), written at each call the way a provider keeps its own, so a simulated run
killed mid-job resumes it by id exactly like a live one.

A job completes at a time drawn within its window (lognormal around ``MEDIAN_FRACTION`` of
the window, capped below it) on the run's clock, so ``--time-scale`` applies (at 0 the wait
is virtual). With ``fail_rate`` f, each request fails with probability f (an injected 500
line) and the job expires at its window with probability f, having answered a drawn share
of its requests; the others come back as ``batch_expired`` lines. Answers, tokens and checked
tasks' verdicts come from the realtime simulator's draws (``planner.executor.simulator``).
Every draw is seeded by (seed, the job's first and last task ids and size, task).

Prompt caching inside a job, as a provider that caches within a batch does it: the job's
requests run in file order; on a model with cache prices, the first answered request of a
prefix group writes the prefix (``cache_creation_input_tokens`` where writes are billed) and
the group's later requests in the job read it (``cached_tokens``), except for the realtime
simulator's seeded misses (``CACHE_MISS_P``), which write it again. A job takes hours, a cache
lives minutes: each job starts cold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.executor.batch_api import (
    COMPLETION_WINDOW,
    ENDPOINT,
    JOB_METADATA_KEY,
    JobStatus,
    status_of,
)
from planner.plan import ModelSnapshot

SIM_BATCH_DIR = "sim-batches"
MEDIAN_FRACTION = 0.15  # a job typically ends after 15 % of its window (3.6 h of 24 h)
SPREAD_SIGMA = 0.8
WINDOW_S = 86400.0  # COMPLETION_WINDOW


@dataclass(frozen=True)
class Expected:
    """A request as the plan projects it: its prompt tokens and expected output tokens, and
    its prefix group with the group's prefix tokens (the tokens a cache hit reads)."""

    input_tokens: int
    output_tokens: float
    prefix_group: str | None = None
    prefix_tokens: int = 0


class SimBatchAPI:
    """``now()`` is the run's elapsed time in (simulated) seconds; ``expected`` maps a task id
    to its :class:`Expected` request as the plan has it."""

    def __init__(self, root: Path, config: Any, now: Callable[[], float],
                 expected: dict[str, Expected]) -> None:
        self.root = Path(root)
        self.config = config  # planner.executor.simulator.SimConfig
        self.now = now
        self.expected = expected
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        state = self.root / "state.json"
        self.state: dict[str, Any] = json.loads(state.read_text()) if state.exists() else {"files": {}, "batches": {}}

    # -- storage ---------------------------------------------------------------------------------
    def _save(self) -> None:
        tmp = self.root / "state.json.tmp"
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.root / "state.json")

    def _new_file(self, filename: str, purpose: str, content: bytes) -> str:
        file_id = f"sim-file-{len(self.state['files']) + 1:05d}"
        tmp = self.root / "files" / (file_id + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(self.root / "files" / file_id)
        self.state["files"][file_id] = {"filename": filename, "purpose": purpose, "deleted": False}
        return file_id

    def _file(self, file_id: str) -> dict[str, Any]:
        f = self.state["files"].get(file_id)
        if f is None or f["deleted"]:
            raise _not_found(f"no such file {file_id}")
        return f

    # -- the API ---------------------------------------------------------------------------------
    async def upload(self, m: ModelSnapshot, filename: str, content: bytes) -> str:
        file_id = self._new_file(filename, "batch", content)
        self._save()
        return file_id

    async def find_uploads(self, m: ModelSnapshot, filename: str) -> list[str]:
        return [k for k, f in self.state["files"].items()
                if f["filename"] == filename and f["purpose"] == "batch" and not f["deleted"]]

    async def delete_file(self, m: ModelSnapshot, file_id: str) -> None:
        self._file(file_id)["deleted"] = True
        self._save()

    async def create(self, m: ModelSnapshot, file_id: str, job_id: str) -> JobStatus:
        self._file(file_id)
        batch_id = f"sim-batch-{len(self.state['batches']) + 1:05d}"
        from planner.executor.simulator import _rng

        # seeded by the job's requests (not its random id), so a simulated run is reproducible
        ids = [json.loads(x)["custom_id"] for x in (self.root / "files" / file_id).read_text().splitlines() if x]
        key = f"{ids[0] if ids else ''}|{ids[-1] if ids else ''}|{len(ids)}"
        rng = _rng(self.config.seed, key, "job")
        window = WINDOW_S
        expires = self.config.fail_rate > 0 and rng.random() < self.config.fail_rate
        duration = min(window * 0.98, window * MEDIAN_FRACTION * rng.lognormvariate(0, SPREAD_SIGMA))
        now = self.now()
        self.state["batches"][batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": ENDPOINT, "completion_window": COMPLETION_WINDOW,
            "input_file_id": file_id, "status": "validating", "output_file_id": None, "error_file_id": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": {JOB_METADATA_KEY: job_id},
            "model": m.name, "created_s": now, "due_s": now + (window if expires else duration),
            "expires": expires, "answered_share": rng.uniform(0.3, 0.9) if expires else 1.0, "key": key}
        self._save()
        return status_of(self.state["batches"][batch_id])

    async def find_batch(self, m: ModelSnapshot, job_id: str, file_id: str) -> JobStatus | None:
        for b in self.state["batches"].values():
            if b["metadata"].get(JOB_METADATA_KEY) == job_id or b["input_file_id"] == file_id:
                return status_of(b)
        return None

    async def retrieve(self, m: ModelSnapshot, batch_id: str) -> JobStatus:
        b = self._batch(batch_id)
        if b["status"] == "cancelling":
            self._finish(b, "cancelled", self._share_done(b))
        elif b["status"] in ("validating", "in_progress"):
            if self.now() >= b["due_s"]:
                self._finish(b, "expired" if b["expires"] else "completed", b["answered_share"])
            else:
                b["status"] = "in_progress"
        self._save()
        return status_of(b)

    async def cancel(self, m: ModelSnapshot, batch_id: str) -> JobStatus:
        b = self._batch(batch_id)
        if b["status"] in ("validating", "in_progress", "finalizing"):
            b["status"] = "cancelling"
            b["cancel_s"] = self.now()
            self._save()
        return status_of(b)

    async def content(self, m: ModelSnapshot, file_id: str) -> bytes:
        self._file(file_id)
        return (self.root / "files" / file_id).read_bytes()

    # -- internals -------------------------------------------------------------------------------
    def _batch(self, batch_id: str) -> dict[str, Any]:
        b = self.state["batches"].get(batch_id)
        if b is None:
            raise _not_found(f"no such batch {batch_id}")
        return b

    @staticmethod
    def _cache(snap: ModelSnapshot, warm: set[str], exp: Expected, rng: Any) -> tuple[int, int]:
        """(tokens read from the cache, tokens written to it) for the job's next answered request."""
        from planner.executor.simulator import CACHE_MISS_P

        tokens = min(exp.prefix_tokens, exp.input_tokens)
        if exp.prefix_group is None or tokens <= 0 or snap.cache_read_cost_per_token is None:
            return 0, 0
        if exp.prefix_group in warm and rng.random() >= CACHE_MISS_P:
            return tokens, 0
        warm.add(exp.prefix_group)
        return 0, tokens if snap.cache_write_cost_per_token is not None else 0

    def _share_done(self, b: dict[str, Any]) -> float:
        """A cancelled job answered what it had reached by the cancel (in proportion to time)."""
        span = max(b["due_s"] - b["created_s"], 1e-9)
        return max(0.0, min(1.0, (b.get("cancel_s", self.now()) - b["created_s"]) / span))

    def _finish(self, b: dict[str, Any], status: str, share: float) -> None:
        """Answer the first ``share`` of the requests; the rest expired (or, cancelled, absent)."""
        from planner.executor.simulator import _rng, answer_text, draw_output_tokens

        lines = [json.loads(x) for x in (self.root / "files" / b["input_file_id"]).read_text().splitlines() if x]
        n_answered = math.floor(len(lines) * share + 1e-9)
        snap = self.config.models[b["model"]]
        out, err = [], []
        warm: set[str] = set()  # the prefix groups this job has written
        for k, line in enumerate(lines):
            cid, body = line["custom_id"], line["body"]
            rid = f"{b['id']}-req-{k + 1}"
            if k >= n_answered:
                if status == "expired":
                    err.append({"id": rid, "custom_id": cid, "response": None, "error": {
                        "code": "batch_expired", "message": "simulated: not executed before the window expired"}})
                continue
            rng = _rng(self.config.seed, b["key"], cid, "line")
            if self.config.fail_rate > 0 and rng.random() < self.config.fail_rate:
                err.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": 500, "request_id": rid,
                    "body": {"error": {"message": "simulated failed line", "type": "server_error"}}}})
                continue
            exp = self.expected.get(cid) or Expected(0, body["max_tokens"] / 2)
            n_out = draw_output_tokens(rng, exp.output_tokens, int(body["max_tokens"]))
            text = answer_text(self.config, snap, cid, 0, n_out)
            usage: dict[str, Any] = {"prompt_tokens": exp.input_tokens, "completion_tokens": n_out,
                                     "total_tokens": exp.input_tokens + n_out}
            read, written = self._cache(snap, warm, exp, _rng(self.config.seed, b["key"], cid, "cache"))
            if read or written:  # as providers report it
                usage.update(prompt_tokens_details={"cached_tokens": read}, cache_read_input_tokens=read,
                             cache_creation_input_tokens=written)
            out.append({"id": rid, "custom_id": cid, "error": None, "response": {"status_code": 200, "request_id": rid, "body": {
                "object": "chat.completion", "model": snap.litellm_model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if n_out >= body["max_tokens"] else "stop"}],
                "usage": usage}}})
        if out:
            b["output_file_id"] = self._new_file(f"{b['id']}_output.jsonl", "batch_output",
                                                 "".join(json.dumps(x) + "\n" for x in out).encode())
        if err:
            b["error_file_id"] = self._new_file(f"{b['id']}_error.jsonl", "batch_output",
                                                "".join(json.dumps(x) + "\n" for x in err).encode())
        b["status"] = status
        b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        b["ended_s"] = self.now()


def _not_found(message: str) -> Exception:
    import httpx
    import litellm

    request = httpx.Request("GET", "http://routeplan-sim/v1/batches")
    return litellm.NotFoundError(f"simulated 404: {message}", model="routeplan-sim", llm_provider="routeplan-sim",
                                 response=httpx.Response(404, request=request))
