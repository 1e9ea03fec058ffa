"""Measuring a finished experiment: every metric per arm with a BCa bootstrap 95% interval, the
differences between arms with BCa intervals and permutation p-values (``scipy.stats``), the
noise floor of sampling alone, and the split of embedding variance into persona, model family
and residual (undefined, never rescaled, where it does not add up)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import fmean
from typing import Any

from council.diversity.analysis import RunDiversity, analyse_run
from council.diversity.embedders import Embedder
from council.diversity.identifiability import turn_identifiability
from council.diversity.metrics import decompose_variance, mean_pairwise_distance
from council.diversity.stats import (
    BCA,
    difference_interval,
    mean_interval,
    permutation_test,
)
from council.records.run import Turn
from council.seats.routing import model_family
from council.store.loader import load_run

METRICS = {
    "blind_mean_pairwise_distance":
        "mean cosine distance between seats in the blind round (higher: more different voices)",
    "blind_vendi_score":
        "effective number of distinct answers in the blind round (1 to the number of seats)",
    "above_noise_floor":
        "blind-round distance minus the distance between resamples of one persona on one model",
    "convergence":
        "last panel stage's distance minus the blind round's (negative: the voices converged)",
    "drift":
        "last panel stage's position from the persona's voice (0) to the assistant voice (1)",
}  # fmt: skip


METHODS = {
    "interval": f"95% intervals: {BCA}",
    "test": "p-values: two-sided permutation tests of the difference in means "
    "(scipy.stats.permutation_test; exact for small groups)",
}


def _interval(values: list[float], seed: int) -> dict[str, Any]:
    return mean_interval(values, seed=seed).to_json()


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(out: Path, embedder: Embedder, *, title: str | None = None) -> dict[str, Any]:
    plan = json.loads((out / "plan.json").read_text())
    # Units finish in any order on a cluster; measured in plan order, the summary is the same.
    arm_order = {arm["name"]: i for i, arm in enumerate(plan["arms"])}
    units = sorted(
        (u for u in latest_units(out) if u.get("status") == "completed"),
        key=lambda u: (arm_order.get(u["arm"], len(arm_order)), u["question"], u["sample"]),
    )
    failed = [u for u in latest_units(out) if u.get("status") != "completed"]
    assistant, floors = _voices(out, embedder)
    measured = _Measured()
    for unit in units:
        measured.add(out, unit, embedder, assistant, floors)

    arms = []
    for i, arm in enumerate(plan["arms"]):
        values = measured.per_arm[arm["name"]]
        arms.append(
            {
                **arm,
                "units": sum(u["arm"] == arm["name"] for u in units),
                "failed_units": sum(u["arm"] == arm["name"] for u in failed),
                "metrics": {name: _interval(values[name], seed=i) for name in METRICS},
                "identifiability": measured.identifiability(arm["name"], embedder, seed=i),
            }
        )
    by_model: dict[str, list[float]] = defaultdict(list)
    for (model, _), value in floors.items():
        by_model[model].append(value)
    return {
        "experiment": plan["kind"],
        "title": title or f"{plan['kind']} experiment",
        "questions": len(plan["questions"]),
        "samples": plan["samples"],
        "embedder": embedder.name,
        "arms": arms,
        "metric_descriptions": METRICS,
        "methods": METHODS,
        "failed_units": [_failure(u) for u in failed],
        "comparisons": _comparisons(plan, measured.per_arm),
        "noise_floor": {m: _interval(v, seed=7) for m, v in sorted(by_model.items())},
        "decomposition": measured.decomposition(embedder),
        "curves": {
            arm["name"]: [
                {"stage": stage, "round": rnd, **_interval(values, seed=3)}
                for (stage, rnd), values in measured.curves[arm["name"]].items()
            ]
            for arm in plan["arms"]
            if arm["name"] in measured.curves
        },
    }


def _voices(
    out: Path, embedder: Embedder
) -> tuple[dict[int, dict[str, list[str]]], dict[tuple[str, int], float]]:
    """The assistant voice per question and model (for drift), and the noise floor per
    (model, question): the distance between resamples of one persona."""
    assistant: dict[int, dict[str, list[str]]] = defaultdict(dict)
    floors: dict[tuple[str, int], float] = {}
    voices = sorted(_rows(out / "voices.jsonl"), key=lambda v: (v["question"], v["model"]))
    for row in voices:
        answers = [a for a in row["answers"] if a.strip()]
        if row["kind"] == "assistant":
            assistant[row["question"]][row["model"]] = answers
        elif row["kind"] == "noise" and len(answers) >= 2:
            floors[(row["model"], row["question"])] = mean_pairwise_distance(
                embedder.encode(answers)
            )
    return assistant, floors


class _Measured:
    """Every completed unit's metrics by arm, its per-round curve, and the blind-round texts
    labelled by persona and model family (for the variance split)."""

    def __init__(self) -> None:
        self.per_arm: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.curves: dict[str, dict[tuple[str, int], list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.blind_texts: list[str] = []
        self.blind_labels: list[tuple[str, str]] = []
        self.panel_turns: dict[str, list[Turn]] = defaultdict(list)

    def add(
        self,
        out: Path,
        unit: dict[str, Any],
        embedder: Embedder,
        assistant: dict[int, dict[str, list[str]]],
        floors: dict[tuple[str, int], float],
    ) -> None:
        # Units of experiments run before the ledger held events name only their folder.
        run = (
            load_run(unit["run_id"], out / "runs")
            if "run_id" in unit
            else load_run(unit["run_dir"])
        )
        report = analyse_run(run, embedder, assistant_voice=assistant.get(unit["question"]))
        values = self.per_arm[unit["arm"]]
        for name, value in _unit_metrics(report, run, floors, unit["question"]).items():
            values[name].append(value)
        for stage in report.stages:
            if stage.mean_pairwise_distance is not None:
                key = (stage.stage, stage.round)
                self.curves[unit["arm"]][key].append(stage.mean_pairwise_distance)
        panel = {s.seat for s in run.seats if s.role == "panel"}
        self.panel_turns[unit["arm"]] += [
            t for t in run.turns if t.ok and t.seat in panel and (t.content or "").strip()
        ]
        blind = report.stages[0].stage if report.stages else None
        for turn in run.turns:
            if turn.stage == blind and turn.ok and turn.seat != "chair" and turn.content:
                self.blind_texts.append(turn.content)
                self.blind_labels.append((turn.persona, model_family(turn.model)))

    def identifiability(self, arm: str, embedder: Embedder, seed: int) -> list[dict[str, Any]]:
        """Can the arm's panel answers, pooled over its units, be told apart by persona?
        (Personas, not seats: a seat's name may differ from one unit to the next.)"""
        turns = self.panel_turns.get(arm) or []
        if not turns:
            return []
        vectors = embedder.encode([t.content or "" for t in turns])
        found = turn_identifiability(
            turns, vectors, lambda t: t.persona, of="persona", embedder=embedder.name, seed=seed
        )
        return [result.to_json() for result in found]

    def decomposition(self, embedder: Embedder) -> dict[str, Any] | None:
        if len(self.blind_texts) <= 2:
            return None
        split = decompose_variance(
            embedder.encode(self.blind_texts),
            [p for p, _ in self.blind_labels],
            [f for _, f in self.blind_labels],
        )
        shares = {k: _round(getattr(split, k)) for k in ("persona", "family", "residual")}
        return {**shares, "note": split.note}


def _comparisons(
    plan: dict[str, Any], per_arm: dict[str, dict[str, list[float]]]
) -> list[dict[str, Any]]:
    """Every later arm against the first, metric by metric, where both have two values."""
    comparisons = []
    base = plan["arms"][0]["name"]
    for other in [a["name"] for a in plan["arms"][1:]]:
        for name in METRICS:
            a, b = per_arm[base][name], per_arm[other][name]
            if len(a) > 1 and len(b) > 1:
                comparisons.append(_compare(name, base, other, a, b))
    return comparisons


def _unit_metrics(
    report: RunDiversity, run: Any, floors: dict[tuple[str, int], float], q: int
) -> dict[str, float]:
    measured = [s for s in report.stages if s.mean_pairwise_distance is not None]
    if not measured:
        return {}
    blind, last = measured[0], measured[-1]
    values: dict[str, float] = {
        "blind_mean_pairwise_distance": blind.mean_pairwise_distance or 0.0,
        "blind_vendi_score": blind.vendi_score or 0.0,
    }
    if last is not blind:  # a protocol with one panel stage has no convergence to measure
        values["convergence"] = (last.mean_pairwise_distance or 0.0) - values[
            "blind_mean_pairwise_distance"
        ]
    seat_floors = [floors[(p.model, q)] for p in blind.points if (p.model, q) in floors]
    if seat_floors:
        values["above_noise_floor"] = values["blind_mean_pairwise_distance"] - fmean(seat_floors)
    drift = [d.position for d in report.drift if (d.stage, d.round) == (last.stage, last.round)]
    if drift:
        values["drift"] = fmean(drift)
    return values


def _compare(name: str, a_name: str, b_name: str, a: list[float], b: list[float]) -> dict[str, Any]:
    estimate = difference_interval(a, b, seed=11)
    test = permutation_test(a, b, seed=5)
    return {
        "metric": name, "a": a_name, "b": b_name,
        "difference": _round(estimate.value), "ci95": estimate.to_json()["ci95"],
        "p_value": round(test.p_value, 4),
        "interval_method": estimate.method, "test_method": test.method,
    }  # fmt: skip


def _failure(unit: dict[str, Any]) -> dict[str, Any]:
    return {key: unit.get(key) for key in ("unit", "arm", "status", "error")}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def latest_units(out: Path) -> list[dict[str, Any]]:
    """Each unit's last journal row: a unit that failed and was retried counts once."""
    rows: dict[str, dict[str, Any]] = {}
    for row in _rows(out / "units.jsonl"):
        rows[row["unit"]] = row
    return list(rows.values())


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    return path
