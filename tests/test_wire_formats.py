"""Conformance: one small council per provider wire format and fault, through litellm's own
code path for that provider (``openai/...``, ``anthropic/...``, ``gemini/...`` against the
fake provider's endpoints), checking what the run's record shows. docs/wire-formats.md has the
table these tests hold; a case council still gets wrong is a strict xfail naming the gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from council import Council, SamplingSettings
from council.engine.live import TurnListener
from council.records.events import CallRetrying, EventList, SeatAbsent, TurnDelta
from council.records.run import RunResult, Turn
from council.seats import CallSettings, ModelRequest, make_model
from council.seats.litellm_model import import_litellm
from council.testing import FakeProvider
from council.testing.fake_wire import REASONING_TEXT, REFUSAL_TEXT

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*the `ReadOnly` qualifier:UserWarning",
    "ignore:Accessing the 'model_:DeprecationWarning",
)

MODELS = {
    "openai": "openai/fake",
    "anthropic": "anthropic/claude-3-5-haiku-20241022",
    "gemini": "gemini/gemini-2.5-flash",
}
PANEL = ["popper", "kuhn"]
QUESTION = "Should the city close its harbour to cruise ships?"
ANSWER = "Close it in summer: the evidence on crowding is strong and the fees do not cover it."
# Backoff waits a few hundredths of a second; a provider's Retry-After may lengthen it to 1 s.
FAST = dict(timeout_s=10, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=1.0)


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    import_litellm()


def convene(
    fake: FakeProvider,
    wire: str,
    *,
    stream: bool = True,
    seed: int | None = None,
    events: EventList | None = None,
) -> RunResult:
    """The quick protocol (two seats answer, the chair synthesises): three calls. A streamed
    run has a follower that shows replies as they come (calls stream only for one)."""
    model = MODELS[wire]
    events = events if events is not None else EventList()
    events.wants_deltas = stream
    council = Council(
        PANEL,
        protocol="quick",
        model=model,
        runs_dir=None,
        endpoints={model: fake.base_for(model)},
        similarity="words",
        calls=CallSettings(**FAST, stream=stream),  # type: ignore[arg-type]
        sampling=SamplingSettings(seed=seed),
        sinks=[events],
    )
    result = council.convene(QUESTION)
    # The pieces of a streamed reply reached the follower; a whole one came in one piece.
    streamed = any(isinstance(e, TurnDelta) for e in events.events)
    assert streamed == (stream and any(t.content for t in result.turns))
    return result


def hit(result: RunResult) -> Turn:
    """The one opening turn that got the fault (the first request; which seat is a race)."""
    odd = [t for t in result.turns_in("opening") if t.content != ANSWER or t.attempts != 1]
    assert len(odd) == 1, [(t.seat, t.content, t.error, t.attempts) for t in odd]
    return odd[0]


STREAMS = pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
WIRES = pytest.mark.parametrize("wire", list(MODELS))


def gap(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


# -- a plain answer: where each part of the request and the reply went ---------------------


@STREAMS
@WIRES
def test_a_plain_answer_is_recorded_with_its_usage(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        result = convene(fake, wire, stream=stream)
    assert result.status == "completed", result.error
    assert fake.wire_log == [wire] * 3
    for turn in result.turns:
        assert (turn.content, turn.error, turn.attempts) == (ANSWER, None, 1)
        assert turn.completion_tokens == len(ANSWER.split())
        assert turn.request is not None  # prompt usage: system prompt and messages, as sent
        assert turn.prompt_tokens == sum(len(m["content"].split()) for m in turn.request.messages)
        assert not turn.truncated and turn.provider == wire
    # The persona's system prompt went where the format keeps it.
    body = fake.requests[0]
    system = {
        "openai": lambda: body["messages"][0]["content"],
        "anthropic": lambda: str(body["system"]),
        "gemini": lambda: str(body["system_instruction"]),
    }[wire]()
    assert "popper" in system.lower() or "kuhn" in system.lower()


@WIRES
def test_a_seed_reaches_the_providers_that_take_one_and_no_others(wire: str) -> None:
    with FakeProvider(ANSWER) as fake:
        result = convene(fake, wire, seed=7)
    assert result.status == "completed" and all(t.ok for t in result.turns), [
        t.error for t in result.turns
    ]
    sent = [b.get("seed", b.get("generationConfig", {}).get("seed")) for b in fake.requests]
    assert all((s is not None) == (wire != "anthropic") for s in sent), sent


# -- reply faults ---------------------------------------------------------------------------


@STREAMS
@WIRES
def test_a_reply_cut_off_at_its_cap_is_recorded_truncated(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("length")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert turn.truncated and turn.error is None
    assert turn.content and ANSWER.startswith(turn.content) and turn.content != ANSWER
    assert turn.completion_tokens == len(turn.content.split())


@STREAMS
@WIRES
def test_a_refusal_is_recorded_as_a_refusal_not_an_answer(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("refusal")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert turn.error is not None and "refused" in turn.error, turn.error
    assert not turn.ok
    # Gemini's safety block carries no text; the others' refusal text is kept to read.
    assert turn.content == ("" if wire == "gemini" else REFUSAL_TEXT)
    assert result.status == "completed"
    chair = result.turns_in("verdict")[0]
    assert chair.request is not None and REFUSAL_TEXT not in str(chair.request.messages)


def every_wire(marks: Callable[[str, bool], Any]) -> list[Any]:
    """(wire, stream) for every format, streamed and whole, each with its known gaps marked."""
    return [
        pytest.param(w, s, id=f"{w}-{'streamed' if s else 'whole'}", marks=marks(w, s))
        for w in MODELS
        for s in (True, False)
    ]


def _structured(wire: str, stream: bool) -> Any:
    if wire == "openai" and stream:
        return gap(
            "litellm's stream drops OpenAI's delta.refusal pieces (and its chunk builder the "
            "field): a structured-output refusal streamed is recorded as 'empty reply'"
        )
    return ()


@pytest.mark.parametrize(
    ("wire", "stream"),
    every_wire(_structured),
)
def test_a_refusal_in_its_own_field_is_recorded_as_a_refusal(wire: str, stream: bool) -> None:
    """OpenAI's structured outputs refuse in ``message.refusal`` with no content and finish
    ``stop``; the other formats have no such field and refuse with their stop reason."""
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("structured_refusal")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert turn.error is not None and turn.error.startswith("refused"), turn.error
    if wire == "openai":
        assert turn.error == f"refused: {REFUSAL_TEXT}" and turn.content == ""


@STREAMS
@WIRES
def test_an_empty_reply_is_an_error_turn(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("empty")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert (turn.content, turn.error, turn.attempts) == ("", "empty reply", 1)


@STREAMS
@WIRES
def test_an_unrequested_tool_call_is_an_error_turn_that_says_so(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("tool_call")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert turn.content == "" and turn.error is not None
    assert turn.error.startswith("empty reply") and "tool" in turn.error, turn.error


@STREAMS
@WIRES
def test_reasoning_stays_out_of_the_answer_and_what_others_see(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER, fault_rates={"reasoning": 1.0}) as fake:
        result = convene(fake, wire, stream=stream)
    assert result.status == "completed"
    for turn in result.turns:
        assert turn.content == ANSWER and turn.error is None
        assert turn.request is not None
        assert REASONING_TEXT not in str(turn.request.messages)  # the chair never sees it
        # Usage counts the reasoning with the answer (every format reports it so); counting
        # it apart is the reasoning work of issue 27, so either count passes here.
        answer, reasoning = len(ANSWER.split()), len(REASONING_TEXT.split())
        assert turn.completion_tokens in (answer, answer + reasoning)


@STREAMS
@WIRES
def test_reasoning_that_spends_the_whole_cap_leaves_an_empty_cut_off_reply(
    wire: str, stream: bool
) -> None:
    """Every provider counts reasoning against the cap: thinking past it starves the answer.
    What a council then does with the call (ask again with room to answer) is the reasoning
    work's (tests/test_reasoning.py); here, what the call itself comes back as."""
    model = MODELS[wire]
    thinking = " ".join(["ponder"] * 400)
    request = ModelRequest(
        stage="opening",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=200,
        temperature=0.7,
        # Someone hears the call: it streams when the seat allows it.
        listener=TurnListener(EventList().handle, "r", "opening", 0, "popper"),
    )
    with FakeProvider(ANSWER, reasoning=thinking, enforce_max_tokens=True) as fake:
        seat = make_model(
            model,
            endpoints={model: fake.base_for(model)},
            settings=CallSettings(**FAST, stream=stream),  # type: ignore[arg-type]
        )
        completion = asyncio.run(seat.complete(request))
    assert completion.content == "" and completion.truncated
    assert completion.problem == "empty reply"
    assert completion.completion_tokens == 200  # all of it reasoning


# -- provider errors ------------------------------------------------------------------------

RETRIED = {
    "rate limit (429)": 429,
    "server error (500)": 500,
    "unavailable (503)": 503,
    "overloaded (529)": 529,
    "cut off midway": "truncated",
    "error event midway": "stream_error",  # a whole answer gets a 500 instead
}


@pytest.mark.parametrize("fault", list(RETRIED.values()), ids=list(RETRIED))
@STREAMS
@WIRES
def test_a_passing_provider_error_is_retried_and_counted(
    wire: str, stream: bool, fault: int | str
) -> None:
    events = EventList()
    with FakeProvider(ANSWER) as fake:
        fake.fail_next(fault, retry_after=0.3 if fault == 429 else None)
        result = convene(fake, wire, stream=stream, events=events)
    turn = hit(result)
    assert (turn.content, turn.error, turn.attempts) == (ANSWER, None, 2)
    assert fake.outcome_log.count(str(fault)) == 1 and fake.request_count == 4
    # The retry is on record, with the provider's error and the wait it asked for (Anthropic
    # and OpenAI in Retry-After, Gemini in its body's retryDelay); backoff alone is shorter.
    retries = [e for e in events.events if isinstance(e, CallRetrying)]
    assert [(e.seat, e.attempt) for e in retries] == [(turn.seat, 1)]
    if fault == 429:
        assert "RateLimitError" in retries[0].error and retries[0].wait_s == 0.3
    else:
        assert retries[0].wait_s < 0.3


@STREAMS
@WIRES
def test_a_rate_limit_carries_the_formats_headers_and_body(wire: str, stream: bool) -> None:
    import urllib.error
    import urllib.request

    with FakeProvider(ANSWER) as fake:
        fake.fail_next(429, retry_after=0.5)
        result = convene(fake, wire, stream=stream)
        assert hit(result).attempts == 2
        fake.fail_next(429, retry_after=0.5)
        url = {
            "openai": f"{fake.api_base}/chat/completions",
            "anthropic": f"{fake.anthropic_base}/v1/messages",
            "gemini": f"{fake.gemini_base}/models/g:generateContent",
        }[wire]
        request = urllib.request.Request(url, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
    headers, body = caught.value.headers, caught.value.read().decode()
    if wire == "anthropic":
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert headers["retry-after"] == "0.5" and '"rate_limit_error"' in body
    elif wire == "gemini":
        assert "retry-after" not in headers and '"RESOURCE_EXHAUSTED"' in body
        assert '"retryDelay"' in body
    else:
        assert headers["retry-after"] == "0.5" and headers["x-ratelimit-remaining-requests"] == "0"


@STREAMS
@WIRES
def test_a_request_error_fails_the_seat_at_once_with_the_providers_message(
    wire: str, stream: bool
) -> None:
    events = EventList()
    with FakeProvider(ANSWER) as fake:
        fake.fail_next(400)
        result = convene(fake, wire, stream=stream, events=events)
    turn = hit(result)
    assert [e.seat for e in events.events if isinstance(e, SeatAbsent)] == [turn.seat]
    assert turn.content is None and turn.attempts == 1
    assert turn.error is not None and "BadRequestError" in turn.error
    assert "injected 400" in turn.error
    assert result.status == "completed"  # the chair still writes, from the seat that spoke


def _garbled(wire: str, stream: bool) -> Any:
    if wire == "gemini" and stream:
        return gap(
            "litellm's Gemini stream reader drops an event that is not JSON and ends the "
            "stream there: the reply so far is recorded as a whole answer (finish 'stop')"
        )
    if wire == "gemini":
        return gap(
            "litellm raises BadRequestError for a Gemini 200 whose body is not JSON, so "
            "council does not retry it; the turn fails after one attempt"
        )
    return ()


@pytest.mark.parametrize(
    ("wire", "stream"),
    every_wire(_garbled),
)
def test_a_garbled_answer_is_retried(wire: str, stream: bool) -> None:
    with FakeProvider(ANSWER) as fake:
        fake.fail_next("malformed")
        result = convene(fake, wire, stream=stream)
    turn = hit(result)
    assert (turn.content, turn.error, turn.attempts) == (ANSWER, None, 2)
