"""An OpenAI-compatible chat server on loopback that answers, injects faults, and counts.

Real litellm calls (or any OpenAI client) go to it over HTTP, so retries, timeouts, error
classification, streaming and usage accounting are tested end to end without any model::

    with FakeProvider("An answer.", error_rates={429: 0.1, 503: 0.05}, seed=1) as fake:
        model = make_model("openai/fake", endpoints={"openai/fake": fake.api_base})
        ...
        assert sum(fake.outcomes.values()) == fake.request_count

Faults, each decided per request (queued ``fail_next`` faults first, then the random rates):

- **status errors** (``error_rates={500: 0.1}`` or ``fail_next(500)``): the status with an
  OpenAI-style JSON error body. Random 429s carry ``Retry-After: retry_after_s``.
- **hang** (``hang_rate``): the request is read, then the server says nothing for ``hang_s``
  seconds and closes the connection without a response: only the client's timeout ends the
  wait. Leaving the ``with`` block releases every hung request at once.
- **malformed** (``malformed_rate``): ``200 OK`` whose body is not valid JSON (for a stream,
  an SSE ``data:`` line that is not JSON).
- **truncated** (``truncate_rate``): ``200 OK`` that stops halfway. A plain response declares a
  ``Content-Length`` larger than what is sent; a stream sends some ``chat.completion.chunk``
  events and closes before its last chunk and before ``data: [DONE]``.
- **latency** (``latency``): a delay before every answer or error: a fixed number of seconds,
  a ``(min, max)`` range drawn uniformly, or a function of a ``random.Random``.

With ``reasoning`` (text, or a function of the request body) it answers as a reasoning model
does (``council.testing.fake_reasoning``): the reasoning as ``reasoning_content`` beside the
answer, counted as ``reasoning_tokens``, and spent first under an enforced ``max_tokens``.

With ``enforce_max_tokens=True`` it also does what a real server does with a request's
``max_tokens``: a reply longer than that (a token here is a word with its spaces, as in the
usage it reports) is cut off after ``max_tokens`` of them and ends with ``finish_reason:
"length"`` instead of ``"stop"``, streamed or not.

``seed`` makes the draws reproducible: the n-th request to arrive always gets the same fault
and the same latency. ``request_count``, ``outcomes`` (a Counter of ``"ok"``, ``"429"``,
``"hang"``, ...), ``outcome_log`` (one per request, in order) and ``answered_hashes`` (the
SHA-256 of each request body answered ``200 OK``) let a test check what happened, e.g. that no
identical request was answered twice. ``"stream": true`` requests get server-sent events in
OpenAI's ``chat.completion.chunk`` format, ended by ``data: [DONE]``.

From a shell (binds 127.0.0.1 only; prints the base URL, serves until interrupted)::

    python -m council.testing.fake_provider --error-rate 500=0.1 --latency 0.05,0.2 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from council.testing import fake_reasoning

Reply = str | Callable[[dict[str, Any]], str]
Latency = float | tuple[float, float] | Callable[[random.Random], float]
Fault = int | Literal["hang", "malformed", "truncated"]

HOST = "127.0.0.1"
FAULT_NAMES = ("hang", "malformed", "truncated")
_TOKENS = re.compile(r"\s*\S+\s*|\s+")


def request_hash(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (sorted keys, no spaces): equal bodies match."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Plan:
    """What the server does with one request, decided when it arrives."""

    outcome: str  # "ok", "hang", "malformed", "truncated" or a status code such as "429"
    number: int  # 1-based arrival number
    delay_s: float
    status: int = 200
    retry_after: float | None = None


class FakeProvider:
    """An OpenAI-compatible server on 127.0.0.1 with configurable faults; use it with ``with``.

    ``reply`` is the answer text, or a function of the request body that returns it.
    ``latency_s`` is the older name of a fixed ``latency``. Rates are probabilities per request
    and together may not exceed 1.
    """

    def __init__(
        self,
        reply: Reply = "A fake answer.",
        *,
        latency_s: float = 0.0,
        latency: Latency | None = None,
        error_rates: dict[int, float] | None = None,
        retry_after_s: float = 1.0,
        hang_rate: float = 0.0,
        hang_s: float = 30.0,
        malformed_rate: float = 0.0,
        truncate_rate: float = 0.0,
        seed: int | None = None,
        port: int = 0,
        api_key: str | None = None,
        enforce_max_tokens: bool = False,
        reasoning: Reply | None = None,
    ) -> None:
        if latency is not None and latency_s:
            raise ValueError("give latency or latency_s, not both")
        self.reply = reply
        self.api_key = api_key  # when set, a request without "Bearer <api_key>" gets a 401
        self.enforce_max_tokens = enforce_max_tokens  # cut replies off at max_tokens
        self.reasoning = reasoning  # a reasoning model's thinking, sent beside each answer
        self.latency: Latency = latency if latency is not None else latency_s
        _check_latency(self.latency)
        self.error_rates = dict(error_rates or {})
        for status in self.error_rates:
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(f"error_rates keys must be HTTP error statuses, got {status!r}")
        self._rates: list[tuple[str, float]] = [
            *((str(status), rate) for status, rate in sorted(self.error_rates.items())),
            ("hang", hang_rate),
            ("malformed", malformed_rate),
            ("truncated", truncate_rate),
        ]
        for name, rate in self._rates:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {name} must be between 0 and 1, got {rate}")
        if sum(rate for _, rate in self._rates) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        if retry_after_s < 0 or hang_s < 0:
            raise ValueError("retry_after_s and hang_s must not be negative")
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.seed = seed

        self.requests: list[dict[str, Any]] = []  # JSON bodies, in arrival order
        self.headers: list[dict[str, str]] = []  # their HTTP headers, to check what was sent
        self.outcomes: Counter[str] = Counter()  # what each request got: "ok", "429", "hang"...
        self.outcome_log: list[str] = []  # the same, one entry per request in arrival order
        self.answered_hashes: list[str] = []  # request_hash() of each body answered 200 OK
        self._faults: deque[tuple[Fault, float | None]] = deque()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set on close: hung and delayed requests let go
        self._server = _Server((HOST, port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- public API ----------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def request_count(self) -> int:
        """Chat completion requests received (answered, failed, hung or cut short)."""
        with self._lock:
            return len(self.requests)

    @property
    def answered_twice(self) -> list[str]:
        """Hashes of request bodies that were answered ``200 OK`` more than once."""
        with self._lock:
            return sorted(h for h, n in Counter(self.answered_hashes).items() if n > 1)

    def fail_next(self, *faults: Fault, retry_after: float | None = None) -> None:
        """Queue faults for the next requests, in order, before any random ones.

        A fault is an HTTP status (``retry_after`` adds a ``Retry-After`` header to each) or
        one of ``"hang"``, ``"malformed"``, ``"truncated"``.
        """
        for fault in faults:
            if fault not in FAULT_NAMES and not (isinstance(fault, int) and 400 <= fault <= 599):
                raise ValueError(f"unknown fault {fault!r}: an HTTP error status or {FAULT_NAMES}")
        with self._lock:
            self._faults.extend((fault, retry_after) for fault in faults)

    def start(self) -> FakeProvider:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still hanging or waiting are closed without an answer."""
        self._stop.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deciding and answering -----------------------------------------------------------

    def _plan(self, body: dict[str, Any], headers: dict[str, str]) -> _Plan:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            number = len(self.requests)
            queued = self._faults.popleft() if self._faults else None
            draw = self._rng.random()  # drawn even for queued faults: the sequence stays fixed
            delay = _draw_latency(self.latency, self._rng)
            bearer = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if self.api_key is not None and bearer != f"Bearer {self.api_key}":
                outcome, retry_after = "401", None
            elif queued is not None:
                fault, retry_after = queued
                outcome = str(fault)
            else:
                outcome, retry_after = "ok", None
                for name, rate in self._rates:
                    if draw < rate:
                        outcome = name
                        break
                    draw -= rate
                if outcome == "429":
                    retry_after = self.retry_after_s
            self.outcomes[outcome] += 1
            self.outcome_log.append(outcome)
        status = int(outcome) if outcome.isdigit() else 200
        return _Plan(outcome, number, delay, status, retry_after)

    def _answer_text(self, plan: _Plan, body: dict[str, Any]) -> str | None:
        """The reply for a request about to be answered, or None where the reply function
        raised (the request is then recorded as a 500, which is what it gets)."""
        try:
            text = self.reply(body) if callable(self.reply) else self.reply
        except Exception:
            text = None
        with self._lock:
            if text is None:
                self.outcomes[plan.outcome] -= 1
                self.outcomes["500"] += 1
                self.outcome_log[plan.number - 1] = "500"
            elif plan.outcome == "ok":
                self.answered_hashes.append(request_hash(body))
        return text

    def _think(self, body: dict[str, Any], text: str) -> tuple[str | None, str, str]:
        """(reasoning, answer, finish_reason): the reply as ``_cut`` sends it, with the
        reasoning spent first under the cap when this provider reasons."""
        if self.reasoning is None:
            return None, *self._cut(body, text)
        thought = self.reasoning(body) if callable(self.reasoning) else self.reasoning
        cap = body.get("max_tokens", body.get("max_completion_tokens"))
        return fake_reasoning.spend(thought, text, cap, self.enforce_max_tokens)

    def _cut(self, body: dict[str, Any], text: str) -> tuple[str, str]:
        """The reply as sent and why it ended: cut off at ``max_tokens`` ("length") when
        enforced and the reply is longer, else whole ("stop")."""
        cap = body.get("max_tokens")
        tokens = _TOKENS.findall(text)
        if not self.enforce_max_tokens or not isinstance(cap, int) or len(tokens) <= cap:
            return text, "stop"
        return "".join(tokens[: max(cap, 0)]).rstrip(), "length"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked streams; every response still closes

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
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
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self._send(400, {"error": {"message": "invalid JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if not isinstance(body, dict):
                    self._send(400, {"error": {"message": "the body must be a JSON object"}})
                    return
                plan = provider._plan(body, dict(self.headers.items()))
                if plan.outcome == "hang":
                    provider._stop.wait(provider.hang_s)
                    return  # close without a word: only the client's timeout ends its wait
                if plan.delay_s and provider._stop.wait(plan.delay_s):
                    return  # the provider closed while this request waited
                if plan.status != 200:
                    self._error(plan)
                    return
                text = provider._answer_text(plan, body)
                if text is None:  # a reply function's bug: a 500 that says so
                    self._send(500, _error_body("the reply function raised an exception", 500))
                    return
                reasoning, text, finish = provider._think(body, text)
                if body.get("stream"):
                    self._stream(plan, body, text, finish, reasoning)
                else:
                    self._complete(plan, body, text, finish, reasoning)

            def _error(self, plan: _Plan) -> None:
                headers = {}
                if plan.retry_after is not None:
                    headers["Retry-After"] = f"{plan.retry_after:g}"
                self._send(
                    plan.status, _error_body(f"injected {plan.status}", plan.status), headers
                )

            def _complete(
                self, plan: _Plan, body: dict[str, Any], text: str, finish: str,
                reasoning: str | None = None,
            ) -> None:  # fmt: skip
                payload = _completion(plan.number, body, text, finish)
                if reasoning is not None:
                    payload = fake_reasoning.completion(payload, reasoning)
                data = json.dumps(payload).encode()
                if plan.outcome == "malformed":
                    data = data[: len(data) // 2] + b"<<not JSON"
                sent = data[: len(data) // 2] if plan.outcome == "truncated" else data
                self._head(200, {"Content-Length": str(len(data))})
                self.wfile.write(sent)

            def _stream(
                self, plan: _Plan, body: dict[str, Any], text: str, finish: str,
                reasoning: str | None = None,
            ) -> None:  # fmt: skip
                events = _chunks(plan.number, body, text, finish)
                if reasoning is not None:
                    events = fake_reasoning.chunks(events, reasoning)
                if plan.outcome == "truncated":
                    events = events[: max(1, len(events) // 2)]  # never the final chunk
                elif plan.outcome == "malformed":
                    events = [*events[:1], '{"id": "broken", "choices": [{"delta": {"con']
                self._head(
                    200, {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"}, sse=True
                )
                for event in events:
                    self._chunk(f"data: {event}\n\n".encode())
                if plan.outcome == "truncated":
                    return  # no [DONE], no closing zero-length chunk: the peer sees a cut
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler never keeps the process (or close()) waiting
    request_queue_size = 256  # the default backlog of 5 drops connections from a busy council
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up (its timeout fired): expected, not worth a traceback
        super().handle_error(request, client_address)


def _error_body(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "fake_provider", "code": status}}


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(
    number: int, body: dict[str, Any], text: str, finish: str = "stop"
) -> dict[str, Any]:
    return {
        "id": f"fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": _usage(body, text),
    }


def _chunks(number: int, body: dict[str, Any], text: str, finish: str = "stop") -> list[str]:
    """The JSON of each ``chat.completion.chunk`` event of a streamed answer, in order."""
    base = {
        "id": f"fake-{number}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({**base, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _TOKENS.findall(text)]
    events.append(chunk({}, finish))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        events.append(json.dumps({**base, "choices": [], "usage": _usage(body, text)}))
    return events


def _check_latency(latency: Latency) -> None:
    if callable(latency):
        return
    if isinstance(latency, tuple):
        low, high = latency
        if not 0 <= low <= high:
            raise ValueError(f"latency range must be (min, max) with 0 <= min <= max: {latency}")
    elif latency < 0:
        raise ValueError(f"latency must not be negative: {latency}")


def _draw_latency(latency: Latency, rng: random.Random) -> float:
    if callable(latency):
        return max(0.0, float(latency(rng)))
    if isinstance(latency, tuple):
        return rng.uniform(*latency)
    return float(latency)


# -- command line ---------------------------------------------------------------------------


def _error_rates(text: str) -> dict[int, float]:
    rates: dict[int, float] = {}
    for item in filter(None, text.split(",")):
        status, sep, rate = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            rates[int(status)] = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected STATUS=RATE, e.g. 500=0.1: {item!r}"
            ) from None
    return rates


def _latency(text: str) -> float | tuple[float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN,MAX: {text!r}") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise argparse.ArgumentTypeError(f"expected SECONDS or MIN,MAX: {text!r}")


def _loopback(text: str) -> str:
    if text not in (HOST, "localhost"):
        raise argparse.ArgumentTypeError(f"the fake provider binds {HOST} only, not {text!r}")
    return HOST


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m council.testing.fake_provider",
        description="An OpenAI-compatible fake chat server on 127.0.0.1 that injects faults.",
    )
    parser.add_argument("--host", type=_loopback, default=HOST, help="127.0.0.1 only")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--reply", default="A fake answer.", help="the text every answer gives")
    parser.add_argument(
        "--error-rate",
        type=_error_rates,
        action="append",
        default=[],
        metavar="STATUS=RATE",
        help="e.g. 500=0.1 or 429=0.1,503=0.05 (repeatable)",
    )
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of 429s")
    parser.add_argument("--latency", type=_latency, default=0.0, metavar="S|MIN,MAX")
    parser.add_argument("--hang-rate", type=float, default=0.0)
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--enforce-max-tokens", action="store_true", help="cut replies off at max_tokens"
    )
    return parser.parse_args(argv)


def from_args(args: argparse.Namespace) -> FakeProvider:
    error_rates = {k: v for rates in args.error_rate for k, v in rates.items()}
    return FakeProvider(
        args.reply,
        latency=args.latency,
        error_rates=error_rates,
        retry_after_s=args.retry_after,
        hang_rate=args.hang_rate,
        hang_s=args.hang_s,
        malformed_rate=args.malformed_rate,
        truncate_rate=args.truncate_rate,
        seed=args.seed,
        port=args.port,
        enforce_max_tokens=args.enforce_max_tokens,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        provider = from_args(args)
    except (ValueError, OSError) as exc:
        print(f"fake_provider: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with provider:
        print(provider.api_base, flush=True)
        try:
            while not done.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    summary = ", ".join(f"{k}={v}" for k, v in sorted(provider.outcomes.items())) or "none"
    print(f"{provider.request_count} requests: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
