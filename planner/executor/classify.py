"""What a failed call means for the task: retry, move on, or give up; and was it billed.

    rate_limit  429: retry after Retry-After / backoff; not billed
    transient   5xx, connection errors: retry with backoff; not billed
    timeout     no answer in time: retry (or a faster model when the task's latency limit
                was the timeout); treated as billed, since the provider may have done the work
    malformed   a 200 without a usable answer: retry, then the task fails; treated as billed
    permanent   other 4xx (bad request, auth, not found): the task fails; not billed
"""

from __future__ import annotations

import asyncio
import email.utils
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

    @property
    def retryable(self) -> bool:
        return self.kind != "permanent"


def classify(exc: BaseException) -> Failure:
    import litellm

    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if isinstance(exc, MalformedResponse):
        return Failure("malformed", message)
    if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)):
        return Failure("timeout", message)
    if isinstance(exc, litellm.RateLimitError):
        return Failure("rate_limit", message, _retry_after_s(exc))
    if isinstance(exc, litellm.APIConnectionError):
        return Failure("transient", message)
    status = getattr(exc, "status_code", None)
    if status == 429:
        return Failure("rate_limit", message, _retry_after_s(exc))
    if status == 408:
        return Failure("timeout", message)
    if isinstance(status, int) and status >= 500:
        return Failure("transient", message)
    return Failure("permanent", message)


def _retry_after_s(exc: BaseException) -> float | None:
    """Retry-After from the response headers: seconds or an HTTP date."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or getattr(
        exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
