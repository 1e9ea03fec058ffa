"""The shared rate-limit policy on a fake clock, the gate every model call asks, and
``--ray`` without Ray installed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from council.base.errors import ConfigError
from council.cli.main import main
from council.records.settings import CallSettings
from council.seats.gate import (
    LocalGate,
    ProviderLimit,
    RateLimits,
    install_call_gate,
    limit_key,
    parse_rate_limit,
)
from council.seats.model import ModelRequest
from council.seats.seat import make_model
from council.testing import FakeProvider


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_are_spaced_by_the_per_minute_limit() -> None:
    clock = Clock()
    policy = RateLimits({"openai": ProviderLimit(rpm=120)}, clock)
    waits = [policy.reserve("openai", 10) for _ in range(4)]
    assert waits == [0.0, 0.5, 1.0, 1.5]
    clock.now += 10  # idle for a while: no credit piles up beyond the next call
    assert policy.reserve("openai", 10) == 0.0
    assert policy.reserve("openai", 10) == 0.5


def test_a_429_holds_back_every_caller_for_its_retry_after() -> None:
    clock = Clock()
    policy = RateLimits({"openai": ProviderLimit(rpm=6000)}, clock)
    assert policy.reserve("openai", 1) == 0.0
    policy.throttled("openai", 7.0)
    assert [policy.reserve("openai", 1) for _ in range(2)] == pytest.approx([7.0, 7.01])
    clock.now += 8
    policy.throttled("openai", 0.0)  # a 429 without Retry-After still pauses everyone 1 s
    assert policy.reserve("openai", 1) == pytest.approx(1.0)
    assert policy.throttles == 2 and policy.granted == 4


def test_tokens_per_minute_wait_for_the_oldest_tokens_to_age_out() -> None:
    clock = Clock()
    policy = RateLimits({"openai": ProviderLimit(rpm=6000, tpm=1000)}, clock)
    assert policy.reserve("openai", 600) == 0.0
    assert policy.reserve("openai", 600) == pytest.approx(60.0)  # 1200 > 1000 in one minute
    policy.settle("openai", 600, 100)  # the second used less than it might have
    clock.now += 61
    assert policy.reserve("openai", 800) == pytest.approx(0.0)


def test_limits_by_model_or_provider() -> None:
    limits = {"openai": ProviderLimit(60), "anthropic/claude-x": ProviderLimit(10)}
    assert limit_key("openai/gpt-4o", limits) == "openai"
    assert limit_key("anthropic/claude-x", limits) == "anthropic/claude-x"
    assert limit_key("anthropic/claude-y", limits) is None
    assert parse_rate_limit("openai=600:90000") == ("openai", ProviderLimit(600, 90000))
    for bad in ("openai", "openai=0", "=5", "openai=5:x"):
        with pytest.raises(ConfigError, match="PROVIDER=RPM"):
            parse_rate_limit(bad)


def test_every_call_and_every_429_goes_through_the_gate() -> None:
    gate = LocalGate({"openai": ProviderLimit(rpm=60_000)})
    install_call_gate(gate)
    try:
        with FakeProvider("fine", retry_after_s=0.0) as fake:
            fake.fail_next(429, retry_after=0.0)
            settings = CallSettings(backoff_initial_s=0.01)
            chat = make_model("openai/x", endpoints={"openai/x": fake.api_base}, settings=settings)
            request = ModelRequest(
                stage="s",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=5,
                temperature=0.0,
            )
            completion = asyncio.run(chat.complete(request))
        assert completion.content == "fine" and completion.attempts == 2
        assert gate.policy.granted == fake.request_count == 2
        assert gate.policy.throttles == 1
    finally:
        install_call_gate(None)


def test_ray_flag_without_ray_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    questions = tmp_path / "q.txt"
    questions.write_text("Why?\n")
    args = [
        "experiment",
        "variants",
        "--pairs",
        "nurse",
        "--questions",
        str(questions),
        "--out",
        str(tmp_path / "out"),
        "--ray",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--ray needs Ray: pip install 'persona-council[ray]'") and "\n" not in err
