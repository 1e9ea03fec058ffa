"""What a run says of itself when it ends: why it stopped, in one line, and its session
metadata block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from council.engine.lengths import is_continuation
from council.records.events import Event, LoopFinished, TurnFinished
from council.records.run import SessionMetadata
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
) -> SessionMetadata:
    turns = [e.turn for e in events if isinstance(e, TurnFinished)]
    loops = [e.outcome.rounds for e in events if isinstance(e, LoopFinished)]
    own = {seat.name: seat.model.model for seat in seats.values()}
    replies = [t for t in turns if not is_continuation(t.stage)]  # a continuation is a part
    return SessionMetadata(
        mode=mode,
        panel_size=panel_size,
        rounds_run=max(loops, default=1),
        providers=sorted({t.provider for t in turns if t.ok}),
        fallbacks=sum(t.ok and t.model != own.get(t.seat, t.model) for t in turns),
        reasks=reasks,
        enforcement=dict(enforcement or {}),
        calls=len(turns),
        tokens=sum(
            (t.prompt_tokens or 0) + (t.completion_tokens or 0) for t in turns if not t.reused
        ),
        duration_s=round(duration_s, 3),
        over_limit=sum(t.over_limit for t in replies),
        truncated=sum(t.truncated for t in replies),
        continued=sum(t.continued for t in replies),
    )
