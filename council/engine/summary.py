"""What a run says of itself when it ends: why it stopped, in one line, and its session
metadata block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from council.engine.lengths import is_continuation
from council.records.events import CallFellBack, Event, LoopFinished, RunStarted, TurnFinished
from council.records.run import ENFORCEMENT_TAGS, SessionMetadata
from council.seats.seat import Seat


def failure_summary(failures: Sequence[BaseException], most: int = 3) -> str:
    """Why a run ended, in one line: a thousand stages refused by one budget say it once."""
    shown = list(dict.fromkeys(str(failure) for failure in failures))[:most]
    more = len(failures) - len(shown)
    return "; ".join(shown) + (f" (and {more} more like it)" if more > 0 else "")


def session_metadata(
    events: Sequence[Event],
    mode: str,
    seats: Mapping[str, Seat],
    panel_size: int,
    *,
    reasks: int,
    duration_s: float,
    enforcement: Mapping[str, int] | None = None,
    chair_failed: bool = False,
) -> SessionMetadata:
    """The run's metadata block (nyk's STEP 8 fields and council's own), from its events."""
    turns = [e.turn for e in events if isinstance(e, TurnFinished)]
    loops = [e.outcome.rounds for e in events if isinstance(e, LoopFinished)]
    started = next((e.header for e in events if isinstance(e, RunStarted)), None)
    # The models seats were bound to when the run started (a seat may since sit on a fallback).
    own = {s.seat: s.model for s in started.seats} if started else {}
    own |= {name: seat.model.model for name, seat in seats.items() if name not in own}
    fell = [e for e in events if isinstance(e, CallFellBack)]
    counted = [t for t in turns if not t.reused]
    tags = dict(Counter(enforcement or {}))
    chairs = {name for name, seat in seats.items() if seat.role == "chair"}
    replies = [t for t in turns if not is_continuation(t.stage)]  # a continuation is a part
    return SessionMetadata(
        mode=mode,
        panel_size=panel_size,
        rounds_run=max(loops, default=1),
        providers=sorted({t.provider for t in turns if t.ok}),
        fallbacks=sum(t.ok and t.model != own.get(t.seat, t.model) for t in turns),
        reasks=reasks,
        calls=len(turns),
        tokens=sum((t.prompt_tokens or 0) + (t.completion_tokens or 0) for t in counted),
        duration_s=round(duration_s, 3),
        over_limit=sum(t.over_limit for t in replies),
        truncated=sum(t.truncated for t in replies),
        continued=sum(t.continued for t in replies),
        reasoning_tokens=sum(t.reasoning_tokens or 0 for t in counted),
        reasoning_cost_usd=round(sum(t.reasoning_cost_usd or 0.0 for t in counted), 6),
        starved=sum(t.starved for t in replies),
        citations=sum(len(t.citations) for t in replies),
        unsupported_citations=sum(not c.valid for t in replies for c in t.citations),
        enforcement_calls=sum(tags.values()),
        enforcement_breakdown={**dict.fromkeys(ENFORCEMENT_TAGS, 0), **tags} if tags else {},
        chairman_failed_fallback=chair_failed or any(e.seat in chairs for e in fell),
        input_tokens=sum(t.prompt_tokens or 0 for t in counted),
        output_tokens=sum(t.completion_tokens or 0 for t in counted),
        provider_count=len({_provider(m) for m in own.values()}),
        fallbacks_triggered=list(dict.fromkeys(f"{e.seat}->{e.fallback}" for e in fell)),
        fallback_log=[
            f"[FALLBACK] {e.seat} failed on {e.failed}. Falling back to {e.fallback}." for e in fell
        ],
    )


def _provider(model: str) -> str:
    return model.partition("/")[0]
