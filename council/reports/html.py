"""The HTML report of one run (and, re-exported, of an experiment): the seat -> model map,
similarity heatmaps, the convergence curve against the no-persona baseline, drift per seat and, for
protocols that vote, stance flips; inline SVG in one self-contained page. Seats keep the run's
seating order and one colour each in every chart."""

from __future__ import annotations

from pathlib import Path

from council.meter.run_report import RunDiversity
from council.reports import svg
from council.reports.activations import activation_section
from council.reports.experiment_page import experiment_report_html, write_experiment_report
from council.reports.identifiability import run_identifiability_html
from council.reports.page import esc, figure, meta, note, page, table, write
from council.reports.values import (
    BASELINE_HEADERS,
    baseline_rows,
    drift_pivot,
    finite,
    fmt,
    fmt_int,
    has_vote_section,
    outliers,
    seat_colours,
    seat_rows,
    skipped_turns,
    stage_label,
    stage_rows,
    vote_summary,
)

__all__ = [
    "experiment_report_html",
    "run_report_html",
    "write_experiment_report",
    "write_run_report",
]

STAGE_HEADERS = ["stage", "round", "seats", "mean pairwise distance", "Vendi score"]
SEAT_HEADERS = ["seat", "persona", "role", "model", "provider"]
DRIFT_REFERENCES = (
    svg.Reference(0.0, "persona voice (0)", svg.reference_colour(0), "2 3"),
    svg.Reference(1.0, "assistant voice (1)", svg.reference_colour(1), "2 3"),
)


def run_report_html(report: RunDiversity) -> str:
    body = [
        "<h1>Diversity of a council run</h1>",
        f'<p class="question">{esc(report.question)}</p>',
        meta(
            [
                ("run", report.run_id),
                ("protocol", report.protocol),
                ("embedder", f"{report.embedder} ({fmt_int(report.dimension)} dimensions)"),
                ("skipped", skipped_turns(report)),
            ]
        ),
        *(note(line) for line in report.record_notes),
        _seats(report),
        _stages(report),
        _convergence(report),
        _heatmaps(report),
        _drift(report),
        activation_section(report),
        _votes(report),
        run_identifiability_html(report),
    ]
    return page(f"Diversity: {report.question}", "".join(body))


def _seats(report: RunDiversity) -> str:
    rows = seat_rows(report)
    if not rows:
        return "<h2>Seats</h2>" + note("This report does not record the seating.")
    return "<h2>Seats</h2>" + table(SEAT_HEADERS, rows)


def _stages(report: RunDiversity) -> str:
    stages = report.stages
    body = [
        "<h2>Stages and rounds</h2>",
        '<p class="explain">Mean pairwise distance is 1 &minus; cosine similarity averaged over '
        "every pair of seats (0: they said the same thing). The Vendi score is the effective "
        "number of distinct answers, from 1 to the number of seats. An outlier stands further "
        "from the group's centre than 1.5 times the others' median distance; its reply's "
        "length is shown beside it, since a short reply often explains it.</p>",
    ]
    if stages:
        rows = stage_rows(stages)
        body.append(table([*STAGE_HEADERS, "outliers", "note"], rows, numeric=[1, 2, 3, 4]))
    else:
        body.append(note("No panel turns to measure."))
    return "".join(body)


def _baseline_references(report: RunDiversity) -> list[svg.Reference]:
    refs = []
    for k, floor in enumerate(report.no_persona_baseline):
        value = finite(floor.mean_pairwise_distance)
        if value is not None:
            name = f"no-persona baseline: {floor.model.split('/')[-1]}"
            refs.append(svg.Reference(value, name, svg.reference_colour(k)))
    return refs


def _convergence(report: RunDiversity) -> str:
    stages = report.stages
    labels = [stage_label(s.stage, s.round) for s in stages]
    body = ["<h2>Convergence across rounds</h2>"]
    values = [finite(s.mean_pairwise_distance) for s in stages]
    if not any(v is not None for v in values):
        body.append(note("No stage or round had two seats to compare."))
        return "".join(body)
    refs = _baseline_references(report)
    chart = svg.xy_chart(
        "Mean pairwise distance by stage and round",
        labels,
        [svg.Series("mean pairwise distance", values)],
        x_axis="stage and round, in order",
        y_axis="mean pairwise distance",
        refs=refs,
        desc="How different the seats' answers were at each stage and round; "
        "a falling line means the council converged.",
    )
    gaps = [lab for lab, v in zip(labels, values, strict=True) if v is None]
    caption = "A falling line means the seats converged."
    if refs:
        caption += (
            " Dashed: the no-persona baseline, the distance between one model's answers "
            "under the plain assistant prompt; seats near it differ no more than resampling "
            "does."
        )
    if gaps:
        caption += f" Not measured (fewer than two seats): {', '.join(gaps)}."
    body.append(figure(chart, caption))
    rows = baseline_rows(report)
    if rows:
        body.append(table(BASELINE_HEADERS, rows, numeric=[1, 2]))
    else:
        command = f"council diversity {report.run_id} --baseline"
        body.append(note(f"No no-persona baseline: measure one ({command})."))
    return "".join(body)


def _heatmaps(report: RunDiversity) -> str:
    stages = report.stages
    colours = seat_colours(report)
    order = report.seat_order()
    body = ['<h2>Similarity between seats</h2><div class="figures">']
    for stage in stages:
        label = stage_label(stage.stage, stage.round)
        if stage.similarity:
            # Seating order, whatever order the turns finished in: every heatmap alike.
            rank = sorted(range(len(stage.labels)), key=lambda i: order.index(stage.labels[i]))
            seats = [stage.labels[i] for i in rank]
            matrix = [[finite(stage.similarity[i][j]) for j in rank] for i in rank]
            chart = svg.heatmap(
                f"Cosine similarity: {label}",
                seats,
                matrix,
                desc=f"Pairwise cosine similarity of the seats' answers in {label}",
                keys=colours,
            )
            body.append(figure(chart, f"{label}: outliers {outliers(stage)}"))
    body.append("</div>")
    for stage in stages:
        if not stage.similarity:
            label = stage_label(stage.stage, stage.round)
            body.append(note(f"{label}: {stage.note or 'no similarity measured'}"))
    return "".join(body)


def _drift(report: RunDiversity) -> str:
    body = [
        "<h2>Drift toward the assistant voice</h2>",
        '<p class="explain">Each turn is placed on the line from the persona\'s own voice '
        "(0: its card's description, framework and questions) to the same model's answer "
        "with no persona (1). Values beyond 0 or 1 overshoot the line.</p>",
    ]
    seats, drift_labels, means = drift_pivot(report)
    if not seats:
        body.append(note(report.drift_note or "Drift was not measured."))
        return "".join(body)
    colours = seat_colours(report)
    series = [
        svg.Series(seat, [means.get((seat, lab)) for lab in drift_labels], colour=colours[seat])
        for seat in seats
    ]
    chart = svg.xy_chart(
        "Drift per seat",
        drift_labels,
        series,
        x_axis="stage and round, in order",
        y_axis="position (0 persona, 1 assistant)",
        refs=DRIFT_REFERENCES,
        include=[-0.05, 1.05],
        desc="Each seat's position between its persona's voice and the assistant voice.",
    )
    body.append(figure(chart, "One line per seat."))
    rows = [[seat, *(fmt(means.get((seat, lab)), 2) for lab in drift_labels)] for seat in seats]
    body.append(table(["seat", *drift_labels], rows, numeric=range(1, len(drift_labels) + 1)))
    if report.drift_note:
        body.append(note(report.drift_note))
    return "".join(body)


def _votes(report: RunDiversity) -> str:
    """Only for a protocol that voted: a protocol without votes has no flips to report."""
    if not has_vote_section(report):
        return ""
    flips = report.stance_flips
    body = ["<h2>Stance flips</h2>"]
    if flips:
        rows = [
            [f.stage, f.seat, f"{f.from_round} → {f.to_round}", f.from_stance, f.to_stance]
            for f in flips
        ]
        body.append(table(["stage", "seat", "rounds", "from", "to"], rows))
    else:
        body.append(f"<p>{esc(vote_summary(report) or '')}</p>")
    return "".join(body)


def write_run_report(report: RunDiversity, path: Path | str) -> Path:
    """Write a run's report as one self-contained HTML page."""
    return write(path, run_report_html(report))
