"""A chat server on loopback that answers, injects faults, and counts, in three wire formats.

Real litellm calls go to it over HTTP, so retries, timeouts, error classification, streaming
and usage accounting are tested end to end without any model::

    with FakeProvider("An answer.", error_rates={429: 0.1, 503: 0.05}, seed=1) as fake:
        model = make_model("openai/fake", endpoints={"openai/fake": fake.api_base})
        ...
        assert sum(fake.outcomes.values()) == fake.request_count

It speaks OpenAI chat completions (``api_base``), Anthropic Messages (``anthropic_base``, for
``anthropic/...`` models) and Gemini generateContent (``gemini_base``, for ``gemini/...``
models), each as its provider does: litellm's own code path for that provider runs against it
(``council.testing.fake_wire`` and the format modules say what each looks like). The format is
the one whose endpoint a request was sent to; ``wire_log`` lists them in order.

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
- **reply faults** (``fault_rates={"refusal": 0.2}`` or ``fail_next("refusal")``): ``200 OK``
  whose reply is cut off halfway (``length``), a refusal (``refusal``; OpenAI's refusal field:
  ``structured_refusal``), empty (``empty``), has reasoning before it (``reasoning``) or calls
  a tool nobody offered (``tool_call``). A reply function may also return a ``FakeReply`` to
  say exactly what to answer.
- **error midway** (``stream_error``): a stream that begins ``200 OK`` and, halfway, sends the
  format's error event instead of the rest (a whole answer gets a 500).
- **rate limits**: a 429 carries the format's headers (OpenAI ``x-ratelimit-*``, Anthropic
  ``anthropic-ratelimit-*``; ``Retry-After`` where the format has it) and error body.
- **latency** (``latency``): a delay before every answer or error: a fixed number of seconds,
  a ``(min, max)`` range drawn uniformly, or a function of a ``random.Random``.

With ``enforce_max_tokens=True`` it also does what a real server does with a request's
``max_tokens`` (Gemini: ``maxOutputTokens``): a reply longer than that (a token here is a word
with its spaces, as in the usage it reports) is cut off after ``max_tokens`` of them and ends
with ``finish_reason: "length"`` (``max_tokens``, ``MAX_TOKENS``) instead of ``"stop"``,
streamed or not. Reasoning counts first: a model that thinks past the cap answers nothing.

With ``reasoning`` (text, or a function of the request body) it answers as a reasoning model
does, in each format's way (``FakeReply.reasoning``): OpenAI's ``reasoning_content`` counted
as ``reasoning_tokens``, Anthropic's ``thinking`` blocks, Gemini's ``thought`` parts.

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
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any

from council.testing import fake_anthropic, fake_gemini, fake_openai  # noqa: F401 (registered)
from council.testing.fake_http import Plan, Server, make_handler
from council.testing.fake_wire import (
    RATED_FAULTS,
    REPLY_FAULTS,
    FakeReply,
    WireFormat,
    as_reply,
    capped,
    shaped,
)

Reply = str | FakeReply | Callable[[dict[str, Any]], str | FakeReply]
Latency = float | tuple[float, float] | Callable[[random.Random], float]
Fault = int | str  # an HTTP error status or one of FAULT_NAMES

HOST = "127.0.0.1"
FAULT_NAMES = ("hang", "malformed", "truncated", *RATED_FAULTS)


def request_hash(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (sorted keys, no spaces): equal bodies match."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
        fault_rates: dict[str, float] | None = None,
        seed: int | None = None,
        port: int = 0,
        api_key: str | None = None,
        enforce_max_tokens: bool = False,
        reasoning: str | Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        if latency is not None and latency_s:
            raise ValueError("give latency or latency_s, not both")
        self.reply = reply
        # when set, a request that does not present it (in its format's header) gets a 401
        self.api_key = api_key
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
        for name, rate in (fault_rates or {}).items():
            if name not in RATED_FAULTS:
                raise ValueError(f"fault_rates keys must be one of {RATED_FAULTS}: {name!r}")
            self._rates.append((name, rate))
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
        self.wire_log: list[str] = []  # the wire format of each request: openai, anthropic...
        self._faults: deque[tuple[Fault, float | None]] = deque()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set on close: hung and delayed requests let go
        self._server = Server((HOST, port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- public API ----------------------------------------------------------------------

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_base(self) -> str:
        """The base URL of an OpenAI-compatible server (``openai/...`` models)."""
        return f"{self.root}/v1"

    @property
    def anthropic_base(self) -> str:
        """The ``api_base`` of ``anthropic/...`` models: litellm adds ``/v1/messages``."""
        return self.root

    @property
    def gemini_base(self) -> str:
        """The ``api_base`` of ``gemini/...`` models: litellm adds ``/models/{model}:
        generateContent`` (or ``:streamGenerateContent?alt=sse``)."""
        return f"{self.root}/v1beta"

    def base_for(self, model: str) -> str:
        """The ``api_base`` that sends ``model`` (a litellm model string) here."""
        provider = model.partition("/")[0]
        return {"anthropic": self.anthropic_base, "gemini": self.gemini_base}.get(
            provider, self.api_base
        )

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
        one of ``FAULT_NAMES``: ``"hang"``, ``"malformed"``, ``"truncated"`` or a reply fault.
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

    def _plan(self, body: dict[str, Any], headers: dict[str, str], wire: WireFormat) -> Plan:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.wire_log.append(wire.name)
            number = len(self.requests)
            queued = self._faults.popleft() if self._faults else None
            draw = self._rng.random()  # drawn even for queued faults: the sequence stays fixed
            delay = _draw_latency(self.latency, self._rng)
            key = wire.presented_key({k.lower(): v for k, v in headers.items()})
            if self.api_key is not None and key != self.api_key:
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
        return Plan(outcome, number, delay, status, retry_after)

    def _answer(self, plan: Plan, body: dict[str, Any], cap: int | None) -> FakeReply | None:
        """The reply for a request about to be answered, as its reply fault (if any) shapes it
        and cut off at ``cap`` when enforced; None where the reply function raised (the
        request is then recorded as a 500, which is what it gets)."""
        try:
            given = self.reply(body) if callable(self.reply) else self.reply
            reply: FakeReply | None = as_reply(given)
            thought = self.reasoning(body) if callable(self.reasoning) else self.reasoning
            if reply is not None and thought and not reply.reasoning:
                reply = replace(reply, reasoning=thought)
        except Exception:
            reply = None
        with self._lock:
            if reply is None:
                self.outcomes[plan.outcome] -= 1
                self.outcomes["500"] += 1
                self.outcome_log[plan.number - 1] = "500"
            elif plan.outcome == "ok" or plan.outcome in REPLY_FAULTS:
                self.answered_hashes.append(request_hash(body))
        if reply is None:
            return None
        reply = shaped(plan.outcome, reply)
        return capped(reply, cap) if self.enforce_max_tokens else reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return make_handler(self)


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


def _fault_rates(text: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        name, sep, rate = item.partition("=")
        try:
            if not sep or name not in RATED_FAULTS:
                raise ValueError(item)
            rates[name] = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected FAULT=RATE with FAULT one of {', '.join(RATED_FAULTS)}: {item!r}"
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
        description="A fake chat server on 127.0.0.1 (OpenAI, Anthropic and Gemini wire "
        "formats) that injects faults.",
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
    parser.add_argument(
        "--fault-rate",
        type=_fault_rates,
        action="append",
        default=[],
        metavar="FAULT=RATE",
        help=f"a named fault's rate, e.g. refusal=0.1 ({', '.join(RATED_FAULTS)}; repeatable)",
    )
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
        fault_rates={k: v for rates in args.fault_rate for k, v in rates.items()},
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
        print(
            f"anthropic/... api_base: {provider.anthropic_base}, gemini/... api_base: "
            f"{provider.gemini_base}",
            file=sys.stderr,
            flush=True,
        )
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
