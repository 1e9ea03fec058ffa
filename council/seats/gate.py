"""Provider rate limits shared by every caller: requests and tokens per minute, and 429s.

Every real model call asks the process's ``CallGate`` (none by default: calls go straight out)
before each attempt, and tells it what the provider said after. ``RateLimits`` is the policy:
it hands out start times so that calls to one provider are spaced ``60 / rpm`` seconds apart
and the tokens of the last minute stay under ``tpm``, and a 429 with ``Retry-After`` holds back
every caller of that provider, not only the one that got it. ``LocalGate`` applies it in one
process; on a Ray cluster one actor holds the policy and every worker's gate asks it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from council.base.errors import ConfigError


@dataclass(frozen=True)
class ProviderLimit:
    """A key's limits: requests per minute and (optionally) tokens per minute."""

    rpm: float
    tpm: float | None = None


def parse_rate_limit(text: str) -> tuple[str, ProviderLimit]:
    """``openai=600`` or ``openai=600:90000`` (requests and tokens per minute)."""
    match = re.fullmatch(r"([^=\s]+)=(\d+(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?", text.strip())
    if not match or float(match[2]) <= 0 or (match[3] and float(match[3]) <= 0):
        raise ConfigError(
            f"--rate-limit expects PROVIDER=RPM[:TPM] with positive numbers, got '{text}'"
        )
    return match[1], ProviderLimit(float(match[2]), float(match[3]) if match[3] else None)


def limit_key(model: str, limits: dict[str, ProviderLimit]) -> str | None:
    """The limit a model's calls count against: its own string's, else its provider's."""
    if model in limits:
        return model
    provider = model.partition("/")[0]
    return provider if provider in limits else None


class RateLimits:
    """The shared policy: when each call may start. Not thread-safe on its own; callers lock."""

    def __init__(self, limits: dict[str, ProviderLimit], clock: Callable[[], float]) -> None:
        self.limits = dict(limits)
        self.clock = clock
        self._next_start: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        self._tokens: dict[str, list[tuple[float, float]]] = {}  # (start, tokens) last minute
        self.granted = 0
        self.throttles = 0

    def reserve(self, key: str, tokens: float) -> float:
        """Seconds the caller must wait before starting a call that may use ``tokens``."""
        limit = self.limits[key]
        now = self.clock()
        start = max(now, self._next_start.get(key, now), self._blocked_until.get(key, now))
        if limit.tpm is not None:
            start = self._token_start(key, limit.tpm, start, tokens)
        self._next_start[key] = start + 60.0 / limit.rpm
        self.granted += 1
        return start - now

    def _token_start(self, key: str, tpm: float, start: float, tokens: float) -> float:
        window = [(t, n) for t, n in self._tokens.get(key, []) if t > start - 60.0]
        # Wait until enough of the last minute's tokens have aged out (a call larger than the
        # whole minute's allowance goes alone rather than never).
        while window and sum(n for _, n in window) + tokens > tpm:
            start = max(start, window.pop(0)[0] + 60.0)
        window.append((start, tokens))
        self._tokens[key] = window
        return start

    def settle(self, key: str, estimated: float, used: float) -> None:
        """Replace a call's estimated tokens by what it used, once the provider said."""
        window = self._tokens.get(key)
        if not window:
            return
        for i, (start, tokens) in enumerate(window):
            if tokens == estimated:
                window[i] = (start, used)
                return

    def throttled(self, key: str, retry_after_s: float) -> None:
        """A 429: nobody calls this provider again before Retry-After (1 s when none given)."""
        self.throttles += 1
        until = self.clock() + max(retry_after_s, 1.0)
        self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), until)


class CallGate(Protocol):
    """What a model call asks before each attempt and tells after."""

    async def before(self, model: str, tokens: float) -> None: ...

    def after(self, model: str, estimated: float, used: float | None, retry_after: float) -> None:
        """``retry_after`` >= 0 means the provider said 429 (0: without a Retry-After)."""


class LocalGate:
    """The policy applied within one process (threads and event loops share it)."""

    def __init__(self, limits: dict[str, ProviderLimit]) -> None:
        self.policy = RateLimits(limits, time.monotonic)
        self._lock = threading.Lock()

    async def before(self, model: str, tokens: float) -> None:
        key = limit_key(model, self.policy.limits)
        if key is None:
            return
        with self._lock:
            delay = self.policy.reserve(key, tokens)
        if delay > 0:
            await asyncio.sleep(delay)

    def after(self, model: str, estimated: float, used: float | None, retry_after: float) -> None:
        key = limit_key(model, self.policy.limits)
        if key is None:
            return
        with self._lock:
            if retry_after >= 0:
                self.policy.throttled(key, retry_after)
            if used is not None:
                self.policy.settle(key, estimated, used)


_gate: list[CallGate] = []


def install_call_gate(gate: CallGate | None) -> None:
    """Route this process's model calls through ``gate`` (None: no limits)."""
    _gate[:] = [gate] if gate is not None else []


def call_gate() -> CallGate | None:
    return _gate[0] if _gate else None


def estimated_tokens(messages: list[dict[str, str]], max_tokens: int) -> float:
    """What a call may use before the provider says: about four characters a token."""
    return sum(len(m.get("content", "")) for m in messages) / 4 + max_tokens
