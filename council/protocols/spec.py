"""The protocol file format: stages as pydantic models with ``extra="forbid"``.

Every stage but ``loop`` is a *speaking* stage: some seats answer a prompt after reading the
stages named in ``sees``. Kinds differ in who speaks, what they may see, and what is made of
their answers:

- ``statement``: every seat answers alone, seeing only the question (a blind round).
- ``response``: seats answer after reading ``sees``; ``anonymize`` shows others as Member A, B.
- ``summary``: one seat (the chair by default) compresses earlier stages for later ones.
- ``vote``: seats end with ``STANCE | CONFIDENCE | DEALBREAKER``; a ``rule`` tallies them.
- ``ranking``: seats rank the anonymized answers of one earlier stage (Response A, B, ...).
- ``guard``: runs only when the vote it ``checks`` agrees too much or has too few dissenters.
- ``synthesis``: the final answer, by the chair unless told otherwise; exactly one, last.
- ``loop``: repeats its own ``stages`` up to ``rounds`` times, stopping early ``until`` a
  convergence criterion holds. Inside a loop, a stage that sees itself reads its previous round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STAGE_ID_PATTERN = r"^[a-z][a-z0-9_-]*$"

# Who speaks in a stage: the whole panel, the chair, half the panel, or panel positions (1-based).
SeatSelector = (
    Literal["panel", "chair", "first_half", "second_half", "dissenters"]
    | list[Annotated[int, Field(ge=1)]]
)
VoteRule = Literal["majority", "supermajority", "confidence_weighted", "borda"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpeakingStage(_Strict):
    kind: str  # each kind narrows this to its literal
    id: str = Field(pattern=STAGE_ID_PATTERN)
    title: str | None = None
    prompt: str = Field(min_length=1, description="Jinja template of the stage's instruction")
    seats: SeatSelector = "panel"
    sees: list[str] = Field(default_factory=list, description="earlier stages shown to the seats")
    after: list[str] = Field(default_factory=list, description="stages that must finish first")
    anonymize: bool = Field(default=False, description="show other seats as Member A, B, ...")
    max_tokens: int | None = Field(default=None, gt=0)
    min_turns: int = Field(
        default=1, ge=0, description="fewest successful turns for the run to go on (quorum)"
    )
    novelty_against: str | None = Field(
        default=None, description="a reply too like the seat's own in this stage is sent back"
    )
    novelty_threshold: float = Field(default=0.9, gt=0, le=1)
    evidence_labels: bool = Field(
        default=False, description="ask for [empirical]/[mechanistic]/... tags and count them"
    )

    @property
    def label(self) -> str:
        return self.title or self.id.replace("_", " ").replace("-", " ").capitalize()

    @property
    def depends_on(self) -> list[str]:
        extra = [self.novelty_against] if self.novelty_against else []
        return list(dict.fromkeys([*self.sees, *self.after, *extra]))

    # What a kind is, for the compiler and the diagram: each kind says it of itself.
    answers: ClassVar[bool] = False  # its turns are answers another stage may rank
    collects_votes: ClassVar[bool] = False
    may_loop: ClassVar[bool] = True  # may sit inside a loop
    checks_a_vote: ClassVar[bool] = False  # may seat the checked vote's dissenters

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        """(field, message) when a stage it refers to is of the wrong kind, else None."""
        return None

    def details(self) -> list[str]:
        """What a stage listing says of this kind beyond seats and what it sees."""
        return []


class StatementStage(SpeakingStage):
    kind: Literal["statement"]
    answers: ClassVar[bool] = True

    @model_validator(mode="after")
    def _blind(self) -> StatementStage:
        if self.sees:
            raise ValueError(
                "a statement stage is blind: it cannot see earlier stages (use response)"
            )
        return self


class ResponseStage(SpeakingStage):
    kind: Literal["response"]
    answers: ClassVar[bool] = True
    sees: list[str] = Field(min_length=1)


class SummaryStage(SpeakingStage):
    kind: Literal["summary"]
    seats: SeatSelector = "chair"
    sees: list[str] = Field(min_length=1)


class SynthesisStage(SpeakingStage):
    kind: Literal["synthesis"]
    may_loop: ClassVar[bool] = False
    seats: SeatSelector = "chair"
    sees: list[str] = Field(min_length=1)
    min_turns: int = Field(default=1, ge=1, description="a run without its synthesis has failed")


class VoteStage(SpeakingStage):
    """Each seat ends with ``STANCE | CONFIDENCE | DEALBREAKER``; the rule decides the tally."""

    kind: Literal["vote"]
    collects_votes: ClassVar[bool] = True
    options: list[str] | None = Field(default=None, description="allowed stances; None = free")
    numeric: bool = Field(default=False, description="stances are numbers (Delphi estimates)")
    rule: VoteRule = "majority"
    threshold: float = Field(default=2 / 3, gt=0, le=1, description="share needed for consensus")
    tolerance: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="numeric votes: relative distance that counts as agreeing",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, list) and any(isinstance(v, bool) for v in value):
            raise ValueError('YAML reads yes/no/on/off as booleans: quote them, e.g. ["yes", "no"]')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VoteStage:
        if self.rule == "borda" and not self.options:
            raise ValueError("a borda vote needs 'options' to rank")
        if self.numeric and (self.options or self.rule not in ("majority", "supermajority")):
            raise ValueError("a numeric vote takes no options and tallies by the median")
        if self.options is not None and len(set(o.lower() for o in self.options)) < 2:
            raise ValueError("a vote needs at least two distinct options")
        return self

    def details(self) -> list[str]:
        detail = "numeric" if self.numeric else f"options {self.options or 'free'}"
        return [f"vote: {self.rule}, {detail}, consensus at {self.threshold:.0%}"]


class RankingStage(SpeakingStage):
    """Seats rank the other seats' answers from one earlier stage, shown as Response A, B, ..."""

    kind: Literal["ranking"]
    sees: list[str] = Field(min_length=1, max_length=1)
    anonymize: bool = True

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        ranked = stages[self.sees[0]]
        if getattr(ranked, "answers", False):
            return None
        return "sees", f"'{ranked.id}' has no answers to rank: rank a statement or response"


class GuardStage(SpeakingStage):
    """Runs only when the vote in ``checks`` agrees too much or has too few dissenters."""

    kind: Literal["guard"]
    checks_a_vote: ClassVar[bool] = True
    checks: str = Field(description="the vote stage whose tally is checked")
    agreement_above: float | None = Field(default=None, gt=0, le=1)
    dissenters_below: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _has_condition(self) -> GuardStage:
        if self.agreement_above is None and self.dissenters_below is None:
            raise ValueError("a guard needs agreement_above or dissenters_below")
        return self

    @property
    def depends_on(self) -> list[str]:
        return list(dict.fromkeys([self.checks, *self.sees, *self.after]))

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        if getattr(stages[self.checks], "collects_votes", False):
            return None
        return "checks", f"'{self.checks}' collects no votes: a guard checks a vote stage"

    def details(self) -> list[str]:
        return [
            f"guard on {self.checks}: agreement above {self.agreement_above}, "
            f"dissenters below {self.dissenters_below}"
        ]


BodyStage = Annotated[
    StatementStage | ResponseStage | SummaryStage | VoteStage | RankingStage | GuardStage,
    Field(discriminator="kind"),
]


class Until(_Strict):
    """When a loop may stop before its last round (any criterion that holds stops it)."""

    vote: str | None = Field(default=None, description="a vote stage inside the loop")
    agreement: float | None = Field(default=None, gt=0, le=1)
    stable: float | None = Field(
        default=None, gt=0, le=1, description="every seat's answer this similar to its last one"
    )
    moderator: str | None = Field(
        default=None, description="a stage whose seat ends with DECISION: STOP or CONTINUE"
    )

    @model_validator(mode="after")
    def _complete(self) -> Until:
        if (self.vote is None) != (self.agreement is None):
            raise ValueError("'vote' and 'agreement' go together")
        if self.vote is None and self.stable is None and self.moderator is None:
            raise ValueError("until needs vote+agreement, stable or moderator")
        return self


class LoopStage(_Strict):
    kind: Literal["loop"]
    id: str = Field(pattern=STAGE_ID_PATTERN)
    title: str | None = None
    rounds: int = Field(ge=1, le=50)
    stages: list[BodyStage] = Field(min_length=1)
    until: Until | None = None
    after: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.title or self.id.replace("_", " ").replace("-", " ").capitalize()


Stage = Annotated[
    StatementStage
    | ResponseStage
    | SummaryStage
    | VoteStage
    | RankingStage
    | GuardStage
    | SynthesisStage
    | LoopStage,
    Field(discriminator="kind"),
]
AnyStage = SpeakingStage | LoopStage


class PanelSize(_Strict):
    min: int = Field(default=1, ge=1)
    max: int | None = Field(default=None, ge=1)


class ProtocolSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = Field(min_length=1)
    origin: str | None = Field(default=None, description="the published design it reproduces")
    version: int = 1
    max_tokens: int = Field(default=256, gt=0, description="default per-turn token cap")
    panel: PanelSize = Field(default_factory=PanelSize)
    stages: list[Stage] = Field(min_length=1)
