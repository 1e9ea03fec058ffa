"""Effective votes (issue 31): the estimators against seats of known correlation, the
``independence_weighted`` rule, and the record that carries them.

The calibration is simulation-based: ballots are drawn from a generative model whose pairwise
correlation is known (each seat copies a shared draw with probability c, else draws on its
own: corr = c * c between two such seats, 1 between two pure copies), the real estimator
runs on them, and the share of simulations whose interval holds the true Kish n_eff is
counted. No model is called here; tests/test_effective_votes_e2e.py runs the engine."""

from __future__ import annotations

import numpy as np
import pytest

from council.engine.independence import VoteEvidence
from council.engine.votes import tally_votes
from council.meter.independence import (
    MIN_PANEL_RUNS,
    SAME_FAMILY,
    across_runs,
    estimator,
    independence_weights,
    kish_effective_votes,
    mean_off_diagonal,
    model_prior,
    stance_kappas,
    within_run,
)
from council.protocols.spec import VoteStage
from council.records.describe import describe_tally
from council.records.run import Ballot, EffectiveVotes

SEATS = [f"s{i}" for i in range(5)]


def draw_runs(
    rng: np.random.Generator, copy: list[float], runs: int, p: float = 0.5
) -> list[dict[str, str]]:
    """``runs`` yes/no votes of len(copy) seats: seat i takes the run's shared draw with
    probability copy[i], else an independent one (both Bernoulli p)."""
    out = []
    for _ in range(runs):
        shared = rng.random() < p
        votes = [shared if rng.random() < c else rng.random() < p for c in copy]
        out.append({f"s{i}": "yes" if v else "no" for i, v in enumerate(votes)})
    return out


def true_n_eff(copy: list[float]) -> float:
    """Kish's n_eff of the generative model: corr(i, j) = c_i * c_j off the diagonal."""
    c = np.array(copy)
    corr = np.outer(c, c)
    np.fill_diagonal(corr, 1.0)
    return kish_effective_votes(len(copy), mean_off_diagonal(corr))


@pytest.mark.parametrize(
    "copy",
    [
        [0.0] * 5,  # independent seats: n_eff = 5
        [0.7] * 5,  # equicorrelated at 0.49: n_eff about 1.7
        [1.0, 1.0, 1.0, 0.0, 0.0],  # three copies and two independent seats: about 2.3
    ],
    ids=["independent", "equicorrelated", "copies"],
)
def test_the_panel_estimate_covers_the_true_n_eff_near_its_nominal_rate(
    copy: list[float],
) -> None:
    rng = np.random.default_rng(31)
    truth = true_n_eff(copy)
    simulations, covered, points = 80, 0, []
    for k in range(simulations):
        found = across_runs(draw_runs(rng, copy, 40), SEATS, seed=k)
        assert found is not None and found.basis == "40 earlier runs of this panel"
        covered += found.low <= truth <= found.high
        points.append(found.n_eff)
    # Nominal 95%: 80 simulations put 0.85 about three standard errors below it.
    assert covered / simulations >= 0.85, (covered, truth)
    assert abs(float(np.mean(points)) - truth) < 0.25 * truth


def test_copies_give_their_weight_up_and_equal_seats_keep_theirs() -> None:
    copies = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1.0]])
    weights = independence_weights(copies)
    assert weights.sum() == pytest.approx(3)
    assert weights[0] == pytest.approx(weights[1]) and weights[0] + weights[1] < 2
    assert weights[2] > weights[0]
    equal = np.full((4, 4), 0.4)
    np.fill_diagonal(equal, 1.0)
    assert independence_weights(equal) == pytest.approx(np.ones(4))


def evidence(texts: dict[str, dict[str, str]], models: dict[str, str]) -> VoteEvidence:
    return VoteEvidence("run-1", "vote", dict.fromkeys(models, "yes"), texts, models)


WORDS = [
    "amber",
    "basalt",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "heron",
    "iris",
    "juniper",
    "kelp",
    "lichen",
]


def words(seed: int, n: int = 12) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n)) + f" w{seed}a w{seed}b w{seed}c"


def test_within_a_run_copies_count_as_one_and_distinct_models_as_many() -> None:
    makers = ["openai/gpt-4o", "anthropic/claude-sonnet-4", "gemini/gemini-2.5-pro"]
    makers += ["mistral/mistral-large", "deepseek/deepseek-chat"]  # five families
    models = dict(zip(SEATS, makers, strict=True))
    same = {stage: words(i) for i, stage in enumerate(["opening", "vote"])}
    texts = {
        stage: {
            s: same[stage] if s in ("s0", "s1", "s2") else f"{s} {stage} " + words(100 + k)
            for k, s in enumerate(SEATS)
        }
        for stage in ("opening", "vote")
    }
    found = within_run(evidence(texts, models))
    assert found.basis == "this run: 5 seats' replies in 2 stages, placebo-corrected"
    assert found.low <= found.n_eff <= found.high
    # Three copies and two seats of their own: about 2.3 (Kish), not 5 and not 1.
    assert 1.8 < found.n_eff < 3.0
    assert found.weights["s3"] > found.weights["s0"]
    assert found.note is not None  # n_eff well below n


def test_one_stage_of_replies_leaves_the_model_prior_alone() -> None:
    models = dict.fromkeys(SEATS[:3], "openai/gpt-4o")
    found = within_run(evidence({"vote": {s: words(1) for s in models}}, models))
    assert "models only" in found.basis and found.low == found.high == found.n_eff
    assert found.mean_correlation == 0.5  # one model: the SAME_MODEL prior
    # A family is its maker, as seating and the audit read it: two of OpenAI's models share
    # one, another maker's model does not.
    prior = model_prior(["openai/gpt-4o-mini", "azure/gpt-4o", "ollama/llama3.1:8b"])
    assert prior[0, 1] == SAME_FAMILY and prior[0, 2] == prior[1, 2] == 0.0


def test_the_estimator_prefers_the_panel_once_it_has_enough_runs() -> None:
    rng = np.random.default_rng(5)
    models = {s: f"openai/m{s}" for s in SEATS}
    texts = {"a": {s: words(i) for i, s in enumerate(SEATS)}, "b": {s: words(9) for s in SEATS}}
    few = estimator(draw_runs(rng, [0.5] * 5, MIN_PANEL_RUNS - 1))(evidence(texts, models))
    enough = estimator(draw_runs(rng, [0.5] * 5, MIN_PANEL_RUNS))(evidence(texts, models))
    assert few is not None and few.basis.startswith("this run")
    assert enough is not None and enough.basis == f"{MIN_PANEL_RUNS} earlier runs of this panel"


def effective(weights: dict[str, float]) -> EffectiveVotes:
    return EffectiveVotes(
        n_eff=2.3, low=1.9, high=2.8, basis="test", n=5, mean_correlation=0.3,
        method="test", weights=weights, note="correlated",
    )  # fmt: skip


def test_independence_weighted_counts_copies_as_about_one() -> None:
    ballots = [Ballot(seat=s, valid=True, stance="yes" if s < "s3" else "no") for s in SEATS]
    copies = np.eye(5)
    copies[:3, :3] = 1.0
    weights = dict(zip(SEATS, independence_weights(copies).tolist(), strict=True))
    common = {"id": "vote", "prompt": "Vote.", "options": ["yes", "no"], "threshold": 0.6}
    plain = tally_votes(VoteStage(kind="vote", rule="supermajority", **common), ballots)
    stage = VoteStage(kind="vote", rule="independence_weighted", **common)
    weighed = tally_votes(stage, ballots, effective=effective(weights))
    assert plain.winner == "yes" and plain.consensus  # three of five reach 60%
    # Three copies weigh about one mind's vote: the two seats of their own outweigh them.
    assert weighed.effective_votes is not None and weighed.winner == "no"
    assert weighed.weights["s3"] == pytest.approx(weights["s3"], abs=1e-3)
    text = describe_tally(weighed, {})
    assert "Independence weights" in text and "about 2.3 independent votes" in text
    assert "The consensus rests on correlated seats" in text


def test_a_consensus_of_correlated_seats_says_so_beside_the_tally() -> None:
    ballots = [Ballot(seat=s, valid=True, stance="yes") for s in SEATS]
    stage = VoteStage(kind="vote", id="vote", prompt="Vote.", options=["yes", "no"])
    tally = tally_votes(stage, ballots, effective=effective(dict.fromkeys(SEATS, 1.0)))
    assert tally.consensus
    assert "The consensus rests on correlated seats" in describe_tally(tally, {})
    assert tally.to_json()["effective_votes"]["n_eff"] == 2.3


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """The textbook definition, for reference: (P_o - P_e) / (1 - P_e)."""
    observed = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    chance = sum(a.count(c) * b.count(c) for c in set(a) | set(b)) / len(a) ** 2
    return (observed - chance) / (1 - chance)


def test_the_vectorised_kappa_is_cohens_on_free_stances_and_on_bootstrap_draws() -> None:
    rng = np.random.default_rng(0)
    runs = []
    for r in range(30):  # a shared stance, or one of this question's own (seen in one run)
        shared = str(rng.choice(["yes", "no", "maybe"]))
        runs.append(
            {s: shared if rng.random() < 0.6 else f"q{r}-{rng.integers(3)}" for s in SEATS[:4]}
        )
    counts = rng.multinomial(30, np.ones(30) / 30, 2).astype(float)
    kappas = stance_kappas(runs, SEATS[:4], np.vstack([np.ones(30), counts]))
    for row, weights in enumerate([np.ones(30), *counts]):
        picked = np.repeat(np.arange(30), weights.astype(int))
        a, b = [runs[i]["s0"] for i in picked], [runs[i]["s2"] for i in picked]
        assert kappas[row, 0, 2] == pytest.approx(cohen_kappa(a, b))
