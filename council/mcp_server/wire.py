"""Every malformed message gets a JSON-RPC error, never silence.

The SDK drops a line it cannot validate (params as an array, a batch, a numeric method, text
that is not JSON): over stdio the client is sent nothing and waits forever. The gate here reads
each message before the SDK does and answers what the SDK would drop: -32700 for text that is
not JSON, -32600 for a message that is not a request MCP takes (with the request's ``id`` where
it has a usable one, else ``null``), -32602 for params that are not an object. A request
without an ``id`` is answered too (``id: null``): only ``notifications/...`` methods may omit it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
Reply = dict[str, Any]


def _error(ident: str | int | None, code: int, message: str) -> Reply:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def refusal(raw: str | bytes) -> Reply | None:
    """The JSON-RPC error that answers ``raw``, or None when the SDK can take it."""
    try:
        message = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        return _error(None, PARSE_ERROR, "parse error: the message is not JSON")
    if isinstance(message, list):
        return _error(
            None, INVALID_REQUEST, "batches are not supported: send one message at a time"
        )
    if not isinstance(message, dict):
        return _error(None, INVALID_REQUEST, "a message is a JSON object")
    ident = message.get("id")
    usable = ident if isinstance(ident, str | int) and not isinstance(ident, bool) else None
    problem = _shape_problem(message, usable)
    if problem is not None:
        return _error(usable, *problem)
    if "method" in message and "id" not in message:
        return None  # a notification is never answered, even a malformed one
    from mcp_types import jsonrpc_message_adapter
    from pydantic import ValidationError

    try:
        jsonrpc_message_adapter.validate_python(message, by_name=False)
    except ValidationError:
        return _error(usable, INVALID_REQUEST, "not a JSON-RPC request, notification or response")
    return None


def _shape_problem(message: dict[str, Any], usable: str | int | None) -> tuple[int, str] | None:
    if message.get("jsonrpc") != "2.0":
        return INVALID_REQUEST, "'jsonrpc' must be \"2.0\""
    if "id" in message and usable is None:
        return INVALID_REQUEST, "'id' must be a string or an integer"
    if "method" not in message:
        return None  # a response or error from the client: the SDK's validation decides
    method = message["method"]
    if not isinstance(method, str):
        return INVALID_REQUEST, "'method' must be a string"
    notification = method.startswith("notifications/")
    if "id" not in message and not notification:
        return INVALID_REQUEST, f"'{method[:100]}' is a request: it needs an 'id'"
    if "params" in message and not isinstance(message["params"], dict) and not notification:
        return INVALID_PARAMS, "'params' must be an object"
    return None


# -- stdio ------------------------------------------------------------------------------------


@contextmanager
def claimed_stdin() -> Iterator[Any]:
    """The client's stdin, read through a private duplicate of fd 0, while fd 0 itself points
    at /dev/null: a child process reads end of file instead of the client's messages (the SDK
    does the same for the stdin it opens itself, which the gate replaces)."""
    import fcntl

    import anyio

    wire = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # closefd=False: a reader thread may still block on it after the server stops.
    text = io.TextIOWrapper(
        os.fdopen(wire, "rb", closefd=False), encoding="utf-8", errors="replace"
    )
    try:
        yield anyio.wrap_file(text)
    finally:
        os.dup2(wire, 0)


class GatedLines:
    """The lines of the wire the SDK can take; every other one is answered here, through the
    server's own writer (one writer, so replies never interleave)."""

    def __init__(self, lines: Any) -> None:
        import anyio

        self._lines = lines
        self._out: Any = None
        self._ready = anyio.Event()

    def answer_with(self, write_stream: Any) -> None:
        self._out = write_stream
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._gated()

    async def _gated(self) -> AsyncIterator[str]:
        import anyio
        from mcp.shared.message import SessionMessage
        from mcp_types import JSONRPCError

        async for line in self._lines:
            if not line.strip():
                continue  # a blank line is no message
            reply = refusal(line)
            if reply is None:
                yield line
                continue
            await self._ready.wait()
            try:
                await self._out.send(SessionMessage(JSONRPCError.model_validate(reply)))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return


async def serve_stdio(server: Any) -> None:
    """``server`` on stdio, behind the gate."""
    from typing import cast

    from mcp.server.stdio import stdio_server

    # The SDK's own MCPServer.run_stdio_async runs its low-level server the same way; that
    # server is not public in mcp 2.3.0 (pinned in pyproject.toml).
    lowlevel = server._lowlevel_server
    with claimed_stdin() as stdin:
        gate = GatedLines(stdin)
        async with stdio_server(stdin=cast(Any, gate)) as (read_stream, write_stream):
            gate.answer_with(write_stream)
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


# -- streamable HTTP --------------------------------------------------------------------------


class JsonRpcGate:
    """ASGI middleware: a POST whose body is not a message the SDK takes is answered 400 with
    a one-line JSON-RPC error (the SDK's own answer is a multi-line validation dump, with no
    ``id`` even where the request had one)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await _answer(send, 413, _error(None, INVALID_REQUEST, "the body is too large"))
                return
        reply = refusal(body)
        if reply is not None:
            await _answer(send, 400, reply)
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()  # a disconnect, when the client goes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Any, status: int, reply: Reply) -> None:
    body = json.dumps(reply).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
