"""End to end under the null: a provider whose every reply is two sentences drawn from one pool,
whatever the persona. The experiment must find nothing: identifiability at chance, no
distance above the placebo floor. (The code before the placebo arm and whole-run hold-out
reported identifiability 0.375 against chance 0.25 on such a server.)"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from council.app.experiments.runner import Arm, ExperimentPlan, run_plan
from council.app.experiments.summary import summarise
from council.meter import FakeEmbedder
from council.testing import FakeProvider

POOL = [
    "Cities should weigh costs against benefits before acting.",
    "The evidence on this question is mixed and depends on context.",
    "A gradual trial would show whether the policy works.",
    "Those most affected deserve a voice in the decision.",
    "Unintended consequences are likely and should be watched.",
    "The status quo has costs that are easy to overlook.",
    "Enforcement would be the hardest part of any such rule.",
    "Public opinion may shift once people see the results.",
    "Local conditions matter more than general principles here.",
    "The long-term effects are uncertain and hard to measure.",
    "Funding is the constraint that decides what is possible.",
    "A clear goal should come before any choice of means.",
]
PERSONAS = ["popper", "kuhn", "hayek", "keynes"]
QUESTIONS = [f"Should the town adopt policy number {i}?" for i in range(10)]


def persona_blind(body: dict) -> str:  # type: ignore[type-arg]
    """Two sentences chosen by the request's seed and its user prompt: the system prompt, where
    the persona lives, plays no part."""
    key = json.dumps([body.get("seed"), body["messages"][-1]["content"], body["model"]])
    digest = hashlib.sha256(key.encode()).digest()
    return f"{POOL[digest[0] % len(POOL)]} {POOL[digest[1] % len(POOL)]}"


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("null")
    with FakeProvider(persona_blind) as fake:
        plan = ExperimentPlan(
            arms=[Arm("single", ["openai/null-model"], PERSONAS)],
            questions=QUESTIONS,
            samples=2,
            out=Path(out),
            protocol="council",
            baseline_samples=2,
            endpoints={"openai/null-model": fake.api_base},
        )
        assert run_plan(plan)["failed"] == 0
    return summarise(Path(out), FakeEmbedder()).to_json()


def test_identifiability_sits_at_chance(summary: dict) -> None:  # type: ignore[type-arg]
    (arm,) = summary["arms"]
    result = arm["identifiability"][0]
    assert result["of"] == "persona" and result["uniform_chance"] == 0.25
    low, high = result["ci95"]
    assert low <= 0.25 <= high, result
    assert abs(result["balanced_accuracy"] - 0.25) < 0.1 and result["p_value"] > 0.05
    (placebo,) = summary["placebo_arms"]
    seat_place = placebo["identifiability"][0]
    assert seat_place["of"] == "seat place" and seat_place["p_value"] > 0.05


def test_no_diversity_above_the_placebo_floor(summary: dict) -> None:  # type: ignore[type-arg]
    above = next(t for t in summary["tests"] if t["a"] == "placebo")
    assert above["role"] == "primary" and above["metric"] == "above_placebo_floor"
    assert above["difference"] == pytest.approx(0.0, abs=0.02)
    assert above["p_value"] is None or above["p_value"] > 0.05
    assert summary["underpowered"] is True  # 10 questions cannot show an effect of 0.03
