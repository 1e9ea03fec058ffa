"""Identifiability in the reports: can the answers be told apart by who said them? One row per
source (reply embeddings, or residual activations) with its leave-one-out accuracy, the chance
levels beside it and the permutation p-value; for the page, each confusion matrix. For a run the
classes are its seats; for an experiment, each arm's personas over its pooled units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from council.reports.page import esc, note, table
from council.reports.values import fmt, fmt_ci, fmt_int, fmt_p

HEADERS = ["told apart", "from", "answers", "classes", "accuracy", "95% CI", "chance", "1/k",
           "shuffled", "p-value"]  # fmt: skip
NUMERIC = range(2, len(HEADERS))
EXPLAIN = (
    "Each answer is held out in turn and given to the {cls} whose other answers' centroid is "
    "nearest in cosine (vectors centred within each stage and round of each run, so that what "
    "a stage makes everyone say does not count, then normalised; labels are shuffled within "
    "them too). Accuracy well above chance with a "
    "small p-value: the {cls}s are identifiable from what they said; near chance: they leave no "
    "recognisable mark. Chance is the largest {cls}'s share of the answers; 1/k for k {cls}s; "
    "shuffled is the mean accuracy with the labels shuffled (the procedure's own chance level), "
    "and the p-value counts shuffles scoring at least as well. Where the answers come from "
    "several models, the model is told apart too, and the {cls} within each model: a {cls} "
    "told apart across models may be only its model told apart."
)


def results_of(container: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in container.get("identifiability") or [] if isinstance(r, Mapping)]


def result_row(result: Mapping[str, Any]) -> list[str]:
    return [
        str(result.get("of", "?")), str(result.get("source", "?")), fmt_int(result.get("samples")),
        fmt_int(len(result.get("classes") or [])), fmt(result.get("accuracy")),
        fmt_ci(result.get("ci95")), fmt(result.get("chance")), fmt(result.get("uniform_chance")),
        fmt(result.get("null_mean")), fmt_p(result.get("p_value")),
    ]  # fmt: skip


def result_notes(results: Sequence[Mapping[str, Any]], prefix: str = "") -> list[str]:
    return [
        f"{prefix}{r.get('of')} from {r.get('source')}: {r['note']}"
        for r in results
        if r.get("note")
    ]


# --- HTML --------------------------------------------------------------------------------


def _confusion(result: Mapping[str, Any], caption: str) -> str:
    classes = [str(c) for c in result.get("classes") or []]
    matrix = result.get("confusion") or []
    if not classes or len(matrix) != len(classes):
        return ""
    rows = [[c, *(fmt_int(v) for v in row)] for c, row in zip(classes, matrix, strict=True)]
    headers = ["said by \u2193 / given to \u2192", *classes]
    return f"<h3>{esc(caption)}</h3>" + table(headers, rows, numeric=range(1, len(classes) + 1))


def _section(results: Sequence[Mapping[str, Any]]) -> str:
    body = [table(HEADERS, [result_row(r) for r in results], numeric=NUMERIC)]
    body += [note(line) for line in result_notes(results)]
    for r in results:
        caption = f"Confusion matrix: {r.get('of') or 'answers'}, from {r.get('source') or '?'}"
        body.append(_confusion(r, caption))
    return "".join(body)


def run_identifiability_html(report: Mapping[str, Any]) -> str:
    results = results_of(report)
    body = ["<h2>Identifiability</h2>", f'<p class="explain">{esc(EXPLAIN.format(cls="seat"))}</p>']
    if not results:
        return "".join([*body, note("Identifiability was not measured for this report.")])
    return "".join([*body, _section(results)])


def experiment_identifiability_html(summary: Mapping[str, Any]) -> str:
    body = [
        "<h2>Identifiability by arm</h2>",
        f'<p class="explain">{esc(EXPLAIN.format(cls="persona"))} Each arm pools the panel '
        "answers of all its units, every stage and round.</p>",
    ]
    measured = False
    for arm in summary.get("arms") or []:
        results = results_of(arm)
        if results:
            measured = True
            name = str(arm.get("name"))
            body += [f"<h3>Arm <code>{esc(name)}</code></h3>", _section(results)]
    if not measured:
        body.append(note("Identifiability was not measured for this experiment."))
    return "".join(body)


# --- records -----------------------------------------------------------------------------

_FIELDS = ("of", "source", "detail", "samples", "accuracy", "balanced_accuracy", "correct",
           "chance", "uniform_chance", "null_mean", "p_value", "permutations", "note")  # fmt: skip


def _record(result: Mapping[str, Any]) -> dict[str, Any]:
    ci = result.get("ci95") or [None, None]
    return {
        **{k: result.get(k) for k in _FIELDS},
        "classes": len(result.get("classes") or []),
        "ci95_low": ci[0],
        "ci95_high": ci[1],
    }


def _confusion_records(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    classes = [str(c) for c in result.get("classes") or []]
    return [
        {"source": result.get("source"), "true": a, "predicted": b, "count": count}
        for a, row in zip(classes, result.get("confusion") or [], strict=False)
        for b, count in zip(classes, row, strict=False)
    ]


def identifiability_records(
    items: Sequence[tuple[dict[str, Any], Mapping[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """The ``identifiability`` and ``identifiability_confusion`` tables; ``items`` pairs the
    columns that say where a result belongs (an arm, or nothing for a run) with the result."""
    return {
        "identifiability": [{**key, **_record(r)} for key, r in items],
        "identifiability_confusion": [
            {**key, **row} for key, r in items for row in _confusion_records(r)
        ],
    }


def run_identifiability_records(report: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return identifiability_records([({}, r) for r in results_of(report)])


def experiment_identifiability_records(
    summary: Mapping[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    return identifiability_records(
        [({"arm": a.get("name")}, r) for a in summary.get("arms") or [] for r in results_of(a)]
    )
