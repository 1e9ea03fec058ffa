"""The HTML report of an experiment: arms side by side per metric with their 95% intervals
(the method named), the noise floor, comparisons, the variance decomposition (undefined, not
rescaled, where it does not add up) and per-round curves per arm. Every chart starts its y
axis at 0 and gives each arm the same colour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.reports import svg
from council.reports.page import esc, figure, meta, note, page, table, write
from council.reports.values import (
    NOISE_FLOOR_METRICS,
    arm_metrics,
    comparison_rows,
    decomposition_shares,
    finite,
    fmt,
    fmt_ci,
    fmt_int,
    interval,
    stage_label,
)


def _arm_names(arms: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(a.get("name", f"arm {i + 1}")) for i, a in enumerate(arms)]


def experiment_report_html(summary: Mapping[str, Any]) -> str:
    arms = list(summary.get("arms") or [])
    names = _arm_names(arms)
    metrics = arm_metrics(summary)
    descriptions = summary.get("metric_descriptions") or {}
    floors = summary.get("noise_floor") or {}
    title = str(summary.get("title") or "Experiment")
    body = [
        f"<h1>{esc(title)}</h1>",
        meta(
            [
                ("experiment", str(summary.get("experiment", "?"))),
                ("questions", fmt_int(summary.get("questions"))),
                ("samples per question", fmt_int(summary.get("samples"))),
                ("embedder", str(summary.get("embedder", "?"))),
            ]
        ),
        "<h2>Arms</h2>",
    ]
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

    body.append("<h2>Metrics by arm</h2>")
    if metrics:
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
    else:
        body.append(note("No metrics were measured."))
    for metric in metrics:
        body.append(f"<h3><code>{esc(metric)}</code></h3>")
        if metric in descriptions:
            body.append(f'<p class="explain">{esc(descriptions[metric])}</p>')
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
        if metric in NOISE_FLOOR_METRICS:
            for k, (model, floor) in enumerate(floors.items()):
                value = finite((floor or {}).get("mean"))
                if value is not None:
                    name = f"floor: {model.split('/')[-1]}"  # the legend is narrow
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
            caption += " Dashed: the noise floor, one persona resampled on the same model."
        body.append(figure(chart, caption))

    body.append("<h2>Comparisons</h2>")
    comparisons = summary.get("comparisons") or []
    if comparisons:
        rows = comparison_rows(comparisons)
        methods = summary.get("methods") or {}
        how = " ".join(str(methods[k]) + "." for k in ("interval", "test") if k in methods)
        body.append(
            '<p class="explain">difference = mean of b &minus; mean of a, with a '
            f"bootstrap 95% interval and a permutation p-value. {esc(how)}</p>"
        )
        body.append(
            table(["metric", "a", "b", "difference", "95% CI", "p-value"], rows, numeric=[3, 4, 5])
        )
    else:
        body.append(note("No comparisons between arms."))

    body.append("<h2>Noise floor per model</h2>")
    if floors:
        rows = [
            [
                str(model),
                fmt((f or {}).get("mean")),
                fmt_ci((f or {}).get("ci95")),
                fmt_int((f or {}).get("n")),
            ]
            for model, f in floors.items()
        ]
        body.append(
            '<p class="explain">The mean pairwise distance between one model\'s answers '
            "when one persona is resampled on the same prompt: diversity below it is "
            "sampling noise.</p>"
        )
        body.append(table(["model", "mean", "95% CI", "n"], rows, numeric=[1, 2, 3]))
    else:
        body.append(note("The noise floor was not measured."))

    body.append("<h2>Variance decomposition</h2>")
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

    body.append("<h2>Curves per arm</h2>")
    curves = summary.get("curves") or {}
    x_labels = []
    for points in curves.values():
        for p in points or []:
            label = stage_label(p.get("stage"), p.get("round"))
            x_labels += [label] if label not in x_labels else []
    if x_labels:
        series = []
        # Every arm, in plan order and in its own colour, as in the charts above.
        ordered = names + [str(a) for a in curves if str(a) not in names]
        for index, arm in enumerate(ordered):
            points = curves.get(arm) or []
            by_label = {stage_label(p.get("stage"), p.get("round")): p for p in points}
            series.append(
                svg.Series(
                    str(arm),
                    [
                        finite(by_label[lab].get("mean")) if lab in by_label else None
                        for lab in x_labels
                    ],
                    [
                        interval(by_label[lab].get("ci95")) if lab in by_label else None
                        for lab in x_labels
                    ],
                    svg.colour(index),
                )
            )
        chart = svg.xy_chart(
            "Mean pairwise distance by stage and round, per arm",
            x_labels,
            series,
            x_axis="stage and round, in order",
            y_axis="mean pairwise distance",
            include=[0.0],
            desc="Each arm's mean pairwise distance per stage and round, with 95% intervals.",
        )
        body.append(figure(chart, "Lines: means over questions and samples; whiskers: 95% CIs."))
    else:
        body.append(note("No per-round curves."))
    return page(title, "".join(body))


def write_experiment_report(summary: Mapping[str, Any], path: Path | str) -> Path:
    """Write an experiment's ``summary.json`` as one self-contained HTML page."""
    return write(path, experiment_report_html(summary))
