"""The tools a reply called, read from litellm's message (every provider's calls arrive in
OpenAI's shape) into plain dicts that travel as JSON (a warm worker's answer)."""

from __future__ import annotations

from typing import Any


def tool_calls_of(message: Any) -> tuple[dict[str, str], ...]:
    """The tools a reply called, as ``{"id", "name", "arguments"}`` (litellm gives every
    provider's calls OpenAI's shape)."""
    found = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        found.append(
            {
                "id": str(getattr(call, "id", "") or ""),
                "name": str(getattr(function, "name", "") or ""),
                "arguments": str(getattr(function, "arguments", "") or ""),
            }
        )
    return tuple(found)
