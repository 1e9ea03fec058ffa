"""nyk's enforcement rules (SKILL.md v1.2.0, STEP 1.5 and STEP 4; MIT, 0xNyk) made mechanical,
each a registered guard condition or a gate, each dispatch counted under nyk's tag.

- **dissent quota** (a guard's ``checks`` + ``dissent_quota: 2``; tag ``dissent_quota``): "at
  least 2 members must articulate a non-overlapping objection". A member *objects* when its
  stance in the checked vote differs from the leading one; two objections *overlap* when the
  replies that carry them are at least ``objection_overlap`` similar (the run's similarity:
  embedding cosine, or word overlap), and then count once. Fewer distinct objections than the
  quota, and the guard runs for those who agreed with the leading stance (``seats: agreed``).
  A split council (no leading stance) has no majority to object to: the quota does not apply.
- **hemlock rule** (``watches`` + ``hemlock_against``; tag ``anti_recursion``): the questioner
  (the protocol's ``questioners``, e.g. Socrates) may not re-ask an answered question. A
  *question* is a sentence of three or more words ending in "?". A question the questioner
  asked in ``hemlock_against`` counts as *answered* once the stage the guard ``watches`` reads
  that stage and another member has replied in it: every such reply was written to the
  questions it read. The questioner re-asks when a question in its reply in the watched stage
  is at least ``question_overlap`` similar to an answered one; then the guard seats it
  (``seats: questioner``) for a forced position.
- **divergent restatements** (a stage's ``diverges_below``): a reply whose similarity to the
  question falls below the line is flagged to the user in a ``restatement`` note (transcript
  and live display). It is a flag, not an enforcement: nothing is sent back. Similarity is the
  embedder's cosine where the run has one; with word overlap it is the share of the question's
  words of four or more letters that the reply uses, since a one-sentence restatement shares
  too few words with a question for a Jaccard overlap to tell faithful from off-topic.

The agreement check is the vote condition in ``council.engine.guards`` (tag
``agreement_check``); the novelty gate counts its re-asks in ``council.engine.gates``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from council.engine import gates
from council.engine.guards import (
    GuardCondition,
    GuardReading,
    GuardRun,
    Verdict,
    register_guard_condition,
)
from council.protocols.spec import GuardStage, SpeakingStage
from council.records.run import GateNote, Turn

_QUESTION = re.compile(r"[^.?!\n]*\?")
_WORD = re.compile(r"[a-z]{4,}")


def questions(text: str | None) -> list[str]:
    """The sentences of three or more words that end in a question mark."""
    found = (" ".join(q.strip(" *_>#-\t").split()) for q in _QUESTION.findall(text or ""))
    return [q for q in found if len(q.split()) >= 3]


def _distinct(
    texts: dict[str, str], similarity: Callable[[str, str], float], overlap: float
) -> list[str]:
    """Seats whose texts do not overlap any kept before them (first come, first kept)."""
    kept: list[str] = []
    for seat, text in texts.items():
        if all(similarity(text, texts[other]) < overlap for other in kept):
            kept.append(seat)
    return kept


def _noted(
    run: GuardRun,
    stage: GuardStage,
    round_number: int,
    gate: str,
    verdict: Verdict,
    seats: list[str],
) -> Verdict:
    """The verdict of a STEP 4 check, recorded as the gate note its tag names."""
    note = GateNote(
        stage=stage.id,
        round=round_number,
        gate=gate,
        fired=verdict.fired,
        seats=seats,
        reason=verdict.reason,
    )
    run.record_gate(note)
    return verdict


class DissentQuotaCondition(GuardCondition):
    gate = "dissent_quota"

    def applies(self, stage: GuardStage) -> bool:
        return stage.dissent_quota is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.chosen = []
        tally = run.tallies.get(stage.checks or "")
        quota = stage.dissent_quota or 0
        if tally is None or tally.winner is None:
            why = (
                f"no tally from '{stage.checks}' to check"
                if tally is None
                else f"'{stage.checks}' has no leading stance: the council is split"
            )
            return _noted(run, stage, round_number, self.gate, Verdict(False, why), [])
        replies = {t.seat: t.text or "" for t in run.previous_turns(stage.checks or "") if t.ok}
        objecting = {seat: replies.get(seat, "") for seat in tally.dissenters}
        distinct = _distinct(objecting, run.similarity, stage.objection_overlap)
        agreed = [b.seat for b in tally.ballots if b.valid and b.stance == tally.winner]
        fired = len(distinct) < quota and bool(agreed)
        reading.chosen = agreed if fired else []
        said = (
            f"{len(distinct)} non-overlapping objection(s) to '{tally.winner}' "
            f"({', '.join(distinct) or 'none'}; {len(objecting)} objecting), quota {quota}"
        )
        state = f": dissent asked of {', '.join(agreed)}" if fired else ": quota met"
        if len(distinct) < quota and not agreed:
            state = ": no one agreed to ask"
        verdict = Verdict(fired, said + state)
        return _noted(run, stage, round_number, self.gate, verdict, reading.chosen)


class HemlockCondition(GuardCondition):
    gate = "anti_recursion"

    def applies(self, stage: GuardStage) -> bool:
        return stage.hemlock_against is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.chosen, reading.questions = [], []
        watched, earlier = stage.watches or "", stage.hemlock_against or ""
        questioners = run.questioners
        latest = {t.seat: t for t in run.previous_turns(watched) if t.ok}
        answered_by = [seat for seat in latest if seat not in questioners]
        reads_it = earlier in run.stage_of(watched).sees
        if not questioners:
            verdict = Verdict(False, "no questioner on the panel")
        elif not (reads_it and answered_by):
            verdict = Verdict(False, f"no member has answered '{earlier}' in '{watched}' yet")
        else:
            for seat in questioners:
                asked = [
                    q
                    for t in run.previous_turns(earlier)
                    if t.seat == seat and t.ok
                    for q in questions(t.text)
                ]
                again = [
                    q
                    for q in questions(latest[seat].text if seat in latest else "")
                    if any(run.similarity(q, old) >= stage.question_overlap for old in asked)
                ]
                if again:
                    reading.chosen.append(seat)
                    reading.questions += again
            shown = "; ".join(f'"{q}"' for q in reading.questions)
            verdict = Verdict(
                bool(reading.chosen),
                f"{', '.join(reading.chosen)} re-asked a question answered since '{earlier}': "
                f"{shown}"
                if reading.chosen
                else f"{', '.join(questioners)} asked nothing already answered since '{earlier}'",
            )
        return _noted(run, stage, round_number, self.gate, verdict, list(reading.chosen))


def _coverage(question: str, reply: str) -> float:
    """The share of the question's words of four or more letters that the reply uses."""
    wanted = set(_WORD.findall(question.lower()))
    return len(wanted & set(_WORD.findall(reply.lower()))) / len(wanted) if wanted else 1.0


def restatement(
    run: gates.GateRun,
    stage: SpeakingStage,
    turns: Sequence[Turn],
    round_number: int,
    question: str,
    similarity: Callable[[str, str], float] | None,
) -> None:
    """Flag replies far from the question (``diverges_below``); ``similarity`` None: words."""
    line = stage.diverges_below or 0.0
    measure = similarity or _coverage
    method = "word coverage of the question" if similarity is None else "similarity"
    scores = {t.seat: measure(question, t.text or "") for t in turns if t.ok}
    far = [seat for seat, score in scores.items() if score < line]
    shown = ", ".join(f"{seat} {scores[seat]:.2f}" for seat in far)
    run.record_gate(
        GateNote(
            stage=stage.id,
            round=round_number,
            gate="restatement",
            fired=bool(far),
            seats=far,
            threshold=line,
            measured=round(min(scores.values()), 4) if scores else None,
            method=method,
            reason=(
                f"restatement far from the question ({shown}; {method} below {line:.2f}): "
                "it may reveal a framing issue worth settling before the deliberation"
                if far
                else f"every restatement near the question ({method} {line:.2f}+)"
            ),
        )
    )


register_guard_condition(DissentQuotaCondition())
register_guard_condition(HemlockCondition())
