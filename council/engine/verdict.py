"""The synthesis stage kind, and the verdict council assembles itself when the chair fails.

nyk's STEP 7 (SKILL.md v1.2.0, MIT, 0xNyk): "If the Chairman call fails or times out, fall
back to the coordinator producing the verdict directly", annotated ``Chairman: <name> (FAILED
- synthesized by coordinator fallback)``. The chair's model chain is tried first (by default a
chair model of another family, where the pool offers one: ``council.app.council``); when every
model of it fails, council writes the verdict mechanically from what the run recorded, the
tallies above all, and says so at the top. No model writes it, so it weighs no argument: it
reports the count, who backed what, every dealbreaker, and what the council could not decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, cast

from council.engine import verdict_checks
from council.engine.stage_kinds import RunState, StageKind, register_stage_kind
from council.protocols.spec import SpeakingStage
from council.records.describe import describe_tally
from council.records.run import Tally, Turn
from council.records.settings import CallSettings
from council.records.verdicts import VerdictCheck

COORDINATOR_MODEL = "council/tally-verdict"  # what the record names as the verdict's author
_EXCERPT = 400  # characters of a seat's reply quoted where there is no tally


class VerdictRun(verdict_checks.CheckedRun, Protocol):
    @property
    def calls(self) -> CallSettings: ...

    async def coordinator_verdict(
        self, stage: SpeakingStage, round_number: int, failed: Turn
    ) -> Turn: ...


class SynthesisKind(StageKind):
    def variables(self, run: RunState, stage: SpeakingStage) -> dict[str, object]:
        """What a verdict template may name of the council (nyk's Council Composition,
        Chairman and Provider Routing sections): ``routing`` (seat → provider → model, one
        line each), ``member_names``, ``domain_seat``, ``chair_model``, ``chair_provider`` and
        ``chair_shares_provider`` (the chair's provider also serves a panel seat)."""
        panel = [seat for seat in run.seats.values() if seat.role == "panel"]
        chair = next((seat for seat in run.seats.values() if seat.role == "chair"), None)
        heavy = [f"{s.name} ({s.weight:g}× domain weight)" for s in panel if s.weight != 1.0]
        providers = {seat.model.provider for seat in panel}
        return {
            "routing": "\n".join(
                f"- {s.name} → {s.model.provider} → {s.model.model}" for s in panel
            ),
            "member_names": [s.name for s in panel],
            "domain_seat": ", ".join(heavy) or "none (no domain-weight seat)",
            "chair_model": chair.model.model if chair else "none",
            "chair_provider": chair.model.provider if chair else "none",
            "chair_shares_provider": bool(chair and chair.model.provider in providers),
        }

    async def follow_up(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> list[Turn]:
        """The chair's verdict, checked (``council.engine.verdict_checks``: asked for once
        more if it falls short). Every model of the chair failed: the coordinator's verdict
        stands in for it, recorded ``unchecked`` as no model wrote it (unless
        ``CallSettings.chair_fallback`` is off: then the run fails, as it has no synthesis)."""
        verdict_run = cast(VerdictRun, run)
        if any(t.ok for t in turns):
            return await verdict_checks.checked(verdict_run, stage, turns, round_number)
        if not turns or not verdict_run.calls.chair_fallback:
            return turns
        failed = turns[0]
        verdict_run.verdict_check = VerdictCheck(
            status="unchecked",
            reasons=[
                f"no model wrote this verdict: the chair's model failed ({failed.error}); council "
                "assembled it from the record, and it weighs no argument"
            ],
        )
        return [await verdict_run.coordinator_verdict(stage, round_number, failed)]


def tally_verdict(
    question: str,
    chair: str,
    error: str | None,
    tallies: Sequence[Tally],
    replies: Mapping[str, Sequence[Turn]],
) -> str:
    """The verdict assembled from the record: each vote's tally as nyk's Vote Tally, the
    consensus or its absence, the minority report; without a vote, each seat's last reply."""
    votes = [t for t in tallies if t.kind == "vote"]
    last = votes[-1] if votes else None
    lines = [
        "> **Assembled by council, not written by a model.** The chair's model failed"
        + (f" ({error})" if error else "")
        + "; this verdict is put together mechanically from the run's record (nyk's "
        "coordinator fallback). It reports the count and weighs no argument.",
        "",
        "## Council Verdict",
        "",
        "### Problem",
        question,
        "",
        "### Chairman",
        f"Chairman: {chair} (FAILED — synthesized by coordinator fallback)",
        "",
        "### Consensus & Agreement",
        _consensus(last),
        "",
        "### Vote Tally",
    ]
    lines += [describe_tally(t, {}) + "\n" for t in votes] or ["N/A — no vote was taken."]
    lines += ["", "### Minority Report", *_minority(last), ""]
    if not votes:
        lines += ["### Positions", *_positions(replies), ""]
    lines += [
        "### Unresolved Questions",
        "N/A — no model read the deliberation to name them; read the transcript.",
    ]
    return "\n".join(lines)


def _consensus(tally: Tally | None) -> str:
    if tally is None:
        return "N/A — no vote was taken; the positions below are each seat's last word."
    if tally.consensus and tally.winner:
        return f"{tally.winner} carries: it cleared the threshold (see the Vote Tally)."
    if tally.outcome == "inconclusive":
        return (
            "Inconclusive: no option carries, and too many ballots went uncounted to say "
            "that none would have."
        )
    return "No consensus reached: the split goes to you to decide (see the Vote Tally)."


def _minority(tally: Tally | None) -> list[str]:
    if tally is None:
        return ["N/A — no vote was taken."]
    held = [b for b in tally.ballots if b.valid and b.stance != tally.winner and b.stance]
    held += [b for b in tally.ballots if b.valid and b.dealbreaker and b not in held]
    if not held:
        return ["N/A — no seat dissented."]
    return [
        f"- {b.seat}: {b.stance}"
        + (" (dealbreaker)" if b.dealbreaker else "")
        + (f" — {b.reason}" if b.reason else "")
        for b in held
    ]


def _positions(replies: Mapping[str, Sequence[Turn]]) -> list[str]:
    latest: dict[str, Turn] = {}
    for turns in replies.values():
        for turn in turns:
            if turn.ok:
                latest[turn.seat] = turn
    if not latest:
        return ["N/A — no seat's reply was recorded."]
    return [
        f"- {seat}: {' '.join((t.content or '').split())[:_EXCERPT]}" for seat, t in latest.items()
    ]


register_stage_kind("synthesis", SynthesisKind())
