"""Gates: checks on a stage's replies that can send some back, each recorded as it decides.

- **novelty** (``novelty_against: <stage>``): a reply too like the same seat's reply in that
  earlier stage (similarity >= ``novelty_threshold``) is sent back once, with the sharpest
  challenge a peer raised, so a cross-examination cannot just repeat round one.
- **evidence labels** (``evidence_labels: true``): seats tag claims ``[empirical]``,
  ``[mechanistic]``, ``[strategic]``, ``[ethical]`` or ``[heuristic]``; when one type is more
  than 80% of the tags, a monoculture is noted.
- **dissenters** (a guard's ``seats: dissenters``): the counterfactual goes to the two seats
  most likely to dissent: those who voted against the leading stance, then the least confident
  of its supporters.

Every gate emits a ``gate_checked`` event saying whether it fired, on whom and why.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from council.engine.stage_kinds import RunState
from council.protocols.spec import SpeakingStage
from council.records.run import GateNote, Tally, Turn

EVIDENCE_TYPES = ("empirical", "mechanistic", "strategic", "ethical", "heuristic")
EVIDENCE_INSTRUCTION = (
    "Tag each claim with the kind of evidence behind it, in brackets: "
    + ", ".join(f"[{kind}]" for kind in EVIDENCE_TYPES)
    + "."
)
MONOCULTURE = 0.8
_TAG = re.compile(r"\[(" + "|".join(EVIDENCE_TYPES) + r")\]", re.IGNORECASE)
Similarity = Callable[[str, str], float]


class GateRun(RunState, Protocol):
    def previous_turns(self, stage_id: str) -> list[Turn]: ...

    def record_gate(self, note: GateNote) -> None: ...


def word_similarity(a: str, b: str) -> float:
    """Jaccard overlap of words: the similarity used when no embedder is given."""
    left, right = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(left & right) / len(left | right) if left | right else 1.0


async def novelty(
    run: GateRun,
    stage: SpeakingStage,
    turns: list[Turn],
    round_number: int,
    similarity: Similarity,
) -> list[Turn]:
    assert stage.novelty_against is not None
    earlier = {t.seat: t for t in run.previous_turns(stage.novelty_against) if t.ok}
    repeats = {
        t.seat: similarity(t.text or "", earlier[t.seat].text or "")
        for t in turns
        if t.ok and t.seat in earlier
    }
    stale = [seat for seat, score in repeats.items() if score >= stage.novelty_threshold]
    shown = ", ".join(f"{seat} {repeats[seat]:.2f}" for seat in stale)
    run.record_gate(
        GateNote(
            stage=stage.id,
            round=round_number,
            gate="novelty",
            fired=bool(stale),
            seats=stale,
            reason=(
                f"too like their '{stage.novelty_against}' reply ({shown})"
                if stale
                else f"every reply moved on from '{stage.novelty_against}' (threshold "
                f"{stage.novelty_threshold:.2f})"
            ),
        )
    )
    if not stale:
        return turns

    def challenge(seat: str) -> str:
        others = [t for t in turns if t.ok and t.seat != seat]
        sharpest = min(
            others, key=lambda t: similarity(t.text or "", earlier[seat].text or ""), default=None
        )
        quote = " ".join((sharpest.text or "").split())[:300] if sharpest else ""
        return (
            "Your reply repeats your earlier answer. Do not restate it: answer the sharpest "
            f"challenge from the others instead, and say what it changes.\n\n> {quote}"
        )

    by_seat = {t.seat: t for t in turns}
    again = await asyncio.gather(
        *(
            run.ask_again(
                stage,
                run.seats[seat],
                round_number,
                by_seat[seat],
                challenge(seat),
                tag="novelty_gate",
            )
            for seat in stale
        )
    )
    replaced = {t.seat: t for t in again if t.ok}
    return [replaced.get(t.seat, t) for t in turns]


def evidence(run: GateRun, stage: SpeakingStage, turns: Sequence[Turn], round_number: int) -> None:
    tags = Counter(tag.lower() for t in turns if t.ok for tag in _TAG.findall(t.text or ""))
    total = sum(tags.values())
    top, count = tags.most_common(1)[0] if tags else ("", 0)
    fired = total > 0 and count / total > MONOCULTURE
    counts = ", ".join(f"{kind} {n}" for kind, n in tags.most_common()) or "no tags"
    run.record_gate(
        GateNote(
            stage=stage.id,
            round=round_number,
            gate="evidence-monoculture",
            fired=fired,
            reason=(
                f"{count / total:.0%} of {total} tagged claims are {top}: one kind of evidence"
                if fired
                else f"evidence mixed enough ({counts})"
            ),
        )
    )


def likely_dissenters(tally: Tally | None, panel: Sequence[str], count: int = 2) -> list[str]:
    """Those who voted against the leading stance, then its least confident supporters."""
    if tally is None:
        return list(panel[:count])
    against = [seat for seat in tally.dissenters if seat in panel]
    supporters = sorted(
        (b for b in tally.ballots if b.valid and b.stance == tally.winner and b.seat in panel),
        key=lambda b: (b.confidence, b.seat),
    )
    chosen = [*against, *(b.seat for b in supporters)]
    return list(dict.fromkeys(chosen))[:count] or list(panel[:count])
