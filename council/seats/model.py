"""What sits behind a seat: a chat model that turns messages into a completion."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from council.records.run import TurnActivations


@dataclass(frozen=True)
class ModelRequest:
    """One call a seat makes: the stage it speaks in and the messages it sees."""

    stage: str
    messages: list[dict[str, str]]
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


def request_hash(model: str, request: ModelRequest) -> str:
    """What makes two calls the same call: model, messages and sampling settings."""
    canonical = json.dumps(
        {
            "model": model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        },
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

    ``complete`` raises ``council.errors.ModelCallError`` when the call fails for good.
    """

    model: str

    @property
    def provider(self) -> str:
        return split_model_string(self.model)[0]

    @abstractmethod
    async def complete(self, request: ModelRequest) -> Completion: ...
