"""Anthropic Messages, as the fake provider speaks them: ``POST .../v1/messages``.

The system prompt is a top-level ``system`` field (a string or text blocks); the answer is a
list of content blocks (``thinking`` with its signature, ``text``, ``tool_use``); usage is
``input_tokens``/``output_tokens`` (thinking counts as output); ``stop_reason`` is
``end_turn``, ``max_tokens``, ``refusal`` or ``tool_use``. A stream is ``message_start``, a
``ping``, each block's ``content_block_start``/``content_block_delta``/``content_block_stop``,
``message_delta`` (the stop reason and output tokens) and ``message_stop``. Errors are
``{"type": "error", "error": {"type", "message"}}``; a 429 carries ``anthropic-ratelimit-*``
and ``retry-after``; 529 is ``overloaded_error``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from council.testing.fake_wire import (
    TOKENS,
    Ask,
    FakeReply,
    WireFormat,
    cap_of,
    folded,
    register,
    sse,
    words,
)

STOP = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal", "tool_calls": "tool_use"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
SIGNATURE = "ZmFrZS1zaWduYXR1cmU="  # a thinking block's signature: opaque, never checked here


@register
class AnthropicFormat(WireFormat):
    name = "anthropic"
    key_header = "x-api-key"

    def matches(self, path: str) -> bool:
        return path.rstrip("/").endswith("/messages")

    def ask(self, path: str, body: dict[str, Any]) -> Ask:
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        prompt = words(body.get("system", "")) + sum(
            words(m.get("content", "")) for m in messages if isinstance(m, dict)
        )
        return Ask(
            model=str(body.get("model", "claude-fake")),
            prompt_tokens=prompt,
            max_tokens=cap_of(body.get("max_tokens")),
            stream=bool(body.get("stream")),
        )

    def complete(self, number: int, ask: Ask, reply: FakeReply) -> dict[str, Any]:
        reply = folded(reply)  # no refusal field here: a refusal is the stop reason
        return {
            **_message(number, ask),
            "content": _blocks(number, reply),
            "stop_reason": STOP[reply.finish],
            "usage": {"input_tokens": ask.prompt_tokens, "output_tokens": _output(reply)},
        }

    def events(self, number: int, ask: Ask, reply: FakeReply) -> list[bytes]:
        reply = folded(reply)  # no refusal field here: a refusal is the stop reason
        start = {
            **_message(number, ask),
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": ask.prompt_tokens, "output_tokens": 1},
        }
        events = [_event("message_start", message=start), _event("ping")]
        for index, block in enumerate(_blocks(number, reply)):
            events.append(_event("content_block_start", index=index, content_block=_empty(block)))
            events += [_event("content_block_delta", index=index, delta=d) for d in _deltas(block)]
            events.append(_event("content_block_stop", index=index))
        delta = {"stop_reason": STOP[reply.finish], "stop_sequence": None}
        events.append(_event("message_delta", delta=delta, usage={"output_tokens": _output(reply)}))
        events.append(_event("message_stop"))
        return events

    def broken_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'

    def error_event(self, message: str) -> bytes:
        error = {"type": "overloaded_error", "message": message}
        return sse({"type": "error", "error": error}, event="error")

    def error(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        kind = ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def limit_headers(self, retry_after: float | None) -> dict[str, str]:
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after or 1)).isoformat()
        headers = {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": reset,
        }
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return headers


def _message(number: int, ask: Ask) -> dict[str, Any]:
    return {
        "id": f"msg_fake{number}",
        "type": "message",
        "role": "assistant",
        "model": ask.model,
        "stop_sequence": None,
    }


def _output(reply: FakeReply) -> int:
    return reply.tokens + reply.reasoning_tokens + 8 * len(reply.tool_calls)


def _blocks(number: int, reply: FakeReply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": SIGNATURE})
    if reply.text or not reply.tool_calls:
        blocks.append({"type": "text", "text": reply.text})
    blocks += [
        {"type": "tool_use", "id": f"toolu_fake{number}_{i}", "name": name, "input": args}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
    return blocks


def _empty(block: dict[str, Any]) -> dict[str, Any]:
    """A block as its ``content_block_start`` announces it, before any delta."""
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": ""}
    if block["type"] == "tool_use":
        return {**block, "input": {}}
    return {"type": "text", "text": ""}


def _deltas(block: dict[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "thinking":
        pieces = TOKENS.findall(block["thinking"])
        return [
            *({"type": "thinking_delta", "thinking": p} for p in pieces),
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    if block["type"] == "tool_use":
        return [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    return [{"type": "text_delta", "text": p} for p in TOKENS.findall(block["text"])]


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)
