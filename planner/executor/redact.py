"""Keep secrets out of everything the executor writes (ledger, reports, logs).

Secrets are the values of environment variables whose names look like credentials, any
key passed explicitly, and anything shaped like a bearer token or ``key=...`` query
parameter. Every string bound for disk goes through ``Redactor.clean``.
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)
_SHAPES = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|key|token|access_token)=)[^&\s\"']+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
]
MASK = "[REDACTED]"


def _scoped(shape: re.Pattern[str]) -> str:
    """The pattern as a group, its leading ``(?i)`` made local so patterns can be joined."""
    return f"(?i:{shape.pattern[4:]})" if shape.pattern.startswith("(?i)") else f"(?:{shape.pattern})"


class Redactor:
    def __init__(self, extra_secrets: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        values = [v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6]
        values += [s for s in (extra_secrets or []) if s and len(s) >= 6]
        # longest first so a key containing another is masked whole
        values = sorted(set(values), key=len, reverse=True)
        self._literal = re.compile("|".join(re.escape(v) for v in values)) if values else None
        # one scan that finds whether anything needs masking: most texts need nothing
        self._any = re.compile("|".join([*map(_scoped, _SHAPES),
                                         *([f"(?:{self._literal.pattern})"] if self._literal else [])]))

    def clean(self, text: str | None) -> str | None:
        if not text or self._any.search(text) is None:
            return text
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for shape in _SHAPES:
            text = shape.sub(lambda m: (m.group(1) if m.lastindex else "") + MASK, text)
        return text
