"""Measuring a finished experiment: every metric per arm with a bootstrap 95% interval, the
differences between arms with permutation p-values, the noise floor of sampling alone, and the
split of embedding variance into persona, model family and residual."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

from council.diversity.analysis import RunDiversity, analyse_run
from council.diversity.embedders import Embedder
from council.diversity.metrics import (
    bootstrap_ci,
    decompose_variance,
    mean_pairwise_distance,
    permutation_p_value,
)
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


def _interval(values: list[float], seed: int) -> dict[str, Any]:
    if not values:
        return {"mean": None, "ci95": None, "n": 0}
    low, high = bootstrap_ci(values, seed=seed) if len(values) > 1 else (values[0], values[0])
    return {
        "mean": round(fmean(values), 4),
        "ci95": [round(low, 4), round(high, 4)],
        "n": len(values),
    }


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(out: Path, embedder: Embedder, *, title: str | None = None) -> dict[str, Any]:
    plan = json.loads((out / "plan.json").read_text())
    # Units finish in any order on a cluster; measured in plan order, the summary is the same.
    arm_order = {arm["name"]: i for i, arm in enumerate(plan["arms"])}
    units = sorted(
        (u for u in _rows(out / "units.jsonl") if u["status"] == "completed"),
        key=lambda u: (arm_order.get(u["arm"], len(arm_order)), u["question"], u["sample"]),
    )
    voices = sorted(_rows(out / "voices.jsonl"), key=lambda v: (v["question"], v["model"]))

    assistant: dict[int, dict[str, list[str]]] = defaultdict(dict)
    floors: dict[tuple[str, int], float] = {}
    for row in voices:
        answers = [a for a in row["answers"] if a.strip()]
        if row["kind"] == "assistant":
            assistant[row["question"]][row["model"]] = answers
        elif row["kind"] == "noise" and len(answers) >= 2:
            floors[(row["model"], row["question"])] = mean_pairwise_distance(
                embedder.encode(answers)
            )

    per_arm: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    curves: dict[str, dict[tuple[str, int], list[float]]] = defaultdict(lambda: defaultdict(list))
    blind_texts: list[str] = []
    blind_labels: list[tuple[str, str]] = []
    for unit in units:
        # Units of experiments run before the ledger held events name only their folder.
        run = (
            load_run(unit["run_id"], out / "runs")
            if "run_id" in unit
            else load_run(unit["run_dir"])
        )
        report = analyse_run(run, embedder, assistant_voice=assistant.get(unit["question"]))
        values = per_arm[unit["arm"]]
        for name, value in _unit_metrics(report, run, floors, unit["question"]).items():
            values[name].append(value)
        for stage in report.stages:
            if stage.mean_pairwise_distance is not None:
                curves[unit["arm"]][(stage.stage, stage.round)].append(stage.mean_pairwise_distance)
        blind = report.stages[0].stage if report.stages else None
        for turn in run.turns:
            if turn.stage == blind and turn.ok and turn.seat != "chair" and turn.content:
                blind_texts.append(turn.content)
                blind_labels.append((turn.persona, model_family(turn.model)))

    arms = []
    for i, arm in enumerate(plan["arms"]):
        metrics = {name: _interval(per_arm[arm["name"]][name], seed=i) for name in METRICS}
        arms.append(
            {**arm, "units": sum(u["arm"] == arm["name"] for u in units), "metrics": metrics}
        )
    comparisons = []
    base = plan["arms"][0]["name"]
    for other in [a["name"] for a in plan["arms"][1:]]:
        for name in METRICS:
            a, b = per_arm[base][name], per_arm[other][name]
            if len(a) > 1 and len(b) > 1:
                comparisons.append(_compare(name, base, other, a, b))
    by_model: dict[str, list[float]] = defaultdict(list)
    for (model, _), value in floors.items():
        by_model[model].append(value)
    decomposition = None
    if len(blind_texts) > 2:
        split = decompose_variance(
            embedder.encode(blind_texts), [p for p, _ in blind_labels], [f for _, f in blind_labels]
        )
        decomposition = {k: round(getattr(split, k), 4) for k in ("persona", "family", "residual")}
    return {
        "experiment": plan["kind"],
        "title": title or f"{plan['kind']} experiment",
        "questions": len(plan["questions"]),
        "samples": plan["samples"],
        "embedder": embedder.name,
        "arms": arms,
        "metric_descriptions": METRICS,
        "comparisons": comparisons,
        "noise_floor": {m: _interval(v, seed=7) for m, v in sorted(by_model.items())},
        "decomposition": decomposition,
        "curves": {
            arm: [
                {"stage": stage, "round": rnd, **_interval(values, seed=3)}
                for (stage, rnd), values in points.items()
            ]
            for arm, points in curves.items()
        },
    }


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
    rng = np.random.default_rng(11)
    x, y = np.asarray(a), np.asarray(b)
    diffs = [rng.choice(y, y.size).mean() - rng.choice(x, x.size).mean() for _ in range(2000)]
    return {
        "metric": name, "a": a_name, "b": b_name,
        "difference": round(float(y.mean() - x.mean()), 4),
        "ci95": [round(float(np.quantile(diffs, q)), 4) for q in (0.025, 0.975)],
        "p_value": round(permutation_p_value(a, b, reps=5000, seed=5), 4),
    }  # fmt: skip


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    return path
