"""Identifiability on data whose answer is known: perfectly separable classes are told apart
(accuracy 1, the smallest p-value the permutations allow), random labels on random vectors are
not (accuracy near chance, p-values spread over (0, 1]); then in a run's report (embeddings and
activations), an experiment's summary per arm, and the pages, tables and text that show them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_reports import check_page

from council import Council
from council.app.experiments.runner import Arm, ExperimentPlan, run_plan
from council.app.experiments.summary import summarise
from council.diversity import FakeEmbedder
from council.diversity.analysis import analyse_run
from council.diversity.identifiability import identifiability, turn_identifiability
from council.records.run import RunResult, Turn, TurnActivations, utc_now
from council.reports.objects import ExperimentReport, RunReport
from council.seats import ModelRequest
from council.testing import FakeProvider, FunctionModel

PERMUTATIONS = 1000


def clusters(k: int, per: int, d: int = 32, spread: float = 0.05, seed: int = 0) -> np.ndarray:
    """``k`` tight clusters of ``per`` points each, around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    return np.repeat(centres, per, axis=0) + spread * rng.normal(size=(k * per, d))


def labels_for(k: int, per: int) -> list[str]:
    return [f"seat{i}" for i in range(k) for _ in range(per)]


def reference_accuracy(vectors: np.ndarray, labels: list[str]) -> float:
    """The definition, one answer at a time: centre, normalise, hold the answer out of its own
    class, pick the class whose mean is nearest in cosine (the first on a tie)."""
    X = vectors - vectors.mean(axis=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    classes = list(dict.fromkeys(labels))
    right = 0
    for i, label in enumerate(labels):
        scores = []
        for name in classes:
            rows = [j for j, other in enumerate(labels) if other == name and j != i]
            centroid = X[rows].mean(axis=0)
            scores.append(X[i] @ centroid / np.linalg.norm(centroid))
        right += classes[int(np.argmax(scores))] == label
    return right / len(labels)


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
    assert result.ci95 is not None and result.ci95[0] > 0.85 and result.ci95[1] == 1.0
    assert result.classes == ["seat0", "seat1", "seat2", "seat3"] and result.excluded == []
    assert result.note is None


def test_random_labels_on_random_vectors_score_near_chance() -> None:
    accuracies, p_values = [], []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        labels = list(rng.choice(["a", "b", "c", "d"], size=48))
        result = identifiability(rng.normal(size=(48, 24)), labels, permutations=200, seed=seed)
        assert result.accuracy is not None and result.p_value is not None
        accuracies.append(result.accuracy)
        p_values.append(result.p_value)
    # Chance is 1/4 here; leave-one-out sits a little below it on pure noise.
    assert abs(float(np.mean(accuracies)) - 0.25) < 0.04
    assert 0.35 < float(np.mean(p_values)) < 0.65  # p is uniform under the null
    assert sum(p < 0.05 for p in p_values) <= 6  # about 2 of 40 expected


def test_the_vectorised_procedure_matches_the_definition() -> None:
    rng = np.random.default_rng(7)
    labels = list(rng.choice(["x", "y", "z"], size=30))
    vectors = rng.normal(size=(30, 12))
    vectors[:, 0] += [["x", "y", "z"].index(label) * 0.6 for label in labels]  # some signal
    result = identifiability(vectors, labels, permutations=0)
    assert result.accuracy == round(reference_accuracy(vectors, labels), 4)
    assert result.p_value is None and result.permutations == 0
    wide = np.hstack([vectors, np.zeros((30, 500))])  # wider than it is long: same answer
    assert identifiability(wide, labels, permutations=0).accuracy == result.accuracy


def test_the_permutation_test_is_seeded() -> None:
    rng = np.random.default_rng(3)
    vectors, labels = rng.normal(size=(20, 8)), labels_for(4, 5)
    first = identifiability(vectors, labels, seed=5, permutations=300)
    assert first == identifiability(vectors, labels, seed=5, permutations=300)
    assert first.permutations == 300 and first.p_value is not None
    assert 1 / 301 <= first.p_value <= 1


def test_single_answer_classes_are_left_out_and_said_so() -> None:
    vectors = clusters(3, 4)
    labels = labels_for(3, 4)
    extra = np.vstack([vectors, np.ones((2, vectors.shape[1]))])
    result = identifiability(extra, [*labels, "lone", "other"], permutations=100)
    assert result.excluded == ["lone", "other"] and result.counts["lone"] == 1
    assert result.samples == 12 and result.classes == ["seat0", "seat1", "seat2"]
    assert result.accuracy == 1.0
    assert result.note is not None and "left out (under two usable answers" in result.note
    assert "lone, other" in result.note

    none = identifiability(vectors[:3], ["a", "b", "c"])
    assert none.accuracy is None and none.p_value is None and none.samples == 0
    assert none.note is not None and "needs two classes with two usable answers each; has 0" in (
        none.note
    )
    one = identifiability(vectors[:3], ["a", "a", "b"])
    assert one.accuracy is None and "has 1" in (one.note or "")


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


def test_blocks_remove_what_each_stage_makes_everyone_say() -> None:
    """Six stages, each pulling its three answers one way (strongly), each seat its own way
    (weakly). Pooled, a held-out answer's own seat lacks its stage while the others have it:
    accuracy falls below chance. Centred within stages, the seats are told apart, and the
    shuffles, within stages, keep one answer per seat per stage."""
    rng = np.random.default_rng(2)
    stages, seats, d = 6, 3, 24
    stage_pull = 3.0 * rng.normal(size=(stages, d))
    seat_pull = 0.6 * rng.normal(size=(seats, d))
    vectors = np.array(
        [stage_pull[s] + seat_pull[k] + 0.2 * rng.normal(size=d)
         for s in range(stages) for k in range(seats)]
    )  # fmt: skip
    labels = [f"seat{k}" for _ in range(stages) for k in range(seats)]
    blocks = [s for s in range(stages) for _ in range(seats)]
    pooled = identifiability(vectors, labels, permutations=200)
    blocked = identifiability(vectors, labels, blocks=blocks, permutations=200)
    assert pooled.accuracy is not None and pooled.accuracy < 1 / 3
    assert blocked.accuracy == 1.0 and blocked.blocks == stages and blocked.alone == 0
    assert blocked.p_value is not None and blocked.p_value <= 0.05
    assert "within each block" in blocked.method and "within" not in pooled.method
    # Within six blocks of three, 6**6 labellings; the 3! renamings of the seats score alike.
    assert blocked.relabellings == 6.0**6 and blocked.p_floor == round(6 / 6**6, 4)
    lonely = identifiability(
        np.vstack([vectors, vectors[:1]]), [*labels, "seat0"], blocks=[*blocks, "alone"]
    )
    assert lonely.alone == 1 and lonely.samples == 18
    assert "1 answers left out: no other answer shared their stage" in (lonely.note or "")


def test_bad_input_is_refused_or_explained() -> None:
    with pytest.raises(ValueError, match="3 labels for vectors of shape"):
        identifiability(np.zeros((4, 2)), ["a", "b", "c"])
    broken = clusters(2, 3)
    broken[0, 0] = np.nan
    result = identifiability(broken, labels_for(2, 3))
    assert result.accuracy is None and "non-finite" in (result.note or "")


def test_a_persona_told_apart_only_by_its_model_is_shown_as_such() -> None:
    """Two personas on each of two models, the answers set by the model alone: the personas
    look half identifiable pooled, the models fully, and the personas within a model not at
    all."""
    rng = np.random.default_rng(1)
    seating = {"popper": "m/a", "hayek": "m/a", "kuhn": "m/b", "keynes": "m/b"}
    centres = {"m/a": rng.normal(size=16), "m/b": rng.normal(size=16)}
    turns = [
        Turn(run_id="r", stage="opening", round=0, seat=p, persona=p, provider="m", model=m,
             content="x", latency_s=0.1, started_at=utc_now())
        for _ in range(40) for p, m in seating.items()
    ]  # fmt: skip
    vectors = np.array([centres[t.model] + 0.3 * rng.normal(size=16) for t in turns])
    found = turn_identifiability(turns, vectors, lambda t: t.persona, of="persona", embedder="e")
    results = {r.of: r for r in found}
    assert list(results) == ["persona", "model", "persona on m/a", "persona on m/b"]
    pooled = results["persona"]
    assert pooled.accuracy is not None and 0.38 < pooled.accuracy < 0.62  # half: the model
    assert pooled.p_value is not None and pooled.p_value < 0.01  # well above 1/4 all the same
    assert "persona and model are told apart together" in (pooled.note or "")
    assert results["model"].accuracy == 1.0
    for model in seating.values():
        within = results[f"persona on {model}"]
        assert within.samples == 80 and within.chance == 0.5
        # Held-out accuracy on noise spreads wider than a binomial (SD about 0.08 here).
        assert within.accuracy is not None and abs(within.accuracy - 0.5) < 0.2


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
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(persona_reply) as fake:
        yield fake


def test_an_experiment_reports_identifiability_per_arm(provider, tmp_path: Path) -> None:
    personas = ["popper", "kuhn", "hayek"]
    endpoints = {"openai/llama-small": provider.api_base, "openai/qwen-small": provider.api_base}
    plan = ExperimentPlan(
        arms=[Arm("single", ["openai/llama-small"], personas),
              Arm("cross", ["openai/llama-small", "openai/qwen-small"], personas)],
        questions=QUESTIONS, samples=2, out=tmp_path, protocol="quick", endpoints=endpoints,
    )  # fmt: skip
    run_plan(plan)
    summary = summarise(tmp_path, FakeEmbedder())
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
