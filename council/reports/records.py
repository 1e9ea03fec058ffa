"""Every table of a report as records (one dict a row, raw numbers, ``None`` where missing),
for CSV files, data frames and notebooks: what the page shows formatted, these hold exactly."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.meter.experiment_report import ExperimentSummary
from council.meter.run_report import RunDiversity
from council.reports.identifiability import (
    experiment_identifiability_records,
    run_identifiability_records,
)
from council.reports.values import interval, stage_label

Records = list[dict[str, Any]]


def _ci(value: Any) -> dict[str, float | None]:
    pair = interval(value)
    return {"ci95_low": pair[0] if pair else None, "ci95_high": pair[1] if pair else None}


def run_records(report: RunDiversity) -> dict[str, Records]:
    """The tables of one run's report: seats, stages, seat points (distance to the centroid,
    outlier, reply length), similarity (one row per pair), no-persona baseline, drift,
    identifiability (and its confusion matrices, one row per cell), and stance flips where the
    protocol voted."""
    stages = report.stages
    tables: dict[str, Records] = {
        "seats": [s.to_json() for s in report.seats],
        "stages": [{k: s.to_json()[k] for k in _STAGE_COLUMNS} for s in stages],
        "points": [
            {"stage": s.stage, "round": s.round, **p.to_json()} for s in stages for p in s.points
        ],
        "similarity": [
            {"stage": s.stage, "round": s.round, "seat_a": a, "seat_b": b, "cosine": v}
            for s in stages
            for a, row in zip(s.labels, s.similarity, strict=False)
            for b, v in zip(s.labels, row, strict=False)
        ],
        "no_persona_baseline": [f.to_json() for f in report.no_persona_baseline],
        "drift": _drift_records(report),
        **run_identifiability_records(report),
    }
    if report.stance_flips or report.vote_tallies:
        tables["stance_flips"] = [f.to_json() for f in report.stance_flips]
    return tables


_STAGE_COLUMNS = ("stage", "round", "seats", "mean_pairwise_distance", "vendi_score", "note")


def _drift_records(report: RunDiversity) -> Records:
    """Every measured turn (the page shows their means per seat), in seating order."""
    order = report.seat_order()
    rows = sorted(
        report.drift, key=lambda d: order.index(d.seat) if d.seat in order else len(order)
    )
    return [d.to_json() for d in rows]


def experiment_records(summary: ExperimentSummary) -> dict[str, Records]:
    """The tables of an experiment's summary: arms, metrics per arm, tests, placebo floors, power,
    variance decomposition, curves, failed units and identifiability per arm."""
    arms = summary.arms
    decomposition = summary.decomposition or {}
    return {
        "arms": [
            {
                "arm": a.name,
                "models": ", ".join(a.models),
                "personas": ", ".join(a.personas),
                "units": a.units,
                "failed_units": a.failed_units,
            }
            for a in arms
        ],
        "metrics": [
            {
                "arm": a.name,
                "metric": name,
                "mean": m.value,
                **_ci(m.ci95),
                "n": m.n,
                "method": m.method,
            }
            for a in arms
            for name, m in a.metrics.items()
        ],
        "comparisons": _test_records(summary),
        "placebo_floor": [
            {"arm": arm, "mean": f.value, **_ci(f.ci95), "n": f.n}
            for arm, f in summary.placebo_floor.items()
        ],
        "power": [row.to_json() for row in summary.power],
        "decomposition": [
            {"source": k, "share": v, "note": decomposition.get("note")}
            for k, v in decomposition.items()
            if k != "note"
        ],
        "curves": [
            {
                "arm": arm,
                "stage": stage_label(p.stage, p.round),
                "mean": p.value,
                **_ci(p.ci95),
                "n": p.n,
            }
            for arm, points in summary.curves.items()
            for p in points
        ],
        "failed_units": [f.to_json() for f in summary.failed_units],
        **experiment_identifiability_records(summary),
    }


def _test_records(summary: ExperimentSummary) -> Records:
    """Every test of an experiment: what it compares, its estimate, p, Holm p and role."""
    return [
        {
            "metric": c.metric,
            "a": c.a,
            "b": c.b,
            "difference": c.difference,
            **_ci(c.ci95),
            "p_value": c.p_value,
            "holm_p": c.adjusted_p,
            "role": c.role,
            "interval_method": c.interval_method,
            "test_method": c.test_method,
        }
        for c in summary.all_tests
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
