"""The HTML report of an experiment: arms side by side per metric with their 95% intervals
(the method named), the tests (the primary endpoint, and Holm-adjusted secondaries), the
power, each arm's placebo floor, the variance decomposition and per-round curves per arm.
Every chart starts its y axis at 0 and gives each arm the same colour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


def _arm_names(arms: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(a.get("name", f"arm {i + 1}")) for i, a in enumerate(arms)]


def experiment_report_html(summary: Mapping[str, Any]) -> str:
    title = str(summary.get("title") or "Experiment")
    body = [
        f"<h1>{esc(title)}</h1>",
        *(note(line) for line in underpowered(summary)),
        meta(
            [
                ("experiment", str(summary.get("experiment", "?"))),
                ("questions", fmt_int(summary.get("questions"))),
                ("samples per question", fmt_int(summary.get("samples"))),
                ("embedder", str(summary.get("embedder", "?"))),
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


def _arms(summary: Mapping[str, Any]) -> str:
    arms = list(summary.get("arms") or [])
    names = _arm_names(arms)
    body = ["<h2>Arms</h2>"]
    if not arms:
        body.append(note("This experiment has no arms."))
    else:
        rows = [
            [
                n,
                ", ".join(map(str, a.get("models") or [])),
                ", ".join(map(str, a.get("personas") or [])),
                fmt_int(a.get("units")),
                fmt_int(a.get("failed_units", 0)),
            ]
            for n, a in zip(names, arms, strict=True)
        ]
        headers = ["arm", "models", "personas", "units", "failed units"]
        body.append(table(headers, rows, numeric=[3, 4]))
        empty = [n for n, a in zip(names, arms, strict=True) if not a.get("metrics")]
        if empty:
            body.append(note(f"No results yet for: {', '.join(empty)}."))
    failures = summary.get("failed_units") or []
    if failures:
        body.append(
            note(
                f"{len(failures)} unit(s) failed and are left out; running the experiment "
                "again retries them."
            )
        )
        rows = [[str(f.get("unit")), str(f.get("error") or f.get("status"))] for f in failures]
        body.append(table(["unit", "error"], rows))
    return "".join(body)


def _metrics(summary: Mapping[str, Any]) -> str:
    arms = list(summary.get("arms") or [])
    names = _arm_names(arms)
    metrics = arm_metrics(summary)
    descriptions = summary.get("metric_descriptions") or {}
    body = ["<h2>Metrics by arm</h2>"]
    if not metrics:
        return "".join([*body, note("No metrics were measured.")])
    rows = []
    for n, a in zip(names, arms, strict=True):
        for metric in metrics:
            m = (a.get("metrics") or {}).get(metric)
            if m is not None:
                rows.append(
                    [n, metric, fmt(m.get("mean")), fmt_ci(m.get("ci95")), fmt_int(m.get("n")),
                     str(m.get("method") or "")]
                )  # fmt: skip
    headers = ["arm", "metric", "mean", "95% CI", "n", "interval"]
    body.append(table(headers, rows, numeric=[2, 3, 4]))
    for metric in metrics:
        body.append(f"<h3><code>{esc(metric)}</code></h3>")
        if metric in descriptions:
            body.append(f'<p class="explain">{esc(descriptions[metric])}</p>')
        body.append(_metric_chart(summary, metric, names, arms))
    return "".join(body)


def _metric_chart(
    summary: Mapping[str, Any], metric: str, names: list[str], arms: list[Mapping[str, Any]]
) -> str:
    """One dot (and whisker) per arm, each arm in its own colour, on a y axis from 0."""
    series, x_labels = [], []
    for i, (n, a) in enumerate(zip(names, arms, strict=True)):
        m = (a.get("metrics") or {}).get(metric) or {}
        mean = finite(m.get("mean"))
        x_labels.append(n if mean is not None else f"{n} (no data)")
        values: list[float | None] = [None] * len(arms)
        bounds: list[tuple[float, float] | None] = [None] * len(arms)
        values[i], bounds[i] = mean, interval(m.get("ci95"))
        series.append(svg.Series(n, values, bounds))
    refs = []
    if metric in FLOOR_METRICS:
        for k, (arm, floor) in enumerate((summary.get("placebo_floor") or {}).items()):
            value = finite((floor or {}).get("mean"))
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


def _comparisons(summary: Mapping[str, Any]) -> str:
    comparisons = summary.get("tests") or summary.get("comparisons") or []
    if not comparisons:
        return "<h2>Tests</h2>" + note("No tests: one arm, or too few questions.")
    methods = summary.get("methods") or {}
    how = " ".join(str(methods[k]) + "." for k in ("interval", "test", "multiplicity")
                   if k in methods)  # fmt: skip
    return (
        "<h2>Tests</h2>"
        '<p class="explain">difference = b &minus; a, paired by question; where a is '
        "<em>placebo</em>, the arm against its placebo floor. Read a secondary test by its "
        f"Holm-adjusted p. {esc(how)}</p>"
        + table(COMPARISON_HEADERS, comparison_rows(comparisons), numeric=[3, 4, 5, 6])
    )


def _power(summary: Mapping[str, Any]) -> str:
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


def _placebo_floor(summary: Mapping[str, Any]) -> str:
    floors = summary.get("placebo_floor") or {}
    if not floors:
        return "<h2>Placebo floor</h2>" + note(
            "Not measured: this experiment ran without placebo arms."
        )
    rows = [
        [str(arm), fmt((f or {}).get("mean")), fmt_ci((f or {}).get("ci95")),
         fmt_int((f or {}).get("n"))]
        for arm, f in floors.items()
    ]  # fmt: skip
    return (
        "<h2>Placebo floor per arm</h2>"
        '<p class="explain">The blind-round distance of the arm\'s placebo twin: one persona '
        "in every seat, seated and seeded as the arm. Diversity at or below it is not the "
        "personas'.</p>" + table(["arm", "mean", "95% CI", "n"], rows, numeric=[1, 2, 3])
    )


def _decomposition(summary: Mapping[str, Any]) -> str:
    """The shares as measured; the bar only when they add up to the whole, never rescaled."""
    body = ["<h2>Variance decomposition</h2>"]
    parts, why = decomposition_shares(summary.get("decomposition"))
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


def _curves(summary: Mapping[str, Any]) -> str:
    names = _arm_names(list(summary.get("arms") or []))
    curves = summary.get("curves") or {}
    x_labels: list[str] = []
    for points in curves.values():
        for p in points or []:
            label = stage_label(p.get("stage"), p.get("round"))
            x_labels += [label] if label not in x_labels else []
    if not x_labels:
        return "<h2>Curves per arm</h2>" + note("No per-round curves.")
    series = []
    # Every arm, in plan order and in its own colour, as in the charts above.
    ordered = names + [str(a) for a in curves if str(a) not in names]
    for index, arm in enumerate(ordered):
        by_label = {stage_label(p.get("stage"), p.get("round")): p for p in curves.get(arm) or []}
        points = [by_label.get(lab) or {} for lab in x_labels]
        series.append(
            svg.Series(
                arm,
                [finite(p.get("mean")) for p in points],
                [interval(p.get("ci95")) for p in points],
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


def write_experiment_report(summary: Mapping[str, Any], path: Path | str) -> Path:
    """Write an experiment's ``summary.json`` as one self-contained HTML page."""
    return write(path, experiment_report_html(summary))
