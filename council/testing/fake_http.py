"""The fake provider's HTTP side: read a request, ask the provider what to do with it, and write
the answer, the stream or the error in the request's wire format (``council.testing.fake_wire``)
-- or, as a fault says, garbled, cut short, or not at all."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from council.testing.fake_wire import WireFormat, format_for


@dataclass(frozen=True)
class Plan:
    """What the server does with one request, decided when it arrives."""

    outcome: str  # "ok", a status code such as "429", or a named fault ("hang", "refusal"...)
    number: int  # 1-based arrival number
    delay_s: float
    status: int = 200
    retry_after: float | None = None


def make_handler(provider: Any) -> type[BaseHTTPRequestHandler]:
    """The request handler of ``provider`` (a ``FakeProvider``): it reads a request, asks the
    provider what to do with it (``_plan``, ``_answer``), and writes that in the request's wire
    format."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streams; every response still closes

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output clean

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self._head(status, {"Content-Length": str(len(data)), **(headers or {})})
            self.wfile.write(data)

        def _head(self, status: int, headers: dict[str, str], *, sse: bool = False) -> None:
            self.close_connection = True
            self.send_response(status)
            kind = "text/event-stream" if sse else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Connection", "close")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            self.close_connection = True  # one request per connection, answered or not
            length = int(self.headers.get("Content-Length") or 0)
            path = self.path.partition("?")[0]
            wire = format_for(path)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if wire is None:
                self._send(404, {"error": {"message": f"not found: {path}"}})
                return
            if not isinstance(body, dict):
                self._send(400, wire.error(400, "the body must be a JSON object"))
                return
            plan = provider._plan(body, dict(self.headers.items()), wire)
            if plan.outcome == "hang":
                provider._stop.wait(provider.hang_s)
                return  # close without a word: only the client's timeout ends its wait
            if plan.delay_s and provider._stop.wait(plan.delay_s):
                return  # the provider closed while this request waited
            if plan.status != 200:
                self._error(wire, plan)
                return
            ask = wire.ask(path, body)
            reply = provider._answer(plan, body, ask.max_tokens)
            if plan.outcome == "stream_error" and not ask.stream:
                self._send(500, wire.error(500, "injected error (a stream's comes midway)"))
            elif reply is None:  # a reply function's bug: a 500 that says so
                self._send(500, wire.error(500, "the reply function raised an exception"))
            elif ask.stream:
                self._stream(plan, wire, wire.events(plan.number, ask, reply))
            else:
                self._complete(plan, wire.complete(plan.number, ask, reply))

        def _error(self, wire: WireFormat, plan: Plan) -> None:
            headers = {}
            if plan.status == 429:
                headers = wire.limit_headers(plan.retry_after)
            elif plan.retry_after is not None:
                headers["Retry-After"] = f"{plan.retry_after:g}"
            body = wire.error(plan.status, f"injected {plan.status}", plan.retry_after)
            self._send(plan.status, body, headers)

        def _complete(self, plan: Plan, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            if plan.outcome == "malformed":
                data = data[: len(data) // 2] + b"<<not JSON"
            sent = data[: len(data) // 2] if plan.outcome == "truncated" else data
            self._head(200, {"Content-Length": str(len(data))})
            self.wfile.write(sent)

        def _stream(self, plan: Plan, wire: WireFormat, events: list[bytes]) -> None:
            if plan.outcome == "truncated":
                events = events[: max(1, len(events) // 2)]  # never the final event
            elif plan.outcome == "malformed":
                events = [*events[:1], wire.broken_event()]
            elif plan.outcome == "stream_error":  # then the stream ends, without its end marker
                events = [*events[: len(events) // 2], wire.error_event("injected error midway")]
            self._head(200, {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"}, sse=True)
            for event in events:
                self._chunk(event)
            if plan.outcome == "truncated":
                return  # no end marker, no closing zero-length chunk: the peer sees a cut
            if wire.done() and plan.outcome != "stream_error":
                self._chunk(wire.done())
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler never keeps the process (or close()) waiting
    request_queue_size = 256  # the default backlog of 5 drops connections from a busy council
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up (its timeout fired): expected, not worth a traceback
        super().handle_error(request, client_address)
