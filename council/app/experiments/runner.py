"""Running an experiment: units of (arm, question, sample), resumable, then measured.

Every unit is one council run recorded under ``OUT/runs``; ``OUT/units.jsonl`` journals each
unit's outcome, so running the same command again skips the units that completed and retries
those that failed (a missing extra, a model that was down). Voices sampled outside a council
(the same persona resampled, for the noise floor; the same model with no persona, for drift)
go to ``OUT/voices.jsonl`` the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.app.council import Council
from council.app.voices import ASSISTANT_SYSTEM_PROMPT, first_prompt, sample
from council.engine.deliberation import SamplingSettings
from council.errors import ConfigError, CouncilError
from council.personas.library import find_persona
from council.personas.prompt import system_prompt
from council.protocols.library import find_protocol
from council.secrets import redacted_line


@dataclass(frozen=True)
class Arm:
    """One condition: which personas sit, on which models. With several models, polarity pairs
    are routed onto different model families; with one, every seat shares it. ``models`` and
    ``personas`` take one name or a list."""

    name: str
    models: list[str]
    personas: list[str]

    def __post_init__(self) -> None:
        # frozen: the normalised lists are set through object.__setattr__
        for attribute in ("models", "personas"):
            value = getattr(self, attribute)
            names = [value] if isinstance(value, str) else list(value)
            if not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise ConfigError(f"arm '{self.name}': {attribute} must be one or more names")
            object.__setattr__(self, attribute, names)
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
    noise_samples: int = 3  # resamples of one persona per model and question
    baseline_samples: int = 2  # answers with no persona per model and question
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
            "arms": [vars(arm) for arm in self.arms],
            "questions": self.questions,
            "samples": self.samples,
            "protocol": self.protocol,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "noise_samples": self.noise_samples,
            "baseline_samples": self.baseline_samples,
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
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._note(json.loads(line))

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
    plan: ExperimentPlan, progress: Progress = lambda _: None, *, retry_failed: bool = True
) -> dict[str, Any]:
    """Run every unit not yet completed (and, unless ``retry_failed`` is false, every unit that
    failed before); returns counts of what ran, what was skipped and what failed."""
    plan.out.mkdir(parents=True, exist_ok=True)
    plan_path = plan.out / "plan.json"
    if plan_path.is_file() and json.loads(plan_path.read_text()) != plan.to_json():
        raise ConfigError(
            f"{plan.out} holds a different experiment (plan.json differs): use another --out"
        )
    plan_path.write_text(json.dumps(plan.to_json(), indent=2))
    protocol = find_protocol(plan.protocol)
    units = _Journal(plan.out / "units.jsonl")
    voices = _Journal(plan.out / "voices.jsonl")
    counts = {"ran": 0, "skipped": 0, "failed": 0}
    total = len(plan.arms) * len(plan.questions) * plan.samples
    for arm in plan.arms:
        for q, question in enumerate(plan.questions):
            for s in range(plan.samples):
                unit = f"{arm.name}/q{q}/s{s}"
                if unit in units.done or (units.failed(unit) and not retry_failed):
                    counts["skipped"] += 1
                    continue
                row = _run_unit(plan, protocol, arm, q, question, s)
                units.add({"unit": unit, "arm": arm.name, "question": q, "sample": s, **row})
                counts["ran"] += 1
                counts["failed"] += row["status"] != "completed"
                detail = row.get("error") or f"{row.get('wall_s', 0.0):.1f} s"
                progress(f"{len(units.done)}/{total} {unit}: {row['status']} ({detail})")
    ran, failed = asyncio.run(_sample_voices(plan, protocol, voices, progress, retry_failed))
    counts["ran"] += ran
    counts["failed"] += failed
    return counts


def _run_unit(
    plan: ExperimentPlan, protocol: Any, arm: Arm, q: int, question: str, s: int
) -> dict[str, Any]:
    """One council run; a user-caused failure (a missing extra, a refused model) is recorded
    as a failed unit, to be retried next time, instead of stopping the experiment."""
    try:
        council = Council(
            arm.personas,
            protocol=protocol,
            model=arm.models[0],
            models=arm.models if len(arm.models) > 1 else (),
            seats={"chair": arm.models[0]},
            endpoints=plan.endpoints,
            runs_dir=plan.out / "runs",
            sampling=SamplingSettings(
                temperature=plan.temperature, seed=1000 * s + q, max_tokens=plan.max_tokens
            ),
        )
        result = council.convene(question)
    except CouncilError as exc:
        return {"status": "failed", "error": redacted_line(exc)}
    row: dict[str, Any] = {"run_id": result.run_id, "run_dir": result.run_dir,
                           "status": result.status, "wall_s": round(result.wall_s, 2)}  # fmt: skip
    failed_turns = [t for t in result.turns if t.error]
    if result.status != "completed" and failed_turns:
        row["error"] = f"{failed_turns[0].seat}: {failed_turns[0].error}"
    return row


async def _sample_voices(
    plan: ExperimentPlan, protocol: Any, voices: _Journal, progress: Progress, retry: bool
) -> tuple[int, int]:
    models = sorted({m for arm in plan.arms for m in arm.models})
    personas = sorted({p for arm in plan.arms for p in arm.personas})
    ran = failed = 0
    for q, question in enumerate(plan.questions):
        prompt = first_prompt(protocol, question)
        for model in models:
            jobs = [("assistant", "assistant", ASSISTANT_SYSTEM_PROMPT, plan.baseline_samples)]
            # The noise floor: one persona per question (in turn), resampled on this model.
            persona = personas[q % len(personas)]
            jobs.append(
                (
                    "noise",
                    persona,
                    system_prompt(find_persona(persona), question),
                    plan.noise_samples,
                )
            )
            for kind, who, system, k in jobs:
                unit = f"{kind}/{model}/q{q}/{who}"
                if unit in voices.done or k == 0 or (voices.failed(unit) and not retry):
                    continue
                row = {"unit": unit, "kind": kind, "model": model, "question": q,
                       "persona": who}  # fmt: skip
                try:
                    answers = await sample(
                        model, system, prompt, k, max_tokens=plan.max_tokens,
                        temperature=plan.temperature, seed=q * 100, endpoints=plan.endpoints,
                    )  # fmt: skip
                except CouncilError as exc:
                    voices.add(
                        {**row, "answers": [], "status": "failed", "error": redacted_line(exc)}
                    )
                    failed += 1
                    progress(f"voices {unit}: failed ({redacted_line(exc)})")
                    continue
                voices.add({**row, "answers": answers, "status": "completed"})
                ran += 1
                progress(f"voices {unit}")
    return ran, failed
