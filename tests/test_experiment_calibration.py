"""The experiment summary's inference, tested like code: simulated experiments whose truth is
known (no persona effect, but answers clustered by question and run, as real ones are) are
pushed through ``design.analyse_units``, the code every summary uses. Under the null each
reported test rejects at its nominal rate; with known effects the intervals cover them.

Pure numpy, no model, a few seconds."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from council.app.experiments.design import (
    ABOVE_FLOOR,
    METRICS,
    UnitValues,
    analyse_units,
)

ARMS = ["single", "cross"]
PLACEBO = {arm: f"{arm}~placebo" for arm in ARMS}
QUESTIONS, SAMPLES, EXPERIMENTS = 12, 3, 400
# Realistic scales, from the shipped experiment: a question moves every arm alike (SD 0.05),
# a unit's seeds move an arm and its placebo twin alike (SD 0.03), each council has its own
# noise (SD 0.04).
QUESTION_SD, UNIT_SD, NOISE_SD = 0.05, 0.03, 0.04


def simulate(rng: np.random.Generator, effects: dict[str, float]) -> list[UnitValues]:
    """One experiment: every metric of every unit. ``effects`` maps an arm (or placebo arm) to
    the amount added to its blind-round distance."""
    rows = []
    for q in range(QUESTIONS):
        question = rng.normal(0, QUESTION_SD, size=len(METRICS))
        for s in range(SAMPLES):
            seeds = rng.normal(0, UNIT_SD, size=len(METRICS))
            for arm in [*ARMS, *PLACEBO.values()]:
                values = 0.6 + question + seeds + rng.normal(0, NOISE_SD, size=len(METRICS))
                metrics = dict(zip(METRICS, values.tolist(), strict=True))
                metrics.pop(ABOVE_FLOOR)  # made by the analysis, from the placebo twin
                metrics["blind_mean_pairwise_distance"] += effects.get(arm, 0.0)
                rows.append(UnitValues(arm, q, s, metrics))
    return rows


def _run(effects: dict[str, float], seed: int) -> list[list[dict]]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(EXPERIMENTS):
        analysis = analyse_units(ARMS, simulate(rng, effects), PLACEBO, effect=None)
        found.append([t.to_json() for t in analysis.tests])
    return found


@pytest.fixture(scope="module")
def null_runs() -> list[list[dict]]:  # type: ignore[type-arg]
    return _run({}, seed=20261207)


def test_every_reported_test_rejects_at_its_nominal_rate_under_the_null(null_runs) -> None:
    rejections: dict[tuple[str, str, str], int] = defaultdict(int)
    for tests in null_runs:
        for t in tests:
            rejections[(t["metric"], t["a"], t["b"])] += t["p_value"] <= 0.05
    assert len(rejections) == 2 + len(METRICS)  # each arm above its floor; 5 metrics paired
    for key, count in rejections.items():
        assert 0.02 <= count / EXPERIMENTS <= 0.08, (key, count / EXPERIMENTS)


def test_one_primary_per_comparison_and_holm_holds_the_familywise_rate(null_runs) -> None:
    familywise = 0
    for tests in null_runs:
        primaries = [t for t in tests if t["role"] == "primary"]
        assert {(t["a"], t["b"]) for t in primaries} == {
            ("placebo", "single"),
            ("placebo", "cross"),
            ("single", "cross"),
        }
        assert all(t["metric"] == ABOVE_FLOOR for t in primaries)
        secondaries = [t for t in tests if t["role"] == "secondary"]
        assert all(t["adjusted_p"] >= t["p_value"] for t in secondaries)
        familywise += any(t["adjusted_p"] <= 0.05 for t in secondaries)
    assert familywise / EXPERIMENTS <= 0.07


def test_intervals_cover_known_effects() -> None:
    effects = {"single": 0.02, "cross": 0.05}  # above their floors by 0.02 and 0.05
    truth = {
        ("placebo", "single"): 0.02,
        ("placebo", "cross"): 0.05,
        ("single", "cross"): 0.03,
    }
    covered: dict[tuple[str, str], int] = defaultdict(int)
    for tests in _run(effects, seed=7):
        for t in tests:
            if t["metric"] == ABOVE_FLOOR:
                low, high = t["ci95"]
                covered[(t["a"], t["b"])] += low <= truth[(t["a"], t["b"])] <= high
    assert set(covered) == set(truth)
    for key, count in covered.items():
        assert 0.92 <= count / EXPERIMENTS <= 0.98, (key, count / EXPERIMENTS)
