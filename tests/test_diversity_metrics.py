"""Diversity metrics on known geometry, and run analysis on the test doubles."""

from __future__ import annotations

import numpy as np
import pytest

from council import Council
from council.meter import FakeEmbedder
from council.meter.analysis import analyse_run
from council.meter.cache import CachedEmbedder
from council.meter.metrics import (
    EmbeddingError,
    centroid_distances,
    check_embeddings,
    decompose_variance,
    drift_position,
    mean_pairwise_distance,
    vendi_score,
)
from council.meter.stats import (
    ALL_EQUAL,
    BCA,
    EXACT_PERMUTATION,
    ONE_VALUE,
    RANDOM_PERMUTATION,
    TOO_FEW,
    difference_interval,
    mean_interval,
    permutation_test,
)
from council.records.measurable import MIN_REPLY_CHARACTERS
from council.seats import ModelRequest
from council.testing import FunctionModel


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def reference_vendi(X: np.ndarray) -> float:
    """The textbook O(n³) definition, to check the d × d shortcut against."""
    eigenvalues = np.linalg.eigvalsh(X @ X.T / X.shape[0])
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def test_vendi_counts_distinct_items() -> None:
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)
    assert vendi_score(np.tile([[1.0, 0.0, 0.0]], (7, 1))) == pytest.approx(1.0)
    two_groups = np.array([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)
    assert vendi_score(two_groups) == pytest.approx(2.0)


@pytest.mark.parametrize(("n", "d"), [(10, 384), (500, 16), (2000, 8)])
def test_vendi_shortcut_matches_the_definition(n: int, d: int) -> None:
    X = unit_rows(np.random.default_rng(n).normal(size=(n, d)))
    assert vendi_score(X) == pytest.approx(reference_vendi(X), rel=1e-6)


def test_vendi_and_distance_refuse_bad_input() -> None:
    with pytest.raises(EmbeddingError, match="unit length"):
        vendi_score(np.array([[3.0, 4.0]]))
    with pytest.raises(EmbeddingError, match="2-D"):
        vendi_score(np.ones(3))
    with pytest.raises(EmbeddingError, match="no items"):
        vendi_score(np.zeros((0, 4)))
    with pytest.raises(EmbeddingError, match="at least two"):
        mean_pairwise_distance(np.eye(1))
    with pytest.raises(EmbeddingError, match="dimension 3, expected 384"):
        check_embeddings(np.eye(3), 384)


def test_pairwise_distance_and_outliers() -> None:
    assert mean_pairwise_distance(np.eye(3)) == pytest.approx(1.0)
    close = unit_rows(np.array([[1.0, 0.05, 0], [1.0, -0.05, 0], [1.0, 0, 0.05], [0, 0, 1.0]]))
    found = centroid_distances(close)
    assert found.outliers == [False, False, False, True]
    assert max(found.distances) == found.distances[3]


def test_drift_axis() -> None:
    persona, assistant = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert drift_position(persona, persona, assistant) == pytest.approx(0.0)
    assert drift_position(assistant, persona, assistant) == pytest.approx(1.0)
    halfway = unit_rows(np.array([[1.0, 1.0]]))[0]
    assert drift_position(halfway, persona, assistant) == pytest.approx(0.5)
    with pytest.raises(EmbeddingError, match="coincide"):
        drift_position(persona, persona, persona)


def test_variance_decomposition_finds_the_persona_effect() -> None:
    rng = np.random.default_rng(0)
    centres = {"a": [1.0, 0, 0, 0], "b": [0, 1.0, 0, 0]}
    rows, personas, families = [], [], []
    for persona, centre in centres.items():
        for family in ("x", "y"):
            for _ in range(10):
                rows.append(np.array(centre) + rng.normal(scale=0.05, size=4))
                personas.append(persona)
                families.append(family)
    split = decompose_variance(unit_rows(np.array(rows)), personas, families)
    assert split.persona > 0.8 and split.family < 0.05
    assert split.persona + split.family + split.residual == pytest.approx(1.0)


def test_near_zero_variance_is_undefined_not_rescaled() -> None:
    """The answers differ only by float32 rounding: no share of that noise is reported."""
    rng = np.random.default_rng(1)
    base = unit_rows(rng.normal(size=(1, 8)))
    rows = unit_rows(np.repeat(base, 6, axis=0) + rng.normal(scale=1e-5, size=(6, 8)))
    split = decompose_variance(rows.astype(np.float32), list("aabbcc"), list("xyxyxy"))
    assert (split.persona, split.family, split.residual) == (None, None, None)
    assert split.note is not None and "near-zero variance" in split.note


def test_confounded_shares_are_reported_without_a_residual() -> None:
    """Each persona always on one family: both explain everything; nothing is rescaled."""
    rows = unit_rows(np.array([[1.0, 0.1, 0], [1.0, 0, 0.1], [0, 1.0, 0.1], [0.1, 1.0, 0]]))
    split = decompose_variance(rows, ["a", "a", "b", "b"], ["x", "x", "y", "y"])
    assert split.persona == pytest.approx(split.family) and split.persona > 0.9
    assert split.residual is None and split.note is not None and "not rescaled" in split.note


def test_bca_intervals_and_permutation_tests_name_their_method() -> None:
    """Against scipy.stats called directly: the same interval for the same seed."""
    from scipy import stats

    values = [0.61, 0.64, 0.7, 0.58, 0.66, 0.73, 0.69]
    estimate = mean_interval(values, seed=3)
    direct = stats.bootstrap(
        (np.array(values),),
        np.mean,
        method="BCa",
        n_resamples=9999,
        random_state=np.random.default_rng(3),
    ).confidence_interval
    assert estimate.method == BCA and estimate.n == 7
    assert (estimate.low, estimate.high) == pytest.approx((direct.low, direct.high), abs=1e-9)
    assert estimate.low < estimate.value < estimate.high
    assert mean_interval([0.4]).method == ONE_VALUE and mean_interval([0.4]).low is None
    two = mean_interval([0.4, 0.6])
    assert two.value == pytest.approx(0.5) and two.low is None and two.method == TOO_FEW
    equal = mean_interval([0.5, 0.5, 0.5])
    assert (equal.low, equal.high, equal.method) == (0.5, 0.5, ALL_EQUAL)

    difference = difference_interval([0.1, 0.2, 0.15, 0.12], [0.5, 0.55, 0.6, 0.52], seed=1)
    assert difference.low is not None and difference.high is not None
    assert 0 < difference.low < difference.value < difference.high
    small = permutation_test([0.1, 0.2, 0.15], [0.5, 0.55, 0.6])
    assert small.method == EXACT_PERMUTATION and small.p_value == pytest.approx(0.1)  # 2 of 20
    big = permutation_test([0.1] * 10 + [0.2] * 5, [0.9] * 10 + [0.8] * 5)
    assert big.method == RANDOM_PERMUTATION and big.p_value < 0.01
    assert permutation_test([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]).p_value == pytest.approx(1.0)


def test_run_analysis_skips_failures_and_explains_single_seats(tmp_path) -> None:
    def reply(request: ModelRequest) -> str:
        if request.seat == "kuhn" and request.stage == "cross_examination":
            raise RuntimeError("down")
        return f"{request.seat} on {request.stage}: " + " ".join([request.seat] * 5)

    run = Council(
        ["popper", "kuhn"], protocol="council", model=FunctionModel(reply), runs_dir=tmp_path
    ).convene("Q?")
    cached = CachedEmbedder(FakeEmbedder(), tmp_path / "cache.sqlite")
    report = analyse_run(
        run,
        cached,
        assistant_voice={"test/function": ["As an AI assistant, I can help you weigh this."]},
    )
    stages = {(s.stage, s.round): s for s in report.stages}
    assert (
        stages[("opening", 0)].seats == 2
        and stages[("opening", 0)].mean_pairwise_distance is not None
    )
    one = stages[("cross_examination", 0)]
    assert one.seats == 1 and one.mean_pairwise_distance is None and "one seat" in (one.note or "")
    assert report.failed_turns_skipped == 1
    assert {d.seat for d in report.drift} == {"popper", "kuhn"} and report.drift_note is None
    assert all(np.isfinite(d.position) for d in report.drift)
    again = CachedEmbedder(FakeEmbedder(), tmp_path / "cache.sqlite")
    analyse_run(run, again)
    assert again.misses == 0 and again.hits > 0  # re-analysis embeds nothing twice


def test_mismatched_cache_dimension_is_refused(tmp_path) -> None:
    said = "hello, in a reply long enough to be measured"
    CachedEmbedder(FakeEmbedder(64), tmp_path / "c.sqlite").encode([said])

    class Liar(FakeEmbedder):
        @property
        def name(self) -> str:
            return "fake-64"  # claims the cached model's name with another dimension

    run = Council(
        ["popper", "kuhn"],
        protocol="quick",
        runs_dir=None,
        model=FunctionModel(lambda r: said),
    ).convene("Q?")
    with pytest.raises(EmbeddingError, match="dimension"):
        analyse_run(run, CachedEmbedder(Liar(32), tmp_path / "c.sqlite"))


def test_seats_keep_the_seating_order_whatever_order_they_finish_in(tmp_path) -> None:
    """Turns recorded in finish order (here: each stage's reversed, then shuffled): both
    heatmaps, the points and the seat map list popper, kuhn, meadows, as they were seated."""

    def reply(request: ModelRequest) -> str:
        return f"{request.seat} on {request.stage}: " + " ".join([request.seat] * 5)

    run = Council(
        ["popper", "kuhn", "meadows"],
        protocol="council",
        model=FunctionModel(reply),
        runs_dir=tmp_path,
    ).convene("Q?")
    finished = list(reversed(run.turns))
    finished[0], finished[2] = finished[2], finished[0]
    run = run.model_copy(update={"turns": finished})
    voices = {
        "test/function": [
            "Here are some pros and cons of the matter.",
            "There are several factors to weigh on each side.",
        ]
    }
    report = analyse_run(run, FakeEmbedder(), assistant_voice=voices)
    for stage in report.stages:
        assert stage.labels == ["popper", "kuhn", "meadows"], stage.stage
        assert [p.seat for p in stage.points] == stage.labels
        assert all(p.tokens and p.characters for p in stage.points)
    assert [(s.seat, s.role, s.model) for s in report.seats][:3] == [
        ("popper", "panel", "test/function"),
        ("kuhn", "panel", "test/function"),
        ("meadows", "panel", "test/function"),
    ]
    assert report.vote_tallies == 0  # 'council' takes no vote
    [floor] = report.no_persona_baseline
    assert floor.model == "test/function" and floor.samples == 2
    assert 0 < floor.mean_pairwise_distance <= 2


def test_replies_too_short_to_measure_are_left_out_and_counted(tmp_path) -> None:
    """A reply under MIN_REPLY_CHARACTERS states no position and its embedding lies anywhere:
    left out of the stage's measure, of drift, and of the no-persona baseline, and counted."""

    def reply(request: ModelRequest) -> str:
        if request.seat == "kuhn" and request.stage == "opening":
            return "Agreed."
        return f"{request.seat} on {request.stage}: " + " ".join([request.seat] * 5)

    run = Council(
        ["popper", "kuhn", "meadows"],
        protocol="council",
        model=FunctionModel(reply),
        runs_dir=tmp_path,
    ).convene("Q?")
    voices = {
        "test/function": [
            "Yes.",
            "Here are some pros and cons of the matter.",
            "There are several factors to weigh on each side.",
            "",
        ]
    }
    report = analyse_run(run, FakeEmbedder(), assistant_voice=voices)
    stages = {s.stage: s for s in report.stages}
    assert stages["opening"].labels == ["popper", "meadows"]
    assert stages["cross_examination"].labels == ["popper", "kuhn", "meadows"]
    assert report.short_turns_skipped == 1 and report.empty_turns_skipped == 0
    assert not any(d.seat == "kuhn" and d.stage == "opening" for d in report.drift)
    [baseline] = report.no_persona_baseline
    assert (baseline.samples, baseline.short_answers_skipped) == (2, 1)
    assert baseline.note == "fewer than 8 answers: a noisy baseline"
    assert MIN_REPLY_CHARACTERS == 40
