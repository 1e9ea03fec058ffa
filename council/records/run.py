"""Runtime records of a deliberation: turns, seats, tallies, runs. One serializer: ``to_json()``.

A run's record is its event stream (``council.records.events``); ``RunResult`` is what folding
those events gives (``council.records.fold``), whether they come live from the engine, from the
ledger or from an exported ``events.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from council.base.errors import CouncilError
from council.records.grounding import Citation, DocumentInfo, Passage, ToolCall
from council.records.record import Record
from council.records.replies import ballot_prose
from council.records.settings import RunConfig
from council.records.verdicts import VerdictAudit, VerdictCheck


class CallRequest(Record):
    """Everything a seat's model was sent for one turn: the prompts it saw and how it sampled."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    seed: int | None = None
    expects: str = "text"  # what the engine parses from the reply: text, vote, ranking, ...
    choices: list[str] = Field(default_factory=list)
    # Left out of the JSON when unset, so requests without them serialize as before.
    response_schema: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    reasoning_effort: str | None = Field(default=None, exclude_if=lambda v: v is None)


class TurnActivations(Record):
    """What an open-weight seat's residual stream did over one reply: the mean over the reply's
    tokens at a few layers (not every tensor), and its projection on the assistant axis when
    the seat was given one. Layer ``i`` is the output of block ``i`` (0 = the embeddings)."""

    model_sha256: str  # the weights the activations came from
    layers: list[int]
    means: list[list[float]]  # one row per layer, the model's hidden size wide
    tokens: int  # reply tokens averaged over
    axis_id: str | None = None  # the axis projected on (its content hash)
    axis_layer: int | None = None
    axis_projection: float | None = None
    axis_cap: float | None = None  # the ceiling the projection was capped at, if it was


# A cut-off reply's continuation is recorded as its own turn, in stage ``<stage>.continue``.
CONTINUATION = ".continue"
# A reply left empty because reasoning spent its whole cap is asked again with a larger cap;
# that call is recorded as its own turn, in stage ``<stage>.retry``.
REASONING_RETRY = ".retry"


class Turn(Record):
    """One seat speaking once in one stage; a failed call is a turn with ``error`` set."""

    run_id: str
    stage: str
    round: int = 0
    seat: str
    persona: str
    provider: str
    model: str
    content: str | None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    # The model's time: from the moment its call left (its slot taken, its server or worker
    # up) to its reply, retries and their waits included. Time spent before that is apart:
    # queue_s waiting for a slot (the run's, the provider's, a rate limit, a local server
    # that answers one call at a time), start_s for a warm worker or local server to start.
    latency_s: float
    queue_s: float = 0.0
    start_s: float = 0.0
    attempts: int = 1
    request_hash: str | None = None
    reused: bool = False  # answered from the ledger (resume, replay): no call was made
    started_at: datetime
    request: CallRequest | None = None  # what the seat was shown ("what did kuhn see?")
    # Recorded by open-weight seats only; left out of the JSON when absent, so turns of every
    # other seat serialize exactly as before.
    activations: TurnActivations | None = Field(default=None, exclude_if=lambda v: v is None)
    # Lengths (``council.engine.lengths``), left out of the JSON when they say nothing, so a
    # turn without a word limit or a cut-off serializes exactly as before.
    # truncated: the reply as recorded ends where its token cap cut it (finish_reason "length").
    truncated: bool = Field(default=False, exclude_if=lambda v: not v)
    # continued: the first call was cut off and ``content`` holds it and one continuation
    # (that call is its own turn, ``<stage>.continue``).
    continued: bool = Field(default=False, exclude_if=lambda v: not v)
    word_limit: int | None = Field(default=None, exclude_if=lambda v: v is None)  # stated
    words: int | None = Field(default=None, exclude_if=lambda v: v is None)  # as counted
    over_limit: bool = Field(default=False, exclude_if=lambda v: not v)  # words > word_limit
    # Reasoning models (left out of the JSON when absent): the model's thinking, kept apart
    # from ``content`` (never shown to other seats, never measured), and the completion tokens
    # it spent on it. starved: the first call's reply was empty because reasoning used its
    # whole cap; ``content`` holds the answer of the call made again with a larger cap (that
    # call is its own turn, ``<stage>.retry``).
    reasoning: str | None = Field(default=None, exclude_if=lambda v: v is None)
    reasoning_tokens: int | None = Field(default=None, exclude_if=lambda v: v is None)
    reasoning_cost_usd: float | None = Field(default=None, exclude_if=lambda v: v is None)
    starved: bool = Field(default=False, exclude_if=lambda v: not v)
    # structured: the reply was asked for in a JSON schema (``CallRequest.response_schema``).
    structured: bool = Field(default=False, exclude_if=lambda v: not v)
    # Context documents (``council.records.grounding``): the passages this seat was shown, and
    # the citations its reply made, each checked; absent in a run without documents.
    shown: list[Passage] = Field(default_factory=list, exclude_if=lambda v: not v)
    citations: list[Citation] = Field(default_factory=list, exclude_if=lambda v: not v)
    # The context tools the seat called before it answered (a model with tool calling);
    # the turn's tokens and cost are summed over all its calls.
    tool_calls: list[ToolCall] = Field(default_factory=list, exclude_if=lambda v: not v)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.content)

    @property
    def text(self) -> str | None:
        """The reply as seats, readers and the meter read it: ``content``, and for a ballot
        asked for as JSON, the ballot as prose (its reason, then its line:
        ``council.records.replies.ballot_prose``)."""
        if not self.structured or self.content is None:
            return self.content
        return ballot_prose(self.content, cut=self.truncated)


class SeatAssignment(Record):
    seat: str
    persona: str
    role: Literal["panel", "chair"]
    provider: str
    model: str
    card_path: str | None  # None: a card defined in code
    card_hash: str
    anonymous_label: str | None = None
    reason: str | None = None  # why the seat is on this model
    weight: float = 1.0  # its vote's weight in a tally
    # The card's reasoning_method (nyk's routing table shows it); left out when the card has none.
    method: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # How hard its model was asked to reason; left out of the JSON when not given.
    reasoning_effort: str | None = Field(default=None, exclude_if=lambda v: v is None)


class Ballot(Record):
    """One seat's parsed vote. ``problem`` says what was wrong or guessed in its reply."""

    seat: str
    valid: bool
    stance: str | None = None  # an option, or the estimate as text for numeric votes
    value: float | None = None  # numeric votes
    order: list[str] = Field(default_factory=list)  # borda: options best first
    confidence: float = 0.5  # the factor the vote is weighted by
    confidence_label: str | None = None  # a level scale's word (high, med, low)
    dealbreaker: str | None = None  # harmful scale: "yes" when held; reversal: the finding
    problem: str | None = None
    reason: str | None = None  # the reply's last sentence before its vote line
    raw_stance: str | None = None  # the stance as written, before it was normalised
    reasked: bool = False  # the seat was asked once more for its stance line
    # How the ballot was read: "structured" from the JSON object a schema asked for, "parsed"
    # from the text line; None for a ballot with nothing to read (no reply, an absent seat).
    read: Literal["structured", "parsed"] | None = Field(
        default=None, exclude_if=lambda v: v is None
    )


class RankingBallot(Record):
    """One seat's parsed ranking of the other seats' answers, best first (seat names)."""

    seat: str
    order: list[str]
    problems: list[str] = Field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.order)


# How a vote came out. consensus: an option reached the threshold. split: none did, and the
# ballots that could not be counted could not have changed that ("No consensus reached": the
# options go to the decision-maker). inconclusive: none did, but the ballots that could not be
# counted (unreadable even when asked again, a failed call, an absent seat) weigh enough that,
# had they backed the leading option (or any one option) at full confidence, it would have:
# the council's answer is unknown, not split (so is a vote whose every ballot went uncounted).
VoteOutcome = Literal["consensus", "split", "inconclusive"]


class EffectiveVotes(Record):
    """How many independent votes a tally's seats carried (issue 31): Kish's n_eff with its
    interval, what it was measured on (``basis``), and the seats counted (``n``). Estimated by
    ``council.meter.independence``: across earlier runs of the same panel when there are
    enough, else within this run; ``weights`` are the seats' independence weights (what the
    ``independence_weighted`` rule multiplies base weights by), ``note`` the verdict's warning
    when the consensus rests on correlated seats."""

    n_eff: float
    low: float
    high: float
    basis: str  # "40 earlier runs of this panel", "this run: 5 seats' reasons, ..."
    n: int  # the seats whose votes were counted
    mean_correlation: float
    method: str  # the estimator and how its interval was found
    weights: dict[str, float] = Field(default_factory=dict)
    note: str | None = Field(default=None, exclude_if=lambda v: v is None)


class Tally(Record):
    """What a vote or ranking stage decided in one round."""

    stage: str
    round: int = 0
    kind: Literal["vote", "ranking"]
    rule: str
    ballots: list[Ballot] = Field(default_factory=list)
    rankings: list[RankingBallot] = Field(default_factory=list)
    winner: str | None = None
    agreement: float | None = None  # the winner's weight over every seat's base weight, 0..1
    consensus: bool = False
    threshold: float | None = None
    dissenters: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    invalid: list[str] = Field(default_factory=list)  # seats whose reply could not be counted
    abstained: list[str] = Field(default_factory=list)
    denominator: float | None = None  # the base weights of every seat asked, abstainers too
    split: bool = False  # no option reached the threshold: reported as it is, not forced
    arguments: dict[str, str] = Field(default_factory=dict)  # option -> its strongest reason
    merged: dict[str, str] = Field(default_factory=dict)  # stance as written -> canonical
    outcome: VoteOutcome | None = None  # votes only (see VoteOutcome); None in older records
    weights: dict[str, float] = Field(default_factory=dict)  # seat -> its base weight
    needed: float | None = None  # the weight an option needs: threshold x denominator
    tied: list[str] = Field(default_factory=list)  # options level at the top: a live split
    ballot: str | None = None  # the ballot scale the lines were read by
    dealbreaker: Literal["reversal", "harmful"] = "reversal"  # what a dealbreaker means
    # Independent votes among the counted seats (issue 31); None where none was estimated.
    effective_votes: EffectiveVotes | None = Field(default=None, exclude_if=lambda v: v is None)


# Gates whose firing is news for the person who convened the run, shown as it happens (the
# live display) as well as in the transcript: nyk's flag on a divergent restatement.
FLAGGED_TO_USER = frozenset({"restatement"})


class GateNote(Record):
    """A gate's decision in one stage and round: whether it fired, on whom, and why."""

    stage: str
    round: int = 0
    gate: str  # novelty, evidence-monoculture, diversity, drift, ...
    fired: bool
    seats: list[str] = Field(default_factory=list)
    reason: str
    # What a measuring gate measured and the line it was held to (diversity against its floor,
    # the largest drift against its cap); absent for gates that count rather than measure.
    measured: float | None = Field(default=None, exclude_if=lambda v: v is None)
    threshold: float | None = Field(default=None, exclude_if=lambda v: v is None)
    # A gate that tests against a distribution (diversity against the no-persona baseline):
    # the floor's 5th and 95th percentiles, the p-value, the level it was held to and how it
    # was tested. Absent from notes written before guards tested, and from point comparisons.
    floor_low: float | None = Field(default=None, exclude_if=lambda v: v is None)
    floor_high: float | None = Field(default=None, exclude_if=lambda v: v is None)
    p_value: float | None = Field(default=None, exclude_if=lambda v: v is None)
    alpha: float | None = Field(default=None, exclude_if=lambda v: v is None)
    method: str | None = Field(default=None, exclude_if=lambda v: v is None)


class RunHeader(Record):
    """What is fixed when a run starts."""

    run_id: str
    run_dir: str | None
    question: str
    protocol: str
    protocol_hash: str
    seats: list[SeatAssignment]
    stages: list[str] = Field(default_factory=list)  # speaking stages in protocol order
    started_at: datetime
    # How the panel was chosen, one line each: the panel, a duo's pair, the domain seat (which
    # member weighs 1.5 and the similarity that chose it, or why none). Absent when none.
    choice_notes: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)
    # The context documents given as evidence: id, path, sha256, size (never their text).
    documents: list[DocumentInfo] = Field(default_factory=list, exclude_if=lambda v: not v)
    # A follow-up (``FollowUp``): the run it follows, every run before it in the thread (root
    # first, the parent last) and what each seat was shown of the parent, by seat. Absent from
    # a run that follows none, which serializes as before.
    parent_run: str | None = Field(default=None, exclude_if=lambda v: v is None)
    thread: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)
    earlier: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)

    @property
    def follow_up_link(self) -> FollowUp | None:
        """What makes this run a follow-up (None: it follows no run), as resume reads it."""
        if self.parent_run is None:
            return None
        return FollowUp(parent_run=self.parent_run, thread=self.thread, earlier=self.earlier)


class FollowUp(Record):
    """A run convened on a new question after a finished one, by the same seats: the parent's
    ID, the thread of runs up to it (root first, parent last) and each seat's digest of the
    parent (its verdict and that seat's own last position), shown to that seat only."""

    parent_run: str
    thread: list[str]
    earlier: dict[str, str] = Field(default_factory=dict)


class LoopOutcome(Record):
    loop: str
    rounds: int  # rounds actually run
    max_rounds: int
    stopped_early: str | None = None  # why it stopped before max_rounds


RunStatus = Literal["completed", "failed", "stopped"]  # stopped: a budget ran out


ENFORCEMENT_TAGS = (
    "dissent_quota",
    "novelty_gate",
    "agreement_check",
    "anti_recursion",
    "missing_stance",
)


class SessionMetadata(Record):
    """How a run went, in a stable schema: nyk's STEP 8 block (SKILL.md v1.2.0) and council's
    own counts. Fields were only ever added, each with a default, so version 1 records read
    (bump ``schema_version`` on a change that would not)."""

    schema_version: Literal[1] = 1
    mode: str  # the protocol
    panel_size: int
    rounds_run: int  # the most rounds any loop ran; 1 without loops
    providers: list[str]  # every provider that answered
    fallbacks: int  # turns answered by a model other than the seat's own
    reasks: int  # stance lines asked for again
    calls: int
    tokens: int  # prompt + completion, reused answers excluded
    duration_s: float
    # Added fields, left out when zero so a run with nothing to count reads as before.
    over_limit: int = Field(default=0, exclude_if=lambda v: v == 0)  # replies over their words
    truncated: int = Field(default=0, exclude_if=lambda v: v == 0)  # replies left cut off
    continued: int = Field(default=0, exclude_if=lambda v: v == 0)  # cut-off replies continued
    # Of output_tokens, those reasoning models spent thinking; replies reasoning left empty.
    reasoning_tokens: int = Field(default=0, exclude_if=lambda v: v == 0)
    reasoning_cost_usd: float = Field(default=0.0, exclude_if=lambda v: v == 0)
    starved: int = Field(default=0, exclude_if=lambda v: v == 0)
    # nyk's fields. Enforcement: every extra call a rule sent (a re-ask, a guard's turn), by
    # the rule's tag (ENFORCEMENT_TAGS, and council's own: diversity, drift).
    enforcement_calls: int = 0
    enforcement_breakdown: dict[str, int] = Field(default_factory=dict)
    chairman_failed_fallback: bool = False  # the chair's model failed; another wrote it
    tools_used: bool = False  # seats in council call no tools
    input_tokens: int = 0  # reused answers excluded
    output_tokens: int = 0
    provider_count: int = 0  # providers the seats were bound to
    fallbacks_triggered: list[str] = Field(default_factory=list)  # "seat->provider/model"
    fallback_log: list[str] = Field(default_factory=list)  # "[FALLBACK] seat failed on ..."
    # Runs with context documents: citations the replies made, and those council could not
    # find support for (no such document, lines outside it, a quote not in them).
    citations: int = Field(default=0, exclude_if=lambda v: v == 0)
    unsupported_citations: int = Field(default=0, exclude_if=lambda v: v == 0)


class Outcome(Record):
    """Whether a verdict later proved right: a prediction, who owns it, when to look again,
    and, once looked at, what happened."""

    run_id: str
    prediction: str | None = None
    owner: str | None = None
    review_by: date | None = None
    status: Literal["open", "confirmed", "revised", "reversed"] = "open"
    note: str | None = None
    recorded_at: datetime


class RunResult(RunHeader):
    """A finished run, completed or failed; failed runs keep every finished turn."""

    status: RunStatus
    error: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    tallies: list[Tally] = Field(default_factory=list)
    loops: list[LoopOutcome] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # guard stages that did not fire, and why
    absent: list[str] = Field(default_factory=list)  # seats that failed for good, and where
    gates: list[GateNote] = Field(default_factory=list)
    synthesis: str | None = None
    finished_at: datetime
    metadata: SessionMetadata | None = None
    # The verdict's check; None where none was made (no chair wrote it, an older record).
    verdict_check: VerdictCheck | None = Field(default=None, exclude_if=lambda v: v is None)
    # Audits of the verdict, one per auditor model (``VerdictAudit``); left out when none.
    audits: list[VerdictAudit] = Field(default_factory=list, exclude_if=lambda v: not v)
    # What the run was convened with, as its start recorded it: the card and protocol texts
    # it used, so the meter reads the run as it was, never the library as it is now. Not in
    # the run's JSON (it is the run_started event's); None where the record holds none.
    config: RunConfig | None = Field(default=None, exclude=True)

    @property
    def wall_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def outcome(self) -> VoteOutcome | None:
        """How the council's vote came out (``VoteOutcome``): its last vote tally's; None for
        a protocol that takes no vote."""
        votes = [t for t in self.tallies if t.kind == "vote" and t.outcome is not None]
        return votes[-1].outcome if votes else None

    @property
    def effective_votes(self) -> EffectiveVotes | None:
        """How many independent votes the council's last vote carried (``EffectiveVotes``);
        None for a protocol that takes no vote, or a run recorded without them."""
        votes = [t for t in self.tallies if t.kind == "vote" and t.effective_votes is not None]
        return votes[-1].effective_votes if votes else None

    def turns_in(self, stage: str) -> list[Turn]:
        return [t for t in self.turns if t.stage == stage]

    @property
    def completion_tokens(self) -> int:
        return sum(t.completion_tokens or 0 for t in self.turns)

    def transcript(self) -> str:
        """The run as Markdown a person reads top to bottom (the run folder's transcript.md)."""
        return TRANSCRIPT_RENDERERS["markdown"](self)

    def _repr_html_(self) -> str:  # a notebook shows the transcript
        return TRANSCRIPT_RENDERERS["html"](self)

    def follow_up(self, question: str, **kwargs: Any) -> RunResult:
        """Convene the same seats on ``question``, each shown a bounded digest of this run's
        verdict and its own last position; a new run in the same ledger, linked to this one.
        Keyword arguments are ``council.app.follow_up.follow_up``'s (``sinks``, ...)."""
        return _follow_ups("sync")(self, question, **kwargs)

    async def afollow_up(self, question: str, **kwargs: Any) -> RunResult:
        """``follow_up`` inside an event loop."""
        return await _follow_ups("async")(self, question, **kwargs)


# records/transcript.py renders a run and registers its renderers here: it imports this module,
# so this module cannot import it. ``council.records`` imports it before any run exists.
TRANSCRIPT_RENDERERS: dict[str, Callable[[RunResult], str]] = {}
# council/app/follow_up.py convenes follow-ups and registers them here ("sync", "async"): the
# app layer sits above this one. ``council.records`` imports it whenever ``council.app`` loads.
FOLLOW_UPS: dict[str, Callable[..., Any]] = {}


def _follow_ups(kind: str) -> Callable[..., Any]:
    if kind not in FOLLOW_UPS:  # this run was read with no part of council.app imported
        raise CouncilError("follow-ups are convened by council.app: 'import council.app' first")
    return FOLLOW_UPS[kind]
