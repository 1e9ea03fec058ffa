"""The protocol file format: stages as pydantic models with ``extra="forbid"``.

Every stage but ``loop`` is a *speaking* stage: some seats answer a prompt after reading the
stages named in ``sees``. Kinds differ in who speaks, what they may see, and what is made of
their answers:

- ``statement``: every seat answers alone, seeing only the question (a blind round).
- ``response``: seats answer after reading ``sees``; ``anonymize`` shows others as Member A, B.
- ``summary``: one seat (the chair by default) compresses earlier stages for later ones.
- ``vote``: seats end with ``STANCE | CONFIDENCE | DEALBREAKER``; a ``rule`` tallies them.
- ``ranking``: seats rank the anonymized answers of one earlier stage (Response A, B, ...).
- ``guard``: runs only when the vote it ``checks`` agrees too much or has too few dissenters,
  or when the stage it ``watches`` is not shown to be more diverse than the no-persona baseline
  (or is below a stated threshold)
  or has a seat drifting past a cap toward the generic assistant voice (the meter in the loop).
- ``synthesis``: the final answer, by the chair unless told otherwise; exactly one, last.
- ``loop``: repeats its own ``stages`` up to ``rounds`` times, stopping early ``until`` a
  convergence criterion holds. Inside a loop, a stage that sees itself reads its previous round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from council.protocols.ballots import DEFAULT_BALLOT, check_ballot_name
from council.protocols.variables import EVERY_STAGE, GUARD, SYNTHESIS, TemplateVariable
from council.records.measurable import BASELINE_ANSWERS

STAGE_ID_PATTERN = r"^[a-z][a-z0-9_-]*$"

# Who speaks in a stage: the whole panel, the chair, half the panel, or panel positions (1-based);
# a guard may seat its vote's likely dissenters or the seats its drift check flagged.
# a dissent-quota guard seats those who agreed with the leading stance; a hemlock guard, the
# protocol's questioner.
SeatSelector = (
    Literal[
        "panel",
        "chair",
        "first_half",
        "second_half",
        "dissenters",
        "drifting",
        "agreed",
        "questioner",
    ]
    | list[Annotated[int, Field(ge=1)]]
)
# ``diversity_below: baseline``: test the watched stage against the no-persona baseline (its
# models' answers under the plain assistant prompt). ``noise_floor`` is the older spelling,
# still accepted, and means the same; a loaded stage always holds ``baseline``.
BASELINE = "baseline"
NOISE_FLOOR = "noise_floor"
# independence_weighted: as supermajority, each seat weighted by its independence from the
# others (council/engine/independence.py; issue 31).
VoteRule = Literal[
    "majority", "supermajority", "confidence_weighted", "borda", "independence_weighted"
]


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
    words: int | None = Field(default=None, gt=0, description="word limit stated to the seat")
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
    sequential_up_to: int | None = Field(
        default=None,
        ge=1,
        description="with this many seats or fewer, seats answer one after another, each "
        "reading the replies given before it in this stage",
    )
    diverges_below: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="flag a reply whose similarity to the question is below this",
    )
    votes_when: str | None = Field(
        default=None, description="a switch: off, this vote stage runs as a plain response"
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
    follows_synthesis: ClassVar[bool] = False  # may come after the synthesis (an audit)
    # What its prompt template may use (council/protocols/variables.py; the engine builds them).
    prompt_variables: ClassVar[tuple[TemplateVariable, ...]] = EVERY_STAGE

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        """(field, message) when a stage it refers to is of the wrong kind, else None."""
        return None

    def details(self) -> list[str]:
        """What a stage listing says of this kind beyond seats and what it sees."""
        return []

    def selector_problem(self) -> str | None:
        """Why this stage cannot use its ``seats`` selector, or None when it can."""
        if self.seats == "dissenters":
            return "only a guard that checks a vote seats the dissenters of its vote"
        if self.seats == "drifting":
            return "only a guard with drift_above seats the drifting seats"
        if self.seats == "agreed":
            return "only a guard with dissent_quota seats those who agreed"
        if self.seats == "questioner":
            return "only a guard with hemlock_against seats the questioner"
        return None


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
    prompt_variables: ClassVar[tuple[TemplateVariable, ...]] = EVERY_STAGE + SYNTHESIS
    seats: SeatSelector = "chair"
    sees: list[str] = Field(min_length=1)
    min_turns: int = Field(default=1, ge=1, description="a run without its synthesis has failed")
    sections: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the sections a verdict must have, each filled (council checks it and "
        "asks once more); None: the prompt's deepest Markdown headings, less those marked "
        "(optional) or (encouraged)",
    )


class AuditorStage(SpeakingStage):
    """A seat of a model family other than the chair's checks the verdict it ``sees`` (the
    synthesis, with the stages it read) against the deliberation and the tally, and answers
    with typed findings (council/engine/audit.py). It alone may follow the synthesis. It
    seats the first of its ``seats`` on another family (``same_family: true`` allows the
    chair's); with none, it is skipped, and says why. A failed audit fails no run."""

    kind: Literal["auditor"]
    may_loop: ClassVar[bool] = False
    follows_synthesis: ClassVar[bool] = True
    sees: list[str] = Field(min_length=1)
    min_turns: int = Field(default=0, ge=0, description="an audit that fails fails no run")
    same_family: bool = Field(
        default=False, description="seat an auditor of the chair's family when no other is"
    )

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        if not any(getattr(stages.get(ref), "kind", None) == "synthesis" for ref in self.sees):
            return "sees", "an auditor stage audits the verdict: it must see the synthesis"
        return None


class VoteStage(SpeakingStage):
    """Each seat ends with ``STANCE | CONFIDENCE | DEALBREAKER``; the rule decides the tally."""

    kind: Literal["vote"]
    collects_votes: ClassVar[bool] = True
    options: list[str] | None = Field(default=None, description="allowed stances; None = free")
    numeric: bool = Field(default=False, description="stances are numbers (Delphi estimates)")
    rule: VoteRule = "majority"
    ballot: str | None = Field(
        default=None,
        description="the ballot scale (council/protocols/ballots.py); None: the protocol's",
    )
    threshold: float = Field(default=2 / 3, gt=0, le=1, description="share needed for consensus")
    tolerance: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="numeric votes: relative distance that counts as agreeing",
    )

    _known_ballot = field_validator("ballot")(check_ballot_name)

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
        ballot = f", ballot {self.ballot}" if self.ballot else ""
        return [f"vote: {self.rule}, {detail}, consensus at {self.threshold:.0%}{ballot}"]


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
    """Runs only when one of its conditions holds (any one is enough):

    - on the vote in ``checks``: agreement above ``agreement_above``, or fewer dissenters than
      ``dissenters_below``;
    - on the replies of the stage it ``watches`` (the diversity meter, in the loop): their mean
      pairwise embedding distance below ``diversity_below``, or a seat's drift position above
      ``drift_above`` (0 = the persona's own voice as its card states it, 1 = the model's
      generic assistant voice).

    ``diversity_below`` is a number (a point comparison: a stated line has no sampling error),
    or ``baseline`` (``noise_floor``, its older spelling): a one-sided test against the
    no-persona baseline, ``baseline_samples`` answers of each panel model to the same prompt
    under the plain assistant prompt. The guard runs unless the replies are shown to be more
    diverse than those answers at ``baseline_alpha`` (council/engine/guards.py says why).
    """

    kind: Literal["guard"]
    prompt_variables: ClassVar[tuple[TemplateVariable, ...]] = EVERY_STAGE + GUARD
    checks: str | None = Field(default=None, description="the vote stage whose tally is checked")
    agreement_above: float | None = Field(default=None, gt=0, le=1)
    dissenters_below: int | None = Field(default=None, ge=1)
    watches: str | None = Field(
        default=None, description="the speaking stage whose replies are measured"
    )
    diversity_below: float | Literal["baseline", "noise_floor"] | None = Field(
        default=None,
        description="a mean pairwise cosine distance (0..2), or baseline (alias noise_floor)",
    )
    drift_above: float | None = Field(
        default=None, description="drift position cap (0 persona's voice, 1 assistant's)"
    )
    baseline_samples: int = Field(
        default=BASELINE_ANSWERS,
        ge=2,
        le=20,
        description="no-persona answers per panel model (the test needs one per seat on it)",
    )
    baseline_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="the level the test against the baseline uses"
    )
    dissent_quota: int | None = Field(
        default=None,
        ge=1,
        description="fewest seats whose objections to the leading stance of 'checks' do not "
        "overlap; fewer, and those who agreed are asked for their strongest objection",
    )
    objection_overlap: float = Field(
        default=0.8, gt=0, le=1, description="two objections this similar count as one"
    )
    question_overlap: float = Field(
        default=0.8, gt=0, le=1, description="a question this similar to one answered re-asks it"
    )
    hemlock_against: str | None = Field(
        default=None,
        description="the earlier stage whose answered questions the questioner may not ask "
        "again in the stage it 'watches'",
    )

    @field_validator("diversity_below", mode="before")
    @classmethod
    def _distance(cls, value: object) -> object:
        if value == NOISE_FLOOR:
            return BASELINE
        if isinstance(value, bool) or (isinstance(value, str) and value != BASELINE):
            raise ValueError(f"give a distance in (0, 2] or {BASELINE}, not {value!r}")
        if isinstance(value, float | int) and not 0 < value <= 2:
            raise ValueError(f"a cosine distance threshold lies in (0, 2], or use {BASELINE}")
        return value

    @model_validator(mode="after")
    def _has_condition(self) -> GuardStage:
        on_vote = any(
            v is not None for v in (self.agreement_above, self.dissenters_below, self.dissent_quota)
        )
        on_watched = any(
            v is not None for v in (self.diversity_below, self.drift_above, self.hemlock_against)
        )
        if on_vote and self.checks is None:
            raise ValueError(
                "agreement_above, dissenters_below and dissent_quota need 'checks: <vote stage>'"
            )
        if on_watched and self.watches is None:
            raise ValueError(
                "diversity_below, drift_above and hemlock_against need 'watches: <stage>'"
            )
        if self.checks is not None and not on_vote:
            raise ValueError(
                "a guard that checks a vote needs agreement_above, dissenters_below or "
                "dissent_quota"
            )
        if self.watches is not None and not on_watched:
            raise ValueError(
                "a guard that watches a stage needs diversity_below, drift_above or hemlock_against"
            )
        if not on_vote and not on_watched:
            raise ValueError(
                "a guard needs agreement_above, dissenters_below or dissent_quota (with checks), "
                "or diversity_below, drift_above or hemlock_against (with watches)"
            )
        return self

    @property
    def depends_on(self) -> list[str]:
        watched = [
            ref for ref in (self.checks, self.watches, self.hemlock_against) if ref is not None
        ]
        return list(dict.fromkeys([*watched, *self.sees, *self.after]))

    def reference_problem(self, stages: Mapping[str, Any]) -> tuple[str, str] | None:
        if self.checks is not None and not getattr(stages[self.checks], "collects_votes", False):
            return "checks", f"'{self.checks}' collects no votes: a guard checks a vote stage"
        if self.watches is not None and not isinstance(stages[self.watches], SpeakingStage):
            return "watches", f"'{self.watches}' is a loop: a guard watches a speaking stage"
        against = self.hemlock_against
        if against is not None and not isinstance(stages[against], SpeakingStage):
            return "hemlock_against", f"'{against}' is a loop: name a speaking stage"
        return None

    def selector_problem(self) -> str | None:
        if self.seats == "drifting" and self.drift_above is not None:
            return None
        if self.seats == "dissenters" and self.checks is not None:
            return None
        if self.seats == "agreed" and self.dissent_quota is not None:
            return None
        if self.seats == "questioner" and self.hemlock_against is not None:
            return None
        return super().selector_problem()

    def details(self) -> list[str]:
        found = []
        if self.agreement_above is not None or self.dissenters_below is not None:
            limits = [
                *([f"agreement above {self.agreement_above}"] if self.agreement_above else []),
                *([f"dissenters below {self.dissenters_below}"] if self.dissenters_below else []),
            ]
            found.append(f"guard on {self.checks}: {', '.join(limits)}")
        if self.dissent_quota is not None:
            found.append(
                f"dissent quota on {self.checks}: at least {self.dissent_quota} "
                f"non-overlapping objections (overlap at {self.objection_overlap})"
            )
        if self.hemlock_against is not None:
            found.append(
                f"hemlock rule on {self.watches}: the questioner re-asks a question "
                f"answered since '{self.hemlock_against}'"
            )
        if self.diversity_below is not None or self.drift_above is not None:
            below = (
                f"diversity not shown above the no-persona baseline (alpha {self.baseline_alpha})"
                if self.diversity_below == BASELINE
                else f"diversity below {self.diversity_below}"
            )
            conditions = [
                *([below] if self.diversity_below else []),
                *([f"drift above {self.drift_above}"] if self.drift_above is not None else []),
            ]
            samples = f" ({self.baseline_samples} no-persona answers per model)"
            found.append(
                f"guard on {self.watches}: {' or '.join(conditions)}"
                + (samples if self.samples_baseline else "")
            )
        return found

    @property
    def samples_baseline(self) -> bool:
        """Whether this guard asks each panel model for no-persona answers."""
        return self.diversity_below == BASELINE or self.drift_above is not None


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
    | AuditorStage
    | LoopStage,
    Field(discriminator="kind"),
]
AnyStage = SpeakingStage | LoopStage


# The switch every protocol has: off, no stage shows other seats as Member A, B (rankings
# excepted: their ballots are the labels). A protocol may lock it on.
ANONYMIZE_SWITCH = "anonymize"


class Switch(_Strict):
    """A part of a protocol a run may turn off (``--switch NAME=off``), such as a deliberate
    difference from the design it reproduces; ``locked`` says why it may not be."""

    default: bool = True
    says: str = Field(min_length=1, description="what it does, and what turning it off changes")
    locked: str | None = Field(default=None, description="why it cannot be turned off")


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
    switches: dict[str, Switch] = Field(
        default_factory=dict, description="parts a run may turn off, by name"
    )
    questioners: list[str] = Field(
        default_factory=list,
        description="cards (by name or figure) that are the council's questioner: the "
        "'questioner' variable and seat selector, and the hemlock rule, find them",
    )
    ballot: str = Field(
        default=DEFAULT_BALLOT, description="the ballot scale of vote stages that name none"
    )
    stages: list[Stage] = Field(min_length=1)

    _known_ballot = field_validator("ballot")(check_ballot_name)
