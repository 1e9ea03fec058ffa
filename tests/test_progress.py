"""The live display, read as a person reads it: rich's console output, captured as text.

Councils run on the test doubles and the loopback fake provider; the display is one of their
sinks, and a second sink takes a snapshot of the live table at the moments that matter.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from council import Council
from council.app.resume import replay, resume
from council.cli.progress import ProgressDisplay
from council.records.events import (
    Event,
    RunStarted,
    StageFinished,
    StageStarted,
    TurnDelta,
    TurnStarted,
)
from council.records.record import utc_now
from council.records.run import RunHeader
from council.seats import CallSettings
from council.testing import FakeProvider, FunctionModel, well_formed_reply

QUESTION = "Should cities ban private cars from their centres?"
FAST = CallSettings(timeout_s=5, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)


def console(*, terminal: bool) -> Console:
    return Console(record=True, force_terminal=terminal, width=120, file=io.StringIO())


def text_of(renderable: object) -> str:
    out = console(terminal=False)
    out.print(renderable)
    return out.export_text()


class Snapshots:
    """A sink after the display: the display's table as text, whenever ``when(event)``."""

    def __init__(self, display: ProgressDisplay, when: Callable[[Event], bool]) -> None:
        self.display, self.when = display, when
        self.taken: list[tuple[Event, str]] = []

    def handle(self, event: Event) -> None:
        if self.when(event):
            self.taken.append((event, text_of(self.display.view())))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def header(protocol: str = "quick") -> RunHeader:
    return RunHeader(
        run_id="r",
        run_dir=None,
        question=QUESTION,
        protocol=protocol,
        protocol_hash="0" * 64,
        seats=[],
        stages=["opening"],
        started_at=utc_now(),
    )


def test_clocks_tick_between_events_and_stop_when_the_stage_ends() -> None:
    clock = Clock()
    display = ProgressDisplay(console(terminal=False), clock=clock)
    display.handle(RunStarted(run_id="r", header=header()))
    display.handle(StageStarted(run_id="r", stage="opening", label="Opening", seats=["kuhn"]))
    display.handle(TurnStarted(run_id="r", stage="opening", seat="kuhn"))
    clock.now += 9.4
    assert "│ 9.4 s │" in text_of(display.view())
    clock.now += 170.0  # no event for minutes: the clock still moves
    shown = text_of(display.view())
    assert "│ 179.4 s │" in shown and "0 tokens · 179.4 s" in shown
    display.handle(StageFinished(run_id="r", stage="opening", answered=1, seats=1))
    clock.now += 5.0
    shown = text_of(display.view())
    assert "│ 179.4 s │" in shown and "184.4 s" in shown  # the row stopped; the run goes on


def test_tokens_grow_as_a_reply_streams() -> None:
    display = ProgressDisplay(console(terminal=True))  # live: the run's calls stream for it
    seen = Snapshots(display, lambda e: isinstance(e, TurnDelta) and e.seat == "chair")
    reply = "The chair weighs every opening and decides: no ban, a charge."
    Council(
        ["popper", "kuhn"],
        protocol="quick",
        model=FunctionModel(lambda r: reply),
        runs_dir=None,
        sinks=[display, seen],
    ).convene(QUESTION)
    counts = [
        int(m[1]) for _, text in seen.taken for m in [re.search(r"chair \((\d+) tok", text)] if m
    ]
    assert counts == list(range(1, len(reply.split()) + 1))
    last_words = [text for _, text in seen.taken][-1]
    assert "chair ▸ The chair weighs every opening and decides: no ban, a charge." in last_words


def test_calls_stream_for_the_live_table_and_not_for_a_pipe() -> None:
    for terminal in (True, False):
        display = ProgressDisplay(console(terminal=terminal))
        with FakeProvider("A considered answer.") as fake:
            result = Council(
                ["popper", "kuhn"],
                protocol="quick",
                model="openai/fake",
                endpoints={"openai/fake": fake.api_base},
                runs_dir=None,
                calls=FAST,
                sinks=[display],
            ).convene(QUESTION)
            streamed = {bool(request.get("stream")) for request in fake.requests}
        assert result.status == "completed" and streamed == {terminal}
        assert display.wants_deltas is terminal


def test_retries_and_fallbacks_show_as_they_happen(tmp_path: Path) -> None:
    with FakeProvider("A considered answer.") as fake, FakeProvider("A backup answer.") as backup:
        fake.fail_next(503)
        endpoints = {
            "openai/fake": fake.api_base,
            "openai/backup": backup.api_base,
            "openai/down": "http://127.0.0.1:9/v1",
        }
        live = ProgressDisplay(console(terminal=True))
        piped = ProgressDisplay(console(terminal=False))
        moments = Snapshots(live, lambda e: e.type in {"call_retrying", "call_fell_back"})
        result = Council(
            ["popper", "kuhn", "meadows"],
            protocol="quick",
            model=FunctionModel(well_formed_reply),
            seats={"kuhn": "openai/fake", "meadows": "openai/down"},
            fallbacks={"meadows": ["openai/backup"]},
            endpoints=endpoints,
            runs_dir=tmp_path,
            calls=CallSettings(
                timeout_s=5, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02
            ),
            sinks=[live, piped, moments],
        ).convene(QUESTION)
    assert result.status == "completed"
    # The moment kuhn's first attempt failed, its cell said so; likewise meadows's fallback.
    taken = {(event.type, getattr(event, "seat", "")): shown for event, shown in moments.taken}
    assert set(taken) == {
        ("call_retrying", "kuhn"),
        ("call_retrying", "meadows"),
        ("call_fell_back", "meadows"),
    }
    assert "… kuhn (try 2)" in taken[("call_retrying", "kuhn")]
    assert "… meadows (try 2)" in taken[("call_retrying", "meadows")]
    assert "… meadows (via openai/backup)" in taken[("call_fell_back", "meadows")]
    shown = live.console.export_text()
    assert (
        "opening · kuhn: attempt 1 failed (ServiceUnavailableError: OpenAIException - "
        "injected 503); retrying in 0.0 s" in shown
    )
    assert "meadows: openai/down failed, falling back to openai/backup" in shown
    assert "council · quick" in shown and "✓ kuhn (2 tries)" in shown
    assert "✓ meadows (3 tries, via openai/backup)" in shown
    # Piped: one line per turn, the retry and the fallback said in the turn's own line.
    lines = piped.console.export_text().splitlines()
    turn_lines = [line for line in lines if re.match(r"  \S+ · \S+: ", line)]
    assert len(turn_lines) == len(result.turns) == 4
    assert any(re.match(r"  opening · kuhn: ok \(.* 2 attempts\)$", line) for line in lines)
    assert any(
        re.match(r"  opening · meadows: ok \(.*via openai/backup\)$", line) for line in lines
    )
    assert not any("retrying" in line or "falling back" in line for line in lines)
    # The retry and the fallback are on record; the streamed pieces are not.
    folder = Path(result.run_dir or "")
    kinds = [
        json.loads(line)["type"] for line in (folder / "events.jsonl").read_text().splitlines()
    ]
    assert kinds.count("call_retrying") == 2 and kinds.count("call_fell_back") == 1
    assert "turn_delta" not in kinds


def test_turns_reused_by_replay_are_marked(tmp_path: Path) -> None:
    with FakeProvider("The same answer every time.") as fake:
        endpoints = {"openai/fake": fake.api_base}
        first = Council(
            ["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            endpoints=endpoints,
            runs_dir=tmp_path,
            calls=FAST,
        ).convene(QUESTION)
        live = ProgressDisplay(console(terminal=True))
        piped = ProgressDisplay(console(terminal=False))
        again = replay(first.run_id, tmp_path, sinks=[live, piped], endpoints=endpoints)
    assert all(turn.reused for turn in again.turns)
    final = text_of(live.view())
    for seat in ("popper", "kuhn", "chair"):
        assert f"↺ {seat}" in final and f"✓ {seat}" not in final
    assert "council · quick (resumed)" not in final  # a replay is a new run, not a resumed one
    lines = piped.console.export_text().splitlines()
    assert [line.split(": ")[1].split(" ")[0] for line in lines if " · " in line] == ["reused"] * 3


def test_each_loop_round_keeps_its_own_row_and_the_title_names_the_protocol() -> None:
    display = ProgressDisplay(console(terminal=False))
    result = Council(
        ["popper", "kuhn"],
        protocol="debate",
        model=FunctionModel(well_formed_reply),
        runs_dir=None,
        sinks=[display],
    ).convene(QUESTION)
    rounds = sorted({t.round for t in result.turns if t.stage == "revise"})
    assert rounds == [1, 2, 3]
    final = text_of(display.view())
    assert "council · debate" in final
    for number in rounds:
        assert re.search(rf"Revision \(round {number}\) +│ ✓ popper  ✓ kuhn ", final)


def test_a_resumed_run_says_so_and_marks_the_turns_it_kept(tmp_path: Path) -> None:
    with FakeProvider("A panel answer.") as panel, FakeProvider("A verdict.") as chair:
        chair.fail_next(401)
        endpoints = {"openai/fake": panel.api_base, "openai/chair": chair.api_base}
        failed = Council(
            ["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            seats={"chair": "openai/chair"},
            endpoints=endpoints,
            runs_dir=tmp_path,
            calls=replace(FAST, chair_fallback=False),
        ).convene(QUESTION)
        assert failed.status == "failed"
        live = ProgressDisplay(console(terminal=True))
        resumed = resume(failed.run_id, tmp_path, sinks=[live], endpoints=endpoints)
    assert resumed.status == "completed"
    final = text_of(live.view())
    assert "council · quick (resumed)" in final
    assert "↺ popper  ↺ kuhn" in final and "✓ chair" in final
