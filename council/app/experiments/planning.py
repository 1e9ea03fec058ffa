"""Power before spending: what an experiment will cost and what it can detect, before any call.

The calls are counted from the plan and the protocol (loops at their full rounds, so an upper
bound), the tokens as calls times the turn cap (an upper bound on completion tokens), the cost
from litellm's price table for hosted models (local models cost nothing). The power is that
of the primary endpoint's paired t test on question means, from variance components: a pilot
experiment's (its ``summary.json``), or those of the shipped experiment behind the findings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from council.app.experiments.design import DEFAULT_EFFECT, TARGET_POWER
from council.app.experiments.runner import ExperimentPlan, council_units, voice_units
from council.base.errors import ConfigError
from council.meter.inference import clusters_needed, paired_power, sd_from_components
from council.protocols.graph import Protocol
from council.protocols.library import find_protocol
from council.protocols.spec import LoopStage, SpeakingStage
from council.seats.litellm_model import import_litellm

# The variance components of the shipped diversity experiment's primary endpoint, written by
# docs/experiments/regenerate.py from its summary.json: the default pilot.
SHIPPED_PILOT = Path(__file__).with_name("pilot.json")
CHAIR_KINDS = ("synthesis", "summary")
QUESTION_STEPS = (5, 10, 20, 40, 80)


@dataclass
class Pilot:
    source: str
    between_question_variance: float
    within_question_variance: float


@dataclass
class PlanReport:
    councils: int
    voice_calls: int
    calls: int
    max_completion_tokens: int
    cost_usd: float | None  # None: a model litellm has no price for
    unpriced: list[str]
    effect: float
    questions: int
    samples: int
    power: float | None
    questions_for_80: int | None
    pilot: str
    table: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.2f} at most"
        lines = [
            f"councils: {self.councils} (placebo twins included); calls: {self.calls} "
            f"({self.voice_calls} of them no-persona baseline answers)",
            f"completion tokens: at most {self.max_completion_tokens}; cost: {cost}"
            + (f" (no price for {', '.join(self.unpriced)})" if self.unpriced else ""),
            f"power to detect a difference of {self.effect} in distance above the placebo "
            f"floor with {self.questions} questions x {self.samples} samples: "
            + ("unknown" if self.power is None else f"{self.power:.2f}")
            + (f"; 80% needs {self.questions_for_80} questions" if self.questions_for_80 else ""),
            f"(variance components from {self.pilot}; paired t test on question means)",
            "",
            "questions  power",
            *(f"{row['questions']:>9}  {row['power']:.2f}" for row in self.table),
        ]
        if self.power is not None and self.power < TARGET_POWER:
            lines.insert(0, f"UNDERPOWERED: power {self.power:.2f} is below {TARGET_POWER}")
        return "\n".join(lines)


def read_pilot(path: Path | None) -> Pilot:
    """The variance components of a primary endpoint: a pilot's ``summary.json`` (or its
    folder), or the shipped experiment's."""
    source = path or SHIPPED_PILOT
    if source.is_dir():
        source = source / "summary.json"
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: cannot read a pilot: {exc}") from None
    rows = data.get("power") if isinstance(data, dict) else None
    row = rows[0] if isinstance(rows, list) and rows else data
    try:
        between = float(row["between_question_variance"])
        within = float(row["within_question_variance"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{source}: no variance components of a primary endpoint") from None
    label = str(path) if path is not None else str(data.get("source", "the shipped experiment"))
    return Pilot(label, between, within)


def write_pilot(summary: dict[str, Any], source: str, path: Path = SHIPPED_PILOT) -> Path:
    """Keep the variance components of a summary's between-arm primary endpoint (else its
    first) as the pilot later plans read by default."""
    rows = [r for r in summary.get("power") or [] if "between_question_variance" in r]
    if not rows:
        raise ConfigError("the summary has no power analysis to take variance components from")
    row = next((r for r in rows if r.get("a") != "placebo"), rows[0])
    keep = (
        "metric",
        "a",
        "b",
        "questions",
        "samples_per_question",
        "between_question_variance",
        "within_question_variance",
        "method",
    )
    path.write_text(json.dumps({"source": source, **{k: row[k] for k in keep}}, indent=2) + "\n")
    return path


def calls_per_council(protocol: Protocol, seats: int) -> int:
    """Calls one council makes at most: every seat per panel stage, one per chair stage,
    loops at their full rounds."""
    total = 0
    for stage in protocol.order():
        if isinstance(stage, LoopStage):
            body = protocol.body_order(stage.id)
            total += stage.rounds * sum(_stage_calls(s, seats) for s in body)
        elif isinstance(stage, SpeakingStage):
            total += _stage_calls(stage, seats)
    return total


def _stage_calls(stage: SpeakingStage, seats: int) -> int:
    if stage.kind in CHAIR_KINDS or stage.seats == "chair":
        return 1
    if isinstance(stage.seats, list):
        return len(stage.seats)
    return seats


def plan_experiment(
    plan: ExperimentPlan, *, effect: float = DEFAULT_EFFECT, pilot: Path | None = None
) -> PlanReport:
    protocol = find_protocol(plan.protocol)
    units = council_units(plan)
    voices = voice_units(plan, protocol)
    per_unit = [calls_per_council(protocol, len(_seat_models(u))) for u in units]
    voice_calls = sum(v.k for v in voices)
    calls = sum(per_unit) + voice_calls
    cost, unpriced = _cost(units, per_unit, voices, plan.max_tokens)
    components = read_pilot(pilot)
    G = len(plan.questions)
    table = [
        {"questions": g, "power": round(_power(components, effect, g, plan.samples), 3)}
        for g in sorted({G, *QUESTION_STEPS})
        if g >= 2  # one question has no spread to test against
    ]
    sd = sd_from_components(
        components.between_question_variance, components.within_question_variance, plan.samples
    )
    return PlanReport(
        councils=len(units),
        voice_calls=voice_calls,
        calls=calls,
        max_completion_tokens=calls * plan.max_tokens,
        cost_usd=cost,
        unpriced=unpriced,
        effect=effect,
        questions=G,
        samples=plan.samples,
        power=round(_power(components, effect, G, plan.samples), 3) if G >= 2 else None,
        questions_for_80=clusters_needed(sd, effect, TARGET_POWER) if sd > 0 else None,
        pilot=components.source,
        table=table,
    )


def _power(pilot: Pilot, effect: float, questions: int, samples: int) -> float:
    sd = sd_from_components(
        pilot.between_question_variance, pilot.within_question_variance, samples
    )
    return paired_power(sd, effect, questions) if sd > 0 and questions >= 2 else 0.0


def _seat_models(unit: Any) -> tuple[str, ...]:
    if unit.placebo:
        return tuple(unit.seat_models)
    return tuple(unit.models[i % len(unit.models)] for i in range(len(unit.personas)))


def _cost(
    units: list[Any], per_unit: list[int], voices: list[Any], max_tokens: int
) -> tuple[float | None, list[str]]:
    """An upper bound on the cost of completion tokens at litellm's prices, each council's
    calls shared among its seats' models; local models cost nothing."""
    litellm = import_litellm()  # the shipped price table: no fetch from the network
    calls: dict[str, int] = {}
    for unit, count in zip(units, per_unit, strict=True):
        models = _seat_models(unit)
        for model in models:
            calls[model] = calls.get(model, 0) + count * max_tokens // len(models)
    for voice in voices:
        calls[voice.model] = calls.get(voice.model, 0) + voice.k * max_tokens
    total, unpriced = 0.0, []
    for model, tokens in sorted(calls.items()):
        if model.startswith("local/") or model.startswith("activations/"):
            continue
        try:
            _, completion = litellm.cost_per_token(model=model, completion_tokens=tokens)
        except Exception:  # litellm raises bare Exceptions for a model it has no price for
            unpriced.append(model)
            continue
        total += completion
    return (None if unpriced else round(total, 4)), unpriced
