"""An OpenAI-compatible chat server on loopback that answers, fails on demand, and counts.

Real litellm calls go to it over HTTP, so retries, error classification and usage accounting
are tested end to end without any model. ``fail_next(429, 500)`` makes the next requests fail
with those statuses (with an optional ``Retry-After``); ``reply`` sets what it answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | Callable[[dict[str, Any]], str]


class FakeProvider:
    def __init__(self, reply: Reply = "A fake answer.", *, latency_s: float = 0.0) -> None:
        self.reply = reply
        self.latency_s = latency_s
        self.requests: list[dict[str, Any]] = []  # JSON bodies, in arrival order
        self.headers: list[dict[str, str]] = []  # their HTTP headers, to check what was sent
        self._faults: deque[tuple[int, float | None]] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def fail_next(self, *statuses: int, retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.extend((status, retry_after) for status in statuses)

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            fault = self._faults.popleft() if self._faults else None
        if self.latency_s:
            time.sleep(self.latency_s)
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            error = {"error": {"message": f"injected {status}", "type": "fake", "code": status}}
            return status, headers, error
        text = self.reply(body) if callable(self.reply) else self.reply
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion = {
            "id": f"fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_words + len(text.split()),
            },
        }
        return 200, {}, completion

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {}, {"object": "list", "data": [{"id": "fake"}]})
                else:
                    self._send(404, {}, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {}, {"error": {"message": "invalid JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {}, {"error": {"message": "not found"}})
                    return
                status, headers, payload = provider._answer(body, dict(self.headers.items()))
                self._send(status, headers, payload)

        return Handler
