"""A tiny OpenAI chat-completions server on 127.0.0.1 for the executor's live-path tests.

Each model has a script: a list of (status, headers, body) answers used in order, then
successes. The server records every request (model, headers, body, arrival time on
``time.monotonic()``) it received. ``replies`` gives a model's success text from the request
body (a judge's 'SCORE: n'), ``delay_s`` makes a model slow (to kill a run while its calls are
in flight). ``required_headers`` makes it a server that wants a key: a request without those
exact header values gets a 401. ``cache_prefix_tokens`` makes a model cache prompts as OpenAI
does: a request whose first message an earlier *answered* request to the model had reports
that many ``prompt_tokens_details.cached_tokens`` in its usage.
"""

from __future__ import annotations

import asyncio
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

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
