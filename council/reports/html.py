"""The HTML report of one run (and, re-exported, of an experiment): similarity heatmaps, the
convergence curve and drift per seat, as inline SVG in one self-contained page."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from council.reports import svg
from council.reports.experiment_page import experiment_report_html, write_experiment_report
from council.reports.page import esc, figure, meta, note, page, table, write
from council.reports.values import (
    drift_pivot,
    finite,
    fmt,
    fmt_int,
    outliers,
    stage_label,
    stage_rows,
)

__all__ = [
    "experiment_report_html",
    "run_report_html",
    "write_experiment_report",
    "write_run_report",
]

# --- one run -------------------------------------------------------------------------------


def run_report_html(report: Mapping[str, Any]) -> str:
    stages = list(report.get("stages") or [])
    labels = [stage_label(s["stage"], s["round"]) for s in stages]
    body = [
        "<h1>Diversity of a council run</h1>",
        f'<p class="question">{esc(report.get("question", ""))}</p>',
        meta(
            [
                ("run", str(report.get("run_id", "?"))),
                ("protocol", str(report.get("protocol", "?"))),
                (
                    "embedder",
                    f"{report.get('embedder', '?')} ({fmt_int(report.get('dimension'))} "
                    "dimensions)",
                ),
                (
                    "skipped",
                    f"{fmt_int(report.get('failed_turns_skipped'))} failed turns, "
                    f"{fmt_int(report.get('empty_turns_skipped'))} empty turns",
                ),
            ]
        ),
        "<h2>Stages and rounds</h2>",
        '<p class="explain">Mean pairwise distance is 1 &minus; cosine similarity averaged over '
        "every pair of seats (0: they said the same thing). The Vendi score is the effective "
        "number of distinct answers, from 1 to the number of seats. An outlier stands further "
        "from the group's centre than 1.5 times the others' median distance.</p>",
    ]
    if stages:
        rows = stage_rows(stages)
        headers = ["stage", "round", "seats", "mean pairwise distance", "Vendi score"]
        body.append(table([*headers, "outliers", "note"], rows, numeric=[1, 2, 3, 4]))
    else:
        body.append(note("No panel turns to measure."))

    body.append("<h2>Convergence across rounds</h2>")
    values = [finite(s.get("mean_pairwise_distance")) for s in stages]
    if any(v is not None for v in values):
        chart = svg.xy_chart(
            "Mean pairwise distance by stage and round",
            labels,
            [svg.Series("mean pairwise distance", values)],
            x_axis="stage and round, in order",
            y_axis="mean pairwise distance",
            include=[0.0],
            desc="How different the seats' answers were at each stage and round; "
            "a falling line means the council converged.",
        )
        gaps = [lab for lab, v in zip(labels, values, strict=True) if v is None]
        caption = "A falling line means the seats converged."
        if gaps:
            caption += f" Not measured (fewer than two seats): {', '.join(gaps)}."
        body.append(figure(chart, caption))
    else:
        body.append(note("No stage or round had two seats to compare."))

    body.append('<h2>Similarity between seats</h2><div class="figures">')
    for stage, label in zip(stages, labels, strict=True):
        if stage.get("similarity"):
            seats = [str(x) for x in stage.get("labels") or []]
            matrix = [[finite(v) for v in row] for row in stage["similarity"]]
            chart = svg.heatmap(
                f"Cosine similarity: {label}",
                seats,
                matrix,
                desc=f"Pairwise cosine similarity of the seats' answers in {label}",
            )
            body.append(figure(chart, f"{label}: outliers {outliers(stage)}"))
    body.append("</div>")
    for stage, label in zip(stages, labels, strict=True):
        if not stage.get("similarity"):
            body.append(note(f"{label}: {stage.get('note') or 'no similarity measured'}"))

    body.append("<h2>Drift toward the assistant voice</h2>")
    body.append(
        '<p class="explain">Each turn is placed on the line from the persona\'s own voice '
        "(0: its card's description, framework and questions) to the same model's answer "
        "with no persona (1). Values beyond 0 or 1 overshoot the line.</p>"
    )
    seats, drift_labels, means = drift_pivot(report)
    if seats:
        series = [
            svg.Series(seat, [means.get((seat, lab)) for lab in drift_labels]) for seat in seats
        ]
        refs = [
            svg.Reference(0.0, "persona voice (0)", "#009E73", "2 3"),
            svg.Reference(1.0, "assistant voice (1)", "#D55E00", "2 3"),
        ]
        chart = svg.xy_chart(
            "Drift per seat",
            drift_labels,
            series,
            x_axis="stage and round, in order",
            y_axis="position (0 persona, 1 assistant)",
            refs=refs,
            include=[-0.05, 1.05],
            desc="Each seat's position between its persona's voice and the assistant voice.",
        )
        body.append(figure(chart, "One line per seat."))
        rows = [[seat, *(fmt(means.get((seat, lab)), 2) for lab in drift_labels)] for seat in seats]
        body.append(table(["seat", *drift_labels], rows, numeric=range(1, len(drift_labels) + 1)))
    else:
        body.append(note(report.get("drift_note") or "Drift was not measured."))
    if seats and report.get("drift_note"):
        body.append(note(str(report["drift_note"])))

    body.append("<h2>Stance flips</h2>")
    flips = report.get("stance_flips") or []
    if flips:
        rows = [
            [
                str(f["stage"]),
                str(f["seat"]),
                f"{f['from_round']} → {f['to_round']}",
                str(f["from_stance"]),
                str(f["to_stance"]),
            ]
            for f in flips
        ]
        body.append(table(["stage", "seat", "rounds", "from", "to"], rows))
    else:
        body.append("<p>No seat changed its vote between rounds.</p>")
    return page(f"Diversity: {report.get('question', '')}", "".join(body))


def write_run_report(report: Mapping[str, Any], path: Path | str) -> Path:
    """Write ``RunDiversity.to_json()`` as one self-contained HTML page."""
    return write(path, run_report_html(report))
