"""Drift measured inside the model: where each activation-recorded turn lies on the assistant
axis, how that moves across a seat's turns, and whether the embedding meter's drift (the cheap
analogue, from reply embeddings) tracks it over the same turns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from council.meter.activations.stats import correlations
from council.meter.intervals import Interval
from council.records.axis import AssistantAxis
from council.records.run import RunResult, Turn

TurnKey = tuple[str, str, int]  # seat, stage, round


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AxisUsed(_Part):
    """The assistant axis the turns were placed on."""

    id: str
    model: str
    layer: int
    # The axis file's held-out AUC as stored (``Interval.bounds_json()`` and ``held_out``).
    held_out_auc: dict[str, Any]

    @property
    def auc(self) -> Interval:
        return Interval.model_validate(self.held_out_auc)


class PlacedTurn(_Part):
    seat: str
    stage: str
    round: int
    projection: float | None
    position: float | None  # 0 = the axis's persona replies, 1 = its assistant replies


class SeatTrend(_Part):
    """One seat over its placed turns, in run order."""

    seat: str
    turns: int
    first: float
    last: float
    change: float | None
    slope_per_turn: float | None  # positive: sliding toward the default assistant


class Pearson(_Part):
    r: float
    p: float


class Spearman(_Part):
    rho: float
    p: float


class Correlation(_Part):
    """Of paired values; ``None`` with a note where there are too few pairs or no spread."""

    pairs: int
    pearson: Pearson | None = None
    spearman: Spearman | None = None
    note: str | None = None


class ActivationDrift(_Part):
    """The activation drift of one run: each placed turn, each seat's trend, what was skipped
    and why, and how well the embedding meter's drift tracked it."""

    axis: AxisUsed | None
    recorded_turns: int
    turns: list[PlacedTurn]
    seats: list[SeatTrend]
    skipped: dict[str, int]
    embedding_correlation: Correlation


def _projection(turn: Turn, axis: AssistantAxis | None) -> tuple[float | None, str | None]:
    """The turn's projection on ``axis`` (from its recorded means), or the projection it
    recorded itself when no axis is given; ``None`` and why when neither is possible."""
    recorded = turn.activations
    assert recorded is not None
    if axis is None:
        if recorded.axis_projection is None:
            return None, "recorded without an axis"
        return recorded.axis_projection, None
    if recorded.model_sha256 != axis.model_sha256:
        return None, "recorded on other weights than the axis's"
    if axis.layer in recorded.layers:
        return axis.project(recorded.means[recorded.layers.index(axis.layer)]), None
    if recorded.axis_id == axis.axis_id and recorded.axis_projection is not None:
        return recorded.axis_projection, None
    return None, f"layer {axis.layer} not recorded (has {recorded.layers})"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _seat_drift(rows: Sequence[PlacedTurn]) -> list[SeatTrend]:
    """Per seat, over its turns in run order: first and last position, the change, and the
    least-squares slope per turn (positive = sliding toward the default assistant)."""
    by_seat: dict[str, list[float]] = {}
    for row in rows:
        if row.position is not None:
            by_seat.setdefault(row.seat, []).append(row.position)
    seats = []
    for seat, positions in by_seat.items():
        slope = None
        if len(positions) >= 2:
            slope = float(np.polyfit(np.arange(len(positions)), positions, 1)[0])
        seats.append(
            SeatTrend(
                seat=seat,
                turns=len(positions),
                first=positions[0],
                last=positions[-1],
                change=_round(positions[-1] - positions[0]),
                slope_per_turn=_round(slope),
            )
        )
    return seats


def activation_drift(
    run: RunResult,
    axis: AssistantAxis | None = None,
    embedding_drift: Sequence[Any] | None = None,
) -> ActivationDrift:
    """The activation drift report of a run.

    Each panel turn that recorded activations gets its projection on ``axis`` and its position
    (0 = the axis's persona replies, 1 = its assistant replies, the scale of the embedding
    meter's drift). ``embedding_drift`` is the embedding meter's drift rows (each with
    ``seat``, ``stage``, ``round`` and ``position`` attributes): paired by turn, their
    Pearson and Spearman correlation with the activation positions says whether the cheap
    meter tracks the real one."""
    panel = {s.seat for s in run.seats if s.role == "panel"}
    recorded = [t for t in run.turns if t.ok and t.activations is not None and t.seat in panel]
    rows: list[PlacedTurn] = []
    skipped: dict[str, int] = {}
    for turn in recorded:
        projection, why = _projection(turn, axis)
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        assert projection is not None
        position = axis.position(projection) if axis is not None else None
        placed = PlacedTurn(
            seat=turn.seat,
            stage=turn.stage,
            round=turn.round,
            projection=_round(projection),
            position=_round(position),
        )
        rows.append(placed)
    embedded = {
        (d.seat, d.stage, d.round): float(d.position)
        for d in embedding_drift or ()
        if d.position is not None
    }
    pairs = [
        (row.position, embedded[key])
        for row in rows
        if row.position is not None and (key := (row.seat, row.stage, row.round)) in embedded
    ]
    correlation = correlations([a for a, _ in pairs], [e for _, e in pairs])
    if not embedding_drift:
        correlation["note"] = "no embedding drift to compare (measure it with --baseline K)"
    used = (
        None
        if axis is None
        else AxisUsed(
            id=axis.axis_id, model=axis.model, layer=axis.layer, held_out_auc=axis.held_out_auc
        )
    )
    return ActivationDrift(
        axis=used,
        recorded_turns=len(recorded),
        turns=rows,
        seats=_seat_drift(rows),
        skipped=skipped,
        embedding_correlation=Correlation.model_validate(correlation),
    )


def _counts(auc: Interval) -> str:
    """What the AUC rests on (", 4 assistant against 6 persona replies") where the axis
    recorded it; axes built before the counts were recorded say nothing rather than guess."""
    if auc.positives is None or auc.negatives is None:
        return ""
    return f", {auc.positives} assistant against {auc.negatives} persona replies"


def drift_table(report: ActivationDrift) -> str:
    """The report as plain text, for the command line."""
    lines = [f"activation drift: {report.recorded_turns} turns recorded activations"]
    axis = report.axis
    if axis:
        auc = axis.auc
        lines.append(
            f"axis {axis.id} ({axis.model}, layer {axis.layer}; held-out AUC "
            f"{auc.value:.3f} [{auc.low}, {auc.high}]{_counts(auc)})"
        )
    lines.append(f"{'seat':<16} {'stage':<22} {'round':>5} {'projection':>11} {'position':>9}")
    for row in report.turns:
        position = "-" if row.position is None else f"{row.position:.3f}"
        projection = "-" if row.projection is None else f"{row.projection:.3f}"
        lines.append(
            f"{row.seat:<16} {row.stage:<22} {row.round:>5} {projection:>11} {position:>9}"
        )
    for seat in report.seats:
        lines.append(
            f"{seat.seat}: {seat.turns} turns, change {seat.change}, "
            f"slope {seat.slope_per_turn} per turn"
        )
    for why, count in report.skipped.items():
        lines.append(f"skipped {count} turns: {why}")
    corr = report.embedding_correlation
    if corr.pearson is not None and corr.spearman is not None:
        lines.append(
            f"vs embedding drift over {corr.pairs} turns: Pearson r "
            f"{corr.pearson.r} (p {corr.pearson.p:.3g}), Spearman rho "
            f"{corr.spearman.rho} (p {corr.spearman.p:.3g})"
        )
    else:
        lines.append(f"vs embedding drift: {corr.note}")
    return "\n".join(lines)
