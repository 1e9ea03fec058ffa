"""Every table of a report as records (one dict a row, raw numbers, ``None`` where missing),
for CSV files, data frames and notebooks: what the page shows formatted, these hold exactly."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.reports.identifiability import (
    experiment_identifiability_records,
    run_identifiability_records,
)
from council.reports.values import interval, no_persona_baseline, seat_order, stage_label

Records = list[dict[str, Any]]


def _ci(value: Any) -> dict[str, float | None]:
    pair = interval(value)
    return {"ci95_low": pair[0] if pair else None, "ci95_high": pair[1] if pair else None}


def run_records(report: Mapping[str, Any]) -> dict[str, Records]:
    """The tables of one run's report: seats, stages, seat points (distance to the centroid,
    outlier, reply length), similarity (one row per pair), no-persona baseline, drift,
    identifiability (and its confusion matrices, one row per cell), and stance flips where the
    protocol voted."""
    stages = list(report.get("stages") or [])
    tables: dict[str, Records] = {
        "seats": [dict(s) for s in report.get("seats") or []],
        "stages": [
            {
                k: s.get(k)
                for k in (
                    "stage",
                    "round",
                    "seats",
                    "mean_pairwise_distance",
                    "vendi_score",
                    "note",
                )
            }
            for s in stages
        ],
        "points": [
            {"stage": s["stage"], "round": s["round"], **dict(p)}
            for s in stages
            for p in s.get("points") or []
        ],
        "similarity": [
            {"stage": s["stage"], "round": s["round"], "seat_a": a, "seat_b": b, "cosine": v}
            for s in stages
            for a, row in zip(s.get("labels") or [], s.get("similarity") or [], strict=False)
            for b, v in zip(s.get("labels") or [], row, strict=False)
        ],
        "no_persona_baseline": [dict(f) for f in no_persona_baseline(report)],
        "drift": _drift_records(report),
        **run_identifiability_records(report),
    }
    if report.get("stance_flips") or report.get("vote_tallies"):
        tables["stance_flips"] = [dict(f) for f in report.get("stance_flips") or []]
    return tables


def _drift_records(report: Mapping[str, Any]) -> Records:
    """Every measured turn (the page shows their means per seat), in seating order."""
    order = seat_order(report)
    rows = [dict(d) for d in report.get("drift") or []]
    rows.sort(key=lambda d: order.index(d["seat"]) if d["seat"] in order else len(order))
    return rows


def experiment_records(summary: Mapping[str, Any]) -> dict[str, Records]:
    """The tables of an experiment's summary: arms, metrics per arm, tests, placebo floors, power,
    variance decomposition, curves, failed units and identifiability per arm."""
    arms = list(summary.get("arms") or [])
    decomposition = summary.get("decomposition") or {}
    return {
        "arms": [
            {
                "arm": a.get("name"),
                "models": ", ".join(a.get("models") or []),
                "personas": ", ".join(a.get("personas") or []),
                "units": a.get("units"),
                "failed_units": a.get("failed_units", 0),
            }
            for a in arms
        ],
        "metrics": [
            {
                "arm": a.get("name"),
                "metric": name,
                "mean": m.get("mean"),
                **_ci(m.get("ci95")),
                "n": m.get("n"),
                "method": m.get("method"),
            }
            for a in arms
            for name, m in (a.get("metrics") or {}).items()
        ],
        "comparisons": _test_records(summary),
        "placebo_floor": [
            {"arm": arm, "mean": f.get("mean"), **_ci(f.get("ci95")), "n": f.get("n")}
            for arm, f in (summary.get("placebo_floor") or {}).items()
        ],
        "power": [dict(row) for row in summary.get("power") or []],
        "decomposition": [
            {"source": k, "share": v, "note": decomposition.get("note")}
            for k, v in decomposition.items()
            if k != "note"
        ],
        "curves": [
            {
                "arm": arm,
                "stage": stage_label(p.get("stage"), p.get("round")),
                "mean": p.get("mean"),
                **_ci(p.get("ci95")),
                "n": p.get("n"),
            }
            for arm, points in (summary.get("curves") or {}).items()
            for p in points or []
        ],
        "failed_units": [dict(f) for f in summary.get("failed_units") or []],
        **experiment_identifiability_records(summary),
    }


def _test_records(summary: Mapping[str, Any]) -> Records:
    """Every test of an experiment: what it compares, its estimate, p, Holm p and role."""
    return [
        {
            "metric": c.get("metric"),
            "a": c.get("a"),
            "b": c.get("b"),
            "difference": c.get("difference"),
            **_ci(c.get("ci95")),
            "p_value": c.get("p_value"),
            "holm_p": c.get("adjusted_p"),
            "role": c.get("role"),
            "interval_method": c.get("interval_method"),
            "test_method": c.get("test_method"),
        }
        for c in summary.get("tests") or summary.get("comparisons") or []
    ]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def write_csv(tables: Mapping[str, Records], folder: Path | str) -> list[Path]:
    """One ``NAME.csv`` per table (a header row even when a table is empty); a missing value
    is an empty cell."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables.items():
        path = target / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_columns(rows) or ["empty"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        written.append(path)
    return written
