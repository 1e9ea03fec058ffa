"""The diversity of one run: per stage and round, did the seats actually say different things,
did that survive the rounds, who stood apart, who flipped, and who drifted out of character."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from council.diversity.embedders import Embedder
from council.diversity.identifiability import Identifiability, turn_identifiability
from council.diversity.metrics import (
    EmbeddingError,
    centroid_distances,
    check_embeddings,
    drift_position,
    mean_pairwise_distance,
    normalised_mean,
    vendi_score,
)
from council.personas.card import PersonaCard, load_card
from council.personas.library import find_persona
from council.records.measurable import BASELINE_ANSWERS, measurable
from council.records.run import RunResult, SeatAssignment, Turn


@dataclass
class SeatPoint:
    seat: str
    model: str
    distance_to_centroid: float
    outlier: bool
    tokens: int | None = None  # the reply's completion tokens, where the provider counted them
    characters: int = 0  # so a short reply flagged as an outlier shows why


@dataclass
class SeatInfo:
    """Who sat where, in the run's seating order: every chart and table lists seats so."""

    seat: str
    persona: str
    role: str
    model: str
    provider: str


@dataclass
class NoPersonaBaseline:
    """The no-persona baseline of one model: the mean pairwise distance between its answers
    under the plain assistant prompt, the diversity that sampling alone produces. (Not the
    placebo floor, the same persona in every seat, which only experiments measure.)"""

    model: str
    mean_pairwise_distance: float
    samples: int  # answers measured
    short_answers_skipped: int = 0  # under MIN_REPLY_CHARACTERS, left out
    note: str | None = None  # why the value is weak, when it is


@dataclass
class StageDiversity:
    stage: str
    round: int
    seats: int  # turns measured
    mean_pairwise_distance: float | None
    vendi_score: float | None
    note: str | None  # why a metric is missing
    labels: list[str] = field(default_factory=list)
    similarity: list[list[float]] = field(default_factory=list)
    points: list[SeatPoint] = field(default_factory=list)


@dataclass
class StanceFlip:
    stage: str
    seat: str
    from_round: int
    to_round: int
    from_stance: str
    to_stance: str


@dataclass
class Drift:
    seat: str
    stage: str
    round: int
    position: float  # 0 = the persona's own voice, 1 = the model's generic-assistant voice
    persona_similarity: float
    assistant_similarity: float


@dataclass
class RunDiversity:
    run_id: str
    question: str
    protocol: str
    embedder: str
    dimension: int
    stages: list[StageDiversity]
    stance_flips: list[StanceFlip]
    drift: list[Drift]
    drift_note: str | None
    failed_turns_skipped: int
    empty_turns_skipped: int
    seats: list[SeatInfo] = field(default_factory=list)
    vote_tallies: int = 0  # 0: the protocol took no vote, so there are no flips to look for
    no_persona_baseline: list[NoPersonaBaseline] = field(default_factory=list)
    short_turns_skipped: int = 0  # panel replies under MIN_REPLY_CHARACTERS, not measured
    # Can the panel's answers be told apart by seat: from embeddings, and from activations
    # where the seats recorded them.
    identifiability: list[Identifiability] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def persona_reference_text(seat: SeatAssignment) -> str:
    """A persona's own voice as its card states it: who it is, how it reasons, what it asks.
    The card is read where the run found it, or by name if it has moved since."""
    path = Path(seat.card_path) if seat.card_path else None
    return card_reference_text(
        load_card(path) if path and path.is_file() else find_persona(seat.persona)
    )


def card_reference_text(card: PersonaCard) -> str:
    """A card's own voice: its description, role, framework and the questions it asks."""
    fields = card.fields
    parts = [fields.description, fields.role, *(fields.framework or []), *(fields.asks or [])]
    return "\n".join(p for p in parts if p)


def _round4(value: float) -> float:
    return round(float(value), 4)


def analyse_run(
    run: RunResult,
    embedder: Embedder,
    *,
    assistant_voice: Mapping[str, Sequence[str]] | None = None,
) -> RunDiversity:
    """Measure a run. ``assistant_voice`` maps a model string to answers that model gave with
    no persona (to the same first-stage prompt): its no-persona baseline; without it drift is
    not measured. Panel replies and baseline answers shorter than ``MIN_REPLY_CHARACTERS`` are
    left out of every measure and counted (``short_turns_skipped``, ``short_answers_skipped``).
    """
    usable = [t for t in run.turns if t.ok and t.text and t.text.strip()]
    panel = {s.seat for s in run.seats if s.role == "panel"}
    short = [t for t in usable if t.seat in panel and not measurable(t.text)]
    usable = [t for t in usable if measurable(t.text)]
    assistant_voice, short_answers = _long_enough(assistant_voice)
    failed = sum(1 for t in run.turns if t.error is not None and t.error != "empty reply")
    empty = sum(
        1 for t in run.turns if t.error == "empty reply" or (t.ok and not (t.text or "").strip())
    )
    order = {s.seat: i for i, s in enumerate(run.seats)}
    # The chair's synthesis is not a voice. Seating order, not finish order, so that every
    # heatmap of the run lists its seats alike.
    measured = sorted(
        (t for t in usable if t.seat in panel), key=lambda t: order.get(t.seat, len(order))
    )
    vectors = check_embeddings(
        embedder.encode([t.text or "" for t in measured]), embedder.dimension
    )
    index = {id(t): i for i, t in enumerate(measured)}

    groups: dict[tuple[str, int], list[Turn]] = {}
    for turn in measured:
        groups.setdefault((turn.stage, turn.round), []).append(turn)
    stages = [
        _stage(stage, rnd, turns, vectors[[index[id(t)] for t in turns]])
        for (stage, rnd), turns in groups.items()
    ]

    drift, note = _drift(run, measured, vectors, index, embedder, assistant_voice)
    return RunDiversity(
        run_id=run.run_id,
        question=run.question,
        protocol=run.protocol,
        embedder=embedder.name,
        dimension=embedder.dimension,
        stages=stages,
        stance_flips=_flips(run),
        drift=drift,
        drift_note=note,
        failed_turns_skipped=failed,
        empty_turns_skipped=empty,
        seats=[SeatInfo(s.seat, s.persona, s.role, s.model, s.provider) for s in run.seats],
        vote_tallies=sum(1 for t in run.tallies if t.kind == "vote"),
        no_persona_baseline=_baseline(embedder, assistant_voice, short_answers),
        short_turns_skipped=len(short),
        identifiability=turn_identifiability(
            measured, vectors, lambda t: t.seat, of="seat", embedder=embedder.name
        ),
    )


def _long_enough(
    voices: Mapping[str, Sequence[str]] | None,
) -> tuple[dict[str, list[str]] | None, dict[str, int]]:
    """The no-persona answers long enough to measure, per model, and how many were not."""
    if not voices:
        return None, {}
    kept = {model: [t for t in texts if measurable(t)] for model, texts in voices.items()}
    short = {model: sum(1 for t in texts if t.strip()) - len(kept[model])
             for model, texts in voices.items()}  # fmt: skip
    return {model: texts for model, texts in kept.items() if texts} or None, short


def _baseline(
    embedder: Embedder, voices: Mapping[str, Sequence[str]] | None, short: Mapping[str, int]
) -> list[NoPersonaBaseline]:
    baselines = []
    for model, texts in sorted((voices or {}).items()):
        if len(texts) >= 2:
            distance = mean_pairwise_distance(embedder.encode(list(texts)))
            thin = len(texts) < BASELINE_ANSWERS
            note = f"fewer than {BASELINE_ANSWERS} answers: a noisy baseline" if thin else None
            baselines.append(NoPersonaBaseline(
                model, _round4(distance), len(texts), short.get(model, 0), note
            ))  # fmt: skip
    return baselines


def _stage(stage: str, rnd: int, turns: list[Turn], X: Any) -> StageDiversity:
    labels = [t.seat for t in turns]
    if len(turns) < 2:
        return StageDiversity(
            stage, rnd, len(turns), None, None,
            note="one seat spoke: diversity needs at least two voices", labels=labels,
        )  # fmt: skip
    centroid = centroid_distances(X)
    return StageDiversity(
        stage=stage,
        round=rnd,
        seats=len(turns),
        mean_pairwise_distance=_round4(mean_pairwise_distance(X)),
        vendi_score=_round4(vendi_score(X)),
        note=None,
        labels=labels,
        similarity=[[_round4(v) for v in row] for row in (X @ X.T)],
        points=[
            SeatPoint(t.seat, t.model, _round4(d), o, t.completion_tokens, len(t.text or ""))
            for t, d, o in zip(turns, centroid.distances, centroid.outliers, strict=True)
        ],
    )


def _flips(run: RunResult) -> list[StanceFlip]:
    flips: list[StanceFlip] = []
    by_stage: dict[str, list[Any]] = {}
    for tally in run.tallies:
        if tally.kind == "vote":
            by_stage.setdefault(tally.stage, []).append(tally)
    for stage, tallies in by_stage.items():
        tallies.sort(key=lambda t: t.round)
        for before, after in itertools.pairwise(tallies):
            old = {b.seat: b.stance for b in before.ballots if b.valid}
            for ballot in after.ballots:
                if ballot.valid and ballot.seat in old and old[ballot.seat] != ballot.stance:
                    flips.append(StanceFlip(stage, ballot.seat, before.round, after.round,
                                            str(old[ballot.seat]), str(ballot.stance)))  # fmt: skip
    return flips


def _drift(
    run: RunResult,
    measured: list[Turn],
    vectors: Any,
    index: dict[int, int],
    embedder: Embedder,
    assistant_voice: Mapping[str, Sequence[str]] | None,
) -> tuple[list[Drift], str | None]:
    if not assistant_voice:
        return (
            [],
            "no no-persona baseline: run 'council diversity RUN --baseline' to measure drift",
        )
    seats = {s.seat: s for s in run.seats}
    references = {
        seat: normalised_mean(embedder.encode([persona_reference_text(s)]))
        for seat, s in seats.items()
        if s.role == "panel"
    }
    assistants = {
        model: normalised_mean(embedder.encode(list(texts)))
        for model, texts in assistant_voice.items()
        if texts
    }
    drift: list[Drift] = []
    missing: set[str] = set()
    for turn in measured:
        assistant = assistants.get(turn.model)
        if assistant is None:
            missing.add(turn.model)
            continue
        vector = vectors[index[id(turn)]]
        persona = references[turn.seat]
        try:
            position = drift_position(vector, persona, assistant)
        except EmbeddingError:
            continue
        drift.append(Drift(turn.seat, turn.stage, turn.round, _round4(position),
                           _round4(vector @ persona), _round4(vector @ assistant)))  # fmt: skip
    note = f"no no-persona baseline for {', '.join(sorted(missing))}" if missing else None
    return drift, note


def assistant_texts_by_model(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in rows:
        if row.get("content"):
            grouped.setdefault(str(row["model"]), []).append(str(row["content"]))
    return grouped


def stage_means(report: RunDiversity) -> dict[str, float]:
    """Mean pairwise distance per stage label, for comparing runs."""
    return {
        f"{s.stage}#{s.round}": s.mean_pairwise_distance
        for s in report.stages
        if s.mean_pairwise_distance is not None
    }
