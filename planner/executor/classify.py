"""What a failed call means for the task: retry, move on, or give up; and was it billed.

    rate_limit  429: retry after backoff; not billed
    (every kind: never sooner than the server's Retry-After / retry-after-ms, on any status)
    transient   5xx, connection errors: retry with backoff; not billed
    timeout     no answer in time: retry (or a faster model when the task's latency limit
                was the timeout); treated as billed, since the provider may have done the work
    malformed   a 200 without a usable answer: retry, then the task fails; treated as billed
    permanent   other 4xx (bad request, auth, not found): the task fails; not billed
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from dataclasses import dataclass
from typing import Literal

Kind = Literal["rate_limit", "transient", "timeout", "malformed", "permanent"]
BILLED: dict[str, bool] = {"rate_limit": False, "transient": False, "timeout": True,
                           "malformed": True, "permanent": False}


class MalformedResponse(Exception):
    """The provider answered 200 but without choices, text or usage."""


@dataclass(frozen=True)
class Failure:
    kind: Kind
    message: str
    retry_after_s: float | None = None

    @property
    def billed(self) -> bool:
        return BILLED[self.kind]


def classify(exc: BaseException) -> Failure:
    """What ``exc`` means for the task, with the server's Retry-After whatever the status."""
    import litellm

    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if isinstance(exc, MalformedResponse):
        return Failure("malformed", message)
    wait = retry_after_s(exc)
    if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)):
        return Failure("timeout", message, wait)
    if isinstance(exc, litellm.RateLimitError):
        return Failure("rate_limit", message, wait)
    if isinstance(exc, litellm.APIConnectionError):
        return Failure("transient", message, wait)
    status = getattr(exc, "status_code", None)
    if status == 429:
        return Failure("rate_limit", message, wait)
    if status == 408:
        return Failure("timeout", message, wait)
    if isinstance(status, int) and status >= 500:
        return Failure("transient", message, wait)
    return Failure("permanent", message)


def _headers_of(exc: BaseException) -> dict[str, str]:
    """Response headers (lower-case names) wherever litellm keeps them: ``exc.response.headers``
    (the provider's response), ``exc.litellm_response_headers`` (set by its exception mapping)
    and ``exc.headers``."""
    out: dict[str, str] = {}
    for source in (getattr(exc, "headers", None), getattr(exc, "litellm_response_headers", None),
                   getattr(getattr(exc, "response", None), "headers", None)):
        try:
            items = list(source.items()) if source is not None else []
        except (AttributeError, TypeError):
            continue
        for k, v in items:
            if isinstance(k, str) and v is not None:
                out.setdefault(k.lower(), str(v))
    return out


def retry_after_s(exc: BaseException) -> float | None:
    """The wait the server asked for: ``retry-after-ms`` (milliseconds) and ``Retry-After``
    (seconds or an HTTP date); the longer when both are sent, None when neither is."""
    headers = _headers_of(exc)
    waits: list[float] = []
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        waits.append(ms / 1000)
    value = headers.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is None:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError, IndexError):
                seconds = None
        if seconds is not None:
            waits.append(seconds)
    return max(0.0, *waits) if waits else None


def _number(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None
