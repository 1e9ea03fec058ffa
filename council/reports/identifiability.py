"""Identifiability in the reports: can the answers be told apart by who said them? One row per
source (reply embeddings, or residual activations) with its held-out balanced accuracy and
run-clustered interval, the chance levels beside it and the permutation p-value; for the page,
each confusion matrix. For a run the classes are its seats; for an experiment, each arm's
personas over its pooled units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from council.meter.experiment_report import ExperimentSummary
from council.meter.identifiability import Identifiability
from council.meter.run_report import RunDiversity
from council.reports.page import esc, note, table
from council.reports.values import fmt, fmt_ci, fmt_int, fmt_p

HEADERS = [
    "told apart",
    "from",
    "answers",
    "held out",
    "classes",
    "balanced accuracy",
    "95% CI",
    "1/k",
    "shuffled",
    "p-value",
    "accuracy",
    "chance",
]
NUMERIC = [2, *range(4, len(HEADERS))]
EXPLAIN = (
    "A nearest-centroid classifier is trained on some answers and scored on others it never "
    "saw: each run is held out whole in turn (within a single run, each stage and round), and "
    "everything it uses (the centre that removes what a question and stage make everyone say, "
    "and each {cls}'s centroid) comes from the training answers alone. Balanced accuracy (the "
    "mean over {cls}s of the share of their answers told right) is the headline; chance is 1/k "
    "for k {cls}s. The 95% interval is clustered by run (a jackknife over held-out runs with a "
    "t quantile: wide when the runs are few). Shuffled is the mean balanced accuracy with the "
    "{cls} names permuted within each run (the procedure's own chance level), and the p-value "
    "counts shuffles scoring at least as well. Accuracy is the plain share right, beside "
    "chance, the largest {cls}'s share. Within one run what is measured is a seat's "
    "consistency across stages, not its persona. Where the answers come from several models, "
    "the model is told apart too, and the {cls} within each model: a {cls} told apart across "
    "models may be only its model told apart."
)


def result_row(result: Identifiability) -> list[str]:
    return [
        result.of,
        result.source,
        fmt_int(result.samples),
        result.held_out or "?",
        fmt_int(len(result.classes)),
        fmt(result.balanced_accuracy),
        fmt_ci(result.ci95),
        fmt(result.uniform_chance),
        fmt(result.null_mean),
        fmt_p(result.p_value),
        fmt(result.accuracy),
        fmt(result.chance),
    ]


def result_notes(results: Sequence[Identifiability], prefix: str = "") -> list[str]:
    return [f"{prefix}{r.of} from {r.source}: {r.note}" for r in results if r.note]


# --- HTML --------------------------------------------------------------------------------


def _confusion(result: Identifiability, caption: str) -> str:
    classes = result.classes
    matrix = result.confusion
    if not classes or len(matrix) != len(classes):
        return ""
    rows = [[c, *(fmt_int(v) for v in row)] for c, row in zip(classes, matrix, strict=True)]
    headers = ["said by \u2193 / given to \u2192", *classes]
    return f"<h3>{esc(caption)}</h3>" + table(headers, rows, numeric=range(1, len(classes) + 1))


def _section(results: Sequence[Identifiability]) -> str:
    body = [table(HEADERS, [result_row(r) for r in results], numeric=NUMERIC)]
    body += [note(line) for line in result_notes(results)]
    for r in results:
        caption = f"Confusion matrix: {r.of or 'answers'}, from {r.source or '?'}"
        body.append(_confusion(r, caption))
    return "".join(body)


def run_identifiability_html(report: RunDiversity) -> str:
    results = report.identifiability
    body = ["<h2>Identifiability</h2>", f'<p class="explain">{esc(EXPLAIN.format(cls="seat"))}</p>']
    if not results:
        return "".join([*body, note("Identifiability was not measured for this report.")])
    return "".join([*body, _section(results)])


def experiment_identifiability_html(summary: ExperimentSummary) -> str:
    body = [
        "<h2>Identifiability by arm</h2>",
        f'<p class="explain">{esc(EXPLAIN.format(cls="persona"))} Each arm pools the panel '
        "answers of all its units, every stage and round, and holds out one unit's run at a "
        "time.</p>",
    ]
    measured = False
    for arm in summary.arms:
        if arm.identifiability:
            measured = True
            body += [f"<h3>Arm <code>{esc(arm.name)}</code></h3>", _section(arm.identifiability)]
    if not measured:
        body.append(note("Identifiability was not measured for this experiment."))
    return "".join(body)


# --- records -----------------------------------------------------------------------------

_FIELDS = (
    "of",
    "source",
    "detail",
    "samples",
    "held_out",
    "groups",
    "folds",
    "balanced_accuracy",
    "accuracy",
    "correct",
    "chance",
    "uniform_chance",
    "null_mean",
    "p_value",
    "permutations",
    "method",
    "interval_method",
    "note",
)


def _record(result: Identifiability) -> dict[str, Any]:
    ci: list[float | None] = [*result.ci95] if result.ci95 else [None, None]
    fields = asdict(result)
    return {
        **{k: fields[k] for k in _FIELDS},
        "classes": len(result.classes),
        "ci95_low": ci[0],
        "ci95_high": ci[1],
    }


def _confusion_records(result: Identifiability) -> list[dict[str, Any]]:
    return [
        {"source": result.source, "true": a, "predicted": b, "count": count}
        for a, row in zip(result.classes, result.confusion, strict=False)
        for b, count in zip(result.classes, row, strict=False)
    ]


def identifiability_records(
    items: Sequence[tuple[dict[str, Any], Identifiability]],
) -> dict[str, list[dict[str, Any]]]:
    """The ``identifiability`` and ``identifiability_confusion`` tables; ``items`` pairs the
    columns that say where a result belongs (an arm, or nothing for a run) with the result."""
    return {
        "identifiability": [{**key, **_record(r)} for key, r in items],
        "identifiability_confusion": [
            {**key, **row} for key, r in items for row in _confusion_records(r)
        ],
    }


def run_identifiability_records(report: RunDiversity) -> dict[str, list[dict[str, Any]]]:
    return identifiability_records([({}, r) for r in report.identifiability])


def experiment_identifiability_records(
    summary: ExperimentSummary,
) -> dict[str, list[dict[str, Any]]]:
    return identifiability_records(
        [({"arm": a.name}, r) for a in summary.arms for r in a.identifiability]
    )
