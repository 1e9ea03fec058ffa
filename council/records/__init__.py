"""The bottom layer: what a run is made of (records), what happens in it (events), and the
settings it is convened with. Everything above reads and writes these; they import nothing
of council's but errors and each other."""

from council.records.events import EVENTS, Event, EventList, EventSink, event_json, parse_event
from council.records.fold import fold_events
from council.records.run import CallRequest, RunHeader, RunResult, SeatAssignment, Tally, Turn
from council.records.settings import Budget, CallSettings, RunConfig, SamplingSettings
from council.records.transcript import render_transcript, render_transcript_html

__all__ = [
    "EVENTS",
    "Budget",
    "CallRequest",
    "CallSettings",
    "Event",
    "EventList",
    "EventSink",
    "RunConfig",
    "RunHeader",
    "RunResult",
    "SamplingSettings",
    "SeatAssignment",
    "Tally",
    "Turn",
    "event_json",
    "fold_events",
    "parse_event",
    "render_transcript",
    "render_transcript_html",
]
