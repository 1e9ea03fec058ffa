"""Formatting shared by the tables and the HTML page: a missing or non-finite number is shown
as a dash, never as ``nan``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from council.meter.experiment_report import EndpointTest, ExperimentSummary
from council.meter.run_report import RunDiversity, SeatPoint, StageDiversity
from council.records.measurable import MIN_REPLY_CHARACTERS

MISSING = "-"

# The experiment metrics, in the order reports show them; others follow in their own order.
METRIC_ORDER = (
    "blind_mean_pairwise_distance",
    "blind_vendi_score",
    "above_placebo_floor",
    "convergence",
    "drift",
)
# Metrics measured on the same scale as the placebo floor (the same persona in every seat).
FLOOR_METRICS = frozenset({"blind_mean_pairwise_distance"})
COMPARISON_HEADERS = ["metric", "a", "b", "difference", "95% CI", "p", "Holm p", "role"]


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt(value: Any, digits: int = 3) -> str:
    number = finite(value)
    return MISSING if number is None else f"{number:.{digits}f}"


def interval(ci: Any) -> tuple[float, float] | None:
    """A ``[lo, hi]`` pair of finite numbers, or ``None``."""
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        return None
    lo, hi = finite(ci[0]), finite(ci[1])
    return None if lo is None or hi is None else (min(lo, hi), max(lo, hi))


def fmt_ci(ci: Any, digits: int = 3) -> str:
    pair = interval(ci)
    return MISSING if pair is None else f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"


def fmt_p(value: Any) -> str:
    number = finite(value)
    if number is None:
        return MISSING
    return "<0.001" if number < 0.001 else f"{number:.3f}"


def fmt_int(value: Any) -> str:
    number = finite(value)
    return MISSING if number is None else str(int(number))


def stage_label(stage: Any, rnd: Any) -> str:
    """``opening`` for a stage outside a loop (round 0), ``rebuttal r2`` inside one."""
    number = finite(rnd)
    return f"{stage} r{int(number)}" if number else str(stage)


def ordered_metrics(names: Iterable[str]) -> list[str]:
    seen = list(dict.fromkeys(names))
    known = [m for m in METRIC_ORDER if m in seen]
    return known + [m for m in seen if m not in METRIC_ORDER]


def arm_metrics(summary: ExperimentSummary) -> list[str]:
    names: list[str] = []
    for arm in summary.arms:
        names += list(arm.metrics)
    return ordered_metrics(names)


def seat_colours(report: RunDiversity) -> dict[str, str]:
    """One colour per panel seat, by seating order: the same in every chart of the page."""
    from council.reports.svg import colour

    return {seat: colour(i) for i, seat in enumerate(report.seat_order())}


def drift_pivot(
    report: RunDiversity,
) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """Mean drift position by (seat, stage/round label): seats in seating order, labels in run
    order, values."""
    order = [stage_label(s.stage, s.round) for s in report.stages]
    sums: dict[tuple[str, str], list[float]] = {}
    seats: list[str] = []
    labels: list[str] = []
    for point in report.drift:
        position = finite(point.position)
        if position is None:
            continue
        seat, label = point.seat, stage_label(point.stage, point.round)
        seats += [seat] if seat not in seats else []
        labels += [label] if label not in labels else []
        sums.setdefault((seat, label), []).append(position)
    labels.sort(key=lambda lab: order.index(lab) if lab in order else len(order))
    seating = report.seat_order()
    seats.sort(key=lambda seat: seating.index(seat) if seat in seating else len(seating))
    means = {key: sum(v) / len(v) for key, v in sums.items()}
    return seats, labels, means


def reply_length(point: SeatPoint) -> str:
    """``14 tokens`` (or characters where the provider counted no tokens): a short reply is
    the usual reason a seat stands apart."""
    if point.tokens is not None:
        return f"{point.tokens} tokens"
    return f"{point.characters} characters" if point.characters else "length unknown"


def outliers(stage: StageDiversity) -> str:
    if not stage.points:
        return MISSING
    flagged = [p for p in stage.points if p.outlier]
    return ", ".join(f"{p.seat} ({reply_length(p)})" for p in flagged) or "none"


def seat_rows(report: RunDiversity) -> list[list[str]]:
    """The seat -> model map, in seating order."""
    return [[s.seat, s.persona, s.role, s.model, s.provider] for s in report.seats]


BASELINE_HEADERS = ["model", "mean pairwise distance", "answers", "note"]


def skipped_turns(report: RunDiversity) -> str:
    """What the meter left out of a run, and why."""
    return (
        f"{report.failed_turns_skipped} failed turns, "
        f"{report.empty_turns_skipped} empty turns, "
        f"{report.short_turns_skipped} panel replies under "
        f"{MIN_REPLY_CHARACTERS} characters"
    )


def baseline_rows(report: RunDiversity) -> list[list[str]]:
    rows = []
    for f in report.no_persona_baseline:
        short = f.short_answers_skipped
        notes = [f"{short} under {MIN_REPLY_CHARACTERS} characters left out"] if short else []
        notes += [f.note] if f.note else []
        rows.append(
            [
                f.model,
                fmt(f.mean_pairwise_distance),
                fmt_int(f.samples),
                "; ".join(notes),
            ]
        )
    return rows


def vote_summary(report: RunDiversity) -> str | None:
    """What to say when no seat flipped; ``None`` where the protocol took no vote, so a page
    has no vote section at all. Reports written before votes were counted show flips only."""
    votes = report.vote_tallies
    if not votes:
        return None
    if votes == 1:
        return "One vote round: no seat could change its vote."
    return "No seat changed its vote between rounds."


def has_vote_section(report: RunDiversity) -> bool:
    return bool(report.stance_flips) or bool(report.vote_tallies)


def decomposition_shares(
    decomposition: Mapping[str, float | str | None] | None,
) -> tuple[list[tuple[str, float | None]], str | None]:
    """The persona, family and residual shares (``None`` where undefined) and why any is."""
    if not decomposition:
        return [], None
    shares = [
        (str(k), finite(v)) for k, v in decomposition.items() if k not in ("note", "undefined")
    ]
    note = decomposition.get("note")
    return shares, None if note is None else str(note)


def stage_rows(stages: Sequence[StageDiversity]) -> list[list[str]]:
    """One row per stage and round, shared by the table and the page."""
    return [
        [
            s.stage,
            fmt_int(s.round),
            fmt_int(s.seats),
            fmt(s.mean_pairwise_distance),
            fmt(s.vendi_score, 2),
            outliers(s),
            s.note or "",
        ]
        for s in stages
    ]


def comparison_rows(comparisons: Sequence[EndpointTest]) -> list[list[str]]:
    """One row per test: a primary endpoint's p stands alone; a secondary's is shown beside
    its Holm-adjusted p, the one to read."""
    return [
        [
            c.metric,
            c.a,
            c.b,
            fmt(c.difference),
            fmt_ci(c.ci95),
            fmt_p(c.p_value),
            fmt_p(c.adjusted_p),
            c.role or "",
        ]
        for c in comparisons
    ]


def power_lines(summary: ExperimentSummary) -> list[str]:
    """Each primary endpoint's power to detect the stated effect, and the questions 80%
    needs."""
    return [
        f"{row.metric} ({row.a} vs {row.b}): power {fmt(row.power, 2)} to detect "
        f"{fmt(row.effect)} with {fmt_int(row.questions)} questions; 80% needs "
        f"{fmt_int(row.questions_for_80)} questions"
        for row in summary.power
    ]


def underpowered(summary: ExperimentSummary) -> list[str]:
    """The warning an underpowered design carries at the top of its report, or nothing."""
    if not summary.underpowered:
        return []
    return [
        "UNDERPOWERED: a primary endpoint has power below 0.8 to detect the stated effect "
        "(see the power table): a difference it misses is no evidence of none"
    ]


def clean_json(value: Any) -> Any:
    """A copy with every non-finite float replaced by ``None``, so ``json.dumps`` writes no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value
