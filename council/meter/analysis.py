"""The diversity of one run: per stage and round, did the seats actually say different things,
did that survive the rounds, who stood apart, who flipped, and who drifted out of character."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.meter.embedders import Embedder
from council.meter.grounding import seat_grounding
from council.meter.identifiability import turn_identifiability
from council.meter.metrics import (
    EmbeddingError,
    centroid_distances,
    check_embeddings,
    drift_position,
    mean_pairwise_distance,
    normalised_mean,
    vendi_score,
)
from council.meter.run_report import (
    Drift,
    NoPersonaBaseline,
    RunDiversity,
    SeatInfo,
    SeatPoint,
    StageDiversity,
    StanceFlip,
)
from council.personas.card import PersonaCard, load_card, parse_card
from council.personas.library import find_persona
from council.records.measurable import BASELINE_ANSWERS, measurable
from council.records.run import RunResult, SeatAssignment, Turn

__all__ = [
    "Drift",
    "NoPersonaBaseline",
    "RunDiversity",
    "SeatInfo",
    "SeatPoint",
    "StageDiversity",
    "StanceFlip",
    "analyse_run",
    "card_reference_text",
    "persona_references",
]


def persona_references(run: RunResult) -> tuple[dict[str, str], str | None]:
    """Each panel seat's own voice as its card stated it when the run was convened: the card
    text the run recorded (matched by the seat's card hash), never the library as it is now.
    A record without that text (one made before runs recorded it, or of a council seated in
    code without a configuration) falls back to the card where the run found it, else by
    name; the note says which seats did."""
    recorded = _recorded_cards(run)
    references: dict[str, str] = {}
    fallback: list[str] = []
    for seat in run.seats:
        if seat.role != "panel":
            continue
        card = recorded.get(seat.card_hash)
        if card is None:
            fallback.append(seat.seat)
        references[seat.seat] = card_reference_text(card or _library_card(seat))
    if not fallback:
        return references, None
    return references, (
        f"the run recorded no card text for {', '.join(fallback)}: their drift is measured "
        "against the card as the library holds it now"
    )


def _recorded_cards(run: RunResult) -> dict[str, PersonaCard]:
    """The cards the run recorded, by the SHA-256 of their text (a seat's ``card_hash``)."""
    if run.config is None:
        return {}
    cards = {}
    for recorded in [*run.config.panel, run.config.chair]:
        where = Path(recorded.path or f"<card '{recorded.name}' as recorded>")
        card = parse_card(recorded.text, where)
        cards[card.content_hash] = card
    return cards


def _library_card(seat: SeatAssignment) -> PersonaCard:
    """The card where the run found it, or by name if it has moved since."""
    path = Path(seat.card_path) if seat.card_path else None
    return load_card(path) if path and path.is_file() else find_persona(seat.persona)


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

    drift, note, record_note = _drift(run, measured, vectors, index, embedder, assistant_voice)
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
        seats=[
            SeatInfo(
                seat=s.seat, persona=s.persona, role=s.role, model=s.model, provider=s.provider
            )
            for s in run.seats
        ],
        vote_tallies=sum(1 for t in run.tallies if t.kind == "vote"),
        no_persona_baseline=_baseline(embedder, assistant_voice, short_answers),
        short_turns_skipped=len(short),
        identifiability=turn_identifiability(
            measured, vectors, lambda t: t.seat, of="seat", embedder=embedder.name
        ),
        record_notes=[record_note] if record_note else [],
        grounding=seat_grounding(run),
    )


def _long_enough(
    voices: Mapping[str, Sequence[str]] | None,
) -> tuple[dict[str, list[str]] | None, dict[str, int]]:
    """The no-persona answers long enough to measure, per model, and how many were not."""
    if not voices:
        return None, {}
    kept = {model: [t for t in texts if measurable(t)] for model, texts in voices.items()}
    short = {
        model: sum(1 for t in texts if t.strip()) - len(kept[model])
        for model, texts in voices.items()
    }
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
            baselines.append(
                NoPersonaBaseline(
                    model=model,
                    mean_pairwise_distance=_round4(distance),
                    samples=len(texts),
                    short_answers_skipped=short.get(model, 0),
                    note=note,
                )
            )
    return baselines


def _stage(stage: str, rnd: int, turns: list[Turn], X: Any) -> StageDiversity:
    labels = [t.seat for t in turns]
    if len(turns) < 2:
        return StageDiversity(
            stage=stage,
            round=rnd,
            seats=len(turns),
            mean_pairwise_distance=None,
            vendi_score=None,
            note="one seat spoke: diversity needs at least two voices",
            labels=labels,
        )
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
            SeatPoint(
                seat=t.seat,
                model=t.model,
                distance_to_centroid=_round4(d),
                outlier=o,
                tokens=t.completion_tokens,
                characters=len(t.text or ""),
            )
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
                    flips.append(
                        StanceFlip(
                            stage=stage,
                            seat=ballot.seat,
                            from_round=before.round,
                            to_round=after.round,
                            from_stance=str(old[ballot.seat]),
                            to_stance=str(ballot.stance),
                        )
                    )
    return flips


def _drift(
    run: RunResult,
    measured: list[Turn],
    vectors: Any,
    index: dict[int, int],
    embedder: Embedder,
    assistant_voice: Mapping[str, Sequence[str]] | None,
) -> tuple[list[Drift], str | None, str | None]:
    """The drift of each measured turn, why any is missing, and which cards it could not read
    from the run's record."""
    if not assistant_voice:
        # The command as it can be run: the run's own ID, in the ledger it was recorded in.
        why = (
            f"no no-persona baseline: run 'council diversity {run.run_id} --baseline' "
            "to measure drift"
        )
        return [], why, None
    texts, fallback = persona_references(run)
    references = {seat: normalised_mean(embedder.encode([text])) for seat, text in texts.items()}
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
        drift.append(
            Drift(
                seat=turn.seat,
                stage=turn.stage,
                round=turn.round,
                position=_round4(position),
                persona_similarity=_round4(vector @ persona),
                assistant_similarity=_round4(vector @ assistant),
            )
        )
    note = f"no no-persona baseline for {', '.join(sorted(missing))}" if missing else None
    return drift, note, fallback


def assistant_texts_by_model(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for row in rows:
        if row.get("content"):
            grouped.setdefault(str(row["model"]), []).append(str(row["content"]))
    return grouped
