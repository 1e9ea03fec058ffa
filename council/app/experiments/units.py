"""One unit of an experiment, as a value that can travel to another process and back.

A unit is a council run (arm, question, sample) or a batch of voices sampled outside a council.
``run_unit`` is the one unit function: the same code runs it in process or on a Ray worker. It
stores nothing; it returns the unit's journal row and, for a council, the run's events, and
the driver records them in the experiment's one ledger. So a unit is either fully on record or
not at all, wherever it ran.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from council.app.council import Council
from council.app.voices import sample
from council.base.errors import CouncilError
from council.base.secrets import redacted_line
from council.personas.card import PersonaCard
from council.personas.library import find_persona
from council.records.events import EventList, event_json
from council.records.spec import CouncilSpec, SamplingSettings


@dataclass(frozen=True)
class CouncilUnit:
    """One council: an arm's personas on its models, on one question, with one sample seed."""

    unit: str  # "arm/q0/s1", the key that marks it done
    arm: str
    personas: tuple[str, ...]
    models: tuple[str, ...]
    question_index: int
    question: str
    sample: int
    protocol: str
    max_tokens: int
    temperature: float
    endpoints: tuple[tuple[str, str], ...] = ()
    # A placebo unit seats ``personas[0]`` in every seat, seat i on ``seat_models[i]`` (its
    # arm's seat i's model), with its arm unit's label seed: it differs only in who sits.
    seat_models: tuple[str, ...] = ()
    label_seed: str = ""
    context: tuple[str, ...] = ()  # the arm's context documents, read for each council

    @property
    def placebo(self) -> bool:
        return bool(self.seat_models)


@dataclass(frozen=True)
class VoiceUnit:
    """k answers of one model to one prompt with no council around it."""

    unit: str  # "noise/MODEL/q0/PERSONA"
    kind: str  # "assistant" or "noise"
    model: str
    question_index: int
    who: str
    system: str
    prompt: str
    k: int
    max_tokens: int
    temperature: float
    seed: int
    endpoints: tuple[tuple[str, str], ...] = ()


Unit = CouncilUnit | VoiceUnit


@dataclass
class UnitOutcome:
    """What a finished unit sends back: its journal row and its run's events (JSON lines)."""

    journal: str  # "units" or "voices"
    row: dict[str, Any]
    events: list[str] = field(default_factory=list)
    wall_s: float = 0.0


@singledispatch
def run_unit(unit: Any) -> UnitOutcome:
    raise TypeError(f"no unit function for {type(unit).__name__}")


@run_unit.register
def _council(unit: CouncilUnit) -> UnitOutcome:
    started = time.monotonic()
    row: dict[str, Any] = {
        "unit": unit.unit,
        "arm": unit.arm,
        "question": unit.question_index,
        "sample": unit.sample,
    }
    events = EventList()
    try:
        personas, seats = _seating(unit)
        council = Council.from_spec(
            unit_spec(unit, seats),
            cards=personas,
            # nyk's panel rules hold in every arm: the domain seat is locked for the unit's
            # question as the panel is seated, and no two seats share a reasoning method;
            # except in a placebo arm, one card in every seat by design (its seats are equally
            # on-domain, so it has no domain seat either way).
            question=unit.question,
            runs_dir=None,  # the driver records the events in the experiment's ledger
            sinks=[events],
        )
        # Labels seeded by the unit, not the run id: the same unit gives the same prompts.
        result = council.convene(unit.question, label_seed=unit.label_seed or unit.unit)
    except CouncilError as exc:  # a missing extra, a refused model: failed, retried next time
        row |= {"status": "failed", "error": redacted_line(exc)}
        return UnitOutcome("units", row, [], time.monotonic() - started)
    row |= {"run_id": result.run_id, "status": result.status, "wall_s": round(result.wall_s, 2)}
    failed_turns = [t for t in result.turns if t.error]
    if result.status != "completed" and failed_turns:
        row["error"] = f"{failed_turns[0].seat}: {failed_turns[0].error}"
    # Only the record travels back: the pieces of streamed replies are live, never stored.
    lines = [event_json(event) for event in events.events if event.durable]
    return UnitOutcome("units", row, lines, time.monotonic() - started)


def unit_spec(unit: CouncilUnit, seats: dict[str, str]) -> CouncilSpec:
    """The council of one unit: its arm's models and protocol, its sample's seed."""
    return CouncilSpec(
        protocol=unit.protocol,
        model=unit.models[0],
        models=list(unit.models) if len(unit.models) > 1 and not unit.placebo else [],
        seats={"chair": unit.models[0], **seats},
        endpoints=dict(unit.endpoints),
        panel_rules=not unit.placebo,
        context=list(unit.context),
        sampling=SamplingSettings(
            temperature=unit.temperature,
            seed=1000 * unit.sample + unit.question_index,
            max_tokens=unit.max_tokens,
        ),
    )


def _seating(unit: CouncilUnit) -> tuple[list[str | PersonaCard], dict[str, str]]:
    """The panel and its per-seat models: the arm's personas as named, or, for a placebo, one
    card copied into every seat (named ``NAME-placebo-2``..., the name no prompt shows), each
    copy on the model its arm's seat of that place sits on."""
    if not unit.placebo:
        return list(unit.personas), {}
    card = find_persona(unit.personas[0])
    names = [placebo_seat_name(card.name, i) for i in range(len(unit.seat_models))]
    copies: list[str | PersonaCard] = [
        card.model_copy(update={"fields": card.fields.model_copy(update={"name": name})})
        for name in names
    ]
    return copies, dict(zip(names, unit.seat_models, strict=True))


def placebo_seat_name(persona: str, place: int) -> str:
    return persona if place == 0 else f"{persona}-placebo-{place + 1}"


@run_unit.register
def _voices(unit: VoiceUnit) -> UnitOutcome:
    started = time.monotonic()
    row = {
        "unit": unit.unit,
        "kind": unit.kind,
        "model": unit.model,
        "question": unit.question_index,
        "persona": unit.who,
    }
    try:
        answers = asyncio.run(
            sample(
                unit.model,
                unit.system,
                unit.prompt,
                unit.k,
                max_tokens=unit.max_tokens,
                temperature=unit.temperature,
                seed=unit.seed,
                endpoints=dict(unit.endpoints),
            )
        )
    except CouncilError as exc:
        row |= {"answers": [], "status": "failed", "error": redacted_line(exc)}
    else:
        row |= {"answers": answers, "status": "completed"}
    return UnitOutcome("voices", row, [], time.monotonic() - started)
