"""Gemini generateContent, as the fake provider speaks it: ``POST .../models/{model}:
generateContent``, and ``:streamGenerateContent?alt=sse`` for a stream.

The system prompt is ``systemInstruction`` (litellm writes ``system_instruction``); the answer
is ``candidates[0].content.parts`` (``{"text", "thought": true}`` for reasoning, ``{"text"}``,
``{"functionCall"}``); usage is ``usageMetadata`` with thoughts counted apart
(``thoughtsTokenCount``); ``finishReason`` is ``STOP``, ``MAX_TOKENS`` or ``SAFETY`` (a safety
block has no content at all, only its ratings). A stream is a series of whole
``GenerateContentResponse`` objects, the last with the finish reason and usage. Errors are
``{"error": {"code", "message", "status"}}``; a 429 is ``RESOURCE_EXHAUSTED`` with a
``RetryInfo`` detail (Gemini sends no ``Retry-After`` header).
"""

from __future__ import annotations

import re
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

FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "refusal": "SAFETY", "tool_calls": "STOP"}
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
BLOCKED = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
_PATH = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")


@register
class GeminiFormat(WireFormat):
    name = "gemini"
    key_header = "x-goog-api-key"

    def matches(self, path: str) -> bool:
        return _PATH.search(path.rstrip("/")) is not None

    def ask(self, path: str, body: dict[str, Any]) -> Ask:
        found = _PATH.search(path.rstrip("/"))
        system = body.get("systemInstruction", body.get("system_instruction", {}))
        contents = body.get("contents")
        contents = contents if isinstance(contents, list) else []
        config = body.get("generationConfig", body.get("generation_config", {}))
        config = config if isinstance(config, dict) else {}
        cap = config.get("maxOutputTokens", config.get("max_output_tokens"))
        return Ask(
            model=found["model"] if found else "gemini-fake",
            prompt_tokens=words(system) + sum(words(c) for c in contents if isinstance(c, dict)),
            max_tokens=cap_of(cap),
            stream=found is not None and found["method"] == "streamGenerateContent",
        )

    def complete(self, number: int, ask: Ask, reply: FakeReply) -> dict[str, Any]:
        reply = folded(reply)  # no refusal field here: a refusal is the stop reason
        return _response(number, ask, _parts(reply), reply, last=True)

    def events(self, number: int, ask: Ask, reply: FakeReply) -> list[bytes]:
        reply = folded(reply)  # no refusal field here: a refusal is the stop reason
        pieces = [{"text": p, "thought": True} for p in TOKENS.findall(reply.reasoning)]
        pieces += [{"text": p} for p in TOKENS.findall(reply.text)]
        pieces += [part for part in _parts(reply) if "functionCall" in part]
        if reply.finish == "refusal" or not pieces:
            return [sse(_response(number, ask, [], reply, last=True))]
        events = [sse(_response(number, ask, [part], reply, last=False)) for part in pieces[:-1]]
        return [*events, sse(_response(number, ask, pieces[-1:], reply, last=True))]

    def broken_event(self) -> bytes:
        return b'data: {"candidates": [{"content": {"par\n\n'

    def error_event(self, message: str) -> bytes:
        return sse({"error": {"code": 503, "message": message, "status": "UNAVAILABLE"}})

    def error(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": STATUS.get(status, "UNKNOWN"),
        }
        if status == 429:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after or 1:g}s",
                }
            ]
        return {"error": error}

    def limit_headers(self, retry_after: float | None) -> dict[str, str]:
        return {}  # Gemini says when to come back in the body's RetryInfo, not in a header


def _parts(reply: FakeReply) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reply.reasoning:
        parts.append({"text": reply.reasoning, "thought": True})
    if reply.text or not reply.tool_calls:
        parts.append({"text": reply.text})
    parts += [{"functionCall": {"name": name, "args": args}} for name, args in reply.tool_calls]
    return parts


def _response(
    number: int, ask: Ask, parts: list[dict[str, Any]], reply: FakeReply, *, last: bool
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if reply.finish == "refusal":  # blocked: the ratings say why, and there is no content
        candidate["safetyRatings"] = BLOCKED
    else:
        candidate["content"] = {"role": "model", "parts": parts}
    if last:
        candidate["finishReason"] = FINISH[reply.finish]
    response: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": ask.model,
        "responseId": f"fake-{number}",
    }
    if last:
        answer = 0 if reply.finish == "refusal" else reply.tokens + 8 * len(reply.tool_calls)
        usage = {
            "promptTokenCount": ask.prompt_tokens,
            "candidatesTokenCount": answer,
            "totalTokenCount": ask.prompt_tokens + answer + reply.reasoning_tokens,
        }
        if reply.reasoning:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
        response["usageMetadata"] = usage
    return response
