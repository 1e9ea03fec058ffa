"""The typed report of one run's diversity (``analyse_run``): what reports, pages and tables read
by attribute, so a renamed metric fails the type check instead of printing a dash.

``to_json()`` writes the JSON ``council diversity --json`` prints, key for key as it was when
the report was a dict; ``RunDiversity.model_validate`` reads it back, reports made by earlier
versions included (their missing sections default, ``noise_floor`` is the no-persona baseline's
old name, and keys this version does not know are kept).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from council.meter.activations.drift import ActivationDrift
from council.meter.identifiability import Identifiability
from council.records.verdicts import VerdictAudit


class ReportModel(BaseModel):
    """A part of a report: frozen, read by attribute, written as plain JSON (no NaN)."""

    model_config = ConfigDict(frozen=True)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.model_dump_json())  # NaN and infinities: null
        return data


class SeatPoint(ReportModel):
    seat: str
    model: str
    distance_to_centroid: float
    outlier: bool
    tokens: int | None = None  # the reply's completion tokens, where the provider counted them
    characters: int = 0  # so a short reply flagged as an outlier shows why


class SeatInfo(ReportModel):
    """Who sat where, in the run's seating order: every chart and table lists seats so."""

    seat: str
    persona: str
    role: str
    model: str
    provider: str


class NoPersonaBaseline(ReportModel):
    """The no-persona baseline of one model: the mean pairwise distance between its answers
    under the plain assistant prompt, the diversity that sampling alone produces. (Not the
    placebo floor, the same persona in every seat, which only experiments measure.)"""

    model: str
    mean_pairwise_distance: float | None
    samples: int  # answers measured
    short_answers_skipped: int = 0  # under MIN_REPLY_CHARACTERS, left out
    note: str | None = None  # why the value is weak, when it is


class StageDiversity(ReportModel):
    stage: str
    round: int
    seats: int  # turns measured
    mean_pairwise_distance: float | None
    vendi_score: float | None
    note: str | None  # why a metric is missing
    labels: list[str] = Field(default_factory=list)
    similarity: list[list[float | None]] = Field(default_factory=list)
    points: list[SeatPoint] = Field(default_factory=list)


class StanceFlip(ReportModel):
    stage: str
    seat: str
    from_round: int
    to_round: int
    from_stance: str
    to_stance: str


class Drift(ReportModel):
    seat: str
    stage: str
    round: int
    position: float | None  # 0 = the persona's own voice, 1 = the model's generic-assistant voice
    persona_similarity: float | None
    assistant_similarity: float | None


class SeatGrounding(ReportModel):
    """How much of one seat's answers rest on the context documents: its citations council
    found supported, and its turns with at least one such citation."""

    seat: str
    turns: int  # its answered turns
    citations: int
    valid: int
    valid_share: float | None  # valid / citations; None when it cited nothing
    grounded_turn_share: float | None  # turns with a valid citation / turns


class RunDiversity(ReportModel):
    """How different one run's seats were, per stage and round, and why anything is missing."""

    model_config = ConfigDict(frozen=True, extra="allow")  # keys of other versions are kept

    run_id: str
    question: str
    protocol: str
    embedder: str
    dimension: int | None
    stages: list[StageDiversity] = Field(default_factory=list)
    stance_flips: list[StanceFlip] = Field(default_factory=list)
    drift: list[Drift] = Field(default_factory=list)
    drift_note: str | None = None
    failed_turns_skipped: int = 0
    empty_turns_skipped: int = 0
    seats: list[SeatInfo] = Field(default_factory=list)
    vote_tallies: int = 0  # 0: the protocol took no vote, so there are no flips to look for
    no_persona_baseline: list[NoPersonaBaseline] = Field(default_factory=list)
    short_turns_skipped: int = 0  # panel replies under MIN_REPLY_CHARACTERS, not measured
    # Can the panel's answers be told apart by seat: from embeddings, and from activations
    # where the seats recorded them.
    identifiability: list[Identifiability] = Field(default_factory=list)
    # What was read from the library as it is now because the run's record lacks it (a card's
    # or the protocol's text, in records made before runs kept them); absent when nothing was.
    record_notes: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)
    # Drift along the assistant axis, for runs whose seats recorded activations; absent else.
    activation_drift: ActivationDrift | None = Field(default=None, exclude_if=lambda v: v is None)
    # The audits of the run's verdict (``council audit``, an auditor stage), as the run
    # records them; absent when it has none.
    audits: list[VerdictAudit] = Field(default_factory=list, exclude_if=lambda v: not v)
    # Runs with context documents: each seat's grounding share; absent for runs without.
    grounding: list[SeatGrounding] = Field(default_factory=list, exclude_if=lambda v: not v)

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        """Reports made before the no-persona baseline had its name called it ``noise_floor``."""
        if isinstance(data, dict) and "noise_floor" in data:
            data = dict(data)
            floor = data.pop("noise_floor")
            data["no_persona_baseline"] = data.get("no_persona_baseline") or floor
        return data

    def seat_order(self) -> list[str]:
        """The panel seats in the run's seating order (from ``seats``; reports written before
        it was recorded fall back to the order seats first appear in)."""
        seats = [s.seat for s in self.seats if s.role != "chair"]
        for stage in self.stages:
            seats += [x for x in stage.labels if x not in seats]
        for point in self.drift:
            seats += [point.seat] if point.seat not in seats else []
        return seats

    def stage_means(self) -> dict[str, float]:
        """Mean pairwise distance per stage label, for comparing runs."""
        return {
            f"{s.stage}#{s.round}": s.mean_pairwise_distance
            for s in self.stages
            if s.mean_pairwise_distance is not None
        }
