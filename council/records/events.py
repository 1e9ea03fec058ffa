"""The run's events: one typed vocabulary for everything that happens in a deliberation.

The engine emits these events and nothing else; every sink (the ledger, the run folder's
exports, the live display, a web stream) takes them through one method, ``handle``. They are a
pydantic discriminated union on ``type`` with one ``TypeAdapter`` (``EVENTS``), so there is one
serializer: ``event_json`` writes the line the ledger stores, ``events.jsonl`` exports and a
web stream sends, and ``parse_event`` reads either back.

Each event type says whether it is *durable* (``durable`` is a class attribute, not a field):
a durable event is the record, committed to the ledger and exported to ``events.jsonl``; a
live event (``LiveEvent``: a piece of a reply as it streams) is passed to the run's followers
as it happens and never stored, since the durable events already hold everything it shows.
Both kinds are small JSON, one line each, so a web page can follow a run over SSE.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from council.records.record import utc_now
from council.records.run import (
    GateNote,
    LoopOutcome,
    RunHeader,
    RunStatus,
    SessionMetadata,
    Tally,
    Turn,
)
from council.records.settings import RunConfig
from council.records.verdicts import VerdictAudit, VerdictCheck


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    durable: ClassVar[bool] = True  # committed to the ledger before anyone else hears it

    run_id: str
    at: datetime = Field(default_factory=utc_now)


class LiveEvent(_Event):
    """An event for those watching the run now: passed on, never stored."""

    durable: ClassVar[bool] = False


class RunStarted(_Event):
    """The run began (or was resumed: the same run, appended to)."""

    type: Literal["run_started"] = "run_started"
    header: RunHeader
    config: RunConfig | None = None  # None: a council that cannot be convened again from data
    resumed: bool = False


class StageStarted(_Event):
    type: Literal["stage_started"] = "stage_started"
    stage: str
    round: int = 0  # 0 outside a loop; 1.. inside one
    label: str
    seats: list[str]


class TurnStarted(_Event):
    type: Literal["turn_started"] = "turn_started"
    stage: str
    round: int = 0
    seat: str
    # The reply is asked for as JSON (a structured ballot): its streamed pieces are JSON, which
    # a page shows as progress, not text, until the finished turn brings its prose.
    structured: bool = Field(default=False, exclude_if=lambda v: not v)


class TurnDelta(LiveEvent):
    """A piece of a seat's reply as it streams in. The finished turn holds the whole reply."""

    type: Literal["turn_delta"] = "turn_delta"
    stage: str
    round: int = 0
    seat: str
    text: str


class CallRetrying(_Event):
    """An attempt at a seat's call failed with an error a retry can fix; the next attempt
    starts after ``wait_s`` (a streamed reply starts again from its first piece)."""

    type: Literal["call_retrying"] = "call_retrying"
    stage: str
    round: int = 0
    seat: str
    model: str
    attempt: int  # the attempt that failed, from 1
    error: str
    wait_s: float


class CallFellBack(_Event):
    """A seat's model failed for good and the next model of its fallback chain takes over."""

    type: Literal["call_fell_back"] = "call_fell_back"
    stage: str
    round: int = 0
    seat: str
    failed: str
    fallback: str
    error: str


class TurnFinished(_Event):
    """A seat spoke (or failed to): the turn with the full request it was sent."""

    type: Literal["turn_finished"] = "turn_finished"
    turn: Turn
    # A reply asked for as JSON (a structured ballot), as readers read it (``Turn.text``), so a
    # page following the run shows prose without parsing JSON itself; absent for other turns,
    # which serialize exactly as before.
    prose: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _with_prose(self) -> Self:
        if self.prose is None and self.turn.structured and self.turn.content is not None:
            object.__setattr__(self, "prose", self.turn.text)  # frozen: set once, when made
        return self


class TallyMade(_Event):
    type: Literal["tally_made"] = "tally_made"
    tally: Tally


class StageFinished(_Event):
    type: Literal["stage_finished"] = "stage_finished"
    stage: str
    round: int = 0
    answered: int
    seats: int


class StageSkipped(_Event):
    """A guard stage that did not fire, and why."""

    type: Literal["stage_skipped"] = "stage_skipped"
    stage: str
    round: int = 0
    reason: str


class LoopRound(_Event):
    type: Literal["loop_round"] = "loop_round"
    loop: str
    round: int
    stop: str | None = None  # why the loop stops after this round, if it does


class LoopFinished(_Event):
    type: Literal["loop_finished"] = "loop_finished"
    outcome: LoopOutcome


class SeatAbsent(_Event):
    """A seat failed for good (retries and fallbacks spent) and sits out the rest of the run."""

    type: Literal["seat_absent"] = "seat_absent"
    seat: str
    reason: str


class GateChecked(_Event):
    """A gate looked at a stage's replies: it fired (and sent some back) or it did not."""

    type: Literal["gate_checked"] = "gate_checked"
    note: GateNote


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: RunStatus
    error: str | None = None
    synthesis: str | None = None
    finished_at: datetime
    metadata: SessionMetadata | None = None
    # The check of the chair's verdict (left out when none was made: older lines read).
    verdict_check: VerdictCheck | None = Field(default=None, exclude_if=lambda v: v is None)


class VerdictAudited(_Event):
    """The verdict was audited against the transcript and tally: by a protocol's auditor stage
    during the run, or by ``council audit`` after it (appended to the finished run)."""

    type: Literal["verdict_audited"] = "verdict_audited"
    audit: VerdictAudit


Event = Annotated[
    RunStarted
    | StageStarted
    | TurnStarted
    | TurnDelta
    | CallRetrying
    | CallFellBack
    | TurnFinished
    | TallyMade
    | StageFinished
    | StageSkipped
    | LoopRound
    | LoopFinished
    | SeatAbsent
    | GateChecked
    | RunFinished
    | VerdictAudited,
    Field(discriminator="type"),
]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def event_json(event: Event) -> str:
    """The one serialization of an event: a single line of JSON. A run's recorder makes it
    once per event and hands that line to the ledger and to every follower that takes lines
    (``LineSink``), so a turn's whole prompt is serialized once, and no cache is shared."""
    return EVENTS.dump_json(event).decode("utf-8")


def parse_event(line: str | bytes) -> Event:
    return EVENTS.validate_json(line)


def events_jsonl(events: Iterable[Event]) -> str:
    """Events as the text of an ``events.jsonl`` file."""
    return "".join(event_json(event) + "\n" for event in events)


class EventSink(Protocol):
    """Anything that follows a run: it takes each event, in order, as it happens.

    A sink that shows replies as they are written (a live display, a web page) says so with
    an attribute ``wants_deltas = True``: only then do calls stream and ``TurnDelta`` events
    reach it. A sink that does not say gets each finished turn whole, and no deltas."""

    def handle(self, event: Event) -> None: ...


def wants_deltas(sink: object) -> bool:
    """Whether ``sink``, or a sink it passes events on to (its ``followers``, as the run's
    recorder has), shows replies piece by piece."""
    if getattr(sink, "wants_deltas", False):
        return True
    return any(wants_deltas(follower) for follower in getattr(sink, "followers", ()))


class LineSink(EventSink, Protocol):
    """A follower that writes events out (the run folder, a web stream): it also takes each
    event with its line as recorded (``event_json``), made once by the run's recorder."""

    def handle_line(self, event: Event, line: str) -> None: ...


class EventList:
    """A sink that keeps every event; the engine folds its own run from one of these.
    ``wants_deltas``: keep the pieces of each reply as it streams too."""

    def __init__(self, wants_deltas: bool = False) -> None:
        self.events: list[Event] = []
        self.wants_deltas = wants_deltas

    def handle(self, event: Event) -> None:
        self.events.append(event)
