"""The eval's report: a summary (``council.app.evaluation.summarise``'s JSON) as a text table,
JSON and an HTML page with a quality-per-cost chart (``council.reports.svg``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from council.reports import svg
from council.reports.page import esc, figure, meta, note, page, table, write


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(interval: Mapping[str, Any]) -> str:
    ci = interval.get("ci95")
    return "-" if not ci or None in ci else f"{_pct(ci[0])} to {_pct(ci[1])}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _cost(arm: Mapping[str, Any]) -> tuple[float, str]:
    """What the chart orders arms by: dollars per item where any were spent, else tokens."""
    items = max(1, arm["answers"])
    if arm["cost_usd"] > 0:
        per = arm["cost_usd"] / items
        return per, f"${per:.4f}/answer"
    return arm["tokens_per_item"], f"{arm['tokens_per_item']:g} tokens/item"


def quality_per_cost_chart(summary: Mapping[str, Any]) -> str:
    """Accuracy with its interval for each arm, the arms ordered by what they cost."""
    arms = sorted(summary["arms"], key=lambda a: _cost(a)[0])
    labels = [f"{a['name']} ({_cost(a)[1]})" for a in arms]
    series = []
    for i, arm in enumerate(arms):
        values: list[float | None] = [None] * len(arms)
        bounds: list[tuple[float, float] | None] = [None] * len(arms)
        values[i] = arm["accuracy"]["mean"]
        ci = arm["accuracy"]["ci95"]
        bounds[i] = (ci[0], ci[1]) if ci and None not in ci else None
        series.append(svg.Series(arm["name"], values, bounds))
    return svg.xy_chart(
        "Accuracy per cost",
        labels,
        series,
        x_axis="arm, cheapest first",
        y_axis="accuracy against gold",
        connect=False,
        include=[1.0],
        desc="Each arm's accuracy with its 95% interval; arms ordered by cost per item.",
    )


def _arm_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            arm["name"],
            _pct(arm["accuracy"]["mean"]),
            _ci(arm["accuracy"]),
            str(arm["answers"]),
            str(arm["unanswered"]),
            str(arm["calls"]),
            str(arm["prompt_tokens"] + arm["completion_tokens"]),
            f"{arm['cost_usd']:.4f}",
        ]
        for arm in summary["arms"]
    ]


ARM_HEADERS = ["arm", "accuracy", "95% CI", "answers", "no answer", "calls", "tokens", "cost $"]
PAIR_HEADERS = ["b - a", "difference", "95% CI", "p", "Holm p", "items", "test"]


def _pair_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            f"{c['b']} - {c['a']}",
            _pct(c["difference"]["mean"]),
            _ci(c["difference"]),
            _p(c["p_value"]),
            _p(c["adjusted_p"]),
            str(c["items"]),
            c["test_method"],
        ]
        for c in summary["comparisons"]
    ]


def _category_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for category in summary["categories"]:
        row = [category]
        for arm in summary["arms"]:
            found = arm["categories"].get(category)
            row.append(f"{_pct(found['mean'])} ({_ci(found)})" if found else "-")
        rows.append(row)
    return rows


def _seat_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for arm in summary["arms"]:
        errors = arm.get("error_correlation")
        if errors:
            phi, n_eff = errors["mean_phi"], errors["n_eff"]
            ci = n_eff["ci95"]
            eff_ci = "-" if not ci or None in ci else f"{ci[0]:.2f} to {ci[1]:.2f}"
            rows.append(
                [
                    arm["name"],
                    str(errors["seats"]),
                    f"{phi['mean']:.3f}",
                    "-" if not phi["ci95"] else f"{phi['ci95'][0]:.3f} to {phi['ci95'][1]:.3f}",
                    f"{n_eff['mean']:.2f}",
                    eff_ci,
                ]
            )
    return rows


def eval_report_html(summary: Mapping[str, Any]) -> str:
    arms = summary["arms"]
    methods = sorted({arm["accuracy"]["method"] for arm in arms})
    body = [
        f"<h1>{esc(summary['title'])}</h1>",
        meta(
            [
                ("items", str(summary["items"])),
                ("samples per item", str(summary["samples"])),
                ("arms", ", ".join(a["name"] for a in arms)),
            ]
        ),
        "<h2>Accuracy per arm</h2>",
        table(ARM_HEADERS, _arm_rows(summary), numeric=range(1, 8)),
        note("Intervals: " + "; ".join(methods) + ". An unanswered item counts as wrong."),
        figure(
            quality_per_cost_chart(summary),
            "Dots: accuracy; whiskers: 95% intervals; x: arms from cheapest to dearest.",
        ),
        "<h2>Arms compared on the same items</h2>",
        table(PAIR_HEADERS, _pair_rows(summary), numeric=range(1, 6))
        if summary["comparisons"]
        else note("One arm: nothing to compare."),
        "<h2>By category</h2>",
        table(["category", *(a["name"] for a in arms)], _category_rows(summary)),
        "<h2>How alike the seats err</h2>",
        "<p class='explain'>Phi of each pair of seats' correct/incorrect indicators against "
        "gold, averaged, and Kish's effective number of independent votes it implies: "
        "n / (1 + (n - 1) phi).</p>",
        table(
            ["arm", "seats", "mean phi", "95% CI", "n_eff", "95% CI"],
            _seat_rows(summary),
            numeric=range(1, 6),
        )
        if _seat_rows(summary)
        else note("No arm has two seats whose answers vary."),
    ]
    return page(str(summary["title"]), "".join(body))


def eval_report_text(summary: Mapping[str, Any]) -> str:
    lines = [f"{summary['title']}: {summary['items']} items x {summary['samples']} samples"]
    widths = [max(len(r[i]) for r in [ARM_HEADERS, *_arm_rows(summary)]) for i in range(8)]
    for row in [ARM_HEADERS, *_arm_rows(summary)]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for row in _pair_rows(summary):
        lines.append(f"{row[0]}: {row[1]} ({row[2]}), p {row[3]}, Holm p {row[4]}")
    for row in _seat_rows(summary):
        lines.append(f"{row[0]}: {row[1]} seats, mean phi {row[2]}, n_eff {row[4]} ({row[5]})")
    return "\n".join(lines)


class EvalReport:
    """An eval's summary: ``to_json()``, ``to_html()``, ``write_html(path)``, ``str()``."""

    def __init__(self, summary: Mapping[str, Any]) -> None:
        self.summary = dict(summary)

    def to_json(self) -> dict[str, Any]:
        return dict(self.summary)

    def to_html(self) -> str:
        return eval_report_html(self.summary)

    def write_html(self, path: Path | str) -> Path:
        return write(path, self.to_html())

    def __str__(self) -> str:
        return eval_report_text(self.summary)
