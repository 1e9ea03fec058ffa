"""Running an experiment: units of (arm, question, sample), resumable, then measured.

Every unit is one council run recorded under ``OUT/runs``; ``OUT/units.jsonl`` lists the units
that finished, so running the same command again skips them. Voices sampled outside a council
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
from council.errors import ConfigError
from council.personas.library import find_persona
from council.personas.prompt import system_prompt
from council.protocols.library import find_protocol


@dataclass(frozen=True)
class Arm:
    """One condition: which personas sit, on which models. With several models, polarity pairs
    are routed onto different model families; with one, every seat shares it."""

    name: str
    models: list[str]
    personas: list[str]


@dataclass
class ExperimentPlan:
    kind: str  # "diversity" or "variants"
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
    """An append-only JSONL file of finished units, read back to skip them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.rows.append(json.loads(line))
        self.done = {row["unit"] for row in self.rows}

    def add(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        self.done.add(row["unit"])


Progress = Callable[[str], None]


def run_plan(plan: ExperimentPlan, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Run every unit not yet done; returns counts of what ran and what was skipped."""
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
    ran = skipped = 0
    total = len(plan.arms) * len(plan.questions) * plan.samples
    for arm in plan.arms:
        for q, question in enumerate(plan.questions):
            for s in range(plan.samples):
                unit = f"{arm.name}/q{q}/s{s}"
                if unit in units.done:
                    skipped += 1
                    continue
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
                units.add({"unit": unit, "arm": arm.name, "question": q, "sample": s,
                           "run_id": result.run_id, "run_dir": result.run_dir,
                           "status": result.status})  # fmt: skip
                ran += 1
                progress(
                    f"{len(units.done)}/{total} {unit}: {result.status} ({result.wall_s:.1f} s)"
                )
    ran += asyncio.run(_sample_voices(plan, protocol, voices, progress))
    return {"ran": ran, "skipped": skipped}


async def _sample_voices(
    plan: ExperimentPlan, protocol: Any, voices: _Journal, progress: Progress
) -> int:
    models = sorted({m for arm in plan.arms for m in arm.models})
    personas = sorted({p for arm in plan.arms for p in arm.personas})
    ran = 0
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
                if unit in voices.done or k == 0:
                    continue
                answers = await sample(
                    model, system, prompt, k, max_tokens=plan.max_tokens,
                    temperature=plan.temperature, seed=q * 100, endpoints=plan.endpoints,
                )  # fmt: skip
                voices.add({"unit": unit, "kind": kind, "model": model, "question": q,
                            "persona": who, "answers": answers})  # fmt: skip
                ran += 1
                progress(f"voices {unit}")
    return ran
