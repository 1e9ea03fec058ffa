"""Streaming replies: pieces reach the call's listener as they arrive, the whole reply is what
is kept, a stream cut midway is retried from its start, and live events are never stored."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from council import Council
from council.records import EventList
from council.records.events import TurnDelta, wants_deltas
from council.seats import CallSettings, ModelRequest, make_model, warm
from council.seats.litellm_model import LiteLLMModel
from council.seats.model import NOBODY_LISTENING, Completion
from council.seats.model import wants_deltas as listens
from council.store.folder import export_run
from council.store.ledger import Ledger
from council.store.recorder import RunRecorder
from council.testing import FakeProvider, ScriptedModel

FAST = CallSettings(timeout_s=5, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)
REPLY = "Streams arrive in pieces, and the ledger keeps them whole."
QUESTION = "Should the library open on Sundays?"


class Heard:
    """A call listener that writes down what it hears, in order."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, ...]] = []

    def delta(self, text: str) -> None:
        self.heard.append(("delta", text))

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self.heard.append(("retrying", model, str(attempt), error))

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        self.heard.append(("falling_back", failed, fallback))

    def text_since_last_retry(self) -> str:
        last = max((i for i, h in enumerate(self.heard) if h[0] == "retrying"), default=-1)
        return "".join(h[1] for h in self.heard[last + 1 :] if h[0] == "delta")


def request_to(listener: Heard) -> ModelRequest:
    return ModelRequest(
        stage="opening",
        messages=[{"role": "user", "content": "Sundays?"}],
        max_tokens=40,
        temperature=0.0,
        listener=listener,
    )


def model_on(fake: FakeProvider, settings: CallSettings = FAST):  # type: ignore[no-untyped-def]
    return make_model("openai/fake", endpoints={"openai/fake": fake.api_base}, settings=settings)


async def test_a_reply_streams_piece_by_piece_and_is_kept_whole_with_its_usage() -> None:
    heard = Heard()
    with FakeProvider(REPLY) as fake:
        completion = await model_on(fake).complete(request_to(heard))
    assert fake.requests[0]["stream"] is True
    assert fake.requests[0]["stream_options"] == {"include_usage": True}
    pieces = [h[1] for h in heard.heard]
    assert len(pieces) == len(REPLY.split()) and "".join(pieces) == REPLY
    assert completion.content == REPLY and completion.attempts == 1
    assert completion.completion_tokens == len(REPLY.split())  # the provider's usage
    assert completion.prompt_tokens == 1


# A truncated stream breaks after half its pieces; a malformed one after its opening chunk,
# which carries no text.
@pytest.mark.parametrize(("fault", "pieces_first"), [("truncated", True), ("malformed", False)])
async def test_a_stream_that_dies_midway_is_retried_whole(fault: str, pieces_first: bool) -> None:
    heard = Heard()
    with FakeProvider(REPLY) as fake:
        fake.fail_next(fault)
        completion = await model_on(fake).complete(request_to(heard))
    assert fake.outcome_log == [fault, "ok"] and completion.attempts == 2
    retries = [h for h in heard.heard if h[0] == "retrying"]
    assert [(model, attempt) for _, model, attempt, _ in retries] == [("openai/fake", "1")]
    assert (heard.heard[0][0] == "delta") is pieces_first  # what arrived before it broke
    assert heard.text_since_last_retry() == completion.content == REPLY


async def test_streaming_can_be_turned_off() -> None:
    heard = Heard()
    with FakeProvider(REPLY) as fake:
        settings = CallSettings(timeout_s=5, max_attempts=2, stream=False)
        completion = await model_on(fake, settings).complete(request_to(heard))
    assert "stream" not in fake.requests[0] and heard.heard == []
    assert completion.content == REPLY and completion.completion_tokens == len(REPLY.split())


async def test_a_stream_that_hangs_midway_is_ended_by_the_timeout() -> None:
    heard = Heard()
    with FakeProvider(REPLY, latency_s=1.5) as slow:
        settings = CallSettings(timeout_s=0.3, max_attempts=2, backoff_initial_s=0.01)
        with pytest.raises(Exception, match="Timeout") as err:
            await model_on(slow, settings).complete(request_to(heard))
    assert err.value.attempts == 2  # type: ignore[attr-defined]
    assert [h[0] for h in heard.heard] == ["retrying"]


def test_the_test_doubles_stream_unless_told_not_to() -> None:
    heard, silent = Heard(), Heard()
    streaming, whole = ScriptedModel([REPLY]), ScriptedModel([REPLY], stream=False)
    asyncio.run(streaming.complete(request_to(heard)))
    asyncio.run(whole.complete(request_to(silent)))
    assert "".join(h[1] for h in heard.heard) == REPLY and len(heard.heard) == 10
    assert silent.heard == []


def test_live_events_reach_followers_but_never_the_ledger_or_the_export(tmp_path: Path) -> None:
    follower = EventList(wants_deltas=True)  # it shows replies as they come: calls stream
    with FakeProvider(REPLY) as fake:
        fake.fail_next(503, "truncated")
        result = Council(
            ["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            endpoints={"openai/fake": fake.api_base},
            runs_dir=tmp_path,
            calls=FAST,
            sinks=[follower],
        ).convene(QUESTION)
        assert all(request.get("stream") is True for request in fake.requests)
    heard = Counter(event.type for event in follower.events)
    assert heard["turn_delta"] >= 3 * len(REPLY.split()) and heard["call_retrying"] == 2
    ledger = Ledger.existing(tmp_path)
    try:
        stored = Counter(json.loads(line)["type"] for line in ledger.event_lines(result.run_id))
        assert stored == heard - Counter(turn_delta=heard["turn_delta"])
        exported = export_run(ledger, result.run_id, tmp_path / "again")[0]
        live_copy = Path(result.run_dir or "") / "events.jsonl"
        assert exported.read_bytes() == live_copy.read_bytes()
        with pytest.raises(ValueError, match="never stored"):
            ledger.append(next(e for e in follower.events if isinstance(e, TurnDelta)))
    finally:
        ledger.close()


def test_the_recorder_passes_live_events_on_without_recording_them() -> None:
    ledger = Ledger.in_memory()
    follower = EventList()
    delta = TurnDelta(run_id="r", stage="opening", seat="kuhn", text="Sun")
    RunRecorder(ledger, followers=[follower]).handle(delta)
    assert follower.events == [delta] and ledger.event_lines("r") == []
    assert not delta.durable and "durable" not in delta.model_dump()


# -- nobody listening: plain calls ---------------------------------------------------------


@pytest.mark.parametrize("sinks", [[], [EventList()]], ids=["no follower", "one not listening"])
def test_a_run_nobody_watches_makes_plain_calls_with_the_same_record(
    sinks: list[EventList],
) -> None:
    with FakeProvider(REPLY) as fake:
        fake.fail_next(503)
        result = Council(
            ["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            endpoints={"openai/fake": fake.api_base},
            runs_dir=None,
            calls=FAST,
            sinks=sinks,
        ).convene(QUESTION)
        sent = list(fake.requests)
    assert result.status == "completed" and len(sent) == 4  # three turns, one retried
    assert not any("stream" in request or "stream_options" in request for request in sent)
    assert all(
        t.content == REPLY and t.completion_tokens == len(REPLY.split()) for t in result.turns
    )
    assert sorted(t.attempts for t in result.turns) == [1, 1, 2]
    for follower in sinks:
        kinds = Counter(event.type for event in follower.events)
        assert kinds["turn_delta"] == 0 and kinds["call_retrying"] == 1


def test_a_call_nobody_hears_is_one_plain_request() -> None:
    request = dataclasses.replace(request_to(Heard()), listener=NOBODY_LISTENING)
    with FakeProvider(REPLY) as fake:
        completion = asyncio.run(model_on(fake).complete(request))
    assert "stream" not in fake.requests[0]
    assert completion.content == REPLY and completion.prompt_tokens == 1
    assert completion.completion_tokens == len(REPLY.split())


def test_a_follower_of_the_recorder_that_listens_makes_the_run_stream() -> None:
    listening, silent = EventList(wants_deltas=True), EventList()
    assert not wants_deltas(RunRecorder(None, followers=[silent]))
    assert wants_deltas(RunRecorder(None, followers=[silent, listening]))
    # A listener that does not say (one written before the flag) hears the pieces, as before.
    assert listens(Heard()) and not listens(NOBODY_LISTENING)


def test_the_warm_worker_is_asked_to_stream_only_for_a_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[bool] = []

    class Worker:
        async def complete(self, settings, endpoint, request):  # type: ignore[no-untyped-def]
            asked.append(settings["stream"])
            return Completion(content=REPLY)

    async def worker() -> Worker:
        return Worker()

    monkeypatch.setattr(warm, "worker", worker)
    model = LiteLLMModel("openai/fake", priced=False)
    heard = Heard()
    for listener in (NOBODY_LISTENING, heard):
        request = dataclasses.replace(request_to(heard), listener=listener)
        assert asyncio.run(model.complete(request)).content == REPLY
    assert asked == [False, True] and model.settings["stream"] is True
