"""OpenAI chat completions, as the fake provider speaks them: ``POST .../chat/completions``.

Reasoning goes in ``message.reasoning_content`` (DeepSeek's and litellm's field) and counts in
``completion_tokens_details.reasoning_tokens``; a refusal ends with ``content_filter``; a tool
call has ``content: null``. A stream is ``chat.completion.chunk`` events ended by ``[DONE]``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from council.testing.fake_wire import (
    TOKENS,
    Ask,
    FakeReply,
    WireFormat,
    cap_of,
    register,
    sse,
    words,
)

FINISH = {
    "stop": "stop",
    "length": "length",
    "refusal": "content_filter",
    "tool_calls": "tool_calls",
}


@register
class OpenAIFormat(WireFormat):
    name = "openai"
    key_header = "authorization"

    def matches(self, path: str) -> bool:
        return path.rstrip("/").endswith("/chat/completions")

    def ask(self, path: str, body: dict[str, Any]) -> Ask:
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        prompt = sum(words(m.get("content", "")) for m in messages if isinstance(m, dict))
        options = body.get("stream_options")
        return Ask(
            model=str(body.get("model", "fake")),
            prompt_tokens=prompt,
            max_tokens=cap_of(body.get("max_tokens", body.get("max_completion_tokens"))),
            stream=bool(body.get("stream")),
            stream_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        )

    def complete(self, number: int, ask: Ask, reply: FakeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.refusal:  # structured outputs: the refusal instead of the content
            message.update(content=None, refusal=reply.refusal)
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["content"] = reply.text or None
            message["tool_calls"] = _tool_calls(number, reply)
        choice = {"index": 0, "message": message, "finish_reason": FINISH[reply.finish]}
        return {
            **_base(number, ask, "chat.completion"),
            "choices": [choice],
            "usage": _usage(ask, reply),
        }

    def events(self, number: int, ask: Ask, reply: FakeReply) -> list[bytes]:
        base = _base(number, ask, "chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"reasoning_content": p}) for p in TOKENS.findall(reply.reasoning)]
        events += [chunk({"content": piece}) for piece in TOKENS.findall(reply.text)]
        events += [chunk({"refusal": piece}) for piece in TOKENS.findall(reply.refusal)]
        calls = _tool_calls(number, reply)
        events += [chunk({"tool_calls": [{"index": i, **call}]}) for i, call in enumerate(calls)]
        events.append(chunk({}, FINISH[reply.finish]))
        if ask.stream_usage:  # usage last, when asked (include_usage)
            events.append(sse({**base, "choices": [], "usage": _usage(ask, reply)}))
        return events

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"

    def broken_event(self) -> bytes:
        return b'data: {"id": "broken", "choices": [{"delta": {"con\n\n'

    def error_event(self, message: str) -> bytes:
        return sse({"error": {"message": message, "type": "server_error", "code": None}})

    def error(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": "fake_provider", "code": status}}

    def limit_headers(self, retry_after: float | None) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after or 1:g}s",
        }
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return headers


def _base(number: int, ask: Ask, kind: str) -> dict[str, Any]:
    return {"id": f"fake-{number}", "object": kind, "created": int(time.time()), "model": ask.model}


def _tool_calls(number: int, reply: FakeReply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_fake_{number}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        for i, (name, arguments) in enumerate(reply.tool_calls)
    ]


def _usage(ask: Ask, reply: FakeReply) -> dict[str, Any]:
    completion = reply.tokens + reply.reasoning_tokens  # OpenAI counts reasoning as output
    usage: dict[str, Any] = {
        "prompt_tokens": ask.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": ask.prompt_tokens + completion,
    }
    if reply.reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    return usage
