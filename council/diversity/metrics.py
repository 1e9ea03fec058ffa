"""Diversity metrics over row-normalised embeddings (one row per turn).

Every function takes an ``(n, d)`` float array whose rows have unit length, so a dot product is
a cosine similarity. Where a metric is undefined (one seat has no diversity) the function says
why instead of returning NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.floating[Any]]
_UNIT_TOLERANCE = 1e-3


class EmbeddingError(ValueError):
    """Embeddings of the wrong shape, not normalised, or of mismatched dimension."""


def check_embeddings(X: Matrix, dimension: int | None = None) -> Matrix:
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if X.ndim != 2:
        raise EmbeddingError(f"embeddings must be a 2-D array (n, d); got shape {X.shape}")
    if dimension is not None and X.shape[1] != dimension:
        raise EmbeddingError(
            f"embeddings have dimension {X.shape[1]}, expected {dimension}: "
            "were they made by another embedding model?"
        )
    if X.shape[0] and not np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=_UNIT_TOLERANCE):
        raise EmbeddingError("embedding rows must be normalised to unit length")
    return X


def vendi_score(X: Matrix) -> float:
    """Vendi score: exp of the Shannon entropy of the eigenvalues of K/n, K = X Xᵀ.

    The effective number of distinct items, from 1 (all the same) to n (all orthogonal).
    K/n shares its non-zero eigenvalues with XᵀX/n (d × d), so for n > d the cost is
    O(n·d²) rather than O(n³): 100,000 × 384 vectors take about a second.
    """
    X = check_embeddings(X)
    n, d = X.shape
    if n == 0:
        raise EmbeddingError("the Vendi score of no items is undefined")
    # The product stays in the input precision (float32 embeddings: fast, ample for an
    # entropy); the small matrix is decomposed in float64.
    gram = (X @ X.T) if n <= d else (X.T @ X)
    eigenvalues = np.linalg.eigvalsh(gram.astype(np.float64) / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    eigenvalues = eigenvalues / eigenvalues.sum()  # guards against rounding in the trace
    return float(math.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def mean_pairwise_distance(X: Matrix) -> float:
    """Mean cosine distance (1 - cosine) over all pairs of distinct rows; needs n >= 2."""
    X = check_embeddings(X)
    n = X.shape[0]
    if n < 2:
        raise EmbeddingError("pairwise distance needs at least two items")
    similarity = X @ X.T
    off_diagonal = (similarity.sum() - np.trace(similarity)) / (n * (n - 1))
    return float(1.0 - off_diagonal)


@dataclass(frozen=True)
class CentroidDistances:
    distances: list[float]
    outliers: list[bool]


def centroid_distances(X: Matrix, *, factor: float = 1.5) -> CentroidDistances:
    """Each row's cosine distance to the normalised centroid; a row is an outlier when its
    distance exceeds ``factor`` times the median of the others' (needs three or more rows)."""
    X = check_embeddings(X)
    centroid = X.mean(axis=0)
    norm = np.linalg.norm(centroid)
    centroid = centroid / norm if norm > 0 else centroid
    distances = [float(1.0 - row @ centroid) for row in X]
    outliers = [False] * len(distances)
    if len(distances) >= 3:
        for i, distance in enumerate(distances):
            others = distances[:i] + distances[i + 1 :]
            outliers[i] = distance > factor * float(np.median(others)) and distance > 0.05
    return CentroidDistances(distances, outliers)


def drift_position(turn: Matrix, persona: Matrix, assistant: Matrix) -> float:
    """Where a turn lies on the axis from its persona's own voice (0) to the same model's
    generic-assistant voice (1): the projection onto the segment, unclipped so overshoot shows.

    An embedding-space analog of the "assistant axis" found in activations: with API models
    we cannot read activations, but we can see a turn sliding toward the default voice.
    """
    axis = assistant - persona
    length = float(axis @ axis)
    if length < 1e-9:
        raise EmbeddingError("the persona and assistant voices coincide: drift is undefined")
    return float((turn - persona) @ axis / length)


def normalised_mean(X: Matrix) -> Matrix:
    mean = np.asarray(X, dtype=np.float64).mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else mean


@dataclass(frozen=True)
class Decomposition:
    persona: float
    family: float
    residual: float
    total: float


def decompose_variance(
    X: Matrix, personas: Sequence[str], families: Sequence[str]
) -> Decomposition:
    """Split the embeddings' total sum of squares into persona, model-family and residual
    shares (additive main effects, as in a two-way ANOVA on a balanced design)."""
    X = check_embeddings(X)
    if not (len(personas) == len(families) == X.shape[0]):
        raise EmbeddingError("one persona and one family label per embedding row")
    grand = X.mean(axis=0)
    total = float(((X - grand) ** 2).sum())

    def between(labels: Sequence[str]) -> float:
        ss = 0.0
        for label in set(labels):
            rows = X[[i for i, lab in enumerate(labels) if lab == label]]
            ss += rows.shape[0] * float(((rows.mean(axis=0) - grand) ** 2).sum())
        return ss

    if total <= 0:
        return Decomposition(0.0, 0.0, 0.0, 0.0)
    persona, family = between(personas), between(families)
    residual = max(0.0, total - persona - family)
    return Decomposition(persona / total, family / total, residual / total, total)


def bootstrap_ci(
    values: Sequence[float], *, reps: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(reps, data.size), replace=True).mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def permutation_p_value(
    a: Sequence[float], b: Sequence[float], *, reps: int = 10000, seed: int = 0
) -> float:
    """Two-sided permutation test of a difference in means (add-one smoothed)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("both groups need values")
    observed = abs(x.mean() - y.mean())
    pooled = np.concatenate([x, y])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        rng.shuffle(pooled)
        hits += abs(pooled[: x.size].mean() - pooled[x.size :].mean()) >= observed - 1e-12
    return (hits + 1) / (reps + 1)
