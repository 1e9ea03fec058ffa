"""Keeping API keys out of everything council writes.

Error messages from providers can echo request details. Before any text reaches a turn record,
a log or a report, the values of credential-looking environment variables and bearer tokens are
replaced with a marker, and object reprs (``<x.Y object at 0x...>``) are cut to the class name.
"""

from __future__ import annotations

import os
import re

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"'=:\s]+)[A-Za-z0-9._\-]{8,}")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+:[^/@\s]+@")
REDACTED = "[redacted]"
# Library errors print live objects ("ssl:<ssl.SSLContext object at 0x7f...>"): an address is
# noise to a reader and differs on every run, so it never reaches a message or a record.
_SSL_REPR = re.compile(r"\s*ssl:<[\w.]+ object at 0x[0-9a-fA-F]+>")
_OBJECT_REPR = re.compile(r"<(?:[\w]+\.)*(\w+) object at 0x[0-9a-fA-F]+>")


def secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8]
    return sorted(values, key=len, reverse=True)


def redact(text: str, extra: list[str] | None = None) -> str:
    for value in [*(extra or []), *secret_values()]:
        if value:
            text = text.replace(value, REDACTED)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _OBJECT_REPR.sub(r"<\1>", _SSL_REPR.sub("", text))
    return _URL_USERINFO.sub(REDACTED + "@", text)


def redacted_line(exc: BaseException) -> str:
    """``Type: first line of the message``, redacted: how a caught error is recorded or shown
    in one line (a journal row, a one-line CLI error)."""
    lines = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
