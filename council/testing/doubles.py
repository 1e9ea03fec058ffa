"""Seat doubles for testing protocols and the engine without any model.

``ScriptedModel`` answers from a queue (like simonw/llm's mock model with ``enqueue()``);
``FunctionModel`` answers with a function of the request (like pydantic-ai's ``FunctionModel``),
so a test can assert on exactly what a seat was shown. Both stream as real seats do: to a
listener that wants the pieces, each reply reaches it word by word before the call returns
(``stream=False`` answers in one piece). ``structured_output=True`` declares the double able
to answer in a JSON schema (the engine then asks vote stages for JSON; the reply is whatever
the double returns), and ``reasons=True`` a model known to reason (its caps get headroom).
"""

from __future__ import annotations

import inspect
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from council.base.errors import ModelCallError
from council.seats.model import ChatModel, Completion, ModelRequest, wants_deltas

_PIECES = re.compile(r"\s*\S+\s*|\s+")  # a word with the spaces around it


def _rough_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _answer(request: ModelRequest, reply: str, stream: bool, structured: bool) -> Completion:
    if stream and wants_deltas(request.listener):
        for piece in _PIECES.findall(reply):
            request.listener.delta(piece)
    prompt = " ".join(m["content"] for m in request.messages)
    return Completion(
        content=reply,
        prompt_tokens=_rough_tokens(prompt),
        completion_tokens=_rough_tokens(reply),
        structured=structured and request.response_schema is not None,
    )


class _Declared(ChatModel):
    """What a double says it can do, as its test declares."""

    _structured_output = False
    _reasons = False

    @property
    def structured_output(self) -> bool:
        return self._structured_output

    @property
    def reasons(self) -> bool:
        return self._reasons


class ScriptedModel(_Declared):
    """A scripted seat: replies come from a queue, in order; an ``Exception`` in the queue is
    raised as a failed call. When the queue runs dry it repeats ``default`` (or fails)."""

    def __init__(
        self,
        replies: Iterable[str | Exception] = (),
        *,
        default: str | None = None,
        model: str = "test/scripted",
        stream: bool = True,
        structured_output: bool = False,
        reasons: bool = False,
    ) -> None:
        self.model = model
        self.stream = stream
        self._structured_output, self._reasons = structured_output, reasons
        self._queue: deque[str | Exception] = deque(replies)
        self.default = default
        self.requests: list[ModelRequest] = []

    def enqueue(self, *replies: str | Exception) -> None:
        self._queue.extend(replies)

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        if self._queue:
            reply = self._queue.popleft()
        elif self.default is not None:
            reply = self.default
        else:
            raise ModelCallError("ScriptedModel: no reply left", retryable=False, attempts=1)
        if isinstance(reply, Exception):
            if isinstance(reply, ModelCallError):
                raise reply
            raise ModelCallError(f"{type(reply).__name__}: {reply}", retryable=False, attempts=1)
        return _answer(request, reply, self.stream, self._structured_output)


Responder = Callable[[ModelRequest], str | Awaitable[str]]


class FunctionModel(_Declared):
    """A function seat: ``fn(request) -> str`` (sync or async) writes every reply."""

    def __init__(
        self,
        fn: Responder,
        *,
        model: str = "test/function",
        stream: bool = True,
        structured_output: bool = False,
        reasons: bool = False,
    ) -> None:
        self.model = model
        self.stream = stream
        self._structured_output, self._reasons = structured_output, reasons
        self.fn = fn
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        reply = self.fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        assert isinstance(reply, str), "a FunctionModel's function must return a string"
        return _answer(request, reply, self.stream, self._structured_output)


_LEVELS = "CONFIDENCE: high|med|low"  # how the nyk ballot scale's instruction asks


def well_formed_reply(request: ModelRequest) -> str:
    """A reply in the form each stage expects, for ``FunctionModel(well_formed_reply)``:
    votes for the first option, estimates of 42, rankings in label order, moderators that let
    the loop run. Lets a protocol run end to end with no model. A vote line is written in the
    form the stage's ballot scale asks for (nyk's levels, or a number)."""
    opening = f"{request.seat} in {request.stage} (round {request.round})."
    if request.response_schema is not None:  # asked for the ballot as JSON
        return _json_ballot(request, opening)
    if request.expects == "vote":
        stance = request.choices[0] if request.choices else "agree"
        if _LEVELS in request.messages[-1]["content"]:
            return f"{opening}\nSTANCE: {stance} | CONFIDENCE: high | DEALBREAKER: no"
        return f"{opening}\n{stance} | 0.8 | none"
    if request.expects == "number":
        return f"{opening}\n42 | 0.7 | new data"
    if request.expects == "ranking":
        lines = [f"{i}. {label}" for i, label in enumerate(request.choices, 1)]
        return "\n".join([opening, "FINAL RANKING:", *lines])
    if request.expects == "decision":
        return f"{opening}\nDECISION: CONTINUE"
    if request.kind == "synthesis":
        return well_formed_verdict(request.messages, opening)
    return opening


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.MULTILINE)
# The outcome of a vote as the chair is shown it (council.records.describe), the last one wins.
_OUTCOME = re.compile(
    r"carries\*\* \((consensus)\)|\*\*(inconclusive)\*\*|\*\*no option carries\*\*()"
    r"|; (consensus) reached\.|; no consensus \((split|inconclusive)\)"
)


def well_formed_verdict(messages: Sequence[Mapping[str, str]], opening: str) -> str:
    """A verdict that passes council's checks, for the chair's ``messages`` (a request's, or
    a fake provider's body's): every heading of the stage's template (its deepest level)
    filled with ``opening``, the outcome of the vote it was shown stated in words, and every
    dealbreaker line it was shown repeated. With none of these to meet, just ``opening``."""
    # The stage's prompt is the first user message (a re-ask adds more), after what it sees.
    asked = [m["content"] for m in messages if m["role"] == "user"]
    prompt = "\n".join(asked)
    template = asked[0].rsplit("\n---\n", 1)[-1]
    headings = _HEADING.findall(template)
    deepest = max((len(level) for level, _ in headings), default=0)
    sections = [title for level, title in headings if len(level) == deepest]
    votes = _OUTCOME.findall(prompt)
    stated = [f"The vote's outcome: {next((w for w in votes[-1] if w), 'split')}."] if votes else []
    named = [line for line in prompt.splitlines() if line.startswith("Dealbreakers")]
    if not sections:
        return "\n".join([opening, *stated, *named])
    consensus = next((t for t in sections if t.lower().startswith("consensus")), None)
    lines = []
    for title in sections:
        lines += [f"{'#' * deepest} {title}", opening, *(stated if title == consensus else [])]
    return "\n".join([*lines, *([] if consensus else stated), *named])


def _json_ballot(request: ModelRequest, reason: str) -> str:
    """A ballot in the request's JSON schema: the first option (or 42), the scale's highest
    confidence, no dealbreaker."""
    fields = (request.response_schema or {}).get("properties", {})
    stance: object = request.choices[0] if request.choices else "agree"
    if request.expects == "number":
        stance = 42
    levels = fields.get("confidence", {}).get("enum")
    deal = fields.get("dealbreaker", {}).get("enum")
    return json.dumps(
        {
            "stance": stance,
            "confidence": levels[0] if levels else 0.8,
            "dealbreaker": "no" if deal else "none",
            "reason": reason,
        }
    )
