"""Identifiability on data whose answer is known: perfectly separable classes are told apart
(accuracy 1, the smallest p-value the permutations allow), random labels on random vectors are
not; the vectorised procedure matches its definition computed one held-out unit at a time; on
simulated experiments (question, run and seat-in-run effects) with no persona effect it
averages 1/k and rejects about 5% of the time where the procedure it replaced did not, finds a
real effect, and its run-clustered interval covers; then in a run's report (embeddings and
activations), an experiment's summary per arm, and the pages, tables and text that show them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_reports import check_page

from council import Council
from council.app.experiments.runner import Arm, ExperimentPlan, run_plan
from council.app.experiments.summary import summarise
from council.meter import FakeEmbedder
from council.meter.analysis import analyse_run
from council.meter.identifiability import (
    _balanced,
    _design,
    _predictions,
    _shuffles,
    identifiability,
    turn_identifiability,
)
from council.records.record import utc_now
from council.records.run import RunResult, Turn, TurnActivations
from council.reports.objects import ExperimentReport, RunReport
from council.seats import ModelRequest
from council.testing import FunctionModel
from council.testing.fake_provider import Reply

PERMUTATIONS = 1000


def clusters(k: int, per: int, d: int = 32, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    """``k`` tight clusters of ``per`` points each, around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    return np.repeat(centres, per, axis=0) + spread * rng.normal(size=(k * per, d))


def labels_for(k: int, per: int) -> list[str]:
    return [f"seat{i}" for i in range(k) for _ in range(per)]


def reference(
    vectors: np.ndarray, labels: list[str], units: list[int], keys: list[object]
) -> list[str]:
    """The definition, one held-out unit at a time: every answer centred on the mean of the
    training answers of its key (else of all training answers) and normalised; each held-out
    answer given to the class whose training answers' mean is nearest in cosine (the first on
    a tie)."""
    classes = list(dict.fromkeys(labels))
    predicted = [""] * len(labels)
    for unit in set(units):
        train = [i for i, u in enumerate(units) if u != unit]

        def prepared(i: int, train: list[int] = train) -> np.ndarray:
            same = [j for j in train if keys[j] == keys[i]] or train
            v = vectors[i] - vectors[same].mean(axis=0)
            return v / np.linalg.norm(v)

        centroids = [
            np.mean([prepared(j) for j in train if labels[j] == name], axis=0) for name in classes
        ]
        for i in (i for i, u in enumerate(units) if u == unit):
            scores = [prepared(i) @ c / np.linalg.norm(c) for c in centroids]
            predicted[i] = classes[int(np.argmax(scores))]
    return predicted


def scores(labels: list[str], predicted: list[str]) -> tuple[float, float]:
    """Accuracy and balanced accuracy (mean recall over classes)."""
    right = [a == b for a, b in zip(labels, predicted, strict=True)]
    recalls = [
        np.mean([r for r, label in zip(right, labels, strict=True) if label == name])
        for name in dict.fromkeys(labels)
    ]
    return round(float(np.mean(right)), 4), round(float(np.mean(recalls)), 4)


def test_perfectly_separable_classes_are_told_apart() -> None:
    k, per = 4, 8
    result = identifiability(clusters(k, per), labels_for(k, per), permutations=PERMUTATIONS)
    assert result.accuracy == 1.0 and result.balanced_accuracy == 1.0 and result.correct == 32
    assert result.confusion == [[per if i == j else 0 for j in range(k)] for i in range(k)]
    # No shuffle of 32 answers into four groups of eight scores 1 by chance (about 24 of 1e17
    # labellings do): the p-value is the smallest the permutation count allows.
    assert result.p_value == round(1 / (PERMUTATIONS + 1), 4)
    assert result.chance == 0.25 and result.uniform_chance == 0.25
    assert result.null_mean is not None and abs(result.null_mean - 0.25) < 0.05
    # Every answer right: the jackknife has no spread, so a Wilson interval on 32 trials.
    assert result.ci95 is not None and result.ci95[0] > 0.85 and result.ci95[1] == 1.0
    assert "Wilson" in result.interval_method
    assert result.classes == ["seat0", "seat1", "seat2", "seat3"] and result.excluded == []
    assert result.held_out == "answer" and result.folds == 32 and result.note is None
    assert result.method.startswith("leave-one-answer-out")


def test_random_labels_on_random_vectors_score_near_chance() -> None:
    accuracies, p_values = [], []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        labels = list(rng.choice(["a", "b", "c", "d"], size=48))
        result = identifiability(rng.normal(size=(48, 24)), labels, permutations=200, seed=seed)
        assert result.balanced_accuracy is not None and result.p_value is not None
        accuracies.append(result.balanced_accuracy)
        p_values.append(result.p_value)
    # Chance is 1/4 here; leave-one-out sits a little below it on pure noise.
    assert abs(float(np.mean(accuracies)) - 0.25) < 0.04
    assert 0.35 < float(np.mean(p_values)) < 0.65  # p is uniform under the null
    assert sum(p < 0.05 for p in p_values) <= 6  # about 2 of 40 expected


def test_the_vectorised_procedure_matches_the_definition() -> None:
    """Answers held out singly, runs held out whole (blocks shared across runs), and one run's
    blocks held out in turn: each as the definition computes it one unit at a time."""
    rng = np.random.default_rng(7)
    runs, stages, names = 5, 2, ["x", "y", "z"]
    rows = [(r, s, c) for r in range(runs) for s in range(stages) for c in range(3)]
    rows = [rows[i] for i in rng.permutation(len(rows))]  # no unit's answers in a row
    labels = [names[c] for *_, c in rows]
    vectors = rng.normal(size=(len(rows), 12))
    vectors[:, 0] += [0.6 * c for *_, c in rows]  # some signal
    vectors[:, 1] += [2.0 * s for _, s, _ in rows]  # what a stage makes everyone say
    groups = [r for r, _, _ in rows]
    blocks = [(r % 2, s) for r, s, _ in rows]  # two questions, runs alternating
    stage_of, every = [s for _, s, _ in rows], list(range(len(rows)))
    first = [i for i, (r, _, _) in enumerate(rows) if r == 0]  # run 0: two blocks of three
    cases = [
        ("answer", every, {}, every, [0] * len(rows)),
        ("run", every, {"groups": groups, "blocks": blocks}, groups, blocks),
        (
            "stage",
            first,
            {"groups": [0] * 6, "blocks": [stage_of[i] for i in first]},
            [stage_of[i] for i in first],
            [stage_of[i] for i in first],
        ),
    ]
    for held_out, subset, given, units, keys in cases:
        named = [labels[i] for i in subset]
        result = identifiability(vectors[subset], named, permutations=0, **given)
        expected = reference(vectors[subset], named, units, keys)
        assert result.held_out == held_out
        assert (result.accuracy, result.balanced_accuracy) == scores(named, expected)
        assert result.p_value is None and result.permutations == 0
    wide = np.hstack([vectors, np.zeros((len(rows), 500))])  # wider than it is long: same answer
    run = identifiability(vectors, labels, groups=groups, blocks=blocks, permutations=0)
    again = identifiability(wide, labels, groups=groups, blocks=blocks, permutations=0)
    assert again.accuracy == run.accuracy and again.confusion == run.confusion


def test_each_shuffle_renames_within_runs_and_scores_as_the_relabelled_data() -> None:
    """The permutation test scores relabellings from per-(run, class) sums; each must score
    as the whole procedure does on the relabelled answers, and rename the classes of a run
    one way over all its stages (a seat keeps one label)."""
    vectors, labels, design = experiment(3, 4, 2, questions=3, runs=2)
    y = np.array([int(name[1:]) for name in labels])
    blocks = np.unique([str(b) for b in design["blocks"]], return_inverse=True)[1]
    d = _design(vectors, y, np.array(design["groups"]), blocks, 4)  # its answers reordered
    shuffled = _shuffles(d, "run", 5, seed=1)
    scored = _balanced(shuffled[:, d.pair], _predictions(d, shuffled), 4)
    for row, score in zip(shuffled, scored, strict=True):
        renamed = row[d.pair]
        for run in range(d.folds):
            mine = d.fold == run
            mapping = set(zip(d.y[mine].tolist(), renamed[mine].tolist(), strict=True))
            assert len(mapping) == 4 and {b for _, b in mapping} == set(range(4))
        again = identifiability(
            d.X,
            [f"p{c}" for c in renamed],
            groups=d.fold.tolist(),
            blocks=d.key.tolist(),
            permutations=0,
        )
        assert again.balanced_accuracy == round(float(score), 4)


def test_the_permutation_test_is_seeded() -> None:
    rng = np.random.default_rng(3)
    vectors, labels = rng.normal(size=(20, 8)), labels_for(4, 5)
    first = identifiability(vectors, labels, seed=5, permutations=300)
    assert first == identifiability(vectors, labels, seed=5, permutations=300)
    assert first.permutations == 300 and first.p_value is not None
    assert 1 / 301 <= first.p_value <= 1


def test_classes_in_under_two_units_are_left_out_and_said_so() -> None:
    vectors = clusters(3, 4)
    labels = labels_for(3, 4)
    extra = np.vstack([vectors, np.ones((2, vectors.shape[1]))])
    result = identifiability(extra, [*labels, "lone", "other"], permutations=100)
    assert result.excluded == ["lone", "other"] and result.counts["lone"] == 1
    assert result.samples == 12 and result.classes == ["seat0", "seat1", "seat2"]
    assert result.accuracy == 1.0
    assert result.note is not None and "left out (in under two held-out answers" in result.note
    assert "lone, other" in result.note

    none = identifiability(vectors[:3], ["a", "b", "c"])
    assert none.accuracy is None and none.p_value is None and none.samples == 0
    assert "needs two classes each in two held-out answers; has 0" in (none.note or "")
    one = identifiability(vectors[:3], ["a", "a", "b"])
    assert one.accuracy is None and "has 1" in (one.note or "")
    # One run, one stage: nothing to hold out against, said so rather than raised.
    lone = identifiability(vectors, labels, groups=["r"] * 12, blocks=["opening"] * 12)
    assert lone.held_out == "stage" and lone.accuracy is None
    assert "needs two classes each in two held-out blocks; has 0" in (lone.note or "")
    # A class found in one run only is never both trained on and held out.
    runs = [i % 4 for i in range(12)]
    single = identifiability(extra, [*labels, "lone", "lone"], groups=[*runs, 0, 0])
    assert single.held_out == "run" and single.excluded == ["lone"]
    assert "left out (in under two held-out runs" in (single.note or "")


def test_chance_is_the_majority_share_and_small_samples_say_so() -> None:
    vectors = clusters(3, 6)[[0, 1, 2, 3, 4, 5, 6, 7, 12, 13]]
    labels = ["big"] * 6 + ["mid"] * 2 + ["small"] * 2
    result = identifiability(vectors, labels, permutations=200)
    assert result.chance == 0.6 and result.uniform_chance == round(1 / 3, 4)
    assert result.note is not None and "few answers per class (as few as 2)" in result.note
    assert result.relabellings == 1260.0  # 10! / (6! 2! 2!)
    tiny = identifiability(clusters(3, 2), labels_for(3, 2), permutations=1000)
    assert tiny.accuracy == 1.0 and tiny.relabellings == 90.0
    # A perfect score is matched by every relabelling that renames the three classes: 6 of 90.
    assert tiny.p_floor == round(6 / 90, 4)
    assert "even a perfect score has a p-value of about 0.067" in (tiny.note or "")
    assert tiny.p_value is not None and tiny.p_value > 0.03
    assert result.p_floor == round(2 / 1260, 4)  # the two classes of two can swap


def test_one_run_holds_out_each_stage_and_shuffles_within_it() -> None:
    """Six stages of one run, each pulling its three answers one way (strongly), each seat its
    own way (weakly). Held out one answer at a time, the held-out answer's own seat lacks its
    stage while the others have it: accuracy falls below chance. Held out a stage at a time,
    every seat lacks it alike, and the seats are told apart above chance (the stage's pull,
    which training answers cannot centre away since none shares the stage, still costs some);
    the shuffles rename the seats within each stage, so the note says what is measured."""
    rng = np.random.default_rng(2)
    stages, seats, d = 6, 3, 24
    stage_pull = 3.0 * rng.normal(size=(stages, d))
    seat_pull = 0.6 * rng.normal(size=(seats, d))
    vectors = np.array(
        [
            stage_pull[s] + seat_pull[k] + 0.2 * rng.normal(size=d)
            for s in range(stages)
            for k in range(seats)
        ]
    )
    labels = [f"seat{k}" for _ in range(stages) for k in range(seats)]
    blocks = [s for s in range(stages) for _ in range(seats)]
    singly = identifiability(vectors, labels, permutations=200)
    staged = identifiability(vectors, labels, groups=["r"] * 18, blocks=blocks, permutations=200)
    assert singly.accuracy is not None and singly.accuracy < 1 / 3
    assert staged.held_out == "stage" and staged.folds == stages and staged.groups == 1
    assert staged.balanced_accuracy is not None and staged.balanced_accuracy > 0.5
    assert staged.p_value is not None and staged.p_value <= 0.05
    assert "within each block" in staged.method and "across answers" in singly.method
    assert "no second run to hold out: each block (stage and round)" in (staged.note or "")
    assert "only 6 blocks held out" in (staged.note or "")
    # Within six blocks of three, 6**6 labellings; the 3! renamings of the seats score alike.
    assert staged.relabellings == 6.0**6 and staged.p_floor == round(6 / 6**6, 4)


def test_bad_input_is_refused_or_explained() -> None:
    with pytest.raises(ValueError, match="3 labels for vectors of shape"):
        identifiability(np.zeros((4, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="4 labels for vectors of shape"):
        identifiability(np.zeros((4, 2)), list("abab"), groups=[0, 1])
    broken = clusters(2, 3)
    broken[0, 0] = np.nan
    result = identifiability(broken, labels_for(2, 3))
    assert result.accuracy is None and "non-finite" in (result.note or "")


def test_a_persona_told_apart_only_by_its_model_is_shown_as_such() -> None:
    """Two personas on each of two models, the answers set by the model alone: the personas
    look half identifiable pooled, the models fully, and the personas within a model not at
    all. Forty runs of one stage each: each run held out in turn."""
    rng = np.random.default_rng(1)
    seating = {"popper": "m/a", "hayek": "m/a", "kuhn": "m/b", "keynes": "m/b"}
    centres = {"m/a": rng.normal(size=16), "m/b": rng.normal(size=16)}
    turns = [
        Turn(
            run_id=f"r{i}",
            stage="opening",
            round=0,
            seat=p,
            persona=p,
            provider="m",
            model=m,
            content="x",
            latency_s=0.1,
            started_at=utc_now(),
        )
        for i in range(40)
        for p, m in seating.items()
    ]
    vectors = np.array([centres[t.model] + 0.3 * rng.normal(size=16) for t in turns])
    found = turn_identifiability(turns, vectors, lambda t: t.persona, of="persona", embedder="e")
    results = {r.of: r for r in found}
    assert list(results) == ["persona", "model", "persona on m/a", "persona on m/b"]
    pooled = results["persona"]
    assert all(r.held_out == "run" and r.folds == 40 for r in found)
    assert pooled.accuracy is not None and 0.38 < pooled.accuracy < 0.62  # half: the model
    assert pooled.p_value is not None and pooled.p_value < 0.01  # well above 1/4 all the same
    assert "persona and model are told apart together" in (pooled.note or "")
    assert results["model"].accuracy == 1.0
    for model in seating.values():
        within = results[f"persona on {model}"]
        assert within.samples == 80 and within.chance == 0.5
        # Held-out accuracy on noise spreads wider than a binomial (SD about 0.08 here).
        assert within.accuracy is not None and abs(within.accuracy - 0.5) < 0.2


# --- calibration: simulated experiments with and without a persona effect ----------------


def experiment(
    seed: int, k: int, stages: int, persona: float = 0.0, questions: int = 10, runs: int = 3
) -> tuple[np.ndarray, list[str], dict[str, list[Any]]]:
    """A simulated experiment: ``questions`` x ``runs`` runs of ``k`` seats over ``stages``
    stages, seat c holding persona c in every run. An answer sums a question's effect, its
    stage's within the question, the run's (its transcript), the run's stage's, the seat's
    within its run (the same over its stages: a seat-in-run effect), noise, and, only when
    ``persona`` is not zero, ``persona`` times the persona's centre (fixed over experiments,
    so every replication measures one true effect). Labels, groups (runs) and blocks
    (question, stage) as ``turn_identifiability`` passes them."""
    rng, d = np.random.default_rng(seed), 16
    Q, R, S = questions, runs, stages
    vectors = (
        1.0 * rng.normal(size=(Q, 1, 1, 1, d))
        + 0.5 * rng.normal(size=(Q, 1, S, 1, d))
        + 0.7 * rng.normal(size=(Q, R, 1, 1, d))
        + 0.5 * rng.normal(size=(Q, R, S, 1, d))
        + 0.7 * rng.normal(size=(Q, R, 1, k, d))
        + rng.normal(size=(Q, R, S, k, d))
        + persona * np.random.default_rng(99).normal(size=(k, d))
    )
    grid = np.meshgrid(range(Q), range(R), range(S), range(k), indexing="ij")
    q, r, s, c = (axis.ravel() for axis in grid)
    design = {"groups": list(q * R + r), "blocks": list(zip(q.tolist(), s.tolist(), strict=True))}
    return vectors.reshape(-1, d), [f"p{i}" for i in c], design


def leaky_accuracy(vectors: np.ndarray, labels: list[str], blocks: list[Any]) -> float:
    """The procedure this module replaced, kept to show what it did: every answer centred on
    its block (one stage of one run) with the held-out answer in it, normalised, then held
    out alone, its other stages left in training."""
    keys = np.unique([str(b) for b in blocks], return_inverse=True)[1]
    means = np.array([vectors[keys == b].mean(axis=0) for b in range(keys.max() + 1)])
    Z = vectors - means[keys]
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    y = np.unique(labels, return_inverse=True)[1]
    sums = np.array([Z[y == c].sum(axis=0) for c in range(y.max() + 1)])
    similarity = Z @ sums.T / np.linalg.norm(sums, axis=1)
    own = sums[y] - Z  # the answer's own class without it
    similarity[np.arange(len(y)), y] = np.sum(Z * own, axis=1) / np.linalg.norm(own, axis=1)
    return float(np.mean(similarity.argmax(axis=1) == y))


@pytest.mark.parametrize(("k", "stages"), [(4, 3), (2, 2)])
def test_with_no_persona_effect_identifiability_sits_at_chance(k: int, stages: int) -> None:
    """200 simulated experiments with question, run and seat-in-run effects but no persona
    effect: balanced accuracy averages 1/k, and the test rejects at 0.05 about 5% of the
    time (the shuffles rename personas within runs, so a seat keeps its label across stages
    and the seat-in-run effect is in the null too)."""
    found = []
    for seed in range(200):
        vectors, labels, design = experiment(1000 * k + seed, k, stages)
        found.append(identifiability(vectors, labels, **design, permutations=99, seed=seed))
    balanced = [r.balanced_accuracy for r in found if r.balanced_accuracy is not None]
    assert len(balanced) == 200 and all(r.held_out == "run" and r.folds == 30 for r in found)
    assert abs(float(np.mean(balanced)) - 1 / k) < 0.02
    assert abs(float(np.mean([r.null_mean for r in found])) - 1 / k) < 0.02
    rejected = float(np.mean([(r.p_value or 1.0) <= 0.05 for r in found]))
    assert 0.02 <= rejected <= 0.08


@pytest.mark.parametrize(("k", "stages"), [(4, 3), (2, 2)])
def test_the_old_procedures_bias_is_gone(k: int, stages: int) -> None:
    """On the same null experiments the replaced procedure scored well above chance (with
    two answers per block their centred vectors are exact opposites); this one does not."""
    old, new = [], []
    for seed in range(20):
        vectors, labels, design = experiment(1000 * k + seed, k, stages)
        runs_stages = list(zip(design["groups"], [b[1] for b in design["blocks"]], strict=True))
        old.append(leaky_accuracy(vectors, labels, runs_stages))
        new.append(identifiability(vectors, labels, **design, permutations=0).balanced_accuracy)
    assert float(np.mean(old)) > 1 / k + 0.05
    assert abs(float(np.mean(new)) - 1 / k) < 0.03


def test_a_persona_effect_is_found() -> None:
    vectors, labels, design = experiment(7, 4, 3, persona=0.6)
    result = identifiability(vectors, labels, **design, permutations=99)
    assert result.balanced_accuracy is not None and result.balanced_accuracy > 0.45
    assert result.p_value == 0.01 and result.null_mean is not None
    assert abs(result.null_mean - 0.25) < 0.03
    assert result.ci95 is not None and result.ci95[0] > 0.3
    assert "jackknife" in result.interval_method and "29 df" in result.interval_method
    # 24 renamings in each of 30 runs; the 4! renamings shared by every run score alike.
    assert result.relabellings == pytest.approx(24.0**30, rel=1e-3)


def test_the_run_clustered_interval_covers_the_true_accuracy() -> None:
    """Coverage of the 95% interval over 400 replications of one known persona effect, the
    true balanced accuracy being the mean over those replications (the procedure's expected
    score at this design's size). The jackknife holds each run's predictions fixed, so the
    classifier's own variability is left out: coverage runs a little under 95%."""
    found = []
    for seed in range(400):
        vectors, labels, design = experiment(5000 + seed, 4, 3, persona=0.5)
        result = identifiability(vectors, labels, **design, permutations=0)
        assert result.ci95 is not None and result.balanced_accuracy is not None
        found.append((result.balanced_accuracy, *result.ci95))
    estimates, low, high = np.array(found).T
    truth = estimates.mean()
    assert 0.4 < truth < 0.65  # a real effect, well clear of chance and of 1
    assert 0.90 <= float(np.mean((low <= truth) & (truth <= high))) <= 0.99


# --- in a run's report ---------------------------------------------------------------------

WORDS = {
    "popper": "refutation bold conjecture falsify test",
    "kuhn": "paradigm anomaly community revolution normal",
    "meadows": "feedback stocks leverage flows systems",
}


def seat_reply(request: ModelRequest) -> str:
    """Each seat its own vocabulary, plus words of the stage and round (shared by all)."""
    shared = f"{request.stage} round {request.round} the question of cars"
    return f"{WORDS.get(request.seat, request.seat)} {shared}\nyes | 0.7 | none"


def debate_run(tmp_path: Path) -> RunResult:
    return Council(
        list(WORDS), protocol="debate", model=FunctionModel(seat_reply), runs_dir=tmp_path
    ).convene("Should cities ban private cars?")


def test_a_run_report_tells_its_seats_apart(tmp_path: Path) -> None:
    run = debate_run(tmp_path)
    report = analyse_run(run, FakeEmbedder())
    assert [r.source for r in report.identifiability] == ["embeddings"]  # no activations
    measured = report.identifiability[0]
    assert measured.of == "seat"
    panel_turns = [t for t in run.turns if t.seat in WORDS and t.ok]
    assert measured.samples == len(panel_turns) and measured.classes == list(WORDS)
    assert measured.accuracy == 1.0 and measured.detail == "fake-64"
    assert measured.counts == {seat: len(panel_turns) // 3 for seat in WORDS}
    assert measured.p_value is not None and measured.p_value <= 0.05

    quick = Council(
        list(WORDS), protocol="quick", model=FunctionModel(seat_reply), runs_dir=None
    ).convene("Q?")
    lone = analyse_run(quick, FakeEmbedder()).identifiability[0]
    assert lone.accuracy is None and "left out: popper, kuhn, meadows" in (lone.note or "")


def with_activations(run: RunResult) -> RunResult:
    """Each panel turn given residual means at layers 3 and 7, seat-specific at layer 7 (the
    axis layer) and pure noise at layer 3; one turn recorded only layer 3."""
    rng = np.random.default_rng(11)
    centres = {seat: rng.normal(size=16) for seat in WORDS}
    turns, first = [], True
    for turn in run.turns:
        if turn.seat in WORDS and turn.ok:
            noise = rng.normal(size=16).tolist()
            signal = (centres[turn.seat] + 0.05 * rng.normal(size=16)).tolist()
            layers, means = ([3], [noise]) if first else ([3, 7], [noise, signal])
            recorded = TurnActivations(
                model_sha256="0" * 64, layers=layers, means=means, tokens=5, axis_layer=7
            )
            turn = turn.model_copy(update={"activations": recorded})
            first = False
        turns.append(turn)
    return run.model_copy(update={"turns": turns})


def test_a_run_report_measures_activations_where_recorded(tmp_path: Path) -> None:
    run = with_activations(debate_run(tmp_path))
    report = analyse_run(run, FakeEmbedder())
    embeddings, activations = report.identifiability
    assert (embeddings.source, activations.source) == ("embeddings", "activations")
    assert activations.detail == "mean residual stream at layer 7 (16 wide)"
    assert activations.samples == embeddings.samples - 1 and activations.accuracy == 1.0
    assert "1 recorded turns lack layer 7" in (activations.note or "")


# --- in an experiment's summary ------------------------------------------------------------

QUESTIONS = ["Should cities ban cars?", "Should libraries open on Sundays?"]
VOCABULARY = ["cars", "city", "transit", "rules", "freedom", "cost", "safety", "data", "trust"]


def persona_reply(body: dict) -> str:  # type: ignore[type-arg]
    """Words fixed by who the system prompt says the seat is, others by the whole request."""

    def words(text: str, count: int) -> list[str]:
        digest = hashlib.sha256(text.encode()).digest()
        return [f"{VOCABULARY[b % len(VOCABULARY)]}{b % 7}" for b in digest[:count]]

    identity = re.search(r"You are [^(:.]+", body["messages"][0]["content"])
    persona = words(identity[0] if identity else "", 6)
    varied = words(json.dumps([body["messages"], body.get("seed")]), 3)
    return " ".join(persona + varied)


@pytest.fixture
def provider_reply() -> Reply:
    return persona_reply


def test_an_experiment_reports_identifiability_per_arm(provider, tmp_path: Path) -> None:
    personas = ["popper", "kuhn", "hayek"]
    endpoints = {"openai/llama-small": provider.api_base, "openai/qwen-small": provider.api_base}
    plan = ExperimentPlan(
        arms=[
            Arm("single", ["openai/llama-small"], personas),
            Arm("cross", ["openai/llama-small", "openai/qwen-small"], personas),
        ],
        questions=QUESTIONS,
        samples=2,
        out=tmp_path,
        protocol="quick",
        endpoints=endpoints,
    )
    run_plan(plan)
    summary = summarise(tmp_path, FakeEmbedder()).to_json()
    for arm in summary["arms"]:
        measured = arm["identifiability"][0]
        assert measured["source"] == "embeddings" and measured["of"] == "persona"
        assert measured["classes"] == personas
        assert measured["counts"] == dict.fromkeys(personas, 4)  # 2 questions x 2 samples
        assert measured["accuracy"] == 1.0 and measured["p_value"] <= 0.01, arm["name"]
    assert len(summary["arms"][0]["identifiability"]) == 1  # one model: nothing to control
    cross = {r["of"]: r for r in summary["arms"][1]["identifiability"]}
    assert "answers come from 2 models" in cross["persona"]["note"]
    assert cross["model"]["classes"] == ["openai/llama-small", "openai/qwen-small"]
    within = [of for of in cross if of.startswith("persona on ")]
    assert within and all(cross[of]["samples"] >= 4 for of in within)

    report = ExperimentReport(summary)
    text = str(report)
    assert "Identifiability by arm" in text and "\nsingle  persona " in text
    tables = report.tables()
    assert [r["arm"] for r in tables["identifiability"]] == ["single"] + ["cross"] * len(cross)
    assert len([r for r in tables["identifiability_confusion"] if r["arm"] == "single"]) == 9
    page = report.to_html()
    check_page(page)
    assert "<h2>Identifiability by arm</h2>" in page and "Arm <code>cross</code>" in page


def test_the_run_page_text_and_tables_show_identifiability(tmp_path: Path) -> None:
    run = with_activations(debate_run(tmp_path))
    report = RunReport(analyse_run(run, FakeEmbedder()).to_json())
    page = report.to_html()
    check_page(page)
    assert "<h2>Identifiability</h2>" in page
    assert page.count("Confusion matrix: seat, from ") == 2 and "said by" in page
    text = str(report)
    assert "Identifiability (can the answers be told apart by seat?" in text
    rows = [
        line for line in text.splitlines() if re.match(r"seat +(embeddings|activations) ", line)
    ]
    assert len(rows) == 2 and all("1.000" in row for row in rows)
    tables = report.tables()
    assert [r["source"] for r in tables["identifiability"]] == ["embeddings", "activations"]
    first = tables["identifiability"][0]
    assert first["accuracy"] == 1.0 and first["classes"] == 3 and first["ci95_high"] == 1.0
    cells = [r for r in tables["identifiability_confusion"] if r["source"] == "embeddings"]
    assert len(cells) == 9 and sum(r["count"] for r in cells) == first["samples"]

    bare = RunReport({k: v for k, v in report.to_json().items() if k != "identifiability"})
    assert "Identifiability was not measured" in bare.to_html()
    assert "not measured" in str(bare).split("Identifiability")[1]
