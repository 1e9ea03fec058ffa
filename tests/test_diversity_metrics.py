"""Diversity metrics on known geometry, and run analysis on the test doubles."""

from __future__ import annotations

import numpy as np
import pytest

from council import Council
from council.diversity import FakeEmbedder
from council.diversity.analysis import analyse_run
from council.diversity.cache import CachedEmbedder
from council.diversity.metrics import (
    EmbeddingError,
    bootstrap_ci,
    centroid_distances,
    check_embeddings,
    decompose_variance,
    drift_position,
    mean_pairwise_distance,
    permutation_p_value,
    vendi_score,
)
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


def test_intervals_and_permutation_tests() -> None:
    low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert low < 3.0 < high
    assert permutation_p_value([0.1] * 10, [0.9] * 10, reps=2000) < 0.01
    assert permutation_p_value([0.1, 0.5, 0.9], [0.1, 0.5, 0.9], reps=2000) > 0.5


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
        run, cached, assistant_voice={"test/function": ["As an AI assistant, I can help."]}
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
    CachedEmbedder(FakeEmbedder(64), tmp_path / "c.sqlite").encode(["hello"])

    class Liar(FakeEmbedder):
        @property
        def name(self) -> str:
            return "fake-64"  # claims the cached model's name with another dimension

    run = Council(
        ["popper", "kuhn"], protocol="quick", model=FunctionModel(lambda r: "hello"), runs_dir=None
    ).convene("Q?")
    with pytest.raises(EmbeddingError, match="dimension"):
        analyse_run(run, CachedEmbedder(Liar(32), tmp_path / "c.sqlite"))
