"""A provider's batch API as the batch runner sees it: upload a request file, create a batch,
poll it, read its output and error files, cancel it, and find again what an earlier (killed)
process may have left behind.

Two implementations: ``LiteLLMBatchAPI`` (live, through litellm's ``acreate_file``,
``acreate_batch``, ``aretrieve_batch``, ``afile_content``, ``acancel_batch``, ``afile_list``,
``alist_batches`` and ``afile_delete``) and ``planner.executor.batch_sim.SimBatchAPI`` (the
simulator). Both speak OpenAI's batch format: one JSON line per request, ``custom_id`` = the
task id.

litellm's client is created with ``max_retries=0``: a create retried by the SDK after a lost
answer would submit the job twice. The runner retries itself, and looks for the job first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from planner.plan import ModelSnapshot

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"  # the only window OpenAI's batch API accepts
JOB_METADATA_KEY = "routeplan_job"  # the job id, sent as the batch's metadata: finds it again
#: providers for which litellm (1.110) offers every call the runner makes -- upload, list and
#: delete files, create, retrieve, list and cancel batches, read result files -- in OpenAI's
#: request and result format. Others lack a call (bedrock, gemini and mistral cannot list
#: batches, so a create whose answer was lost could not be found again: a resume might submit
#: twice; anthropic has no create) or stage files elsewhere (vertex_ai: a GCS bucket, its own
#: result format); docs/batch.md has the table.
SUPPORTED_PROVIDERS = frozenset({"openai", "azure", "hosted_vllm", "litellm_proxy"})
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
LIST_PAGES = 20  # pages of 100 batches searched for a job whose create went unanswered


@dataclass(frozen=True)
class JobStatus:
    """A batch as the provider reports it (OpenAI's status names)."""

    batch_id: str
    status: str  # validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: str | None = None
    job_id: str | None = None  # from the batch's metadata

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class LineResult:
    """One request's outcome from an output or error file."""

    custom_id: str
    ok: bool
    text: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    cached_tokens: int = 0  # prompt tokens read from the provider's cache (part of input_tokens)
    cache_write_tokens: int = 0  # ... and written to it


class BatchAPI(Protocol):
    async def upload(self, m: ModelSnapshot, filename: str, content: bytes) -> str: ...
    async def find_uploads(self, m: ModelSnapshot, filename: str) -> list[str]: ...
    async def delete_file(self, m: ModelSnapshot, file_id: str) -> None: ...
    async def create(self, m: ModelSnapshot, file_id: str, job_id: str) -> JobStatus: ...
    async def find_batch(self, m: ModelSnapshot, job_id: str, file_id: str) -> JobStatus | None: ...
    async def retrieve(self, m: ModelSnapshot, batch_id: str) -> JobStatus: ...
    async def cancel(self, m: ModelSnapshot, batch_id: str) -> JobStatus: ...
    async def content(self, m: ModelSnapshot, file_id: str) -> bytes: ...


def provider_of(m: ModelSnapshot) -> tuple[str, str]:
    """(the model name the provider knows, litellm's provider name) of an offering."""
    from planner.executor.caller import import_litellm

    import_litellm()
    import litellm

    model, provider, _, _ = litellm.get_llm_provider(model=m.litellm_model, api_base=m.api_base)
    return model, provider


def unsupported(models: Iterable[ModelSnapshot]) -> list[str]:
    """'name (provider)' of each batch offering whose provider's batch API run cannot drive."""
    out = []
    for m in models:
        try:
            provider = provider_of(m)[1]
        except Exception:  # noqa: BLE001 - litellm cannot route it at all
            provider = "unknown provider"
        if provider not in SUPPORTED_PROVIDERS:
            out.append(f"{m.name} ({provider})")
    return out


def request_line(custom_id: str, model: str, messages: list[dict[str, Any]], max_tokens: int) -> bytes:
    """One line of the request file (OpenAI's batch input format)."""
    return (json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT,
                        "body": {"model": model, "messages": messages, "max_tokens": max_tokens}},
                       separators=(",", ":")) + "\n").encode()


def parse_lines(data: bytes) -> Iterator[LineResult]:
    """Each line of an output or error file as a LineResult; a line that cannot be read is
    skipped (its request then counts as unanswered, and falls back)."""
    for raw in data.decode("utf-8", errors="replace").splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            custom_id = str(line["custom_id"])
        except (ValueError, KeyError, TypeError):
            continue
        yield _line_result(custom_id, line)


def _line_result(custom_id: str, line: dict[str, Any]) -> LineResult:
    error = line.get("error")
    response = line.get("response") or {}
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else str(error)
        return LineResult(custom_id, False, error=f"{code or 'error'}: {message}"[:500])
    status = response.get("status_code")
    body = response.get("body") or {}
    if status != 200:
        detail = body.get("error", {}) if isinstance(body, dict) else {}
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
        return LineResult(custom_id, False, error=f"HTTP {status}: {message or 'no detail'}"[:500])
    try:
        text = body["choices"][0]["message"]["content"]
        usage = body["usage"]
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    except (KeyError, IndexError, TypeError):
        return LineResult(custom_id, False, error="malformed: a 200 without text or usage")
    if not isinstance(text, str) or not isinstance(prompt, int) or not isinstance(completion, int):
        return LineResult(custom_id, False, error="malformed: a 200 without text or usage")
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) else usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    return LineResult(custom_id, True, text=text, input_tokens=prompt, output_tokens=completion,
                      cached_tokens=cached if isinstance(cached, int) else 0,
                      cache_write_tokens=written if isinstance(written, int) else 0)


def status_of(batch: Any) -> JobStatus:
    """A JobStatus from litellm's LiteLLMBatch (or a plain dict of the same fields)."""
    get = batch.get if isinstance(batch, dict) else (lambda k, d=None: getattr(batch, k, d))
    counts = get("request_counts") or {}
    cget = counts.get if isinstance(counts, dict) else (lambda k, d=0: getattr(counts, k, d))
    errors = get("errors")
    text = None
    if errors:
        data = errors.get("data") if isinstance(errors, dict) else getattr(errors, "data", None)
        parts = [(e.get("message") if isinstance(e, dict) else getattr(e, "message", None)) for e in data or []]
        text = "; ".join(p for p in parts if p)[:500] or None
    metadata = get("metadata") or {}
    return JobStatus(batch_id=str(get("id")), status=str(get("status")), input_file_id=get("input_file_id"),
                     output_file_id=get("output_file_id"), error_file_id=get("error_file_id"),
                     total=int(cget("total", 0) or 0), completed=int(cget("completed", 0) or 0),
                     failed=int(cget("failed", 0) or 0), errors=text,
                     job_id=metadata.get(JOB_METADATA_KEY) if isinstance(metadata, dict) else None)


class LiteLLMBatchAPI:
    """The live batch API, through litellm (keys read from the environment at call time)."""

    def __init__(self, timeout_s: float = 600.0) -> None:
        from planner.executor.caller import import_litellm

        import_litellm()
        import litellm

        self._litellm = litellm
        self.timeout_s = timeout_s

    def _route(self, m: ModelSnapshot) -> dict[str, Any]:
        from planner.executor.providers import live_call_kwargs

        kwargs = live_call_kwargs(m)
        kwargs.pop("model")
        kwargs["custom_llm_provider"] = provider_of(m)[1]
        kwargs["max_retries"] = 0
        kwargs["timeout"] = self.timeout_s
        if "api_key" not in kwargs and m.api_key_env and os.environ.get(m.api_key_env):
            kwargs["api_key"] = os.environ[m.api_key_env]
        return kwargs

    async def upload(self, m: ModelSnapshot, filename: str, content: bytes) -> str:
        obj = await self._litellm.acreate_file(file=(filename, content, "application/jsonl"), purpose="batch",
                                               **self._route(m))
        return str(obj.id)

    async def find_uploads(self, m: ModelSnapshot, filename: str) -> list[str]:
        page = await self._litellm.afile_list(purpose="batch", **self._route(m))
        data = getattr(page, "data", None) or (page.get("data") if isinstance(page, dict) else []) or []
        found = []
        for f in data:
            name = f.get("filename") if isinstance(f, dict) else getattr(f, "filename", None)
            if name == filename:
                found.append(str(f.get("id") if isinstance(f, dict) else f.id))
        return found

    async def delete_file(self, m: ModelSnapshot, file_id: str) -> None:
        await self._litellm.afile_delete(file_id=file_id, **self._route(m))

    async def create(self, m: ModelSnapshot, file_id: str, job_id: str) -> JobStatus:
        batch = await self._litellm.acreate_batch(completion_window=COMPLETION_WINDOW, endpoint=ENDPOINT,
                                                  input_file_id=file_id, metadata={JOB_METADATA_KEY: job_id},
                                                  **self._route(m))
        return status_of(batch)

    async def find_batch(self, m: ModelSnapshot, job_id: str, file_id: str) -> JobStatus | None:
        after = None
        for _ in range(LIST_PAGES):
            page = await self._litellm.alist_batches(after=after, limit=100, **self._route(m))
            data = list(getattr(page, "data", None) or [])
            for b in data:
                s = status_of(b)
                if s.job_id == job_id or (file_id and s.input_file_id == file_id):
                    return s
            if not data or not getattr(page, "has_more", False):
                return None
            after = status_of(data[-1]).batch_id
        return None

    async def retrieve(self, m: ModelSnapshot, batch_id: str) -> JobStatus:
        return status_of(await self._litellm.aretrieve_batch(batch_id=batch_id, **self._route(m)))

    async def cancel(self, m: ModelSnapshot, batch_id: str) -> JobStatus:
        return status_of(await self._litellm.acancel_batch(batch_id=batch_id, **self._route(m)))

    async def content(self, m: ModelSnapshot, file_id: str) -> bytes:
        response = await self._litellm.afile_content(file_id=file_id, **self._route(m))
        data = getattr(response, "content", None)
        if isinstance(data, bytes):
            return data
        return bytes(response.read())
