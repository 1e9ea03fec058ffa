"""Read-only context tools: a seat whose model takes tools searches and reads the run's
documents itself, within its turn.

Two tools, offered in OpenAI's function form (litellm translates it for Anthropic and Gemini):
``search_context(query)`` ranks the documents' passages with the run's own retriever (the one
retrieval uses) and returns the first few, and ``read_context(id, lines)`` returns numbered
lines of one document. Both read the documents already read for the run, never the
filesystem, and both answer a bad argument (an unknown document or tool, lines outside the
document, arguments that are not JSON) with an error the model reads, not a failed turn.

A turn calls the model, runs the tools it asked for, appends their results and calls again, at
most ``MAX_TOOL_ROUNDS`` rounds of tools; the call after the last round says ``tool_choice:
"none"`` and asks for the answer. Every tool call is recorded on the turn (``ToolCall``), and
the turn's tokens and cost are the sum over its calls.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from council.engine.grounding import Grounding
from council.records.grounding import ToolCall
from council.seats.model import ChatModel, Completion, ModelRequest

MAX_TOOL_ROUNDS = 3  # rounds of tool calls a turn may make before it must answer
SEARCH_RESULTS = 3  # passages one search returns
READ_MAX_LINES = 60  # lines one read returns at most (a longer range is cut, and says so)
RESULT_MAX_CHARS = 6_000  # characters of one tool result at most
ARGUMENTS_KEPT = 300  # characters of a call's arguments kept on the record
ANSWER_NOW = (
    "You have used the tool calls this turn allows. Answer now, from what you have read, "
    "without calling a tool."
)
_LINES = re.compile(r"^\s*(\d+)\s*(?:[-\u2013]\s*(\d+))?\s*$")


def _function(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
            },
        },
    }


TOOL_SPECS: tuple[dict[str, Any], ...] = (
    _function(
        "search_context",
        "Search the context documents; returns the passages that best match the query, "
        "each with its id and line numbers to cite as [D2:14-20].",
        {"query": {"type": "string", "description": "what to look for"}},
    ),
    _function(
        "read_context",
        f"Read numbered lines of one context document (at most {READ_MAX_LINES} lines).",
        {
            "id": {"type": "string", "description": "the document's id, e.g. D2"},
            "lines": {"type": "string", "description": "a line range, e.g. 14-20"},
        },
    ),
)


class ToolError(ValueError):
    """A bad tool call: said to the model as the call's result."""


def offered(grounding: Grounding | None, model: ChatModel) -> tuple[dict[str, Any], ...]:
    """The tools a seat on ``model`` is offered: none without documents or with
    ``context_tools`` off; on auto, only to a model that takes tools."""
    if grounding is None or grounding.tools == "off":
        return ()
    return TOOL_SPECS if grounding.tools == "on" or model.tool_calling else ()


class ContextTools:
    """The tools over one run's documents. A new tool is a method registered in ``HANDLERS``."""

    def __init__(self, grounding: Grounding, redact: Callable[[str], str] = str) -> None:
        self.grounding = grounding
        self.redact = redact

    def run(self, name: str, arguments: str) -> tuple[str, ToolCall]:
        """The result the model reads, and the call as recorded."""
        kept = self.redact(" ".join(arguments.split())[:ARGUMENTS_KEPT])
        try:
            handler = HANDLERS.get(name)
            if handler is None:
                raise ToolError(f"no tool '{name}' (offered: {', '.join(HANDLERS)})")
            result = handler(self, _arguments(arguments))[:RESULT_MAX_CHARS]
        except ToolError as exc:
            return f"error: {exc}", ToolCall(name=name, arguments=kept, ok=False, error=str(exc))
        return result, ToolCall(name=name, arguments=kept, result_chars=len(result))

    def search(self, arguments: dict[str, Any]) -> str:
        query = _text(arguments, "query")
        chunks = self.grounding.chunks()
        scores = self.grounding.retriever.scores(query, [c.text for c in chunks])
        ranked = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))[:SEARCH_RESULTS]
        if not ranked:
            return "no passages"
        return "\n\n".join(self._shown(chunks[i].passage.doc, chunks[i].text) for i in ranked)

    def read(self, arguments: dict[str, Any]) -> str:
        doc_id, lines = _text(arguments, "id").strip().upper(), _text(arguments, "lines")
        document = self.grounding.documents.get(doc_id)
        if document is None:
            known = ", ".join(self.grounding.documents)
            raise ToolError(f"no document '{doc_id}' (the documents are {known})")
        match = _LINES.match(lines)
        if match is None:
            raise ToolError(f"lines must be a range such as 14-20, not '{lines}'")
        start = int(match.group(1))
        end = int(match.group(2) or start)
        count = len(document.lines)
        if start < 1 or end < start or end > count:
            raise ToolError(f"lines {start}-{end} are outside {doc_id}'s {count} lines")
        last = min(end, start + READ_MAX_LINES - 1)
        text = self._shown(doc_id, document.numbered(start, last))
        return text if last == end else f"{text}\n(cut at {READ_MAX_LINES} lines: read on)"

    def _shown(self, doc_id: str, text: str) -> str:
        path = self.grounding.documents[doc_id].info.path
        return f"[{doc_id}] {path}\n{text}"


HANDLERS: dict[str, Callable[[ContextTools, dict[str, Any]], str]] = {
    "search_context": ContextTools.search,
    "read_context": ContextTools.read,
}


def _arguments(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        raise ToolError("the arguments are not JSON") from None
    if not isinstance(found, dict):
        raise ToolError("the arguments must be a JSON object")
    return found


def _text(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"'{name}' must be a non-empty string")
    return value


async def complete_with_tools(
    model: ChatModel, request: ModelRequest, tools: ContextTools | None
) -> tuple[Completion, list[ToolCall]]:
    """The turn's answer, after the tool rounds its model asked for: one plain call where the
    request offers no tools."""
    if not request.tools or tools is None:
        return await model.complete(request), []
    messages, made, spent = list(request.messages), [], []
    for round_number in range(MAX_TOOL_ROUNDS + 1):
        last = round_number == MAX_TOOL_ROUNDS
        if last:  # the bound: the model is asked to answer, and may call no tool
            messages.append({"role": "user", "content": ANSWER_NOW})
        asked = dataclasses.replace(
            request, messages=list(messages), tool_choice="none" if last else None
        )
        completion = await model.complete(asked)
        spent.append(completion)
        if last or not completion.tool_calls:
            break
        messages.append(_called(completion))
        for call in completion.tool_calls:
            result, record = tools.run(call["name"], call["arguments"])
            made.append(record)
            said = {"role": "tool", "tool_call_id": call["id"], "name": call["name"]}
            messages.append({**said, "content": result})
    return summed(spent), made


def _called(completion: Completion) -> dict[str, Any]:
    """The assistant's message that called the tools, as the next call must repeat it."""
    calls = [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
        }
        for c in completion.tool_calls
    ]
    return {"role": "assistant", "content": completion.content or None, "tool_calls": calls}


def summed(spent: list[Completion]) -> Completion:
    """The last call's answer with the tokens, cost, attempts and waits of all the calls."""

    def total(name: str) -> Any:
        values = [getattr(c, name) for c in spent]
        known = [v for v in values if v is not None]
        if not known or (name == "cost_usd" and len(known) < len(values)):
            return None  # a cost with a call unpriced is unknown, not a smaller number
        return sum(known)

    return dataclasses.replace(
        spent[-1],
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        cost_usd=total("cost_usd"),
        reasoning_tokens=total("reasoning_tokens"),
        attempts=sum(c.attempts for c in spent),
        queue_s=round(sum(c.queue_s for c in spent), 4),
        start_s=round(sum(c.start_s for c in spent), 4),
    )
