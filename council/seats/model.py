"""What sits behind a seat: a chat model that turns messages into a completion."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from council.records.run import TurnActivations

# The levels litellm passes on as ``reasoning_effort``, stated with the council's spec.
from council.records.spec import REASONING_EFFORTS as REASONING_EFFORTS
from council.records.spec import ReasoningEffort as ReasoningEffort


class CallListener(Protocol):
    """Hears a call while it happens, for whoever shows it live. A model that streams tells it
    each piece of text; one that retries or falls back says so before it waits or moves on.
    A retried attempt or a fallback starts its text again: pieces heard before it are void.

    A listener may say ``wants_deltas = False``: nobody shows the pieces, so the model makes a
    plain call instead of a stream (cheaper, the same answer). One that does not say hears
    them (``wants_deltas``)."""

    def delta(self, text: str) -> None: ...

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None: ...

    def falling_back(self, failed: str, fallback: str, error: str) -> None: ...


class _NobodyListening:
    wants_deltas = False

    def delta(self, text: str) -> None:
        pass

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        pass

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        pass


NOBODY_LISTENING: CallListener = _NobodyListening()


def wants_deltas(listener: CallListener) -> bool:
    """Whether anyone hears a call's reply piece by piece: only then is it streamed."""
    return bool(getattr(listener, "wants_deltas", True))


@dataclass(frozen=True)
class Need:
    """What a model needs before it can be called here (``what``: "OPENAI_API_KEY") and how
    to give it that (``fix``), as the pre-flight says it."""

    what: str
    fix: str


@dataclass(frozen=True)
class ModelRequest:
    """One call a seat makes: the stage it speaks in and the messages it sees."""

    stage: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    seed: int | None = None
    seat: str = ""
    kind: str = ""  # the stage kind: statement, response, vote, ranking, ...
    round: int = 0  # the loop round, 0 outside loops
    # What the engine will parse out of the reply, so test doubles can answer in form:
    # "text", "vote" (choices = options, empty for free stances), "number", "ranking"
    # (choices = labels to rank) or "decision" (choices = STOP, CONTINUE).
    expects: str = "text"
    choices: tuple[str, ...] = ()
    # Structured output: the JSON schema the reply must follow (its "title" names it), sent
    # only to a model that supports it (``ChatModel.structured_output``); None: free text.
    response_schema: dict[str, Any] | None = None
    # How hard a reasoning model thinks before it answers ("low", "medium", "high", ...);
    # None: the provider's default. Passed to litellm as ``reasoning_effort``.
    reasoning_effort: str | None = None
    # Read-only tools offered to the model (OpenAI function specs, which litellm translates
    # for Anthropic and Gemini), and ``tool_choice`` ("none": answer without calling one);
    # empty: no tools, the request exactly as before (``council.engine.context_tools``).
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | None = None
    # Who hears the call as it happens. It travels with the request so that wrappers
    # (fallbacks, reuse) pass it on untouched; it is no part of what the call is.
    listener: CallListener = field(default=NOBODY_LISTENING, compare=False, repr=False)


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    attempts: int = 1
    model: str | None = None  # the model that answered, when not the seat's own (a fallback)
    reused: bool = False  # taken from the ledger of an earlier run instead of called
    activations: TurnActivations | None = None  # open-weight seats: the reply's residual stream
    # Why the model stopped: "stop", or "length" when the request's max_tokens cut the reply
    # off; None where it is not known (a reply reused from the ledger, a test double).
    finish_reason: str | None = None
    # A refusal the provider sent in a field of its own (OpenAI structured outputs' ``refusal``)
    # instead of content.
    refusal: str | None = None

    # A reasoning model's thinking, apart from its answer (litellm's ``reasoning_content``,
    # or the text of its thinking blocks), and the tokens it spent on it (counted within
    # ``completion_tokens``, as providers report them).
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    reasoning_cost_usd: float | None = None  # of cost_usd, what the reasoning tokens cost
    structured: bool = False  # the reply was asked for in the request's JSON schema
    # Seconds the call waited before its model worked on it: for a turn (a local server
    # answering one call at a time, a rate limit) and for a warm worker or server to start.
    queue_s: float = 0.0
    start_s: float = 0.0
    # The tools the reply called, when the request offered some: each ``{"id", "name",
    # "arguments"}`` (arguments as the model wrote them, a JSON string).
    tool_calls: tuple[dict[str, str], ...] = ()

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def problem(self) -> str | None:
        """Why this reply is no answer, in one line, or None when it is one. litellm maps
        every provider's refusal (OpenAI ``content_filter``, Anthropic ``refusal``, Gemini
        ``SAFETY``) to ``content_filter``, and a reply that only calls a tool to
        ``tool_calls``; a tool call is never the answer (the context tools' loop answers them
        before the reply is read, ``council.engine.context_tools``)."""
        if self.refusal:
            return f"refused: {' '.join(self.refusal.split())[:200]}"
        if self.finish_reason == "content_filter":
            return "refused: the provider stopped the reply (finish_reason content_filter)"
        if self.content.strip():
            return None
        if self.finish_reason == "tool_calls" or self.tool_calls:
            return "empty reply: the model called a tool instead of answering"
        return "empty reply"

    @property
    def starved(self) -> bool:
        """Cut off at the cap with no answer at all, because reasoning spent the whole cap."""
        thought = bool(self.reasoning) or bool(self.reasoning_tokens)
        return self.truncated and not self.content.strip() and thought


def request_hash(model: str, request: ModelRequest) -> str:
    """What makes two calls the same call: model, messages and sampling settings."""
    call: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
    }
    # Added only when set, so calls without them hash exactly as before.
    if request.response_schema is not None:
        call["response_schema"] = request.response_schema
    if request.reasoning_effort is not None:
        call["reasoning_effort"] = request.reasoning_effort
    if request.tools:
        call["tools"] = list(request.tools)
    canonical = json.dumps(
        call,
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def split_model_string(model: str) -> tuple[str, str]:
    """``'anthropic/claude-x'`` -> ``('anthropic', 'claude-x')``; the provider is the first part."""
    provider, sep, name = model.partition("/")
    if not sep or not provider or not name:
        raise ValueError(f"model '{model}' is not a litellm model string 'provider/model'")
    return provider, name


class ChatModel(ABC):
    """A model a seat talks to. ``model`` is a litellm string such as ``openai/gpt-4o-mini``.

    ``complete`` raises ``council.base.errors.ModelCallError`` when the call fails for good.
    """

    model: str

    @property
    def provider(self) -> str:
        return split_model_string(self.model)[0]

    @abstractmethod
    async def complete(self, request: ModelRequest) -> Completion: ...

    @property
    def structured_output(self) -> bool:
        """Whether this model can be held to a JSON schema (``ModelRequest.response_schema``);
        a model that cannot is sent the text instruction instead."""
        return False

    @property
    def reasons(self) -> bool:
        """Whether this model is known to think before it answers (its caps get headroom)."""
        return False

    @property
    def tool_calling(self) -> bool:
        """Whether this model can be offered tools (OpenAI-style function calling)."""
        return False

    async def preflight(self) -> Need | None:
        """What this model needs before its first call that it lacks here (a key variable, a
        server answering, its files), found without calling it; None: nothing. Test doubles
        and models that need nothing keep this."""
        return None

    def from_fallback(self, answered_by: str) -> ChatModel:
        """The model to sit on once ``answered_by`` answered in this model's place (a fallback
        chain starts from it); a model with no fallbacks stays itself."""
        return self
