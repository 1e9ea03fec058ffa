"""Formatting shared by the tables and the HTML page: a missing or non-finite number is shown
as a dash, never as ``nan``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


def arm_metrics(summary: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for arm in summary.get("arms") or []:
        names += list((arm.get("metrics") or {}).keys())
    return ordered_metrics(names)


def seat_order(report: Mapping[str, Any]) -> list[str]:
    """The panel seats in the run's seating order (from ``seats``; reports written before it
    was recorded fall back to the order seats first appear in)."""
    seats = [str(s["seat"]) for s in report.get("seats") or [] if s.get("role") != "chair"]
    for stage in report.get("stages") or []:
        seats += [str(x) for x in stage.get("labels") or [] if str(x) not in seats]
    for point in report.get("drift") or []:
        seats += [str(point["seat"])] if str(point["seat"]) not in seats else []
    return seats


def seat_colours(report: Mapping[str, Any]) -> dict[str, str]:
    """One colour per panel seat, by seating order: the same in every chart of the page."""
    from council.reports.svg import colour

    return {seat: colour(i) for i, seat in enumerate(seat_order(report))}


def drift_pivot(
    report: Mapping[str, Any],
) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """Mean drift position by (seat, stage/round label): seats in seating order, labels in run
    order, values."""
    order = [stage_label(s["stage"], s["round"]) for s in report.get("stages") or []]
    sums: dict[tuple[str, str], list[float]] = {}
    seats: list[str] = []
    labels: list[str] = []
    for point in report.get("drift") or []:
        position = finite(point.get("position"))
        if position is None:
            continue
        seat, label = str(point["seat"]), stage_label(point["stage"], point["round"])
        seats += [seat] if seat not in seats else []
        labels += [label] if label not in labels else []
        sums.setdefault((seat, label), []).append(position)
    labels.sort(key=lambda lab: order.index(lab) if lab in order else len(order))
    seating = seat_order(report)
    seats.sort(key=lambda seat: seating.index(seat) if seat in seating else len(seating))
    means = {key: sum(v) / len(v) for key, v in sums.items()}
    return seats, labels, means


def reply_length(point: Mapping[str, Any]) -> str:
    """``14 tokens`` (or characters where the provider counted no tokens): a short reply is
    the usual reason a seat stands apart."""
    tokens = finite(point.get("tokens"))
    if tokens is not None:
        return f"{int(tokens)} tokens"
    characters = finite(point.get("characters"))
    return f"{int(characters)} characters" if characters is not None else "length unknown"


def outliers(stage: Mapping[str, Any]) -> str:
    if not stage.get("points"):
        return MISSING
    flagged = [p for p in stage["points"] if p.get("outlier")]
    return ", ".join(f"{p['seat']} ({reply_length(p)})" for p in flagged) or "none"


def seat_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The seat -> model map, in seating order."""
    return [
        [str(s.get(k, MISSING)) for k in ("seat", "persona", "role", "model", "provider")]
        for s in report.get("seats") or []
    ]


BASELINE_HEADERS = ["model", "mean pairwise distance", "answers", "note"]


def no_persona_baseline(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A run's no-persona baseline per model (``noise_floor`` in reports made before the
    baseline had its name)."""
    return list(report.get("no_persona_baseline") or report.get("noise_floor") or [])


def skipped_turns(report: Mapping[str, Any]) -> str:
    """What the meter left out of a run, and why."""
    return (
        f"{fmt_int(report.get('failed_turns_skipped'))} failed turns, "
        f"{fmt_int(report.get('empty_turns_skipped'))} empty turns, "
        f"{fmt_int(report.get('short_turns_skipped', 0))} panel replies under "
        f"{MIN_REPLY_CHARACTERS} characters"
    )


def baseline_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for f in no_persona_baseline(report):
        short = f.get("short_answers_skipped")
        notes = [f"{short} under {MIN_REPLY_CHARACTERS} characters left out"] if short else []
        notes += [str(f["note"])] if f.get("note") else []
        rows.append([
            str(f.get("model")), fmt(f.get("mean_pairwise_distance")),
            fmt_int(f.get("samples")), "; ".join(notes),
        ])  # fmt: skip
    return rows


def vote_summary(report: Mapping[str, Any]) -> str | None:
    """What to say when no seat flipped; ``None`` where the protocol took no vote, so a page
    has no vote section at all. Reports written before votes were counted show flips only."""
    votes = report.get("vote_tallies")
    if not votes:
        return None
    if votes == 1:
        return "One vote round: no seat could change its vote."
    return "No seat changed its vote between rounds."


def has_vote_section(report: Mapping[str, Any]) -> bool:
    return bool(report.get("stance_flips")) or bool(report.get("vote_tallies"))


def decomposition_shares(
    decomposition: Mapping[str, Any] | None,
) -> tuple[list[tuple[str, float | None]], str | None]:
    """The persona, family and residual shares (``None`` where undefined) and why any is."""
    if not decomposition:
        return [], None
    shares = [
        (str(k), finite(v)) for k, v in decomposition.items() if k not in ("note", "undefined")
    ]
    return shares, decomposition.get("note")


def stage_rows(stages: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per stage and round, shared by the table and the page."""
    return [
        [
            str(s["stage"]),
            fmt_int(s.get("round")),
            fmt_int(s.get("seats")),
            fmt(s.get("mean_pairwise_distance")),
            fmt(s.get("vendi_score"), 2),
            outliers(s),
            s.get("note") or "",
        ]
        for s in stages
    ]


def comparison_rows(comparisons: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per test: a primary endpoint's p stands alone; a secondary's is shown beside
    its Holm-adjusted p, the one to read."""
    return [
        [
            str(c.get("metric")), str(c.get("a")), str(c.get("b")), fmt(c.get("difference")),
            fmt_ci(c.get("ci95")), fmt_p(c.get("p_value")), fmt_p(c.get("adjusted_p")),
            str(c.get("role") or ""),
        ]
        for c in comparisons
    ]  # fmt: skip


def power_lines(summary: Mapping[str, Any]) -> list[str]:
    """Each primary endpoint's power to detect the stated effect, and the questions 80%
    needs."""
    lines = []
    for row in summary.get("power") or []:
        power = finite(row.get("power"))
        lines.append(
            f"{row.get('metric')} ({row.get('a')} vs {row.get('b')}): power "
            f"{fmt(power, 2)} to detect {fmt(row.get('effect'))} with "
            f"{fmt_int(row.get('questions'))} questions; 80% needs "
            f"{fmt_int(row.get('questions_for_80'))} questions"
        )
    return lines


def underpowered(summary: Mapping[str, Any]) -> list[str]:
    """The warning an underpowered design carries at the top of its report, or nothing."""
    if not summary.get("underpowered"):
        return []
    return ["UNDERPOWERED: a primary endpoint has power below 0.8 to detect the stated effect "
            "(see the power table): a difference it misses is no evidence of none"]  # fmt: skip


def clean_json(value: Any) -> Any:
    """A copy with every non-finite float replaced by ``None``, so ``json.dumps`` writes no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value
