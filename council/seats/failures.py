"""How a failed model call is read: retried or not, why, and in one line for the record.

Retried: what a retry can fix (rate limits, timeouts, connection errors, 5xx). Never retried:
request errors, and a provider refusing the caller (401, 403, a key missing before any request
left), whichever class litellm gave it in that wire format.
"""

from __future__ import annotations

import asyncio
import re

from council.base.secrets import redact
from council.seats.litellm_import import import_litellm

# What litellm raises when a key is missing before any request leaves, whatever class it
# picks (OpenAI's: InternalServerError, Gemini's: APIConnectionError): a retry cannot fix it.
_MISSING_KEY = re.compile(
    r"missing (credentials|[\w ]*api[ _]key)|api[ _]key (is )?(missing|not (set|found))"
    r"|no api[ _]key",
    re.IGNORECASE,
)
# Why an error is never retried, by HTTP status: the provider refused the caller, not the call.
_REFUSED = {401: "authentication failed", 403: "permission denied"}


def refused(exc: BaseException) -> str | None:
    """Why ``exc`` says the provider will not take this caller's calls (a 401, a 403, a key
    missing), in words for the record; None for any other error. Read from the status and
    the message, not litellm's class: litellm maps 401/403 to different classes per wire
    format (a Gemini 403 is a BadRequestError, an OpenAI 403 an APIError)."""
    status = getattr(exc, "status_code", None)
    if status in _REFUSED:
        return _REFUSED[status]
    litellm = import_litellm()
    if isinstance(exc, litellm.AuthenticationError):
        return _REFUSED[401]
    if isinstance(exc, litellm.PermissionDeniedError):
        return _REFUSED[403]
    return "no key" if _MISSING_KEY.search(str(exc)) else None


def is_retryable(exc: BaseException) -> bool:
    litellm = import_litellm()
    retryable = (
        litellm.RateLimitError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        asyncio.TimeoutError,
    )
    not_retryable = (
        litellm.BadRequestError,
        litellm.NotFoundError,
    )
    if refused(exc) is not None or isinstance(exc, not_retryable):
        return False
    if isinstance(exc, retryable):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def failure_text(exc: BaseException, secrets: list[str], timeout_s: float | None = None) -> str:
    """A failed call in one line, saying why it was not retried where the provider refused
    the caller (retrying would only be refused again), and after how long a timeout came."""
    why = refused(exc)
    line = one_line(exc, secrets)
    if why:
        return f"{line} [not retried: {why}]"
    timed_out = isinstance(exc, TimeoutError | import_litellm().Timeout)
    if timed_out and timeout_s is not None and "call timeout" not in line:
        return f"{line} [no reply within the call timeout, {timeout_s:g} s of model time]"
    return line


def one_line(exc: BaseException, secrets: list[str]) -> str:
    return redact(f"{type(exc).__name__}: {exc}", secrets).splitlines()[0][:500]


# Gemini says when to come back in its error body (google.rpc.RetryInfo), not in a header.
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')


def retry_after_seconds(exc: BaseException | None) -> float:
    """The wait a provider asked for: ``Retry-After`` on the response, or on the headers
    litellm keeps beside it (its Anthropic and Gemini errors carry an empty response), or
    Gemini's ``retryDelay``; 0 when none was given."""
    response_headers = getattr(getattr(exc, "response", None), "headers", None)
    for headers in (response_headers, getattr(exc, "litellm_response_headers", None)):
        lowered = {str(k).lower(): v for k, v in dict(headers or {}).items()}
        try:
            if lowered.get("retry-after") is not None:
                return max(0.0, float(lowered["retry-after"]))
        except (TypeError, ValueError):
            pass
    found = _RETRY_DELAY.search(str(exc)) if exc is not None else None
    return float(found[1]) if found else 0.0
