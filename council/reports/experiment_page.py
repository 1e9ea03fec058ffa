"""The HTML report of an experiment: arms side by side per metric with their 95% intervals
(the method named), the tests (the primary endpoint, and Holm-adjusted secondaries), the
power, each arm's placebo floor, the variance decomposition and per-round curves per arm.
Every chart starts its y axis at 0 and gives each arm the same colour."""

from __future__ import annotations

from pathlib import Path

from council.meter.experiment_report import ArmSummary, ExperimentSummary
from council.reports import svg
from council.reports.identifiability import experiment_identifiability_html
from council.reports.page import esc, figure, meta, note, page, table, write
from council.reports.values import (
    COMPARISON_HEADERS,
    FLOOR_METRICS,
    arm_metrics,
    comparison_rows,
    decomposition_shares,
    finite,
    fmt,
    fmt_ci,
    fmt_int,
    interval,
    power_lines,
    stage_label,
    underpowered,
)


def experiment_report_html(summary: ExperimentSummary) -> str:
    title = summary.title or "Experiment"
    body = [
        f"<h1>{esc(title)}</h1>",
        *(note(line) for line in underpowered(summary)),
        meta(
            [
                ("experiment", summary.experiment),
                ("questions", fmt_int(summary.questions)),
                ("samples per question", fmt_int(summary.samples)),
                ("embedder", summary.embedder or "?"),
            ]
        ),
        _arms(summary),
        _metrics(summary),
        _comparisons(summary),
        _power(summary),
        _placebo_floor(summary),
        _decomposition(summary),
        experiment_identifiability_html(summary),
        _curves(summary),
    ]
    return page(title, "".join(body))


def _arms(summary: ExperimentSummary) -> str:
    arms = summary.arms
    body = ["<h2>Arms</h2>"]
    if not arms:
        body.append(note("This experiment has no arms."))
    else:
        rows = [
            [
                a.name,
                ", ".join(a.models),
                ", ".join(a.personas),
                fmt_int(a.units),
                fmt_int(a.failed_units),
            ]
            for a in arms
        ]
        headers = ["arm", "models", "personas", "units", "failed units"]
        body.append(table(headers, rows, numeric=[3, 4]))
        empty = [a.name for a in arms if not a.metrics]
        if empty:
            body.append(note(f"No results yet for: {', '.join(empty)}."))
    failures = summary.failed_units
    if failures:
        body.append(
            note(
                f"{len(failures)} unit(s) failed and are left out; running the experiment "
                "again retries them."
            )
        )
        rows = [[str(f.unit), str(f.error or f.status)] for f in failures]
        body.append(table(["unit", "error"], rows))
    return "".join(body)


def _metrics(summary: ExperimentSummary) -> str:
    arms = summary.arms
    metrics = arm_metrics(summary)
    descriptions = summary.metric_descriptions
    body = ["<h2>Metrics by arm</h2>"]
    if not metrics:
        return "".join([*body, note("No metrics were measured.")])
    rows = []
    for a in arms:
        for metric in metrics:
            m = a.metrics.get(metric)
            if m is not None:
                rows.append([a.name, metric, fmt(m.value), fmt_ci(m.ci95), fmt_int(m.n), m.method])
    headers = ["arm", "metric", "mean", "95% CI", "n", "interval"]
    body.append(table(headers, rows, numeric=[2, 3, 4]))
    for metric in metrics:
        body.append(f"<h3><code>{esc(metric)}</code></h3>")
        if metric in descriptions:
            body.append(f'<p class="explain">{esc(descriptions[metric])}</p>')
        body.append(_metric_chart(summary, metric, arms))
    return "".join(body)


def _metric_chart(summary: ExperimentSummary, metric: str, arms: list[ArmSummary]) -> str:
    """One dot (and whisker) per arm, each arm in its own colour, on a y axis from 0."""
    series, x_labels = [], []
    for i, a in enumerate(arms):
        m = a.metrics.get(metric)
        mean = finite(m.value) if m else None
        x_labels.append(a.name if mean is not None else f"{a.name} (no data)")
        values: list[float | None] = [None] * len(arms)
        bounds: list[tuple[float, float] | None] = [None] * len(arms)
        values[i], bounds[i] = mean, interval(m.ci95) if m else None
        series.append(svg.Series(a.name, values, bounds))
    refs = []
    if metric in FLOOR_METRICS:
        for k, (arm, floor) in enumerate(summary.placebo_floor.items()):
            value = finite(floor.value)
            if value is not None:
                name = f"floor: {arm}"
                refs.append(svg.Reference(value, name, svg.reference_colour(k)))
    chart = svg.xy_chart(
        f"{metric} by arm",
        x_labels,
        series,
        x_axis="arm",
        y_axis=metric,
        refs=refs,
        connect=False,
        desc=f"Mean of {metric} per arm with its 95% confidence interval.",
    )
    caption = "Dots: means; whiskers: 95% confidence intervals."
    if refs:
        caption += " Dashed: each arm's placebo floor, one persona in every seat."
    return figure(chart, caption)


def _comparisons(summary: ExperimentSummary) -> str:
    comparisons = summary.all_tests
    if not comparisons:
        return "<h2>Tests</h2>" + note("No tests: one arm, or too few questions.")
    methods = summary.methods
    how = " ".join(
        str(methods[k]) + "." for k in ("interval", "test", "multiplicity") if k in methods
    )
    return (
        "<h2>Tests</h2>"
        '<p class="explain">difference = b &minus; a, paired by question; where a is '
        "<em>placebo</em>, the arm against its placebo floor. Read a secondary test by its "
        f"Holm-adjusted p. {esc(how)}</p>"
        + table(COMPARISON_HEADERS, comparison_rows(comparisons), numeric=[3, 4, 5, 6])
    )


def _power(summary: ExperimentSummary) -> str:
    lines = power_lines(summary)
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return (
        "<h2>Power</h2>"
        '<p class="explain">Of each primary endpoint, from the variance components these data '
        "show (a paired t test on question means).</p>"
        f"<ul>{items}</ul>"
    )


def _placebo_floor(summary: ExperimentSummary) -> str:
    floors = summary.placebo_floor
    if not floors:
        return "<h2>Placebo floor</h2>" + note(
            "Not measured: this experiment ran without placebo arms."
        )
    rows = [[arm, fmt(f.value), fmt_ci(f.ci95), fmt_int(f.n)] for arm, f in floors.items()]
    return (
        "<h2>Placebo floor per arm</h2>"
        '<p class="explain">The blind-round distance of the arm\'s placebo twin: one persona '
        "in every seat, seated and seeded as the arm. Diversity at or below it is not the "
        "personas'.</p>" + table(["arm", "mean", "95% CI", "n"], rows, numeric=[1, 2, 3])
    )


def _decomposition(summary: ExperimentSummary) -> str:
    """The shares as measured; the bar only when they add up to the whole, never rescaled."""
    body = ["<h2>Variance decomposition</h2>"]
    parts, why = decomposition_shares(summary.decomposition)
    shares = [(k, v) for k, v in parts if v is not None]
    if parts:
        rows = [[k, fmt(v) if v is not None else "undefined"] for k, v in parts]
        body.append(table(["source", "share of the total variance"], rows, numeric=[1]))
    if why:
        body.append(note(why))
    if shares and len(shares) == len(parts):
        chart = svg.stacked_bar(
            "Where the variance comes from",
            shares,
            x_axis="share of the total variance",
            y_axis="all answers",
            desc="Shares of the embeddings' variance explained by the "
            "persona, the model family, and neither.",
        )
        body.append(figure(chart, "Persona and model-family main effects, and the residual."))
    elif not parts:
        body.append(note("No variance decomposition for this experiment."))
    return "".join(body)


def _curves(summary: ExperimentSummary) -> str:
    names = [a.name for a in summary.arms]
    curves = summary.curves
    x_labels: list[str] = []
    for points in curves.values():
        for p in points:
            label = stage_label(p.stage, p.round)
            x_labels += [label] if label not in x_labels else []
    if not x_labels:
        return "<h2>Curves per arm</h2>" + note("No per-round curves.")
    series = []
    # Every arm, in plan order and in its own colour, as in the charts above.
    ordered = names + [a for a in curves if a not in names]
    for index, arm in enumerate(ordered):
        by_label = {stage_label(p.stage, p.round): p for p in curves.get(arm) or []}
        found = [by_label.get(lab) for lab in x_labels]
        series.append(
            svg.Series(
                arm,
                [finite(p.value) if p else None for p in found],
                [interval(p.ci95) if p else None for p in found],
                svg.colour(index),
            )
        )
    chart = svg.xy_chart(
        "Mean pairwise distance by stage and round, per arm",
        x_labels,
        series,
        x_axis="stage and round, in order",
        y_axis="mean pairwise distance",
        desc="Each arm's mean pairwise distance per stage and round, with 95% intervals.",
    )
    caption = "Lines: means over questions and samples; whiskers: 95% CIs."
    return "<h2>Curves per arm</h2>" + figure(chart, caption)


def write_experiment_report(summary: ExperimentSummary, path: Path | str) -> Path:
    """Write an experiment's ``summary.json`` as one self-contained HTML page."""
    return write(path, experiment_report_html(summary))
