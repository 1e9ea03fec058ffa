"""The inference of an experiment, on plain numbers: what every reported interval and p-value is
made from, so calibration tests push simulated experiments through this same code.

The design it respects: arms share questions and sampling seeds, and every arm has a placebo
twin (one persona in every seat, seated and seeded as the arm). So
- the question is the unit of inference: a unit's values are averaged within its question,
  and intervals are t intervals on the G question means (G - 1 degrees of freedom);
- an arm's distance above its floor is paired unit by unit with its placebo twin (the same
  question and seeds), then averaged by question;
- arms are compared paired by question;
- one endpoint is primary per comparison (the distance above the placebo floor; without a
  placebo, the blind-round distance); every other p-value is secondary and Holm-adjusted
  across the whole summary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from council.meter.inference import (
    POWER,
    Comparison,
    adjust,
    cluster_mean,
    clusters_needed,
    one_sample_test,
    paired_difference,
    paired_power,
    sd_from_components,
    variance_components,
)
from council.meter.intervals import Interval

BLIND = "blind_mean_pairwise_distance"
ABOVE_FLOOR = "above_placebo_floor"
METRICS = {
    BLIND: "mean cosine distance between seats in the blind round (higher: more different voices)",
    "blind_vendi_score":
        "effective number of distinct answers in the blind round (1 to the number of seats)",
    ABOVE_FLOOR: "blind-round distance minus its placebo twin's (the same persona in every seat, "
    "seated and seeded alike), paired unit by unit",
    "convergence":
        "last panel stage's distance minus the blind round's (negative: the voices converged)",
    "drift":
        "last panel stage's position from the persona's voice (0) to the assistant voice (1)",
}  # fmt: skip
# The effect the power analysis asks about unless told otherwise: a difference in distance
# above the floor of 0.03, the size of the differences between arms seen so far.
DEFAULT_EFFECT = 0.03
TARGET_POWER = 0.8


@dataclass(frozen=True)
class UnitValues:
    """One council's measured values: arm, question, sample and metric -> value."""

    arm: str
    question: int
    sample: int
    metrics: Mapping[str, float]


@dataclass
class DesignAnalysis:
    """Everything inferred from the units: per arm (metric -> estimate), each arm's placebo
    floor and its test above it, the comparisons between arms, and the power of each primary
    endpoint."""

    arms: dict[str, dict[str, Interval]] = field(default_factory=dict)
    floors: dict[str, Interval] = field(default_factory=dict)
    tests: list[Comparison] = field(default_factory=list)
    power: list[dict[str, Any]] = field(default_factory=list)


def _values(rows: Sequence[UnitValues], arm: str, metric: str) -> tuple[list[float], list[int]]:
    found = [(r.metrics[metric], r.question) for r in rows if r.arm == arm and metric in r.metrics]
    return [v for v, _ in found], [q for _, q in found]


def with_floor(rows: Sequence[UnitValues], placebo_of: Mapping[str, str]) -> list[UnitValues]:
    """Each arm unit with its distance above its placebo twin of the same question and sample
    (same seeds, same seating): the pairing that makes the floor differ only in who sits."""
    twins = {(r.arm, r.question, r.sample): r for r in rows}
    out = []
    for row in rows:
        twin = twins.get((placebo_of.get(row.arm, ""), row.question, row.sample))
        metrics = dict(row.metrics)
        if twin is not None and BLIND in row.metrics and BLIND in twin.metrics:
            metrics[ABOVE_FLOOR] = row.metrics[BLIND] - twin.metrics[BLIND]
        out.append(UnitValues(row.arm, row.question, row.sample, metrics))
    return out


def analyse_units(
    arms: Sequence[str],
    rows: Sequence[UnitValues],
    placebo_of: Mapping[str, str],
    *,
    effect: float | None = DEFAULT_EFFECT,
    extra_tests: Sequence[Comparison] = (),
) -> DesignAnalysis:
    """Per-arm estimates, each arm against its floor, every later arm against the first,
    Holm's adjustment over every secondary p-value (``extra_tests`` included), and the power
    of each primary endpoint to detect ``effect`` (None: no power analysis)."""
    rows = with_floor(rows, placebo_of)
    primary = ABOVE_FLOOR if placebo_of else BLIND
    result = DesignAnalysis()
    for arm in arms:
        result.arms[arm] = {}
        for metric in METRICS:
            values, questions = _values(rows, arm, metric)
            if values:
                result.arms[arm][metric] = cluster_mean(values, questions)
        if arm in placebo_of:
            values, questions = _values(rows, placebo_of[arm], BLIND)
            if values:
                result.floors[arm] = cluster_mean(values, questions)
            values, questions = _values(rows, arm, ABOVE_FLOOR)
            if len(set(questions)) >= 2:
                test = one_sample_test(values, questions)
                result.tests.append(_named(test, ABOVE_FLOOR, "placebo", arm, primary=True))
    result.tests += _between_arms(arms, rows, primary)
    tests = {str(i): t for i, t in enumerate([*result.tests, *extra_tests])}
    chosen = {name for name, t in tests.items() if t.role == "primary"}
    result.tests = list(adjust(tests, primary=chosen).values())
    if effect is not None:
        result.power = [_power(rows, t, effect) for t in result.tests if t.role == "primary"]
    return result


def _between_arms(
    arms: Sequence[str], rows: Sequence[UnitValues], primary: str
) -> list[Comparison]:
    tests = []
    for other in arms[1:]:
        for metric in METRICS:
            a, qa = _values(rows, arms[0], metric)
            b, qb = _values(rows, other, metric)
            if len(set(qa) & set(qb)) >= 2:
                test = paired_difference(a, qa, b, qb)
                tests.append(_named(test, metric, arms[0], other, primary=metric == primary))
    return tests


def _named(test: Comparison, metric: str, a: str, b: str, *, primary: bool) -> Comparison:
    return test.labelled(metric=metric, a=a, b=b, role="primary" if primary else "secondary")


def question_differences(rows: Sequence[UnitValues], test: Comparison) -> dict[int, list[float]]:
    """The unit-level values behind a primary test, by question: the arm's distance above its
    floor, or the difference between two arms' units of the same question and sample."""
    by_question: dict[int, list[float]] = defaultdict(list)
    if test.a == "placebo":
        for row in rows:
            if row.arm == test.b and test.metric in row.metrics:
                by_question[row.question].append(row.metrics[test.metric])
        return by_question
    first = {(r.question, r.sample): r.metrics.get(test.metric) for r in rows if r.arm == test.a}
    for row in rows:
        base = first.get((row.question, row.sample))
        if row.arm == test.b and base is not None and test.metric in row.metrics:
            by_question[row.question].append(row.metrics[test.metric] - base)
    return by_question


def _power(rows: Sequence[UnitValues], test: Comparison, effect: float) -> dict[str, Any]:
    """The power this design had to detect ``effect`` on a primary endpoint, and the questions
    it needs for 80%, from the variance components the data show."""
    by_question = question_differences(rows, test)
    values = [v for vs in by_question.values() for v in vs]
    questions = [q for q, vs in by_question.items() for _ in vs]
    G = len(by_question)
    samples = max(1.0, len(values) / max(G, 1))
    if G < 2 or len(values) <= G:
        why = "too few questions, or no repeat within one, for a power analysis"
        return {
            "metric": test.metric,
            "a": test.a,
            "b": test.b,
            "effect": effect,
            "questions": G,
            "note": why,
        }
    components = variance_components(values, questions)
    between, within = components.between, components.within
    sd = sd_from_components(between, within, round(samples))
    row: dict[str, Any] = {
        "metric": test.metric,
        "a": test.a,
        "b": test.b,
        "effect": effect,
        "questions": G,
        "samples_per_question": round(samples, 2),
        "between_question_variance": between,
        "within_question_variance": within,
        "sd_of_question_difference": sd,
        "target_power": TARGET_POWER,
        "method": f"{POWER}; variance components: {components.method}",
    }
    if sd > 0:
        row["power"] = round(paired_power(sd, effect, G), 3)
        row["questions_for_80"] = clusters_needed(sd, effect, TARGET_POWER)
    return row
