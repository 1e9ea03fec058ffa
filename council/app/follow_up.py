"""Follow-ups: a finished council asked one more question.

A follow-up convenes the same seats as its parent run (the cards, models, endpoints, protocol
and settings the parent recorded, its whole spec, so any field it holds carries over) on a new
question. Each seat is shown a digest of the parent, bounded to ``DIGEST_CHARS`` characters:
the parent's question, its verdict and that seat's own last position (its last reply, ballot
included), never another seat's. The follow-up is a run like any other, linked to its parent
(``RunHeader.parent_run``, the ledger's ``runs.parent_run``) and to every run before it in the
thread (``RunHeader.thread``, root first); its digests are recorded in its start, so resume and
replay send the same prompts and reuse every call already answered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from council.base.errors import ConfigError, RunInProgress
from council.base.runs_home import RUNS_HOME, RunsHome, runs_location
from council.records.events import EventSink
from council.records.fold import fold_events
from council.records.run import (
    CONTINUATION,
    FOLLOW_UPS,
    REASONING_RETRY,
    FollowUp,
    RunResult,
)
from council.records.settings import RunConfig
from council.store.lease import is_live
from council.store.ledger import Ledger
from council.store.loader import resolve_run_id

# What a seat is shown of the parent, in characters: the parent's question, its verdict and
# the seat's own last position are each cut to their share, and the whole digest to the total.
DIGEST_CHARS = 6000
QUESTION_SHARE = 800
VERDICT_SHARE = 2800
POSITION_SHARE = 2000
_CUT = " [...cut]"


def clip(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, its cut marked."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - len(_CUT)].rstrip() + _CUT


def last_position(parent: RunResult, seat: str) -> tuple[str, str] | None:
    """(stage, text) of the seat's last answered turn in ``parent``; a cut-off reply's
    continuation and a reasoning retry are parts of the turn they finish, not turns of their
    own."""
    for turn in reversed(parent.turns):
        if turn.seat != seat or not turn.ok or not turn.text:
            continue
        if turn.stage.endswith((CONTINUATION, REASONING_RETRY)):
            continue
        return turn.stage, turn.text
    return None


def digest(parent: RunResult, seat: str) -> str:
    """What ``seat`` is shown of ``parent``: its question, its verdict and this seat's own
    last position, at most ``DIGEST_CHARS`` characters."""
    verdict = parent.synthesis or f"(none: the council did not finish; it {parent.status})"
    parts = [
        "## Earlier in this thread",
        f"This question follows an earlier council (run {parent.run_id}) on:\n\n"
        + clip(parent.question, QUESTION_SHARE),
        "### The council's verdict then\n\n" + clip(verdict, VERDICT_SHARE),
    ]
    position = last_position(parent, seat)
    if position is not None and position[1] != parent.synthesis:  # the chair's is the verdict
        stage, text = position
        parts.append(f"### Your own last position then ({stage})\n\n" + clip(text, POSITION_SHARE))
    return clip("\n\n".join(parts), DIGEST_CHARS)


def thread_of(parent: RunResult) -> FollowUp:
    """The follow-up of ``parent``: its thread (the parent's, then the parent) and each of
    its seats' digests."""
    seats = [assignment.seat for assignment in parent.seats]
    return FollowUp(
        parent_run=parent.run_id,
        thread=[*parent.thread, parent.run_id],
        earlier={seat: digest(parent, seat) for seat in seats},
    )


def _parent(name: str, runs_dir: Path, *, allow_unfinished: bool) -> RunResult:
    """The parent run, read from the ledger; one that did not finish is refused (unless
    allowed), one still running always."""
    ledger = Ledger.existing(runs_dir)
    try:
        run_id = resolve_run_id(ledger, name)
        status = str((ledger.run(run_id) or {}).get("status", "running"))
        parent = fold_events(ledger.events(run_id))
    finally:
        ledger.close()
    if status == "running" and is_live(runs_dir, run_id):
        raise RunInProgress(f"run {run_id} is still running: follow it up once it has finished")
    if status != "completed" and not allow_unfinished:
        shown = "was interrupted" if status == "running" else f"ended {status}"
        raise ConfigError(
            f"run {run_id} did not finish (it {shown}): resume it first, or follow it up "
            "anyway with --allow-unfinished (allow_unfinished=True)"
        )
    if parent.config is None:
        raise ConfigError(
            f"run {run_id} has no recorded configuration (a seat ran on a model object): "
            "rebuild that council in Python and convene it on the new question"
        )
    return parent


def _runs_dir_of(parent: RunResult | str, runs_dir: Path | str | RunsHome | None) -> Path:
    if runs_dir is not None:
        return runs_location(runs_dir)
    if isinstance(parent, str):
        return runs_location(RUNS_HOME)
    if parent.run_dir is None:
        raise ConfigError(
            f"run {parent.run_id} was not recorded (runs_dir=None): a follow-up reads its "
            "parent from the ledger"
        )
    return Path(parent.run_dir).parent


async def afollow_up(
    parent: RunResult | str,
    question: str,
    runs_dir: Path | str | RunsHome | None = None,
    *,
    sinks: Sequence[EventSink] = (),
    endpoints: Mapping[str, str] | None = None,
    allow_unfinished: bool = False,
    within: Callable[[RunConfig], RunConfig] | None = None,
) -> RunResult:
    """Convene ``parent``'s seats on ``question`` as a follow-up of it. ``parent`` is a run
    (its ledger is the one it was recorded in) or a run's name in ``runs_dir``'s ledger (an
    ID, a unique prefix, ``latest``); ``endpoints`` gives again those whose credentials were
    not stored; ``within`` holds the recorded council to a server's limits (it may refuse)."""
    from council.app.resume import recorded_council

    if not question.strip():
        raise ConfigError("the follow-up question is empty")
    folder = _runs_dir_of(parent, runs_dir)
    name = parent if isinstance(parent, str) else parent.run_id
    recorded = _parent(name, folder, allow_unfinished=allow_unfinished)
    assert recorded.config is not None  # _parent refuses a run without one
    config = within(recorded.config) if within is not None else recorded.config
    council = recorded_council(config, folder, sinks=sinks, endpoints=endpoints)
    return await council.aconvene(question, follow_up=thread_of(recorded))


def follow_up(parent: RunResult | str, question: str, *args: Any, **kwargs: Any) -> RunResult:
    """Synchronous ``afollow_up``; inside a running event loop, await ``afollow_up``."""
    import asyncio  # not at import: this module loads with every ``council`` name read

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        ran: list[RunResult] = []

        async def run() -> None:  # returns nothing: see Council.convene
            ran.append(await afollow_up(parent, question, *args, **kwargs))

        asyncio.run(run())
        return ran[0]
    raise ConfigError("follow_up() was called inside an event loop: use 'await afollow_up()'")


FOLLOW_UPS.update({"sync": follow_up, "async": afollow_up})
