"""The fake provider's command line: ``python -m council.testing.fake_provider`` (or
``python -m council.testing.fake_cli``) serves on 127.0.0.1, prints the base URL, and serves
until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from council.testing.fake_provider import HOST, FakeProvider
from council.testing.fake_wire import REPLY_FAULTS


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
            if not sep or name not in REPLY_FAULTS:
                raise ValueError(item)
            rates[name] = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected FAULT=RATE with FAULT one of {', '.join(REPLY_FAULTS)}: {item!r}"
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
        help=f"a reply fault's rate, e.g. refusal=0.1 ({', '.join(REPLY_FAULTS)}; repeatable)",
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
