"""The engine on the public test doubles: order, concurrency, visibility, failures, run folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from council import Council
from council.base.errors import ConfigError, UnknownNameError
from council.protocols import load_protocol_file
from council.records.events import EventList, TurnDelta
from council.seats import ModelRequest
from council.testing import FunctionModel, ScriptedModel

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should cities ban private cars from their centres?"


def persona_of(request: ModelRequest) -> str:
    return request.seat


def echo(request: ModelRequest) -> str:
    return f"{request.seat} speaking in {request.stage}."


def user_text(request: ModelRequest) -> str:
    return request.messages[-1]["content"]


def test_quick_protocol_end_to_end(tmp_path: Path) -> None:
    council = Council(PANEL, protocol="quick", model=FunctionModel(echo), runs_dir=tmp_path)
    result = council.convene(QUESTION)

    assert result.status == "completed" and result.error is None
    assert [(t.stage, t.seat) for t in result.turns] == [
        ("opening", "popper"),
        ("opening", "kuhn"),
        ("opening", "meadows"),
        ("verdict", "chair"),
    ]
    assert result.synthesis == "chair speaking in verdict."
    for turn in result.turns:
        assert turn.ok and turn.provider == "test" and turn.model == "test/function"
        assert turn.prompt_tokens and turn.completion_tokens and turn.latency_s >= 0

    run_dir = Path(result.run_dir or "")
    assert run_dir.parent == tmp_path and run_dir.name == result.run_id
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("turn_finished") == 4
    # Every opening turn is on disk before the stage that reads them starts.
    verdict_start = next(i for i, e in enumerate(events) if e.get("stage") == "verdict")
    opening_turns = [
        i
        for i, e in enumerate(events)
        if e["type"] == "turn_finished" and e["turn"]["stage"] == "opening"
    ]
    assert max(opening_turns) < verdict_start
    assert events[0]["header"]["protocol_hash"] == council.protocol.content_hash
    transcript = (run_dir / "transcript.md").read_text()
    assert QUESTION in transcript and "chair speaking in verdict." in transcript


def test_each_seat_sees_only_what_the_graph_allows() -> None:
    seen: dict[tuple[str, str], str] = {}

    def record(request: ModelRequest) -> str:
        seen[(request.stage, request.seat)] = user_text(request)
        return f"I am {request.seat.upper()} and my secret word is {request.seat}-word."

    council = Council(PANEL, protocol="council", model=FunctionModel(record), runs_dir=None)
    council.convene(QUESTION)

    # Blind round: nobody sees anybody.
    for seat in PANEL:
        assert "-word" not in seen[("opening", seat)]
    # Cross-examination: others anonymized, own answer shown as one's own.
    for seat in PANEL:
        text = seen[("cross_examination", seat)]
        assert f"{seat}-word" in text and "You (your earlier answer)" in text
        others = [o for o in PANEL if o != seat]
        for other in others:
            assert other not in text.lower().replace(f"{seat}-word", "")
        assert text.count("### Member ") == 2
    # The chair sees everybody by name, from both stages.
    chair = seen[("verdict", "chair")]
    assert all(f"{seat}-word" in chair for seat in PANEL)
    assert "popper (Karl Popper)" in chair and "Cross-examination" in chair


def test_anonymization_scrubs_names_and_is_consistent() -> None:
    replies = {
        "popper": "As Karl Popper I say: Kuhn is wrong.",
        "kuhn": "Thomas Kuhn here; Popper misreads science.",
        "meadows": "Donella Meadows: both miss the feedback loops.",
    }
    seen: dict[tuple[str, str], str] = {}

    def reply(request: ModelRequest) -> str:
        seen[(request.stage, request.seat)] = user_text(request)
        return replies.get(request.seat, "verdict")

    council = Council(PANEL, protocol="council", model=FunctionModel(reply), runs_dir=None)
    result = council.convene(QUESTION)
    labels = {s.seat: s.anonymous_label for s in result.seats if s.role == "panel"}
    assert sorted(labels.values()) == ["Member A", "Member B", "Member C"]

    meadows_view = seen[("cross_examination", "meadows")]
    for name in ("Popper", "Karl", "Kuhn", "Thomas"):
        assert name not in meadows_view
    assert f"As {labels['popper']} I say: {labels['kuhn']} is wrong." in meadows_view
    assert (
        f"### {labels['kuhn']}\n{labels['kuhn']} here; {labels['popper']} misreads" in meadows_view
    )


def test_seats_of_a_stage_run_concurrently() -> None:
    barrier = asyncio.Barrier(len(PANEL))

    async def meet(request: ModelRequest) -> str:
        if request.stage == "opening":
            # Deadlocks (and times out) unless all three seats are in flight at once.
            await asyncio.wait_for(barrier.wait(), timeout=5)
        return "ok"

    result = Council(PANEL, protocol="quick", model=FunctionModel(meet), runs_dir=None).convene(
        QUESTION
    )
    assert result.status == "completed"
    assert all(t.ok for t in result.turns)


def test_independent_stages_run_side_by_side(write) -> None:
    protocol = load_protocol_file(
        write(
            "diamond.yaml",
            """\
name: diamond
description: Two independent response stages between a blind round and a synthesis.
stages:
  - {id: opening, kind: statement, prompt: Open.}
  - {id: left, kind: response, sees: [opening], prompt: Left.}
  - {id: right, kind: response, sees: [opening], prompt: Right.}
  - {id: verdict, kind: synthesis, sees: [left, right], prompt: Close.}
""",
        )
    )
    barrier = asyncio.Barrier(2 * len(PANEL))

    async def meet(request: ModelRequest) -> str:
        if request.stage in ("left", "right"):
            await asyncio.wait_for(barrier.wait(), timeout=5)
        return f"{request.stage} answer"

    result = Council(PANEL, protocol=protocol, model=FunctionModel(meet), runs_dir=None).convene(
        QUESTION
    )
    assert result.status == "completed"
    verdict_view = result.turns[-1]
    assert verdict_view.stage == "verdict"


def test_a_failed_seat_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    flaky = ScriptedModel([RuntimeError("provider exploded")], default="kuhn recovers")
    council = Council(
        PANEL,
        protocol="council",
        model=FunctionModel(echo),
        seats={"kuhn": flaky},
        runs_dir=tmp_path,
    )
    result = council.convene(QUESTION)
    assert result.status == "completed"
    failed = [t for t in result.turns if not t.ok]
    assert [(t.stage, t.seat) for t in failed] == [("opening", "kuhn")]
    assert failed[0].error == "RuntimeError: provider exploded" and failed[0].content is None
    # The seat failed for good: it sits out the rest of the run, the others are told.
    assert len(flaky.requests) == 1
    assert result.absent == ["kuhn: failed for good in 'opening'"]
    assert [t.seat for t in result.turns if t.stage == "cross_examination"] == ["popper", "meadows"]
    shared = council.panel[0].model
    assert isinstance(shared, FunctionModel)
    popper_cross = next(
        r for r in shared.requests if (r.stage, r.seat) == ("cross_examination", "popper")
    )
    assert "(no answer: this seat failed)" in user_text(popper_cross)
    assert "No answer." in (Path(result.run_dir or "") / "transcript.md").read_text()


def test_a_stage_below_quorum_fails_the_run_but_keeps_finished_turns(tmp_path: Path) -> None:
    def broken(request: ModelRequest) -> str:
        raise ConnectionError("all down")

    council = Council(
        PANEL,
        protocol="quick",
        model=FunctionModel(broken),
        seats={"chair": FunctionModel(echo)},
        runs_dir=tmp_path,
    )
    result = council.convene(QUESTION)
    assert result.status == "failed"
    assert result.synthesis is None
    assert "stage 'opening': 0 of 3 seats answered, 1 needed" in (result.error or "")
    assert len(result.turns) == 3 and all(
        t.error == "ConnectionError: all down" for t in result.turns
    )
    events = (Path(result.run_dir or "") / "events.jsonl").read_text()
    assert '"status":"failed"' in events


def test_a_failed_chair_falls_back_to_the_coordinators_verdict() -> None:
    # nyk's STEP 7: the coordinator writes the verdict; with no vote, each seat's last word.
    council = Council(
        PANEL,
        protocol="quick",
        model=FunctionModel(echo),
        seats={"chair": ScriptedModel([""])},
        runs_dir=None,
    )
    result = council.convene(QUESTION)
    assert result.status == "completed"
    assert result.turns[-1].model == "council/tally-verdict"
    assert result.metadata is not None and result.metadata.chairman_failed_fallback
    synthesis = result.synthesis or ""
    assert "The chair's model failed (empty reply)" in synthesis
    assert "### Positions" in synthesis and "- popper: " in synthesis
    # No model wrote it, so nothing checked it: the record says so, and why.
    check = result.verdict_check
    assert check is not None and check.status == "unchecked"
    assert "chair's model failed (empty reply)" in check.reasons[0]


def test_sinks_hear_every_event_in_order_and_the_result_is_their_fold() -> None:
    from council.records import fold_events

    sink = EventList(wants_deltas=True)  # it shows replies as they are written
    result = Council(
        PANEL, protocol="quick", model=FunctionModel(echo), runs_dir=None, sinks=[sink]
    ).convene(QUESTION)
    record = [e for e in sink.events if e.durable]
    heard = [e.type + (f" {e.stage}" if hasattr(e, "stage") else "") for e in record]
    # Within a stage the seats run concurrently; the stages follow one another.
    opening, verdict = heard[1:9], heard[9:13]
    assert heard[0] == "run_started" and heard[-1] == "run_finished" and len(heard) == 14
    assert opening[0] == "stage_started opening" and opening[-1] == "stage_finished opening"
    assert sorted(opening[1:-1]) == ["turn_finished"] * 3 + ["turn_started opening"] * 3
    assert verdict == [
        "stage_started verdict",
        "turn_started verdict",
        "turn_finished",
        "stage_finished verdict",
    ]
    assert fold_events(sink.events) == result == fold_events(record)
    # The rest is each reply as it streamed, word by word, between its turn's start and end.
    pieces: dict[tuple[str, str], str] = {}
    for event in sink.events:
        if isinstance(event, TurnDelta):
            pieces[(event.stage, event.seat)] = (
                pieces.get((event.stage, event.seat), "") + event.text
            )
    assert pieces == {(t.stage, t.seat): t.content for t in result.turns}
    assert len(sink.events) - len(record) == sum(len(t.content.split()) for t in result.turns)


def test_a_sink_that_does_not_show_replies_as_they_come_hears_no_pieces() -> None:
    sink = EventList()
    result = Council(
        PANEL, protocol="quick", model=FunctionModel(echo), runs_dir=None, sinks=[sink]
    ).convene(QUESTION)
    assert [e for e in sink.events if e.durable] == sink.events  # no TurnDelta
    assert len(result.turns) == 4 and all(t.content for t in result.turns)


def test_every_turn_keeps_the_prompts_its_seat_saw() -> None:
    result = Council(PANEL, protocol="quick", model=FunctionModel(echo), runs_dir=None).convene(
        QUESTION
    )
    verdict = result.turns_in("verdict")[0]
    assert verdict.request is not None
    system, user = verdict.request.messages
    assert system["role"] == "system" and user["role"] == "user"
    # The chair read every opening statement: they are in the prompt it was shown.
    for turn in result.turns_in("opening"):
        assert turn.content and turn.content in user["content"]
    assert verdict.request.model == "test/function"
    assert verdict.request.max_tokens > 0


def test_sampling_settings_reach_every_call() -> None:
    from council import SamplingSettings

    model = ScriptedModel(default="fine")
    council = Council(
        ["popper"],
        protocol="quick",
        model=model,
        runs_dir=None,
        sampling=SamplingSettings(temperature=0.1, seed=7, max_tokens=50),
    )
    council.convene(QUESTION)
    opening, verdict = model.requests
    assert (opening.temperature, opening.seed, opening.max_tokens) == (0.1, 7, 50)
    assert verdict.max_tokens == 50  # the user's cap applies to every turn

    uncapped = ScriptedModel(default="fine")
    Council(["popper"], protocol="quick", model=uncapped, runs_dir=None).convene(QUESTION)
    assert [r.max_tokens for r in uncapped.requests] == [200, 300]  # protocol, then stage cap
    assert (
        opening.messages[0]["role"] == "system" and "Karl Popper" in opening.messages[0]["content"]
    )


def test_each_seat_samples_with_its_own_seed() -> None:
    """Seats that shared one seed opened alike, making different personas look closer; each
    place in the seating now has its own seed, the same in every run of the same seed."""
    from council import SamplingSettings
    from council.engine.prompts import SEAT_SEED_STRIDE

    model = ScriptedModel(default="fine")
    Council(
        ["popper", "kuhn", "meadows"],
        protocol="quick",
        model=model,
        runs_dir=None,
        sampling=SamplingSettings(seed=7),
    ).convene(QUESTION)
    seeds = {r.seat: r.seed for r in model.requests if r.stage == "opening"}
    assert seeds == {"popper": 7, "kuhn": 7 + SEAT_SEED_STRIDE, "meadows": 7 + 2 * SEAT_SEED_STRIDE}


async def test_aconvene_inside_an_event_loop() -> None:
    council = Council(["popper"], protocol="quick", model=FunctionModel(echo), runs_dir=None)
    result = await council.aconvene(QUESTION)
    assert result.status == "completed"
    with pytest.raises(ConfigError, match="aconvene"):
        council.convene(QUESTION)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"personas": ["popper", "popper"]}, ConfigError, "listed twice: popper"),
        ({"personas": []}, ConfigError, "at least one persona"),
        ({"personas": ["chair"]}, ConfigError, "cannot also sit on the panel"),
        ({"seats": {"socrates": "openai/gpt-4o"}}, UnknownNameError, "unknown seat 'socrates'"),
        ({"model": "gpt-4o"}, ConfigError, "provider/model"),
        ({"protocol": "nope"}, UnknownNameError, "unknown protocol 'nope'"),
        ({"personas": ["nobody"]}, UnknownNameError, "available: .*chair.*popper"),
    ],
)
def test_configuration_mistakes_are_clear(kwargs, error, message) -> None:
    settings = {"personas": ["popper"], "protocol": "quick", "runs_dir": None, **kwargs}
    with pytest.raises(error, match=message):
        Council(**settings)


def test_an_empty_question_is_refused() -> None:
    council = Council(["popper"], protocol="quick", model=FunctionModel(echo), runs_dir=None)
    with pytest.raises(ConfigError, match="empty"):
        council.convene("   ")


def test_seat_map_calls_nothing_and_honours_overrides_and_hints() -> None:
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        model="openai/gpt-4o-mini",
        seats={"kuhn": "anthropic/claude-sonnet-4-5", "chair": "gemini/gemini-2.5-pro"},
        runs_dir=None,
    )
    rows = {row.seat: (row.provider, row.model) for row in council.seat_map()}
    assert rows == {
        "popper": ("openai", "openai/gpt-4o-mini"),
        "kuhn": ("anthropic", "anthropic/claude-sonnet-4-5"),
        "chair": ("gemini", "gemini/gemini-2.5-pro"),
    }


def test_turns_are_reported_in_seat_order_whatever_order_they_finish() -> None:
    delays = {"popper": 0.06, "kuhn": 0.03, "meadows": 0.0}

    async def slow_first(request: ModelRequest) -> str:
        await asyncio.sleep(delays.get(request.seat, 0.0))
        return "done"

    result = Council(
        PANEL, protocol="quick", model=FunctionModel(slow_first), runs_dir=None
    ).convene(QUESTION)
    assert [t.seat for t in result.turns] == [*PANEL, "chair"]
