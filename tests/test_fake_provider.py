"""The fault-injecting fake provider: each fault as a real client sees it, counters, the CLI."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import pytest

from council.base.errors import ModelCallError
from council.seats import CallSettings, ModelRequest, make_model
from council.seats.litellm_model import import_litellm
from council.testing import FakeProvider
from council.testing.fake_provider import from_args, parse_args, request_hash

# litellm's response types trip pydantic notices on first use; they are not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*the `ReadOnly` qualifier:UserWarning",
    "ignore:Accessing the 'model_:DeprecationWarning",
)

FAST = CallSettings(timeout_s=2, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)
REQUEST = ModelRequest(
    stage="opening",
    messages=[{"role": "user", "content": "Is the fake provider honest?"}],
    max_tokens=20,
    temperature=0.0,
)
BODY = {"model": "fake", "messages": [{"role": "user", "content": "Hi?"}]}


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    """Import litellm once up front (seconds), so no single test carries the cost."""
    import_litellm()


def model_on(fake: FakeProvider, settings: CallSettings = FAST):  # type: ignore[no-untyped-def]
    return make_model("openai/fake", endpoints={"openai/fake": fake.api_base}, settings=settings)


def post(fake: FakeProvider, body: dict[str, Any] = BODY) -> tuple[int, dict[str, str], bytes]:
    """POST a chat completion with urllib; (status, headers, raw body), errors included."""
    request = urllib.request.Request(
        f"{fake.api_base}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


# -- random faults, reproducibly --------------------------------------------------------------


def test_error_rates_hold_over_many_requests_with_a_seed() -> None:
    rates = {429: 0.1, 500: 0.1, 503: 0.05}
    with FakeProvider(error_rates=rates, seed=7) as fake:
        statuses = Counter(post(fake)[0] for _ in range(300))
    assert fake.request_count == 300
    assert sum(fake.outcomes.values()) == 300 and len(fake.outcome_log) == 300
    for status, rate in rates.items():
        assert statuses[status] == fake.outcomes[str(status)]
        assert abs(statuses[status] / 300 - rate) < 0.05, (status, statuses)
    assert statuses[200] == fake.outcomes["ok"] == len(fake.answered_hashes)
    assert abs(statuses[200] / 300 - 0.75) < 0.07


def test_the_same_seed_gives_the_same_faults_in_the_same_order() -> None:
    def run(seed: int) -> list[str]:
        with FakeProvider(error_rates={500: 0.3}, malformed_rate=0.2, seed=seed) as fake:
            for _ in range(40):
                post(fake)
        return fake.outcome_log

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    assert {"ok", "500", "malformed"} <= set(first)


def test_random_429s_carry_retry_after() -> None:
    with FakeProvider(error_rates={429: 1.0}, retry_after_s=0.25) as fake:
        status, headers, body = post(fake)
    assert status == 429 and headers["Retry-After"] == "0.25"
    assert json.loads(body)["error"]["code"] == 429


async def test_litellm_waits_out_a_429_and_succeeds() -> None:
    patient = CallSettings(timeout_s=2, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=1)
    with FakeProvider("Fine.") as fake:
        fake.fail_next(429, retry_after=0.3)
        start = time.perf_counter()
        completion = await model_on(fake, patient).complete(REQUEST)
    assert completion.content == "Fine." and completion.attempts == 2
    assert time.perf_counter() - start >= 0.25
    assert fake.outcome_log == ["429", "ok"]


async def test_a_long_retry_after_is_capped_by_the_backoff_maximum() -> None:
    with FakeProvider("Fine.") as fake:
        fake.fail_next(429, retry_after=120)  # "come back in two minutes"
        model = model_on(fake)
        completion = await model.complete(REQUEST)
    assert completion.content == "Fine." and completion.attempts == 2
    assert model._max_wait_s == FAST.backoff_max_s  # the wait it honoured, at most


def test_latency_draws_from_the_range() -> None:
    with FakeProvider(latency=(0.05, 0.1), seed=1) as fake:
        for _ in range(3):
            start = time.perf_counter()
            assert post(fake)[0] == 200
            assert 0.045 <= time.perf_counter() - start < 1.0


def test_latency_can_be_a_function_of_the_rng() -> None:
    draws: list[float] = []

    def latency(rng: Any) -> float:
        draws.append(rng.random())
        return 0.0

    with FakeProvider(latency=latency, seed=5) as fake:
        post(fake)
        post(fake)
    assert len(draws) == 2 and draws[0] != draws[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rates": {500: 0.6}, "hang_rate": 0.5},
        {"error_rates": {200: 0.1}},
        {"malformed_rate": -0.1},
        {"latency": (0.2, 0.1)},
        {"latency": 0.1, "latency_s": 0.1},
    ],
)
def test_impossible_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FakeProvider(**kwargs)


def test_unknown_queued_faults_are_refused() -> None:
    fake = FakeProvider()
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail_next("explode")  # type: ignore[arg-type]
    fake.close()  # never started: closing must not wait for a serving thread


# -- each fault as litellm sees it ------------------------------------------------------------


async def test_a_hang_ends_in_the_clients_timeout_and_close_is_prompt() -> None:
    settings = CallSettings(timeout_s=0.3, max_attempts=2, backoff_initial_s=0.01)
    fake = FakeProvider(hang_rate=1.0, hang_s=30).start()
    try:
        with pytest.raises(ModelCallError, match="Timeout") as err:
            await model_on(fake, settings).complete(REQUEST)
    finally:
        start = time.perf_counter()
        fake.close()
        assert time.perf_counter() - start < 1.0  # the hung handlers did not hold it up
    assert err.value.retryable and err.value.attempts == 2
    assert fake.outcomes == Counter(hang=2) and fake.answered_hashes == []


def test_a_hang_closes_without_an_answer_after_hang_s() -> None:
    with FakeProvider(hang_rate=1.0, hang_s=0.2) as fake:
        start = time.perf_counter()
        with pytest.raises(http.client.RemoteDisconnected):
            post(fake)  # the client would wait 5 s: the server hangs up first
        assert 0.15 < time.perf_counter() - start < 2.0
    assert fake.outcome_log == ["hang"]


async def test_malformed_json_is_a_model_call_error() -> None:
    with FakeProvider(malformed_rate=1.0) as fake:
        status, _, raw = post(fake)
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        with pytest.raises(ModelCallError) as err:
            await model_on(fake).complete(REQUEST)
    assert err.value.attempts == 2  # litellm reports it as a server error: retried
    assert fake.outcomes["malformed"] == 3 and fake.answered_hashes == []


async def test_a_truncated_response_is_a_model_call_error() -> None:
    with FakeProvider(truncate_rate=1.0) as fake:
        with pytest.raises(http.client.IncompleteRead):
            post(fake)
        with pytest.raises(ModelCallError, match="Connection"):
            await model_on(fake).complete(REQUEST)
    assert fake.outcomes == Counter(truncated=3)


async def test_a_queued_fault_comes_before_the_random_ones() -> None:
    with FakeProvider("Recovered.", seed=1) as fake:
        fake.fail_next("truncated", 503)
        settings = CallSettings(timeout_s=2, max_attempts=3, backoff_initial_s=0.01)
        completion = await model_on(fake, settings).complete(REQUEST)
    assert completion.content == "Recovered." and completion.attempts == 3
    assert fake.outcome_log == ["truncated", "503", "ok"]


async def test_a_reply_function_that_raises_is_a_500() -> None:
    def broken(body: dict[str, Any]) -> str:
        raise RuntimeError("bug in the test's reply function")

    with FakeProvider(broken) as fake:
        status, _, raw = post(fake)
    assert status == 500 and b"reply function" in raw
    assert fake.outcome_log == ["500"] and fake.answered_hashes == []


# -- streaming --------------------------------------------------------------------------------


async def test_a_stream_through_litellm_arrives_whole_with_usage() -> None:
    litellm = import_litellm()
    with FakeProvider("Streams  arrive in\npieces.") as fake:
        response = await litellm.acompletion(
            model="openai/fake",
            api_base=fake.api_base,
            api_key="no-key",
            messages=REQUEST.messages,
            stream=True,
            stream_options={"include_usage": True},
            timeout=2,
            num_retries=0,
        )
        pieces, usage = [], None
        async for chunk in response:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            usage = getattr(chunk, "usage", None) or usage
    assert "".join(pieces) == "Streams  arrive in\npieces."
    assert usage is not None and usage.completion_tokens == 4
    assert fake.outcome_log == ["ok"] and fake.requests[0]["stream"] is True


def test_a_stream_is_sse_chunks_then_done() -> None:
    with FakeProvider("one two three") as fake:
        status, headers, raw = post(fake, {**BODY, "stream": True})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = [line.removeprefix("data: ") for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "one two three"


async def test_a_truncated_stream_stops_before_done_and_litellm_raises() -> None:
    with FakeProvider("a reply long enough to be cut in the middle", truncate_rate=1.0) as fake:
        with pytest.raises(http.client.IncompleteRead) as cut:
            post(fake, {**BODY, "stream": True})
        received = cut.value.partial
        assert received.startswith(b"data: {") and b"[DONE]" not in received
        litellm = import_litellm()
        with pytest.raises(Exception, match="Connection error"):
            response = await litellm.acompletion(
                model="openai/fake",
                api_base=fake.api_base,
                api_key="no-key",
                messages=REQUEST.messages,
                stream=True,
                timeout=2,
                num_retries=0,
            )
            async for _ in response:
                pass
    assert fake.outcomes == Counter(truncated=2)


# -- counting ---------------------------------------------------------------------------------


async def test_answered_hashes_show_an_identical_request_answered_twice() -> None:
    with FakeProvider("Same.") as fake:
        fake.fail_next(500)
        await model_on(fake).complete(REQUEST)  # a 500, then the retry is answered
        assert fake.request_count == 2 and len(fake.answered_hashes) == 1
        assert fake.answered_twice == []
        assert fake.answered_hashes[0] == request_hash(fake.requests[1])
        await model_on(fake).complete(REQUEST)  # the same request again: answered twice
    assert fake.answered_twice == [fake.answered_hashes[0]]
    assert fake.outcomes == Counter(ok=2, **{"500": 1})


def test_request_hash_ignores_key_order_and_spacing() -> None:
    assert request_hash({"a": 1, "b": [1, "é"]}) == request_hash({"b": [1, "é"], "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})


def test_requests_outside_the_chat_route_are_not_counted() -> None:
    with FakeProvider() as fake:
        with urllib.request.urlopen(f"{fake.api_base}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "fake"
        bad = urllib.request.Request(f"{fake.api_base}/chat/completions", data=b"{not json")
        with pytest.raises(urllib.error.HTTPError, match="400"):
            urllib.request.urlopen(bad, timeout=5)
    assert fake.request_count == 0 and not fake.outcomes


# -- the other wire formats, as a client sees them on the wire ---------------------------------

SYSTEM = "You are terse."
ASKED = [{"role": "user", "content": "Is it so?"}]


def post_to(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def events_of(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, JSON data) of each server-sent event."""
    found = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            found.append((lines.get("event"), json.loads(lines["data"])))
    return found


def test_anthropic_messages_take_a_top_level_system_and_answer_in_blocks() -> None:
    body = {"model": "claude-x", "system": SYSTEM, "messages": ASKED, "max_tokens": 2}
    with FakeProvider("One two three.", enforce_max_tokens=True) as fake:
        status, raw = post_to(f"{fake.anthropic_base}/v1/messages", body)
    answer = json.loads(raw)
    assert status == 200 and fake.wire_log == ["anthropic"]
    assert answer["type"] == "message" and answer["content"] == [
        {"type": "text", "text": "One two"}
    ]
    assert answer["stop_reason"] == "max_tokens"
    assert answer["usage"] == {"input_tokens": 6, "output_tokens": 2}  # system words count


def test_an_anthropic_stream_is_its_event_sequence_with_thinking_first() -> None:
    body = {"model": "claude-x", "messages": ASKED, "max_tokens": 50, "stream": True}
    with FakeProvider("Yes.") as fake:
        fake.fail_next("reasoning")
        _, raw = post_to(f"{fake.anthropic_base}/v1/messages", body)
    events = events_of(raw)
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    deltas = [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    assert deltas[0] == "thinking_delta" and deltas[-1] == "text_delta"
    assert "signature_delta" in deltas
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_gemini_takes_its_system_instruction_and_a_safety_block_has_no_content() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": "Is it so?"}]}],
    }
    with FakeProvider("Yes it is.") as fake:
        url = f"{fake.gemini_base}/models/gemini-x:generateContent"
        answer = json.loads(post_to(url, body)[1])
        fake.fail_next("refusal")
        blocked = json.loads(post_to(url, body)[1])
    assert fake.wire_log == ["gemini", "gemini"]
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "Yes it is."}]
    assert answer["candidates"][0]["finishReason"] == "STOP"
    assert answer["usageMetadata"]["promptTokenCount"] == 6
    assert blocked["candidates"][0]["finishReason"] == "SAFETY"
    assert "content" not in blocked["candidates"][0]
    assert blocked["candidates"][0]["safetyRatings"][0]["blocked"] is True


def test_each_format_wants_the_key_in_its_own_header() -> None:
    body = {"model": "m", "messages": ASKED, "max_tokens": 5}
    with FakeProvider("Fine.", api_key="k") as fake:
        anthropic = f"{fake.anthropic_base}/v1/messages"
        gemini = f"{fake.gemini_base}/models/g:generateContent"
        assert post_to(anthropic, body, {"x-api-key": "k"})[0] == 200
        status, raw = post_to(anthropic, body, {"Authorization": "Bearer k"})
        assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
        assert post_to(gemini, {"contents": []}, {"x-goog-api-key": "k"})[0] == 200
        status, raw = post_to(gemini, {"contents": []})
        assert status == 401 and json.loads(raw)["error"]["status"] == "UNAUTHENTICATED"


# -- command line -----------------------------------------------------------------------------


def test_command_line_options_build_the_provider() -> None:
    argv = ["--error-rate", "500=0.1,429=0.05", "--error-rate", "503=0.02", "--seed", "1"]
    argv += ["--latency", "0.05,0.2", "--hang-rate", "0.01", "--truncate-rate", "0.02"]
    argv += ["--fault-rate", "refusal=0.1,empty=0.05"]
    args = parse_args(argv)
    fake = from_args(args)
    try:
        assert fake.error_rates == {500: 0.1, 429: 0.05, 503: 0.02}
        assert fake.latency == (0.05, 0.2) and fake.seed == 1
        assert ("refusal", 0.1) in fake._rates and ("empty", 0.05) in fake._rates
        assert fake.api_base.startswith("http://127.0.0.1:")
    finally:
        fake.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["--host", "0.0.0.0"],
        ["--error-rate", "500"],
        ["--latency", "1,2,3"],
        ["--fault-rate", "sulk=0.5"],
    ],
)
def test_command_line_refuses_other_hosts_and_bad_values(argv: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_module_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "council.testing.fake_provider", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--seed", "1", "--reply", "From the shell."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(BODY).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["choices"][0]["message"]["content"] == "From the shell."
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert "1 requests: ok=1" in err
