"""A tiny OpenAI-compatible server on 127.0.0.1 for the executor's live-path tests.

Chat completions: each model has a script: a list of (status, headers, body) answers used in
order, then successes. The server records every request (model, headers, body, arrival time on
``time.monotonic()``) it received. ``replies`` gives a model's success text from the request
body (a judge's 'SCORE: n'), ``delay_s`` makes a model slow (to kill a run while its calls are
in flight). ``required_headers`` makes it a server that wants a key: a request without those
exact header values gets a 401. ``cache_prefix_tokens`` makes a model cache prompts as OpenAI
does: a request whose first message an earlier *answered* request to the model had reports
that many ``prompt_tokens_details.cached_tokens`` in its usage.

Files and batches (OpenAI's ``/v1/files`` and ``/v1/batches``, what litellm's batch API
calls): uploads are kept in memory; a batch answers every line of its input file
``batch_complete_s`` seconds after it was created, each line as a chat completion would be
answered, except the custom ids in ``batch_failures`` (an error line) and, with
``batch_expire_after`` = n, every line after the first n (the batch expires). A cancelled batch
ends ``cancelled`` with its first ``cancel_done`` lines answered. ``holds`` stops a step for
the kill tests: ``{"upload": "before"}`` holds an upload before it is stored (released, it
stores nothing, as if the client had died first), ``"after"`` stores it and never answers;
the same for ``"create"``. ``reject_batches`` answers every create with a 400. Every files/batches request is in ``api_calls``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def completion(model: str, text: str, prompt_tokens: int, completion_tokens: int,
               cached_tokens: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage}


@dataclass
class LoopbackServer:
    scripts: dict[str, list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 20
    completion_tokens: int = 30
    port: int = 0
    replies: dict[str, Callable[[dict[str, Any]], str]] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    required_headers: dict[str, str] = field(default_factory=dict)
    cache_prefix_tokens: dict[str, int] = field(default_factory=dict)
    cached_prefixes: set[tuple[str, str]] = field(default_factory=set)  # (model, first message) answered
    # files and batches
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    batch_complete_s: float = 0.2
    batch_failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    batch_expire_after: int | None = None
    cancel_done: int = 1
    holds: dict[str, str] = field(default_factory=dict)
    reject_batches: str | None = None  # a 400 with this message for every batch created
    held: dict[str, int] = field(default_factory=dict)  # step -> requests held there so far

    def start(self) -> LoopbackServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            model = body.get("model", "")
            self.requests.append({"model": model, "headers": dict(request.headers), "body": body,
                                  "t": time.monotonic()})
            for name, value in self.required_headers.items():
                if request.headers.get(name) != value:
                    return web.json_response({"error": {"message": f"missing or wrong {name}"}}, status=401)
            if self.delay_s.get(model):
                await asyncio.sleep(self.delay_s[model])
            script = self.scripts.get(model) or []
            if script:
                status, headers, payload = script.pop(0)
                if status != 200 or payload is not None:
                    text = payload if isinstance(payload, str) else json.dumps(payload)
                    return web.Response(status=status, headers=headers, text=text,
                                        content_type="application/json")
            out = min(self.completion_tokens, int(body.get("max_tokens") or self.completion_tokens))
            reply = self.replies.get(model)
            text = reply(body) if reply else f"answer from {model}"
            cached = 0
            if model in self.cache_prefix_tokens and body.get("messages"):
                key = (model, json.dumps(body["messages"][0], sort_keys=True))
                cached = min(self.cache_prefix_tokens[model], self.prompt_tokens) if key in self.cached_prefixes else 0
                self.cached_prefixes.add(key)
            return web.json_response(completion(model, text, self.prompt_tokens, out, cached))

        async def main() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", handle)
            self._release = asyncio.Event()
            app.router.add_post("/v1/files", self._upload)
            app.router.add_get("/v1/files", self._list_files)
            app.router.add_get("/v1/files/{file_id}", self._file)
            app.router.add_get("/v1/files/{file_id}/content", self._file_content)
            app.router.add_delete("/v1/files/{file_id}", self._delete_file)
            app.router.add_post("/v1/batches", self._create_batch)
            app.router.add_get("/v1/batches", self._list_batches)
            app.router.add_get("/v1/batches/{batch_id}", self._retrieve_batch)
            app.router.add_post("/v1/batches/{batch_id}/cancel", self._cancel_batch)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(main())
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def release(self) -> None:
        """End every held request (the kill tests call it once the client is dead)."""
        self._loop.call_soon_threadsafe(self._release.set)

    def live_files(self) -> dict[str, dict[str, Any]]:
        """Uploaded input files not deleted."""
        return {k: f for k, f in self.files.items() if f["purpose"] == "batch" and not f["deleted"]}

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._release.set)

        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- files and batches (OpenAI's wire format, as the openai SDK inside litellm sends it) ------
    def _record(self, request: web.Request, step: str, **extra: Any) -> web.Response | None:
        self.api_calls.append({"step": step, "path": request.path, "method": request.method,
                               "t": time.monotonic(), **extra})
        for name, value in self.required_headers.items():
            if request.headers.get(name) != value:
                return web.json_response({"error": {"message": f"missing or wrong {name}"}}, status=401)
        return None

    async def _hold(self, step: str, when: str) -> bool:
        """Hold a request at ``step`` when the test asked to; True when it must not be stored."""
        if self.holds.get(step) != when:
            return False
        self.held[step] = self.held.get(step, 0) + 1
        await self._release.wait()
        return True

    def _new_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1:04d}"
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[file_id] = {**obj, "content": content, "deleted": False}
        return obj

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("content", "deleted") and not k.startswith("_")}

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        denied = self._record(request, "upload", filename=getattr(upload, "filename", None))
        if denied is not None:
            return denied
        if upload is None or not hasattr(upload, "file"):
            return web.json_response({"error": {"message": "no file"}}, status=400)
        if await self._hold("upload", "before"):
            return web.json_response({"error": {"message": "held"}}, status=500)
        obj = self._new_file(upload.filename, str(form.get("purpose")), upload.file.read())
        await self._hold("upload", "after")
        return web.json_response(obj)

    async def _list_files(self, request: web.Request) -> web.Response:
        denied = self._record(request, "list_files")
        if denied is not None:
            return denied
        purpose = request.query.get("purpose")
        data = [self._public(f) for f in self.files.values()
                if not f["deleted"] and (purpose is None or f["purpose"] == purpose)]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    def _file_or_404(self, file_id: str) -> dict[str, Any] | None:
        f = self.files.get(file_id)
        return None if f is None or f["deleted"] else f

    async def _file(self, request: web.Request) -> web.Response:
        denied = self._record(request, "retrieve_file")
        f = self._file_or_404(request.match_info["file_id"])
        if denied is not None or f is None:
            return denied or web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.json_response(self._public(f))

    async def _file_content(self, request: web.Request) -> web.Response:
        denied = self._record(request, "file_content", file_id=request.match_info["file_id"])
        f = self._file_or_404(request.match_info["file_id"])
        if denied is not None or f is None:
            return denied or web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=f["content"], content_type="application/octet-stream")

    async def _delete_file(self, request: web.Request) -> web.Response:
        denied = self._record(request, "delete_file", file_id=request.match_info["file_id"])
        f = self._file_or_404(request.match_info["file_id"])
        if denied is not None or f is None:
            return denied or web.json_response({"error": {"message": "no such file"}}, status=404)
        f["deleted"] = True
        return web.json_response({"id": f["id"], "object": "file", "deleted": True})

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        denied = self._record(request, "create", body=body)
        if denied is not None:
            return denied
        f = self._file_or_404(body.get("input_file_id", ""))
        if f is None or body.get("completion_window") != "24h" or body.get("endpoint") != "/v1/chat/completions":
            return web.json_response({"error": {"message": "bad batch request"}}, status=400)
        if self.reject_batches:
            return web.json_response({"error": {"message": self.reject_batches}}, status=400)
        if await self._hold("create", "before"):
            return web.json_response({"error": {"message": "held"}}, status=500)
        now = int(time.time())
        batch_id = f"batch_{len(self.batches) + 1:04d}"
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                 "input_file_id": f["id"], "completion_window": "24h", "status": "validating",
                 "output_file_id": None, "error_file_id": None, "created_at": now,
                 "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None,
                 "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
                 "cancelled_at": None, "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata"), "_t": time.monotonic()}
        self._validate(batch, f["content"])
        self.batches[batch_id] = batch
        await self._hold("create", "after")
        return web.json_response(self._public(batch))

    def _validate(self, batch: dict[str, Any], content: bytes) -> None:
        """OpenAI's checks: JSON lines, unique custom ids, one model for the whole file."""
        try:
            lines = [json.loads(x) for x in content.decode().splitlines() if x.strip()]
            ids = [x["custom_id"] for x in lines]
            models = {x["body"]["model"] for x in lines}
            ok = len(ids) == len(set(ids)) and len(models) == 1 and all(
                x["method"] == "POST" and x["url"] == "/v1/chat/completions" for x in lines)
        except (ValueError, KeyError, TypeError):
            lines, ok = [], False
        batch["_lines"] = lines
        batch["request_counts"]["total"] = len(lines)
        if not ok:
            batch.update(status="failed", failed_at=int(time.time()), errors={
                "object": "list", "data": [{"code": "invalid_file", "message": "invalid input file"}]})

    async def _list_batches(self, request: web.Request) -> web.Response:
        denied = self._record(request, "list_batches")
        if denied is not None:
            return denied
        data = [self._public(b) for b in reversed(list(self.batches.values()))]  # newest first
        after = request.query.get("after")
        if after:
            ids = [b["id"] for b in data]
            data = data[ids.index(after) + 1:] if after in ids else []
        limit = int(request.query.get("limit", 20))
        page = data[:limit]
        return web.json_response({"object": "list", "data": page, "has_more": len(data) > limit,
                                  "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None})

    async def _retrieve_batch(self, request: web.Request) -> web.Response:
        denied = self._record(request, "retrieve", batch_id=request.match_info["batch_id"])
        batch = self.batches.get(request.match_info["batch_id"])
        if denied is not None or batch is None:
            return denied or web.json_response({"error": {"message": "no such batch"}}, status=404)
        self._advance(batch)
        return web.json_response(self._public(batch))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        denied = self._record(request, "cancel", batch_id=request.match_info["batch_id"])
        batch = self.batches.get(request.match_info["batch_id"])
        if denied is not None or batch is None:
            return denied or web.json_response({"error": {"message": "no such batch"}}, status=404)
        if batch["status"] in ("validating", "in_progress", "finalizing"):
            batch.update(status="cancelling", cancelling_at=int(time.time()))
        return web.json_response(self._public(batch))

    def _advance(self, batch: dict[str, Any]) -> None:
        """Move a batch on: cancelling -> cancelled (partly answered); in progress -> completed
        or expired once ``batch_complete_s`` has passed."""
        now = int(time.time())
        if batch["status"] == "cancelling":
            self._finish(batch, "cancelled", self.cancel_done, "batch_cancelled")
            batch["cancelled_at"] = now
            return
        if batch["status"] not in ("validating", "in_progress"):
            return
        if time.monotonic() - batch["_t"] < self.batch_complete_s:
            batch.update(status="in_progress", in_progress_at=batch["in_progress_at"] or now)
            return
        if self.batch_expire_after is not None:
            self._finish(batch, "expired", self.batch_expire_after, "batch_expired")
            batch["expired_at"] = now
        else:
            self._finish(batch, "completed", None, "")
            batch["completed_at"] = now

    def _finish(self, batch: dict[str, Any], status: str, answered: int | None, unanswered_code: str) -> None:
        out, err = [], []
        counter = itertools.count(1)
        for k, line in enumerate(batch["_lines"]):
            cid, body = line["custom_id"], line["body"]
            rid = f"batch_req_{batch['id']}_{next(counter)}"
            if answered is not None and k >= answered:
                if unanswered_code == "batch_expired":
                    err.append({"id": rid, "custom_id": cid, "response": None,
                                "error": {"code": "batch_expired", "message": "This request could not be "
                                          "executed before the completion window expired."}})
                continue  # cancelled: not in either file
            if cid in self.batch_failures:
                status_code, message = self.batch_failures[cid]
                err.append({"id": rid, "custom_id": cid, "error": None, "response": {
                    "status_code": status_code, "request_id": rid,
                    "body": {"error": {"message": message, "type": "invalid_request_error"}}}})
                continue
            model = body["model"]
            n_out = min(self.completion_tokens, int(body.get("max_tokens") or self.completion_tokens))
            reply = self.replies.get(model)
            text = reply(body) if reply else f"batch answer from {model}"
            out.append({"id": rid, "custom_id": cid, "error": None, "response": {
                "status_code": 200, "request_id": rid,
                "body": completion(model, text, self.prompt_tokens, n_out)}})
        if out:
            batch["output_file_id"] = self._new_file(f"{batch['id']}_output.jsonl", "batch_output",
                                                     "".join(json.dumps(x) + "\n" for x in out).encode())["id"]
        if err:
            batch["error_file_id"] = self._new_file(f"{batch['id']}_error.jsonl", "batch_output",
                                                    "".join(json.dumps(x) + "\n" for x in err).encode())["id"]
        batch["status"] = status
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(out), "failed": len(err)}
