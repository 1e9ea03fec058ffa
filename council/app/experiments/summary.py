"""Measuring a finished experiment. Each unit (one council run) is measured by
``analyse_run``; the inference over units is ``design.py``'s (the question is the unit of
inference, arms paired by question, each arm against its placebo twin, one primary endpoint
per comparison and Holm's adjustment for the rest); identifiability holds out whole runs; the
variance split is a sequential decomposition with a label-noise baseline."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from council.app.experiments.design import (
    DEFAULT_EFFECT,
    METRICS,
    TARGET_POWER,
    UnitValues,
    analyse_units,
)
from council.app.experiments.runner import PLACEBO_SUFFIX
from council.meter.analysis import RunDiversity, analyse_run
from council.meter.embedders import Embedder
from council.meter.experiment_report import (
    ArmSummary,
    CurvePoint,
    EndpointTest,
    ExperimentSummary,
    FailedUnit,
    PlaceboArm,
    PowerEstimate,
)
from council.meter.identifiability import Identifiability, turn_identifiability
from council.meter.inference import (
    HOLM,
    Comparison,
    DesignShares,
    cluster_mean,
    design_shares,
)
from council.meter.intervals import Interval
from council.records.run import RunResult, Turn
from council.seats.routing import model_family
from council.store.loader import load_run

METHODS = {
    "interval": "95% intervals are t intervals on the G question means (G-1 df, scipy.stats.t)",
    "test": "p-values are t tests on question-level values, paired by question where arms "
    "share them (scipy.stats.ttest_1samp)",
    "multiplicity": f"one primary endpoint per comparison, read at its own p; the others: {HOLM}",
    "floor": "the placebo floor: the arm's twin with one persona (in turn) in every seat, seated "
    "and seeded as the arm, paired unit by unit",
}


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(
    out: Path, embedder: Embedder, *, title: str | None = None, effect: float = DEFAULT_EFFECT
) -> ExperimentSummary:
    plan = json.loads((out / "plan.json").read_text())
    arms = [arm["name"] for arm in plan["arms"]]
    placebo_of = {a: a + PLACEBO_SUFFIX for a in arms} if plan.get("placebo") else {}
    # Units finish in any order on a cluster; measured in plan order, the summary is the same.
    order = {name: i for i, name in enumerate([*arms, *placebo_of.values()])}
    latest = latest_units(out)
    units = sorted(
        (u for u in latest if u.get("status") == "completed"),
        key=lambda u: (order.get(u["arm"], len(order)), u["question"], u["sample"]),
    )
    measured = _Measured(_assistant_voices(out))
    for unit in units:
        measured.add(out, unit, embedder)
    identifiability = {
        arm: measured.identifiability(arm, embedder, seed=i)
        for i, arm in enumerate([*arms, *placebo_of.values()])
    }
    shares = measured.decomposition(embedder, set(arms))
    extra = [*_share_tests(shares), *_identifiability_tests(identifiability)]
    analysis = analyse_units(arms, measured.rows, placebo_of, effect=effect, extra_tests=extra)
    power = [PowerEstimate.model_validate(row) for row in analysis.power]
    return ExperimentSummary(
        experiment=plan["kind"],
        title=title or f"{plan['kind']} experiment",
        questions=len(plan["questions"]),
        samples=plan["samples"],
        embedder=embedder.name,
        arms=[
            _arm(arm, units, latest, analysis.arms.get(arm["name"], {}), identifiability)
            for arm in plan["arms"]
        ],
        placebo_arms=[
            PlaceboArm(
                name=p,
                of=a,
                units=sum(u["arm"] == p for u in units),
                identifiability=identifiability.get(p, []),
            )
            for a, p in placebo_of.items()
        ],
        metric_descriptions=METRICS,
        methods=METHODS,
        failed_units=[_failure(u) for u in latest if u.get("status") != "completed"],
        short_replies_excluded=measured.short,
        tests=[_test(t) for t in analysis.tests],
        comparisons=[_test(t) for t in analysis.tests if t.a in arms],  # arm against arm
        placebo_floor=analysis.floors,
        power=power,
        underpowered=any((p.power or 0.0) < TARGET_POWER for p in power),
        decomposition=_shares(shares),
        decomposition_detail=None if shares is None else shares.to_json(),
        curves=measured.curves(arms),
    )


def _test(comparison: Comparison) -> EndpointTest:
    return EndpointTest.model_validate(comparison.to_json())


def _arm(
    arm: dict[str, Any],
    units: list[dict[str, Any]],
    latest: list[dict[str, Any]],
    metrics: dict[str, Interval],
    identifiability: dict[str, list[Identifiability]],
) -> ArmSummary:
    name = arm["name"]
    return ArmSummary.model_validate(
        {
            **arm,
            "units": sum(u["arm"] == name for u in units),
            "failed_units": sum(
                u["arm"] == name and u.get("status") != "completed" for u in latest
            ),
            "metrics": metrics,
            "identifiability": identifiability.get(name, []),
        }
    )


def _load_unit_run(out: Path, unit: dict[str, Any]) -> RunResult:
    """A unit's run from its folder under ``OUT/runs`` (found by name, so a moved or cloned
    experiment folder still reads: the ledger is not shipped with one), else the ledger."""
    if unit.get("run_dir"):
        folder = out / "runs" / Path(unit["run_dir"]).name
        if (folder / "events.jsonl").is_file():
            return load_run(folder)
    return load_run(unit["run_id"], out / "runs")


def _assistant_voices(out: Path) -> dict[int, dict[str, list[str]]]:
    """The no-persona baseline per question and model: the drift pole."""
    assistant: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for row in sorted(_rows(out / "voices.jsonl"), key=lambda v: (v["question"], v["model"])):
        if row.get("kind") == "assistant":
            assistant[row["question"]][row["model"]] = [a for a in row["answers"] if a.strip()]
    return assistant


class _Measured:
    """Every completed unit's values, its per-round curve, its panel turns (for
    identifiability) and its blind-round texts with their design labels (for the split)."""

    def __init__(self, assistant: dict[int, dict[str, list[str]]]) -> None:
        self.assistant = assistant
        self.rows: list[UnitValues] = []
        self.stage_values: dict[str, dict[tuple[str, int], tuple[list[float], list[int]]]] = (
            defaultdict(lambda: defaultdict(lambda: ([], [])))
        )
        self.blind: list[tuple[str, str, Turn, int]] = []  # (arm, family, turn, question)
        self.panel_turns: dict[str, list[tuple[Turn, str]]] = defaultdict(list)
        self.questions: dict[str, str] = {}  # run id -> its question: identifiability's blocks
        self.short = 0

    def add(self, out: Path, unit: dict[str, Any], embedder: Embedder) -> None:
        run = _load_unit_run(out, unit)
        report = analyse_run(run, embedder, assistant_voice=self.assistant.get(unit["question"]))
        self.short += report.short_turns_skipped
        q = unit["question"]
        self.questions[run.run_id] = run.question
        self.rows.append(UnitValues(unit["arm"], q, unit["sample"], _unit_metrics(report)))
        for stage in report.stages:
            if stage.mean_pairwise_distance is not None:
                values, questions = self.stage_values[unit["arm"]][(stage.stage, stage.round)]
                values.append(stage.mean_pairwise_distance)
                questions.append(q)
        measured = {(p.seat, s.stage, s.round) for s in report.stages for p in s.points}
        places = {s.seat: i for i, s in enumerate(run.seats) if s.role == "panel"}
        placebo = unit["arm"].endswith(PLACEBO_SUFFIX)
        blind = report.stages[0].stage if report.stages else None
        for turn in run.turns:
            if (turn.seat, turn.stage, turn.round) not in measured:
                continue
            # In a placebo every seat is one persona: only its place can tell them apart.
            label = f"seat {places[turn.seat] + 1}" if placebo else turn.persona
            self.panel_turns[unit["arm"]].append((turn, label))
            if turn.stage == blind:
                self.blind.append((unit["arm"], model_family(turn.model), turn, q))

    def identifiability(self, arm: str, embedder: Embedder, seed: int) -> list[Identifiability]:
        """Can the arm's panel answers, pooled over its runs, be told apart by persona (by seat
        place, in a placebo, where it must not)? Whole runs are held out."""
        pairs = self.panel_turns.get(arm) or []
        if not pairs:
            return []
        turns, labels = [t for t, _ in pairs], {id(t): label for t, label in pairs}
        vectors = embedder.encode([t.text or "" for t in turns])
        of = "seat place" if arm.endswith(PLACEBO_SUFFIX) else "persona"
        return turn_identifiability(
            turns,
            vectors,
            lambda t: labels[id(t)],
            of=of,
            embedder=embedder.name,
            seed=seed,
            questions=self.questions,
        )

    def decomposition(self, embedder: Embedder, arms: set[str]) -> DesignShares | None:
        """The blind-round answers of the arms (not their placebos), split by question, run,
        model family and persona in that order; persona's share against label noise."""
        rows = [(a, f, t, q) for a, f, t, q in self.blind if a in arms]
        if len(rows) < 3:
            return None
        vectors = embedder.encode([t.text or "" for _, _, t, _ in rows])
        factors: dict[str, list[Hashable]] = {
            "question": [q for *_, q in rows],
            "run": [t.run_id for _, _, t, _ in rows],
            "family": [f for _, f, _, _ in rows],
            "persona": [t.persona for _, _, t, _ in rows],
        }
        return design_shares(vectors, factors, permute="persona", within="run")

    def curves(self, arms: list[str]) -> dict[str, list[CurvePoint]]:
        return {
            arm: [
                CurvePoint(stage=stage, round=rnd, **dict(cluster_mean(values, questions)))
                for (stage, rnd), (values, questions) in self.stage_values[arm].items()
            ]
            for arm in arms
            if arm in self.stage_values
        }


def _shares(shares: DesignShares | None) -> dict[str, Any] | None:
    """Each term's share of the variance and the residual's, which add up to the whole."""
    if shares is None:
        return None
    out: dict[str, Any] = {t.name: t.share for t in shares.terms}
    out["residual"] = shares.residual
    if shares.note:
        out["note"] = shares.note
    return out


def _share_tests(shares: DesignShares | None) -> list[Comparison]:
    """Persona's share of the variance against its share under label noise: a secondary
    test, adjusted with the others."""
    if shares is None:
        return []
    term = next((t for t in shares.terms if t.p_value is not None), None)
    if term is None or term.share is None or term.null_mean is None:
        return []
    estimate = Interval(value=term.share - term.null_mean, n=shares.n, method=shares.method)
    return [
        Comparison(estimate, term.p_value, "permutation of persona labels within runs").labelled(
            metric=f"{term.name} share of variance", a="label noise", b=term.name
        )
    ]


def _identifiability_tests(found: dict[str, list[Identifiability]]) -> list[Comparison]:
    """Each arm's first identifiability result (its embeddings, all its answers) against its
    chance level: a secondary test, adjusted with the others."""
    tests = []
    for arm, results in found.items():
        first = results[0] if results else None
        if first is None or first.p_value is None or first.balanced_accuracy is None:
            continue
        chance = first.null_mean or first.uniform_chance or 0.0
        low, high = first.ci95 or (None, None)
        estimate = Interval(
            value=first.balanced_accuracy - chance,
            low=None if low is None else low - chance,
            high=None if high is None else high - chance,
            n=first.samples,
            method=first.interval_method,
        )
        comparison = Comparison(estimate, first.p_value, first.method)
        tests.append(
            comparison.labelled(
                metric=f"identifiability of {first.of} (balanced accuracy)",
                a="chance",
                b=arm,
            )
        )
    return tests


def _unit_metrics(report: RunDiversity) -> dict[str, float]:
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
    drift = [
        d.position
        for d in report.drift
        if (d.stage, d.round) == (last.stage, last.round) and d.position is not None
    ]
    if drift:
        values["drift"] = sum(drift) / len(drift)
    return values


def _failure(unit: dict[str, Any]) -> FailedUnit:
    return FailedUnit(**{key: unit.get(key) for key in ("unit", "arm", "status", "error")})


def latest_units(out: Path) -> list[dict[str, Any]]:
    """Each unit's last journal row: a unit that failed and was retried counts once."""
    rows: dict[str, dict[str, Any]] = {}
    for row in _rows(out / "units.jsonl"):
        rows[row["unit"]] = row
    return list(rows.values())


def write_summary(out: Path, summary: ExperimentSummary) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(summary.to_json(), indent=2))
    return path
