"""Plain-text reports for the terminal: aligned columns, a dash where a value is missing."""

from __future__ import annotations

from collections.abc import Sequence

from council.meter.experiment_report import ExperimentSummary
from council.meter.run_report import RunDiversity
from council.reports.identifiability import HEADERS as IDENTIFIABILITY_HEADERS
from council.reports.identifiability import NUMERIC as IDENTIFIABILITY_NUMERIC
from council.reports.identifiability import result_notes, result_row
from council.reports.values import (
    BASELINE_HEADERS,
    COMPARISON_HEADERS,
    FLOOR_METRICS,
    MISSING,
    arm_metrics,
    baseline_rows,
    comparison_rows,
    decomposition_shares,
    drift_pivot,
    fmt,
    fmt_ci,
    fmt_int,
    has_vote_section,
    power_lines,
    seat_rows,
    skipped_turns,
    stage_label,
    stage_rows,
    underpowered,
    vote_summary,
)


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell (``right``: right-aligned columns); the last column is
    never padded, so a long note does not widen the others."""
    table = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for number, row in enumerate(table):
        cells = []
        for i, cell in enumerate(row):
            if i == len(row) - 1 and i not in right:
                cells.append(cell)
            else:
                cells.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(report: RunDiversity) -> str:
    """One run: the seats and their models; per stage and round, the diversity metrics against
    the no-persona baseline; then stance flips (protocols that vote), drift per seat, what was
    skipped."""
    out = [
        f"Diversity of run {report.run_id} "
        f"(protocol {report.protocol}, embedder {report.embedder}, "
        f"{fmt_int(report.dimension)} dimensions)",
        f"Question: {report.question}",
        *(f"Note: {line}" for line in report.record_notes),
        "",
    ]
    seats = seat_rows(report)
    if seats:
        out += [grid(["seat", "persona", "role", "model", "provider"], seats), ""]
    rows = stage_rows(report.stages)
    headers = ["stage", "round", "seats", "mean pairwise distance", "Vendi score", "outliers"]
    if rows:
        out.append(grid([*headers, "note"], rows, right=[1, 2, 3, 4]))
    else:
        out.append("No panel turns to measure.")
    out += [
        "",
        "Mean pairwise distance: 1 - cosine similarity, averaged over pairs of seats (0: same).",
        "Vendi score: the effective number of distinct answers (1 to the number of seats).",
        "",
    ]
    floors = baseline_rows(report)
    if floors:
        out += ["No-persona baseline (each model's answers under the plain assistant prompt)"]
        out += [grid(BASELINE_HEADERS, floors, right=[1, 2]), ""]
    if has_vote_section(report):
        out += [*_flips(report), ""]
    out += ["Drift (mean position: 0 = the persona's own voice, 1 = the assistant voice)"]
    out += _drift_lines(report)
    out += ["", *_run_identifiability_lines(report)]
    out += _grounding_lines(report)
    out += [
        "",
        f"Skipped: {skipped_turns(report)}",
    ]
    if report.activation_drift:
        from council.meter.activations.drift import drift_table

        out += ["", drift_table(report.activation_drift)]
    return "\n".join(out)


def _grounding_lines(report: RunDiversity) -> list[str]:
    """Per seat, how much of its answers rest on the context documents (runs with some)."""
    if not report.grounding:
        return []

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    rows = [
        [g.seat, str(g.turns), str(g.citations), share(g.valid_share), share(g.grounded_turn_share)]
        for g in report.grounding
    ]
    headers = ["seat", "turns", "citations", "supported", "turns with a supported citation"]
    return ["", "Grounding in the context documents", grid(headers, rows, right=[1, 2, 3, 4])]


def _flips(report: RunDiversity) -> list[str]:
    out = ["Stance flips"]
    flips = report.stance_flips
    if flips:
        flip_rows = [
            [
                f.stage,
                f.seat,
                f"{f.from_round} -> {f.to_round}",
                f"{f.from_stance} -> {f.to_stance}",
            ]
            for f in flips
        ]
        out.append(grid(["stage", "seat", "rounds", "stance"], flip_rows))
    else:
        out.append(vote_summary(report) or "none")
    return out


def _drift_lines(report: RunDiversity) -> list[str]:
    out: list[str] = []
    seats, labels, means = drift_pivot(report)
    if seats:
        drift_rows = [[seat, *(fmt(means.get((seat, lab)), 2) for lab in labels)] for seat in seats]
        out.append(grid(["seat", *labels], drift_rows, right=range(1, len(labels) + 1)))
    else:
        out.append("not measured")
    if report.drift_note:
        out.append(f"Note: {report.drift_note}")
    return out


def _run_identifiability_lines(report: RunDiversity) -> list[str]:
    results = report.identifiability
    out = [
        "Identifiability (can the answers be told apart by seat? held-out balanced accuracy, "
        "each stage and round held out in turn)"
    ]
    if not results:
        return [*out, "not measured"]
    rows = [result_row(r) for r in results]
    out.append(grid(IDENTIFIABILITY_HEADERS, rows, right=IDENTIFIABILITY_NUMERIC))
    return out + [f"Note: {line}" for line in result_notes(results)]


def _experiment_identifiability_lines(summary: ExperimentSummary) -> list[str]:
    out = [
        "Identifiability by arm (can the answers be told apart by persona? units pooled, each "
        "run held out in turn; held-out balanced accuracy)"
    ]
    rows, notes = [], []
    for arm in summary.arms:
        rows += [[arm.name, *result_row(r)] for r in arm.identifiability]
        notes += result_notes(arm.identifiability, f"{arm.name}, ")
    if not rows:
        return [*out, "not measured"]
    headers = ["arm", *IDENTIFIABILITY_HEADERS]
    out.append(grid(headers, rows, right=[i + 1 for i in IDENTIFIABILITY_NUMERIC]))
    return out + [f"Note: {line}" for line in notes]


def experiment_table(summary: ExperimentSummary) -> str:
    """An experiment: each arm's metrics with 95% intervals (and how they were made), failed
    units, the comparisons between arms, the noise floor per model, the variance decomposition
    (undefined shares said so) and the per-round curves."""
    out = [
        f"{summary.title or 'Experiment'} ({summary.experiment} experiment: "
        f"{fmt_int(summary.questions)} questions x {fmt_int(summary.samples)} "
        f"samples, embedder {summary.embedder or '?'})",
        *underpowered(summary),
        "",
        *_arm_lines(summary),
        "",
        "Tests (difference = b - a, paired by question; a = placebo: the arm against its floor)",
    ]
    comparisons = summary.all_tests
    if comparisons:
        out.append(grid(COMPARISON_HEADERS, comparison_rows(comparisons), right=[3, 5, 6]))
    else:
        out.append("none")
    out += ["", "Power of each primary endpoint", *(power_lines(summary) or ["not measured"])]
    floor_metrics = ", ".join(sorted(FLOOR_METRICS))
    out += ["", f"Placebo floor per arm (one persona in every seat; compare with {floor_metrics})"]
    floors = summary.placebo_floor
    if floors:
        floor_rows = [
            [arm, fmt(f.value), fmt_ci(f.ci95), fmt_int(f.n)] for arm, f in floors.items()
        ]
        out.append(grid(["arm", "mean", "95% CI", "n"], floor_rows, right=[1, 3]))
    else:
        out.append("not measured (an experiment without placebo arms)")
    out += ["", "Variance decomposition (share of the embeddings' total variance)"]
    out += _decomposition_lines(summary)
    out += ["", *_experiment_identifiability_lines(summary)]
    return "\n".join(out + _curve_lines(summary))


def _arm_lines(summary: ExperimentSummary) -> list[str]:
    metrics = arm_metrics(summary)
    rows = []
    for arm in summary.arms:
        values = arm.metrics
        if not values:
            rows.append([arm.name, MISSING, MISSING, MISSING, "0", "no results"])
        for metric in [m for m in metrics if m in values]:
            m = values[metric]
            rows.append([arm.name, metric, fmt(m.value), fmt_ci(m.ci95), fmt_int(m.n), ""])
    out = []
    if rows:
        out.append(grid(["arm", "metric", "mean", "95% CI", "n", "note"], rows, right=[2, 4]))
    else:
        out.append("No arms.")
    methods = summary.methods
    out += [f"{methods[k]}" for k in ("interval", "test") if k in methods]
    failures = summary.failed_units
    if failures:
        out += ["", f"Failed units ({len(failures)}, left out; running again retries them)"]
        out += [f"  {f.unit}: {f.error or f.status}" for f in failures]
    descriptions = summary.metric_descriptions
    if descriptions:
        out += ["", "Metrics"]
        out += [f"  {name}: {descriptions[name]}" for name in metrics if name in descriptions]
        out += [f"  {n}: {d}" for n, d in descriptions.items() if n not in metrics]
    return out


def _decomposition_lines(summary: ExperimentSummary) -> list[str]:
    parts, why = decomposition_shares(summary.decomposition)
    if not parts:
        return ["not available"] + ([f"Note: {why}"] if why else [])
    rows = [[name, "undefined" if share is None else fmt(share)] for name, share in parts]
    return [grid(["source", "share"], rows, right=[1])] + ([f"Note: {why}"] if why else [])


def _curve_lines(summary: ExperimentSummary) -> list[str]:
    rows = [
        [arm, stage_label(p.stage, p.round), fmt(p.value), fmt_ci(p.ci95), fmt_int(p.n)]
        for arm, points in summary.curves.items()
        for p in points
    ]
    if not rows:
        return []
    headers = ["arm", "stage", "mean", "95% CI", "n"]
    return ["", "Curves (mean per stage and round, 95% CI)", grid(headers, rows, right=[2, 4])]
