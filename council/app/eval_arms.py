"""The arms of an eval: how one arm answers one item, registered by kind.

- ``single``: one model, one call; its reply is read as a ballot against the item's options.
- ``vote``: several seats answer the same prompt independently (no seat sees another) and the
  majority of their ballots is the arm's answer (a tie, or no valid ballot, is no answer).
- ``protocol``: a council under a protocol, with the item's options as every vote stage's
  fixed options; its answer is the last vote's winner (a protocol with no vote: its
  verdict read as a ballot against the options).

Every call goes through the seat models (litellm, the bundled model, a test double) and every
answer records its calls, tokens and cost. A new kind registers a runner in ``ARM_KINDS``.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from council.app.council import Council
from council.app.eval_data import EvalItem
from council.base.errors import ConfigError, CouncilError
from council.base.secrets import redacted_line
from council.engine.structured import structured_vote_instruction, vote_schema
from council.engine.votes import parse_ballot, tally_votes, vote_instruction
from council.protocols.graph import Protocol, compile_protocol
from council.protocols.library import find_protocol
from council.protocols.spec import VoteStage
from council.records.run import Ballot, RunResult
from council.records.spec import DEFAULT_PANEL, CallSettings, SamplingSettings
from council.seats.model import ChatModel, Completion, ModelRequest, split_model_string
from council.seats.seat import make_model

SYSTEM = (
    "You answer multiple-choice questions. Read the question, think briefly, and choose "
    "exactly one of the given options."
)


@dataclass(frozen=True)
class EvalArm:
    """One arm: its name, its kind (a key of ``ARM_KINDS``), the models its seats sit on
    (cycled when there are more seats than models), its number of seats, and its protocol."""

    name: str
    kind: str
    models: tuple[str, ...]
    seats: int = 1
    protocol: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "models": list(self.models),
            "seats": self.seats,
            "protocol": self.protocol,
        }


@dataclass(frozen=True)
class EvalSettings:
    """How every arm calls its models."""

    max_tokens: int = 200
    temperature: float = 0.7
    endpoints: dict[str, str] = field(default_factory=dict)
    calls: CallSettings | None = None
    runs_dir: Path | None = None  # where protocol arms record their runs (None: nowhere)
    doubles: dict[str, ChatModel] = field(default_factory=dict)  # model name -> test double


class ArmAnswer(BaseModel):
    """One arm's answer to one item in one sample: the journal's row."""

    arm: str
    item: str
    sample: int
    answer: str | None = None
    correct: bool = False
    # each seat's own answer (None: no valid ballot), for the error correlation against gold
    seat_answers: dict[str, str | None] = Field(default_factory=dict)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    run_id: str | None = None
    error: str | None = None


ArmRunner = Callable[[EvalArm, EvalItem, int, EvalSettings], Awaitable[ArmAnswer]]
ARM_KINDS: dict[str, ArmRunner] = {}


def arm_kind(kind: str) -> Callable[[ArmRunner], ArmRunner]:
    def register(runner: ArmRunner) -> ArmRunner:
        ARM_KINDS[kind] = runner
        return runner

    return register


def parse_arm(text: str, models: list[str], vote_seats: int) -> EvalArm:
    """``single``, ``vote`` or ``protocol:NAME`` (a protocol name or file) as an arm on
    ``models``: single sits on the first, vote's ``vote_seats`` seats cycle through them."""
    if not models:
        raise ConfigError("an eval needs at least one model")
    for model in models:
        try:
            split_model_string(model)
        except ValueError as exc:  # refused before any call, in one line
            raise ConfigError(str(exc)) from None
    kind, _, protocol = text.partition(":")
    if kind not in ARM_KINDS:
        known = ", ".join(f"{k}:NAME" if k == "protocol" else k for k in ARM_KINDS)
        raise ConfigError(f"unknown arm '{text}': one of {known}")
    if kind == "protocol":
        if not protocol:
            raise ConfigError("a protocol arm names its protocol: protocol:NAME")
        find_protocol(protocol)  # an unknown name is refused now, before any call
        return EvalArm(text, kind, tuple(models), len(DEFAULT_PANEL), protocol)
    if protocol:
        raise ConfigError(f"arm '{kind}' takes no ':{protocol}'")
    if kind == "single":
        return EvalArm(kind, kind, (models[0],))
    if vote_seats < 2:
        raise ConfigError(f"a vote arm needs at least 2 seats, got {vote_seats}")
    return EvalArm(kind, kind, tuple(models), vote_seats)


def item_seed(item: EvalItem, sample: int) -> int:
    """A seed of the item and sample, the same in every arm and every process."""
    return zlib.crc32(item.id.encode("utf-8")) % 1_000_000 + 1_000_003 * sample


def options_stage(item: EvalItem) -> VoteStage:
    """The ballot an answer is read by: the item's options, fixed, by majority."""
    return VoteStage(kind="vote", id="answer", prompt="{{ question }}", options=item.options)


def question_text(item: EvalItem) -> str:
    return f"{item.question}\n\nOptions: {'; '.join(item.options)}"


def _model(name: str, settings: EvalSettings) -> ChatModel:
    if name in settings.doubles:
        return settings.doubles[name]
    return make_model(name, endpoints=settings.endpoints, settings=settings.calls)


async def _ballot(
    model: str, seat: str, item: EvalItem, seed: int, settings: EvalSettings
) -> tuple[Ballot, Completion | None, str | None]:
    """One seat's answer to the item: its ballot, the completion, and the error if it failed."""
    stage = options_stage(item)
    chat = _model(model, settings)
    structured = chat.structured_output
    line = structured_vote_instruction(stage) if structured else vote_instruction(stage)
    request = ModelRequest(
        stage="eval",
        seat=seat,
        kind="vote",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Question: {question_text(item)}\n\n{line}"},
        ],
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=seed,
        expects="vote",
        choices=tuple(item.options),
        response_schema=vote_schema(stage) if structured else None,
    )
    try:
        completion = await chat.complete(request)
    except CouncilError as exc:
        return Ballot(seat=seat, valid=False, problem="call failed"), None, redacted_line(exc)
    return parse_ballot(seat, completion.content, stage), completion, None


def _spent(answer: ArmAnswer, completion: Completion | None) -> None:
    answer.calls += 1
    if completion is not None:
        answer.prompt_tokens += completion.prompt_tokens or 0
        answer.completion_tokens += completion.completion_tokens or 0
        answer.cost_usd += completion.cost_usd or 0.0


def _stance(ballot: Ballot) -> str | None:
    return ballot.stance if ballot.valid and ballot.stance != "abstain" else None


def _answered(answer: ArmAnswer, chosen: str | None, item: EvalItem) -> ArmAnswer:
    answer.answer = chosen
    answer.correct = chosen == item.answer
    return answer


@arm_kind("single")
async def _single(arm: EvalArm, item: EvalItem, sample: int, settings: EvalSettings) -> ArmAnswer:
    answer = ArmAnswer(arm=arm.name, item=item.id, sample=sample)
    ballot, completion, error = await _ballot(
        arm.models[0], "single", item, item_seed(item, sample), settings
    )
    _spent(answer, completion)
    answer.error = error
    answer.seat_answers = {"single": _stance(ballot)}
    return _answered(answer, _stance(ballot), item)


@arm_kind("vote")
async def _vote(arm: EvalArm, item: EvalItem, sample: int, settings: EvalSettings) -> ArmAnswer:
    """Seat i on model i (cycled), each with its own seed: independent draws, no talking."""
    answer = ArmAnswer(arm=arm.name, item=item.id, sample=sample)
    ballots: list[Ballot] = []
    errors: list[str] = []
    for i in range(arm.seats):
        seat = f"seat-{i + 1}"
        model = arm.models[i % len(arm.models)]
        ballot, completion, error = await _ballot(
            model, seat, item, item_seed(item, sample) + 7919 * i, settings
        )
        _spent(answer, completion)
        ballots.append(ballot)
        if error:
            errors.append(f"{seat}: {error}")
    answer.error = "; ".join(errors) or None
    answer.seat_answers = {b.seat: _stance(b) for b in ballots}
    tally = tally_votes(options_stage(item), ballots)
    return _answered(answer, tally.winner, item)


def protocol_with_options(name: str, options: list[str]) -> Protocol:
    """The protocol with ``options`` as the fixed options of every vote stage that takes
    options (a numeric vote keeps its numbers), recompiled so its runs record that text."""
    base = find_protocol(name)
    data = yaml.safe_load(base.text)

    def fix(stages: list[dict[str, Any]]) -> None:
        for stage in stages:
            if stage.get("kind") == "vote" and not stage.get("numeric"):
                stage["options"] = list(options)
            fix(stage.get("stages") or [])  # a loop's body

    fix(data.get("stages") or [])
    return compile_protocol(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), base.path)


def _protocol_answer(run: RunResult, item: EvalItem) -> tuple[str | None, dict[str, str | None]]:
    votes = [t for t in run.tallies if t.kind == "vote"]
    if votes:
        last = votes[-1]
        return last.winner, {b.seat: _stance(b) for b in last.ballots}
    ballot = parse_ballot("chair", run.synthesis, options_stage(item))
    return _stance(ballot), {}


@arm_kind("protocol")
async def _protocol(arm: EvalArm, item: EvalItem, sample: int, settings: EvalSettings) -> ArmAnswer:
    answer = ArmAnswer(arm=arm.name, item=item.id, sample=sample)
    models = list(arm.models)
    try:
        council = Council(
            protocol=protocol_with_options(arm.protocol or "", item.options),
            model=settings.doubles.get(models[0], models[0]),
            models=models if len(models) > 1 and not settings.doubles else [],
            endpoints=settings.endpoints,
            runs_dir=settings.runs_dir,
            calls=settings.calls,
            sampling=SamplingSettings(
                temperature=settings.temperature,
                seed=item_seed(item, sample),
                max_tokens=settings.max_tokens,
            ),
            panel_rules=False,  # the arms compare answers, not panels: no domain seat weight
        )
        run = await council.aconvene(question_text(item), label_seed=f"{item.id}/{sample}")
    except CouncilError as exc:
        answer.error = redacted_line(exc)
        return answer
    for turn in run.turns:
        answer.calls += 1
        answer.prompt_tokens += turn.prompt_tokens or 0
        answer.completion_tokens += turn.completion_tokens or 0
        answer.cost_usd += turn.cost_usd or 0.0
    answer.run_id = run.run_id
    if run.status != "completed":
        answer.error = run.error or f"run {run.status}"
    chosen, answer.seat_answers = _protocol_answer(run, item)
    return _answered(answer, chosen, item)


async def answer_item(
    arm: EvalArm, item: EvalItem, sample: int, settings: EvalSettings
) -> ArmAnswer:
    """The arm's answer to the item, by its kind's registered runner."""
    return await ARM_KINDS[arm.kind](arm, item, sample, settings)
