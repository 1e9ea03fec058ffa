"""A reasoning model's reply in OpenAI's wire format, for ``FakeProvider(reasoning=...)``.

Models that think before they answer (OpenAI's o-series through compatible servers, DeepSeek
R1, Qwen3 behind vLLM or llama.cpp) send their thinking as ``message.reasoning_content`` (a
stream: ``delta.reasoning_content`` pieces before the answer's) and count it within
``completion_tokens``, reported apart as ``completion_tokens_details.reasoning_tokens``. It is
spent first under the request's ``max_tokens``: with the cap enforced, reasoning that reaches
the cap leaves the answer empty, ending in ``finish_reason: "length"``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKENS = re.compile(r"\s*\S+\s*|\s+")  # a token: a word with its spaces, as the fake counts


def spend(
    reasoning: str, text: str, cap: Any, enforced: bool
) -> tuple[str, str, str]:  # fmt: skip
    """(reasoning, answer, finish_reason) as sent: reasoning first under the cap, then the
    answer in what is left of it."""
    thought, answer = _TOKENS.findall(reasoning), _TOKENS.findall(text)
    if not enforced or not isinstance(cap, int) or len(thought) + len(answer) <= cap:
        return reasoning, text, "stop"
    if len(thought) >= cap:
        return "".join(thought[: max(cap, 0)]).rstrip(), "", "length"
    return reasoning, "".join(answer[: cap - len(thought)]).rstrip(), "length"


def _with_reasoning_usage(usage: dict[str, Any], reasoning: str) -> dict[str, Any]:
    tokens = len(reasoning.split())
    return {
        **usage,
        "completion_tokens": usage["completion_tokens"] + tokens,
        "total_tokens": usage["total_tokens"] + tokens,
        "completion_tokens_details": {"reasoning_tokens": tokens},
    }


def completion(payload: dict[str, Any], reasoning: str) -> dict[str, Any]:
    """A ``chat.completion`` with the reasoning beside the answer, and its tokens counted."""
    choice = payload["choices"][0]
    message = {**choice["message"], "reasoning_content": reasoning}
    usage = _with_reasoning_usage(payload["usage"], reasoning)
    return {**payload, "choices": [{**choice, "message": message}], "usage": usage}


def chunks(events: list[str], reasoning: str) -> list[str]:
    """A stream's events with the reasoning's pieces after the opening chunk, before the
    answer's, and the usage chunk (when asked for) counting them."""
    first = json.loads(events[0])
    pieces = []
    for piece in _TOKENS.findall(reasoning):
        choice = {"index": 0, "delta": {"reasoning_content": piece}, "finish_reason": None}
        pieces.append(json.dumps({**first, "choices": [choice]}))
    rest = []
    for event in events[1:]:
        data = json.loads(event)
        if "usage" in data and not data.get("choices"):
            event = json.dumps({**data, "usage": _with_reasoning_usage(data["usage"], reasoning)})
        rest.append(event)
    return [events[0], *pieces, *rest]
