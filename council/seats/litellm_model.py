"""The real seat model: every call goes through ``litellm.acompletion``.

Retries use exponential backoff with jitter (tenacity, past a first attempt made directly), and
only for errors that a retry can
fix (rate limits, timeouts, connection errors, 5xx). Authentication and request errors fail at
once. A ``Retry-After`` header from the provider lengthens the wait (never shortens it), up to the
backoff maximum and the call timeout.

A reply streams when someone shows it as it comes (the request's listener ``wants_deltas``)
and the seat allows it (``stream=True``): each piece goes to the listener as it arrives, and
the pieces are assembled into one response (usage included) when the stream ends. An attempt
is the whole stream: one cut off or garbled midway is an error like any other, retried from
its start, and the call's timeout covers the stream to its last piece. Nobody listening (a
Python call, a ``--json`` or ``--quiet`` run): one plain call, without litellm's streaming
handler and chunk builder.

A model served on this machine (a bundled model's llama.cpp server) whose server died during
the call is started again, and the call made once more on the new server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from council.base.errors import ModelCallError
from council.seats import warm
from council.seats.call_clock import Clock, local_turn
from council.seats.capabilities import supports
from council.seats.failures import failure_text, is_retryable, one_line, retry_after_seconds
from council.seats.gate import call_gate, estimated_tokens
from council.seats.litellm_import import import_litellm as import_litellm
from council.seats.model import (
    CallListener,
    ChatModel,
    Completion,
    ModelRequest,
    Need,
    wants_deltas,
)
from council.seats.tool_calls import tool_calls_of

# Resolves a model string to the keyword arguments that reach litellm (api_base, api_key).
EndpointResolver = Callable[[str], Awaitable[dict[str, Any]]]


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's form, which litellm translates for Anthropic (a tool) and Gemini."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.get("title", "reply"), "schema": schema},
    }


def _json_object(schema: dict[str, Any]) -> dict[str, Any]:
    """llama-cpp-python's 0.3.x server: a JSON object held to ``schema`` by a grammar (its
    request type takes ``json_object`` with a ``schema``, not ``json_schema``)."""
    return {"type": "json_object", "schema": schema}


# How a reply's JSON schema is sent, by the form the server takes; a new form is registered.
SCHEMA_FORMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "json_schema": _json_schema,
    "json_object": _json_object,
}


def reasoning_of(message: Any) -> str | None:
    """A reply's reasoning apart from its answer: litellm's ``reasoning_content``, else the
    text of its thinking blocks (Anthropic); None when the model showed none."""
    text = getattr(message, "reasoning_content", None)
    if not text:
        blocks = getattr(message, "thinking_blocks", None) or []
        text = "\n\n".join(str(b.get("thinking") or "") for b in blocks if isinstance(b, dict))
    return (text.strip() or None) if isinstance(text, str) else None


def reasoning_tokens(usage: Any) -> int | None:
    """The completion tokens spent reasoning (``completion_tokens_details.reasoning_tokens``)."""
    details = getattr(usage, "completion_tokens_details", None)
    tokens = getattr(details, "reasoning_tokens", None)
    return tokens if isinstance(tokens, int) and tokens > 0 else None


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
        stream: bool = True,
        in_process: bool = False,
        structured_output: bool | None = None,
        reasons: bool | None = None,
        tool_calling: bool | None = None,
        schema_form: str = "json_schema",
        check: Callable[[], Awaitable[Need | None]] | None = None,
    ) -> None:
        self.model = model
        # What the pre-flight asks before the first call (``make_model`` says, by the kind of
        # seat); None: a hosted model's key variable.
        self._check = check
        self.stream = stream
        # What a warm worker needs to make this model's calls the way this process would.
        self.settings: dict[str, Any] = dict(
            model=model,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            extra_params=dict(extra_params or {}),
            runs_on_this_machine=runs_on_this_machine,
            priced=priced,
            stream=stream,
            structured_output=structured_output,
            reasons=reasons,
            tool_calling=tool_calling,
            schema_form=schema_form,
        )
        # Whether the model takes a JSON schema and is known to reason: as declared (a user's
        # own server, a test), else as litellm's model map says (``council.seats.capabilities``).
        self._structured = structured_output
        self._reasons = reasons
        self._tools = tool_calling  # takes OpenAI-style tools: declared, else the map
        self.schema_form = schema_form  # how the schema travels (SCHEMA_FORMS)
        self._resolve_endpoint = resolve_endpoint
        # A call that starts a program here (a command seat) is never sent to the warm worker:
        # the program runs in this process's folder, and stops when this call is cancelled.
        self.in_process = in_process
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self._supported: list[list[str] | None] = []  # litellm's answer, once asked
        # A provider's Retry-After lengthens a wait up to this, never past it: "come back in
        # two minutes" must not hold a run far beyond its timeout.
        self._max_wait_s = max(backoff_initial_s, min(backoff_max_s, timeout_s))
        self.extra_params = dict(extra_params or {})
        # A model served on this machine costs nothing per call. A user's own server has no
        # price litellm could know; hosted models are priced by litellm's map, and a model
        # missing from it is not looked up again on every call.
        self.runs_on_this_machine = runs_on_this_machine
        self._priced = priced and not runs_on_this_machine

    @property
    def hosted(self) -> bool:
        """A provider's model, reached by its own API (no endpoint, no server here)."""
        return self._check is None and self._resolve_endpoint is None and not self.in_process

    async def preflight(self) -> Need | None:
        if self._check is not None:
            return await self._check()
        if self._resolve_endpoint is not None:  # the resolver brings its own base and key
            return None
        from council.seats.needs import key_need

        return key_need(self.model)

    @property
    def structured_output(self) -> bool:
        if self._structured is None:
            self._structured = supports("supports_response_schema", self.model)
        return self._structured

    @property
    def reasons(self) -> bool:
        if self._reasons is None:
            self._reasons = supports("supports_reasoning", self.model)
        return self._reasons

    @property
    def tool_calling(self) -> bool:
        if self._tools is None:
            self._tools = supports("supports_function_calling", self.model)
        return self._tools

    async def complete(self, request: ModelRequest) -> Completion:
        clock = Clock()
        with clock.starting():  # a bundled model's server starts on its first call
            endpoint = await self._resolve_endpoint(self.model) if self._resolve_endpoint else {}
        try:
            completion = await self._complete_at(endpoint, request, clock)
        except ModelCallError as exc:
            restarted = await self._restarted(endpoint, exc)
            if restarted is None:
                exc.queue_s, exc.start_s = exc.queue_s + clock.queue_s, exc.start_s + clock.start_s
                raise
            # The server on this machine died during the call and has been started again:
            # the call is made once more there, after the attempts it already spent.
            request.listener.retrying(self.model, exc.attempts, f"{exc} (server restarted)", 0.0)
            completion = await self._complete_at(restarted, request, clock)
            completion = dataclasses.replace(
                completion, attempts=exc.attempts + completion.attempts
            )
        # What a warm worker measured on its side, and what this process waited for.
        return dataclasses.replace(
            completion,
            queue_s=round(completion.queue_s + clock.queue_s, 4),
            start_s=round(completion.start_s + clock.start_s, 4),
        )

    async def _restarted(
        self, endpoint: dict[str, Any], failure: ModelCallError
    ) -> dict[str, Any] | None:
        """The endpoint of a server on this machine started again since ``endpoint`` failed
        (resolving it starts a server that died), or None: nothing to try again."""
        if not (self.runs_on_this_machine and failure.retryable and self._resolve_endpoint):
            return None
        fresh = await self._resolve_endpoint(self.model)
        return fresh if fresh != endpoint else None

    async def _complete_at(
        self, endpoint: dict[str, Any], request: ModelRequest, clock: Clock
    ) -> Completion:
        # litellm already imported, in a process that stays warm; not where rate limits are
        # shared, since the limits are kept here
        # A reply streams only to someone who shows it as it comes; otherwise one plain call.
        streams = self.stream and wants_deltas(request.listener)
        with clock.starting():  # the first call of a process may wait for the worker to start
            worker = await warm.worker() if call_gate() is None and not self.in_process else None
        async with self._turn(clock):
            if worker is not None:
                settings = {**self.settings, "stream": streams}
                completion = await worker.complete(settings, endpoint, request)
                if completion is not None:
                    return completion
            litellm = import_litellm()
            params = self._params(litellm, request, endpoint, streams)
            secrets = [str(params["api_key"])] if params.get("api_key") else []
            response, pieces, attempts = await self._with_retries(
                litellm, params, request, secrets, clock
            )
        return self._completion(litellm, response, pieces, attempts, "response_format" in params)

    @contextlib.asynccontextmanager
    async def _turn(self, clock: Clock) -> AsyncIterator[None]:
        """A bundled model's llama.cpp server answers one call at a time: its calls wait
        for their turn here, before they leave, so the wait is queue time, and the call's
        timeout covers only the model's own time."""
        if not self.runs_on_this_machine:
            yield
            return
        with clock.queued():
            await local_turn(self.model).acquire()
        try:
            yield
        finally:
            local_turn(self.model).release()

    async def _with_retries(
        self,
        litellm: Any,
        params: dict[str, Any],
        request: ModelRequest,
        secrets: list[str],
        clock: Clock,
    ) -> tuple[Any, int, int]:
        """The call, attempted up to ``max_attempts`` times: again only after an error a retry
        can fix, each retry said to the listener before its wait. (response, pieces streamed,
        attempts made). The first attempt is made directly: almost every call succeeds at it,
        and tenacity's machinery costs more per call than the rest of this module; a failure
        a retry can fix hands the attempts left to tenacity."""
        gate = call_gate()
        try:
            response, pieces = await self._attempt(litellm, params, request, gate, clock)
            return response, pieces, 1
        except Exception as exc:
            if not is_retryable(exc) or self.max_attempts <= 1:
                raise ModelCallError(
                    failure_text(exc, secrets, self.timeout_s),
                    retryable=is_retryable(exc),
                    attempts=1,
                ) from None
            first = exc
        wait_s = self._wait_s(1, first)
        request.listener.retrying(self.model, 1, one_line(first, secrets), wait_s)
        await asyncio.sleep(wait_s)
        attempts = 1

        def announce(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            text = one_line(error, secrets) if error else "failed"
            request.listener.retrying(self.model, attempts, text, wait)

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts - 1),
                # tenacity numbers the attempts it makes from 1: the call's second is its first.
                wait=lambda state: self._wait_s(
                    state.attempt_number + 1, state.outcome.exception() if state.outcome else None
                ),
                retry=retry_if_exception(is_retryable),
                before_sleep=announce,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    response, pieces = await self._attempt(litellm, params, request, gate, clock)
        except Exception as exc:
            raise ModelCallError(
                failure_text(exc, secrets, self.timeout_s),
                retryable=is_retryable(exc),
                attempts=attempts,
            ) from None
        return response, pieces, attempts

    def _wait_s(self, attempt: int, error: BaseException | None) -> float:
        """Exponential backoff with jitter after failed attempt ``attempt``, lengthened (never
        shortened) by a provider's Retry-After, within ``_max_wait_s``."""
        try:
            backoff = self._backoff_initial_s * 2 ** (attempt - 1)
        except OverflowError:
            backoff = self._backoff_max_s
        backoff = min(backoff + random.uniform(0, self._backoff_initial_s), self._backoff_max_s)
        return min(max(backoff, retry_after_seconds(error)), self._max_wait_s)

    def _completion(
        self, litellm: Any, response: Any, pieces: int, attempts: int, structured: bool
    ) -> Completion:
        choice = response.choices[0] if response and response.choices else None
        content = (choice.message.content or "") if choice else ""
        usage = getattr(response, "usage", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if pieces and (completion_tokens or 0) < pieces:
            # A server that reports no usage in a stream (llama.cpp) leaves litellm to estimate
            # it with another model's tokenizer; each piece it sent is at least one token.
            completion_tokens = pieces
        thought = reasoning_tokens(usage)
        return Completion(
            content=content.strip(),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=completion_tokens,
            cost_usd=self._cost(litellm, response),
            attempts=attempts,
            # "length": the reply reached max_tokens and was cut off there (a stream's is its
            # last piece's, which litellm's builder carries over).
            finish_reason=getattr(choice, "finish_reason", None),
            refusal=getattr(choice.message, "refusal", None) if choice else None,
            reasoning=reasoning_of(choice.message) if choice else None,
            reasoning_tokens=thought,
            reasoning_cost_usd=self._reasoning_cost(litellm, thought),
            structured=structured,
            tool_calls=tool_calls_of(choice.message) if choice else (),
        )

    def _params(
        self, litellm: Any, request: ModelRequest, endpoint: dict[str, Any], stream: bool = False
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": self.timeout_s,
            "num_retries": 0,  # retries are ours, so they are counted and classified once
            **self.extra_params,
        }
        supported = self._supported_params(litellm)
        # A seed is sampling advice: a provider that takes none (Anthropic) would refuse the
        # whole call for it, so it is left out there ("where supported", as --seed says).
        if request.seed is not None and (supported is None or "seed" in supported):
            params["seed"] = request.seed
        if request.response_schema is not None and self.structured_output:
            params["response_format"] = SCHEMA_FORMS[self.schema_form](request.response_schema)
        if request.reasoning_effort is not None:
            params["reasoning_effort"] = request.reasoning_effort
        if request.tools:
            params["tools"] = list(request.tools)
            if request.tool_choice is not None:
                params["tool_choice"] = request.tool_choice
        if self.reasons:
            # Reasoning models refuse some sampling settings (OpenAI's o-series: any
            # temperature but 1); litellm leaves those out instead of failing the call.
            params["drop_params"] = True
        params.update(endpoint)
        if stream:
            params["stream"] = True
            if "stream_options" in (supported or []):  # usage in the last piece, when offered
                params["stream_options"] = {"include_usage": True}
        return params

    def _supported_params(self, litellm: Any) -> list[str] | None:
        """The OpenAI parameters litellm passes on to this model: asked once, not per call."""
        if not self._supported:
            provider, _, name = self.model.partition("/")
            self._supported.append(
                litellm.get_supported_openai_params(name, custom_llm_provider=provider)
            )
        return self._supported[0]

    async def _attempt(
        self, litellm: Any, params: dict[str, Any], request: ModelRequest, gate: Any, clock: Clock
    ) -> tuple[Any, int]:
        """One attempt, within the provider's rate limits when a call gate is installed."""
        tokens = estimated_tokens(request.messages, request.max_tokens) if gate else 0.0
        if gate is not None:  # the provider's limits, shared with every caller
            with clock.queued():
                await gate.before(self.model, tokens)
        try:
            # litellm's own timeout covers the HTTP call; this one covers everything, a
            # streamed reply to its last piece included.
            try:
                async with asyncio.timeout(self.timeout_s + 5):
                    response, pieces = await self._call(litellm, params, request.listener)
            except TimeoutError as exc:
                if str(exc):
                    raise
                raise TimeoutError(  # asyncio's own says nothing at all
                    f"{self.model} had not finished its reply after {self.timeout_s + 5:g} s "
                    f"(the call timeout, {self.timeout_s:g} s, covers the model's time only)"
                ) from None
        except Exception as exc:
            if gate is not None and getattr(exc, "status_code", None) == 429:
                gate.after(self.model, tokens, None, retry_after_seconds(exc))
            raise
        if gate is not None:
            used = getattr(getattr(response, "usage", None), "total_tokens", None)
            gate.after(self.model, tokens, used, -1.0)
        return response, pieces

    async def _call(
        self, litellm: Any, params: dict[str, Any], listener: CallListener
    ) -> tuple[Any, int]:
        """One attempt: the response, assembled from its pieces when it streams (None for a
        stream that ended before any piece), and how many pieces of text it streamed."""
        if not params.get("stream"):
            return await litellm.acompletion(**params), 0
        chunks, pieces = [], 0
        async for chunk in await litellm.acompletion(**params):
            chunks.append(chunk)
            text = chunk.choices[0].delta.content if chunk.choices else None
            if text:
                pieces += 1
                listener.delta(text)
        # Where the provider sent no usage, the builder counts the tokens itself.
        return litellm.stream_chunk_builder(chunks, messages=params["messages"]), pieces

    def _reasoning_cost(self, litellm: Any, tokens: int | None) -> float | None:
        """What ``tokens`` of reasoning cost at the model's output price (within the call's
        cost); None where the price is unknown."""
        if not tokens:
            return None
        if self.runs_on_this_machine:
            return 0.0
        if not self._priced:
            return None
        try:
            _, cost = litellm.cost_per_token(model=self.model, completion_tokens=tokens)
        except Exception:
            return None
        return float(cost)

    def _cost(self, litellm: Any, response: Any) -> float | None:
        if self.runs_on_this_machine:
            return 0.0
        if not self._priced or response is None:
            return None
        known = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if known is not None:
            return float(known)  # litellm priced it on the way: not priced a second time
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:
            self._priced = False  # unmapped (a new release, a custom name): unknown, and stays so
            return None
