"""The run report's section on drift measured inside the model: each activation-recorded turn's
position on the assistant axis, per seat over the run, beside how well the embedding meter's
drift tracked it over the same turns."""

from __future__ import annotations

from council.meter.activations.drift import ActivationDrift, Correlation, PlacedTurn
from council.meter.run_report import RunDiversity
from council.reports import svg
from council.reports.page import esc, figure, note, table
from council.reports.values import fmt, seat_colours, stage_label

AXIS_REFERENCES = (
    svg.Reference(0.0, "persona replies (0)", svg.reference_colour(0), "2 3"),
    svg.Reference(1.0, "assistant replies (1)", svg.reference_colour(1), "2 3"),
)


def activation_section(report: RunDiversity) -> str:
    """Nothing for a run without activation-recorded turns."""
    drift = report.activation_drift
    if not drift:
        return ""
    body = [
        "<h2>Drift inside the model: the assistant axis</h2>",
        '<p class="explain">Turns from open-weight seats recorded their mean residual '
        "activation; each is placed on the model's assistant axis (0: the mean of the persona "
        "replies the axis was built from, 1: the plain assistant's).</p>",
    ]
    axis = drift.axis
    if axis:
        auc = axis.auc
        body.append(
            note(
                f"Axis {esc(axis.id)} of {esc(axis.model)} at layer "
                f"{axis.layer}: held-out AUC {fmt(auc.value, 3)} "
                f"[{fmt(auc.low, 3)}, {fmt(auc.high, 3)}]."
            )
        )
    rows = [r for r in drift.turns if r.position is not None]
    if rows:
        body.append(_chart(report, drift, rows))
    body.append(_correlation(drift.embedding_correlation))
    for why, count in drift.skipped.items():
        body.append(note(f"{count} turns not placed: {why}."))
    return "".join(body)


def _chart(report: RunDiversity, drift: ActivationDrift, rows: list[PlacedTurn]) -> str:
    labels = list(dict.fromkeys(stage_label(r.stage, r.round) for r in rows))
    positions = {(r.seat, stage_label(r.stage, r.round)): r.position for r in rows}
    placed = {r.seat for r in rows}
    seats = [s for s in report.seat_order() if s in placed]
    seats += sorted(placed - set(seats))
    colours = seat_colours(report)
    series = [
        svg.Series(seat, [positions.get((seat, lab)) for lab in labels], colour=colours.get(seat))
        for seat in seats
    ]
    chart = svg.xy_chart(
        "Position on the assistant axis per seat",
        labels,
        series,
        x_axis="stage and round, in order",
        y_axis="position (0 persona, 1 assistant)",
        refs=AXIS_REFERENCES,
        include=[-0.05, 1.05],
        desc="Each activation-recorded seat's position on the assistant axis, turn by turn.",
    )
    by_seat = {s.seat: s for s in drift.seats}
    summary = [
        [
            seat,
            str(s.turns),
            fmt(s.first, 3),
            fmt(s.last, 3),
            fmt(s.change, 3),
            fmt(s.slope_per_turn, 3),
        ]
        for seat in seats
        if (s := by_seat.get(seat))
    ]
    return figure(chart, "One line per seat.") + table(
        ["seat", "turns", "first", "last", "change", "slope per turn"],
        summary,
        numeric=range(1, 6),
    )


def _correlation(corr: Correlation) -> str:
    if corr.pearson is None or corr.spearman is None:
        return note(f"Against the embedding drift: {esc(corr.note or 'not compared')}.")
    pearson, spearman = corr.pearson, corr.spearman
    return note(
        f"Against the embedding drift over the same {corr.pairs} turns: Pearson r "
        f"{fmt(pearson.r, 2)} (p {fmt(pearson.p, 3)}), Spearman ρ "
        f"{fmt(spearman.rho, 2)} (p {fmt(spearman.p, 3)})."
    )
