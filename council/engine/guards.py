"""The guard stage kind: a stage that runs only when one of its conditions holds.

Conditions are registered, one class each, and a guard runs when any that applies fires:

- **vote** (``checks`` + ``agreement_above`` / ``dissenters_below``): the checked vote agrees
  too easily or has too few dissenters. ``seats: dissenters`` seats the likely dissenters.
- **diversity** (``watches`` + ``diversity_below``): the watched stage's replies are no more
  diverse than a stated threshold (their mean pairwise embedding distance below it), or are not
  shown to be more diverse than the *no-persona baseline*: ``baseline_samples`` answers each
  panel model gives to the same prompt under the plain assistant prompt, i.e. the diversity
  that sampling alone produces. Then the seats' differences may be noise, and a
  devil's-advocate round is in order.
- **drift** (``watches`` + ``drift_above``): a seat's reply lies past the cap on the axis from
  its card's own voice (0) to the same model's no-persona voice (1), by embeddings, or by the
  seat's recorded activations on an assistant axis where it has them. ``seats: drifting``
  seats only those seats, to re-anchor them with their card (``{{ card.description }}``, ...).

The engine sits below the diversity meter, so it measures through a ``DiversityProbe`` the
application injects (``council.app.probe``); without one, a meter condition does not fire and
says why. Every meter condition records a ``gate_checked`` note with what it measured and the
line it held it to. The baseline answers are sampled once per watched stage, round and model,
through the seats' own models (within the run's budget and concurrency limits), and are not
turns of the run: they are no persona's words. Replies and answers shorter than
``MIN_REPLY_CHARACTERS`` are left out of every measure, and the note counts them.

**Against the baseline, a test, not two point values.** A stage of m replies is tested
one-sided against its models' no-persona answers (``council.meter.baseline``: relabelling
the stage's replies with the answers, per model, so the floor matches the stage's pair types).
The guard *fires unless the replies are shown to be more diverse than the baseline* (p <= the
guard's ``baseline_alpha``, 0.05 by default), rather than only when they are shown to be less
diverse. The claim a council makes by seating different personas is that they differ by more
than sampling does; the guard asks for that claim to be shown before it stands down. The other
reading ("significantly below") fires only on seats clearly *less* diverse than sampling, and
stays silent (in 95% of stages) on seats that merely resample their model: the very echo the
guard is for, and the case where evidence is thinnest. A missed echo costs a verdict built on
one voice; a needless devil's advocate costs one round. So under the null the guard fires
about 1 - alpha of the time, by design. The note records the stage's distance, the floor's mean and
its 5th to 95th percentile, p, alpha and the method. When a model has fewer answers than the
stage has seats on it, or the relabellings are too few for p to reach alpha, the guard says
"unmeasured" and does not fire: a test that cannot pass measures nothing.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from council.engine import gates
from council.engine.stage_kinds import RunState, StageKind, register_stage_kind
from council.protocols.spec import BASELINE, GuardStage, SpeakingStage
from council.records.measurable import MIN_REPLY_CHARACTERS, measurable
from council.records.run import GateNote, Turn
from council.seats.seat import Seat

NO_PROBE = "no embedder to measure with (the bundled all-MiniLM-L6-v2 is not installed)"


class BaselineReading(Protocol):
    """What a guard reads of the meter's test of a stage against the no-persona baseline
    (``council.meter.baseline.BaselineTest``)."""

    @property
    def measured(self) -> float: ...  # the stage's mean pairwise distance
    @property
    def floor(self) -> float: ...  # the baseline's, over the stage's pair types
    @property
    def floor_low(self) -> float: ...  # 5th percentile over m-answer baseline subsets
    @property
    def floor_high(self) -> float: ...  # 95th percentile
    @property
    def p_value(self) -> float: ...  # one-sided: small when the stage is above the floor
    @property
    def relabellings(self) -> int: ...
    @property
    def smallest_p(self) -> float: ...  # the least p this many relabellings can give
    @property
    def method(self) -> str: ...


class DiversityProbe(Protocol):
    """What the guard needs of the diversity meter, which sits above the engine."""

    @property
    def name(self) -> str: ...  # the embedder, for the record

    def diversity(self, texts: Sequence[str]) -> float:
        """Mean pairwise cosine distance of two or more texts (0 = all the same)."""
        ...

    def against_baseline(
        self, replies: Sequence[tuple[str, str]], baseline: Mapping[str, Sequence[str]]
    ) -> BaselineReading:
        """The one-sided test of ``replies`` ((model, text) pairs) against ``baseline`` (model
        -> its no-persona answers, at least as many as the replies on that model)."""
        ...

    def drift(self, seat: Seat, turn: Turn, assistant: Sequence[str]) -> tuple[float, str] | None:
        """The turn's drift position (0 = the seat's card, 1 = ``assistant``, its model's
        no-persona answers) and how it was measured ("embedding", "activation"); None when
        it cannot be measured."""
        ...


@dataclass
class GuardReading:
    """What a guard measured in its latest check, for its prompt and its seats."""

    diversity: float | None = None
    threshold: float | None = None
    p_value: float | None = None  # against the no-persona baseline
    drifting: dict[str, float] = field(default_factory=dict)  # seat -> drift position
    chosen: list[str] = field(default_factory=list)  # seats: agreed / questioner pick these
    questions: list[str] = field(default_factory=list)  # the hemlock rule's re-asked questions
    fired_by: str | None = None  # the enforcement tag of the condition that ran the guard


@dataclass(frozen=True)
class Verdict:
    fired: bool
    reason: str
    tag: str | None = None  # the enforcement rule a firing enforces (default: the gate's name)


class GuardRun(gates.GateRun, Protocol):
    """What a guard reads of the run (the engine's ``Deliberation``)."""

    @property
    def panel(self) -> list[Seat]: ...

    @property
    def probe(self) -> DiversityProbe | None: ...

    @property
    def readings(self) -> dict[str, GuardReading]: ...  # guard stage -> its latest reading

    @property
    def baselines(self) -> dict[tuple[str, int, str, int], asyncio.Task[list[str]]]: ...

    async def sample_assistant(
        self, stage: SpeakingStage, seat: Seat, round_number: int, count: int
    ) -> list[str]: ...

    def stage_of(self, stage_id: str) -> SpeakingStage: ...

    @property
    def questioners(self) -> list[str]: ...  # the panel's questioner seats (the hemlock rule)


class GuardCondition(ABC):
    """One reason a guard may run: registered once, asked of every guard it applies to."""

    gate = ""  # the name its gate notes carry, and the tag its dispatches are counted under

    @abstractmethod
    def applies(self, stage: GuardStage) -> bool: ...

    @abstractmethod
    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        """Whether the guard should run, and why; a measuring condition records a gate note."""


_CONDITIONS: list[GuardCondition] = []


def register_guard_condition(condition: GuardCondition) -> None:
    _CONDITIONS.append(condition)


class VoteCondition(GuardCondition):
    """nyk's agreement check: the checked vote agrees too easily (or too few dissent)."""

    gate = "agreement_check"

    def applies(self, stage: GuardStage) -> bool:
        return stage.agreement_above is not None or stage.dissenters_below is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        tally = run.tallies.get(stage.checks or "")
        if tally is None:
            return Verdict(False, f"no tally from '{stage.checks}' to check")
        if tally.winner is None:
            return Verdict(False, f"'{stage.checks}' has no leading stance: the council is split")
        agreement, dissenters = tally.agreement or 0, len(tally.dissenters)
        agrees = stage.agreement_above is not None and agreement > stage.agreement_above
        quota = stage.dissenters_below is not None and dissenters < stage.dissenters_below
        fired = agrees or quota
        state = "guard needed" if fired else "guard not needed"
        # nyk's STEP 4 tags: agreement past the bar is agreement_check, too few dissenters
        # dissent_quota; a guard that both fire runs once and counts once.
        tag = "agreement_check" if agrees else "dissent_quota"
        return Verdict(
            fired, f"agreement {agreement:.0%} and {dissenters} dissenters: {state}", tag
        )


def _replies(run: GuardRun, stage: GuardStage) -> tuple[list[Turn], int]:
    """The watched stage's answered panel turns in its latest round that are long enough to
    measure, and how many answered too briefly to be."""
    panel = {seat.name for seat in run.panel}
    answered = [
        t
        for t in run.previous_turns(stage.watches or "")
        if t.ok and (t.text or "").strip() and t.seat in panel
    ]
    kept = [t for t in answered if measurable(t.text)]
    return kept, len(answered) - len(kept)


async def assistant_voice(
    run: GuardRun, stage: GuardStage, turns: Sequence[Turn]
) -> dict[str, list[str]]:
    """Model -> its no-persona answers to the watched stage's prompt, as its first seat there
    saw it; sampled once per stage, round, model and sample count, however many guards ask."""
    watched = run.stage_of(stage.watches or "")
    first_seat: dict[str, Seat] = {}
    for turn in turns:
        seat = run.seats[turn.seat]
        first_seat.setdefault(seat.model.model, seat)
    tasks = {}
    for model, seat in first_seat.items():
        key = (watched.id, turns[0].round, model, stage.baseline_samples)
        if key not in run.baselines:
            sampling = run.sample_assistant(watched, seat, key[1], key[3])
            run.baselines[key] = asyncio.ensure_future(sampling)
        tasks[model] = run.baselines[key]
    return {model: [a for a in await task if a.strip()] for model, task in tasks.items()}


def _long_enough(voices: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], int]:
    """The answers long enough to measure, per model, and how many were not."""
    kept = {model: [a for a in answers if measurable(a)] for model, answers in voices.items()}
    return kept, sum(len(voices[m]) - len(kept[m]) for m in voices)


def _left_out(short: int, what: str) -> str:
    """``what`` is the singular: "reply", "answer"."""
    if not short:
        return ""
    noun = what if short == 1 else ("replies" if what == "reply" else f"{what}s")
    return f"; {short} {noun} under {MIN_REPLY_CHARACTERS} characters left out"


def _answers(voices: Mapping[str, Sequence[str]]) -> str:
    sizes = {len(answers) for answers in voices.values()}
    if len(sizes) == 1:
        return f"{sizes.pop()} no-persona answers per model"
    return "no-persona answers: " + ", ".join(f"{len(a)} of {m}" for m, a in sorted(voices.items()))


class DiversityCondition(GuardCondition):
    """Fires when the watched stage is below a stated threshold, or is not shown to be more
    diverse than the no-persona baseline (the module's docstring says why that reading)."""

    gate = "diversity"

    def applies(self, stage: GuardStage) -> bool:
        return stage.diversity_below is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        (turns, short), probe = _replies(run, stage), run.probe
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.diversity = reading.threshold = reading.p_value = None  # nothing stale
        if probe is None or len(turns) < 2:
            why = (
                NO_PROBE
                if probe is None
                else (
                    f"fewer than two replies in '{stage.watches}' to measure"
                    f"{_left_out(short, 'reply')}"
                )
            )
            return self._record(run, stage, round_number, Verdict(False, f"unmeasured: {why}"))
        value = probe.diversity([t.text or "" for t in turns])
        what = (
            f"diversity of '{stage.watches}' {value:.3f} (mean pairwise distance of "
            f"{len(turns)} replies, {probe.name}{_left_out(short, 'reply')})"
        )
        if stage.diversity_below == BASELINE:
            return await self._against_baseline(run, stage, round_number, turns, value, what)
        threshold = float(cast(float, stage.diversity_below))
        reading.diversity, reading.threshold = value, threshold
        # A stated line is a number with no sampling error: a point comparison is the test.
        fired = value < threshold
        state = "below" if fired else "not below"
        verdict = Verdict(fired, f"{what} is {state} the stated threshold {threshold:.3f}")
        return self._record(run, stage, round_number, verdict, measured=value, threshold=threshold)

    async def _against_baseline(
        self,
        run: GuardRun,
        stage: GuardStage,
        round_number: int,
        turns: list[Turn],
        value: float,
        what: str,
    ) -> Verdict:
        probe = cast(DiversityProbe, run.probe)
        voices, short = _long_enough(await assistant_voice(run, stage, turns))
        models = [run.seats[t.seat].model.model for t in turns]
        lacking = [
            f"at least {m} no-persona answers of {model}, has {len(voices.get(model, []))}"
            for model, m in Counter(models).items()
            if len(voices.get(model, [])) < m
        ]
        alpha = stage.baseline_alpha
        if lacking:
            why = (
                f"unmeasured against the no-persona baseline: {what}, but the test needs "
                f"{'; '.join(lacking)} (baseline_samples: {stage.baseline_samples}"
                f"{_left_out(short, 'answer')})"
            )
            verdict = Verdict(False, why)
            return self._record(run, stage, round_number, verdict, measured=value, alpha=alpha)
        test = probe.against_baseline(
            [(model, t.text or "") for model, t in zip(models, turns, strict=True)], voices
        )
        spread = (
            f"the no-persona baseline {test.floor:.3f} (5th to 95th percentile of "
            f"{len(turns)}-answer subsets {test.floor_low:.3f} to {test.floor_high:.3f}; "
            f"{_answers(voices)}{_left_out(short, 'answer')})"
        )
        numbers = dict(
            measured=test.measured,
            threshold=test.floor,
            floor_low=test.floor_low,
            floor_high=test.floor_high,
            alpha=alpha,
            method=test.method,
        )
        if test.smallest_p > alpha:
            why = (
                f"unmeasured: {what} against {spread}: {test.relabellings} relabellings cannot "
                f"give p <= {alpha:g}; raise baseline_samples"
            )
            return self._record(run, stage, round_number, Verdict(False, why), **numbers)
        reading = run.readings[stage.id]
        reading.diversity, reading.threshold, reading.p_value = (
            test.measured,
            test.floor,
            test.p_value,
        )
        fired = test.p_value > alpha
        verdict = Verdict(
            fired,
            (
                f"{what} is {'not shown' if fired else 'shown'} above {spread}: p = "
                f"{test.p_value:.3f} {'>' if fired else '<='} alpha {alpha:g}, one-sided "
                f"permutation test over {test.relabellings} relabellings"
            ),
        )
        return self._record(run, stage, round_number, verdict, p_value=test.p_value, **numbers)

    def _record(
        self,
        run: GuardRun,
        stage: GuardStage,
        round_number: int,
        verdict: Verdict,
        **numbers: Any,
    ) -> Verdict:
        """Record the check as a gate note: the reason, and what was measured (distances and
        p to 4 places; alpha and the method as they are)."""
        for name in ("measured", "threshold", "floor_low", "floor_high", "p_value"):
            if name in numbers:
                numbers[name] = _rounded(numbers[name])
        run.record_gate(
            GateNote(
                stage=stage.id,
                round=round_number,
                gate=self.gate,
                fired=verdict.fired,
                reason=verdict.reason,
                **numbers,
            )
        )
        return verdict


class DriftCondition(GuardCondition):
    gate = "drift"

    def applies(self, stage: GuardStage) -> bool:
        return stage.drift_above is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        (turns, _), probe, cap = _replies(run, stage), run.probe, float(stage.drift_above or 0)
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.drifting = {}
        positions: dict[str, tuple[float, str]] = {}
        if probe is not None and turns:
            voices, _ = _long_enough(await assistant_voice(run, stage, turns))
            for turn in turns:
                seat = run.seats[turn.seat]
                found = probe.drift(seat, turn, voices.get(seat.model.model, []))
                if found is not None:
                    positions[turn.seat] = found
        if not positions:
            why = NO_PROBE if probe is None else f"no reply in '{stage.watches}' could be placed"
            note = GateNote(
                stage=stage.id,
                round=round_number,
                gate=self.gate,
                fired=False,
                reason=f"unmeasured: {why}",
                threshold=cap,
            )
            run.record_gate(note)
            return Verdict(False, note.reason)
        shown = ", ".join(f"{seat} {_two(p)} ({how})" for seat, (p, how) in positions.items())
        reading.drifting = {seat: p for seat, (p, _) in positions.items() if p > cap}
        fired = bool(reading.drifting)
        reason = (
            f"{', '.join(reading.drifting)} past the drift cap {cap:.2f} ({shown})"
            if fired
            else f"every seat within the drift cap {cap:.2f} ({shown})"
        )
        run.record_gate(
            GateNote(
                stage=stage.id,
                round=round_number,
                gate=self.gate,
                fired=fired,
                seats=list(reading.drifting),
                reason=reason,
                threshold=cap,
                measured=_rounded(max(p for p, _ in positions.values())),
            )
        )
        return Verdict(fired, reason)


def _two(value: float) -> str:
    return f"{value + 0.0 if abs(value) >= 0.005 else 0.0:.2f}"  # never "-0.00"


def _three(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.3f}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


class GuardKind(StageKind):
    def variables(self, run: RunState, stage: SpeakingStage) -> dict[str, object]:
        assert isinstance(stage, GuardStage)
        tally = run.tallies.get(stage.checks or "")
        reading = cast(GuardRun, run).readings.get(stage.id, GuardReading())
        drifting = ", ".join(f"{seat} ({_two(p)})" for seat, p in reading.drifting.items())
        return {
            "agreement": f"{(tally.agreement or 0) if tally else 0:.0%}",
            "leading": (tally.winner if tally else None) or "none",
            "dissenters": len(tally.dissenters) if tally else 0,
            "diversity": _three(reading.diversity),
            "diversity_floor": _three(reading.threshold),
            "diversity_p": _three(reading.p_value),
            "drifting": drifting or "none",
            "reasked": "; ".join(reading.questions) or "none",
        }

    async def skip_reason(
        self, run: RunState, stage: SpeakingStage, round_number: int
    ) -> str | None:
        assert isinstance(stage, GuardStage)
        guard_run = cast(GuardRun, run)
        checked = [
            (condition, await condition.check(guard_run, stage, round_number))
            for condition in _CONDITIONS
            if condition.applies(stage)
        ]
        verdicts = [verdict for _, verdict in checked]
        if not any(v.fired for v in verdicts):
            return "; ".join(v.reason for v in verdicts)
        first = next((c, v) for c, v in checked if v.fired)
        reading = guard_run.readings.setdefault(stage.id, GuardReading())
        reading.fired_by = first[1].tag or first[0].gate
        if stage.seats == "drifting" and not (reading and reading.drifting):
            return "no seat drifted past the cap: " + "; ".join(v.reason for v in verdicts)
        return None

    def enforcement_tag(self, run: RunState, stage: SpeakingStage) -> str | None:
        reading = cast(GuardRun, run).readings.get(stage.id)
        return reading.fired_by if reading else None

    def seats(self, run: RunState, stage: SpeakingStage, chosen: list[Seat]) -> list[Seat]:
        assert isinstance(stage, GuardStage)
        panel = [seat.name for seat in chosen]
        if stage.seats == "dissenters":
            names = gates.likely_dissenters(run.tallies.get(stage.checks or ""), panel)
        elif stage.seats == "drifting":
            reading = cast(GuardRun, run).readings.get(stage.id, GuardReading())
            names = [name for name in panel if name in reading.drifting]
        elif stage.seats in ("agreed", "questioner"):
            reading = cast(GuardRun, run).readings.get(stage.id, GuardReading())
            names = [name for name in panel if name in reading.chosen]
        else:
            return chosen
        return [run.seats[name] for name in names]


register_guard_condition(VoteCondition())
register_guard_condition(DiversityCondition())
register_guard_condition(DriftCondition())
register_stage_kind("guard", GuardKind())
