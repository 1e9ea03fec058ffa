"""What the fake provider says, apart from how it says it: replies, reply faults, wire formats.

A reply is a ``FakeReply``: the answer's text, the reasoning a thinking model writes before it,
tool calls, and why it ended. Each wire format (``fake_openai``, ``fake_anthropic``,
``fake_gemini``) registers itself here and renders the same reply as its provider would: a
whole response, the events of a stream, an error body and a rate limit's headers. The server
picks the format whose path a request was sent to.

Reply faults are answered ``200 OK`` and change what the reply says (``shaped``):

- ``length``: the reply cut off halfway, ended by the format's "token cap reached" reason;
- ``refusal``: a short refusal ended by the format's refusal reason (OpenAI's
  ``content_filter``, Anthropic's ``refusal``; Gemini's ``SAFETY`` carries no text at all);
- ``structured_refusal``: OpenAI's refusal field (``message.refusal``, no content, ended
  normally), as structured outputs refuse; the other formats have no such field and refuse as
  in ``refusal``;
- ``empty``: no text, ended normally;
- ``reasoning``: the reply with reasoning before it (OpenAI ``reasoning_content``, Anthropic
  ``thinking`` blocks, Gemini ``thought`` parts);
- ``tool_call``: a call of a tool nobody offered, and no text.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

Finish = Literal["stop", "length", "refusal", "tool_calls"]
REPLY_FAULTS = ("length", "refusal", "structured_refusal", "empty", "reasoning", "tool_call")
# Faults that may be drawn at a rate (``fault_rates``): the reply faults, and an error that
# arrives as an event halfway through a ``200 OK`` stream (a whole answer gets a 500 instead).
RATED_FAULTS = (*REPLY_FAULTS, "stream_error")
REFUSAL_TEXT = "I can't help with that."
REASONING_TEXT = "The user asks a question. I weigh both sides before I answer."
UNREQUESTED_TOOL = ("web_search", {"query": "what the council should decide"})
TOKENS = re.compile(r"\s*\S+\s*|\s+")  # a token here is a word with its spaces


@dataclass(frozen=True)
class FakeReply:
    """One answer, in no format yet. ``tool_calls`` holds ``(name, arguments)`` pairs;
    ``refusal`` is a refusal in a field of its own (OpenAI's ``message.refusal``)."""

    text: str = ""
    refusal: str = ""
    reasoning: str = ""
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    finish: Finish = "stop"

    @property
    def tokens(self) -> int:
        """Answer tokens, as the usage reports them (reasoning is counted apart)."""
        return len(self.text.split())

    @property
    def reasoning_tokens(self) -> int:
        return len(self.reasoning.split())


def as_reply(reply: str | FakeReply) -> FakeReply:
    return reply if isinstance(reply, FakeReply) else FakeReply(text=reply)


def shaped(fault: str, reply: FakeReply) -> FakeReply:
    """The reply as a reply fault changes it; any other outcome leaves it as it is."""
    if fault == "length":
        pieces = TOKENS.findall(reply.text)
        return replace(
            reply, text="".join(pieces[: max(1, len(pieces) // 2)]).rstrip(), finish="length"
        )
    if fault == "refusal":
        return FakeReply(text=REFUSAL_TEXT, finish="refusal")
    if fault == "structured_refusal":
        return FakeReply(refusal=REFUSAL_TEXT)
    if fault == "empty":
        return FakeReply(text="")
    if fault == "reasoning":
        return replace(reply, reasoning=reply.reasoning or REASONING_TEXT)
    if fault == "tool_call":
        return FakeReply(tool_calls=(UNREQUESTED_TOOL,), finish="tool_calls")
    return reply


def folded(reply: FakeReply) -> FakeReply:
    """The reply for a format with no refusal field: its refusal as text, ended as refused."""
    if not reply.refusal:
        return reply
    return replace(reply, text=reply.refusal, refusal="", finish="refusal")


def capped(reply: FakeReply, cap: int | None) -> FakeReply:
    """The reply cut off at ``cap`` tokens ("length"), or whole when it fits. Reasoning comes
    first and counts against the cap, as every provider counts it: a model that thinks
    longer than its cap never gets to the answer."""
    thought, pieces = TOKENS.findall(reply.reasoning), TOKENS.findall(reply.text)
    if cap is None or len(thought) + len(pieces) <= cap:
        return reply
    cap = max(cap, 0)
    if len(thought) >= cap:
        reasoning = "".join(thought[:cap]).rstrip()
        return replace(reply, reasoning=reasoning, text="", tool_calls=(), finish="length")
    text = "".join(pieces[: cap - len(thought)]).rstrip()
    return replace(reply, text=text, finish="length")


@dataclass(frozen=True)
class Ask:
    """What a request asks for, whatever its format."""

    model: str
    prompt_tokens: int  # words of the system prompt and the messages
    max_tokens: int | None
    stream: bool
    stream_usage: bool = True  # a stream's last event carries usage (OpenAI: when asked)


def words(value: Any) -> int:
    """Words in a message's content, be it a string or a list of text parts or blocks."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words(part) for part in value)
    if isinstance(value, dict):
        return words(value.get("text", "")) + words(value.get("parts", []))
    return 0


def cap_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is already text."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


class WireFormat(ABC):
    """One provider's wire format: where requests go and how answers and errors look."""

    name: str
    key_header: str  # where its clients send the key ("authorization" holds "Bearer <key>")

    @abstractmethod
    def matches(self, path: str) -> bool: ...

    @abstractmethod
    def ask(self, path: str, body: dict[str, Any]) -> Ask: ...

    @abstractmethod
    def complete(self, number: int, ask: Ask, reply: FakeReply) -> dict[str, Any]: ...

    @abstractmethod
    def events(self, number: int, ask: Ask, reply: FakeReply) -> list[bytes]:
        """A streamed answer's events, in order, ending with the last one (usage included)."""

    def done(self) -> bytes:
        """What follows the last event of a stream that ends well (OpenAI's ``[DONE]``)."""
        return b""

    @abstractmethod
    def broken_event(self) -> bytes:
        """An event whose data is not JSON: a garbled stream."""

    @abstractmethod
    def error_event(self, message: str) -> bytes:
        """An error sent as an event inside a stream that began ``200 OK`` (e.g. overloaded)."""

    @abstractmethod
    def error(
        self, status: int, message: str, retry_after: float | None = None
    ) -> dict[str, Any]: ...

    @abstractmethod
    def limit_headers(self, retry_after: float | None) -> dict[str, str]:
        """The headers of a rate-limited answer (429)."""

    def presented_key(self, headers: dict[str, str]) -> str | None:
        value = headers.get(self.key_header)
        if value is not None and self.key_header == "authorization":
            return value.removeprefix("Bearer ")
        return value


FORMATS: list[WireFormat] = []


W = TypeVar("W", bound=WireFormat)


def register(cls: type[W]) -> type[W]:
    """Class decorator: the fake provider speaks this format too."""
    FORMATS.append(cls())
    return cls


def format_for(path: str) -> WireFormat | None:
    """The format whose endpoint ``path`` (without its query) is, or None (of those imported:
    the fake provider imports all three)."""
    return next((f for f in FORMATS if f.matches(path)), None)
