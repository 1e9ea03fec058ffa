"""The guard stage kind: a stage that runs only when one of its conditions holds.

Conditions are registered, one class each, and a guard runs when any that applies fires:

- **vote** (``checks`` + ``agreement_above`` / ``dissenters_below``): the checked vote agrees
  too easily or has too few dissenters. ``seats: dissenters`` seats the likely dissenters.
- **diversity** (``watches`` + ``diversity_below``): the mean pairwise embedding distance of
  the watched stage's replies is below a stated threshold or the run's *noise floor*: the
  distance among ``baseline_samples`` answers each panel model gives to the same prompt with
  no persona, i.e. the diversity that sampling alone produces. Below it the seats' differences
  are noise, and a devil's-advocate round is in order.
- **drift** (``watches`` + ``drift_above``): a seat's reply lies past the cap on the axis from
  its card's own voice (0) to the same model's no-persona voice (1), by embeddings, or by the
  seat's recorded activations on an assistant axis where it has them. ``seats: drifting``
  seats only those seats, to re-anchor them with their card (``{{ card.description }}``, ...).

The engine sits below the diversity meter, so it measures through a ``DiversityProbe`` the
application injects (``council.app.probe``); without one, a meter condition does not fire and
says why. Every meter condition records a ``gate_checked`` note with what it measured and the
line it held it to. The baseline answers are sampled once per watched stage, round and model,
through the seats' own models (within the run's budget and concurrency limits), and are not
turns of the run: they are no persona's words.
"""

from __future__ import annotations

import asyncio
import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from council.engine import gates
from council.engine.stage_kinds import RunState, StageKind, register_stage_kind
from council.protocols.spec import NOISE_FLOOR, GuardStage, SpeakingStage
from council.records.run import GateNote, Turn
from council.seats.seat import Seat

NO_PROBE = "no embedder to measure with (the bundled all-MiniLM-L6-v2 is not installed)"


class DiversityProbe(Protocol):
    """What the guard needs of the diversity meter, which sits above the engine."""

    @property
    def name(self) -> str: ...  # the embedder, for the record

    def diversity(self, texts: Sequence[str]) -> float:
        """Mean pairwise cosine distance of two or more texts (0 = all the same)."""
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
    drifting: dict[str, float] = field(default_factory=dict)  # seat -> drift position


@dataclass(frozen=True)
class Verdict:
    fired: bool
    reason: str


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


class GuardCondition(ABC):
    """One reason a guard may run: registered once, asked of every guard it applies to."""

    gate = ""  # the name its gate notes carry

    @abstractmethod
    def applies(self, stage: GuardStage) -> bool: ...

    @abstractmethod
    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        """Whether the guard should run, and why; a measuring condition records a gate note."""


_CONDITIONS: list[GuardCondition] = []


def register_guard_condition(condition: GuardCondition) -> None:
    _CONDITIONS.append(condition)


class VoteCondition(GuardCondition):
    gate = "vote"

    def applies(self, stage: GuardStage) -> bool:
        return stage.checks is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        tally = run.tallies.get(stage.checks or "")
        if tally is None:
            return Verdict(False, f"no tally from '{stage.checks}' to check")
        if tally.winner is None:
            return Verdict(False, f"'{stage.checks}' has no leading stance: the council is split")
        agreement, dissenters = tally.agreement or 0, len(tally.dissenters)
        fired = (stage.agreement_above is not None and agreement > stage.agreement_above) or (
            stage.dissenters_below is not None and dissenters < stage.dissenters_below
        )
        state = "guard needed" if fired else "guard not needed"
        return Verdict(fired, f"agreement {agreement:.0%} and {dissenters} dissenters: {state}")


def _replies(run: GuardRun, stage: GuardStage) -> list[Turn]:
    """The watched stage's answered panel turns, in its latest round."""
    panel = {seat.name for seat in run.panel}
    return [
        t for t in run.previous_turns(stage.watches or "")
        if t.ok and (t.content or "").strip() and t.seat in panel
    ]  # fmt: skip


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


async def noise_floor(
    run: GuardRun, stage: GuardStage, turns: Sequence[Turn], probe: DiversityProbe
) -> tuple[float | None, str]:
    """The mean, over the panel's models, of the distance among each one's no-persona
    answers; with what it was made of, or why there is none."""
    voices = await assistant_voice(run, stage, turns)
    floors = {m: probe.diversity(texts) for m, texts in voices.items() if len(texts) >= 2}
    if not floors:
        return None, "noise floor unmeasured: fewer than two no-persona answers per model"
    each = ", ".join(f"{model} {value:.3f}" for model, value in sorted(floors.items()))
    samples = max(len(texts) for texts in voices.values())
    return statistics.fmean(floors.values()), f"{samples} no-persona answers per model: {each}"


class DiversityCondition(GuardCondition):
    gate = "diversity"

    def applies(self, stage: GuardStage) -> bool:
        return stage.diversity_below is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        turns, probe = _replies(run, stage), run.probe
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.diversity = reading.threshold = None  # nothing stale from an earlier round
        if probe is None or len(turns) < 2:
            why = NO_PROBE if probe is None else f"fewer than two replies in '{stage.watches}'"
            return self._record(run, stage, round_number, Verdict(False, f"unmeasured: {why}"))
        value = probe.diversity([t.content or "" for t in turns])
        if stage.diversity_below == NOISE_FLOOR:
            threshold, source = await noise_floor(run, stage, turns, probe)
            if threshold is None:
                return self._record(run, stage, round_number, Verdict(False, source), value)
            line = f"the noise floor {threshold:.3f} ({source})"
        else:
            threshold = float(cast(float, stage.diversity_below))
            line = f"the stated threshold {threshold:.3f}"
        reading.diversity, reading.threshold = value, threshold
        fired = value < threshold
        verdict = Verdict(fired, (
            f"diversity of '{stage.watches}' {value:.3f} (mean pairwise distance of "
            f"{len(turns)} replies, {probe.name}) is {'below' if fired else 'not below'} {line}"
        ))  # fmt: skip
        return self._record(run, stage, round_number, verdict, value, threshold)

    def _record(
        self, run: GuardRun, stage: GuardStage, round_number: int, verdict: Verdict,
        measured: float | None = None, threshold: float | None = None,
    ) -> Verdict:  # fmt: skip
        run.record_gate(GateNote(
            stage=stage.id, round=round_number, gate=self.gate, fired=verdict.fired,
            reason=verdict.reason, measured=_rounded(measured), threshold=_rounded(threshold),
        ))  # fmt: skip
        return verdict


class DriftCondition(GuardCondition):
    gate = "drift"

    def applies(self, stage: GuardStage) -> bool:
        return stage.drift_above is not None

    async def check(self, run: GuardRun, stage: GuardStage, round_number: int) -> Verdict:
        turns, probe, cap = _replies(run, stage), run.probe, float(stage.drift_above or 0)
        reading = run.readings.setdefault(stage.id, GuardReading())
        reading.drifting = {}
        positions: dict[str, tuple[float, str]] = {}
        if probe is not None and turns:
            voices = await assistant_voice(run, stage, turns)
            for turn in turns:
                seat = run.seats[turn.seat]
                found = probe.drift(seat, turn, voices.get(seat.model.model, []))
                if found is not None:
                    positions[turn.seat] = found
        if not positions:
            why = NO_PROBE if probe is None else f"no reply in '{stage.watches}' could be placed"
            note = GateNote(stage=stage.id, round=round_number, gate=self.gate, fired=False,
                            reason=f"unmeasured: {why}", threshold=cap)  # fmt: skip
            run.record_gate(note)
            return Verdict(False, note.reason)
        shown = ", ".join(f"{seat} {_two(p)} ({how})" for seat, (p, how) in positions.items())
        reading.drifting = {seat: p for seat, (p, _) in positions.items() if p > cap}
        fired = bool(reading.drifting)
        reason = (
            f"{', '.join(reading.drifting)} past the drift cap {cap:.2f} ({shown})"
            if fired else f"every seat within the drift cap {cap:.2f} ({shown})"
        )  # fmt: skip
        run.record_gate(GateNote(
            stage=stage.id, round=round_number, gate=self.gate, fired=fired,
            seats=list(reading.drifting), reason=reason, threshold=cap,
            measured=_rounded(max(p for p, _ in positions.values())),
        ))  # fmt: skip
        return Verdict(fired, reason)


def _two(value: float) -> str:
    return f"{value + 0.0 if abs(value) >= 0.005 else 0.0:.2f}"  # never "-0.00"


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
            "diversity": "unmeasured" if reading.diversity is None else f"{reading.diversity:.3f}",
            "diversity_floor": "unmeasured"
            if reading.threshold is None
            else f"{reading.threshold:.3f}",
            "drifting": drifting or "none",
        }

    async def skip_reason(
        self, run: RunState, stage: SpeakingStage, round_number: int
    ) -> str | None:
        assert isinstance(stage, GuardStage)
        guard_run = cast(GuardRun, run)
        verdicts = [
            await condition.check(guard_run, stage, round_number)
            for condition in _CONDITIONS
            if condition.applies(stage)
        ]
        if not any(v.fired for v in verdicts):
            return "; ".join(v.reason for v in verdicts)
        reading = guard_run.readings.get(stage.id)
        if stage.seats == "drifting" and not (reading and reading.drifting):
            return "no seat drifted past the cap: " + "; ".join(v.reason for v in verdicts)
        return None

    def seats(self, run: RunState, stage: SpeakingStage, chosen: list[Seat]) -> list[Seat]:
        assert isinstance(stage, GuardStage)
        panel = [seat.name for seat in chosen]
        if stage.seats == "dissenters":
            names = gates.likely_dissenters(run.tallies.get(stage.checks or ""), panel)
        elif stage.seats == "drifting":
            reading = cast(GuardRun, run).readings.get(stage.id, GuardReading())
            names = [name for name in panel if name in reading.drifting]
        else:
            return chosen
        return [run.seats[name] for name in names]


register_guard_condition(VoteCondition())
register_guard_condition(DiversityCondition())
register_guard_condition(DriftCondition())
register_stage_kind("guard", GuardKind())
