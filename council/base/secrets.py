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
_BEARER_PIECES = ("bearer", "apikey", "api_key", "api-key")  # one is in every _BEARER match
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+:[^/@\s]+@")
REDACTED = "[redacted]"
# Library errors print live objects ("ssl:<ssl.SSLContext object at 0x7f...>"): an address is
# noise to a reader and differs on every run, so it never reaches a message or a record.
_SSL_REPR = re.compile(r"\s*ssl:<[\w.]+ object at 0x[0-9a-fA-F]+>")
_OBJECT_REPR = re.compile(r"<(?:[\w]+\.)*(\w+) object at 0x[0-9a-fA-F]+>")


def secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8]
    return sorted(values, key=len, reverse=True)


def _redacted(text: str, values: list[str]) -> str:
    for value in values:
        if value:
            text = text.replace(value, REDACTED)
    # Each pattern needs a fixed piece of text to match, looked for first: a pattern runs only
    # on a text that has its piece, which most (a turn's prompt) have not. The same result,
    # in a fraction of the time a run spent scanning every message with every pattern.
    lowered = text.lower()
    if any(piece in lowered for piece in _BEARER_PIECES):
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    if "ssl:<" in text:
        text = _SSL_REPR.sub("", text)
    if " object at 0x" in text:
        text = _OBJECT_REPR.sub(r"<\1>", text)
    if "://" in text:
        text = _URL_USERINFO.sub(REDACTED + "@", text)
    return text


def redact(text: str, extra: list[str] | None = None) -> str:
    """``text`` with the environment's secrets (read now), ``extra`` and anything that looks
    like a credential replaced by the marker."""
    return _redacted(text, [*(extra or []), *secret_values()])


class Redactor:
    """``redact`` with the environment's secrets read once, when it is made: what a run uses
    for the many texts it records (every message of every turn, each streamed piece), where
    reading the whole environment for each of them was most of the engine's own time. A run
    makes one as it starts, so the keys its calls use are among the values; a variable set
    later in the run is not looked for (the marker-shaped patterns still are)."""

    def __init__(self) -> None:
        self.values = secret_values()

    def __call__(self, text: str, extra: list[str] | None = None) -> str:
        return _redacted(text, [*(extra or []), *self.values] if extra else self.values)


def redacted_line(exc: BaseException) -> str:
    """``Type: first line of the message``, redacted: how a caught error is recorded or shown
    in one line (a journal row, a one-line CLI error)."""
    lines = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
