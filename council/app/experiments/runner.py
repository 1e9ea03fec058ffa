"""Running an experiment: units of (arm, question, sample), resumable, then measured.

Every unit is one council run recorded under ``OUT/runs``; ``OUT/units.jsonl`` journals each
unit's outcome, so running the same command again skips the units that completed and retries
those that failed (a missing extra, a model that was down). Voices sampled outside a council
(the same model with no persona: the no-persona baseline, the pole drift is measured toward)
go to ``OUT/voices.jsonl`` the same way. Units run in process or on a Ray cluster
(``executors.py``); either way the driver records each finished unit in ``OUT/runs``'s ledger.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.app.experiments.executors import Executor, make_executor
from council.app.experiments.folder import check_plan, json_rows
from council.app.experiments.units import (
    CouncilUnit,
    Unit,
    UnitOutcome,
    VoiceUnit,
    run_unit,
)
from council.app.voices import ASSISTANT_SYSTEM_PROMPT, first_prompt
from council.base.errors import ConfigError
from council.personas.library import find_persona
from council.protocols.library import find_protocol
from council.records.events import Event, RunStarted, parse_event
from council.seats.gate import ProviderLimit
from council.seats.routing import route
from council.store.folder import RunFolder
from council.store.ledger import Ledger
from council.store.recorder import RunRecorder


@dataclass(frozen=True)
class Arm:
    """One condition: which personas sit, on which models. With several models, polarity pairs
    are routed onto different model families; with one, every seat shares it. ``models`` and
    ``personas`` take one name or a list. ``context``: documents every council of the arm is
    given as evidence (files, folders, globs), so two arms alike but for it measure whether
    grounding narrows diversity."""

    name: str
    models: list[str]
    personas: list[str]
    context: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # frozen: the normalised lists are set through object.__setattr__
        for attribute in ("models", "personas"):
            value = getattr(self, attribute)
            names = [value] if isinstance(value, str) else list(value)
            if not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise ConfigError(f"arm '{self.name}': {attribute} must be one or more names")
            object.__setattr__(self, attribute, names)
        object.__setattr__(self, "context", [str(path) for path in self.context])
        if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
            raise ConfigError(f"an arm needs a name without '/', got {self.name!r}")


def experiment_kind(arms: list[Arm]) -> str:
    """What the arms vary: ``diversity`` (the same cards on different models), ``variants``
    (different cards on the same models), or ``mixed``."""
    if all(arm.personas == arms[0].personas for arm in arms):
        return "diversity"
    if all(arm.models == arms[0].models for arm in arms):
        return "variants"
    return "mixed"


@dataclass
class ExperimentPlan:
    arms: list[Arm]
    questions: list[str]
    samples: int
    out: Path
    protocol: str = "council"
    max_tokens: int = 80
    temperature: float = 0.8
    # Answers with no persona per model and question: the drift pole's sample. 8 so that a
    # reference is never one or two stray answers.
    baseline_samples: int = 8
    # Every arm gets a placebo twin: its first persona... in every seat, seated and seeded as
    # the arm, so the floor differs from the arm only in who sits.
    placebo: bool = True
    endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arms:
            raise ConfigError("an experiment needs at least one arm")
        if len({arm.name for arm in self.arms}) != len(self.arms):
            raise ConfigError("arm names must differ")
        if not self.questions:
            raise ConfigError("an experiment needs at least one question")
        if self.samples < 1:
            raise ConfigError(f"samples must be at least 1, got {self.samples}")

    @property
    def kind(self) -> str:
        return experiment_kind(self.arms)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            # An arm without context documents is written as before it could have them.
            "arms": [
                {k: v for k, v in vars(arm).items() if v or k != "context"} for arm in self.arms
            ],
            "questions": self.questions,
            "samples": self.samples,
            "protocol": self.protocol,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "baseline_samples": self.baseline_samples,
            "placebo": self.placebo,
        }


def read_questions(path: Path | str) -> list[str]:
    """One question per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read questions: {exc}") from None
    questions = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not questions:
        raise ConfigError(f"{path}: no questions (one per line)")
    return questions


class _Journal:
    """An append-only JSONL file of unit outcomes, read back to skip the units that completed;
    a later row for a unit supersedes an earlier one (a retry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.done: set[str] = set()
        for row in json_rows(path):
            self._note(row)

    def _note(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        # Rows written before failures were journalled have no status for voices: done.
        if row.get("status", "completed") == "completed":
            self.done.add(row["unit"])
        else:
            self.done.discard(row["unit"])

    def failed(self, unit: str) -> bool:
        return unit not in self.done and any(row["unit"] == unit for row in self.rows)

    def add(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        self._note(row)


Progress = Callable[[str], None]


def run_plan(
    plan: ExperimentPlan,
    progress: Progress = lambda _: None,
    *,
    retry_failed: bool = True,
    executor: str | Executor | None = None,
    ray_address: str | None = None,
    rate_limits: Mapping[str, ProviderLimit] | None = None,
) -> dict[str, Any]:
    """Run every unit not yet completed (and, unless ``retry_failed`` is false, every unit that
    failed before); returns counts of what ran, what was skipped and what failed.

    ``executor`` is where units run: ``"in-process"`` (the default), ``"ray"`` (a cluster at
    ``ray_address``; None starts a local one), or an ``Executor``. ``rate_limits`` holds the
    calls to each named provider (or model) under its requests and tokens per minute.
    """
    check_plan(plan.out, plan.to_json())
    protocol = find_protocol(plan.protocol)
    journals = {
        "units": _Journal(plan.out / "units.jsonl"),
        "voices": _Journal(plan.out / "voices.jsonl"),
    }
    councils = council_units(plan)
    # The no-persona voices first: few and quick, and every unit's drift needs them.
    todo: list[Unit] = [*_todo(voice_units(plan, protocol), journals["voices"], retry_failed)]
    pending = _todo(councils, journals["units"], retry_failed)
    skipped = len(councils) - len(pending)
    todo += pending
    runs_dir = plan.out / "runs"
    ledger = Ledger.in_folder(runs_dir)
    chosen = make_executor(executor, address=ray_address, rate_limits=rate_limits)
    ran = failed = 0
    try:
        ledger.reserve()
        for outcome in chosen.map(run_unit, todo):
            _record(outcome, ledger, runs_dir, journals[outcome.journal])
            ran += 1
            status = outcome.row.get("status", "completed")
            failed += status != "completed"
            unit, detail = outcome.row["unit"], outcome.row.get("error")
            if outcome.journal == "units":
                done = len(journals["units"].done)
                detail = detail or f"{outcome.wall_s:.1f} s"
                progress(f"{done}/{len(councils)} {unit}: {status} ({detail})")
            else:
                progress(f"voices {unit}" + (f": failed ({detail})" if detail else ""))
    finally:
        chosen.close()
        ledger.close()
    return {"ran": ran, "skipped": skipped, "failed": failed}


def _todo(units: Sequence[Unit], journal: _Journal, retry_failed: bool) -> list[Unit]:
    """The units not yet completed; those that failed before only when retrying them."""
    return [
        u
        for u in units
        if u.unit not in journal.done and (retry_failed or not journal.failed(u.unit))
    ]


def _record(outcome: UnitOutcome, ledger: Ledger, runs_dir: Path, journal: _Journal) -> None:
    """A finished unit onto the record: its run's events into the ledger and the run's
    folder (as a live run would have written them), then its row into the journal, last, so
    a unit in the journal is always whole in the ledger."""
    row = dict(outcome.row)
    if outcome.events:
        folder = runs_dir / row["run_id"]
        recorder = RunRecorder(ledger, followers=[RunFolder(folder)])
        for line in outcome.events:
            recorder.handle(_here(parse_event(line), folder))
        recorder.close()
        row = {**row, "run_dir": str(folder)}
    journal.add(row)


def _here(event: Event, folder: Path) -> Event:
    """A run convened elsewhere names the folder it is recorded in here."""
    if isinstance(event, RunStarted):
        header = event.header.model_copy(update={"run_dir": str(folder)})
        return event.model_copy(update={"header": header})
    return event


PLACEBO_SUFFIX = "~placebo"


def placebo_arm(arm: str) -> str:
    """The name of an arm's placebo twin in units and summaries."""
    return f"{arm}{PLACEBO_SUFFIX}"


def council_units(plan: ExperimentPlan) -> list[CouncilUnit]:
    """Every council of the plan, question by question (so an experiment stopped early holds
    whole questions, the unit of inference), sample by sample, arm by arm; with
    ``plan.placebo``, each arm unit followed by its placebo twin: one of the arm's personas (in
    turn) in every seat, each seat on the model the arm's seat of that place sits on, with the
    arm unit's sampling and label seeds."""
    seating = {arm.name: arm_seat_models(arm) for arm in plan.arms} if plan.placebo else {}
    units: list[CouncilUnit] = []
    for q, question in enumerate(plan.questions):
        for s in range(plan.samples):
            for arm in plan.arms:
                unit = CouncilUnit(
                    unit=f"{arm.name}/q{q}/s{s}",
                    arm=arm.name,
                    personas=tuple(arm.personas),
                    models=tuple(arm.models),
                    question_index=q,
                    question=question,
                    sample=s,
                    protocol=plan.protocol,
                    max_tokens=plan.max_tokens,
                    temperature=plan.temperature,
                    endpoints=tuple(sorted(plan.endpoints.items())),
                    context=tuple(arm.context),  # its placebo twin is given the same
                )
                units.append(unit)
                if plan.placebo:
                    who = arm.personas[(q * plan.samples + s) % len(arm.personas)]
                    units.append(
                        dataclasses.replace(
                            unit,
                            unit=f"{placebo_arm(arm.name)}/q{q}/s{s}",
                            arm=placebo_arm(arm.name),
                            personas=(who,),
                            seat_models=seating[arm.name],
                            label_seed=unit.unit,
                        )
                    )
    return units


def arm_seat_models(arm: Arm) -> tuple[str, ...]:
    """The model each of the arm's seats sits on, in seating order, as ``Council`` routes it."""
    if len(arm.models) == 1:
        return (arm.models[0],) * len(arm.personas)
    chosen = {
        c.persona: c.model for c in route([find_persona(p) for p in arm.personas], arm.models)
    }
    return tuple(chosen[find_persona(p).name] for p in arm.personas)


def voice_units(plan: ExperimentPlan, protocol: Any) -> list[VoiceUnit]:
    """The voices sampled outside councils: the no-persona baseline (the assistant, for
    drift) on every model of the plan, per question. (The floor is the placebo arm.)"""
    models = sorted({m for arm in plan.arms for m in arm.models})
    return [
        VoiceUnit(
            unit=f"assistant/{model}/q{q}/assistant",
            kind="assistant",
            model=model,
            question_index=q,
            who="assistant",
            system=ASSISTANT_SYSTEM_PROMPT,
            prompt=first_prompt(protocol, question),
            k=plan.baseline_samples,
            max_tokens=plan.max_tokens,
            temperature=plan.temperature,
            seed=q * 100,
            endpoints=tuple(sorted(plan.endpoints.items())),
        )
        for q, question in enumerate(plan.questions)
        for model in models
        if plan.baseline_samples > 0
    ]
