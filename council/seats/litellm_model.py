"""The real seat model: every call goes through ``litellm.acompletion``.

Retries use tenacity with exponential backoff and jitter, and only for errors that a retry can
fix (rate limits, timeouts, connection errors, 5xx). Authentication and request errors fail at
once. A ``Retry-After`` header from the provider lengthens the wait (never shortens it), up to the
backoff maximum and the call timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from council.errors import ModelCallError
from council.seats.gate import call_gate, estimated_tokens
from council.seats.model import ChatModel, Completion, ModelRequest
from council.secrets import redact

# Resolves a model string to the keyword arguments that reach litellm (api_base, api_key).
EndpointResolver = Callable[[str], Awaitable[dict[str, Any]]]


def import_litellm() -> Any:
    """Import litellm quietly and offline: its price map is the bundled copy, not a download."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


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
        litellm.AuthenticationError,
        litellm.PermissionDeniedError,
        litellm.BadRequestError,
        litellm.NotFoundError,
    )
    if isinstance(exc, not_retryable):
        return False
    if isinstance(exc, retryable):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def retry_after_seconds(exc: BaseException | None) -> float:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after", 0)))
    except (TypeError, ValueError):
        return 0.0


_warmed: list[bool] = []


def warm_up() -> None:
    """Pay litellm's first-call setup (about 0.7 s) once a process, on a call that goes
    nowhere, before any rate-limited call: a call slowed after its slot would land on later
    callers' slots, and the provider would see a burst the limiter never allowed."""
    if _warmed:
        return
    litellm = import_litellm()
    messages = [{"role": "user", "content": "warm"}]
    asyncio.run(litellm.acompletion(model="openai/warm-up", messages=messages, mock_response="ok"))
    _warmed.append(True)


class LiteLLMModel(ChatModel):
    """A model reached through litellm, hosted or on any OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        *,
        resolve_endpoint: EndpointResolver | None = None,
        timeout_s: float = 120.0,
        max_attempts: int = 4,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        extra_params: dict[str, Any] | None = None,
        runs_on_this_machine: bool = False,
        priced: bool = True,
    ) -> None:
        self.model = model
        self._resolve_endpoint = resolve_endpoint
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._wait = wait_exponential_jitter(
            multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s
        )
        # A provider's Retry-After lengthens a wait up to this, never past it: "come back in
        # two minutes" must not hold a run far beyond its timeout.
        self._max_wait_s = max(backoff_initial_s, min(backoff_max_s, timeout_s))
        self.extra_params = dict(extra_params or {})
        # A model served on this machine costs nothing per call. A user's own server has no
        # price litellm could know; hosted models are priced by litellm's map, and a model
        # missing from it is not looked up again on every call.
        self.runs_on_this_machine = runs_on_this_machine
        self._priced = priced and not runs_on_this_machine

    def _wait_for(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return min(max(self._wait(state), retry_after_seconds(error)), self._max_wait_s)

    async def complete(self, request: ModelRequest) -> Completion:
        litellm = import_litellm()
        params: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": self.timeout_s,
            "num_retries": 0,  # retries are ours, so they are counted and classified once
            **self.extra_params,
        }
        if request.seed is not None:
            params["seed"] = request.seed
        if self._resolve_endpoint is not None:
            params.update(await self._resolve_endpoint(self.model))
        secrets = [str(params["api_key"])] if params.get("api_key") else []

        attempts = 0
        gate = call_gate()
        tokens = estimated_tokens(request.messages, request.max_tokens)
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=self._wait_for,
                retry=retry_if_exception(is_retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if gate is not None:  # the provider's limits, shared with every caller
                        await gate.before(self.model, tokens)
                    try:
                        # litellm's own timeout covers the HTTP call; this one everything.
                        async with asyncio.timeout(self.timeout_s + 5):
                            response = await litellm.acompletion(**params)
                    except Exception as exc:
                        if gate is not None and getattr(exc, "status_code", None) == 429:
                            gate.after(self.model, tokens, None, retry_after_seconds(exc))
                        raise
                    if gate is not None:
                        usage = getattr(response, "usage", None)
                        used = getattr(usage, "total_tokens", None)
                        gate.after(self.model, tokens, used, -1.0)
        except Exception as exc:
            message = redact(f"{type(exc).__name__}: {exc}", secrets)
            raise ModelCallError(
                message.splitlines()[0][:500], retryable=is_retryable(exc), attempts=attempts
            ) from None

        content = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        return Completion(
            content=content.strip(),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=self._cost(litellm, response),
            attempts=attempts,
        )

    def _cost(self, litellm: Any, response: Any) -> float | None:
        if self.runs_on_this_machine:
            return 0.0
        if not self._priced:
            return None
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:
            self._priced = False  # unmapped (a new release, a custom name): unknown, and stays so
            return None
